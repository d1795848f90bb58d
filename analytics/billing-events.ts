import { ident, sql } from './sql.js';
import type { Store } from './store.js';

/**
 * The billing ledger's events (billing/events.ts) as shipped to ClickHouse by
 * billing/analytics/shipper.ts: one row per event, exactly once.
 *
 * Exactly once without deduplication on read: the table is a plain MergeTree with no partition
 * key, and each shipment is one INSERT of at most a few thousand rows, which ClickHouse writes as
 * one part, all or nothing (18.16 and current alike). The shipper's cursor is the largest
 * (xid, id) in this table itself, so the batch and the cursor are one write: there is no moment
 * between "rows inserted" and "cursor saved" at which a crash could double or drop rows.
 *
 * Besides the event's own fields, the shipper copies what the figures need from the ledger's
 * immutable rows at shipping time: the VAT parts and the credited invoice of an issued document,
 * the due date of an invoice, and the deadline of a dispute case in the state it enters.
 */
export function billing_event_statements(db: string): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS ${db}.billing_events (
      xid UInt64,
      id UInt64,
      kind String,
      occurred_at DateTime('UTC'),
      occurred_at_ms Int64,
      legal_entity_id String,
      account_id String,
      invoice_id Int64,
      amount_minor Int64,
      currency String,
      method String,
      failure_code String,
      reason String,
      outcome String,
      source String,
      state_from String,
      state_to String,
      attempt UInt32,
      case_id Int64,
      station_id String,
      credited_invoice_id Int64,
      due_date Date,
      deadline_at_ms Int64,
      vat_percent Array(String),
      vat_net_minor Array(Int64),
      vat_minor Array(Int64),
      attributes String,
      shipped_at_ms Int64
    ) ENGINE = MergeTree
    ORDER BY (xid, id)`,
  ];
}

/**
 * Views over the shipped events for the dashboard and analytics/billing.ts (plain views: figures
 * are computed when read, from the one table that is written exactly once).
 */
export function billing_view_statements(db: string): string[] {
  return [
    // One row per issued invoice: what it is, what was received against it (SEPA returns and
    // refunds taken back), what credit notes took off it, and when it was last paid in full.
    `CREATE VIEW IF NOT EXISTS ${db}.billing_invoices AS
    SELECT
      doc_id AS invoice_id,
      any(account_id) AS account_id,
      any(currency) AS currency,
      maxIf(occurred_at_ms, kind = 'invoice_issued') AS issued_at_ms,
      maxIf(due_date, kind = 'invoice_issued') AS due_date,
      sumIf(amount_minor, kind = 'invoice_issued') AS total_minor,
      sumIf(amount_minor, kind = 'payment_received') - sumIf(amount_minor, kind IN ('debit_returned', 'payment_refunded'))
        AS received_minor,
      sumIf(amount_minor, kind = 'credit_note_issued') AS credited_minor,
      maxIf(occurred_at_ms, kind = 'invoice_paid') AS paid_at_ms,
      countIf(kind = 'debit_returned') AS returns
    FROM (
      SELECT if(kind = 'credit_note_issued', credited_invoice_id, invoice_id) AS doc_id, kind, account_id, currency,
        occurred_at_ms, due_date, amount_minor
      FROM ${db}.billing_events
      WHERE kind IN ('invoice_issued', 'payment_received', 'debit_returned', 'payment_refunded', 'credit_note_issued',
        'invoice_paid')
    )
    WHERE doc_id != 0
    GROUP BY doc_id
    HAVING issued_at_ms != 0`,
    // Revenue recognised per VAT rate: each issued document's VAT parts, credit notes negative.
    `CREATE VIEW IF NOT EXISTS ${db}.billing_vat_revenue AS
    SELECT occurred_at, occurred_at_ms, kind, invoice_id, currency, part_rate AS vat_rate,
      if(kind = 'credit_note_issued', -part_net, part_net) AS net_part_minor,
      if(kind = 'credit_note_issued', -part_vat, part_vat) AS vat_part_minor
    FROM ${db}.billing_events
    ARRAY JOIN vat_percent AS part_rate, vat_net_minor AS part_net, vat_minor AS part_vat
    WHERE kind IN ('invoice_issued', 'credit_note_issued')`,
    // Dispute cases from their events: the state each case is in now and that state's deadline
    // (a case's changes lock its ledger row, so a later change has the larger event id).
    `CREATE VIEW IF NOT EXISTS ${db}.billing_dispute_cases AS
    SELECT case_id,
      argMaxIf(state_to, id, kind != 'dispute_resolved') AS state,
      argMaxIf(deadline_at_ms, id, kind != 'dispute_resolved') AS deadline_at_ms,
      minIf(occurred_at_ms, kind = 'dispute_opened') AS opened_at_ms,
      anyIf(reason, kind = 'dispute_opened') AS reason,
      anyIf(source, kind = 'dispute_opened') AS source,
      anyIf(station_id, kind = 'dispute_opened') AS station_id,
      anyIf(currency, kind = 'dispute_opened') AS currency,
      sumIf(amount_minor, kind = 'dispute_opened') AS disputed_minor,
      anyIf(outcome, kind = 'dispute_resolved') AS outcome,
      maxIf(occurred_at_ms, kind = 'dispute_resolved') AS resolved_at_ms,
      sumIf(amount_minor, kind = 'dispute_resolved') AS credited_minor
    FROM ${db}.billing_events
    WHERE kind IN ('dispute_opened', 'dispute_state_changed', 'dispute_resolved') AND case_id != 0
    GROUP BY case_id`,
  ];
}

/** A row of billing_events as the shipper writes it (JSONEachRow). */
export interface BillingEventRow {
  xid: number;
  id: number;
  kind: string;
  occurred_at: number;
  occurred_at_ms: number;
  legal_entity_id: string;
  account_id: string;
  invoice_id: number;
  amount_minor: number;
  currency: string;
  method: string;
  failure_code: string;
  reason: string;
  outcome: string;
  source: string;
  state_from: string;
  state_to: string;
  attempt: number;
  case_id: number;
  station_id: string;
  credited_invoice_id: number;
  due_date: string;
  deadline_at_ms: number;
  vat_percent: string[];
  vat_net_minor: number[];
  vat_minor: number[];
  attributes: string;
  shipped_at_ms: number;
}

/** Where the shipped events end: the largest (xid, id) in the table, or (0, 0) when empty. */
export async function billing_events_cursor(store: Store): Promise<{ xid: number; id: number }> {
  const db = ident(store.database).text;
  const [top] = await store.query<{ xid: string | number; n: string | number }>(
    `SELECT max(xid) AS xid, count() AS n FROM ${db}.billing_events`,
  );
  if (Number(top?.n ?? 0) === 0) return { xid: 0, id: 0 };
  const xid = Number(top!.xid);
  const [last] = await store.query<{ id: string | number }>(
    sql`SELECT max(id) AS id FROM ${ident(store.database)}.billing_events WHERE xid = ${xid}`.text,
  );
  return { xid, id: Number(last?.id ?? 0) };
}

/**
 * Waits while an INSERT into billing_events is still running on the server: a shipper killed
 * after sending its batch leaves the server finishing it, and a successor reading the cursor
 * before that insert lands would send the same rows again. Embedded (chdb): the engine died with
 * its process, nothing can be in flight.
 */
export async function wait_for_billing_event_inserts(store: Store, timeout_ms = 60_000): Promise<void> {
  if (store.transport === 'chdb') return;
  const pattern = `%INSERT INTO ${ident(store.database).text}.billing_events%`;
  const deadline = Date.now() + timeout_ms;
  for (;;) {
    const [row] = await store.query<{ n: string | number }>(
      sql`SELECT count() AS n FROM system.processes WHERE query LIKE ${pattern} AND query NOT LIKE '%system.processes%'`
        .text,
    );
    if (Number(row?.n ?? 0) === 0) return;
    if (Date.now() > deadline) throw new Error('an insert into billing_events is still running');
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function insert_billing_events(store: Store, rows: readonly BillingEventRow[]): Promise<void> {
  await store.insert_json_rows(
    'billing_events',
    rows.map((r) => JSON.stringify(r)),
  );
}
