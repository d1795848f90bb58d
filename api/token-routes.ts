import type { TokenRecord, TokenStore, TokenType, Whitelist } from '../core/tokens.js';
import { token_uid_length_max } from '../core/tokens.js';
import { type Plan, type PlanStore, PlanValidationError, validate_plan } from '../rating/plans.js';
import type { TariffStore } from '../rating/tariff-store.js';
import { HttpError, object_body, type Route, send_json } from './http.js';

export interface TokenRouteDeps {
  tokens: TokenStore;
  plans: PlanStore;
  tariffs: TariffStore;
  /** The party operator tokens belong to (OCPI country code and party id of this CPO). */
  own_party: { country_code: string; party_id: string };
}

type Json = Record<string, unknown>;

const token_types: readonly TokenType[] = ['AD_HOC_USER', 'APP_USER', 'OTHER', 'RFID'];
const whitelists: readonly Whitelist[] = ['ALWAYS', 'ALLOWED', 'ALLOWED_OFFLINE', 'NEVER'];
const token_fields = new Set(['type', 'contract_id', 'valid', 'whitelist', 'plan_id', 'group_id']);

function id_param(value: string, field: string, length_max: number): string {
  if (value.length === 0 || value.length > length_max || !/^[\x21-\x7e]+$/.test(value)) {
    throw new HttpError(400, `${field}: must be 1 to ${length_max} printable ASCII characters`, field);
  }
  return value;
}

/**
 * The operator's own tokens (RFID cards, app users): created, changed and blocked here; partners'
 * tokens arrive over OCPI. `valid: false` blocks a token: chargers get Blocked within the token
 * cache's TTL. The plan named must exist, so a typo cannot silently price a driver at list price.
 */
async function token_of(deps: TokenRouteDeps, uid: string, body: Json): Promise<TokenRecord> {
  for (const key of Object.keys(body)) {
    if (!token_fields.has(key)) throw new HttpError(400, `${key}: is not a token field`, key);
  }
  const type = body.type ?? 'RFID';
  if (typeof type !== 'string' || !token_types.includes(type as TokenType)) {
    throw new HttpError(400, `type: must be one of ${token_types.join(', ')}`, 'type');
  }
  const whitelist = body.whitelist ?? 'ALLOWED';
  if (typeof whitelist !== 'string' || !whitelists.includes(whitelist as Whitelist)) {
    throw new HttpError(400, `whitelist: must be one of ${whitelists.join(', ')}`, 'whitelist');
  }
  const valid = body.valid ?? true;
  if (typeof valid !== 'boolean') throw new HttpError(400, 'valid: must be true or false', 'valid');
  const text = (field: string, length_max: number): string | undefined => {
    const value = body[field];
    if (value === undefined) return undefined;
    if (typeof value !== 'string') throw new HttpError(400, `${field}: must be a string`, field);
    return id_param(value, field, length_max);
  };
  const contract_id = text('contract_id', 36) ?? uid;
  const plan_id = text('plan_id', 36);
  const group_id = text('group_id', 36);
  if (plan_id !== undefined && (await deps.plans.get(plan_id)) === undefined) {
    throw new HttpError(400, `plan_id: plan ${plan_id} does not exist`, 'plan_id');
  }
  return {
    uid,
    type: type as TokenType,
    contract_id,
    country_code: deps.own_party.country_code,
    party_id: deps.own_party.party_id,
    valid,
    whitelist: whitelist as Whitelist,
    ...(plan_id === undefined ? {} : { plan_id }),
    ...(group_id === undefined ? {} : { group_id }),
    source: 'operator',
    last_updated: new Date().toISOString(),
  };
}

const uid_parameter = { name: 'uid', in: 'path', required: true, schema: { type: 'string', maxLength: 36 } };
const plan_id_parameter = {
  name: 'id',
  in: 'path',
  required: true,
  schema: { type: 'string', maxLength: 36 },
};
const json_ok = (description: string) => ({ description, content: { 'application/json': {} } });

/** `/v1/tokens` and `/v1/plans`: the drivers' tokens and the membership plans they belong to. */
export function token_routes(deps: TokenRouteDeps): Route[] {
  return [
    {
      method: 'PUT',
      path: /^\/v1\/tokens\/([^/]+)$/,
      param_names: ['uid'],
      auth: 'operator',
      doc: {
        path: '/v1/tokens/{uid}',
        summary: 'Create or change a token (RFID card, app user); valid=false blocks it',
        tags: ['tokens'],
        parameters: [uid_parameter],
        request_body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            type: { enum: token_types },
            contract_id: { type: 'string' },
            valid: { type: 'boolean' },
            whitelist: { enum: whitelists },
            plan_id: { type: 'string' },
            group_id: { type: 'string' },
          },
        },
        responses: { '200': json_ok('the stored token'), '400': json_ok('a field is not valid') },
      },
      async handle({ res, params, json_body }) {
        const uid = id_param(params[0]!, 'uid', token_uid_length_max);
        const record = await token_of(deps, uid, object_body(await json_body()));
        await deps.tokens.put(record);
        send_json(res, 200, record);
      },
    },
    {
      method: 'GET',
      path: /^\/v1\/tokens\/([^/]+)$/,
      param_names: ['uid'],
      auth: 'operator',
      doc: {
        path: '/v1/tokens/{uid}',
        summary: 'One token with its plan',
        tags: ['tokens'],
        parameters: [uid_parameter],
        responses: { '200': json_ok('the token'), '404': json_ok('no such token') },
      },
      async handle({ res, params }) {
        const uid = id_param(params[0]!, 'uid', token_uid_length_max);
        const record = await deps.tokens.get(uid);
        if (record === undefined) throw new HttpError(404, `token ${uid} not found`);
        send_json(res, 200, record);
      },
    },
    {
      method: 'GET',
      path: /^\/v1\/tokens$/,
      auth: 'operator',
      doc: {
        path: '/v1/tokens',
        summary: 'Every token, operator and partner',
        tags: ['tokens'],
        responses: { '200': json_ok('the tokens') },
      },
      async handle({ res }) {
        send_json(res, 200, { tokens: await deps.tokens.list() });
      },
    },
    {
      method: 'PUT',
      path: /^\/v1\/plans\/([^/]+)$/,
      param_names: ['id'],
      auth: 'operator',
      doc: {
        path: '/v1/plans/{id}',
        summary: 'Create or change a membership plan (members tariff, discounts, session cap, monthly fee)',
        tags: ['plans'],
        parameters: [plan_id_parameter],
        request_body: {
          type: 'object',
          required: ['id', 'name', 'currency'],
          properties: {
            id: { type: 'string' },
            name: { type: 'string' },
            currency: { type: 'string' },
            tariff_id: { type: 'string' },
            discount_percent: { type: 'number' },
            discount_fixed_excl_vat: { type: 'number' },
            session_cap_excl_vat: { type: 'number' },
            monthly_fee_excl_vat: { type: 'number' },
          },
        },
        responses: { '200': json_ok('the stored plan'), '400': json_ok('a field is not valid') },
      },
      async handle({ res, params, json_body }) {
        const id = id_param(params[0]!, 'id', 36);
        let plan: Plan;
        try {
          plan = validate_plan(await json_body());
        } catch (error) {
          if (error instanceof PlanValidationError) throw new HttpError(400, error.message, error.field);
          throw error;
        }
        if (plan.id !== id) throw new HttpError(400, `id: must equal the id in the URL (${id})`, 'id');
        if (plan.tariff_id !== undefined) {
          const tariff = await deps.tariffs.current(plan.tariff_id);
          if (tariff === undefined) {
            throw new HttpError(400, `tariff_id: tariff ${plan.tariff_id} does not exist`, 'tariff_id');
          }
          const has_amounts =
            plan.discount_fixed_excl_vat !== undefined || plan.session_cap_excl_vat !== undefined;
          if (has_amounts && tariff.tariff.currency !== plan.currency) {
            throw new HttpError(
              400,
              `currency: the plan's amounts are in ${plan.currency}, its tariff in ${tariff.tariff.currency}`,
              'currency',
            );
          }
        }
        await deps.plans.put(plan);
        send_json(res, 200, plan);
      },
    },
    {
      method: 'GET',
      path: /^\/v1\/plans\/([^/]+)$/,
      param_names: ['id'],
      auth: 'operator',
      doc: {
        path: '/v1/plans/{id}',
        summary: 'One membership plan',
        tags: ['plans'],
        parameters: [plan_id_parameter],
        responses: { '200': json_ok('the plan'), '404': json_ok('no such plan') },
      },
      async handle({ res, params }) {
        const id = id_param(params[0]!, 'id', 36);
        const plan = await deps.plans.get(id);
        if (plan === undefined) throw new HttpError(404, `plan ${id} not found`);
        send_json(res, 200, plan);
      },
    },
    {
      method: 'GET',
      path: /^\/v1\/plans$/,
      auth: 'operator',
      doc: {
        path: '/v1/plans',
        summary: 'Every membership plan',
        tags: ['plans'],
        responses: { '200': json_ok('the plans') },
      },
      async handle({ res }) {
        send_json(res, 200, { plans: await deps.plans.list() });
      },
    },
  ];
}
