import { Money } from '../core/money.js';
import {
  count_of,
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

interface RevenueRow extends MoneyRow {
  day: string;
  tariff_id: string;
  payment_method: string;
}

/** Adds up rows of one currency exactly (decimal text in, decimal text out). */
function add_rows(rows: readonly MoneyRow[]): MoneyRow {
  const sum = (field: 'revenue_excl_vat' | 'revenue_incl_vat') =>
    rows.reduce((total, r) => total.plus(r[field]), new Money(0)).toString();
  return {
    currency: rows[0]!.currency,
    sessions: rows.reduce((n, r) => n + count_of(r.sessions), 0),
    energy_wh: rows.reduce((n, r) => n + count_of(r.energy_wh), 0),
    revenue_excl_vat: sum('revenue_excl_vat'),
    revenue_incl_vat: sum('revenue_incl_vat'),
  };
}

/** Groups rows by key and currency, sorted by key then currency, each group added up. */
function cut<K extends string>(rows: readonly RevenueRow[], name: K, key: (r: RevenueRow) => string) {
  const groups = new Map<string, RevenueRow[]>();
  for (const r of rows) {
    const k = JSON.stringify([key(r), r.currency]);
    const group = groups.get(k);
    if (group === undefined) groups.set(k, [r]);
    else group.push(r);
  }
  return [...groups.entries()]
    .map(([k, group]) => [JSON.parse(k) as [string, string], group] as const)
    .sort(([a], [b]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(
      ([[k], group]) =>
        ({ [name]: k, ...money_figures(add_rows(group)) }) as MoneyFigures & Record<K, string>,
    );
}

export async function revenue(store: Store, filter: ZonedFilter): Promise<Revenue> {
  // Days, tariffs and payment methods are few: one query groups by all three and the cuts are
  // added up here, exactly. Stations are many: they get their own query, run alongside. Days
  // are grouped as dates and turned into text only once per group.
  const [rows, stations] = await Promise.all([
    store.query<RevenueRow>(
      `SELECT toDate(toTimeZone(started_at, ${sql`${filter.time_zone}`})) AS local_day,
         toString(local_day) AS day, tariff_id, payment_method, currency, ${money_columns}
       FROM ${facts_from(store, filter)}
       GROUP BY local_day, tariff_id, payment_method, currency`,
    ),
    store.query<MoneyRow & { station_id: string }>(
      `SELECT station_id, currency, ${money_columns}
       FROM ${facts_from(store, filter)}
       GROUP BY station_id, currency
       ORDER BY station_id, currency`,
    ),
  ]);
  return {
    totals: cut(rows, 'currency_', () => '').map(({ currency_: _, ...figures }) => figures),
    by_day: cut(rows, 'day', (r) => r.day),
    by_station: stations.map((r) => ({ station_id: r.station_id, ...money_figures(r) })),
    by_tariff: cut(rows, 'tariff_id', (r) => r.tariff_id),
    by_payment_method: cut(rows, 'payment_method', (r) => r.payment_method),
  };
}
