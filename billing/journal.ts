import type { Queryable } from './ledger.js';

/**
 * The double-entry journal. Every money movement (an invoice issued, a credit note, a payment) is
 * one entry whose lines balance: debits = credits, checked here before anything is written and
 * again by the deferred constraint trigger `journal_entry_balanced` at commit. Entries are never
 * edited (a trigger refuses it): a mistake is corrected by another entry. (kind, source_id) is the
 * idempotency key: posting the same movement twice leaves one entry.
 *
 * Chart of accounts: `receivable` (party: the billing account), `revenue:vat_<rate>`,
 * `vat_payable:<rate>`, `cash`; payments add `account_credit` (party: the account: credit notes
 * kept for later invoices) and `unapplied_payments` (party: the account or `payment:<id>`: card
 * holds captured without an invoice yet).
 */
export interface JournalLine {
  ledger_account: string;
  party?: string;
  debit_minor: number;
  credit_minor: number;
}

export interface JournalEntry {
  kind:
    | 'invoice_issued'
    | 'credit_note_issued'
    | 'payment_received'
    // billing/collection: returned debits and bank charges
    | 'payment_reversed'
    | 'payment_fee'
    // billing/payments: gateway payments, refunds, chargebacks and account credit
    | 'payment_captured'
    | 'payment_refunded'
    | 'payment_charged_back'
    | 'chargeback_reversed'
    | 'account_credit_added'
    | 'account_credit_used'
    // billing/payments/payouts.ts: the provider's balance paid out to the bank (and a failed one)
    | 'payout_paid'
    | 'payout_failed';
  source_id: string;
  currency: string;
  posted_at_ms: number;
  description: string;
  lines: JournalLine[];
}

export class UnbalancedEntryError extends Error {}

export function assert_balanced(entry: JournalEntry): void {
  let debits = 0;
  let credits = 0;
  for (const line of entry.lines) {
    const one_side = (line.debit_minor === 0) !== (line.credit_minor === 0);
    if (!one_side || line.debit_minor < 0 || line.credit_minor < 0) {
      throw new UnbalancedEntryError(`${entry.kind} ${entry.source_id}: a line must be a debit or a credit`);
    }
    debits += line.debit_minor;
    credits += line.credit_minor;
  }
  if (entry.lines.length < 2 || debits !== credits) {
    throw new UnbalancedEntryError(
      `${entry.kind} ${entry.source_id}: debits ${debits} != credits ${credits} (${entry.lines.length} lines)`,
    );
  }
}

/** Posts the entry in the caller's transaction; returns its id (the existing one if already posted). */
export async function post_entry(tx: Queryable, entry: JournalEntry): Promise<number> {
  const [id] = await post_entries(tx, [entry]);
  return id!;
}

/**
 * Posts several entries with one statement for the entries and one for their lines (a billing run
 * books hundreds of invoices per transaction). Returns their ids in the order given.
 */
export async function post_entries(tx: Queryable, entries: readonly JournalEntry[]): Promise<number[]> {
  if (entries.length === 0) return [];
  // Zero lines (a 0-rate VAT of 0.00) carry nothing and would break the one-side check.
  const posted = entries.map((entry) => ({
    ...entry,
    lines: entry.lines.filter((l) => l.debit_minor !== 0 || l.credit_minor !== 0),
  }));
  for (const entry of posted) assert_balanced(entry);
  const inserted = await tx.query<{ id: number; kind: string; source_id: string }>(
    `INSERT INTO journal_entries (kind, source_id, currency, posted_at_ms, description)
     SELECT x.kind, x.source_id, x.currency, x.posted_at_ms, x.description
     FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS e(j, n),
       jsonb_to_record(e.j) AS x(kind text, source_id text, currency text, posted_at_ms int8, description text)
     ORDER BY e.n
     ON CONFLICT (kind, source_id) DO NOTHING RETURNING id, kind, source_id`,
    [JSON.stringify(posted.map(({ lines: _, ...e }) => e))],
  );
  const key = (kind: string, source_id: string) => `${kind}\u0000${source_id}`;
  const fresh = new Map(inserted.map((r) => [key(r.kind, r.source_id), r.id]));
  const lines = posted.flatMap((entry) => {
    const entry_id = fresh.get(key(entry.kind, entry.source_id));
    if (entry_id === undefined) return [];
    return entry.lines.map((l, i) => ({
      entry_id,
      line_no: i + 1,
      ledger_account: l.ledger_account,
      party: l.party ?? '',
      debit_minor: l.debit_minor,
      credit_minor: l.credit_minor,
    }));
  });
  if (lines.length > 0) {
    await tx.query(
      `INSERT INTO journal_lines (entry_id, line_no, ledger_account, party, debit_minor, credit_minor)
       SELECT x.entry_id, x.line_no, x.ledger_account, x.party, x.debit_minor, x.credit_minor
       FROM jsonb_to_recordset($1::jsonb) AS x(entry_id int8, line_no int, ledger_account text, party text, debit_minor int8, credit_minor int8)`,
      [JSON.stringify(lines)],
    );
  }
  const missing = posted.filter((e) => !fresh.has(key(e.kind, e.source_id)));
  const existing = new Map<string, number>();
  for (const entry of missing) {
    const [row] = await tx.query<{ id: number }>(
      'SELECT id FROM journal_entries WHERE kind = $1 AND source_id = $2',
      [entry.kind, entry.source_id],
    );
    existing.set(key(entry.kind, entry.source_id), row!.id);
  }
  return posted.map((e) => fresh.get(key(e.kind, e.source_id)) ?? existing.get(key(e.kind, e.source_id))!);
}

export function revenue_account(vat_percent: string): string {
  return `revenue:vat_${vat_percent}`;
}

export function vat_payable_account(vat_percent: string): string {
  return `vat_payable:${vat_percent}`;
}
