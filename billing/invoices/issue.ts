import { document_totals } from '../amounts.js';
import { type JournalLine, post_entry, revenue_account, vat_payable_account } from '../journal.js';
import type { Queryable } from '../ledger.js';
import { add_days, local_date } from '../period.js';

/** A line of a document before it is written; amounts in minor units of the document's currency. */
export interface DocumentLine {
  kind: 'session' | 'fee' | 'credit';
  description: string;
  net_minor: number;
  vat_percent: string;
  session_id?: string;
  session_version?: number;
  started_at_ms?: number;
  stopped_at_ms?: number;
  charge_point_id?: string;
  evse_id?: number | null;
  station_id?: string;
  energy_wh?: number;
  duration_s?: number;
  tariff_id?: string;
  tariff_version?: number;
  id_tag?: string;
  cost_centre_id?: string | null;
}

export interface DocumentParties {
  account_id: string;
  legal_entity_id: string;
  time_zone: string;
  payment_terms_days: number;
  seller: unknown;
  buyer: unknown;
}

/**
 * Writes an invoice or a credit note as a draft: its lines, its VAT breakdown and totals by the one
 * rounding rule (amounts.ts document_totals). Returns its id. Called inside the caller's transaction.
 */
export async function create_draft(
  tx: Queryable,
  doc: {
    kind: 'invoice' | 'credit_note';
    parties: DocumentParties;
    currency: string;
    period: string | null;
    credited_invoice_id?: number;
    reason?: string;
    billing_run_id?: number;
    lines: DocumentLine[];
    now_ms: number;
  },
): Promise<number> {
  const totals = document_totals(doc.lines, doc.currency);
  const [row] = await tx.query<{ id: number }>(
    `INSERT INTO invoices (kind, account_id, legal_entity_id, period, currency, status, series, credited_invoice_id,
       reason, net_minor, vat_minor, total_minor, billing_run_id, seller, buyer, created_at_ms)
     VALUES ($1, $2, $3, $4, $5, 'draft', $1, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id`,
    [
      doc.kind,
      doc.parties.account_id,
      doc.parties.legal_entity_id,
      doc.period,
      doc.currency,
      doc.credited_invoice_id ?? null,
      doc.reason ?? '',
      totals.net_minor,
      totals.vat_minor,
      totals.total_minor,
      doc.billing_run_id ?? null,
      JSON.stringify(doc.parties.seller),
      JSON.stringify(doc.parties.buyer),
      doc.now_ms,
    ],
  );
  const id = row!.id;
  await tx.query(
    `INSERT INTO invoice_lines (invoice_id, line_no, kind, description, session_id, session_version, started_at_ms,
       stopped_at_ms, charge_point_id, evse_id, station_id, energy_wh, duration_s, tariff_id, tariff_version, id_tag,
       cost_centre_id, net_minor, vat_percent)
     SELECT $1, x.line_no, x.kind, x.description, x.session_id, x.session_version, x.started_at_ms, x.stopped_at_ms,
       x.charge_point_id, x.evse_id, x.station_id, x.energy_wh, x.duration_s, x.tariff_id, x.tariff_version, x.id_tag,
       x.cost_centre_id, x.net_minor, x.vat_percent
     FROM jsonb_to_recordset($2::jsonb) AS x(line_no int, kind text, description text, session_id text,
       session_version int, started_at_ms int8, stopped_at_ms int8, charge_point_id text, evse_id int, station_id text,
       energy_wh int8, duration_s int8, tariff_id text, tariff_version int, id_tag text, cost_centre_id text,
       net_minor int8, vat_percent numeric)`,
    [id, JSON.stringify(doc.lines.map((line, i) => ({ ...line, line_no: i + 1 })))],
  );
  await tx.query(
    `INSERT INTO invoice_vat (invoice_id, vat_percent, net_minor, vat_minor)
     SELECT $1, x.vat_percent, x.net_minor, x.vat_minor
     FROM jsonb_to_recordset($2::jsonb) AS x(vat_percent numeric, net_minor int8, vat_minor int8)`,
    [id, JSON.stringify(totals.vat)],
  );
  return id;
}

/**
 * Issues a draft: the next number of its legal entity's series (the series row is locked until
 * this transaction ends, so numbers are sequential and gapless: a rolled-back issue gives its
 * number back), the issue and due dates, and its journal entry, all in the caller's transaction.
 * Invoice: receivable (debit) against revenue and VAT payable per rate (credits); a credit note
 * the reverse.
 */
export async function issue_draft(
  tx: Queryable,
  id: number,
  now_ms: number,
): Promise<{ number_text: string }> {
  const [doc] = await tx.query<{
    kind: 'invoice' | 'credit_note';
    status: string;
    account_id: string;
    legal_entity_id: string;
    currency: string;
    total_minor: number;
    time_zone: string;
    payment_terms_days: number;
  }>(
    `SELECT i.kind, i.status, i.account_id, i.legal_entity_id, i.currency, i.total_minor, e.time_zone,
       a.payment_terms_days
     FROM invoices i JOIN legal_entities e ON e.id = i.legal_entity_id JOIN accounts a ON a.id = i.account_id
     WHERE i.id = $1 FOR UPDATE OF i`,
    [id],
  );
  if (doc === undefined) throw new Error(`no document ${id}`);
  if (doc.status !== 'draft') throw new Error(`document ${id} is ${doc.status}, not a draft`);
  const [series] = await tx.query<{ number: number; prefix: string }>(
    `UPDATE number_series SET next_number = next_number + 1 WHERE legal_entity_id = $1 AND series = $2
     RETURNING next_number - 1 AS number, prefix`,
    [doc.legal_entity_id, doc.kind],
  );
  if (series === undefined) throw new Error(`legal entity ${doc.legal_entity_id} has no ${doc.kind} series`);
  const number_text = `${series.prefix}${String(series.number).padStart(6, '0')}`;
  const issue_date = local_date(now_ms, doc.time_zone);
  await tx.query(
    `UPDATE invoices SET status = 'issued', number = $2, number_text = $3, issued_at_ms = $4, issue_date = $5::date,
       due_date = $6::date WHERE id = $1`,
    [id, series.number, number_text, now_ms, issue_date, add_days(issue_date, doc.payment_terms_days)],
  );
  const vat = await tx.query<{ vat_percent: string; net_minor: number; vat_minor: number }>(
    'SELECT trim_scale(vat_percent)::text AS vat_percent, net_minor, vat_minor FROM invoice_vat WHERE invoice_id = $1 ORDER BY vat_percent',
    [id],
  );
  const invoice = doc.kind === 'invoice';
  const side = (amount: number, debit: boolean): Pick<JournalLine, 'debit_minor' | 'credit_minor'> =>
    debit ? { debit_minor: amount, credit_minor: 0 } : { debit_minor: 0, credit_minor: amount };
  const lines: JournalLine[] = [
    { ledger_account: 'receivable', party: doc.account_id, ...side(doc.total_minor, invoice) },
    ...vat.flatMap((v) => [
      { ledger_account: revenue_account(v.vat_percent), ...side(v.net_minor, !invoice) },
      { ledger_account: vat_payable_account(v.vat_percent), ...side(v.vat_minor, !invoice) },
    ]),
  ];
  // A document of 0.00 moves no money: it has no journal entry.
  if (lines.every((l) => l.debit_minor === 0 && l.credit_minor === 0)) return { number_text };
  await post_entry(tx, {
    kind: invoice ? 'invoice_issued' : 'credit_note_issued',
    source_id: String(id),
    currency: doc.currency,
    posted_at_ms: now_ms,
    description: `${invoice ? 'invoice' : 'credit note'} ${number_text} to ${doc.account_id}`,
    lines,
  });
  return { number_text };
}
