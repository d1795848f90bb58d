import type { KV } from '@nats-io/kv';
import { insert_tariff_version, list_rated_sessions, rated_session_history } from '../analytics/sessions.js';
import { ident, sql } from '../analytics/sql.js';
import type { Store } from '../analytics/store.js';
import {
  type ChargePointProfile,
  type ChargePointRegistry,
  password_length_max,
  password_length_min,
} from '../core/charge-points.js';
import type { SessionState } from '../rating/session.js';
import { type CpoParty, normalise_tariff, TariffValidationError } from '../rating/tariff.js';
import type { TariffStore } from '../rating/tariff-store.js';
import { HttpError, int_param, object_body, type Route, send_json } from './http.js';

export interface OperatorDeps {
  store: Store;
  tariffs: TariffStore;
  charge_points: ChargePointRegistry;
  /** The rating service's open sessions (NATS KV bucket evrate_sessions_open). */
  open_sessions: KV;
  /** Our CPO party (OCPI_COUNTRY_CODE, OCPI_PARTY_ID): the owner of an OCPI 2.1.1 tariff put here. */
  cpo: CpoParty;
}

/** The part of the rating service's open-session record read here. */
type OpenSession = Pick<SessionState, 'meta' | 'closed' | 'running_cost' | 'last_activity_ms'>;

const page_limit_max = 1000;
const charge_points_listed_max = 100_000;
const open_sessions_scanned_max = 100_000;
const tariffs_listed_max = 10_000;

type Json = Record<string, unknown>;

function charge_point_param(value: string): string {
  if (!/^[\x21-\x7e]{1,48}$/.test(value)) {
    throw new HttpError(400, 'charge point id must be 1 to 48 printable ASCII characters', 'charge_point_id');
  }
  return value;
}

const charge_point_fields = new Set([
  'password',
  'tariff_id',
  'time_zone',
  'station_id',
  'max_power_w',
  'location',
]);
/** 10 MW: above any charger built (megawatt charging is about 3.75 MW). */
const max_power_w_max = 10_000_000;
const location_fields = [
  'name',
  'address',
  'city',
  'postal_code',
  'country',
  'latitude',
  'longitude',
] as const;

/** A charge point's profile from a PUT body; fields left out keep their previous value. */
async function profile_of(
  deps: OperatorDeps,
  charge_point_id: string,
  body: Json,
  previous: ChargePointProfile | undefined,
): Promise<ChargePointProfile> {
  const profile: ChargePointProfile = { ...previous, charge_point_id, updated_at_ms: Date.now() };
  const text = (field: string, value: unknown, length_max: number): string => {
    if (typeof value !== 'string' || value.length === 0 || value.length > length_max) {
      throw new HttpError(400, `${field}: must be a string of 1 to ${length_max} characters`, field);
    }
    return value;
  };
  if (body.tariff_id !== undefined) {
    const tariff_id = text('tariff_id', body.tariff_id, 36);
    if ((await deps.tariffs.current(tariff_id)) === undefined) {
      throw new HttpError(400, `tariff_id: tariff ${tariff_id} does not exist`, 'tariff_id');
    }
    profile.tariff_id = tariff_id;
  }
  if (body.time_zone !== undefined) {
    const time_zone = text('time_zone', body.time_zone, 64);
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: time_zone });
    } catch {
      throw new HttpError(400, `time_zone: unknown IANA time zone ${JSON.stringify(time_zone)}`, 'time_zone');
    }
    profile.time_zone = time_zone;
  }
  if (body.station_id !== undefined) profile.station_id = text('station_id', body.station_id, 48);
  if (body.max_power_w !== undefined) {
    const w = body.max_power_w;
    if (typeof w !== 'number' || !Number.isInteger(w) || w < 1 || w > max_power_w_max) {
      throw new HttpError(400, `max_power_w: must be an integer from 1 to ${max_power_w_max}`, 'max_power_w');
    }
    profile.max_power_w = w;
  }
  if (body.location !== undefined) {
    const location = object_body(body.location);
    const out: NonNullable<ChargePointProfile['location']> = {};
    for (const key of Object.keys(location)) {
      if (!(location_fields as readonly string[]).includes(key)) {
        throw new HttpError(400, `location.${key}: is not a location field`, `location.${key}`);
      }
      out[key as (typeof location_fields)[number]] = text(`location.${key}`, location[key], 255);
    }
    if (out.country !== undefined && !/^[A-Z]{3}$/.test(out.country)) {
      throw new HttpError(400, 'location.country: must be ISO 3166-1 alpha-3', 'location.country');
    }
    for (const key of ['latitude', 'longitude'] as const) {
      if (out[key] !== undefined && !/^-?\d{1,3}\.\d{5,7}$/.test(out[key]!)) {
        throw new HttpError(
          400,
          `location.${key}: must be a decimal like 52.37403 (OCPI GeoLocation)`,
          `location.${key}`,
        );
      }
    }
    profile.location = out;
  }
  return profile;
}

/** The latest connection event of each charge point, from what ingest recorded. */
async function connection_status(
  store: Store,
  ids: readonly string[],
): Promise<Map<string, { connected: boolean; since_ms: number; node_id: string }>> {
  const status = new Map<string, { connected: boolean; since_ms: number; node_id: string }>();
  if (ids.length === 0) return status;
  const rows = await store.query<{
    charge_point_id: string;
    is_connected: number | string;
    last_at_ms: number | string;
    last_node_id: string;
  }>(
    `SELECT charge_point_id, argMax(connected, at_ms) AS is_connected, max(at_ms) AS last_at_ms,
       argMax(node_id, at_ms) AS last_node_id
     FROM ${sql`${ident(store.database)}.charger_connections`}
     WHERE charge_point_id IN (${ids.map((id) => sql`${id}`.text).join(', ')})
     GROUP BY charge_point_id`,
  );
  for (const row of rows) {
    status.set(row.charge_point_id, {
      connected: Number(row.is_connected) === 1,
      since_ms: Number(row.last_at_ms),
      node_id: row.last_node_id,
    });
  }
  return status;
}

function time_param(params: URLSearchParams, name: string): number | undefined {
  const raw = params.get(name);
  if (raw === null) return undefined;
  const ms = Date.parse(raw);
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(raw) || Number.isNaN(ms)) {
    throw new HttpError(
      400,
      `${name} must be an RFC 3339 date-time with a zone, e.g. 2026-11-01T00:00:00Z`,
      name,
    );
  }
  return ms;
}

function text_param(params: URLSearchParams, name: string, length_max: number): string | undefined {
  const value = params.get(name) ?? undefined;
  if (value !== undefined && (value.length === 0 || value.length > length_max)) {
    throw new HttpError(400, `${name} must be 1 to ${length_max} characters`, name);
  }
  return value;
}

const session_parameters = [
  { name: 'charge_point_id', in: 'query', schema: { type: 'string' } },
  { name: 'id_tag', in: 'query', schema: { type: 'string' } },
  { name: 'from', in: 'query', schema: { type: 'string', format: 'date-time' } },
  { name: 'to', in: 'query', schema: { type: 'string', format: 'date-time' } },
  { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: page_limit_max } },
  { name: 'offset', in: 'query', schema: { type: 'integer', minimum: 0 } },
];

/** The operator API's `/v1` routes for sessions, tariffs and charge point credentials. */
export function operator_routes(deps: OperatorDeps): Route[] {
  return [
    {
      method: 'GET',
      path: /^\/v1\/sessions$/,
      auth: 'operator',
      doc: {
        path: '/v1/sessions',
        summary:
          'Rated sessions by charge point, token and start time, oldest stop first, with their breakdown',
        tags: ['sessions'],
        parameters: session_parameters,
        responses: {
          '200': { description: 'the sessions' },
          '400': { description: 'a parameter is not valid (the field is named)' },
        },
      },
      async handle({ res, url }) {
        const charge_point_id = text_param(url.searchParams, 'charge_point_id', 48);
        const id_tag = text_param(url.searchParams, 'id_tag', 36);
        const from_ms = time_param(url.searchParams, 'from');
        const to_ms = time_param(url.searchParams, 'to');
        const limit = int_param(url.searchParams, 'limit', 100, 1, page_limit_max);
        const offset = int_param(url.searchParams, 'offset', 0, 0, 10_000_000);
        const sessions = await list_rated_sessions(deps.store, {
          ...(charge_point_id === undefined ? {} : { charge_point_id }),
          ...(id_tag === undefined ? {} : { id_tag }),
          ...(from_ms === undefined ? {} : { from_ms }),
          ...(to_ms === undefined ? {} : { to_ms }),
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
        const charge_point_id = charge_point_param(params[0]!);
        const body = object_body(await json_body());
        for (const key of Object.keys(body)) {
          if (!charge_point_fields.has(key))
            throw new HttpError(400, `${key}: is not a charge point field`, key);
        }
        const password = body.password;
        if (password !== undefined) {
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
        } else if (!(await deps.charge_points.exists(charge_point_id))) {
          throw new HttpError(400, 'password: required to register a charge point', 'password');
        }
        const previous = await deps.charge_points.profile(charge_point_id);
        const profile = await profile_of(deps, charge_point_id, body, previous);
        // The profile first: a charger that can log in already has its tariff and time zone.
        await deps.charge_points.set_profile(profile);
        if (typeof password === 'string') await deps.charge_points.set_password(charge_point_id, password);
        send_json(res, 200, { ...profile, password_set: typeof password === 'string' });
      },
    },
    {
      method: 'GET',
      path: /^\/v1\/charge-points$/,
      auth: 'operator',
      doc: {
        path: '/v1/charge-points',
        summary: 'Charge points with their assigned tariff, time zone, station and connection status',
        tags: ['charge points'],
        parameters: [
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: page_limit_max } },
          { name: 'offset', in: 'query', schema: { type: 'integer', minimum: 0 } },
        ],
        responses: { '200': { description: 'the charge points, by id' } },
      },
      async handle({ res, url }) {
        const limit = int_param(url.searchParams, 'limit', 100, 1, page_limit_max);
        const offset = int_param(url.searchParams, 'offset', 0, 0, charge_points_listed_max);
        const ids = (await deps.charge_points.ids(charge_points_listed_max)).slice(offset, offset + limit);
        const status = await connection_status(deps.store, ids);
        const charge_points = await Promise.all(
          ids.map(async (charge_point_id) => ({
            charge_point_id,
            ...((await deps.charge_points.profile(charge_point_id)) ?? {}),
            registered: await deps.charge_points.exists(charge_point_id),
            connection: status.get(charge_point_id) ?? { connected: false, since_ms: null, node_id: null },
          })),
        );
        send_json(res, 200, { charge_points, limit, offset });
      },
    },
    {
      method: 'GET',
      path: /^\/v1\/sessions\/open$/,
      auth: 'operator',
      doc: {
        path: '/v1/sessions/open',
        summary: 'Open sessions with their running cost (optionally of one charge point)',
        tags: ['sessions'],
        parameters: [{ name: 'charge_point_id', in: 'query', schema: { type: 'string' } }],
        responses: { '200': { description: 'the open sessions' } },
      },
      async handle({ res, url }) {
        const charge_point_id = text_param(url.searchParams, 'charge_point_id', 48);
        const sessions: Json[] = [];
        let scanned = 0;
        for await (const key of await deps.open_sessions.keys()) {
          if (++scanned > open_sessions_scanned_max) break;
          const entry = await deps.open_sessions.get(key);
          if (entry === null || entry.operation !== 'PUT') continue;
          const s = entry.json<OpenSession>();
          if (s.closed !== 'open' || s.meta === undefined) continue;
          if (charge_point_id !== undefined && s.meta.charge_point_id !== charge_point_id) continue;
          sessions.push({
            session_id: s.meta.session_id,
            charge_point_id: s.meta.charge_point_id,
            transaction_id: s.meta.transaction_id,
            id_tag: s.meta.id_tag,
            started_at_ms: s.meta.started_at_ms,
            tariff_id: s.meta.tariff_id,
            tariff_version: s.meta.tariff_version,
            running_cost: s.running_cost,
            last_activity_ms: s.last_activity_ms,
          });
        }
        sessions.sort((a, b) => String(a.session_id).localeCompare(String(b.session_id)));
        send_json(res, 200, { sessions });
      },
    },
    {
      method: 'GET',
      path: /^\/v1\/sessions\/([^/]+)$/,
      param_names: ['session_id'],
      auth: 'operator',
      doc: {
        path: '/v1/sessions/{session_id}',
        summary:
          'One rated session with its breakdown and every version rated before (session id URL-encoded)',
        tags: ['sessions'],
        parameters: [{ name: 'session_id', in: 'path', required: true, schema: { type: 'string' } }],
        responses: { '200': { description: 'the session' }, '404': { description: 'no such rated session' } },
      },
      async handle({ res, params }) {
        const session_id = params[0]!;
        if (session_id.length > 120) throw new HttpError(400, 'session_id is too long', 'session_id');
        const history = await rated_session_history(deps.store, session_id);
        if (history === undefined) throw new HttpError(404, `session ${session_id} not rated`);
        const parse = <T extends { breakdown: string }>(row: T) => ({
          ...row,
          breakdown: JSON.parse(row.breakdown) as unknown,
        });
        send_json(res, 200, { ...parse(history.latest), versions: history.versions.map(parse) });
      },
    },
    {
      method: 'GET',
      path: /^\/v1\/tariffs$/,
      auth: 'operator',
      doc: {
        path: '/v1/tariffs',
        summary: 'The current version of every tariff',
        tags: ['tariffs'],
        responses: { '200': { description: 'the tariffs, by id' } },
      },
      async handle({ res }) {
        send_json(res, 200, { tariffs: await deps.tariffs.list(tariffs_listed_max) });
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
        let tariff: ReturnType<typeof normalise_tariff>;
        try {
          tariff = normalise_tariff(parsed, deps.cpo);
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
