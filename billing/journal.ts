import type { Queryable } from './ledger.js';

/**
 * The double-entry journal. Every money movement (an invoice issued, a credit note, a payment) is
 * one entry whose lines balance: debits = credits, checked here before anything is written and
 * again by the deferred constraint trigger `journal_entry_balanced` at commit. Entries are never
 * edited (a trigger refuses it): a mistake is corrected by another entry. (kind, source_id) is the
 * idempotency key: posting the same movement twice leaves one entry.
 *
 * Chart of accounts: `receivable` (party: the billing account), `revenue:vat_<rate>`,
 * `vat_payable:<rate>`, `cash`.
 */
export interface JournalLine {
  ledger_account: string;
  party?: string;
  debit_minor: number;
  credit_minor: number;
}

export interface JournalEntry {
  kind: 'invoice_issued' | 'credit_note_issued' | 'payment_received';
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
  // Zero lines (a 0-rate VAT of 0.00) carry nothing and would break the one-side check.
  const lines = entry.lines.filter((l) => l.debit_minor !== 0 || l.credit_minor !== 0);
  const posted = { ...entry, lines };
  assert_balanced(posted);
  const [inserted] = await tx.query<{ id: number }>(
    `INSERT INTO journal_entries (kind, source_id, currency, posted_at_ms, description)
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (kind, source_id) DO NOTHING RETURNING id`,
    [entry.kind, entry.source_id, entry.currency, entry.posted_at_ms, entry.description],
  );
  if (inserted === undefined) {
    const [existing] = await tx.query<{ id: number }>(
      'SELECT id FROM journal_entries WHERE kind = $1 AND source_id = $2',
      [entry.kind, entry.source_id],
    );
    return existing!.id;
  }
  await tx.query(
    `INSERT INTO journal_lines (entry_id, line_no, ledger_account, party, debit_minor, credit_minor)
     SELECT $1, x.line_no, x.ledger_account, x.party, x.debit_minor, x.credit_minor
     FROM jsonb_to_recordset($2::jsonb) AS x(line_no int, ledger_account text, party text, debit_minor int8, credit_minor int8)`,
    [
      inserted.id,
      JSON.stringify(
        lines.map((l, i) => ({
          line_no: i + 1,
          ledger_account: l.ledger_account,
          party: l.party ?? '',
          debit_minor: l.debit_minor,
          credit_minor: l.credit_minor,
        })),
      ),
    ],
  );
  return inserted.id;
}

export function revenue_account(vat_percent: string): string {
  return `revenue:vat_${vat_percent}`;
}

export function vat_payable_account(vat_percent: string): string {
  return `vat_payable:${vat_percent}`;
}
