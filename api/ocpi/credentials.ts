import { HttpError, type Route } from '../http.js';
import { ocpi_caller } from './auth.js';
import { check_partner_url, OcpiClientError, OcpiDestinationRefusedError, ocpi_call } from './client.js';
import { type OcpiContext, ocpi_version, versions_url } from './context.js';
import { invalid_parameter, OcpiError, ocpi_status, send_ocpi } from './envelope.js';
import {
  type CredentialsRole,
  new_credentials_token,
  type OcpiEndpoint,
  ocpi_roles,
  type PartnerRecord,
  party_key,
  token_sha256,
} from './partners.js';
import { cistring_field, enum_field, type Json, object_body, string_field, url_field } from './validate.js';

export interface CredentialsBody {
  token: string;
  url: string;
  roles: CredentialsRole[];
}

const roles_max = 32;
const endpoints_max = 64;

/** credentials.asciidoc Credentials object, checked field by field. */
export function parse_credentials(body: unknown): CredentialsBody {
  const b = object_body(body);
  const token = string_field(b, 'token', 64, true);
  // credentials: "only printable non-whitespace ASCII characters" (U+0021 to U+007E).
  if (!/^[\x21-\x7e]{1,64}$/.test(token))
    throw invalid_parameter('token', 'must be 1 to 64 printable non-whitespace ASCII characters');
  const url = url_field(b, 'url');
  const raw_roles = b.roles;
  if (!Array.isArray(raw_roles) || raw_roles.length === 0 || raw_roles.length > roles_max) {
    throw invalid_parameter('roles', `must be a list of 1 to ${roles_max} CredentialsRole objects`);
  }
  const roles = raw_roles.map((raw, i): CredentialsRole => {
    const r = object_body(raw, `roles[${i}]`);
    const details = object_body(r.business_details, `roles[${i}].business_details`);
    const name = string_field(details, 'name', 100, true);
    const website = string_field(details, 'website', 255, false);
    const country_code = cistring_field(r, 'country_code', 2, true);
    const party_id = cistring_field(r, 'party_id', 3, true);
    if (!/^[A-Za-z]{2}$/.test(country_code))
      throw invalid_parameter(`roles[${i}].country_code`, 'must be 2 letters (ISO 3166-1 alpha-2)');
    if (!/^[A-Za-z0-9]{3}$/.test(party_id))
      throw invalid_parameter(`roles[${i}].party_id`, 'must be 3 letters or digits');
    return {
      role: enum_field(r, 'role', ocpi_roles, true),
      business_details: { name, ...(website === undefined ? {} : { website }) },
      country_code: country_code.toUpperCase(),
      party_id: party_id.toUpperCase(),
    };
  });
  return { token, url, roles };
}

function parse_endpoints(data: unknown): OcpiEndpoint[] {
  const d = typeof data === 'object' && data !== null ? (data as Json) : {};
  if (d.version !== ocpi_version || !Array.isArray(d.endpoints) || d.endpoints.length > endpoints_max) {
    throw new OcpiClientError('version details: no endpoints list for version 2.2.1');
  }
  const endpoints: OcpiEndpoint[] = [];
  for (const raw of d.endpoints as unknown[]) {
    const e = typeof raw === 'object' && raw !== null ? (raw as Json) : {};
    if (
      typeof e.identifier !== 'string' ||
      (e.role !== 'SENDER' && e.role !== 'RECEIVER') ||
      typeof e.url !== 'string'
    ) {
      throw new OcpiClientError('version details: an endpoint lacks identifier, role or url');
    }
    const url = new URL(e.url);
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new OcpiClientError(`endpoint ${e.identifier}: not an http(s) URL`);
    endpoints.push({ identifier: e.identifier, role: e.role, url: e.url });
  }
  return endpoints;
}

/**
 * Fetches the partner's versions and its 2.2.1 endpoints with its token B (credentials
 * "Registration": the server must fetch the client's endpoints). Failures are OCPI 3001, an
 * unsupported version 3002, no endpoints 3003 (credentials "Errors during registration").
 */
async function fetch_partner_endpoints(
  context: OcpiContext,
  credentials: CredentialsBody,
): Promise<OcpiEndpoint[]> {
  try {
    await check_partner_url(new URL(credentials.url), context.client);
  } catch (error) {
    // The URL the partner gave is one we do not call: a bad parameter, and nothing was fetched.
    if (error instanceof OcpiDestinationRefusedError) throw invalid_parameter('url', error.message);
    throw error;
  }
  try {
    const versions = await ocpi_call<unknown>(
      'GET',
      credentials.url,
      credentials.token,
      undefined,
      context.client,
    );
    const list = Array.isArray(versions.body.data) ? (versions.body.data as Json[]) : [];
    const ours = list.find((v) => typeof v === 'object' && v !== null && v.version === ocpi_version);
    if (ours === undefined || typeof ours.url !== 'string') {
      throw new OcpiError(
        200,
        ocpi_status.unsupported_version,
        `the partner offers no OCPI ${ocpi_version} at ${credentials.url}`,
      );
    }
    const details = await ocpi_call<unknown>('GET', ours.url, credentials.token, undefined, context.client);
    const endpoints = parse_endpoints(details.body.data);
    if (endpoints.length === 0) {
      throw new OcpiError(
        200,
        ocpi_status.no_matching_endpoints,
        'the partner lists no endpoints for OCPI 2.2.1',
      );
    }
    // Refused now rather than at the first push or pull: an endpoint we would never call.
    for (const endpoint of endpoints) await check_partner_url(new URL(endpoint.url), context.client);
    return endpoints;
  } catch (error) {
    if (error instanceof OcpiClientError || error instanceof TypeError) {
      throw new OcpiError(
        200,
        ocpi_status.client_api_unusable,
        `cannot use the partner's API: ${error.message}`,
      );
    }
    throw error;
  }
}

function our_credentials(context: OcpiContext, token: string): Json {
  return { token, url: versions_url(context), roles: context.our_roles };
}

function not_allowed(message: string): OcpiError {
  return new OcpiError(405, ocpi_status.client_error, message, undefined, {
    allow: 'GET, POST, PUT, DELETE',
  });
}

function check_roles(record: PartnerRecord, roles: CredentialsRole[]): void {
  const allowed = new Set(record.parties.map(party_key));
  for (const role of roles) {
    if (!allowed.has(party_key(role))) {
      throw invalid_parameter(
        'roles',
        `party ${party_key(role)} is not one the operator registered for this partner`,
      );
    }
  }
}

/**
 * Operator-initiated token rotation (credentials "Updating the credentials and resetting the
 * credentials token"): we PUT our credentials with a new token C to the partner's credentials
 * endpoint with its token B, and it answers with its credentials for us (a new token B). The new
 * C is accepted from the moment it is sent, because the partner fetches our endpoints with it
 * before it answers (credentials PUT); the old C stops working once the partner has answered.
 * If the partner cannot be reached or refuses, the old tokens stay and the new C never works.
 */
export async function rotate_partner_token(context: OcpiContext, partner_id: string): Promise<PartnerRecord> {
  const record = await context.partners.get(partner_id);
  if (record === undefined) throw new HttpError(404, `no partner ${partner_id}`, 'partner_id');
  if (record.status !== 'registered' || record.partner_token === undefined) {
    throw new HttpError(409, `partner ${partner_id} is ${record.status}, not registered`, 'partner_id');
  }
  const endpoint = record.endpoints?.find((e) => e.identifier === 'credentials');
  if (endpoint === undefined) {
    throw new HttpError(409, `partner ${partner_id} lists no credentials endpoint`, 'partner_id');
  }
  const token_c = new_credentials_token();
  const offered = await context.partners.offer_token(record, token_c);
  let answer: CredentialsBody;
  try {
    const result = await ocpi_call<unknown>(
      'PUT',
      endpoint.url,
      record.partner_token,
      our_credentials(context, token_c),
      context.client,
    );
    answer = parse_credentials(result.body.data);
    check_roles(record, answer.roles);
  } catch (error) {
    await context.partners.abort_rotation(offered);
    const reason = error instanceof OcpiError ? `${error.message} (their answer)` : (error as Error).message;
    throw new HttpError(502, `the partner did not accept the new token; the old one stays: ${reason}`);
  }
  const current = await context.partners.get(partner_id);
  if (current === undefined || current.token_sha256 !== record.token_sha256) {
    await context.partners.abort_rotation(offered);
    throw new HttpError(409, `partner ${partner_id} changed during the rotation`, 'partner_id');
  }
  const now = Date.now();
  const { pending_token_sha256: _pending, ...rest } = current;
  const rotated: PartnerRecord = {
    ...rest,
    token_sha256: token_sha256(token_c),
    token_kind: 'C',
    partner_token: answer.token,
    versions_url: answer.url,
    roles: answer.roles,
    rotated_at_ms: now,
    updated_at_ms: now,
  };
  await context.partners.save(rotated, current);
  return rotated;
}

/** Credentials module: GET, POST (register), PUT (update), DELETE (unregister). */
export function credentials_routes(context: OcpiContext): Route[] {
  const path = /^\/ocpi\/2\.2\.1\/credentials\/?$/;
  const doc_path = '/ocpi/2.2.1/credentials';
  const envelope = { description: 'OCPI response envelope' };
  const register = async (record: PartnerRecord, body: unknown): Promise<{ token_c: string }> => {
    const credentials = parse_credentials(body);
    check_roles(record, credentials.roles);
    const endpoints = await fetch_partner_endpoints(context, credentials);
    const token_c = new_credentials_token();
    const updated: PartnerRecord = {
      ...record,
      status: 'registered',
      token_sha256: token_sha256(token_c),
      token_kind: 'C',
      partner_token: credentials.token,
      versions_url: credentials.url,
      version: ocpi_version,
      endpoints,
      roles: credentials.roles,
      pending_token_sha256: undefined,
      updated_at_ms: Date.now(),
    };
    // Re-read: a concurrent DELETE or PUT must not be undone by this write.
    const current = await context.partners.get(record.partner_id);
    if (current === undefined || current.token_sha256 !== record.token_sha256) {
      throw new OcpiError(
        401,
        ocpi_status.client_error,
        'the credentials token changed during the registration',
      );
    }
    await context.partners.save(updated, current);
    return { token_c };
  };
  return [
    {
      method: 'GET',
      path,
      auth: 'ocpi',
      doc: {
        path: doc_path,
        summary: 'Our credentials object (the token you use, our versions URL, our roles)',
        tags: ['ocpi'],
        responses: { '200': envelope, '401': envelope },
      },
      async handle({ res, caller }) {
        const { token } = ocpi_caller(caller);
        send_ocpi(res, our_credentials(context, token));
      },
    },
    {
      method: 'POST',
      path,
      auth: 'ocpi',
      doc: {
        path: doc_path,
        summary:
          'Register: send your credentials (token B) with token A; answers our credentials with token C',
        tags: ['ocpi'],
        request_body: { type: 'object', required: ['token', 'url', 'roles'] },
        responses: { '200': envelope, '401': envelope, '405': envelope },
      },
      async handle({ res, caller, json_body }) {
        const { partner } = ocpi_caller(caller);
        // credentials POST: "MUST return 405 if the client has already been registered before".
        if (partner.status === 'registered') throw not_allowed('already registered; use PUT to update');
        const { token_c } = await register(partner, await json_body());
        send_ocpi(res, our_credentials(context, token_c));
      },
    },
    {
      method: 'PUT',
      path,
      auth: 'ocpi',
      doc: {
        path: doc_path,
        summary:
          'Update: new credentials (token B, URL, roles); we fetch your endpoints again and issue a new token C',
        tags: ['ocpi'],
        request_body: { type: 'object', required: ['token', 'url', 'roles'] },
        responses: { '200': envelope, '401': envelope, '405': envelope },
      },
      async handle({ res, caller, json_body }) {
        const { partner } = ocpi_caller(caller);
        if (partner.status !== 'registered') throw not_allowed('not registered; use POST to register');
        const { token_c } = await register(partner, await json_body());
        send_ocpi(res, our_credentials(context, token_c));
      },
    },
    {
      method: 'DELETE',
      path,
      auth: 'ocpi',
      doc: {
        path: doc_path,
        summary: 'Unregister: our token C stops working and we stop calling you',
        tags: ['ocpi'],
        responses: { '200': envelope, '401': envelope, '405': envelope },
      },
      async handle({ res, caller }) {
        const { partner } = ocpi_caller(caller);
        if (partner.status !== 'registered') throw not_allowed('not registered');
        const { partner_token: _b, ...rest } = partner;
        // The token hash is replaced by one of a token nobody holds, so no token opens it again.
        const updated: PartnerRecord = {
          ...rest,
          status: 'unregistered',
          token_sha256: token_sha256(new_credentials_token()),
          updated_at_ms: Date.now(),
        };
        await context.partners.save(updated, partner);
        send_ocpi(res, undefined);
      },
    },
  ];
}
