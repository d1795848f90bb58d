import { FieldError } from '../../core/field-error.js';
import { text_of_minor } from '../amounts.js';
import type { Queryable } from '../ledger.js';
import {
  type TerminalReconciliation,
  type TerminalReconciliationOptions,
  terminal_reconciliation,
} from '../pay-at-charger/terminal-reconciliation.js';
import { type PayoutReport, payout_report } from '../payments/payouts.js';

/**
 * The reconciliation of a day: every bank file line booked that day was stored with the one
 * collection or invoice it matched (bank-returns.ts); this reports those that matched nothing,
 * matched with another amount or currency, or repeated a line already applied, the collections
 * due by that day that no bank line has settled, returned or rejected yet, and the bank charges;
 * and from the card gateway (billing/payments/payouts.ts): the payouts arriving that day, each
 * against the sum of its balance transactions and the ledger's payments (what did not match
 * listed), balance transactions recorded that day that matched no ledger payment or disagree with
 * it, and the provider fees booked that day.
 */
export interface ReconciliationReport extends PayoutReport {
  day: string;
  lines_total: number;
  lines_matched: number;
  items: {
    file_id: number;
    message_type: string;
    line_no: number;
    source_line: number;
    kind: string;
    status: string;
    amount: string;
    currency: string;
    reference: string;
    reason_code: string;
    attempt_id: number | null;
    invoice_id: number | null;
    note: string;
  }[];
  collections_unconfirmed: {
    attempt_id: number;
    invoice_id: number;
    end_to_end_id: string;
    amount: string;
    currency: string;
    requested_on: string;
  }[];
  fees: { currency: string; amount: string; amount_minor: number }[];
  /**
   * Payment terminal captures confirmed that day against their rated sessions, and the terminal
   * sessions no confirmation has settled after the grace period (pay at the charger).
   */
  terminal_captures: TerminalReconciliation;
}

/** Items listed per report at most (the counts cover all). */
export const reconciliation_items_max = 10_000;

export function validate_day(value: unknown, field = 'day'): string {
  if (
    typeof value !== 'string' ||
    !/^\d{4}-\d{2}-\d{2}$/.test(value) ||
    Number.isNaN(Date.parse(`${value}T00:00:00Z`))
  ) {
    throw new FieldError(field, 'must be a date YYYY-MM-DD');
  }
  return value;
}

export async function reconciliation_report(
  db: Queryable,
  day_value: unknown,
  options: { terminal?: TerminalReconciliationOptions } = {},
): Promise<ReconciliationReport> {
  const day = validate_day(day_value);
  const [counts] = await db.query<{ total: number; matched: number }>(
    `SELECT count(*)::int AS total, count(*) FILTER (WHERE status = 'matched')::int AS matched
     FROM bank_file_lines WHERE booked_on = $1::date`,
    [day],
  );
  const items = await db.query<{
    file_id: number;
    message_type: string;
    line_no: number;
    source_line: number;
    kind: string;
    status: string;
    amount_minor: number;
    currency: string;
    reference: string;
    reason_code: string;
    attempt_id: number | null;
    invoice_id: number | null;
    note: string;
  }>(
    `SELECT l.file_id, f.message_type, l.line_no, l.source_line, l.kind, l.status, l.amount_minor, l.currency, l.reference,
       l.reason_code, l.attempt_id, l.invoice_id, l.note
     FROM bank_file_lines l JOIN bank_files f ON f.id = l.file_id
     WHERE l.booked_on = $1::date AND l.status <> 'matched' ORDER BY l.file_id, l.line_no LIMIT $2`,
    [day, reconciliation_items_max],
  );
  const unconfirmed = await db.query<{
    attempt_id: number;
    invoice_id: number;
    end_to_end_id: string;
    amount_minor: number;
    currency: string;
    requested_on: string;
  }>(
    `SELECT id AS attempt_id, invoice_id, end_to_end_id, amount_minor, currency, to_char(requested_on, 'YYYY-MM-DD') AS requested_on
     FROM collection_attempts WHERE status = 'submitted' AND requested_on <= $1::date ORDER BY id LIMIT $2`,
    [day, reconciliation_items_max],
  );
  const fees = await db.query<{ currency: string; amount_minor: number }>(
    `SELECT currency, sum(fee_minor)::int8 AS amount_minor FROM bank_file_lines
     WHERE booked_on = $1::date AND fee_minor > 0 GROUP BY currency ORDER BY currency`,
    [day],
  );
  const money = (minor: number, currency: string) => text_of_minor(minor, currency === '' ? 'EUR' : currency);
  return {
    day,
    lines_total: counts?.total ?? 0,
    lines_matched: counts?.matched ?? 0,
    items: items.map(({ amount_minor, ...rest }) => ({
      ...rest,
      amount: money(amount_minor, rest.currency),
    })),
    collections_unconfirmed: unconfirmed.map(({ amount_minor, ...rest }) => ({
      ...rest,
      amount: money(amount_minor, rest.currency),
    })),
    fees: fees.map((f) => ({ ...f, amount: money(f.amount_minor, f.currency) })),
    terminal_captures: await terminal_reconciliation(db, day, options.terminal),
    ...(await payout_report(db, day)),
  };
}
