import { document_totals } from '../amounts.js';
import { record_billing_events } from '../events.js';
import {
  type JournalEntry,
  type JournalLine,
  post_entries,
  revenue_account,
  vat_payable_account,
} from '../journal.js';
import type { Queryable } from '../ledger.js';
import { add_days, local_date } from '../period.js';

/** A line of a document before it is written; amounts in minor units of the document's currency. */
export interface DocumentLine {
  kind: 'session' | 'fee' | 'credit' | 'discount';
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
  /** A discount line's membership plan and rule (memberships.ts). */
  plan_id?: string;
  rule?: 'included_energy' | 'volume_tier' | 'loyalty';
}

export interface DocumentParties {
  account_id: string;
  legal_entity_id: string;
  time_zone: string;
  payment_terms_days: number;
  seller: unknown;
  buyer: unknown;
}

export interface DraftDocument {
  kind: 'invoice' | 'credit_note';
  parties: DocumentParties;
  currency: string;
  period: string | null;
  /** A per-session invoice's session. */
  session_id?: string;
  credited_invoice_id?: number;
  reason?: string;
  billing_run_id?: number;
  lines: DocumentLine[];
  now_ms: number;
}

/**
 * Writes an invoice or a credit note as a draft: its lines, its VAT breakdown and totals by the one
 * rounding rule (amounts.ts document_totals). Returns its id. Called inside the caller's transaction.
 */
export async function create_draft(tx: Queryable, doc: DraftDocument): Promise<number> {
  const [id] = await create_drafts(tx, [doc]);
  return id!;
}

/** Several drafts with one statement per table; ids in the order given. */
export async function create_drafts(tx: Queryable, docs: readonly DraftDocument[]): Promise<number[]> {
  if (docs.length === 0) return [];
  const totals = docs.map((doc) => document_totals(doc.lines, doc.currency));
  const key_of = (d: {
    kind: string;
    account_id: string;
    currency: string;
    credited_invoice_id: number | null;
    session_id: string | null;
  }) =>
    `${d.kind}\u0000${d.account_id}\u0000${d.currency}\u0000${d.credited_invoice_id ?? ''}\u0000${d.session_id ?? ''}`;
  const keys = docs.map((doc) =>
    key_of({
      ...doc,
      account_id: doc.parties.account_id,
      credited_invoice_id: doc.credited_invoice_id ?? null,
      session_id: doc.session_id ?? null,
    }),
  );
  if (new Set(keys).size !== keys.length)
    throw new Error('drafts written together must differ in account, currency, credited invoice or session');
  const rows = await tx.query<{
    id: number;
    kind: string;
    account_id: string;
    currency: string;
    credited_invoice_id: number | null;
    session_id: string | null;
  }>(
    `INSERT INTO invoices (kind, account_id, legal_entity_id, period, session_id, currency, status, series, credited_invoice_id,
       reason, net_minor, vat_minor, total_minor, billing_run_id, seller, buyer, created_at_ms)
     SELECT x.kind, x.account_id, x.legal_entity_id, x.period, x.session_id, x.currency, 'draft', x.kind, x.credited_invoice_id,
       x.reason, x.net_minor, x.vat_minor, x.total_minor, x.billing_run_id, x.seller, x.buyer, x.created_at_ms
     FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS e(j, n),
       jsonb_to_record(e.j) AS x(kind text, account_id text, legal_entity_id text,
       period text, session_id text, currency text, credited_invoice_id int8, reason text, net_minor int8, vat_minor int8,
       total_minor int8, billing_run_id int8, seller jsonb, buyer jsonb, created_at_ms int8)
     ORDER BY e.n
     RETURNING id, kind, account_id, currency, credited_invoice_id, session_id`,
    [
      JSON.stringify(
        docs.map((doc, i) => ({
          kind: doc.kind,
          account_id: doc.parties.account_id,
          legal_entity_id: doc.parties.legal_entity_id,
          period: doc.period,
          session_id: doc.session_id ?? null,
          currency: doc.currency,
          credited_invoice_id: doc.credited_invoice_id ?? null,
          reason: doc.reason ?? '',
          net_minor: totals[i]!.net_minor,
          vat_minor: totals[i]!.vat_minor,
          total_minor: totals[i]!.total_minor,
          billing_run_id: doc.billing_run_id ?? null,
          seller: doc.parties.seller,
          buyer: doc.parties.buyer,
          created_at_ms: doc.now_ms,
        })),
      ),
    ],
  );
  const id_of = new Map(rows.map((r) => [key_of(r), r.id]));
  const ids = keys.map((k) => id_of.get(k)!);
  if (rows.length !== docs.length || ids.some((id) => id === undefined)) {
    throw new Error(`${rows.length} of ${docs.length} drafts written`);
  }
  await tx.query(
    `INSERT INTO invoice_lines (invoice_id, line_no, kind, description, session_id, session_version, started_at_ms,
       stopped_at_ms, charge_point_id, evse_id, station_id, energy_wh, duration_s, tariff_id, tariff_version, id_tag,
       cost_centre_id, net_minor, vat_percent, plan_id, rule)
     SELECT x.invoice_id, x.line_no, x.kind, x.description, x.session_id, x.session_version, x.started_at_ms, x.stopped_at_ms,
       x.charge_point_id, x.evse_id, x.station_id, x.energy_wh, x.duration_s, x.tariff_id, x.tariff_version, x.id_tag,
       x.cost_centre_id, x.net_minor, x.vat_percent, x.plan_id, x.rule
     FROM jsonb_to_recordset($1::jsonb) AS x(invoice_id int8, line_no int, kind text, description text, session_id text,
       session_version int, started_at_ms int8, stopped_at_ms int8, charge_point_id text, evse_id int, station_id text,
       energy_wh int8, duration_s int8, tariff_id text, tariff_version int, id_tag text, cost_centre_id text,
       net_minor int8, vat_percent numeric, plan_id text, rule text)`,
    [
      JSON.stringify(
        docs.flatMap((doc, d) =>
          doc.lines.map((line, i) => ({ ...line, invoice_id: ids[d], line_no: i + 1 })),
        ),
      ),
    ],
  );
  await tx.query(
    `INSERT INTO invoice_vat (invoice_id, vat_percent, net_minor, vat_minor)
     SELECT x.invoice_id, x.vat_percent, x.net_minor, x.vat_minor
     FROM jsonb_to_recordset($1::jsonb) AS x(invoice_id int8, vat_percent numeric, net_minor int8, vat_minor int8)`,
    [JSON.stringify(totals.flatMap((t, d) => t.vat.map((v) => ({ ...v, invoice_id: ids[d] }))))],
  );
  return ids;
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
  const [issued] = await issue_drafts(tx, [id], now_ms);
  return issued!;
}

/** Several drafts: numbers in the order of `ids`, one locked series update per (legal entity, series). */
export async function issue_drafts(
  tx: Queryable,
  ids: readonly number[],
  now_ms: number,
): Promise<{ number_text: string }[]> {
  if (ids.length === 0) return [];
  const docs = await tx.query<{
    id: number;
    kind: 'invoice' | 'credit_note';
    status: string;
    account_id: string;
    legal_entity_id: string;
    currency: string;
    total_minor: number;
    time_zone: string;
    payment_terms_days: number;
  }>(
    `SELECT i.id, i.kind, i.status, i.account_id, i.legal_entity_id, i.currency, i.total_minor, e.time_zone,
       a.payment_terms_days
     FROM invoices i JOIN legal_entities e ON e.id = i.legal_entity_id JOIN accounts a ON a.id = i.account_id
     WHERE i.id = ANY($1::int8[]) ORDER BY i.id FOR UPDATE OF i`,
    [ids],
  );
  const by_id = new Map(docs.map((d) => [d.id, d]));
  const ordered = ids.map((id) => {
    const doc = by_id.get(id);
    if (doc === undefined) throw new Error(`no document ${id}`);
    if (doc.status !== 'draft') throw new Error(`document ${id} is ${doc.status}, not a draft`);
    return doc;
  });
  // Series locked in one order (legal entity, series) so that two issuers cannot deadlock.
  const series_keys = [...new Set(ordered.map((d) => `${d.legal_entity_id}\u0000${d.kind}`))].sort();
  const next = new Map<string, { number: number; prefix: string }>();
  for (const key of series_keys) {
    const [legal_entity_id, series] = key.split('\u0000') as [string, string];
    const count = ordered.filter((d) => d.legal_entity_id === legal_entity_id && d.kind === series).length;
    const [row] = await tx.query<{ number: number; prefix: string }>(
      `UPDATE number_series SET next_number = next_number + $3 WHERE legal_entity_id = $1 AND series = $2
       RETURNING next_number - $3 AS number, prefix`,
      [legal_entity_id, series, count],
    );
    if (row === undefined) throw new Error(`legal entity ${legal_entity_id} has no ${series} series`);
    next.set(key, row);
  }
  const numbered = ordered.map((doc) => {
    const series = next.get(`${doc.legal_entity_id}\u0000${doc.kind}`)!;
    const number = series.number;
    series.number += 1;
    const issue_date = local_date(now_ms, doc.time_zone);
    return {
      doc,
      number,
      number_text: `${series.prefix}${String(number).padStart(6, '0')}`,
      issue_date,
      due_date: add_days(issue_date, doc.payment_terms_days),
    };
  });
  await tx.query(
    `UPDATE invoices i SET status = 'issued', number = x.number, number_text = x.number_text, issued_at_ms = $2,
       issue_date = x.issue_date::date, due_date = x.due_date::date
     FROM jsonb_to_recordset($1::jsonb) AS x(id int8, number int8, number_text text, issue_date text, due_date text)
     WHERE i.id = x.id`,
    [
      JSON.stringify(
        numbered.map((n) => ({
          id: n.doc.id,
          number: n.number,
          number_text: n.number_text,
          issue_date: n.issue_date,
          due_date: n.due_date,
        })),
      ),
      now_ms,
    ],
  );
  const vat_rows = await tx.query<{
    invoice_id: number;
    vat_percent: string;
    net_minor: number;
    vat_minor: number;
  }>(
    `SELECT invoice_id, trim_scale(vat_percent)::text AS vat_percent, net_minor, vat_minor FROM invoice_vat
     WHERE invoice_id = ANY($1::int8[]) ORDER BY invoice_id, vat_percent`,
    [ids],
  );
  const vat_of = new Map<number, typeof vat_rows>();
  for (const v of vat_rows) vat_of.set(v.invoice_id, [...(vat_of.get(v.invoice_id) ?? []), v]);
  const side = (amount: number, debit: boolean): Pick<JournalLine, 'debit_minor' | 'credit_minor'> =>
    debit ? { debit_minor: amount, credit_minor: 0 } : { debit_minor: 0, credit_minor: amount };
  const entries: JournalEntry[] = [];
  for (const { doc, number_text } of numbered) {
    const invoice = doc.kind === 'invoice';
    const lines: JournalLine[] = [
      { ledger_account: 'receivable', party: doc.account_id, ...side(doc.total_minor, invoice) },
      ...(vat_of.get(doc.id) ?? []).flatMap((v) => [
        { ledger_account: revenue_account(v.vat_percent), ...side(v.net_minor, !invoice) },
        { ledger_account: vat_payable_account(v.vat_percent), ...side(v.vat_minor, !invoice) },
      ]),
    ];
    // A document of 0.00 moves no money: it has no journal entry.
    if (lines.every((l) => l.debit_minor === 0 && l.credit_minor === 0)) continue;
    entries.push({
      kind: invoice ? 'invoice_issued' : 'credit_note_issued',
      source_id: String(doc.id),
      currency: doc.currency,
      posted_at_ms: now_ms,
      description: `${invoice ? 'invoice' : 'credit note'} ${number_text} to ${doc.account_id}`,
      lines,
    });
  }
  await post_entries(tx, entries);
  await record_billing_events(
    tx,
    numbered.map((n) => ({
      kind: n.doc.kind === 'invoice' ? 'invoice_issued' : 'credit_note_issued',
      occurred_at_ms: now_ms,
      legal_entity_id: n.doc.legal_entity_id,
      account_id: n.doc.account_id,
      invoice_id: n.doc.id,
      amount_minor: n.doc.total_minor,
      currency: n.doc.currency,
      attributes: { number: n.number_text, issue_date: n.issue_date, due_date: n.due_date },
    })),
  );
  return numbered.map((n) => ({ number_text: n.number_text }));
}
