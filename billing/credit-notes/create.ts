import { FieldError } from '../../core/field-error.js';
import { document_totals, minor_of, text_of_minor, vat_key } from '../amounts.js';
import { create_draft, type DocumentLine, issue_draft } from '../invoices/issue.js';
import type { Ledger, Queryable } from '../ledger.js';

/**
 * Credit notes: a correction of an issued invoice by a new, numbered document in its own series,
 * never an edit of the invoice. A credit note is never larger than what remains of its invoice
 * (total minus what earlier credit notes took): the invoice row is locked while this is checked and
 * the credit note issued, so two at once cannot both pass.
 */
export interface CreditNoteRequest {
  invoice_id: number;
  /** Net amount excl. VAT to credit at `vat_percent`; absent: the whole invoice. */
  amount?: string;
  vat_percent?: string;
  reason: string;
}

export class CreditNoteError extends FieldError {}

interface InvoiceForCredit {
  id: number;
  kind: string;
  status: string;
  account_id: string;
  legal_entity_id: string;
  currency: string;
  total_minor: number;
  credited_minor: number;
  paid_minor: number;
  number_text: string | null;
  seller: unknown;
  buyer: unknown;
  time_zone: string;
  payment_terms_days: number;
}

async function lock_invoice(tx: Queryable, invoice_id: number): Promise<InvoiceForCredit | undefined> {
  const [row] = await tx.query<InvoiceForCredit>(
    `SELECT i.id, i.kind, i.status, i.account_id, i.legal_entity_id, i.currency, i.total_minor, i.credited_minor,
       i.paid_minor, i.number_text, i.seller, i.buyer, e.time_zone, a.payment_terms_days
     FROM invoices i JOIN legal_entities e ON e.id = i.legal_entity_id JOIN accounts a ON a.id = i.account_id
     WHERE i.id = $1 FOR UPDATE OF i`,
    [invoice_id],
  );
  return row;
}

/** Creates, issues and books the credit note, and lowers what remains of the invoice. */
async function credit(
  tx: Queryable,
  invoice: InvoiceForCredit,
  lines: DocumentLine[],
  reason: string,
  now_ms: number,
  field: string,
): Promise<number> {
  const totals = document_totals(lines, invoice.currency);
  const remaining = invoice.total_minor - invoice.credited_minor;
  if (totals.total_minor <= 0) throw new CreditNoteError(field, 'must credit more than 0');
  if (totals.total_minor > remaining) {
    throw new CreditNoteError(
      field,
      `credits ${text_of_minor(totals.total_minor, invoice.currency)} incl. VAT, more than the ${text_of_minor(remaining, invoice.currency)} remaining of invoice ${invoice.number_text}`,
    );
  }
  const id = await create_draft(tx, {
    kind: 'credit_note',
    parties: {
      account_id: invoice.account_id,
      legal_entity_id: invoice.legal_entity_id,
      time_zone: invoice.time_zone,
      payment_terms_days: invoice.payment_terms_days,
      seller: invoice.seller,
      buyer: invoice.buyer,
    },
    currency: invoice.currency,
    period: null,
    credited_invoice_id: invoice.id,
    reason,
    lines,
    now_ms,
  });
  await issue_draft(tx, id, now_ms);
  const credited = invoice.credited_minor + totals.total_minor;
  const fully = credited === invoice.total_minor && invoice.paid_minor === 0;
  await tx.query(
    `UPDATE invoices SET credited_minor = $2, status = CASE WHEN $3 THEN 'void' ELSE status END WHERE id = $1`,
    [invoice.id, credited, fully],
  );
  return id;
}

function check_invoice(invoice: InvoiceForCredit | undefined): InvoiceForCredit {
  if (invoice === undefined || invoice.kind !== 'invoice') {
    throw new CreditNoteError('invoice_id', 'is not a known invoice');
  }
  if (invoice.status === 'draft' || invoice.status === 'void') {
    throw new CreditNoteError('invoice_id', `is ${invoice.status}: only an issued invoice can be credited`);
  }
  return invoice;
}

export async function create_credit_note(
  ledger: Ledger,
  request: CreditNoteRequest,
  now_ms = Date.now(),
): Promise<number> {
  if (typeof request.reason !== 'string' || request.reason.length === 0 || request.reason.length > 500) {
    throw new CreditNoteError('reason', 'must be 1 to 500 characters');
  }
  if (
    request.amount !== undefined &&
    (typeof request.amount !== 'string' || !/^\d{1,12}(\.\d+)?$/.test(request.amount))
  ) {
    throw new CreditNoteError('amount', 'must be a positive decimal text (net, excl. VAT)');
  }
  return await ledger.transaction(async (tx) => await create_credit_note_in(tx, request, now_ms));
}

/** The same, inside the caller's transaction (a dispute resolution books it with its own rows). */
export async function create_credit_note_in(
  tx: Queryable,
  request: CreditNoteRequest,
  now_ms: number,
): Promise<number> {
  {
    const invoice = check_invoice(await lock_invoice(tx, request.invoice_id));
    const rates = await tx.query<{ vat_percent: string; net_minor: number }>(
      'SELECT trim_scale(vat_percent)::text AS vat_percent, net_minor FROM invoice_vat WHERE invoice_id = $1 ORDER BY vat_percent',
      [invoice.id],
    );
    if (request.amount === undefined) {
      if (invoice.credited_minor > 0) {
        throw new CreditNoteError('amount', 'is required: the invoice is already partly credited');
      }
      // The whole invoice: one line per VAT rate with that rate's net, so the same rounding rule
      // gives back exactly the invoice's VAT and total.
      const lines: DocumentLine[] = rates.map((r) => ({
        kind: 'credit',
        description: `Credit of invoice ${invoice.number_text} at ${r.vat_percent}% VAT`,
        net_minor: r.net_minor,
        vat_percent: r.vat_percent,
      }));
      return await credit(tx, invoice, lines, request.reason, now_ms, 'invoice_id');
    }
    let vat_percent = request.vat_percent;
    if (vat_percent === undefined) {
      if (rates.length !== 1)
        throw new CreditNoteError('vat_percent', 'is required: the invoice has several VAT rates');
      vat_percent = rates[0]!.vat_percent;
    }
    if (
      typeof vat_percent !== 'string' ||
      !/^\d{1,2}(\.\d{1,4})?$/.test(vat_percent) ||
      !rates.some((r) => vat_key(r.vat_percent) === vat_key(vat_percent!))
    ) {
      throw new CreditNoteError('vat_percent', "must be one of the invoice's VAT rates");
    }
    const net_minor = minor_of(request.amount, invoice.currency);
    const lines: DocumentLine[] = [
      {
        kind: 'credit',
        description: `Partial credit of invoice ${invoice.number_text}`,
        net_minor,
        vat_percent: vat_key(vat_percent),
      },
    ];
    return await credit(tx, invoice, lines, request.reason, now_ms, 'amount');
  }
}

/**
 * A credit of net amounts at several of the invoice's VAT rates (one line per rate), in the
 * caller's transaction: a dispute's re-rating of a session billed in several VAT parts gives back
 * each part's own difference at its own rate.
 */
export async function create_credit_note_parts_in(
  tx: Queryable,
  request: {
    invoice_id: number;
    /** A part naming a session version is that session's price correction (see credit_sessions). */
    parts: readonly {
      vat_percent: string;
      net_minor: number;
      session_id?: string;
      session_version?: number;
    }[];
    reason: string;
  },
  now_ms: number,
): Promise<number> {
  const invoice = check_invoice(await lock_invoice(tx, request.invoice_id));
  const rates = await tx.query<{ vat_percent: string }>(
    'SELECT trim_scale(vat_percent)::text AS vat_percent FROM invoice_vat WHERE invoice_id = $1',
    [invoice.id],
  );
  const lines: DocumentLine[] = [];
  for (const part of request.parts) {
    if (!rates.some((r) => vat_key(r.vat_percent) === vat_key(part.vat_percent)))
      throw new CreditNoteError('vat_percent', `${part.vat_percent} is not one of the invoice's VAT rates`);
    if (!Number.isSafeInteger(part.net_minor) || part.net_minor <= 0)
      throw new CreditNoteError('amount', 'every part must credit a positive integer of minor units');
    lines.push({
      kind: 'credit',
      description: `Partial credit of invoice ${invoice.number_text} at ${vat_key(part.vat_percent)}% VAT${part.session_id === undefined ? '' : ` (session ${part.session_id} re-rated)`}`,
      net_minor: part.net_minor,
      vat_percent: vat_key(part.vat_percent),
      ...(part.session_id === undefined
        ? {}
        : {
            session_id: part.session_id,
            ...(part.session_version === undefined ? {} : { session_version: part.session_version }),
          }),
    });
  }
  return await credit(tx, invoice, lines, request.reason, now_ms, 'amount');
}

/**
 * Sessions re-rated (a higher final version) after their version was invoiced: per invoice, one
 * credit note with a credit line per session line, and the sessions become unbilled again so that
 * the next billing run invoices the new version as an adjustment. In the feed's transaction.
 */
export async function credit_sessions(
  tx: Queryable,
  items: readonly { session_id: string; version: number; invoice_id: number }[],
  now_ms: number,
): Promise<number[]> {
  const by_invoice = new Map<number, { session_id: string; version: number }[]>();
  for (const item of items) {
    const list = by_invoice.get(item.invoice_id) ?? [];
    list.push(item);
    by_invoice.set(item.invoice_id, list);
  }
  const created: number[] = [];
  for (const [invoice_id, sessions] of [...by_invoice.entries()].sort((a, b) => a[0] - b[0])) {
    const invoice = await lock_invoice(tx, invoice_id);
    if (invoice === undefined)
      throw new Error(`re-rated sessions name invoice ${invoice_id}, which does not exist`);
    const rows = await tx.query<DocumentLine & { vat_percent: string }>(
      `SELECT description, net_minor, trim_scale(vat_percent)::text AS vat_percent, session_id, session_version,
         started_at_ms, stopped_at_ms, charge_point_id, evse_id, station_id, energy_wh, duration_s, tariff_id,
         tariff_version, id_tag, cost_centre_id
       FROM invoice_lines l
       WHERE invoice_id = $1 AND kind = 'session'
         AND (session_id, session_version) IN (SELECT x.session_id, x.version FROM jsonb_to_recordset($2::jsonb) AS x(session_id text, version int))
       ORDER BY line_no`,
      [invoice_id, JSON.stringify(sessions)],
    );
    // What credit notes gave back of these sessions on this invoice already (a dispute's re-rating
    // credits a session's difference, billing/disputes/resolve.ts), per VAT rate: only the rest of
    // each billed line is credited now, so the session is never credited beyond what was billed.
    const earlier = await tx.query<{ session_id: string; vat_percent: string; net_minor: number }>(
      `SELECT l.session_id, trim_scale(l.vat_percent)::text AS vat_percent, sum(l.net_minor)::int8 AS net_minor
       FROM invoice_lines l JOIN invoices c ON c.id = l.invoice_id
       WHERE c.credited_invoice_id = $1 AND c.kind = 'credit_note' AND l.kind = 'credit' AND l.session_id = ANY($2::text[])
       GROUP BY l.session_id, l.vat_percent`,
      [invoice_id, sessions.map((x) => x.session_id)],
    );
    const left = new Map(
      earlier.map((e) => [`${e.session_id}|${vat_key(e.vat_percent)}`, Number(e.net_minor)]),
    );
    const lines: DocumentLine[] = [];
    for (const r of rows) {
      const key = `${r.session_id}|${vat_key(r.vat_percent)}`;
      const taken = Math.min(left.get(key) ?? 0, r.net_minor);
      left.set(key, (left.get(key) ?? 0) - taken);
      if (r.net_minor - taken <= 0) continue;
      lines.push({
        ...r,
        net_minor: r.net_minor - taken,
        kind: 'credit',
        description: `Re-rated: ${r.description}${taken > 0 ? ' (less what was credited before)' : ''}`,
      });
    }
    if (lines.length > 0) {
      created.push(
        await credit(tx, invoice, lines, 'sessions re-rated after invoicing', now_ms, 'session_id'),
      );
    }
    await tx.query(
      `UPDATE sessions SET billed_version = NULL, billed_invoice_id = NULL WHERE billed_invoice_id = $1
       AND session_id = ANY($2::text[])`,
      [invoice_id, sessions.map((s) => s.session_id)],
    );
  }
  return created;
}
