import { type AnalyticsFilter, count_of, facts_from, money_sum_text } from './query-filter.js';
import type { Store } from './store.js';

/** How drivers paid: sessions per payment method, most used first, with revenue per currency. */
export interface PaymentMethodUse {
  payment_method: string;
  sessions: number;
  sessions_percent: number;
  energy_wh: number;
  revenue: { currency: string; sessions: number; revenue_excl_vat: string; revenue_incl_vat: string }[];
}

export async function payment_methods(store: Store, filter: AnalyticsFilter): Promise<PaymentMethodUse[]> {
  const rows = await store.query<{
    payment_method: string;
    currency: string;
    sessions: unknown;
    energy_wh: unknown;
    revenue_excl_vat: string;
    revenue_incl_vat: string;
  }>(
    `SELECT payment_method, currency, count() AS sessions, sum(energy_wh) AS energy_wh,
       toString(sum(total_excl_vat)) AS revenue_excl_vat, toString(sum(total_incl_vat)) AS revenue_incl_vat
     FROM ${facts_from(store, filter)}
     GROUP BY payment_method, currency
     ORDER BY payment_method, currency`,
  );
  const by_method = new Map<string, PaymentMethodUse>();
  let sessions_total = 0;
  for (const r of rows) {
    const sessions = count_of(r.sessions);
    sessions_total += sessions;
    let use = by_method.get(r.payment_method);
    if (use === undefined) {
      use = { payment_method: r.payment_method, sessions: 0, sessions_percent: 0, energy_wh: 0, revenue: [] };
      by_method.set(r.payment_method, use);
    }
    use.sessions += sessions;
    use.energy_wh += count_of(r.energy_wh);
    use.revenue.push({
      currency: r.currency,
      sessions,
      revenue_excl_vat: money_sum_text(r.revenue_excl_vat, r.currency),
      revenue_incl_vat: money_sum_text(r.revenue_incl_vat, r.currency),
    });
  }
  const uses = [...by_method.values()];
  for (const use of uses) use.sessions_percent = Math.round((use.sessions * 10_000) / sessions_total) / 100;
  return uses.sort((a, b) =>
    b.sessions !== a.sessions ? b.sessions - a.sessions : a.payment_method < b.payment_method ? -1 : 1,
  );
}
