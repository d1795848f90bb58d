import { insert_tariff_version, list_rated_sessions } from '../analytics/sessions.js';
import type { Store } from '../analytics/store.js';
import { type ChargePointRegistry, password_length_max, password_length_min } from '../core/charge-points.js';
import { TariffValidationError, validate_tariff } from '../rating/tariff.js';
import type { TariffStore } from '../rating/tariff-store.js';
import { HttpError, int_param, type Route, send_json } from './http.js';

export interface OperatorDeps {
  store: Store;
  tariffs: TariffStore;
  charge_points: ChargePointRegistry;
}

const page_limit_max = 1000;

/** The operator API's `/v1` routes for sessions, tariffs and charge point credentials. */
export function operator_routes(deps: OperatorDeps): Route[] {
  return [
    {
      method: 'GET',
      path: /^\/v1\/sessions$/,
      auth: 'operator',
      async handle({ res, url }) {
        const charge_point_id = url.searchParams.get('charge_point_id') ?? undefined;
        if (charge_point_id !== undefined && (charge_point_id.length === 0 || charge_point_id.length > 48)) {
          throw new HttpError(400, 'charge_point_id must be 1 to 48 characters', 'charge_point_id');
        }
        const limit = int_param(url.searchParams, 'limit', 100, 1, page_limit_max);
        const offset = int_param(url.searchParams, 'offset', 0, 0, 10_000_000);
        const sessions = await list_rated_sessions(deps.store, {
          ...(charge_point_id === undefined ? {} : { charge_point_id }),
          limit,
          offset,
        });
        send_json(res, 200, {
          sessions: sessions.map((s) => ({ ...s, breakdown: JSON.parse(s.breakdown) as unknown })),
          limit,
          offset,
        });
      },
    },
    {
      method: 'PUT',
      path: /^\/v1\/charge-points\/([^/]+)$/,
      param_names: ['charge_point_id'],
      auth: 'operator',
      async handle({ res, params, json_body }) {
        const charge_point_id = params[0]!;
        if (!/^[\x21-\x7e]{1,48}$/.test(charge_point_id)) {
          throw new HttpError(
            400,
            'charge point id must be 1 to 48 printable ASCII characters',
            'charge_point_id',
          );
        }
        const body = await json_body();
        const password =
          typeof body === 'object' && body !== null ? (body as { password?: unknown }).password : undefined;
        if (
          typeof password !== 'string' ||
          password.length < password_length_min ||
          password.length > password_length_max
        ) {
          throw new HttpError(
            400,
            `password: must be a string of ${password_length_min} to ${password_length_max} characters (OCPP AuthorizationKey)`,
            'password',
          );
        }
        await deps.charge_points.set_password(charge_point_id, password);
        send_json(res, 200, { charge_point_id, password_set: true });
      },
    },
    {
      method: 'GET',
      path: /^\/v1\/tariffs\/([^/]+)$/,
      param_names: ['id'],
      auth: 'operator',
      async handle({ res, params }) {
        const tariff_id = params[0]!;
        const current = await deps.tariffs.current(tariff_id);
        if (current === undefined) throw new HttpError(404, `tariff ${tariff_id} not found`);
        send_json(res, 200, current);
      },
    },
    {
      method: 'PUT',
      path: /^\/v1\/tariffs\/([^/]+)$/,
      param_names: ['id'],
      auth: 'operator',
      async handle({ res, params, json_body }) {
        const tariff_id = params[0]!;
        const parsed = await json_body();
        let tariff: ReturnType<typeof validate_tariff>;
        try {
          tariff = validate_tariff(parsed);
        } catch (error) {
          if (error instanceof TariffValidationError) throw new HttpError(400, error.message, error.field);
          throw error;
        }
        if (tariff.id !== tariff_id) {
          throw new HttpError(400, `id: must equal the id in the URL (${tariff_id})`, 'id');
        }
        const version = await deps.tariffs.put(tariff);
        await insert_tariff_version(deps.store, version);
        send_json(res, 200, version);
      },
    },
  ];
}
