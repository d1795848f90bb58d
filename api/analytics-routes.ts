import { session_distributions } from '../analytics/distributions.js';
import { payment_methods } from '../analytics/payment-methods.js';
import { peak_hours } from '../analytics/peak-hours.js';
import type { AnalyticsFilter, ZonedFilter } from '../analytics/query-filter.js';
import { rejections } from '../analytics/rejections.js';
import { revenue } from '../analytics/revenue.js';
import type { Store } from '../analytics/store.js';
import { underutilized_stations } from '../analytics/underutilized.js';
import { utilization } from '../analytics/utilization.js';
import { HttpError, type Route, type RouteDoc, send_json } from './http.js';

export interface AnalyticsDeps {
  store: Store;
}

/** The longest range one question may cover; longer ones are refused rather than left to run. */
export const analytics_range_days_max = 400;
const underutilized_limit_max = 10_000;

type FilterName = 'station' | 'evse' | 'tariff' | 'currency' | 'party';
type ParamName = 'from' | 'to' | 'time_zone' | 'threshold_percent' | 'limit' | FilterName;

const rfc3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;

function single(params: URLSearchParams, name: string): string | undefined {
  const values = params.getAll(name);
  if (values.length > 1) throw new HttpError(400, `${name}: given more than once`, name);
  return values[0];
}

function text_param(params: URLSearchParams, name: string): string | undefined {
  const value = single(params, name);
  if (value === undefined) return undefined;
  if (value.length === 0 || value.length > 255) {
    throw new HttpError(400, `${name}: must be 1 to 255 characters`, name);
  }
  return value;
}

function time_param(params: URLSearchParams, name: 'from' | 'to'): number {
  const value = single(params, name);
  if (value === undefined) throw new HttpError(400, `${name}: required (RFC 3339 date-time)`, name);
  const ms = Date.parse(value);
  if (!rfc3339.test(value) || Number.isNaN(ms)) {
    throw new HttpError(400, `${name}: must be an RFC 3339 date-time, e.g. 2026-11-01T00:00:00Z`, name);
  }
  return ms;
}

/**
 * Parses and checks the query string of an analytics question. Unknown parameters and filters
 * that do not apply to the question are refused (400 naming the field) rather than ignored, so a
 * misspelt filter never silently widens an answer.
 */
function parse_query(url: URL, allowed: readonly ParamName[]): ZonedFilter {
  for (const name of new Set(url.searchParams.keys())) {
    if (!(allowed as readonly string[]).includes(name)) {
      throw new HttpError(400, `${name}: not a parameter of ${url.pathname}`, name);
    }
  }
  const p = url.searchParams;
  const from_ms = time_param(p, 'from');
  const to_ms = time_param(p, 'to');
  if (to_ms <= from_ms) throw new HttpError(400, 'to: must be after from', 'to');
  if (to_ms - from_ms > analytics_range_days_max * 86_400_000) {
    throw new HttpError(400, `to: the range may cover at most ${analytics_range_days_max} days`, 'to');
  }
  const filter: ZonedFilter = { from_ms, to_ms, time_zone: 'UTC' };
  const station = text_param(p, 'station');
  if (station !== undefined) filter.station_id = station;
  const evse = single(p, 'evse');
  if (evse !== undefined) {
    if (!/^\d{1,9}$/.test(evse)) throw new HttpError(400, 'evse: must be a non-negative integer', 'evse');
    filter.evse_id = Number(evse);
  }
  const tariff = text_param(p, 'tariff');
  if (tariff !== undefined) filter.tariff_id = tariff;
  const currency = single(p, 'currency');
  if (currency !== undefined) {
    if (!/^[A-Z]{3}$/.test(currency)) {
      throw new HttpError(400, 'currency: must be an ISO 4217 code of 3 capital letters', 'currency');
    }
    filter.currency = currency;
  }
  const party = text_param(p, 'party');
  if (party !== undefined) filter.party = party;
  const time_zone = single(p, 'time_zone');
  if (time_zone !== undefined) {
    let known = /^[A-Za-z][A-Za-z0-9_+\-/]{0,63}$/.test(time_zone);
    try {
      if (known) new Intl.DateTimeFormat('en', { timeZone: time_zone });
    } catch {
      known = false;
    }
    if (!known)
      throw new HttpError(400, 'time_zone: must be an IANA time zone, e.g. Europe/Berlin', 'time_zone');
    filter.time_zone = time_zone;
  }
  return filter;
}

function range_of(filter: AnalyticsFilter): { from: string; to: string } {
  return { from: new Date(filter.from_ms).toISOString(), to: new Date(filter.to_ms).toISOString() };
}

function threshold_param(params: URLSearchParams): number {
  const value = single(params, 'threshold_percent');
  if (value === undefined) return 10;
  const n = Number(value);
  if (!/^\d{1,3}(\.\d{1,2})?$/.test(value) || n > 100) {
    throw new HttpError(400, 'threshold_percent: must be a number from 0 to 100', 'threshold_percent');
  }
  return n;
}

function limit_param(params: URLSearchParams): number {
  const value = single(params, 'limit');
  if (value === undefined) return 100;
  const n = Number(value);
  if (!/^\d{1,6}$/.test(value) || n < 1 || n > underutilized_limit_max) {
    throw new HttpError(400, `limit: must be an integer from 1 to ${underutilized_limit_max}`, 'limit');
  }
  return n;
}

const range_parameters = [
  { name: 'from', in: 'query', required: true, schema: { type: 'string', format: 'date-time' } },
  { name: 'to', in: 'query', required: true, schema: { type: 'string', format: 'date-time' } },
];
const station_parameters = [
  { name: 'station', in: 'query', schema: { type: 'string', maxLength: 255 } },
  { name: 'evse', in: 'query', schema: { type: 'integer', minimum: 0 } },
];
const session_parameters = [
  ...range_parameters,
  ...station_parameters,
  { name: 'tariff', in: 'query', schema: { type: 'string', maxLength: 255 } },
  { name: 'currency', in: 'query', schema: { type: 'string', pattern: '^[A-Z]{3}$' } },
  { name: 'party', in: 'query', schema: { type: 'string', maxLength: 255 } },
];
const time_zone_parameter = { name: 'time_zone', in: 'query', schema: { type: 'string', default: 'UTC' } };

function analytics_doc(path: string, summary: string, parameters: unknown[]): RouteDoc {
  return {
    path,
    summary,
    tags: ['analytics'],
    parameters,
    responses: {
      '200': { description: 'figures as JSON; money as exact decimal strings' },
      '400': { description: 'invalid parameter, named in `field`' },
    },
  };
}

const session_filters: readonly ParamName[] = [
  'from',
  'to',
  'station',
  'evse',
  'tariff',
  'currency',
  'party',
];
// Occupancy comes from connector status, which has no tariff, currency or party.
const occupancy_filters: readonly ParamName[] = ['from', 'to', 'station', 'evse'];

/**
 * `/v1/analytics/*`: the operators' questions over a time range, answered from the rollups.
 * Money is exact decimal text; counts and seconds are numbers.
 */
export function analytics_routes(deps: AnalyticsDeps): Route[] {
  const { store } = deps;
  return [
    {
      method: 'GET',
      path: /^\/v1\/analytics\/utilization$/,
      auth: 'operator',
      doc: analytics_doc(
        '/v1/analytics/utilization',
        'Occupied and charging share of the range per EVSE and station (rules in analytics/utilization.ts)',
        [...range_parameters, ...station_parameters],
      ),
      async handle({ res, url }) {
        const filter = parse_query(url, occupancy_filters);
        send_json(res, 200, { ...range_of(filter), ...(await utilization(store, filter)) });
      },
    },
    {
      method: 'GET',
      path: /^\/v1\/analytics\/underutilized$/,
      auth: 'operator',
      doc: analytics_doc(
        '/v1/analytics/underutilized',
        'Stations occupied less than threshold_percent of the range, least used first',
        [
          ...range_parameters,
          ...station_parameters,
          {
            name: 'threshold_percent',
            in: 'query',
            schema: { type: 'number', minimum: 0, maximum: 100, default: 10 },
          },
          {
            name: 'limit',
            in: 'query',
            schema: { type: 'integer', minimum: 1, maximum: 10000, default: 100 },
          },
        ],
      ),
      async handle({ res, url }) {
        const filter = parse_query(url, [...occupancy_filters, 'threshold_percent', 'limit']);
        const threshold_percent = threshold_param(url.searchParams);
        const limit = limit_param(url.searchParams);
        const stations = await underutilized_stations(store, { ...filter, threshold_percent, limit });
        send_json(res, 200, { ...range_of(filter), threshold_percent, stations });
      },
    },
    {
      method: 'GET',
      path: /^\/v1\/analytics\/peak-hours$/,
      auth: 'operator',
      doc: analytics_doc(
        '/v1/analytics/peak-hours',
        'Sessions, energy and revenue by local weekday and hour of the start, per currency',
        [...session_parameters, time_zone_parameter],
      ),
      async handle({ res, url }) {
        const filter = parse_query(url, [...session_filters, 'time_zone']);
        const cells = await peak_hours(store, filter);
        send_json(res, 200, { ...range_of(filter), time_zone: filter.time_zone, cells });
      },
    },
    {
      method: 'GET',
      path: /^\/v1\/analytics\/revenue$/,
      auth: 'operator',
      doc: analytics_doc(
        '/v1/analytics/revenue',
        'Revenue per currency in total and by day, station, tariff and payment method, with per-session and per-kWh figures',
        [...session_parameters, time_zone_parameter],
      ),
      async handle({ res, url }) {
        const filter = parse_query(url, [...session_filters, 'time_zone']);
        const result = await revenue(store, filter);
        send_json(res, 200, { ...range_of(filter), time_zone: filter.time_zone, ...result });
      },
    },
    {
      method: 'GET',
      path: /^\/v1\/analytics\/payment-methods$/,
      auth: 'operator',
      doc: analytics_doc(
        '/v1/analytics/payment-methods',
        'Sessions per payment method, most used first, with revenue per currency',
        session_parameters,
      ),
      async handle({ res, url }) {
        const filter = parse_query(url, session_filters);
        send_json(res, 200, { ...range_of(filter), payment_methods: await payment_methods(store, filter) });
      },
    },
    {
      method: 'GET',
      path: /^\/v1\/analytics\/rejections$/,
      auth: 'operator',
      doc: analytics_doc(
        '/v1/analytics/rejections',
        'Frames refused with a CALLERROR, by error code and action, each counted once however often it was written',
        [...range_parameters, station_parameters[0]],
      ),
      async handle({ res, url }) {
        const filter = parse_query(url, ['from', 'to', 'station']);
        send_json(res, 200, { ...range_of(filter), ...(await rejections(store, filter)) });
      },
    },
    {
      method: 'GET',
      path: /^\/v1\/analytics\/session-distributions$/,
      auth: 'operator',
      doc: analytics_doc(
        '/v1/analytics/session-distributions',
        'Sessions by duration and by energy buckets',
        session_parameters,
      ),
      async handle({ res, url }) {
        const filter = parse_query(url, session_filters);
        send_json(res, 200, { ...range_of(filter), ...(await session_distributions(store, filter)) });
      },
    },
  ];
}
