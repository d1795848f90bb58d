import { timingSafeEqual } from 'node:crypto';
import type http from 'node:http';
import { dispute_figures } from '../analytics/disputes.js';
import { submit_chargeback_evidence } from '../billing/disputes/chargeback.js';
import {
  type Actor,
  add_message,
  type Bundle,
  type CaseView,
  case_audit,
  case_by_token,
  case_messages,
  claimant_view,
  type DisputeDeps,
  dispute_states,
  generate_bundle,
  get_case,
  list_cases,
  list_meter_keys,
  move_case,
  open_case,
  register_meter_key,
  resolve_case,
  session_token_of,
  stored_bundle,
  validate_meter_key,
  validate_open_request,
  validate_resolution,
} from '../billing/disputes/index.js';
import type { DisputeState } from '../billing/disputes/workflow.js';
import { PaymentProviderError } from '../billing/payments/provider.js';
import { FieldError } from '../core/field-error.js';
import { RateLimiter } from '../core/rate-limit.js';
import { HttpError, int_param, object_body, type Route, type RouteContext, send_json } from './http.js';

/**
 * Billing disputes over HTTP. Support (operator token) works every case; a claimant reaches only
 * their own case, with the capability handed out when it was opened: the header
 * `x-dispute-token` or the cookie `evrate_dispute` (HttpOnly, SameSite=Strict, scoped to the
 * case's path). Never in a URL, which proxies and logs keep: a token in the query is refused.
 * A wrong or missing token answers 404 like a case that does not exist, so ids reveal nothing.
 */
export const dispute_token_header = 'x-dispute-token';
export const dispute_token_cookie = 'evrate_dispute';

export interface DisputeRouteDeps extends DisputeDeps {
  /** Openings and token checks by claimants, per remote address. */
  claimant_requests_per_s?: number;
}

type Json = Record<string, unknown>;

async function guarded(work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (error) {
    if (error instanceof FieldError) {
      const status =
        error.name === 'DisputeStateError'
          ? 409
          : error.name === 'NotFoundError'
            ? 404
            : error.name === 'ConflictError'
              ? 409
              : 400;
      throw new HttpError(status, error.message, error.field);
    }
    throw error;
  }
}

function case_id_of(text: string): number {
  if (!/^[1-9]\d{0,15}$/.test(text)) throw new HttpError(404, 'id: no such dispute case', 'id');
  return Number(text);
}

function token_of(req: http.IncomingMessage, url: URL): string | undefined {
  for (const name of ['token', 'access_token', dispute_token_header, dispute_token_cookie])
    if (url.searchParams.has(name))
      throw new HttpError(
        400,
        `${name}: a case access token is never sent in the URL; use the ${dispute_token_header} header`,
        name,
      );
  const header = req.headers[dispute_token_header];
  if (typeof header === 'string' && header !== '') return header;
  const cookie = req.headers.cookie ?? '';
  for (const part of cookie.split(';')) {
    const [name, ...rest] = part.trim().split('=');
    if (name === dispute_token_cookie) return rest.join('=');
  }
  return undefined;
}

function send_bundle_json(res: http.ServerResponse, bundle: Bundle): void {
  send_json(res, 200, bundle, {
    'content-disposition': `attachment; filename="dispute-${bundle.manifest.case_id}-evidence-${bundle.manifest.version}.json"`,
  });
}

function send_bundle_pdf(res: http.ServerResponse, bundle: Bundle): void {
  const pdf = Buffer.from(bundle.parts['bundle.pdf'] ?? '', 'base64');
  res.writeHead(200, {
    'content-type': 'application/pdf',
    'content-length': String(pdf.length),
    'content-disposition': `attachment; filename="dispute-${bundle.manifest.case_id}-evidence-${bundle.manifest.version}.pdf"`,
    'x-manifest-sha256': bundle.manifest_sha256,
  });
  res.end(pdf);
}

function optional_string(b: Json, field: string, max: number): string | undefined {
  const v = b[field];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.length > max)
    throw new HttpError(400, `${field}: must be a string of at most ${max} characters`, field);
  return v;
}

const case_path = (suffix = '') => ({
  name: 'id',
  in: 'path',
  required: true,
  schema: { type: 'integer' },
  description: `the dispute case${suffix}`,
});
const token_parameter = {
  name: dispute_token_header,
  in: 'header',
  required: false,
  schema: { type: 'string' },
  description: `the case access token given at opening (or the ${dispute_token_cookie} cookie)`,
};
const open_schema = {
  type: 'object',
  required: ['reason', 'amount_disputed_minor', 'message'],
  properties: {
    session_id: { type: 'string' },
    invoice_id: { type: 'integer' },
    line_no: { type: 'integer' },
    payment_reference: { type: 'string' },
    reason: {
      type: 'string',
      enum: [
        'energy',
        'time_idle_fee',
        'tariff',
        'duplicate_charge',
        'failed_session',
        'not_my_session',
        'other',
      ],
    },
    amount_disputed_minor: { type: 'integer', minimum: 0 },
    message: { type: 'string', maxLength: 4000 },
    source: { type: 'string', enum: ['support', 'partner', 'chargeback', 'driver'] },
    opened_by: { type: 'string' },
  },
};

export function dispute_routes(deps: DisputeRouteDeps): Route[] {
  const { ledger } = deps;
  const claimant_rate = new RateLimiter({
    per_s: deps.claimant_requests_per_s ?? 2,
    burst: 20,
    keys_max: 100_000,
  });
  const support: Actor = { kind: 'support', id: 'operator' };

  const limit_claimant = (req: http.IncomingMessage) => {
    const wait_s = claimant_rate.take(req.socket.remoteAddress ?? '');
    if (wait_s > 0)
      throw new HttpError(429, 'too many requests; retry later', undefined, {
        'retry-after': String(wait_s),
      });
  };
  const claimant_case = async (ctx: RouteContext): Promise<CaseView> => {
    limit_claimant(ctx.req);
    const id = case_id_of(ctx.params[0]!);
    const token = token_of(ctx.req, ctx.url);
    const found = await case_by_token(ledger, id, token);
    if (found === undefined) throw new HttpError(404, 'id: no such dispute case for this access token', 'id');
    return found;
  };
  const latest_bundle = async (id: number, actor: Actor, generate_if_none: boolean): Promise<Bundle> => {
    const held = await stored_bundle(ledger, id);
    if (held !== undefined) return held;
    if (!generate_if_none)
      throw new HttpError(404, 'id: no evidence bundle yet; generate one (POST .../bundles)', 'id');
    return await generate_bundle(deps, id, actor);
  };
  const existing = async (id: number): Promise<CaseView> => {
    const found = await get_case(ledger, id);
    if (found === undefined) throw new HttpError(404, 'id: no such dispute case', 'id');
    return found;
  };

  return [
    {
      method: 'POST',
      path: /^\/v1\/disputes$/,
      auth: 'operator',
      doc: {
        path: '/v1/disputes',
        summary:
          'Open a dispute case on a session, an invoice line or a payment (support, a roaming partner or a chargeback)',
        tags: ['disputes'],
        request_body: open_schema,
        responses: {
          '201': { description: 'the case with its findings, and the claimant access token (shown once)' },
          '400': { description: 'invalid request, naming the field' },
          '404': { description: 'no such session, invoice or line' },
        },
      },
      handle: (ctx) =>
        guarded(async () => {
          const body = object_body(await ctx.json_body());
          const source = body.source ?? 'support';
          if (source !== 'support' && source !== 'partner' && source !== 'chargeback' && source !== 'driver')
            throw new HttpError(400, 'source: must be one of support, partner, chargeback, driver', 'source');
          const opened_by = optional_string(body, 'opened_by', 255) ?? 'operator';
          const request = validate_open_request(body, source);
          const actor: Actor = {
            kind: source === 'partner' ? 'partner' : source === 'chargeback' ? 'provider' : 'support',
            id: opened_by,
          };
          const opened = await open_case(deps, request, actor);
          send_json(ctx.res, 201, opened);
        }),
    },
    {
      method: 'GET',
      path: /^\/v1\/disputes$/,
      auth: 'operator',
      doc: {
        path: '/v1/disputes',
        summary:
          'List dispute cases; with due_within_hours, the cases near or past their deadline, soonest first',
        tags: ['disputes'],
        parameters: [
          { name: 'state', in: 'query', schema: { type: 'string', enum: [...dispute_states] } },
          {
            name: 'due_within_hours',
            in: 'query',
            schema: { type: 'integer', minimum: 0, maximum: 8760 },
            description: '0: past their deadline only',
          },
          {
            name: 'limit',
            in: 'query',
            schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
          },
          { name: 'offset', in: 'query', schema: { type: 'integer', minimum: 0, default: 0 } },
        ],
        responses: { '200': { description: 'cases, each with deadline: past, near, ok or null' } },
      },
      handle: (ctx) =>
        guarded(async () => {
          const p = ctx.url.searchParams;
          for (const key of p.keys())
            if (!['state', 'due_within_hours', 'limit', 'offset'].includes(key))
              throw new HttpError(400, `${key}: is not a parameter of this endpoint`, key);
          const state = p.get('state');
          if (state !== null && !dispute_states.includes(state as DisputeState))
            throw new HttpError(400, `state: must be one of ${dispute_states.join(', ')}`, 'state');
          const hours = p.has('due_within_hours') ? int_param(p, 'due_within_hours', 24, 0, 8760) : undefined;
          const cases = await list_cases(ledger, {
            ...(state === null ? {} : { state: state as DisputeState }),
            ...(hours === undefined ? {} : { due_within_ms: hours * 3_600_000 }),
            limit: int_param(p, 'limit', 100, 1, 1000),
            offset: int_param(p, 'offset', 0, 0, 1_000_000),
          });
          send_json(ctx.res, 200, { cases });
        }),
    },
    {
      method: 'GET',
      path: /^\/v1\/disputes\/([^/]+)$/,
      auth: 'operator',
      param_names: ['id'],
      doc: {
        path: '/v1/disputes/{id}',
        summary: 'A dispute case with its findings and message log',
        tags: ['disputes'],
        parameters: [case_path()],
        responses: {
          '200': { description: 'the case and its messages' },
          '404': { description: 'no such case' },
        },
      },
      handle: (ctx) =>
        guarded(async () => {
          const found = await existing(case_id_of(ctx.params[0]!));
          send_json(ctx.res, 200, { case: found, messages: await case_messages(ledger, found.id) });
        }),
    },
    {
      method: 'POST',
      path: /^\/v1\/disputes\/([^/]+)\/transitions$/,
      auth: 'operator',
      param_names: ['id'],
      doc: {
        path: '/v1/disputes/{id}/transitions',
        summary:
          'Move a case: investigating, proposed_resolution (with a proposal) or escalated (with the outside party)',
        tags: ['disputes'],
        parameters: [case_path()],
        request_body: {
          type: 'object',
          required: ['to'],
          properties: {
            to: { type: 'string', enum: ['investigating', 'proposed_resolution', 'escalated'] },
            note: { type: 'string' },
            proposal: { type: 'object' },
            outside_party: { type: 'string' },
          },
        },
        responses: {
          '200': { description: 'the case in its new state with its new deadline' },
          '400': { description: 'invalid request, naming the field' },
          '409': { description: 'the case is in a state that does not allow the move (named in the body)' },
        },
      },
      handle: (ctx) =>
        guarded(async () => {
          const id = case_id_of(ctx.params[0]!);
          await existing(id);
          const body = object_body(await ctx.json_body());
          const to = body.to;
          if (typeof to !== 'string' || !dispute_states.includes(to as DisputeState))
            throw new HttpError(400, `to: must be one of ${dispute_states.join(', ')}`, 'to');
          const proposal = body.proposal;
          if (
            proposal !== undefined &&
            (typeof proposal !== 'object' ||
              proposal === null ||
              Array.isArray(proposal) ||
              JSON.stringify(proposal).length > 4000)
          )
            throw new HttpError(
              400,
              'proposal: must be a JSON object of at most 4000 characters',
              'proposal',
            );
          const outside_party = optional_string(body, 'outside_party', 255);
          const view = await move_case(
            deps,
            id,
            {
              to: to as DisputeState,
              note: optional_string(body, 'note', 2000) ?? '',
              ...(proposal === undefined ? {} : { proposal: proposal as Json }),
              ...(outside_party === undefined ? {} : { outside_party }),
            },
            support,
          );
          send_json(ctx.res, 200, { case: view });
        }),
    },
    {
      method: 'POST',
      path: /^\/v1\/disputes\/([^/]+)\/messages$/,
      auth: 'operator',
      param_names: ['id'],
      doc: {
        path: '/v1/disputes/{id}/messages',
        summary: 'Write to the claimant in the case message log',
        tags: ['disputes'],
        parameters: [case_path()],
        request_body: {
          type: 'object',
          required: ['body'],
          properties: { body: { type: 'string', maxLength: 4000 } },
        },
        responses: { '201': { description: 'the message number' }, '400': { description: 'invalid body' } },
      },
      handle: (ctx) =>
        guarded(async () => {
          const id = case_id_of(ctx.params[0]!);
          await existing(id);
          const body = object_body(await ctx.json_body());
          send_json(ctx.res, 201, {
            seq: await add_message(ledger, id, 'support', 'operator', body.body as string),
          });
        }),
    },
    {
      method: 'GET',
      path: /^\/v1\/disputes\/([^/]+)\/audit$/,
      auth: 'operator',
      param_names: ['id'],
      doc: {
        path: '/v1/disputes/{id}/audit',
        summary: 'The append-only audit trail of a case: who did what, when, and what changed',
        tags: ['disputes'],
        parameters: [case_path()],
        responses: { '200': { description: 'audit entries, oldest first' } },
      },
      handle: (ctx) =>
        guarded(async () => {
          const id = case_id_of(ctx.params[0]!);
          await existing(id);
          send_json(ctx.res, 200, { audit: await case_audit(ledger, id) });
        }),
    },
    {
      method: 'POST',
      path: /^\/v1\/disputes\/([^/]+)\/bundles$/,
      auth: 'operator',
      param_names: ['id'],
      doc: {
        path: '/v1/disputes/{id}/bundles',
        summary: 'Generate and store a new evidence bundle of the case (JSON parts, PDF, SHA-256 manifest)',
        tags: ['disputes'],
        parameters: [case_path()],
        responses: { '201': { description: 'the manifest and its SHA-256' } },
      },
      handle: (ctx) =>
        guarded(async () => {
          const id = case_id_of(ctx.params[0]!);
          await existing(id);
          const bundle = await generate_bundle(deps, id, support);
          send_json(ctx.res, 201, { manifest: bundle.manifest, manifest_sha256: bundle.manifest_sha256 });
        }),
    },
    {
      method: 'GET',
      path: /^\/v1\/disputes\/([^/]+)\/bundle\.(json|pdf)$/,
      auth: 'operator',
      param_names: ['id', 'format'],
      doc: {
        path: '/v1/disputes/{id}/bundle.{format}',
        summary: 'The latest evidence bundle of the case as JSON (manifest and every part) or its PDF',
        tags: ['disputes'],
        parameters: [
          case_path(),
          { name: 'format', in: 'path', required: true, schema: { type: 'string', enum: ['json', 'pdf'] } },
        ],
        responses: {
          '200': { description: 'the bundle' },
          '404': { description: 'no case, or no bundle yet' },
        },
      },
      handle: (ctx) =>
        guarded(async () => {
          const id = case_id_of(ctx.params[0]!);
          await existing(id);
          const bundle = await latest_bundle(id, support, false);
          if (ctx.params[1] === 'pdf') send_bundle_pdf(ctx.res, bundle);
          else send_bundle_json(ctx.res, bundle);
        }),
    },
    {
      method: 'POST',
      path: /^\/v1\/disputes\/([^/]+)\/resolution$/,
      auth: 'operator',
      param_names: ['id'],
      doc: {
        path: '/v1/disputes/{id}/resolution',
        summary:
          'Resolve a case: accepted or partly_accepted (re-rate and/or goodwill, credited by a credit note), rejected with a reason, or a chargeback outcome',
        tags: ['disputes'],
        parameters: [case_path()],
        request_body: {
          type: 'object',
          required: ['outcome', 'reason'],
          properties: {
            outcome: {
              type: 'string',
              enum: ['accepted', 'partly_accepted', 'rejected', 'chargeback_won', 'chargeback_lost'],
            },
            reason: { type: 'string' },
            rerate: {
              type: 'object',
              properties: { tariff_id: { type: 'string' }, tariff_version: { type: 'integer' } },
            },
            goodwill_minor: { type: 'integer', minimum: 1, description: 'net excl. VAT, minor units' },
          },
        },
        responses: {
          '200': {
            description:
              'the resolved case, the re-rating (previous total, new total, difference) and the credit note',
          },
          '400': { description: 'invalid request, naming the field' },
          '409': { description: 'the case is already resolved' },
        },
      },
      handle: (ctx) =>
        guarded(async () => {
          const id = case_id_of(ctx.params[0]!);
          await existing(id);
          const request = validate_resolution(await ctx.json_body());
          send_json(ctx.res, 200, await resolve_case(deps, id, request, support));
        }),
    },
    {
      method: 'POST',
      path: /^\/v1\/disputes\/([^/]+)\/chargeback-evidence$/,
      auth: 'operator',
      param_names: ['id'],
      doc: {
        path: '/v1/disputes/{id}/chargeback-evidence',
        summary:
          "Submit a chargeback case's evidence bundle to the payment provider (Stripe dispute evidence: the session, the findings and the bundle's manifest digests), once per case",
        tags: ['disputes'],
        parameters: [case_path()],
        responses: {
          '200': { description: '{case, manifest_sha256, provider_status, evidence}' },
          '400': { description: 'not a chargeback case, or no provider configured' },
          '409': { description: 'the case is resolved' },
          '502': { description: 'the provider refused the evidence' },
          '503': { description: 'the provider did not answer: submit again (same key)' },
        },
      },
      handle: (ctx) =>
        guarded(async () => {
          const id = case_id_of(ctx.params[0]!);
          await existing(id);
          try {
            send_json(ctx.res, 200, await submit_chargeback_evidence(deps, id, support));
          } catch (error) {
            if (error instanceof PaymentProviderError)
              throw new HttpError(
                error.code === 'unavailable' ? 503 : 502,
                `the payment provider refused: ${error.message}`,
              );
            throw error;
          }
        }),
    },
    {
      method: 'PUT',
      path: /^\/v1\/meter-keys\/([^/]+)\/([^/]+)$/,
      auth: 'operator',
      param_names: ['charge_point_id', 'evse_id'],
      doc: {
        path: '/v1/meter-keys/{charge_point_id}/{evse_id}',
        summary:
          "Register the public key of a charger's meter (EVSE 0: every EVSE of the charge point); older keys stay valid for older readings",
        tags: ['disputes'],
        parameters: [
          { name: 'charge_point_id', in: 'path', required: true, schema: { type: 'string' } },
          { name: 'evse_id', in: 'path', required: true, schema: { type: 'integer', minimum: 0 } },
        ],
        request_body: {
          type: 'object',
          required: ['public_key'],
          properties: {
            public_key: { type: 'string', description: 'DER SubjectPublicKeyInfo as hex or base64, or PEM' },
            meter_serial: { type: 'string' },
          },
        },
        responses: {
          '200': { description: 'the registered key with its curve' },
          '400': { description: 'not a usable key' },
        },
      },
      handle: (ctx) =>
        guarded(async () => {
          const evse = ctx.params[1]!;
          if (!/^\d{1,4}$/.test(evse))
            throw new HttpError(400, 'evse_id: must be an integer from 0 to 1000', 'evse_id');
          const request = validate_meter_key(await ctx.json_body(), ctx.params[0]!, Number(evse));
          send_json(ctx.res, 200, await register_meter_key(ledger, request, 'operator'));
        }),
    },
    {
      method: 'GET',
      path: /^\/v1\/meter-keys$/,
      auth: 'operator',
      doc: {
        path: '/v1/meter-keys',
        summary: 'The registered meter public keys',
        tags: ['disputes'],
        parameters: [{ name: 'charge_point_id', in: 'query', schema: { type: 'string' } }],
        responses: { '200': { description: 'keys' } },
      },
      handle: (ctx) =>
        guarded(async () => {
          send_json(ctx.res, 200, {
            keys: await list_meter_keys(ledger, ctx.url.searchParams.get('charge_point_id') ?? undefined),
          });
        }),
    },
    {
      method: 'GET',
      path: /^\/v1\/analytics\/disputes$/,
      auth: 'operator',
      doc: {
        path: '/v1/analytics/disputes',
        summary:
          'Dispute figures from ClickHouse: cases by reason, station and outcome, amounts, time to resolve',
        tags: ['disputes', 'analytics'],
        parameters: [
          { name: 'from', in: 'query', required: true, schema: { type: 'string', format: 'date-time' } },
          { name: 'to', in: 'query', required: true, schema: { type: 'string', format: 'date-time' } },
        ],
        responses: { '200': { description: 'figures' }, '400': { description: 'bad time range' } },
      },
      handle: (ctx) =>
        guarded(async () => {
          if (deps.store === undefined) throw new HttpError(404, 'not found');
          const time = (name: string) => {
            const text = ctx.url.searchParams.get(name) ?? '';
            const ms = Date.parse(text);
            if (
              !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(text) ||
              Number.isNaN(ms)
            )
              throw new HttpError(400, `${name}: must be an RFC 3339 date-time with a zone`, name);
            return ms;
          };
          const from = time('from');
          const to = time('to');
          if (to <= from) throw new HttpError(400, 'to: must be after from', 'to');
          send_json(ctx.res, 200, await dispute_figures(deps.store, from, to));
        }),
    },

    // The claimant's side: opening from the receipt, then only their own case by its token.
    {
      method: 'POST',
      path: /^\/v1\/claimant\/disputes$/,
      auth: 'self',
      doc: {
        path: '/v1/claimant/disputes',
        summary:
          "A driver opens a dispute on their session, proving it with the session's token (id_tag); answers the case access token",
        tags: ['disputes', 'claimant'],
        request_body: {
          type: 'object',
          required: ['session_id', 'id_tag', 'reason', 'amount_disputed_minor', 'message'],
          properties: {
            session_id: { type: 'string' },
            id_tag: { type: 'string' },
            reason: open_schema.properties.reason,
            amount_disputed_minor: { type: 'integer', minimum: 0 },
            message: { type: 'string', maxLength: 4000 },
          },
        },
        responses: {
          '201': { description: 'the case and its access token (also set as an HttpOnly cookie)' },
          '400': { description: 'invalid request, naming the field' },
          '404': { description: 'no such session for this token' },
          '429': { description: 'too many attempts' },
        },
      },
      handle: (ctx) =>
        guarded(async () => {
          limit_claimant(ctx.req);
          const body = object_body(await ctx.json_body());
          if (typeof body.session_id !== 'string')
            throw new HttpError(400, 'session_id: required', 'session_id');
          if (typeof body.id_tag !== 'string' || body.id_tag.length === 0 || body.id_tag.length > 255)
            throw new HttpError(400, 'id_tag: required: the token the session was started with', 'id_tag');
          const { id_tag: _t, ...rest } = body;
          const request = validate_open_request(rest, 'driver');
          const held = await session_token_of(deps, body.session_id);
          const a = Buffer.from(held ?? '');
          const b = Buffer.from(body.id_tag);
          if (held === undefined || held === '' || a.length !== b.length || !timingSafeEqual(a, b))
            throw new HttpError(404, 'session_id: no such session for this token', 'session_id');
          const opened = await open_case(deps, request, { kind: 'claimant', id: 'claimant' });
          send_json(
            ctx.res,
            201,
            { case: claimant_view(opened.case), access_token: opened.access_token },
            {
              'set-cookie': `${dispute_token_cookie}=${opened.access_token}; Path=/v1/claimant/disputes/${opened.case.id}; HttpOnly; Secure; SameSite=Strict; Max-Age=31536000`,
              'cache-control': 'no-store',
            },
          );
        }),
    },
    {
      method: 'GET',
      path: /^\/v1\/claimant\/disputes\/([^/]+)$/,
      auth: 'self',
      param_names: ['id'],
      doc: {
        path: '/v1/claimant/disputes/{id}',
        summary: 'The claimant reads their own case and its messages',
        tags: ['disputes', 'claimant'],
        parameters: [case_path(), token_parameter],
        responses: {
          '200': { description: 'the case' },
          '404': { description: 'no such case for this token' },
        },
      },
      handle: (ctx) =>
        guarded(async () => {
          const found = await claimant_case(ctx);
          send_json(
            ctx.res,
            200,
            { case: claimant_view(found), messages: await case_messages(ledger, found.id) },
            { 'cache-control': 'no-store' },
          );
        }),
    },
    {
      method: 'POST',
      path: /^\/v1\/claimant\/disputes\/([^/]+)\/messages$/,
      auth: 'self',
      param_names: ['id'],
      doc: {
        path: '/v1/claimant/disputes/{id}/messages',
        summary: 'The claimant writes to support',
        tags: ['disputes', 'claimant'],
        parameters: [case_path(), token_parameter],
        request_body: {
          type: 'object',
          required: ['body'],
          properties: { body: { type: 'string', maxLength: 4000 } },
        },
        responses: {
          '201': { description: 'the message number' },
          '404': { description: 'no such case for this token' },
        },
      },
      handle: (ctx) =>
        guarded(async () => {
          const found = await claimant_case(ctx);
          const body = object_body(await ctx.json_body());
          send_json(ctx.res, 201, {
            seq: await add_message(ledger, found.id, 'claimant', 'claimant', body.body as string),
          });
        }),
    },
    {
      method: 'GET',
      path: /^\/v1\/claimant\/disputes\/([^/]+)\/bundle\.(json|pdf)$/,
      auth: 'self',
      param_names: ['id', 'format'],
      doc: {
        path: '/v1/claimant/disputes/{id}/bundle.{format}',
        summary: "The evidence bundle of the claimant's own session (generated on first request)",
        tags: ['disputes', 'claimant'],
        parameters: [
          case_path(),
          { name: 'format', in: 'path', required: true, schema: { type: 'string', enum: ['json', 'pdf'] } },
          token_parameter,
        ],
        responses: {
          '200': { description: 'the bundle' },
          '404': { description: 'no such case for this token' },
        },
      },
      handle: (ctx) =>
        guarded(async () => {
          const found = await claimant_case(ctx);
          const bundle = await latest_bundle(found.id, { kind: 'claimant', id: 'claimant' }, true);
          if (ctx.params[1] === 'pdf') send_bundle_pdf(ctx.res, bundle);
          else send_bundle_json(ctx.res, bundle);
        }),
    },
  ];
}
