import type { TokenRecord, TokenStore, TokenType, Whitelist } from '../../core/tokens.js';
import { token_uid_length_max } from '../../core/tokens.js';
import type { Route } from '../http.js';
import { ocpi_caller, require_registered } from './auth.js';
import { invalid_parameter, OcpiError, ocpi_status, send_ocpi } from './envelope.js';
import { type PartnerRecord, partner_scope, party_key } from './partners.js';
import {
  boolean_field,
  cistring_field,
  date_time_field,
  enum_field,
  type Json,
  object_body,
  string_field,
} from './validate.js';

const token_types: readonly TokenType[] = ['AD_HOC_USER', 'APP_USER', 'OTHER', 'RFID'];
const whitelists: readonly Whitelist[] = ['ALWAYS', 'ALLOWED', 'ALLOWED_OFFLINE', 'NEVER'];
const profile_types = ['CHEAP', 'FAST', 'GREEN', 'REGULAR'] as const;

/** mod_tokens Token object, checked field by field; returns the object as it will be stored. */
export function parse_token(body: unknown): Json {
  const b = object_body(body);
  const token: Json = {
    country_code: cistring_field(b, 'country_code', 2, true).toUpperCase(),
    party_id: cistring_field(b, 'party_id', 3, true).toUpperCase(),
    uid: cistring_field(b, 'uid', token_uid_length_max, true),
    type: enum_field(b, 'type', token_types, true),
    contract_id: cistring_field(b, 'contract_id', 36, true),
    issuer: string_field(b, 'issuer', 64, true),
    valid: boolean_field(b, 'valid'),
    whitelist: enum_field(b, 'whitelist', whitelists, true),
  };
  const visual_number = string_field(b, 'visual_number', 64, false);
  const group_id = cistring_field(b, 'group_id', 36, false);
  const language = string_field(b, 'language', 2, false);
  const profile = enum_field(b, 'default_profile_type', profile_types, false);
  if (visual_number !== undefined) token.visual_number = visual_number;
  if (group_id !== undefined) token.group_id = group_id;
  if (language !== undefined) token.language = language;
  if (profile !== undefined) token.default_profile_type = profile;
  if (b.energy_contract !== undefined && b.energy_contract !== null) {
    const contract = object_body(b.energy_contract, 'energy_contract');
    token.energy_contract = {
      supplier_name: string_field(contract, 'supplier_name', 64, true),
      ...(contract.contract_id === undefined
        ? {}
        : { contract_id: string_field(contract, 'contract_id', 64, true) }),
    };
  }
  token.last_updated = new Date(date_time_field(b, 'last_updated')).toISOString();
  return token;
}

function record_of(token: Json): TokenRecord {
  return {
    uid: token.uid as string,
    type: token.type as TokenType,
    contract_id: token.contract_id as string,
    country_code: token.country_code as string,
    party_id: token.party_id as string,
    valid: token.valid as boolean,
    whitelist: token.whitelist as Whitelist,
    ...(token.group_id === undefined ? {} : { group_id: token.group_id as string }),
    source: 'ocpi',
    ocpi: token,
    last_updated: token.last_updated as string,
  };
}

/**
 * The URL's country_code/party_id must be one of the partner's own parties; otherwise the object
 * does not exist for this client (transport_and_format "Errors": 404 is allowed to block access).
 */
function own_party(partner: PartnerRecord, country_code: string, party_id: string): void {
  const wanted = party_key({ country_code, party_id });
  if (!partner_scope(partner).some((p) => party_key(p) === wanted)) {
    throw new OcpiError(404, ocpi_status.client_error, `no party ${wanted} among your credentials roles`);
  }
}

function same_party(record: TokenRecord, country_code: string, party_id: string): boolean {
  return (
    record.source === 'ocpi' &&
    record.country_code.toUpperCase() === country_code.toUpperCase() &&
    record.party_id.toUpperCase() === party_id.toUpperCase()
  );
}

function check_type(url: URL, token_type: string | undefined): void {
  const type = url.searchParams.get('type');
  if (type === null) return;
  if (!(token_types as readonly string[]).includes(type))
    throw invalid_parameter('type', `must be one of ${token_types.join(', ')}`);
  if (token_type !== undefined && token_type !== type)
    throw invalid_parameter('type', 'differs from the type of the token');
}

const token_path = /^\/ocpi\/2\.2\.1\/tokens\/([^/]+)\/([^/]+)\/([^/]+)$/;
const doc_path = '/ocpi/2.2.1/tokens/{country_code}/{party_id}/{token_uid}';
const doc_parameters = [
  { name: 'country_code', in: 'path', required: true, schema: { type: 'string', maxLength: 2 } },
  { name: 'party_id', in: 'path', required: true, schema: { type: 'string', maxLength: 3 } },
  { name: 'token_uid', in: 'path', required: true, schema: { type: 'string', maxLength: 36 } },
  { name: 'type', in: 'query', schema: { type: 'string', enum: token_types } },
];
const envelope = { description: 'OCPI response envelope' };

/**
 * Tokens module, Receiver interface (mod_tokens "Receiver Interface"): eMSPs push their tokens,
 * which feed the token store ingest authorizes against. A partner writes only under its own
 * parties, and never over a token uid another party (or the operator) holds.
 */
export function tokens_routes(deps: { tokens: TokenStore }): Route[] {
  const param_names = ['country_code', 'party_id', 'token_uid'];
  return [
    {
      method: 'GET',
      path: token_path,
      param_names,
      auth: 'ocpi',
      doc: {
        path: doc_path,
        summary: 'The token as we hold it',
        tags: ['ocpi'],
        parameters: doc_parameters,
        responses: { '200': envelope, '404': envelope },
      },
      async handle({ res, url, params, caller }) {
        const partner = require_registered(ocpi_caller(caller));
        const [country_code, party_id, uid] = params as [string, string, string];
        own_party(partner, country_code, party_id);
        check_type(url, undefined);
        const record = await deps.tokens.get(uid);
        // status_codes: a GET of an object that does not exist SHOULD answer HTTP 404.
        if (
          record === undefined ||
          !same_party(record, country_code, party_id) ||
          record.ocpi === undefined
        ) {
          throw new OcpiError(404, ocpi_status.unknown_token, `unknown token ${uid}`);
        }
        send_ocpi(res, record.ocpi);
      },
    },
    {
      method: 'PUT',
      path: token_path,
      param_names,
      auth: 'ocpi',
      doc: {
        path: doc_path,
        summary: 'Create or replace a token of your party (201 created, 200 replaced)',
        tags: ['ocpi'],
        parameters: doc_parameters,
        request_body: {
          type: 'object',
          required: [
            'country_code',
            'party_id',
            'uid',
            'type',
            'contract_id',
            'issuer',
            'valid',
            'whitelist',
            'last_updated',
          ],
        },
        responses: { '200': envelope, '201': envelope, '404': envelope },
      },
      async handle({ res, url, params, caller, json_body }) {
        const partner = require_registered(ocpi_caller(caller));
        const [country_code, party_id, uid] = params as [string, string, string];
        own_party(partner, country_code, party_id);
        const token = parse_token(await json_body());
        check_type(url, token.type as string);
        // mod_tokens PUT: the URL's country_code, party_id and uid SHALL equal the object's.
        if (token.uid !== uid) throw invalid_parameter('uid', 'must equal the token_uid in the URL');
        if (
          party_key({ country_code, party_id }) !==
          party_key(token as { country_code: string; party_id: string })
        ) {
          throw invalid_parameter('country_code', 'country_code and party_id must equal those in the URL');
        }
        const existing = await deps.tokens.get(uid);
        if (existing !== undefined && !same_party(existing, country_code, party_id)) {
          throw new OcpiError(
            200,
            ocpi_status.client_error,
            `token uid ${uid} is held by another party`,
            'uid',
          );
        }
        await deps.tokens.put(record_of(token));
        send_ocpi(res, undefined, { http_status: existing === undefined ? 201 : 200 });
      },
    },
    {
      method: 'PATCH',
      path: token_path,
      param_names,
      auth: 'ocpi',
      doc: {
        path: doc_path,
        summary: 'Change fields of a token of your party; last_updated is required',
        tags: ['ocpi'],
        parameters: doc_parameters,
        request_body: { type: 'object', required: ['last_updated'] },
        responses: { '200': envelope, '404': envelope },
      },
      async handle({ res, url, params, caller, json_body }) {
        const partner = require_registered(ocpi_caller(caller));
        const [country_code, party_id, uid] = params as [string, string, string];
        own_party(partner, country_code, party_id);
        const patch = object_body(await json_body());
        // mod_tokens PATCH: "Any request to the PATCH method SHALL contain the last_updated field."
        if (patch.last_updated === undefined) throw invalid_parameter('last_updated', 'required in a PATCH');
        for (const fixed of ['uid', 'country_code', 'party_id'] as const) {
          if (
            patch[fixed] !== undefined &&
            String(patch[fixed]).toUpperCase() !==
              String({ uid, country_code, party_id }[fixed]).toUpperCase()
          ) {
            throw invalid_parameter(fixed, 'cannot be changed by a PATCH');
          }
        }
        const existing = await deps.tokens.get(uid);
        if (
          existing === undefined ||
          !same_party(existing, country_code, party_id) ||
          existing.ocpi === undefined
        ) {
          throw new OcpiError(404, ocpi_status.unknown_token, `unknown token ${uid}`);
        }
        const merged = parse_token({ ...(existing.ocpi as Json), ...patch });
        check_type(url, merged.type as string);
        await deps.tokens.put(record_of(merged));
        send_ocpi(res, undefined);
      },
    },
  ];
}
