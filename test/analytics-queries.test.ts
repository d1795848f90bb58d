import { Decimal } from 'decimal.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../analytics/migrations.js';
import { type RatedSessionRow, rated_session_json } from '../analytics/sessions.js';
import type { Store } from '../analytics/store.js';
import { analytics_routes } from '../api/analytics-routes.js';
import { ApiServer } from '../api/server.js';
import { create_logger } from '../core/log.js';
import { store_transports, type TestStore } from './helpers/stores.js';

/**
 * One contract suite for both transports (chdb and Debian's clickhouse-server 18.16): seeded
 * sessions and connector statuses, every analytics endpoint asked over HTTP, and each figure
 * compared with one computed here in plain TypeScript from the seed (not with SQL).
 */

const token = 'analytics-test-token-0123456789';
const from = '2026-03-02T00:00:00Z'; // a Monday
const to = '2026-03-09T00:00:00Z';
const from_ms = Date.parse(from);
const to_ms = Date.parse(to);
const hostile_station = 'ST\'"\\\u0000⚡😀\n; DROP TABLE x --';

interface SeedSession {
  session_id: string;
  version: number;
  station_id: string;
  evse_id: number;
  /** OCPP 1.6 sessions have no EVSE: the connector stands for it. */
  connector_id: number;
  start: string;
  duration_s: number;
  parking_s: number;
  energy_wh: number;
  tariff_id: string;
  currency: string;
  payment_method: string;
  party: string;
  excl: string;
  incl: string;
}

const base = { party: '', connector_id: 1 };
/** Every write the rating service could make, in order, redeliveries and re-ratings included. */
const writes: SeedSession[][] = [
  [
    // S1 v1, later re-rated (v2 below: other tariff, more energy, less idle time).
    {
      ...base,
      session_id: 'S1',
      version: 1,
      station_id: 'ST-A',
      evse_id: 1,
      start: '2026-03-02T00:30:00Z',
      duration_s: 5400,
      parking_s: 1800,
      energy_wh: 20_000,
      tariff_id: 'T1',
      currency: 'EUR',
      payment_method: 'RFID',
      excl: '10.00',
      incl: '12.00',
    },
    // S2 twice in one insert (a batch that carried the same event twice).
    ...Array.from({ length: 2 }, () => ({
      ...base,
      session_id: 'S2',
      version: 1,
      station_id: 'ST-A',
      evse_id: 2,
      start: '2026-03-03T10:05:00Z',
      duration_s: 5000,
      parking_s: 0,
      energy_wh: 30_500,
      tariff_id: 'T1',
      currency: 'EUR',
      payment_method: 'APP',
      excl: '9.15',
      incl: '10.98',
    })),
    {
      ...base,
      session_id: 'S3',
      version: 1,
      station_id: 'ST-B',
      evse_id: 0,
      start: '2026-03-04T08:00:00Z',
      duration_s: 4500,
      parking_s: 900,
      energy_wh: 15_000,
      tariff_id: 'T1',
      currency: 'EUR',
      payment_method: 'RFID',
      excl: '4.50',
      incl: '5.40',
    },
    // Started before the range: not in its revenue, but charging into it.
    {
      ...base,
      session_id: 'S4',
      version: 1,
      station_id: 'ST-B',
      evse_id: 0,
      start: '2026-03-01T23:30:00Z',
      duration_s: 7200,
      parking_s: 0,
      energy_wh: 40_000,
      tariff_id: 'T1',
      currency: 'EUR',
      payment_method: 'RFID',
      excl: '12.00',
      incl: '14.40',
    },
    // In February, long before the range; re-rated below. Counted only by ranges across months.
    {
      ...base,
      session_id: 'S9',
      version: 1,
      station_id: 'ST-B',
      evse_id: 1,
      start: '2026-02-10T09:00:00Z',
      duration_s: 3600,
      parking_s: 600,
      energy_wh: 15_000,
      tariff_id: 'T2',
      currency: 'EUR',
      payment_method: 'APP',
      excl: '4.50',
      incl: '5.40',
    },
  ],
  // The first batch redelivered after a crash: identical rows again.
  [],
  [
    {
      ...base,
      session_id: 'S1',
      version: 2,
      station_id: 'ST-A',
      evse_id: 1,
      start: '2026-03-02T00:30:00Z',
      duration_s: 5400,
      parking_s: 600,
      energy_wh: 22_000,
      tariff_id: 'T2',
      currency: 'EUR',
      payment_method: 'RFID',
      excl: '12.50',
      incl: '15.00',
    },
    // S3 re-rated with a tariff in another currency.
    {
      ...base,
      session_id: 'S3',
      version: 2,
      station_id: 'ST-B',
      evse_id: 0,
      start: '2026-03-04T08:00:00Z',
      duration_s: 4500,
      parking_s: 900,
      energy_wh: 15_000,
      tariff_id: 'T3',
      currency: 'CHF',
      payment_method: 'RFID',
      excl: '5.00',
      incl: '5.39',
    },
    {
      ...base,
      session_id: 'S5',
      version: 1,
      station_id: 'ST-A',
      evse_id: 1,
      start: '2026-03-08T18:45:00Z',
      duration_s: 1800,
      parking_s: 300,
      energy_wh: 7340,
      tariff_id: 'T1',
      currency: 'EUR',
      payment_method: 'QR',
      party: 'DE*ABC',
      excl: '2.20',
      incl: '2.62',
    },
    // Starts exactly at `to`: outside the half-open range.
    {
      ...base,
      session_id: 'S6',
      version: 1,
      station_id: 'ST-A',
      evse_id: 1,
      start: '2026-03-09T00:00:00Z',
      duration_s: 600,
      parking_s: 0,
      energy_wh: 1000,
      tariff_id: 'T1',
      currency: 'EUR',
      payment_method: 'RFID',
      excl: '1.00',
      incl: '1.20',
    },
    {
      ...base,
      session_id: 'S7',
      version: 1,
      station_id: hostile_station,
      evse_id: 1,
      start: '2026-03-05T12:00:00Z',
      duration_s: 3600,
      parking_s: 0,
      energy_wh: 5550,
      tariff_id: 'T1',
      currency: 'EUR',
      payment_method: 'ROAMING',
      party: "NL*'X",
      excl: '5.55',
      incl: '6.66',
    },
    {
      ...base,
      session_id: 'S8',
      version: 1,
      station_id: 'ST-A',
      evse_id: 2,
      start: '2026-03-06T07:15:00Z',
      duration_s: 3000,
      parking_s: 1000,
      energy_wh: 12_000,
      tariff_id: 'T4',
      currency: 'JPY',
      payment_method: 'AD_HOC',
      excl: '1234',
      incl: '1357',
    },
    {
      ...base,
      session_id: 'S9',
      version: 2,
      station_id: 'ST-B',
      evse_id: 1,
      start: '2026-02-10T09:00:00Z',
      duration_s: 3600,
      parking_s: 600,
      energy_wh: 15_000,
      tariff_id: 'T1',
      currency: 'EUR',
      payment_method: 'APP',
      excl: '3.75',
      incl: '4.50',
    },
  ],
];
writes[1] = writes[0]!;

interface SeedStatus {
  station_id: string;
  evse_id: number;
  connector_id: number;
  status: string;
  at: string;
}
const statuses: SeedStatus[] = [
  { station_id: 'ST-A', evse_id: 1, connector_id: 1, status: 'Preparing', at: '2026-03-01T23:00:00Z' },
  { station_id: 'ST-A', evse_id: 1, connector_id: 1, status: 'Charging', at: '2026-03-02T00:30:00Z' },
  { station_id: 'ST-A', evse_id: 1, connector_id: 1, status: 'Available', at: '2026-03-02T02:00:00Z' },
  { station_id: 'ST-A', evse_id: 1, connector_id: 1, status: 'Occupied', at: '2026-03-08T18:40:00Z' },
  { station_id: 'ST-A', evse_id: 1, connector_id: 1, status: 'Available', at: '2026-03-08T19:20:00Z' },
  { station_id: 'ST-A', evse_id: 2, connector_id: 1, status: 'Occupied', at: '2026-03-03T10:00:00Z' },
  { station_id: 'ST-A', evse_id: 2, connector_id: 1, status: 'Available', at: '2026-03-03T11:30:00Z' },
  { station_id: 'ST-A', evse_id: 2, connector_id: 2, status: 'Occupied', at: '2026-03-06T07:10:00Z' },
  { station_id: 'ST-A', evse_id: 2, connector_id: 2, status: 'Available', at: '2026-03-06T08:10:00Z' },
  { station_id: 'ST-A', evse_id: 2, connector_id: 1, status: 'Occupied', at: '2026-03-08T23:00:00Z' },
  { station_id: 'ST-B', evse_id: 0, connector_id: 0, status: 'Unavailable', at: '2026-03-04T00:00:00Z' },
  { station_id: 'ST-B', evse_id: 0, connector_id: 1, status: 'Charging', at: '2026-03-01T23:30:00Z' },
  { station_id: 'ST-B', evse_id: 0, connector_id: 1, status: 'Available', at: '2026-03-02T01:30:00Z' },
  { station_id: 'ST-B', evse_id: 0, connector_id: 1, status: 'Charging', at: '2026-03-04T08:00:00Z' },
  { station_id: 'ST-B', evse_id: 0, connector_id: 1, status: 'Finishing', at: '2026-03-04T09:00:00Z' },
  { station_id: 'ST-B', evse_id: 0, connector_id: 1, status: 'Available', at: '2026-03-04T09:15:00Z' },
  { station_id: 'ST-B', evse_id: 0, connector_id: 1, status: 'Reserved', at: '2026-03-04T12:00:00Z' },
  { station_id: 'ST-B', evse_id: 0, connector_id: 1, status: 'Available', at: '2026-03-04T12:30:00Z' },
  { station_id: 'ST-B', evse_id: 0, connector_id: 1, status: 'Faulted', at: '2026-03-04T13:00:00Z' },
  { station_id: 'ST-B', evse_id: 0, connector_id: 1, status: 'Available', at: '2026-03-04T14:00:00Z' },
  { station_id: 'ST-C', evse_id: 1, connector_id: 1, status: 'Available', at: '2026-02-20T00:00:00Z' },
  // ST-D: occupied states that cross month ends. Connector 1 is occupied from January (in the
  // lookback), through a month without changes, into the range; connector 2 is occupied across
  // the end of February into the range, and from March 8 until `to` (its next change is in April).
  { station_id: 'ST-D', evse_id: 1, connector_id: 1, status: 'Charging', at: '2026-01-28T08:00:00Z' },
  { station_id: 'ST-D', evse_id: 1, connector_id: 1, status: 'Available', at: '2026-03-03T06:00:00Z' },
  { station_id: 'ST-D', evse_id: 1, connector_id: 2, status: 'Occupied', at: '2026-02-27T10:00:00Z' },
  { station_id: 'ST-D', evse_id: 1, connector_id: 2, status: 'Available', at: '2026-02-28T10:00:00Z' },
  { station_id: 'ST-D', evse_id: 1, connector_id: 2, status: 'Preparing', at: '2026-02-28T23:00:00Z' },
  { station_id: 'ST-D', evse_id: 1, connector_id: 2, status: 'Available', at: '2026-03-02T01:00:00Z' },
  { station_id: 'ST-D', evse_id: 1, connector_id: 2, status: 'Occupied', at: '2026-03-08T20:00:00Z' },
  { station_id: 'ST-D', evse_id: 1, connector_id: 2, status: 'Available', at: '2026-04-01T08:00:00Z' },
  {
    station_id: hostile_station,
    evse_id: 1,
    connector_id: 1,
    status: 'Occupied',
    at: '2026-03-05T11:55:00Z',
  },
  {
    station_id: hostile_station,
    evse_id: 1,
    connector_id: 1,
    status: 'Available',
    at: '2026-03-05T13:00:00Z',
  },
];

function session_row(s: SeedSession): string {
  const started_at_ms = Date.parse(s.start);
  const stopped_at_ms = started_at_ms + s.duration_s * 1000;
  const row: RatedSessionRow = {
    session_id: s.session_id,
    version: s.version,
    charge_point_id: s.station_id,
    connector_id: s.connector_id,
    transaction_id: s.session_id,
    id_tag: 'TAG',
    started_at_ms,
    stopped_at_ms,
    meter_start_wh: 0,
    meter_stop_wh: s.energy_wh,
    energy_wh: s.energy_wh,
    stop_reason: 'Local',
    tariff_id: s.tariff_id,
    tariff_version: 1,
    currency: s.currency,
    total_excl_vat: s.excl,
    total_incl_vat: s.incl,
    breakdown: '{}',
    rated_at_ms: stopped_at_ms,
    evse_id: s.evse_id,
    station_id: s.station_id,
    payment_method: s.payment_method,
    party: s.party,
    time_zone: 'UTC',
    duration_s: s.duration_s,
    parking_s: s.parking_s,
    provisional: 0,
  };
  return rated_session_json(row);
}

function status_row(s: SeedStatus): string {
  const ms = Date.parse(s.at);
  return JSON.stringify({
    charge_point_id: s.station_id,
    evse_id: s.evse_id,
    connector_id: s.connector_id,
    status: s.status,
    error_code: 'NoError',
    timestamp: Math.floor(ms / 1000),
    timestamp_ms: ms,
    received_at_ms: ms,
  });
}

// ---- expected figures, computed from the seed without SQL ----

/** The latest version of each session (what a billing run would use). */
function latest_sessions(): SeedSession[] {
  const latest = new Map<string, SeedSession>();
  for (const batch of writes) {
    for (const s of batch) {
      const seen = latest.get(s.session_id);
      if (seen === undefined || seen.version < s.version) latest.set(s.session_id, s);
    }
  }
  return [...latest.values()];
}

function in_range(s: SeedSession): boolean {
  const t = Date.parse(s.start);
  return t >= from_ms && t < to_ms;
}

const evse_of = (s: { evse_id: number; connector_id: number }) =>
  s.evse_id > 0 ? s.evse_id : s.connector_id;

interface Figures {
  currency: string;
  sessions: number;
  energy_wh: number;
  revenue_excl_vat: string;
  revenue_incl_vat: string;
  revenue_per_session_excl_vat: string | null;
  revenue_per_kwh_excl_vat: string | null;
}

const minor: Record<string, number> = { EUR: 2, CHF: 2, JPY: 0 };

function figures_of(sessions: SeedSession[]): Figures[] {
  const by_currency = new Map<string, SeedSession[]>();
  for (const s of sessions) by_currency.set(s.currency, [...(by_currency.get(s.currency) ?? []), s]);
  return [...by_currency.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([currency, list]) => {
      const excl = list.reduce((sum, s) => sum.plus(s.excl), new Decimal(0));
      const incl = list.reduce((sum, s) => sum.plus(s.incl), new Decimal(0));
      const energy_wh = list.reduce((sum, s) => sum + s.energy_wh, 0);
      return {
        currency,
        sessions: list.length,
        energy_wh,
        revenue_excl_vat: excl.toFixed(minor[currency]!),
        revenue_incl_vat: incl.toFixed(minor[currency]!),
        revenue_per_session_excl_vat: excl
          .div(list.length)
          .toDecimalPlaces(4, Decimal.ROUND_HALF_UP)
          .toFixed(4),
        revenue_per_kwh_excl_vat: excl
          .div(energy_wh / 1000)
          .toDecimalPlaces(4, Decimal.ROUND_HALF_UP)
          .toFixed(4),
      };
    });
}

function group_figures<K extends string>(
  sessions: SeedSession[],
  name: K,
  key: (s: SeedSession) => string,
): (Figures & Record<K, string>)[] {
  const keys = [...new Set(sessions.map(key))].sort();
  return keys.flatMap((k) =>
    figures_of(sessions.filter((s) => key(s) === k)).map(
      (f) => ({ [name]: k, ...f }) as Figures & Record<K, string>,
    ),
  );
}

const occupied_set = new Set([
  'Preparing',
  'Charging',
  'SuspendedEV',
  'SuspendedEVSE',
  'Finishing',
  'Occupied',
]);

/** Occupied ms per EVSE: walk each connector's statuses in time order, cut to the range. */
/** Length of the union of intervals [start, end), each cut to the range. */
function covered_ms(intervals: [number, number][]): number {
  const cut = intervals
    .map(([a, b]): [number, number] => [Math.max(a, from_ms), Math.min(b, to_ms)])
    .filter(([a, b]) => b > a)
    .sort((x, y) => x[0] - y[0]);
  let total = 0;
  let open_until = -Infinity;
  for (const [a, b] of cut) {
    if (b <= open_until) continue;
    total += b - Math.max(a, open_until);
    open_until = b;
  }
  return total;
}

/** Sessions the utilization reads: started in the range or up to 7 days before it. */
function sessions_near_range(): SeedSession[] {
  return latest_sessions().filter((s) => Date.parse(s.start) >= from_ms - 7 * 86_400_000);
}

/** Per EVSE: the statuses' occupied intervals of all its connectors and its sessions' times. */
function expected_occupied_ms(): Map<string, number> {
  const by_connector = new Map<string, SeedStatus[]>();
  for (const s of statuses) {
    if (s.evse_id === 0 && s.connector_id === 0) continue;
    const key = JSON.stringify([s.station_id, s.evse_id, s.connector_id]);
    by_connector.set(key, [...(by_connector.get(key) ?? []), s]);
  }
  const intervals = new Map<string, [number, number][]>();
  const add = (evse: string, interval: [number, number]) =>
    intervals.set(evse, [...(intervals.get(evse) ?? []), interval]);
  for (const list of by_connector.values()) {
    list.sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
    const evse = JSON.stringify([list[0]!.station_id, evse_of(list[0]!)]);
    if (!intervals.has(evse)) intervals.set(evse, []);
    list.forEach((s, i) => {
      if (!occupied_set.has(s.status)) return;
      add(evse, [Date.parse(s.at), i + 1 < list.length ? Date.parse(list[i + 1]!.at) : to_ms]);
    });
  }
  for (const s of sessions_near_range()) {
    const start = Date.parse(s.start);
    add(JSON.stringify([s.station_id, evse_of(s)]), [start, start + s.duration_s * 1000]);
  }
  return new Map([...intervals].map(([evse, list]) => [evse, covered_ms(list)]));
}

function expected_charging_ms(): Map<string, number> {
  const intervals = new Map<string, [number, number][]>();
  for (const s of sessions_near_range()) {
    const start = Date.parse(s.start);
    const key = JSON.stringify([s.station_id, evse_of(s)]);
    intervals.set(key, [...(intervals.get(key) ?? []), [start, start + (s.duration_s - s.parking_s) * 1000]]);
  }
  return new Map([...intervals].map(([evse, list]) => [evse, covered_ms(list)]));
}

const pct = (part: number, whole: number) => Math.round((part / whole) * 10_000) / 100;

function expected_utilization() {
  const occupied = expected_occupied_ms();
  const charging = expected_charging_ms();
  const range_ms = to_ms - from_ms;
  const keys = [...new Set([...occupied.keys(), ...charging.keys()])]
    .map((k) => JSON.parse(k) as [string, number])
    // S6 starts at `to`: its EVSE is known only from statuses, which it has.
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1]));
  const evses = keys.map(([station_id, evse_id]) => {
    const k = JSON.stringify([station_id, evse_id]);
    const occ = occupied.get(k) ?? 0;
    const chg = charging.get(k) ?? 0;
    return {
      station_id,
      evse_id,
      occupied_s: occ / 1000,
      charging_s: chg / 1000,
      occupied_percent: pct(occ, range_ms),
      charging_percent: pct(chg, range_ms),
    };
  });
  const station_ids = [...new Set(evses.map((e) => e.station_id))].sort();
  const stations = station_ids.map((station_id) => {
    const list = evses.filter((e) => e.station_id === station_id);
    const occ = list.reduce((s, e) => s + e.occupied_s * 1000, 0);
    const chg = list.reduce((s, e) => s + e.charging_s * 1000, 0);
    return {
      station_id,
      evse_count: list.length,
      occupied_s: occ / 1000,
      charging_s: chg / 1000,
      occupied_percent: pct(occ, list.length * range_ms),
      charging_percent: pct(chg, list.length * range_ms),
    };
  });
  return { range_s: range_ms / 1000, evses, stations };
}

/** Weekday (ISO) and hour of an instant in a zone, via Intl. */
function zoned(ms: number, time_zone: string): { weekday: number; hour: number; day: string } {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', {
      timeZone: time_zone,
      weekday: 'short',
      hour: '2-digit',
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
    })
      .formatToParts(ms)
      .map((p) => [p.type, p.value]),
  );
  const weekday = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'].indexOf(parts.weekday!) + 1;
  return { weekday, hour: Number(parts.hour), day: `${parts.year}-${parts.month}-${parts.day}` };
}

// ---- the suite ----

describe.each(store_transports)('analytics on $name', ({ open }) => {
  let env: TestStore;
  let store: Store;
  let api: ApiServer;
  let base_url: string;

  const get = async (path: string, params: Record<string, string>) => {
    const response = await fetch(`${base_url}${path}?${new URLSearchParams(params)}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  beforeAll(async () => {
    env = await open();
    store = env.store;
    // Separate inserts, as the rating service makes them: batches, a redelivery, re-ratings.
    for (const batch of writes) await store.insert_json_rows('rated_sessions', batch.map(session_row));
    await store.insert_json_rows('connector_status', statuses.map(status_row));
    await store.insert_json_rows('connector_status', statuses.slice(0, 5).map(status_row)); // redelivered
    api = new ApiServer(
      {
        host: '127.0.0.1',
        port: 0,
        operator_token: token,
        body_bytes_max: 65_536,
        operator_requests_per_s_max: 1000,
      },
      analytics_routes({ store }),
      create_logger('silent'),
    );
    base_url = `http://127.0.0.1:${await api.listen()}`;
  });
  afterAll(async () => {
    await api?.close();
    await env?.dispose();
  });

  it('counts a redelivered session once and a re-rated session at its latest version only', async () => {
    const { status, body } = await get('/v1/analytics/revenue', { from, to });
    expect(status).toBe(200);
    const expected = figures_of(latest_sessions().filter(in_range));
    expect(body.totals).toEqual(expected);
    // Spelled out for the trap: S1 counts 12.50 (v2), never 10.00 + 12.50 or twice 10.00; S3 is CHF.
    const eur = (body.totals as Figures[]).find((t) => t.currency === 'EUR')!;
    expect(eur.revenue_excl_vat).toBe('29.40'); // 12.50 + 9.15 + 2.20 + 5.55
    expect(eur.sessions).toBe(4);
    expect(eur.energy_wh).toBe(22_000 + 30_500 + 7340 + 5550);
    // A filter on a value only the superseded version had selects nothing of that session.
    const t1 = await get('/v1/analytics/revenue', { from, to, tariff: 'T1', currency: 'EUR' });
    expect(t1.body.totals).toEqual(
      figures_of(
        latest_sessions().filter((s) => in_range(s) && s.tariff_id === 'T1' && s.currency === 'EUR'),
      ),
    );
    expect((t1.body.totals as Figures[])[0]!.revenue_excl_vat).toBe('16.90'); // 9.15 + 2.20 + 5.55
  });

  it('answers revenue by day, station, tariff and payment method with per-session and per-kWh figures', async () => {
    const { body } = await get('/v1/analytics/revenue', { from, to, time_zone: 'Asia/Tokyo' });
    const sessions = latest_sessions().filter(in_range);
    expect(body.by_day).toEqual(
      group_figures(sessions, 'day', (s) => zoned(Date.parse(s.start), 'Asia/Tokyo').day),
    );
    expect(body.by_station).toEqual(group_figures(sessions, 'station_id', (s) => s.station_id));
    expect(body.by_tariff).toEqual(group_figures(sessions, 'tariff_id', (s) => s.tariff_id));
    expect(body.by_payment_method).toEqual(
      group_figures(sessions, 'payment_method', (s) => s.payment_method),
    );
    const jpy = (body.totals as Figures[]).find((t) => t.currency === 'JPY')!;
    expect(jpy).toMatchObject({ revenue_excl_vat: '1234', revenue_per_kwh_excl_vat: '102.8333' });
  });

  it('counts each session once at its latest version over a range across month starts', async () => {
    // A server without per-partition FINAL (18.16) reads such a range one month at a time.
    const wide = { from: '2026-01-20T00:00:00Z', to };
    const { body } = await get('/v1/analytics/revenue', wide);
    const sessions = latest_sessions().filter((s) => {
      const t = Date.parse(s.start);
      return t >= Date.parse(wide.from) && t < to_ms;
    });
    expect(body.totals).toEqual(figures_of(sessions));
    expect(body.by_day).toEqual(group_figures(sessions, 'day', (s) => zoned(Date.parse(s.start), 'UTC').day));
    // S9 counts once, at 3.75 (v2), on February 10.
    expect((body.by_day as { day: string; revenue_excl_vat: string }[])[0]).toMatchObject({
      day: '2026-02-10',
      revenue_excl_vat: '3.75',
    });
  });

  it('filters by station (hostile characters included), EVSE and party', async () => {
    const sessions = latest_sessions().filter(in_range);
    const station = await get('/v1/analytics/revenue', { from, to, station: hostile_station });
    expect(station.body.totals).toEqual(figures_of(sessions.filter((s) => s.station_id === hostile_station)));
    expect((station.body.totals as Figures[])[0]!.revenue_excl_vat).toBe('5.55');
    const evse = await get('/v1/analytics/revenue', { from, to, station: 'ST-A', evse: '2' });
    expect(evse.body.totals).toEqual(
      figures_of(sessions.filter((s) => s.station_id === 'ST-A' && evse_of(s) === 2)),
    );
    const party = await get('/v1/analytics/revenue', { from, to, party: 'DE*ABC' });
    expect(party.body.totals).toEqual(figures_of(sessions.filter((s) => s.party === 'DE*ABC')));
  });

  it('answers peak hours by weekday and hour of the start in the asked time zone', async () => {
    for (const time_zone of ['UTC', 'Asia/Tokyo']) {
      const { body } = await get('/v1/analytics/peak-hours', { from, to, time_zone });
      const sessions = latest_sessions().filter(in_range);
      const cells = new Map<string, SeedSession[]>();
      for (const s of sessions) {
        const z = zoned(Date.parse(s.start), time_zone);
        const key = JSON.stringify([z.weekday, z.hour]);
        cells.set(key, [...(cells.get(key) ?? []), s]);
      }
      const expected = [...cells.entries()]
        .map(([k, list]) => [JSON.parse(k) as [number, number], list] as const)
        .sort(([a], [b]) => a[0] - b[0] || a[1] - b[1])
        .flatMap(([[weekday, hour], list]) => figures_of(list).map((f) => ({ weekday, hour, ...f })));
      expect(body.cells).toEqual(expected);
    }
    // S1 started Monday 00:30 UTC, 09:30 in Tokyo; S5 Sunday 18:45 UTC is Monday 03:45 there.
    const tokyo = await get('/v1/analytics/peak-hours', { from, to, time_zone: 'Asia/Tokyo' });
    const monday = (tokyo.body.cells as { weekday: number; hour: number; revenue_excl_vat: string }[]).filter(
      (c) => c.weekday === 1,
    );
    expect(monday.map((c) => [c.hour, c.revenue_excl_vat])).toEqual([
      [3, '2.20'],
      [9, '12.50'],
    ]);
  });

  it('answers utilization per EVSE and station from statuses and sessions', async () => {
    const { status, body } = await get('/v1/analytics/utilization', { from, to });
    expect(status).toBe(200);
    const expected = expected_utilization();
    expect(body).toEqual({ from: '2026-03-02T00:00:00.000Z', to: '2026-03-09T00:00:00.000Z', ...expected });
    // Spelled out: ST-A EVSE 1 is occupied 00:00-02:00 (Preparing since the day before) and 18:40-19:20.
    const a1 = (body.evses as { station_id: string; evse_id: number; occupied_s: number }[]).find(
      (e) => e.station_id === 'ST-A' && e.evse_id === 1,
    )!;
    expect(a1.occupied_s).toBe(2 * 3600 + 40 * 60);
    // ST-D EVSE 1: 30 h (connector 1, since January) and 4 h (connector 2 until `to`); connector
    // 2's hour across February's end lies inside connector 1's 30 h and counts once.
    const d1 = (body.evses as { station_id: string; evse_id: number; occupied_s: number }[]).find(
      (e) => e.station_id === 'ST-D' && e.evse_id === 1,
    )!;
    expect(d1.occupied_s).toBe(34 * 3600);
    const filtered = await get('/v1/analytics/utilization', { from, to, station: 'ST-B' });
    expect(filtered.body.stations).toEqual(expected.stations.filter((s) => s.station_id === 'ST-B'));
  });

  it('ranks underutilized stations below the threshold, least used first', async () => {
    const stations = expected_utilization().stations;
    const { body } = await get('/v1/analytics/underutilized', { from, to, threshold_percent: '1.7' });
    const expected = stations
      .filter((s) => s.occupied_percent < 1.7)
      .sort((a, b) => a.occupied_percent - b.occupied_percent || (a.station_id < b.station_id ? -1 : 1));
    expect(body.stations).toEqual(expected);
    expect((body.stations as { station_id: string }[])[0]!.station_id).toBe('ST-C');
    expect((body.stations as unknown[]).length).toBe(3); // ST-A is at 1.84 %
    const limited = await get('/v1/analytics/underutilized', {
      from,
      to,
      threshold_percent: '1.7',
      limit: '1',
    });
    expect(limited.body.stations).toEqual(expected.slice(0, 1));
  });

  it('ranks payment methods by sessions with revenue per currency', async () => {
    const { body } = await get('/v1/analytics/payment-methods', { from, to });
    const sessions = latest_sessions().filter(in_range);
    const methods = [...new Set(sessions.map((s) => s.payment_method))];
    const expected = methods
      .map((payment_method) => {
        const list = sessions.filter((s) => s.payment_method === payment_method);
        const revenue_of = (of: SeedSession[]) =>
          figures_of(of).map((f) => ({
            currency: f.currency,
            sessions: f.sessions,
            revenue_excl_vat: f.revenue_excl_vat,
            revenue_incl_vat: f.revenue_incl_vat,
          }));
        const labels: Record<string, string> = {
          RFID: 'RFID card of ours',
          APP: 'App (remote start)',
          AD_HOC: 'Ad hoc payment at the charger (QR code, card terminal)',
          QR: 'QR code',
          ROAMING: "Roaming partner's token (per eMSP party)",
        };
        // The one roaming session (S7, party NL*'X) is also its party's whole share.
        const parties = [...new Set(list.map((s) => s.party))].map((party) => {
          const of = list.filter((s) => s.party === party);
          return {
            party,
            sessions: of.length,
            energy_wh: of.reduce((n, s) => n + s.energy_wh, 0),
            revenue: revenue_of(of),
          };
        });
        return {
          payment_method,
          label: labels[payment_method],
          sessions: list.length,
          sessions_percent: pct(list.length, sessions.length),
          energy_wh: list.reduce((n, s) => n + s.energy_wh, 0),
          revenue: revenue_of(list),
          ...(payment_method === 'ROAMING' ? { parties } : {}),
        };
      })
      .sort((a, b) => b.sessions - a.sessions || (a.payment_method < b.payment_method ? -1 : 1));
    expect(body.payment_methods).toEqual(expected);
    expect((body.payment_methods as { payment_method: string }[])[0]!.payment_method).toBe('RFID');
  });

  it('answers session duration and energy distributions', async () => {
    const { body } = await get('/v1/analytics/session-distributions', { from, to });
    const sessions = latest_sessions().filter(in_range);
    const count = (bounds: number[], value: (s: SeedSession) => number) =>
      bounds.map((lo, i) => ({
        from: lo,
        to: bounds[i + 1] ?? null,
        sessions: sessions.filter(
          (s) => value(s) >= lo && (i + 1 === bounds.length || value(s) < bounds[i + 1]!),
        ).length,
      }));
    expect(body.duration_s).toEqual(count([0, 900, 1800, 3600, 7200, 14_400, 28_800], (s) => s.duration_s));
    expect(body.energy_wh).toEqual(count([0, 5000, 10_000, 20_000, 40_000, 80_000], (s) => s.energy_wh));
  });

  it('gives the same figures after every migration ran again (the rollup backfills included)', async () => {
    const before = await Promise.all(
      ['revenue', 'utilization', 'peak-hours'].map((name) => get(`/v1/analytics/${name}`, { from, to })),
    );
    await store.exec('TRUNCATE TABLE evrate.schema_migrations');
    expect((await migrate(store)).length).toBeGreaterThan(2);
    const after = await Promise.all(
      ['revenue', 'utilization', 'peak-hours'].map((name) => get(`/v1/analytics/${name}`, { from, to })),
    );
    expect(after).toEqual(before);
    expect((before[0]!.body.totals as Figures[]).find((t) => t.currency === 'EUR')!.revenue_excl_vat).toBe(
      '29.40',
    );
  });

  it('refuses bad parameters with 400 naming the field', async () => {
    const cases: [string, Record<string, string>, string][] = [
      ['/v1/analytics/revenue', { to }, 'from'],
      ['/v1/analytics/revenue', { from, to: '2026-03-09' }, 'to'],
      ['/v1/analytics/revenue', { from: to, to: from }, 'to'],
      ['/v1/analytics/revenue', { from, to, currency: 'eur' }, 'currency'],
      ['/v1/analytics/revenue', { from, to, evse: '-1' }, 'evse'],
      ['/v1/analytics/revenue', { from, to, stations: 'x' }, 'stations'],
      ['/v1/analytics/peak-hours', { from, to, time_zone: "UTC') --" }, 'time_zone'],
      ['/v1/analytics/utilization', { from, to, tariff: 'T1' }, 'tariff'],
      ['/v1/analytics/underutilized', { from, to, threshold_percent: '101' }, 'threshold_percent'],
      ['/v1/analytics/payment-methods', { from, to: '2028-01-01T00:00:00Z' }, 'to'],
    ];
    for (const [path, params, field] of cases) {
      const { status, body } = await get(path, params);
      expect({ path, params, status, field: body.field }).toEqual({ path, params, status: 400, field });
    }
    const unauthorized = await fetch(`${base_url}/v1/analytics/revenue?from=${from}&to=${to}`);
    expect(unauthorized.status).toBe(401);
  });
});
