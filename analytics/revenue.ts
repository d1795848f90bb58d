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

/** Revenue of the sessions started in the range, per currency, cut five ways. */
export interface Revenue {
  totals: MoneyFigures[];
  by_day: (MoneyFigures & { day: string })[];
  by_station: (MoneyFigures & { station_id: string })[];
  by_tariff: (MoneyFigures & { tariff_id: string })[];
  by_payment_method: (MoneyFigures & { payment_method: string })[];
}

const dimensions = ['total', 'day', 'station', 'tariff', 'payment_method'] as const;

export async function revenue(store: Store, filter: ZonedFilter): Promise<Revenue> {
  // One pass over the collapsed sessions: each session is counted once in each cut, so the five
  // cuts come from one FINAL read instead of five.
  const rows = await store.query<MoneyRow & { dimension: string; key: string }>(
    `SELECT cut.1 AS dimension, cut.2 AS key, currency, ${money_columns}
     FROM ${facts_from(store, filter)}
     ARRAY JOIN [
       ('total', ''),
       ('day', toString(toDate(toTimeZone(started_at, ${sql`${filter.time_zone}`})))),
       ('station', station_id),
       ('tariff', tariff_id),
       ('payment_method', payment_method)
     ] AS cut
     GROUP BY dimension, key, currency
     ORDER BY dimension, key, currency`,
  );
  const result: Revenue = { totals: [], by_day: [], by_station: [], by_tariff: [], by_payment_method: [] };
  for (const r of rows) {
    const figures = money_figures(r);
    switch (r.dimension as (typeof dimensions)[number]) {
      case 'total':
        result.totals.push(figures);
        break;
      case 'day':
        result.by_day.push({ day: r.key, ...figures });
        break;
      case 'station':
        result.by_station.push({ station_id: r.key, ...figures });
        break;
      case 'tariff':
        result.by_tariff.push({ tariff_id: r.key, ...figures });
        break;
      case 'payment_method':
        result.by_payment_method.push({ payment_method: r.key, ...figures });
        break;
      default:
        throw new Error(`unexpected revenue dimension ${r.dimension}`);
    }
  }
  return result;
}
