import {
  facts_from,
  type MoneyFigures,
  type MoneyRow,
  money_columns,
  money_figures,
  type ZonedFilter,
} from './query-filter.js';
import { sql } from './sql.js';
import type { Store } from './store.js';

/**
 * Sessions, energy and revenue by local weekday (ISO: 1 = Monday) and hour of the session's
 * start, per currency. Only cells with sessions are returned.
 */
export interface PeakHourCell extends MoneyFigures {
  weekday: number;
  hour: number;
}

export async function peak_hours(store: Store, filter: ZonedFilter): Promise<PeakHourCell[]> {
  const tz = sql`${filter.time_zone}`;
  const rows = await store.query<MoneyRow & { weekday: number; hour: number }>(
    `SELECT toDayOfWeek(toTimeZone(started_at, ${tz})) AS weekday, toHour(toTimeZone(started_at, ${tz})) AS hour, currency,
       ${money_columns}
     FROM ${facts_from(store, filter)}
     GROUP BY weekday, hour, currency
     ORDER BY weekday, hour, currency`,
  );
  return rows.map((r) => ({ weekday: Number(r.weekday), hour: Number(r.hour), ...money_figures(r) }));
}
