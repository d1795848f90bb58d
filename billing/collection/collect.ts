import { FieldError } from '../../core/field-error.js';
import { NotFoundError } from '../accounts.js';
import { text_of_minor } from '../amounts.js';
import { type BillingEvent, record_billing_events } from '../events.js';
import { post_entries } from '../journal.js';
import type { Ledger, Queryable } from '../ledger.js';
import { add_days, local_date } from '../period.js';
import {
  control_sum_minor,
  type DirectDebitBatch,
  type DirectDebitMessage,
  pain008_xml,
  transaction_count,
} from './pain008.js';

/**
 * A SEPA Direct Debit collection file: for a billing run, every issued invoice of an account with
 * an active mandate, for what remains of it (total - credited - paid; account credit applied
 * before is a payment and so already deducted); for a retry, the invoices whose returned debit is
 * due again. In one transaction the file, one collection attempt per invoice, the payment it
 * books (payment_received, method sepa_debit: the invoice is paid unless the debit comes back)
 * and the billing events are written, so a crash leaves all of it or none. One file per run: a
 * second request answers the first file.
 */
export interface CollectionFile {
  id: number;
  kind: 'run' | 'retry';
  billing_run_id: number | null;
  message_id: string;
  transactions: number;
  control_sum: string;
  currency: string;
  created_at_ms: number;
}

export interface CollectionResult {
  file: CollectionFile | undefined;
  /** Open invoices of the run left out, and why (no mandate: collected by bank transfer). */
  skipped: { invoice_id: number; reason: string }[];
}

/** Debits of one file at most: a larger run is split by the bank's limit, not ours, so refuse it loudly. */
export const debits_per_file_max = 100_000;

interface Collectable {
  invoice_id: number;
  account_id: string;
  legal_entity_id: string;
  number_text: string;
  currency: string;
  due_date: string;
  remaining_minor: number;
  paid_minor: number;
  total_minor: number;
  credited_minor: number;
  time_zone: string;
  mandate_id: string | null;
  debtor_name: string | null;
  iban: string | null;
  bic: string | null;
  signed_on: string | null;
  scheme: 'CORE' | 'B2B' | null;
  creditor_id: string | null;
  creditor_name: string | null;
  creditor_iban: string | null;
  creditor_bic: string | null;
  attempts: number;
  /** Collections of the mandate that reached the debtor's bank (not rejected before). */
  mandate_used: number;
  in_flight: number;
}

const collectable_select = `
SELECT i.id AS invoice_id, i.account_id, i.legal_entity_id, i.number_text, i.currency,
  to_char(i.due_date, 'YYYY-MM-DD') AS due_date, i.total_minor - i.credited_minor - i.paid_minor AS remaining_minor,
  i.paid_minor, i.total_minor, i.credited_minor, le.time_zone,
  m.mandate_id, m.debtor_name, m.iban, m.bic, to_char(m.signed_on, 'YYYY-MM-DD') AS signed_on, m.scheme,
  c.creditor_id, c.name AS creditor_name, c.iban AS creditor_iban, c.bic AS creditor_bic,
  (SELECT count(*)::int FROM collection_attempts a WHERE a.invoice_id = i.id) AS attempts,
  (SELECT count(*)::int FROM collection_attempts a WHERE a.mandate_id = m.mandate_id AND a.status <> 'rejected') AS mandate_used,
  (SELECT count(*)::int FROM collection_attempts a WHERE a.invoice_id = i.id AND a.status IN ('submitted', 'settled')) AS in_flight
FROM invoices i
JOIN legal_entities le ON le.id = i.legal_entity_id
LEFT JOIN sepa_mandates m ON m.account_id = i.account_id AND m.status = 'active'
LEFT JOIN sepa_creditors c ON c.legal_entity_id = i.legal_entity_id`;

function file_view(row: {
  id: number;
  kind: 'run' | 'retry';
  billing_run_id: number | null;
  message_id: string;
  transactions: number;
  control_sum_minor: number;
  currency: string;
  created_at_ms: number;
}): CollectionFile {
  const { control_sum_minor: sum, ...rest } = row;
  return { ...rest, control_sum: text_of_minor(sum, row.currency) };
}

const file_columns =
  'id, kind, billing_run_id, message_id, transactions, control_sum_minor, currency, created_at_ms';

export async function get_collection_file(
  db: Queryable,
  id: number,
): Promise<(CollectionFile & { xml: string }) | undefined> {
  const [row] = await db.query<Parameters<typeof file_view>[0] & { xml: string }>(
    `SELECT ${file_columns}, xml FROM collection_files WHERE id = $1`,
    [id],
  );
  return row === undefined ? undefined : { ...file_view(row), xml: row.xml };
}

export async function list_collection_files(
  db: Queryable,
  filter: { billing_run_id?: number; limit: number },
): Promise<CollectionFile[]> {
  const rows = await db.query<Parameters<typeof file_view>[0]>(
    `SELECT ${file_columns} FROM collection_files WHERE ($1::int8 IS NULL OR billing_run_id = $1)
     ORDER BY id DESC LIMIT $2`,
    [filter.billing_run_id ?? null, filter.limit],
  );
  return rows.map(file_view);
}

function reason_skipped(c: Collectable): string | undefined {
  if (c.remaining_minor <= 0) return 'nothing remains to collect';
  if (c.in_flight > 0) return 'a collection is already under way';
  if (c.mandate_id === null) return 'no active SEPA mandate: collected by bank transfer';
  if (c.currency !== 'EUR') return `SEPA collects EUR only, the invoice is in ${c.currency}`;
  if (c.creditor_id === null) return `legal entity ${c.legal_entity_id} has no SEPA creditor identifier`;
  return undefined;
}

/** Writes the file, its attempts, the payments and the events for the invoices given (locked). */
async function write_collection(
  tx: Queryable,
  kind: 'run' | 'retry',
  billing_run_id: number | null,
  invoices: readonly Collectable[],
  now_ms: number,
): Promise<CollectionFile> {
  if (invoices.length > debits_per_file_max) {
    throw new FieldError(
      'invoices',
      `${invoices.length} debits are more than one file holds (${debits_per_file_max})`,
    );
  }
  const [file] = await tx.query<{ id: number }>(
    `INSERT INTO collection_files (kind, billing_run_id, message_id, transactions, control_sum_minor, currency, xml, created_at_ms)
     VALUES ($1, $2, 'pending-' || gen_random_uuid()::text, 1, 1, 'EUR', '', $3) RETURNING id`,
    [kind, billing_run_id, now_ms],
  );
  const file_id = file!.id;
  const message_id = `EVR-SDD-${file_id}`;
  const batches = new Map<string, DirectDebitBatch>();
  const attempts: Record<string, unknown>[] = [];
  const events: BillingEvent[] = [];
  for (const c of invoices) {
    const tomorrow = add_days(local_date(now_ms, c.time_zone), 1);
    // The debtor's bank needs the file a business day ahead (EPC SDD rulebook, D-1 since 2016).
    const requested_on = [c.due_date, tomorrow].sort()[1]!;
    const sequence_type = c.mandate_used === 0 ? 'FRST' : 'RCUR';
    const key = `${c.legal_entity_id}|${c.scheme}|${sequence_type}|${requested_on}`;
    let batch = batches.get(key);
    if (batch === undefined) {
      batch = {
        payment_info_id: `${message_id}-${batches.size + 1}`,
        scheme: c.scheme!,
        sequence_type,
        requested_on,
        creditor: {
          name: c.creditor_name!,
          iban: c.creditor_iban!,
          bic: c.creditor_bic!,
          creditor_id: c.creditor_id!,
        },
        debits: [],
      };
      batches.set(key, batch);
    }
    const attempt = c.attempts + 1;
    const end_to_end_id = `EVR-${c.invoice_id}-${attempt}`;
    batch.debits.push({
      end_to_end_id,
      amount_minor: c.remaining_minor,
      mandate_id: c.mandate_id!,
      mandate_signed_on: c.signed_on!,
      debtor_name: c.debtor_name!,
      debtor_iban: c.iban!,
      debtor_bic: c.bic!,
      remittance: `Invoice ${c.number_text}`,
    });
    attempts.push({
      invoice_id: c.invoice_id,
      account_id: c.account_id,
      attempt,
      payment_info_id: batch.payment_info_id,
      mandate_id: c.mandate_id,
      sequence_type,
      end_to_end_id,
      amount_minor: c.remaining_minor,
      currency: c.currency,
      requested_on,
    });
    const paid_minor = c.paid_minor + c.remaining_minor;
    const common = {
      occurred_at_ms: now_ms,
      account_id: c.account_id,
      invoice_id: c.invoice_id,
      currency: c.currency,
    };
    events.push(
      {
        ...common,
        kind: 'collection_attempted',
        amount_minor: c.remaining_minor,
        legal_entity_id: c.legal_entity_id,
        attributes: { attempt, method: 'sepa_debit', end_to_end_id, sequence_type, file_id },
      },
      {
        ...common,
        kind: 'payment_received',
        amount_minor: c.remaining_minor,
        legal_entity_id: c.legal_entity_id,
        attributes: { method: 'sepa_debit', reference: end_to_end_id },
      },
      ...(paid_minor === c.total_minor - c.credited_minor
        ? [{ ...common, kind: 'invoice_paid', amount_minor: paid_minor, legal_entity_id: c.legal_entity_id }]
        : []),
    );
  }
  const message: DirectDebitMessage = {
    message_id,
    created_at_ms: now_ms,
    initiating_party: [...batches.values()][0]!.creditor.name,
    currency: 'EUR',
    batches: [...batches.values()],
  };
  const xml = pain008_xml(message);
  await tx.query(
    `UPDATE collection_files SET message_id = $2, transactions = $3, control_sum_minor = $4, xml = $5 WHERE id = $1`,
    [file_id, message_id, transaction_count(message), control_sum_minor(message), xml],
  );
  await tx.query(
    `INSERT INTO collection_attempts (invoice_id, account_id, attempt, file_id, payment_info_id, mandate_id, sequence_type,
       end_to_end_id, amount_minor, currency, requested_on, status, created_at_ms)
     SELECT x.invoice_id, x.account_id, x.attempt, $2, x.payment_info_id, x.mandate_id, x.sequence_type, x.end_to_end_id,
       x.amount_minor, x.currency, x.requested_on::date, 'submitted', $3
     FROM jsonb_to_recordset($1::jsonb) AS x(invoice_id int8, account_id text, attempt int, payment_info_id text,
       mandate_id text, sequence_type text, end_to_end_id text, amount_minor int8, currency text, requested_on text)`,
    [JSON.stringify(attempts), file_id, now_ms],
  );
  // The debit is booked as a payment when it is submitted; a rejection or return reverses it.
  await post_entries(
    tx,
    invoices.map((c) => ({
      kind: 'payment_received' as const,
      source_id: `sepa:EVR-${c.invoice_id}-${c.attempts + 1}`,
      currency: c.currency,
      posted_at_ms: now_ms,
      description: `SEPA direct debit EVR-${c.invoice_id}-${c.attempts + 1} for invoice ${c.number_text}`,
      lines: [
        { ledger_account: 'cash', debit_minor: c.remaining_minor, credit_minor: 0 },
        {
          ledger_account: 'receivable',
          party: c.account_id,
          debit_minor: 0,
          credit_minor: c.remaining_minor,
        },
      ],
    })),
  );
  await tx.query(
    `UPDATE invoices i SET paid_minor = i.paid_minor + x.amount_minor,
       status = CASE WHEN i.paid_minor + x.amount_minor = i.total_minor - i.credited_minor THEN 'paid' ELSE 'partly_paid' END
     FROM jsonb_to_recordset($1::jsonb) AS x(invoice_id int8, amount_minor int8) WHERE i.id = x.invoice_id`,
    [JSON.stringify(invoices.map((c) => ({ invoice_id: c.invoice_id, amount_minor: c.remaining_minor })))],
  );
  await record_billing_events(tx, events);
  const [row] = await tx.query<Parameters<typeof file_view>[0]>(
    `SELECT ${file_columns} FROM collection_files WHERE id = $1`,
    [file_id],
  );
  return file_view(row!);
}

/** The collection file of a billing run (created once; later calls answer the same file). */
export async function collect_billing_run(
  ledger: Ledger,
  billing_run_id: number,
  now_ms = Date.now(),
): Promise<CollectionResult> {
  return await ledger.transaction(async (tx) => {
    const [run] = await tx.query<{ status: string }>(
      'SELECT status FROM billing_runs WHERE id = $1 FOR UPDATE',
      [billing_run_id],
    );
    if (run === undefined) throw new NotFoundError('billing_run_id', 'is not a known billing run');
    if (run.status !== 'finished') {
      throw new FieldError('billing_run_id', `the run is ${run.status}: collect a finished run`);
    }
    const [existing] = await tx.query<Parameters<typeof file_view>[0]>(
      `SELECT ${file_columns} FROM collection_files WHERE billing_run_id = $1 AND kind = 'run'`,
      [billing_run_id],
    );
    if (existing !== undefined) return { file: file_view(existing), skipped: [] };
    await tx.query(
      `SELECT id FROM invoices WHERE billing_run_id = $1 AND kind = 'invoice' AND status IN ('issued', 'partly_paid')
       ORDER BY id FOR UPDATE`,
      [billing_run_id],
    );
    const open = await tx.query<Collectable>(
      `${collectable_select}
       WHERE i.billing_run_id = $1 AND i.kind = 'invoice' AND i.status IN ('issued', 'partly_paid') ORDER BY i.id`,
      [billing_run_id],
    );
    return await collect(tx, 'run', billing_run_id, open, now_ms);
  });
}

async function collect(
  tx: Queryable,
  kind: 'run' | 'retry',
  billing_run_id: number | null,
  open: readonly Collectable[],
  now_ms: number,
): Promise<CollectionResult> {
  const skipped: CollectionResult['skipped'] = [];
  const collectable: Collectable[] = [];
  for (const c of open) {
    const reason = reason_skipped(c);
    if (reason === undefined) collectable.push(c);
    else skipped.push({ invoice_id: c.invoice_id, reason });
  }
  if (collectable.length === 0) return { file: undefined, skipped };
  return { file: await write_collection(tx, kind, billing_run_id, collectable, now_ms), skipped };
}

/**
 * A file for the returned debits whose retry is due (set when the return was recorded with a
 * reason worth retrying; see returns.ts). Each retry is consumed whether or not it is collected,
 * so a debit is retried at most as often as configured.
 */
export async function collect_retries(ledger: Ledger, now_ms = Date.now()): Promise<CollectionResult> {
  return await ledger.transaction(async (tx) => {
    const due = await tx.query<{ id: number; invoice_id: number }>(
      `UPDATE collection_attempts SET retry_due_ms = NULL WHERE retry_due_ms IS NOT NULL AND retry_due_ms <= $1
       RETURNING id, invoice_id`,
      [now_ms],
    );
    if (due.length === 0) return { file: undefined, skipped: [] };
    const ids = [...new Set(due.map((d) => d.invoice_id))].sort((a, b) => a - b);
    await tx.query('SELECT id FROM invoices WHERE id = ANY($1::int8[]) ORDER BY id FOR UPDATE', [ids]);
    const open = await tx.query<Collectable>(
      `${collectable_select} WHERE i.id = ANY($1::int8[]) AND i.status IN ('issued', 'partly_paid') ORDER BY i.id`,
      [ids],
    );
    return await collect(tx, 'retry', null, open, now_ms);
  });
}
