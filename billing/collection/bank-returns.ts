import { createHash } from 'node:crypto';
import { FieldError } from '../../core/field-error.js';
import { text_of_minor } from '../amounts.js';
import { type BillingEvent, record_billing_events } from '../events.js';
import { post_entry } from '../journal.js';
import type { Ledger, Queryable } from '../ledger.js';
import { record_payment } from '../payments/record.js';
import { type BankLine, parse_bank_file } from './bank-files.js';
import { start_dunning } from './dunning.js';
import { invoice_of_payment_reference, rf_references_in } from './identifiers.js';

/**
 * A bank file fed back (pain.002 or camt.054) applied to the ledger. Every line is matched to at
 * most one collection attempt or invoice and stored with what it matched, so the reconciliation
 * report can show what did not: a rejected or returned debit reverses its payment (a
 * `payment_reversed` entry: the invoice is open again), records `debit_returned` and starts
 * dunning; a credit of a collection settles it; a bank transfer with an invoice's RF reference is
 * a payment (record_payment, method bank_transfer); bank charges are a `payment_fee` entry. The
 * same file fed twice changes nothing the second time. A file that does not parse changes nothing.
 */
export interface ReturnPolicy {
  /** Days after a return before the debit is collected again (reasons worth retrying only). */
  retry_days: number;
  /** Retries of one invoice at most (attempts = 1 + retries). */
  retries_max: number;
}

export interface AppliedLine {
  line_no: number;
  source_line: number;
  kind: BankLine['kind'];
  status: 'matched' | 'unmatched' | 'mismatched' | 'duplicate';
  amount: string;
  currency: string;
  fee: string;
  reference: string;
  reason_code: string;
  attempt_id: number | null;
  invoice_id: number | null;
  note: string;
}

export interface AppliedFile {
  file_id: number;
  message_type: string;
  message_id: string;
  /** True when this exact file was applied before: nothing changed now. */
  already_applied: boolean;
  lines: AppliedLine[];
  /** Accounts whose dunning started (their tokens are handled by the next dunning pass). */
  dunning_started: string[];
}

/**
 * Return reasons worth collecting again (ISO 20022 ExternalReturnReason1Code): insufficient funds
 * and "reason not specified". Account closed, no mandate, refused by the debtor and the like are
 * not retried: dunning takes over.
 */
export const retryable_reasons: ReadonlySet<string> = new Set(['AM04', 'MS03']);

interface Attempt {
  id: number;
  invoice_id: number;
  account_id: string;
  legal_entity_id: string;
  attempt: number;
  end_to_end_id: string;
  amount_minor: number;
  currency: string;
  status: 'submitted' | 'settled' | 'rejected' | 'returned';
  number_text: string;
}

const attempt_select = `SELECT a.id, a.invoice_id, a.account_id, i.legal_entity_id, a.attempt, a.end_to_end_id,
  a.amount_minor, a.currency, a.status, i.number_text
  FROM collection_attempts a JOIN invoices i ON i.id = a.invoice_id`;

interface LineRow {
  line_no: number;
  source_line: number;
  kind: BankLine['kind'];
  booked_on: string;
  amount_minor: number;
  fee_minor: number;
  currency: string;
  reference: string;
  reason_code: string;
  status: AppliedLine['status'];
  attempt_id: number | null;
  invoice_id: number | null;
  note: string;
}

async function reverse_attempt(
  tx: Queryable,
  attempt: Attempt,
  line: BankLine,
  message_type: string,
  policy: ReturnPolicy,
  now_ms: number,
): Promise<void> {
  const stage = line.kind === 'rejected' ? 'rejected' : 'returned';
  await post_entry(tx, {
    kind: 'payment_reversed',
    source_id: `sepa:${attempt.end_to_end_id}`,
    currency: attempt.currency,
    posted_at_ms: now_ms,
    description: `SEPA direct debit ${attempt.end_to_end_id} ${stage} (${line.reason_code || 'no reason'}) for invoice ${attempt.number_text}`,
    lines: [
      {
        ledger_account: 'receivable',
        party: attempt.account_id,
        debit_minor: attempt.amount_minor,
        credit_minor: 0,
      },
      { ledger_account: 'cash', debit_minor: 0, credit_minor: attempt.amount_minor },
    ],
  });
  // The invoice is open again: its status follows what is still paid of it.
  await tx.query(
    `UPDATE invoices SET paid_minor = paid_minor - $2,
       status = CASE WHEN paid_minor - $2 = 0 THEN 'issued' ELSE 'partly_paid' END WHERE id = $1`,
    [attempt.invoice_id, attempt.amount_minor],
  );
  const retry = retryable_reasons.has(line.reason_code) && attempt.attempt <= policy.retries_max;
  await tx.query(
    `UPDATE collection_attempts SET status = $2, reason_code = $3, returned_at_ms = $4, retry_due_ms = $5 WHERE id = $1`,
    [attempt.id, stage, line.reason_code, now_ms, retry ? now_ms + policy.retry_days * 86_400_000 : null],
  );
  await record_billing_events(tx, [
    {
      kind: 'debit_returned',
      occurred_at_ms: now_ms,
      legal_entity_id: attempt.legal_entity_id,
      account_id: attempt.account_id,
      invoice_id: attempt.invoice_id,
      amount_minor: attempt.amount_minor,
      currency: attempt.currency,
      attributes: {
        method: 'sepa_debit',
        stage,
        reason_code: line.reason_code,
        failure_code: line.reason_code || stage,
        end_to_end_id: attempt.end_to_end_id,
        attempt: attempt.attempt,
        source: message_type,
        retry,
      },
    },
  ]);
}

async function book_fee(
  tx: Queryable,
  file_id: number,
  row: LineRow,
  account_id: string | undefined,
  message_type: string,
  now_ms: number,
): Promise<void> {
  if (row.fee_minor === 0) return;
  await post_entry(tx, {
    kind: 'payment_fee',
    source_id: `bank:${file_id}:${row.line_no}`,
    currency: row.currency,
    posted_at_ms: now_ms,
    description: `bank charges, ${message_type} line ${row.source_line}`,
    lines: [
      { ledger_account: 'bank_fees', debit_minor: row.fee_minor, credit_minor: 0 },
      { ledger_account: 'cash', debit_minor: 0, credit_minor: row.fee_minor },
    ],
  });
  const event: BillingEvent = {
    kind: 'payment_fee',
    occurred_at_ms: now_ms,
    amount_minor: row.fee_minor,
    currency: row.currency,
    attributes: {
      method: row.kind === 'transfer_credit' ? 'bank_transfer' : 'sepa_debit',
      source: message_type,
      line: row.source_line,
      reason_code: row.reason_code,
    },
  };
  if (account_id !== undefined) event.account_id = account_id;
  if (row.invoice_id !== null) event.invoice_id = row.invoice_id;
  await record_billing_events(tx, [event]);
}

/** The lines of a file with what each matched, as stored. */
async function stored_lines(db: Queryable, file_id: number): Promise<AppliedLine[]> {
  const rows = await db.query<LineRow>(
    `SELECT line_no, source_line, kind, to_char(booked_on, 'YYYY-MM-DD') AS booked_on, amount_minor, fee_minor, currency,
       reference, reason_code, status, attempt_id, invoice_id, note
     FROM bank_file_lines WHERE file_id = $1 ORDER BY line_no`,
    [file_id],
  );
  return rows.map((r) => ({
    line_no: r.line_no,
    source_line: r.source_line,
    kind: r.kind,
    status: r.status,
    amount: text_of_minor(r.amount_minor, r.currency || 'EUR'),
    currency: r.currency,
    fee: text_of_minor(r.fee_minor, r.currency || 'EUR'),
    reference: r.reference,
    reason_code: r.reason_code,
    attempt_id: r.attempt_id,
    invoice_id: r.invoice_id,
    note: r.note,
  }));
}

/** Matches one line (already expanded to one attempt at most) and applies what it says. */
async function match_line(
  tx: Queryable,
  line: BankLine,
  attempt: Attempt | undefined,
  row: LineRow,
  message_type: string,
  policy: ReturnPolicy,
  now_ms: number,
  dunning_started: Set<string>,
): Promise<void> {
  if (line.kind === 'rejected' || line.kind === 'returned' || line.kind === 'collection_credit') {
    row.reference = line.end_to_end_id || attempt?.end_to_end_id || '';
    if (attempt === undefined) {
      row.status = 'unmatched';
      row.note = 'no collection with this EndToEndId';
      return;
    }
    row.attempt_id = attempt.id;
    row.invoice_id = attempt.invoice_id;
    if (row.currency === '') row.currency = attempt.currency;
    if (line.amount_minor === undefined) row.amount_minor = attempt.amount_minor;
    if (row.amount_minor !== attempt.amount_minor || row.currency !== attempt.currency) {
      row.status = 'mismatched';
      row.note = `the collection is ${text_of_minor(attempt.amount_minor, attempt.currency)} ${attempt.currency}`;
      return;
    }
    if (line.kind === 'collection_credit') {
      if (attempt.status !== 'submitted') {
        row.status = attempt.status === 'settled' ? 'duplicate' : 'mismatched';
        row.note = `the collection is ${attempt.status}`;
        return;
      }
      await tx.query(`UPDATE collection_attempts SET status = 'settled', settled_at_ms = $2 WHERE id = $1`, [
        attempt.id,
        now_ms,
      ]);
      return;
    }
    if (attempt.status === 'rejected' || attempt.status === 'returned') {
      row.status = 'duplicate';
      row.note = `the collection was already ${attempt.status}`;
      return;
    }
    if (line.kind === 'rejected' && attempt.status === 'settled') {
      row.status = 'mismatched';
      row.note = 'a settled collection cannot be rejected, only returned';
      return;
    }
    await reverse_attempt(tx, attempt, line, message_type, policy, now_ms);
    if ((await start_dunning(tx, attempt.account_id, now_ms, 'debit_returned')) !== undefined) {
      dunning_started.add(attempt.account_id);
    }
    return;
  }
  if (line.kind === 'transfer_credit') {
    const references = rf_references_in(line.remittance);
    row.reference = references[0] ?? line.remittance.slice(0, 140);
    const invoice_id = references.map(invoice_of_payment_reference).find((id) => id !== undefined);
    if (invoice_id === undefined) {
      row.status = 'unmatched';
      row.note = 'no invoice payment reference in the remittance information';
      return;
    }
    const [invoice] = await tx.query<{ status: string; currency: string; remaining_minor: number }>(
      `SELECT status, currency, total_minor - credited_minor - paid_minor AS remaining_minor
       FROM invoices WHERE id = $1 AND kind = 'invoice'`,
      [invoice_id],
    );
    if (invoice === undefined) {
      row.status = 'unmatched';
      row.note = 'the reference names no invoice';
      return;
    }
    row.invoice_id = invoice_id;
    if (
      invoice.currency !== row.currency ||
      row.amount_minor > invoice.remaining_minor ||
      row.amount_minor === 0
    ) {
      row.status = 'mismatched';
      row.note = `${text_of_minor(invoice.remaining_minor, invoice.currency)} ${invoice.currency} remains on invoice ${invoice_id} (${invoice.status})`;
    }
    // A matched transfer is booked by record_payment after this transaction (see apply_bank_file).
    return;
  }
  row.status = 'unmatched';
  row.note = 'not a collection or an invoice payment';
}

/** Pays the matched bank transfers of a stored file; keyed by file and line, so safe to repeat. */
async function pay_transfers(ledger: Ledger, file_id: number, now_ms: number): Promise<void> {
  const transfers = await ledger.query<{
    line_no: number;
    invoice_id: number;
    amount_minor: number;
    currency: string;
  }>(
    `SELECT line_no, invoice_id, amount_minor, currency FROM bank_file_lines
     WHERE file_id = $1 AND kind = 'transfer_credit' AND status = 'matched' ORDER BY line_no`,
    [file_id],
  );
  for (const t of transfers) {
    try {
      await record_payment(
        ledger,
        {
          invoice_id: t.invoice_id,
          amount: text_of_minor(t.amount_minor, t.currency),
          reference: `bank-${file_id}-${t.line_no}`,
          method: 'bank_transfer',
        },
        now_ms,
      );
    } catch (error) {
      // Paid in between by another way: the line is kept, and shown, as a mismatch.
      if (!(error instanceof FieldError)) throw error;
      await ledger.query(
        `UPDATE bank_file_lines SET status = 'mismatched', note = $3 WHERE file_id = $1 AND line_no = $2`,
        [file_id, t.line_no, error.message],
      );
    }
  }
}

export async function apply_bank_file(
  ledger: Ledger,
  text: string,
  policy: ReturnPolicy,
  now_ms = Date.now(),
): Promise<AppliedFile> {
  const parsed = parse_bank_file(text);
  const sha256 = createHash('sha256').update(text).digest('hex');
  const dunning_started = new Set<string>();
  const outcome = await ledger.transaction(async (tx) => {
    const [seen] = await tx.query<{ id: number }>('SELECT id FROM bank_files WHERE sha256 = $1', [sha256]);
    if (seen !== undefined) return { file_id: seen.id, already_applied: true };
    const [file] = await tx.query<{ id: number }>(
      `INSERT INTO bank_files (sha256, message_type, message_id, lines, received_at_ms) VALUES ($1, $2, $3, 0, $4)
       ON CONFLICT (sha256) DO NOTHING RETURNING id`,
      [sha256, parsed.message_type, parsed.message_id, now_ms],
    );
    if (file === undefined) {
      // The same file applied at this moment by another caller: theirs wins.
      const [other] = await tx.query<{ id: number }>('SELECT id FROM bank_files WHERE sha256 = $1', [sha256]);
      return { file_id: other!.id, already_applied: true };
    }
    const rows: LineRow[] = [];
    for (const line of parsed.lines) {
      // A pain.002 group or batch rejected as a whole is one line per collection it held.
      let attempts: (Attempt | undefined)[];
      if (line.end_to_end_id !== '') {
        attempts = await tx.query<Attempt>(`${attempt_select} WHERE a.end_to_end_id = $1 FOR UPDATE OF a`, [
          line.end_to_end_id,
        ]);
      } else if (line.original_payment_info_id !== '' || line.original_message_id !== '') {
        attempts = await tx.query<Attempt>(
          `${attempt_select} JOIN collection_files f ON f.id = a.file_id
           WHERE ($1 = '' OR a.payment_info_id = $1) AND ($2 = '' OR f.message_id = $2) ORDER BY a.id FOR UPDATE OF a`,
          [line.original_payment_info_id, line.original_message_id],
        );
      } else attempts = [];
      if (attempts.length === 0) attempts = [undefined];
      for (const attempt of attempts) {
        const row: LineRow = {
          line_no: rows.length + 1,
          source_line: line.source_line,
          kind: line.kind,
          booked_on: line.booked_on,
          amount_minor: line.amount_minor ?? 0,
          fee_minor: line.fee_minor,
          currency: line.currency,
          reference: '',
          reason_code: line.reason_code,
          status: 'matched',
          attempt_id: null,
          invoice_id: null,
          note: '',
        };
        await match_line(tx, line, attempt, row, parsed.message_type, policy, now_ms, dunning_started);
        await book_fee(tx, file.id, row, attempt?.account_id, parsed.message_type, now_ms);
        rows.push(row);
      }
    }
    await tx.query(
      `INSERT INTO bank_file_lines (file_id, line_no, source_line, kind, booked_on, amount_minor, fee_minor, currency,
         reference, reason_code, status, attempt_id, invoice_id, note)
       SELECT $1, x.line_no, x.source_line, x.kind, x.booked_on::date, x.amount_minor, x.fee_minor, x.currency, x.reference,
         x.reason_code, x.status, x.attempt_id, x.invoice_id, x.note
       FROM jsonb_to_recordset($2::jsonb) AS x(line_no int, source_line int, kind text, booked_on text, amount_minor int8,
         fee_minor int8, currency text, reference text, reason_code text, status text, attempt_id int8, invoice_id int8, note text)`,
      [file.id, JSON.stringify(rows)],
    );
    await tx.query('UPDATE bank_files SET lines = $2 WHERE id = $1', [file.id, rows.length]);
    return { file_id: file.id, already_applied: false };
  });
  await pay_transfers(ledger, outcome.file_id, now_ms);
  return {
    file_id: outcome.file_id,
    message_type: parsed.message_type,
    message_id: parsed.message_id,
    already_applied: outcome.already_applied,
    lines: await stored_lines(ledger, outcome.file_id),
    dunning_started: [...dunning_started],
  };
}
