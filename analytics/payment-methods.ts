import { type AnalyticsFilter, count_of, facts_from, money_sum_text } from './query-filter.js';
import type { Store } from './store.js';

/**
 * How drivers paid, as the rating service records it in rated_sessions.payment_method. UNKNOWN
 * stands for rows without one (session_facts writes it for ''); a method not listed here (an older
 * or newer writer's) is still reported, under its own name.
 */
export const payment_method_labels = {
  RFID: 'RFID card of ours',
  APP: 'App (remote start)',
  AD_HOC: 'Ad hoc payment at the charger (QR code, card terminal)',
  TERMINAL: "Charger's own payment terminal",
  QR: 'QR code',
  ROAMING: "Roaming partner's token (per eMSP party)",
  // OCPP 2.0.1 IdTokenType NoAuthorization, and free vend: no one is billed.
  FREE: 'Free session (no authorization)',
  UNKNOWN: 'Not recorded',
} as const;

export type PaymentMethod = keyof typeof payment_method_labels;
export const payment_method_names = Object.keys(payment_method_labels) as PaymentMethod[];

export interface PaymentRevenue {
  currency: string;
  sessions: number;
  revenue_excl_vat: string;
  revenue_incl_vat: string;
}

/** One eMSP party's share of the roaming sessions ("CC*PID", the rated row's party). */
export interface PartyUse {
  party: string;
  sessions: number;
  energy_wh: number;
  revenue: PaymentRevenue[];
}

/** Sessions per payment method, most used first, with revenue per currency. */
export interface PaymentMethodUse {
  payment_method: string;
  /** From payment_method_labels; the method itself for one not listed. */
  label: string;
  sessions: number;
  sessions_percent: number;
  energy_wh: number;
  revenue: PaymentRevenue[];
  /** ROAMING only: the same figures per party, most sessions first. */
  parties?: PartyUse[];
}

function label_of(method: string): string {
  return (payment_method_labels as Record<string, string>)[method] ?? method;
}

function by_sessions_then<T extends { sessions: number }>(name: (x: T) => string) {
  return (a: T, b: T) => (b.sessions !== a.sessions ? b.sessions - a.sessions : name(a) < name(b) ? -1 : 1);
}

interface Row {
  grouped_by: string;
  currency: string;
  sessions: unknown;
  energy_wh: unknown;
  revenue_excl_vat: string;
  revenue_incl_vat: string;
}

/** Rows of (grouped_by, currency) as figures per grouped_by value, in the order of the rows. */
function group_rows(rows: readonly Row[]): Map<string, PartyUse> {
  const groups = new Map<string, PartyUse>();
  for (const r of rows) {
    const sessions = count_of(r.sessions);
    let group = groups.get(r.grouped_by);
    if (group === undefined) {
      group = { party: r.grouped_by, sessions: 0, energy_wh: 0, revenue: [] };
      groups.set(r.grouped_by, group);
    }
    group.sessions += sessions;
    group.energy_wh += count_of(r.energy_wh);
    group.revenue.push({
      currency: r.currency,
      sessions,
      revenue_excl_vat: money_sum_text(r.revenue_excl_vat, r.currency),
      revenue_incl_vat: money_sum_text(r.revenue_incl_vat, r.currency),
    });
  }
  return groups;
}

export async function payment_methods(store: Store, filter: AnalyticsFilter): Promise<PaymentMethodUse[]> {
  const figures = `currency, count() AS sessions, sum(energy_wh) AS energy_wh,
       toString(sum(total_excl_vat)) AS revenue_excl_vat, toString(sum(total_incl_vat)) AS revenue_incl_vat`;
  // The methods, and the roaming sessions once more per eMSP party: each sum comes exact from
  // the store rather than added up here.
  const [method_rows, party_rows] = await Promise.all([
    store.query<Row>(
      `SELECT payment_method AS grouped_by, ${figures}
       FROM ${facts_from(store, filter)}
       GROUP BY grouped_by, currency
       ORDER BY grouped_by, currency`,
    ),
    store.query<Row>(
      `SELECT party AS grouped_by, ${figures}
       FROM ${facts_from(store, filter)}
       WHERE payment_method = 'ROAMING'
       GROUP BY grouped_by, currency
       ORDER BY grouped_by, currency`,
    ),
  ]);
  const methods = group_rows(method_rows);
  const parties = [...group_rows(party_rows).values()].sort(by_sessions_then((p) => p.party));
  let sessions_total = 0;
  for (const m of methods.values()) sessions_total += m.sessions;
  const uses: PaymentMethodUse[] = [...methods.values()].map((m) => ({
    payment_method: m.party,
    label: label_of(m.party),
    sessions: m.sessions,
    sessions_percent: Math.round((m.sessions * 10_000) / sessions_total) / 100,
    energy_wh: m.energy_wh,
    revenue: m.revenue,
    ...(m.party === 'ROAMING' ? { parties } : {}),
  }));
  return uses.sort(by_sessions_then((u) => u.payment_method));
}
