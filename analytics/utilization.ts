import { type AnalyticsFilter, and, count_of, facts_from } from './query-filter.js';
import { ident, type SqlFragment, sql, sql_array } from './sql.js';
import type { Store } from './store.js';

/**
 * Utilization rules.
 * - Occupied time comes from connector_status: a connector is occupied from a StatusNotification
 *   with a status that means a vehicle is at it (OCPP 1.6 Preparing, Charging, SuspendedEV,
 *   SuspendedEVSE, Finishing; OCPP 2.0.1 Occupied) until its next status notification. Available,
 *   Reserved (no vehicle yet), Unavailable, Faulted and anything unknown are not occupied. The
 *   status in force at `from` is the connector's last one before it. An EVSE serves one vehicle
 *   at a time (OCPP 2.0.1 part 1, 3.1: one connector of an EVSE in use at a time), so its
 *   connectors' occupied times are added up. Connector 0 of OCPP 1.6 (the whole charge point) is
 *   not a place a vehicle stands and is left out.
 * - Charging time comes from the rated sessions, because OCPP 2.0.1 reports no Charging status:
 *   a session's charging time is its duration minus its idle (parking) time, counted from its
 *   start (a vehicle charges first and idles after), cut to the range. Sessions are looked for
 *   up to `charging_lookback_days` before `from`.
 * - Percentages are of the range's length times the number of EVSEs; an EVSE counts when it has
 *   a status or a session before `to`.
 */
export const occupied_statuses = [
  'Preparing',
  'Charging',
  'SuspendedEV',
  'SuspendedEVSE',
  'Finishing',
  'Occupied',
] as const;

export const charging_lookback_days = 7;

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

async function occupied_ms_by_evse(
  store: Store,
  filter: UtilizationFilter,
): Promise<{ station_id: string; evse_id: number; occupied_ms: number }[]> {
  const db = ident(store.database);
  const { from_ms: f, to_ms: t } = filter;
  const where: SqlFragment[] = [sql`timestamp_ms < ${t}`, sql`NOT (evse_id = 0 AND connector_id = 0)`];
  if (filter.station_id !== undefined) where.push(sql`charge_point_id = ${filter.station_id}`);
  if (filter.evse_id !== undefined)
    where.push(sql`if(evse_id > 0, evse_id, connector_id) = ${filter.evse_id}`);
  // Without window functions (ClickHouse 18.16): each connector's changes in the range as sorted
  // arrays, preceded by the status in force at `from`; each status lasts until the next one.
  const rows = await store.query<{ station_id: string; evse_id: number; occupied_ms: unknown }>(
    `SELECT station_id, evse_id, sum(occupied_ms) AS occupied_ms FROM (
      SELECT station_id, evse_id,
        arrayConcat(if(seen_before, [toInt64(${sql`${f}`})], emptyArrayInt64()), arrayMap(x -> x.1, changes)) AS starts,
        arrayConcat(if(seen_before, [status_before], emptyArrayString()), arrayMap(x -> x.2, changes)) AS statuses,
        arrayPushBack(arrayPopFront(starts), toInt64(${sql`${t}`})) AS ends,
        arraySum((s, a, b) -> if(has(${sql_array(occupied_statuses)}, s), b - a, 0), statuses, starts, ends) AS occupied_ms
      FROM (
        SELECT charge_point_id AS station_id, if(evse_id > 0, evse_id, connector_id) AS evse_id, connector_id,
          countIf(timestamp_ms < ${sql`${f}`}) > 0 AS seen_before,
          argMaxIf(status, (timestamp_ms, status), timestamp_ms < ${sql`${f}`}) AS status_before,
          arraySort(groupArrayIf((timestamp_ms, status), timestamp_ms >= ${sql`${f}`})) AS changes
        FROM ${db}.connector_status FINAL
        WHERE ${and(where)}
        GROUP BY station_id, evse_id, connector_id
      )
    ) GROUP BY station_id, evse_id`,
  );
  return rows.map((r) => ({
    station_id: r.station_id,
    evse_id: Number(r.evse_id),
    occupied_ms: count_of(r.occupied_ms),
  }));
}

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

/** The EVSEs known before `to` (from statuses or sessions), so idle ones show as 0 %. */
async function known_evses(store: Store, filter: UtilizationFilter): Promise<string[]> {
  const db = ident(store.database);
  const status_where: SqlFragment[] = [
    sql`timestamp_ms < ${filter.to_ms}`,
    sql`NOT (evse_id = 0 AND connector_id = 0)`,
  ];
  const facts_where: SqlFragment[] = [sql`started_at_ms < ${filter.to_ms}`];
  if (filter.station_id !== undefined) {
    status_where.push(sql`charge_point_id = ${filter.station_id}`);
    facts_where.push(sql`station_id = ${filter.station_id}`);
  }
  if (filter.evse_id !== undefined) {
    status_where.push(sql`if(evse_id > 0, evse_id, connector_id) = ${filter.evse_id}`);
    facts_where.push(sql`evse_id = ${filter.evse_id}`);
  }
  const rows = await store.query<{ station_id: string; evse_id: number }>(
    `SELECT DISTINCT station_id, evse_id FROM (
       SELECT charge_point_id AS station_id, if(evse_id > 0, evse_id, connector_id) AS evse_id
       FROM ${db}.connector_status WHERE ${and(status_where)}
       UNION ALL
       SELECT station_id, evse_id FROM ${db}.session_facts WHERE ${and(facts_where)}
     )`,
  );
  return rows.map((r) => evse_key(r.station_id, Number(r.evse_id)));
}

function evse_key(station_id: string, evse_id: number): string {
  return JSON.stringify([station_id, evse_id]);
}

export async function utilization(store: Store, filter: UtilizationFilter): Promise<Utilization> {
  const range_ms = filter.to_ms - filter.from_ms;
  const occupied = await occupied_ms_by_evse(store, filter);
  const charging = await charging_ms_by_evse(store, filter);
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
  for (const key of await known_evses(store, filter)) {
    const [station_id, evse_id] = JSON.parse(key) as [string, number];
    entry(station_id, evse_id);
  }
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
