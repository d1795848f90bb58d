import { FieldError } from '../../core/field-error.js';
import { Money } from '../../core/money.js';
import { minor_of, vat_key } from '../amounts.js';
import { record_billing_events } from '../events.js';
import { post_entry, revenue_account, vat_payable_account } from '../journal.js';
import type { Ledger } from '../ledger.js';

/**
 * A charger with its own payment terminal starts the session itself once the terminal has
 * authorized the card; the session's token is the terminal's authorization reference (OCPI 2.3
 * Session/CDR authorization_reference, CiString(36)). The terminal provider later confirms the
 * capture with the fields of OCPI 2.3's FinancialAdviceConfirmation; that confirmation settles the
 * session in the ledger (cash against revenue and VAT, event payment_received with method
 * terminal), once per id, and the reconciliation (terminal_reconciliation) sets it against the
 * rated total of the session the reference started.
 *
 * How the reference travels from the charger:
 * - OCPP 2.0.1: TransactionEventRequest (eventType Started, triggerReason Authorized) carries
 *   `idToken` = { idToken: <reference>, type: "Local", additionalInfo: [{ additionalIdToken:
 *   <reference>, type: "PaymentTerminal" }] }. IdTokenType.idToken is an identifierString of 36
 *   (part 2, IdTokenType), the size of OCPI's reference; IdTokenEnumType `Local` is the charger's
 *   own id; AdditionalInfoType.type "is a custom type, so the implementation needs to be agreed
 *   upon by all involved parties" (part 2, AdditionalInfoType): "PaymentTerminal" is that
 *   agreement, so support can tell a terminal session from a local RFID list.
 * - OCPP 1.6: StartTransaction.req `idTag` = <reference> (section 6.45). idTag is an IdToken of
 *   CiString20Type (sections 7.15, 7.28), so a terminal whose references are longer must hand the
 *   charger a short form of at most 20 characters, and confirm with that same text.
 * Either way the session's id_tag is the reference. Ingest accepts it only on a charger the
 * operator flagged as having a terminal, and only in the reference's form (ingest/payment-terminal.ts);
 * the rating service then gives the session the payment method TERMINAL, which billing keeps on
 * each rated version (session_versions.payment_method). Those versions are what a confirmation is
 * matched with.
 */
export interface TerminalConfirmation {
  id: string;
  authorization_reference: string;
  total_costs: { excl_vat: string; incl_vat: string };
  currency: string;
  eft_data: string[];
  capture_status_code: 'SUCCESS' | 'PARTIAL_SUCCESS' | 'FAILED';
  capture_status_message?: string;
  last_updated: string;
}

function text(o: Record<string, unknown>, field: string, max: number): string {
  const v = o[field];
  if (typeof v !== 'string' || v.length === 0 || v.length > max)
    throw new FieldError(field, `must be a string of 1 to ${max} characters`);
  return v;
}

function decimal(v: unknown, field: string): string {
  const t = typeof v === 'number' ? String(v) : v;
  if (typeof t !== 'string' || !/^\d{1,12}(\.\d{1,6})?$/.test(t))
    throw new FieldError(field, 'must be a non-negative decimal');
  return t;
}

export function parse_terminal_confirmation(value: unknown): TerminalConfirmation {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new FieldError('(body)', 'must be a JSON object');
  const o = value as Record<string, unknown>;
  const costs = o.total_costs as Record<string, unknown> | undefined;
  if (typeof costs !== 'object' || costs === null)
    throw new FieldError('total_costs', 'must be a Price object');
  const currency = text(o, 'currency', 3);
  if (!/^[A-Z]{3}$/.test(currency)) throw new FieldError('currency', 'must be an ISO 4217 code');
  const code = o.capture_status_code;
  if (code !== 'SUCCESS' && code !== 'PARTIAL_SUCCESS' && code !== 'FAILED')
    throw new FieldError('capture_status_code', 'must be SUCCESS, PARTIAL_SUCCESS or FAILED');
  if (!Array.isArray(o.eft_data) || !o.eft_data.every((e) => typeof e === 'string' && e.length <= 255))
    throw new FieldError('eft_data', 'must be a list of strings');
  const last_updated = text(o, 'last_updated', 40);
  if (Number.isNaN(Date.parse(last_updated)))
    throw new FieldError('last_updated', 'must be an RFC 3339 date-time');
  const excl = decimal(costs.excl_vat, 'total_costs.excl_vat');
  const incl = costs.incl_vat === undefined ? excl : decimal(costs.incl_vat, 'total_costs.incl_vat');
  if (new Money(incl).lt(excl)) throw new FieldError('total_costs.incl_vat', 'must not be below excl_vat');
  const message = o.capture_status_message;
  if (message !== undefined && (typeof message !== 'string' || message.length > 255))
    throw new FieldError('capture_status_message', 'must be a string of at most 255 characters');
  return {
    id: text(o, 'id', 36),
    authorization_reference: text(o, 'authorization_reference', 36),
    total_costs: { excl_vat: excl, incl_vat: incl },
    currency,
    eft_data: o.eft_data as string[],
    capture_status_code: code,
    ...(message === undefined ? {} : { capture_status_message: message as string }),
    last_updated,
  };
}

/** Records the confirmation once (by its id) and books a successful capture. Returns whether it was new. */
export async function record_terminal_confirmation(
  ledger: Ledger,
  confirmation: TerminalConfirmation,
  terminal_provider_id: string | null,
  now_ms = Date.now(),
): Promise<{ recorded: boolean; session_id: string | null }> {
  const c = confirmation;
  const excl_minor = minor_of(c.total_costs.excl_vat, c.currency);
  const incl_minor = minor_of(c.total_costs.incl_vat, c.currency);
  return await ledger.transaction(async (tx) => {
    const inserted = await tx.query(
      `INSERT INTO pay_terminal_confirmations (id, authorization_reference, currency, total_excl_vat_minor,
         total_incl_vat_minor, eft_data, capture_status_code, capture_status_message, last_updated, received_at_ms,
         terminal_provider_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO NOTHING RETURNING id`,
      [
        c.id,
        c.authorization_reference,
        c.currency,
        excl_minor,
        incl_minor,
        JSON.stringify(c.eft_data),
        c.capture_status_code,
        c.capture_status_message ?? null,
        c.last_updated,
        now_ms,
        terminal_provider_id,
      ],
    );
    // The terminal session the reference started, as the rated feed recorded it (may be absent
    // yet): only a session ingest accepted as a terminal session (payment method TERMINAL, on a
    // charger flagged with a terminal) is settled by a terminal provider, never a card's.
    const [session] = await tx.query<{ session_id: string; vat_percent: string }>(
      `SELECT v.session_id, v.vat_percent FROM session_versions v
       WHERE v.session_id = (SELECT t.session_id FROM session_versions t
         WHERE t.id_tag = $1 AND t.payment_method = 'TERMINAL' ORDER BY t.recorded_at_ms DESC, t.version DESC LIMIT 1)
       ORDER BY v.version DESC LIMIT 1`,
      [c.authorization_reference],
    );
    if (inserted.length === 0) return { recorded: false, session_id: session?.session_id ?? null };
    const attributes = {
      method: 'terminal',
      ...(terminal_provider_id === null ? {} : { provider: terminal_provider_id }),
      authorization_reference: c.authorization_reference,
      confirmation_id: c.id,
      capture_status_code: c.capture_status_code,
      ...(session === undefined ? {} : { session_id: session.session_id }),
    };
    if (c.capture_status_code === 'FAILED') {
      await record_billing_events(tx, [
        {
          kind: 'payment_failed',
          occurred_at_ms: now_ms,
          amount_minor: 0,
          currency: c.currency,
          attributes: { ...attributes, failure_code: 'terminal_capture_failed' },
        },
      ]);
      return { recorded: true, session_id: session?.session_id ?? null };
    }
    const rate = vat_key(
      session?.vat_percent ??
        (excl_minor === 0
          ? '0'
          : new Money(incl_minor).div(excl_minor).sub(1).mul(100).toDecimalPlaces(2).toString()),
    );
    await post_entry(tx, {
      kind: 'payment_received',
      source_id: `terminal:${c.id}`,
      currency: c.currency,
      posted_at_ms: now_ms,
      description: `terminal capture ${c.id} (${c.authorization_reference})`,
      lines: [
        { ledger_account: 'cash', debit_minor: incl_minor, credit_minor: 0 },
        { ledger_account: revenue_account(rate), debit_minor: 0, credit_minor: excl_minor },
        { ledger_account: vat_payable_account(rate), debit_minor: 0, credit_minor: incl_minor - excl_minor },
      ],
    });
    await record_billing_events(tx, [
      {
        kind: 'payment_received',
        occurred_at_ms: now_ms,
        amount_minor: incl_minor,
        currency: c.currency,
        attributes,
      },
    ]);
    return { recorded: true, session_id: session?.session_id ?? null };
  });
}
