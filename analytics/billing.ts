import { ident, SqlFragment, sql } from './sql.js';
import type { Store } from './store.js';

/**
 * Billing figures from the shipped ledger events (analytics/billing-events.ts views), for one
 * currency and the documents issued in [from_ms, to_ms): invoices issued, settled and overdue at
 * `to_ms`, days to pay, payment methods with their failure rate, revenue per VAT rate, and the
 * dispute cases past their deadline. Amounts are integer minor units; the same SQL runs on
 * ClickHouse 18.16 and current servers.
 */
export interface BillingFigures {
  invoices: {
    issued: number;
    issued_minor: number;
    settled: number;
    overdue: number;
    overdue_minor: number;
    outstanding_minor: number;
    received_minor: number;
    credited_minor: number;
  };
  days_to_pay: { paid: number; mean_days: number; max_days: number };
  methods: { method: string; payments: number; received_minor: number; attempts: number; failures: number }[];
  vat: { vat_rate: string; net_minor: number; vat_minor: number }[];
  disputes_past_deadline: { case_id: number; reason: string; state: string; deadline_at_ms: number }[];
}

const n = (v: unknown) => Number(v ?? 0);

export async function billing_figures(
  store: Store,
  range: { from_ms: number; to_ms: number; currency: string },
): Promise<BillingFigures> {
  const db = ident(store.database).text;
  const { from_ms, to_ms, currency } = range;
  const to_day = Math.floor(to_ms / 86_400_000);
  // A fixed phrase of this file, no value in it.
  const open = new SqlFragment('(total_minor - credited_minor - received_minor)');
  const [inv] = await store.query<Record<string, unknown>>(
    sql`SELECT count() AS issued, sum(total_minor) AS issued_total,
       countIf(${open} <= 0) AS settled,
       countIf(${open} > 0 AND toRelativeDayNum(due_date) < ${to_day}) AS overdue,
       sumIf(${open}, ${open} > 0 AND toRelativeDayNum(due_date) < ${to_day}) AS overdue_total,
       sumIf(${open}, ${open} > 0) AS outstanding_total,
       sum(received_minor) AS received_total, sum(credited_minor) AS credited_total,
       countIf(paid_at_ms != 0 AND ${open} <= 0) AS paid,
       sumIf(paid_at_ms - issued_at_ms, paid_at_ms != 0 AND ${open} <= 0) AS paid_ms_total,
       maxIf(paid_at_ms - issued_at_ms, paid_at_ms != 0 AND ${open} <= 0) AS paid_ms_max
     FROM ${ident(store.database)}.billing_invoices
     WHERE currency = ${currency} AND issued_at_ms >= ${from_ms} AND issued_at_ms < ${to_ms}`.text,
  );
  const paid = n(inv?.paid);
  const methods = await store.query<Record<string, unknown>>(
    sql`SELECT method, countIf(kind = 'payment_received') AS payments,
       sumIf(amount_minor, kind = 'payment_received') AS received_total,
       countIf(kind = 'collection_attempted') AS attempts,
       countIf(kind IN ('collection_failed', 'debit_returned')) AS failures
     FROM ${ident(store.database)}.billing_events
     WHERE currency = ${currency} AND occurred_at_ms >= ${from_ms} AND occurred_at_ms < ${to_ms} AND method != ''
       AND kind IN ('payment_received', 'collection_attempted', 'collection_failed', 'debit_returned')
     GROUP BY method ORDER BY method`.text,
  );
  const vat = await store.query<Record<string, unknown>>(
    sql`SELECT vat_rate, sum(net_part_minor) AS net_total, sum(vat_part_minor) AS vat_total
     FROM ${ident(store.database)}.billing_vat_revenue
     WHERE currency = ${currency} AND occurred_at_ms >= ${from_ms} AND occurred_at_ms < ${to_ms}
     GROUP BY vat_rate ORDER BY toFloat64(vat_rate) DESC`.text,
  );
  const late = await store.query<Record<string, unknown>>(
    `SELECT case_id, reason, state, deadline_at_ms FROM ${db}.billing_dispute_cases
     WHERE state NOT IN ('resolved', '') AND deadline_at_ms != 0 AND deadline_at_ms < ${sql`${to_ms}`.text}
     ORDER BY deadline_at_ms, case_id`,
  );
  return {
    invoices: {
      issued: n(inv?.issued),
      issued_minor: n(inv?.issued_total),
      settled: n(inv?.settled),
      overdue: n(inv?.overdue),
      overdue_minor: n(inv?.overdue_total),
      outstanding_minor: n(inv?.outstanding_total),
      received_minor: n(inv?.received_total),
      credited_minor: n(inv?.credited_total),
    },
    days_to_pay: {
      paid,
      mean_days: paid === 0 ? 0 : n(inv?.paid_ms_total) / paid / 86_400_000,
      max_days: paid === 0 ? 0 : n(inv?.paid_ms_max) / 86_400_000,
    },
    methods: methods.map((m) => ({
      method: String(m.method),
      payments: n(m.payments),
      received_minor: n(m.received_total),
      attempts: n(m.attempts),
      failures: n(m.failures),
    })),
    vat: vat.map((v) => ({
      vat_rate: String(v.vat_rate),
      net_minor: n(v.net_total),
      vat_minor: n(v.vat_total),
    })),
    disputes_past_deadline: late.map((c) => ({
      case_id: n(c.case_id),
      reason: String(c.reason),
      state: String(c.state),
      deadline_at_ms: n(c.deadline_at_ms),
    })),
  };
}
