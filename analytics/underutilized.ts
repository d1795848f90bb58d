import type { Store } from './store.js';
import { type StationUtilization, type UtilizationFilter, utilization } from './utilization.js';

/**
 * Stations whose occupied share of the range is below a threshold, least used first (ties by
 * station id), at most `limit` of them. Uses the utilization rules (utilization.ts).
 */
export async function underutilized_stations(
  store: Store,
  filter: UtilizationFilter & { threshold_percent: number; limit: number },
): Promise<StationUtilization[]> {
  const { stations } = await utilization(store, filter);
  return stations
    .filter((s) => s.occupied_percent < filter.threshold_percent)
    .sort((a, b) =>
      a.occupied_percent !== b.occupied_percent
        ? a.occupied_percent - b.occupied_percent
        : a.station_id < b.station_id
          ? -1
          : 1,
    )
    .slice(0, filter.limit);
}
