import { occupied_statuses } from './occupancy-rollup.js';
import {
  type AnalyticsFilter,
  and,
  count_of,
  facts_from,
  final_settings,
  month_slices_max,
} from './query-filter.js';
import { ident, type SqlFragment, sql } from './sql.js';
import type { Store } from './store.js';

/**
 * Utilization rules.
 * - Occupied time comes from connector_status: a connector is occupied from a StatusNotification
 *   with a status that means a vehicle is at it (OCPP 1.6 Preparing, Charging, SuspendedEV,
 *   SuspendedEVSE, Finishing; OCPP 2.0.1 Occupied) until its next status notification. Available,
 *   Reserved (no vehicle yet), Unavailable, Faulted and anything unknown are not occupied. The
 *   status in force at `from` is the connector's last one in the months reaching
 *   `status_lookback_days` before it (a connector silent for longer counts as not occupied until
 *   its next status). A status row written twice (redelivery) is harmless: the copy makes an
 *   interval of zero length. Read from the rollup of occupancy-rollup.ts. An EVSE serves one vehicle
 *   at a time (OCPP 2.0.1 part 1, 3.1: one connector of an EVSE in use at a time), so it is
 *   occupied while any of its connectors is. Connector 0 of OCPP 1.6 (the whole charge point) is
 *   not a place a vehicle stands and is left out.
 * - A rated session's time, from its start to its stop, is occupied time too, whatever the
 *   statuses say: a 1.6 charger may send StatusNotifications without a timestamp (stamped when
 *   received) or stamped apart from the session, and an EVSE cannot charge for an hour while
 *   occupied for none of it. Occupied time is the union of the statuses' occupied intervals and
 *   the sessions' intervals, so a minute covered by both counts once.
 * - Charging time comes from the rated sessions, because OCPP 2.0.1 reports no Charging status:
 *   a session's charging time is its duration minus its idle (parking) time, counted from its
 *   start (a vehicle charges first and idles after) and ending at its stop at the latest, cut to
 *   the range; overlapping sessions of one EVSE count their common time once. Sessions are looked
 *   for up to `charging_lookback_days` before `from`.
 * - So charging <= occupied <= range for every EVSE, by construction: each charging interval lies
 *   inside its session's interval. assert_utilization checks it on every answer; a figure that
 *   breaks it is a bug, and fails the request rather than being cut to fit.
 * - Percentages are of the range's length times the number of EVSEs; an EVSE counts when it has
 *   a status in the lookback or the range, or a session started in the charging lookback or the
 *   range.
 */
export { occupied_statuses };

export const charging_lookback_days = 7;
export const status_lookback_days = 35;

export interface EvseUtilization {
  station_id: string;
  evse_id: number;
  occupied_s: number;
  charging_s: number;
  occupied_percent: number;
  charging_percent: number;
}

export interface StationUtilization {
  station_id: string;
  evse_count: number;
  occupied_s: number;
  charging_s: number;
  occupied_percent: number;
  charging_percent: number;
}

export interface Utilization {
  range_s: number;
  evses: EvseUtilization[];
  stations: StationUtilization[];
}

/** Only station and EVSE apply to occupancy; the API refuses the other filters. */
export type UtilizationFilter = Pick<AnalyticsFilter, 'from_ms' | 'to_ms' | 'station_id' | 'evse_id'>;

export function percent(part_ms: number, whole_ms: number): number {
  if (whole_ms <= 0) return 0;
  return Math.round((part_ms * 10_000) / whole_ms) / 100;
}

function month_of(ms: number): number {
  const d = new Date(ms);
  return d.getUTCFullYear() * 100 + d.getUTCMonth() + 1;
}

/** The months (YYYYMM) from `first` to `last`, both included; at most month_slices_max + 1. */
function months_between(first: number, last: number): number[] {
  const months: number[] = [];
  for (let m = first; m <= last && months.length <= month_slices_max; ) {
    months.push(m);
    m = m % 100 === 12 ? m + 89 : m + 1;
  }
  return months;
}

/**
 * Occupied and charging ms per EVSE in one statement: the store runs both reads side by side and
 * only one row per EVSE travels back.
 */
export function evse_times_sql(store: Store, filter: UtilizationFilter): string {
  const db = ident(store.database);
  const { from_ms: f, to_ms: t } = filter;
  const first_month = month_of(f - status_lookback_days * 86_400_000);
  const last_month = month_of(t);
  const dimensions: SqlFragment[] = [];
  if (filter.station_id !== undefined) dimensions.push(sql`station_id = ${filter.station_id}`);
  if (filter.evse_id !== undefined) dimensions.push(sql`evse_id = ${filter.evse_id}`);
  const from = sql`toInt64(${f})`.text;
  const to = sql`toInt64(${t})`.text;
  // Without window functions (ClickHouse 18.16): each connector's changes as sorted arrays of
  // numbers time * 2 + occupied (occupancy-rollup.ts). Each change is in force until the next
  // one (or `to`), cut to the range: clip() moves an instant into [from, to], so a change before
  // `from` counts only from `from` on and the last one before `from` gives the state in force at
  // `from`. At equal times the not-occupied change sorts first and lasts zero ms.
  const clip = (v: string) => `least(greatest(${v}, ${from}), ${to})`;
  // An interval [s, e) as two events: s * 2 + 1 opens, e * 2 closes. Sorted, a close sorts before
  // an open at the same instant, so [a, b) and [b, c) join without counting b twice.
  const events_of = (starts: string, ends: string) =>
    `arrayConcat(arrayMap(s -> s * 2 + 1, ${starts}), arrayMap(e -> e * 2, ${ends}))`;
  // The intervals in force between consecutive changes (x, next) that are occupied and not empty
  // once cut to the range, as events: an occupied change is in force until the next change.
  const in_force_events = (cond: string, xs: string, nexts: string, more = '') => {
    const open = `${clip('intDiv(x, 2)')}`;
    const close = `${clip('intDiv(next, 2)')}`;
    const keep = `x % 2 = 1 AND ${close} > ${open}${cond}`;
    return events_of(
      `arrayMap(x -> ${open}, arrayFilter((x, next${more === '' ? '' : ', i'}) -> ${keep}, ${xs}, ${nexts}${more}))`,
      `arrayMap(next -> ${close}, arrayFilter((next, x${more === '' ? '' : ', i'}) -> ${keep}, ${nexts}, ${xs}${more}))`,
    );
  };
  // A month's changes all lie before the next month's (a row's month is that of its own
  // timestamp, which is timestamp_ms in whole seconds), so each (connector, month) row gives the
  // intervals inside it on its own, then per connector the last change of each month is in force
  // until the first of the next month with changes (or `to`). FINAL merges only rows of unmerged
  // parts (18.16 also merges a connector's months into one row, which gives the same intervals).
  const months_where = (months: SqlFragment[]) =>
    `SELECT station_id, evse_id, connector_id, arraySort(finalizeAggregation(changes)) AS sorted,
      sorted[1] AS first_x, sorted[length(sorted)] AS last_x,
      ${in_force_events('', 'arrayPopBack(sorted)', 'arrayPopFront(sorted)')} AS inside_events
    FROM ${db}.connector_changes_monthly FINAL
    WHERE ${and([...months, ...dimensions])}`;
  const settings = final_settings(store);
  const month_list = months_between(first_month, last_month);
  // A server without per-partition FINAL (18.16) merges in one thread: one FINAL per month,
  // joined by UNION ALL, lets it use every core (and keeps a connector's months apart, as above).
  const months =
    settings === '' && month_list.length > 1 && month_list.length <= month_slices_max
      ? month_list.map((m) => months_where([sql`month = ${m}`])).join(' UNION ALL ')
      : `${months_where([sql`month >= ${first_month}`, sql`month <= ${last_month}`])}${settings}`;
  // Per connector, the months' first and last changes sorted: first, last, first, last...; every
  // last change (even position) is in force until the next element.
  const status_events = `SELECT station_id, evse_id,
      arrayConcat(inside, ${in_force_events(
        ' AND i % 2 = 0',
        'bounds',
        `arrayPushBack(arrayPopFront(bounds), ${to} * 2)`,
        ', arrayEnumerate(bounds)',
      )}) AS occupied_events,
      emptyArrayInt64() AS charging_events
    FROM (
      SELECT station_id, evse_id, connector_id, groupArrayArray(inside_events) AS inside,
        arraySort(arrayConcat(groupArray(first_x), groupArray(last_x))) AS bounds
      FROM (${months})
      GROUP BY station_id, evse_id, connector_id
    )`;
  const source = facts_from(store, { ...filter, from_ms: f - charging_lookback_days * 86_400_000 });
  // A session is occupied time from its start to its stop, whatever the statuses say (a 1.6
  // charger may send them without a timestamp, or stamped apart from the session); it charges
  // from its start for its duration less its idle time, and never past its stop (duration_s is
  // whole seconds, the stop is in ms).
  const started = `greatest(started_at_ms, ${from})`;
  const stopped = `least(stopped_at_ms, ${to})`;
  const charge_end = `least(least(started_at_ms + greatest(toInt64(0), toInt64(duration_s) - toInt64(parking_s)) * 1000, stopped_at_ms), ${to})`;
  const session_events = `SELECT station_id, evse_id,
      if(${stopped} > ${started}, [${started} * 2 + 1, ${stopped} * 2], emptyArrayInt64()) AS occupied_events,
      if(${charge_end} > ${started}, [${started} * 2 + 1, ${charge_end} * 2], emptyArrayInt64()) AS charging_events
    FROM ${source}`;
  // Time covered by at least one interval: the events sorted, the number of intervals open after
  // each (a running sum of +1 and -1), and the time to the next event wherever that is above 0.
  // A connector's statuses and a session over the same minutes count those minutes once.
  const covered_ms = (events: string) =>
    `arraySum((depth, x, next) -> (depth > 0) * (intDiv(next, 2) - intDiv(x, 2)),
      arrayPopBack(arrayCumSum(arrayMap(x -> if(x % 2 = 1, toInt64(1), toInt64(-1)), ${events}))),
      arrayPopBack(${events}), arrayPopFront(${events}))`;
  return `SELECT station_id, evse_id, ${covered_ms('occupied')} AS occupied_ms, ${covered_ms('charging')} AS charging_ms
    FROM (
      SELECT station_id, evse_id, arraySort(groupArrayArray(occupied_events)) AS occupied,
        arraySort(groupArrayArray(charging_events)) AS charging
      FROM (
        SELECT station_id, evse_id, occupied_events, charging_events FROM (${status_events})
        UNION ALL
        SELECT station_id, evse_id, occupied_events, charging_events FROM (${session_events})
      )
      GROUP BY station_id, evse_id
    )`;
}

interface EvseMs {
  station_id: string;
  evse_id: number;
  occupied_ms: number;
  charging_ms: number;
}

function by_station_then_evse(a: EvseMs, b: EvseMs): number {
  return a.station_id < b.station_id ? -1 : a.station_id > b.station_id ? 1 : a.evse_id - b.evse_id;
}

async function evse_ms(store: Store, filter: UtilizationFilter): Promise<EvseMs[]> {
  // Forty thousand EVSEs at 20,000 stations: rows as arrays, in the order of evse_times_sql.
  const rows = await store.query_arrays<[string, number, unknown, unknown]>(evse_times_sql(store, filter));
  const evses = rows.map(([station_id, evse_id, occupied_ms, charging_ms]) => ({
    station_id,
    evse_id: Number(evse_id),
    occupied_ms: count_of(occupied_ms),
    charging_ms: count_of(charging_ms),
  }));
  // Sorted here rather than by the store: the answers have always been in UTF-16 order, not the
  // store's byte order.
  return evses.sort(by_station_then_evse);
}

/** A utilization figure that breaks charging <= occupied <= range: a bug in the query. */
export class UtilizationInvariantError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UtilizationInvariantError';
  }
}

/** Throws UtilizationInvariantError unless 0 <= charging <= occupied <= range for each EVSE. */
export function assert_utilization(
  evses: readonly { station_id: string; evse_id: number; occupied_ms: number; charging_ms: number }[],
  range_ms: number,
): void {
  for (const e of evses) {
    if (!(e.charging_ms >= 0 && e.charging_ms <= e.occupied_ms && e.occupied_ms <= range_ms)) {
      throw new UtilizationInvariantError(
        `station ${e.station_id} EVSE ${e.evse_id}: charging ${e.charging_ms} ms, occupied ${e.occupied_ms} ms, range ${range_ms} ms; charging <= occupied <= range is broken`,
      );
    }
  }
}

export async function utilization(store: Store, filter: UtilizationFilter): Promise<Utilization> {
  const range_ms = filter.to_ms - filter.from_ms;
  const evses = await evse_ms(store, filter);
  assert_utilization(evses, range_ms);
  const stations: StationUtilization[] = [];
  for (let i = 0; i < evses.length; ) {
    const station_id = evses[i]!.station_id;
    let n = 0;
    let occupied_ms = 0;
    let charging_ms = 0;
    for (; i < evses.length && evses[i]!.station_id === station_id; i++) {
      n += 1;
      occupied_ms += evses[i]!.occupied_ms;
      charging_ms += evses[i]!.charging_ms;
    }
    stations.push(station_figures(station_id, n, occupied_ms, charging_ms, range_ms));
  }
  return {
    range_s: range_ms / 1000,
    evses: evses.map((e) => ({
      station_id: e.station_id,
      evse_id: e.evse_id,
      occupied_s: e.occupied_ms / 1000,
      charging_s: e.charging_ms / 1000,
      occupied_percent: percent(e.occupied_ms, range_ms),
      charging_percent: percent(e.charging_ms, range_ms),
    })),
    stations,
  };
}

export function station_figures(
  station_id: string,
  evse_count: number,
  occupied_ms: number,
  charging_ms: number,
  range_ms: number,
): StationUtilization {
  return {
    station_id,
    evse_count,
    occupied_s: occupied_ms / 1000,
    charging_s: charging_ms / 1000,
    occupied_percent: percent(occupied_ms, evse_count * range_ms),
    charging_percent: percent(charging_ms, evse_count * range_ms),
  };
}
