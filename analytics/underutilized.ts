import { count_of } from './query-filter.js';
import { sql } from './sql.js';
import type { Store } from './store.js';
import {
  assert_utilization,
  evse_times_sql,
  type StationUtilization,
  station_figures,
  type UtilizationFilter,
} from './utilization.js';

/**
 * Stations whose occupied share of the range is below a threshold, least used first (ties by
 * station id), at most `limit` of them. Uses the utilization rules (utilization.ts).
 *
 * The store adds EVSEs up per station, keeps those below the threshold and cuts at `limit`, so
 * that `limit` rows travel back instead of every EVSE. Its percent is the one of percent() in
 * integers (half up); its tie order is by bytes, which for the ASCII ids of OCPI (CiString) is
 * the order of the final sort here.
 */
export async function underutilized_stations(
  store: Store,
  filter: UtilizationFilter & { threshold_percent: number; limit: number },
): Promise<StationUtilization[]> {
  const range_ms = filter.to_ms - filter.from_ms;
  const rows = await store.query<{
    station_id: string;
    evse_count: unknown;
    occupied_ms: unknown;
    charging_ms: unknown;
  }>(
    `SELECT station_id, evse_count, occupied_ms, charging_ms,
       if(whole_ms > 0, intDiv(occupied_ms * 20000 + whole_ms, greatest(2 * whole_ms, 1)), 0) AS occupied_hundredths
     FROM (
       SELECT station_id, toInt64(count()) AS evse_count, sum(occupied_ms) AS occupied_ms,
         sum(charging_ms) AS charging_ms, evse_count * ${sql`${range_ms}`} AS whole_ms
       FROM (${evse_times_sql(store, filter)})
       GROUP BY station_id
     )
     WHERE occupied_hundredths / 100 < ${sql`${filter.threshold_percent}`}
     ORDER BY occupied_hundredths, station_id
     LIMIT ${sql`${filter.limit}`}`,
  );
  // The utilization rules' invariant, per station over its EVSEs' whole time.
  assert_utilization(
    rows.map((r) => ({
      station_id: r.station_id,
      evse_id: 0,
      occupied_ms: count_of(r.occupied_ms) / Math.max(1, count_of(r.evse_count)),
      charging_ms: count_of(r.charging_ms) / Math.max(1, count_of(r.evse_count)),
    })),
    range_ms,
  );
  return rows
    .map((r) =>
      station_figures(
        r.station_id,
        count_of(r.evse_count),
        count_of(r.occupied_ms),
        count_of(r.charging_ms),
        range_ms,
      ),
    )
    .filter((s) => s.occupied_percent < filter.threshold_percent)
    .sort((a, b) =>
      a.occupied_percent !== b.occupied_percent
        ? a.occupied_percent - b.occupied_percent
        : a.station_id < b.station_id
          ? -1
          : 1,
    );
}
