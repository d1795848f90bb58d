import { occupied_statuses } from './occupancy-rollup.js';
import { type AnalyticsFilter, and, count_of, facts_from } from './query-filter.js';
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
 *   at a time (OCPP 2.0.1 part 1, 3.1: one connector of an EVSE in use at a time), so its
 *   connectors' occupied times are added up. Connector 0 of OCPP 1.6 (the whole charge point) is
 *   not a place a vehicle stands and is left out.
 * - Charging time comes from the rated sessions, because OCPP 2.0.1 reports no Charging status:
 *   a session's charging time is its duration minus its idle (parking) time, counted from its
 *   start (a vehicle charges first and idles after), cut to the range. Sessions are looked for
 *   up to `charging_lookback_days` before `from`.
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

async function occupied_ms_by_evse(
  store: Store,
  filter: UtilizationFilter,
): Promise<{ station_id: string; evse_id: number; occupied_ms: number }[]> {
  const db = ident(store.database);
  const { from_ms: f, to_ms: t } = filter;
  const where: SqlFragment[] = [
    sql`month >= ${month_of(f - status_lookback_days * 86_400_000)}`,
    sql`month <= ${month_of(t)}`,
  ];
  if (filter.station_id !== undefined) where.push(sql`station_id = ${filter.station_id}`);
  if (filter.evse_id !== undefined) where.push(sql`evse_id = ${filter.evse_id}`);
  // Without window functions (ClickHouse 18.16): each connector's changes as one sorted array of
  // numbers time * 2 + occupied (occupancy-rollup.ts); the state in force at `from` is the last
  // change before it; each state lasts until the next change, or `to`. At equal times the
  // not-occupied state sorts first, so the occupied one is in force after both.
  const f2 = sql`${f * 2}`;
  const rows = await store.query<{ station_id: string; evse_id: number; occupied_ms: unknown }>(
    `SELECT station_id, evse_id, sum(occupied_ms) AS occupied_ms FROM (
      SELECT station_id, evse_id, arraySort(groupArrayMerge(changes)) AS all_changes,
        arrayCount(x -> x < ${f2}, all_changes) AS before_n,
        arrayCount(x -> x < ${sql`${t * 2}`}, all_changes) AS until_n,
        arrayConcat(
          if(before_n > 0, [toInt64(${f2}) + all_changes[before_n] % 2], emptyArrayInt64()),
          arraySlice(all_changes, before_n + 1, until_n - before_n)) AS states,
        arrayMap(x -> intDiv(x, 2), states) AS starts,
        arrayPopFront(arrayDifference(arrayPushBack(starts, toInt64(${sql`${t}`})))) AS lengths,
        arraySum((x, d) -> (x % 2) * d, states, lengths) AS occupied_ms
      FROM ${db}.connector_changes_monthly
      WHERE ${and(where)}
      GROUP BY station_id, evse_id, connector_id
    ) GROUP BY station_id, evse_id`,
  );
  return rows.map((r) => ({
    station_id: r.station_id,
    evse_id: Number(r.evse_id),
    occupied_ms: count_of(r.occupied_ms),
  }));
}

/** Charging ms per EVSE; every EVSE with a session in the lookback or the range is listed. */
async function charging_ms_by_evse(
  store: Store,
  filter: UtilizationFilter,
): Promise<{ station_id: string; evse_id: number; charging_ms: number }[]> {
  const { from_ms: f, to_ms: t } = filter;
  const source = facts_from(store, {
    ...filter,
    from_ms: f - charging_lookback_days * 86_400_000,
  });
  const rows = await store.query<{ station_id: string; evse_id: number; charging_ms: unknown }>(
    `SELECT station_id, evse_id,
       sum(greatest(toInt64(0), least(started_at_ms + charging_ms, toInt64(${sql`${t}`})) - greatest(started_at_ms, toInt64(${sql`${f}`})))) AS charging_ms
     FROM (
       SELECT station_id, evse_id, started_at_ms,
         greatest(toInt64(0), toInt64(duration_s) - toInt64(parking_s)) * 1000 AS charging_ms
       FROM ${source}
     )
     GROUP BY station_id, evse_id`,
  );
  return rows.map((r) => ({
    station_id: r.station_id,
    evse_id: Number(r.evse_id),
    charging_ms: count_of(r.charging_ms),
  }));
}

function evse_key(station_id: string, evse_id: number): string {
  return JSON.stringify([station_id, evse_id]);
}

export async function utilization(store: Store, filter: UtilizationFilter): Promise<Utilization> {
  const range_ms = filter.to_ms - filter.from_ms;
  // Two independent reads (status rollup, session facts): let the store run them side by side.
  const [occupied, charging] = await Promise.all([
    occupied_ms_by_evse(store, filter),
    charging_ms_by_evse(store, filter),
  ]);
  const by_evse = new Map<string, { station_id: string; evse_id: number; occ: number; chg: number }>();
  const entry = (station_id: string, evse_id: number) => {
    const key = evse_key(station_id, evse_id);
    let e = by_evse.get(key);
    if (e === undefined) {
      e = { station_id, evse_id, occ: 0, chg: 0 };
      by_evse.set(key, e);
    }
    return e;
  };
  for (const r of occupied) entry(r.station_id, r.evse_id).occ += r.occupied_ms;
  for (const r of charging) entry(r.station_id, r.evse_id).chg += r.charging_ms;

  const evses = [...by_evse.values()]
    .sort((a, b) =>
      a.station_id < b.station_id ? -1 : a.station_id > b.station_id ? 1 : a.evse_id - b.evse_id,
    )
    .map((e) => ({
      station_id: e.station_id,
      evse_id: e.evse_id,
      occupied_s: e.occ / 1000,
      charging_s: e.chg / 1000,
      occupied_percent: percent(e.occ, range_ms),
      charging_percent: percent(e.chg, range_ms),
    }));
  const stations = new Map<string, { n: number; occ: number; chg: number }>();
  for (const e of by_evse.values()) {
    const s = stations.get(e.station_id) ?? { n: 0, occ: 0, chg: 0 };
    s.n += 1;
    s.occ += e.occ;
    s.chg += e.chg;
    stations.set(e.station_id, s);
  }
  return {
    range_s: range_ms / 1000,
    evses,
    stations: [...stations.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([station_id, s]) => ({
        station_id,
        evse_count: s.n,
        occupied_s: s.occ / 1000,
        charging_s: s.chg / 1000,
        occupied_percent: percent(s.occ, s.n * range_ms),
        charging_percent: percent(s.chg, s.n * range_ms),
      })),
  };
}
