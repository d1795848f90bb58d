import { text_of_minor } from '../amounts.js';
import type { Queryable } from '../ledger.js';

/** Invoices and credit notes as the API and the documents show them; money as exact decimal text. */
export interface DocumentView {
  id: number;
  kind: 'invoice' | 'credit_note';
  number: string | null;
  status: string;
  account_id: string;
  legal_entity_id: string;
  period: string | null;
  /** The session of a per-session invoice (accounts billed per_session); null otherwise. */
  session_id: string | null;
  currency: string;
  issue_date: string | null;
  due_date: string | null;
  credited_invoice_id: number | null;
  reason: string;
  net: string;
  vat: string;
  total: string;
  paid: string;
  credited: string;
  net_minor: number;
  vat_minor: number;
  total_minor: number;
  seller: Record<string, unknown>;
  buyer: Record<string, unknown>;
  vat_breakdown: { vat_percent: string; net: string; vat: string; net_minor: number; vat_minor: number }[];
  lines: LineView[];
}

export interface LineView {
  line_no: number;
  kind: string;
  description: string;
  session_id: string | null;
  session_version: number | null;
  started_at_ms: number | null;
  stopped_at_ms: number | null;
  charge_point_id: string | null;
  evse_id: number | null;
  station_id: string | null;
  energy_wh: number | null;
  duration_s: number | null;
  tariff_id: string | null;
  tariff_version: number | null;
  id_tag: string | null;
  cost_centre_id: string | null;
  /** A discount line's membership plan and rule (billing/memberships.ts). */
  plan_id: string | null;
  rule: string | null;
  net: string;
  net_minor: number;
  vat_percent: string;
}

interface DocumentRow {
  id: number;
  kind: 'invoice' | 'credit_note';
  number_text: string | null;
  status: string;
  account_id: string;
  legal_entity_id: string;
  period: string | null;
  session_id: string | null;
  currency: string;
  issue_date: string | null;
  due_date: string | null;
  credited_invoice_id: number | null;
  reason: string;
  net_minor: number;
  vat_minor: number;
  total_minor: number;
  paid_minor: number;
  credited_minor: number;
  seller: Record<string, unknown>;
  buyer: Record<string, unknown>;
}

const document_columns = `id, kind, number_text, status, account_id, legal_entity_id, period, session_id, currency,
  to_char(issue_date, 'YYYY-MM-DD') AS issue_date, to_char(due_date, 'YYYY-MM-DD') AS due_date, credited_invoice_id,
  reason, net_minor, vat_minor, total_minor, paid_minor, credited_minor, seller, buyer`;

export interface DocumentFilter {
  kind: 'invoice' | 'credit_note';
  account_id?: string;
  period?: string;
  status?: string;
  invoice_id?: number;
  limit: number;
  offset: number;
}

function view(row: DocumentRow, lines: LineView[], vat: DocumentView['vat_breakdown']): DocumentView {
  const c = row.currency;
  return {
    id: row.id,
    kind: row.kind,
    number: row.number_text,
    status: row.status,
    account_id: row.account_id,
    legal_entity_id: row.legal_entity_id,
    period: row.period,
    session_id: row.session_id,
    currency: c,
    issue_date: row.issue_date,
    due_date: row.due_date,
    credited_invoice_id: row.credited_invoice_id,
    reason: row.reason,
    net: text_of_minor(row.net_minor, c),
    vat: text_of_minor(row.vat_minor, c),
    total: text_of_minor(row.total_minor, c),
    paid: text_of_minor(row.paid_minor, c),
    credited: text_of_minor(row.credited_minor, c),
    net_minor: row.net_minor,
    vat_minor: row.vat_minor,
    total_minor: row.total_minor,
    seller: row.seller,
    buyer: row.buyer,
    vat_breakdown: vat,
    lines,
  };
}

export async function list_documents(db: Queryable, filter: DocumentFilter): Promise<DocumentView[]> {
  const rows = await db.query<DocumentRow>(
    `SELECT ${document_columns} FROM invoices
     WHERE kind = $1 AND ($2::text IS NULL OR account_id = $2) AND ($3::text IS NULL OR period = $3)
       AND ($4::text IS NULL OR status = $4) AND ($5::int8 IS NULL OR credited_invoice_id = $5)
     ORDER BY id LIMIT $6 OFFSET $7`,
    [
      filter.kind,
      filter.account_id ?? null,
      filter.period ?? null,
      filter.status ?? null,
      filter.invoice_id ?? null,
      filter.limit,
      filter.offset,
    ],
  );
  return rows.map((r) => view(r, [], []));
}

export async function get_document(db: Queryable, id: number): Promise<DocumentView | undefined> {
  const [row] = await db.query<DocumentRow>(`SELECT ${document_columns} FROM invoices WHERE id = $1`, [id]);
  if (row === undefined) return undefined;
  const lines = await db.query<Omit<LineView, 'net'>>(
    `SELECT line_no, kind, description, session_id, session_version, started_at_ms, stopped_at_ms, charge_point_id,
       evse_id, station_id, energy_wh, duration_s, tariff_id, tariff_version, id_tag, cost_centre_id, plan_id, rule,
       net_minor, trim_scale(vat_percent)::text AS vat_percent
     FROM invoice_lines WHERE invoice_id = $1 ORDER BY line_no`,
    [id],
  );
  const vat = await db.query<{ vat_percent: string; net_minor: number; vat_minor: number }>(
    `SELECT trim_scale(vat_percent)::text AS vat_percent, net_minor, vat_minor FROM invoice_vat
     WHERE invoice_id = $1 ORDER BY invoice_vat.vat_percent`,
    [id],
  );
  return view(
    row,
    lines.map((l) => ({ ...l, net: text_of_minor(l.net_minor, row.currency) })),
    vat.map((v) => ({
      ...v,
      net: text_of_minor(v.net_minor, row.currency),
      vat: text_of_minor(v.vat_minor, row.currency),
    })),
  );
}
