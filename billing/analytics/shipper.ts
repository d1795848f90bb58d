import {
  type BillingEventRow,
  billing_events_cursor,
  insert_billing_events,
  wait_for_billing_event_inserts,
} from '../../analytics/billing-events.js';
import type { Store } from '../../analytics/store.js';
import type { Logger } from '../../core/log.js';
import {
  type DeadlineRules,
  type DisputeState,
  deadline_of,
  default_deadline_rules,
} from '../disputes/workflow.js';
import type { Ledger, Queryable } from '../ledger.js';

/**
 * Ships the ledger's outbox (billing_events) to ClickHouse exactly once, on PGlite and on a
 * PostgreSQL server, to chdb and to a ClickHouse server.
 *
 * Order: ids are a sequence and may commit out of order (a long transaction holds a small id
 * while later ids commit), so "the largest id shipped" is no cursor. Each event carries the id of
 * the transaction that wrote it (xid8, ledger migration 20). A batch takes only events whose xid
 * is below the xmin of the shipper's own snapshot, `pg_snapshot_xmin(pg_current_snapshot())`:
 * every transaction below it has committed or aborted (PostgreSQL docs, 9.27.5 "Transaction ID
 * and Snapshot Information Functions"), so no event can ever appear behind a cursor at
 * (xid, id). A transaction is given its xid at its first write, so one that began early but
 * writes late gets a later xid: still above the cursor.
 *
 * Durability: the cursor is not stored apart from the data. It is the largest (xid, id) in
 * ClickHouse's billing_events itself (analytics/billing-events.ts), and each batch is one INSERT
 * written as one part, atomically. A crash before the insert lands ships the batch again from the
 * same cursor; a crash after it finds the cursor past it. No second copy, no gap, and the rows are
 * counted without FINAL. Two more guards: a PostgreSQL advisory lock held for the whole batch, so
 * that two billing processes never ship the same batch at once; and before reading the cursor,
 * a wait until no INSERT into billing_events is still running on the server (the one a killed
 * predecessor sent may still be finishing there).
 */
export interface ShipOptions {
  /** Events per INSERT (one part each), at most. */
  batch_max?: number;
  /** Dispute deadlines as the disputes workflow computes them (DISPUTE_DEADLINE_WORKING_DAYS). */
  deadline_rules?: DeadlineRules;
  /** After each committed batch (the CLI's progress line; tests). */
  on_batch?: (shipped: number, cursor: { xid: number; id: number }) => void;
}

export const ship_batch_max_default = 1000;

/** Any fixed key: it serializes shippers with each other, nothing else. */
const ship_lock_key = 7245020;

interface LedgerEventRow {
  id: number;
  xid: string;
  kind: string;
  occurred_at_ms: number;
  legal_entity_id: string;
  account_id: string;
  invoice_id: number | null;
  amount_minor: number;
  currency: string;
  attributes: Record<string, unknown>;
  credited_invoice_id: number | null;
  due_date: string | null;
  case_time_zone: string | null;
  vat: { vat_percent: string; net_minor: number | string; vat_minor: number | string }[] | null;
}

function text(value: unknown): string {
  return value === undefined || value === null ? '' : String(value);
}

function int(value: unknown): number {
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : 0;
}

/** A ledger rate as `numeric(7,4)` text ("19.0000") in its shortest form ("19", "5.5"). */
function rate_text(value: string): string {
  return value.includes('.') ? value.replace(/0+$/, '').replace(/\.$/, '') : value;
}

export function billing_event_row(e: LedgerEventRow, rules: DeadlineRules, now_ms: number): BillingEventRow {
  const xid = Number(e.xid);
  if (!Number.isSafeInteger(xid)) throw new RangeError(`billing event ${e.id}: xid ${e.xid} beyond 2^53`);
  const a = e.attributes ?? {};
  const state_to = e.kind === 'dispute_opened' ? 'open' : text(a.to);
  let deadline_at_ms = 0;
  if ((e.kind === 'dispute_opened' || e.kind === 'dispute_state_changed') && e.case_time_zone !== null) {
    deadline_at_ms = deadline_of(state_to as DisputeState, e.occurred_at_ms, rules, e.case_time_zone) ?? 0;
  }
  const vat = e.vat ?? [];
  return {
    xid,
    id: e.id,
    kind: e.kind,
    occurred_at: Math.floor(e.occurred_at_ms / 1000),
    occurred_at_ms: e.occurred_at_ms,
    legal_entity_id: e.legal_entity_id,
    account_id: e.account_id,
    invoice_id: e.invoice_id ?? 0,
    amount_minor: e.amount_minor,
    currency: e.currency,
    method: text(a.method),
    failure_code: text(a.failure_code),
    reason: text(a.reason ?? a.reason_code),
    outcome: text(a.outcome),
    source: text(a.source),
    state_from: text(a.from),
    state_to,
    attempt: int(a.attempt),
    case_id: int(a.case_id),
    station_id: text(a.station_id),
    credited_invoice_id: e.credited_invoice_id ?? 0,
    due_date: e.due_date ?? '1970-01-01',
    deadline_at_ms,
    vat_percent: vat.map((v) => rate_text(v.vat_percent)),
    vat_net_minor: vat.map((v) => int(v.net_minor)),
    vat_minor: vat.map((v) => int(v.vat_minor)),
    attributes: JSON.stringify(a),
    shipped_at_ms: now_ms,
  };
}

/**
 * The next events after the cursor, below the horizon of committed transactions, with what the
 * figures need from the ledger's immutable rows (issued documents and dispute cases never change
 * the columns read here).
 */
async function next_events(
  tx: Queryable,
  cursor: { xid: number; id: number },
  batch_max: number,
): Promise<LedgerEventRow[]> {
  return await tx.query<LedgerEventRow>(
    `SELECT e.id, e.xid::text AS xid, e.kind, e.occurred_at_ms, e.legal_entity_id, e.account_id, e.invoice_id,
       e.amount_minor, e.currency, e.attributes,
       d.credited_invoice_id, d.due_date::text AS due_date, c.time_zone AS case_time_zone,
       (SELECT json_agg(json_build_object('vat_percent', v.vat_percent::text, 'net_minor', v.net_minor,
          'vat_minor', v.vat_minor) ORDER BY v.vat_percent)
        FROM invoice_vat v WHERE v.invoice_id = d.id) AS vat
     FROM billing_events e
     LEFT JOIN invoices d ON e.kind IN ('invoice_issued', 'credit_note_issued') AND d.id = e.invoice_id
     LEFT JOIN dispute_cases c ON e.kind IN ('dispute_opened', 'dispute_state_changed')
       AND c.id = CASE WHEN (e.attributes->>'case_id') ~ '^[0-9]{1,18}$' THEN (e.attributes->>'case_id')::int8 END
     WHERE e.xid < pg_snapshot_xmin(pg_current_snapshot())
       AND (e.xid, e.id) > ($1::text::xid8, $2::int8)
     ORDER BY e.xid, e.id
     LIMIT $3`,
    [String(cursor.xid), cursor.id, batch_max],
  );
}

export interface ShipResult {
  shipped: number;
  batches: number;
  /** False when another shipper held the lock: nothing was shipped by this call. */
  locked: boolean;
}

/** Ships everything committed so far, batch after batch; returns when a batch comes back short. */
export async function ship_billing_events(
  ledger: Ledger,
  store: Store,
  options: ShipOptions = {},
): Promise<ShipResult> {
  const batch_max = options.batch_max ?? ship_batch_max_default;
  const rules = options.deadline_rules ?? default_deadline_rules;
  const result: ShipResult = { shipped: 0, batches: 0, locked: true };
  for (;;) {
    const batch = await ledger.transaction(async (tx) => {
      const [lock] = await tx.query<{ ok: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS ok', [
        ship_lock_key,
      ]);
      if (lock?.ok !== true) return undefined;
      await wait_for_billing_event_inserts(store);
      const cursor = await billing_events_cursor(store);
      const events = await next_events(tx, cursor, batch_max);
      if (events.length === 0) return { n: 0, cursor };
      const now_ms = Date.now();
      const rows = events.map((e) => billing_event_row(e, rules, now_ms));
      await insert_billing_events(store, rows);
      const last = rows[rows.length - 1]!;
      return { n: rows.length, cursor: { xid: last.xid, id: last.id } };
    });
    if (batch === undefined) return { ...result, locked: false };
    if (batch.n > 0) {
      result.shipped += batch.n;
      result.batches += 1;
      options.on_batch?.(batch.n, batch.cursor);
    }
    if (batch.n < batch_max) return result;
  }
}

export interface ShipperHandle {
  stop(): Promise<void>;
}

/** The billing process's loop: a shipment every `interval_ms`, never two at once. */
export function start_billing_event_shipper(
  ledger: Ledger,
  store: Store,
  interval_ms: number,
  log: Logger,
  options: ShipOptions = {},
): ShipperHandle {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const pass = async () => {
    try {
      const r = await ship_billing_events(ledger, store, options);
      if (r.shipped > 0) log.info({ shipped: r.shipped, batches: r.batches }, 'billing events shipped');
    } catch (error) {
      log.warn({ err: error }, 'billing events shipment failed; next pass retries');
    }
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = pass().finally(schedule);
    }, interval_ms);
    timer.unref?.();
  };
  running = pass().finally(schedule);
  return {
    async stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      await running;
    },
  };
}
