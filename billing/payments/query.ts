import { text_of_minor } from '../amounts.js';
import type { Queryable } from '../ledger.js';
import { type PaymentRow, select_payments } from './apply.js';

/** Payments as the API shows them: amounts as decimal text of their currency, with the history. */
export interface PaymentView {
  id: number;
  provider: string;
  provider_payment_id: string | null;
  purpose: 'invoice' | 'hold';
  method: string;
  account_id: string | null;
  invoice_id: number | null;
  attempt: number;
  state: string;
  currency: string;
  amount: string;
  capturable: string;
  captured: string;
  refunded: string;
  charged_back: string;
  failure_code: string | null;
  next_action_url: string | null;
  created_at_ms: number;
  updated_at_ms: number;
  transitions: {
    from: string;
    to: string;
    actor: string;
    reason: string;
    at_ms: number;
    provider_event_id: string | null;
  }[];
  refunds: {
    id: number;
    amount: string;
    status: string;
    reason: string;
    credit_note_id: number | null;
    provider_refund_id: string | null;
  }[];
  operations: { kind: string; idempotency_key: string; status: string; error_code: string | null }[];
}

export const payments_page_max = 200;

async function views(db: Queryable, rows: PaymentRow[]): Promise<PaymentView[]> {
  if (rows.length === 0) return [];
  const ids = rows.map((r) => r.id);
  const transitions = await db.query<{
    payment_id: number;
    from_state: string;
    to_state: string;
    actor: string;
    reason: string;
    at_ms: number;
    provider_event_id: string | null;
  }>(
    `SELECT payment_id, from_state, to_state, actor, reason, at_ms, provider_event_id FROM payment_transitions
     WHERE payment_id = ANY($1::int8[]) ORDER BY id`,
    [ids],
  );
  const refunds = await db.query<{
    id: number;
    payment_id: number;
    amount_minor: number;
    currency: string;
    status: string;
    reason: string;
    credit_note_id: number | null;
    provider_refund_id: string | null;
  }>(
    `SELECT id, payment_id, amount_minor, currency, status, reason, credit_note_id, provider_refund_id FROM payment_refunds
     WHERE payment_id = ANY($1::int8[]) ORDER BY id`,
    [ids],
  );
  const operations = await db.query<{
    payment_id: number;
    kind: string;
    idempotency_key: string;
    status: string;
    error_code: string | null;
  }>(
    'SELECT payment_id, kind, idempotency_key, status, error_code FROM payment_operations WHERE payment_id = ANY($1::int8[]) ORDER BY id',
    [ids],
  );
  return rows.map((p) => {
    const money = (minor: number) => text_of_minor(minor, p.currency);
    return {
      id: p.id,
      provider: p.provider,
      provider_payment_id: p.provider_payment_id,
      purpose: p.purpose,
      method: p.method,
      account_id: p.account_id,
      invoice_id: p.invoice_id,
      attempt: p.attempt,
      state: p.state,
      currency: p.currency,
      amount: money(p.amount_minor),
      capturable: money(p.capturable_minor),
      captured: money(p.captured_minor),
      refunded: money(p.refunded_minor),
      charged_back: money(p.charged_back_minor),
      failure_code: p.failure_code,
      next_action_url: p.next_action_url,
      created_at_ms: p.created_at_ms,
      updated_at_ms: p.updated_at_ms,
      transitions: transitions
        .filter((t) => t.payment_id === p.id)
        .map((t) => ({
          from: t.from_state,
          to: t.to_state,
          actor: t.actor,
          reason: t.reason,
          at_ms: t.at_ms,
          provider_event_id: t.provider_event_id,
        })),
      refunds: refunds
        .filter((r) => r.payment_id === p.id)
        .map((r) => ({
          id: r.id,
          amount: text_of_minor(r.amount_minor, r.currency),
          status: r.status,
          reason: r.reason,
          credit_note_id: r.credit_note_id,
          provider_refund_id: r.provider_refund_id,
        })),
      operations: operations
        .filter((o) => o.payment_id === p.id)
        .map((o) => ({
          kind: o.kind,
          idempotency_key: o.idempotency_key,
          status: o.status,
          error_code: o.error_code,
        })),
    };
  });
}

export async function get_payment(db: Queryable, id: number): Promise<PaymentView | undefined> {
  const [view] = await views(db, await select_payments(db, 'id = $1', [id]));
  return view;
}

export async function payments_of_invoice(db: Queryable, invoice_id: number): Promise<PaymentView[]> {
  return await views(
    db,
    await select_payments(db, 'invoice_id = $1 ORDER BY id LIMIT $2', [invoice_id, payments_page_max]),
  );
}

/** The account's payments, newest first, `limit` at most (a page before `before_id` when given). */
export async function payments_of_account(
  db: Queryable,
  account_id: string,
  page: { limit: number; before_id?: number | undefined },
): Promise<PaymentView[]> {
  const limit = Math.min(Math.max(page.limit, 1), payments_page_max);
  return await views(
    db,
    await select_payments(db, 'account_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3', [
      account_id,
      page.before_id ?? Number.MAX_SAFE_INTEGER,
      limit,
    ]),
  );
}
