import { FieldError } from '../../core/field-error.js';
import { record_billing_events } from '../events.js';
import { post_entry } from '../journal.js';
import type { Queryable } from '../ledger.js';
import { move_invoice_paid, type PaymentRow, select_payments } from './apply.js';
import {
  add_operation,
  now_of,
  type OperationOutcome,
  type PaymentsContext,
  pending_operation,
  run_operation,
} from './operations.js';
import { insert_payment, run_or_throw } from './payments.js';
import { is_open } from './states.js';

/**
 * Collecting an issued invoice by card: the account's credit first (credit notes it chose to keep),
 * then an off-session charge of its saved method (docs.stripe.com "Charge a saved payment method"),
 * one `payments` row per attempt. An attempt still open (created, requires_action, authorized) or
 * with a pending call is resumed, never doubled. Failed attempts are retried by calling this again
 * (on the collection schedule): the next attempt is a new payment with its own keys.
 */
export interface PaymentCustomer {
  account_id: string;
  provider: string;
  provider_customer_id: string;
  payment_method_id: string | null;
  card_brand: string | null;
  card_last4: string | null;
  credit_notes: 'refund' | 'account_credit';
}

export async function get_payment_customer(
  db: Queryable,
  account_id: string,
): Promise<PaymentCustomer | undefined> {
  const [row] = await db.query<PaymentCustomer>(
    `SELECT account_id, provider, provider_customer_id, payment_method_id, card_brand, card_last4, credit_notes
     FROM payment_customers WHERE account_id = $1`,
    [account_id],
  );
  return row;
}

/**
 * Saves a card for the account: its provider customer (made once, keyed by the account) and the
 * method attached to it. The provider calls are idempotent by key, so a retry is safe.
 */
export async function save_payment_method(
  ctx: PaymentsContext,
  request: { account_id: string; payment_method_id: string; actor: string },
): Promise<PaymentCustomer> {
  const [account] = await ctx.ledger.query<{ id: string; email: string }>(
    'SELECT id, email FROM accounts WHERE id = $1',
    [request.account_id],
  );
  if (account === undefined) throw new FieldError('account_id', 'is not a known account');
  if (
    typeof request.payment_method_id !== 'string' ||
    !/^[A-Za-z0-9_]{3,255}$/.test(request.payment_method_id)
  ) {
    throw new FieldError('payment_method_id', 'must be a provider payment method id');
  }
  if (ctx.provider.attach_payment_method === undefined) {
    throw new FieldError('payment_method_id', `provider ${ctx.provider.name} does not save payment methods`);
  }
  let customer = await get_payment_customer(ctx.ledger, account.id);
  if (customer === undefined || customer.provider !== ctx.provider.name) {
    const made = await ctx.provider.create_customer({
      idempotency_key: `account:${account.id}:customer:${ctx.provider.name}`,
      account_id: account.id,
      email: account.email === '' ? undefined : account.email,
    });
    await ctx.ledger.query(
      `INSERT INTO payment_customers (account_id, provider, provider_customer_id, updated_at_ms) VALUES ($1, $2, $3, $4)
       ON CONFLICT (account_id) DO UPDATE SET provider = EXCLUDED.provider, provider_customer_id = EXCLUDED.provider_customer_id,
         payment_method_id = NULL, card_brand = NULL, card_last4 = NULL, updated_at_ms = EXCLUDED.updated_at_ms`,
      [account.id, ctx.provider.name, made.provider_customer_id, now_of(ctx)],
    );
    customer = (await get_payment_customer(ctx.ledger, account.id))!;
  }
  const saved = await ctx.provider.attach_payment_method({
    idempotency_key: `account:${account.id}:attach:${request.payment_method_id}`,
    customer_id: customer.provider_customer_id,
    payment_method_id: request.payment_method_id,
  });
  await ctx.ledger.query(
    `UPDATE payment_customers SET payment_method_id = $2, card_brand = $3, card_last4 = $4, updated_at_ms = $5 WHERE account_id = $1`,
    [account.id, saved.payment_method_id, saved.brand ?? null, saved.last4 ?? null, now_of(ctx)],
  );
  return (await get_payment_customer(ctx.ledger, account.id))!;
}

/** The account's choice for credit notes on paid invoices: refund to the card, or keep as credit. */
export async function set_credit_note_choice(
  ledger: Queryable,
  account_id: string,
  choice: unknown,
  now_ms = Date.now(),
): Promise<PaymentCustomer | undefined> {
  if (choice !== 'refund' && choice !== 'account_credit') {
    throw new FieldError('credit_notes', "must be 'refund' or 'account_credit'");
  }
  const [account] = await ledger.query('SELECT 1 FROM accounts WHERE id = $1', [account_id]);
  if (account === undefined) throw new FieldError('account_id', 'is not a known account');
  // Without a card yet, the choice is kept on a row with no provider customer.
  await ledger.query(
    `INSERT INTO payment_customers (account_id, provider, provider_customer_id, credit_notes, updated_at_ms)
     VALUES ($1, 'none', $2, $3, $4)
     ON CONFLICT (account_id) DO UPDATE SET credit_notes = EXCLUDED.credit_notes, updated_at_ms = EXCLUDED.updated_at_ms`,
    [account_id, `none:${account_id}`, choice, now_ms],
  );
  return await get_payment_customer(ledger, account_id);
}

export async function account_credit_minor(
  db: Queryable,
  account_id: string,
  currency: string,
): Promise<number> {
  const [row] = await db.query<{ balance: number }>(
    'SELECT coalesce(sum(amount_minor), 0)::int8 AS balance FROM account_credit WHERE account_id = $1 AND currency = $2',
    [account_id, currency],
  );
  return row!.balance;
}

/**
 * Uses the account's credit for an invoice (the invoice locked by the caller): credit against the
 * receivable, the invoice's paid amount up by as much.
 */
export async function use_account_credit(
  tx: Queryable,
  invoice: { id: number; account_id: string; currency: string },
  amount_minor: number,
  at_ms: number,
): Promise<void> {
  const [n] = await tx.query<{ n: number }>(
    'SELECT count(*)::int8 AS n FROM account_credit WHERE source LIKE $1',
    [`invoice:${invoice.id}:%`],
  );
  const source = `invoice:${invoice.id}:${n!.n + 1}`;
  await tx.query(
    `INSERT INTO account_credit (account_id, currency, amount_minor, source, invoice_id, at_ms) VALUES ($1, $2, $3, $4, $5, $6)`,
    [invoice.account_id, invoice.currency, -amount_minor, source, invoice.id, at_ms],
  );
  await post_entry(tx, {
    kind: 'account_credit_used',
    source_id: source,
    currency: invoice.currency,
    posted_at_ms: at_ms,
    description: `account credit used for invoice ${invoice.id}`,
    lines: [
      {
        ledger_account: 'account_credit',
        party: invoice.account_id,
        debit_minor: amount_minor,
        credit_minor: 0,
      },
      { ledger_account: 'receivable', party: invoice.account_id, debit_minor: 0, credit_minor: amount_minor },
    ],
  });
  await record_billing_events(tx, [
    {
      kind: 'account_credit_used',
      occurred_at_ms: at_ms,
      account_id: invoice.account_id,
      invoice_id: invoice.id,
      amount_minor,
      currency: invoice.currency,
      attributes: { method: 'account_credit', source },
    },
  ]);
  await move_invoice_paid(tx, invoice.id, amount_minor, at_ms, {
    kind: 'payment_received',
    amount_minor,
    attributes: { method: 'account_credit', reference: source },
  });
}

export interface CollectionResult {
  invoice_id: number;
  /** Account credit used by this call. */
  credit_used_minor: number;
  /** The card attempt made or resumed; absent when credit covered it or nothing was owed. */
  outcome?: OperationOutcome | undefined;
  /** An open attempt with nothing to send: it waits for the payer (requires_action) or a capture. */
  waiting?: PaymentRow | undefined;
  /** Why nothing was charged. */
  skipped?: 'paid' | 'no_saved_method' | undefined;
}

/** Collects what remains of an issued invoice: account credit, then the saved card. */
export async function collect_invoice(
  ctx: PaymentsContext,
  invoice_id: number,
  actor: string,
): Promise<CollectionResult> {
  const at_ms = now_of(ctx);
  const step = await ctx.ledger.transaction(async (tx) => {
    const [invoice] = await tx.query<{
      id: number;
      kind: string;
      status: string;
      account_id: string;
      currency: string;
      number_text: string | null;
      total_minor: number;
      credited_minor: number;
      paid_minor: number;
    }>(
      `SELECT id, kind, status, account_id, currency, number_text, total_minor, credited_minor, paid_minor
       FROM invoices WHERE id = $1 FOR UPDATE`,
      [invoice_id],
    );
    if (invoice === undefined || invoice.kind !== 'invoice')
      throw new FieldError('invoice_id', 'is not a known invoice');
    if (invoice.status === 'draft' || invoice.status === 'void') {
      throw new FieldError('invoice_id', `is ${invoice.status}: only an issued invoice is collected`);
    }
    const attempts = await select_payments(tx, 'invoice_id = $1 ORDER BY attempt FOR UPDATE', [invoice.id]);
    const open = attempts.find((p: PaymentRow) => is_open(p.state));
    if (open !== undefined) {
      const pending = await pending_operation(tx, open.id);
      return { credit_used_minor: 0, resume: pending, open };
    }
    let remaining = invoice.total_minor - invoice.credited_minor - invoice.paid_minor;
    if (remaining <= 0) return { credit_used_minor: 0, skipped: 'paid' as const };
    const credit = await account_credit_minor(tx, invoice.account_id, invoice.currency);
    const credit_used_minor = Math.min(Math.max(credit, 0), remaining);
    if (credit_used_minor > 0) {
      await use_account_credit(tx, invoice, credit_used_minor, at_ms);
      remaining -= credit_used_minor;
    }
    if (remaining === 0) return { credit_used_minor, skipped: 'paid' as const };
    const customer = await get_payment_customer(tx, invoice.account_id);
    if (customer === undefined || customer.payment_method_id === null) {
      return { credit_used_minor, skipped: 'no_saved_method' as const };
    }
    const attempt = (attempts.at(-1)?.attempt ?? 0) + 1;
    const metadata = {
      invoice_id: String(invoice.id),
      account_id: invoice.account_id,
      attempt: String(attempt),
    };
    const payment_id = await insert_payment(
      tx,
      {
        provider: ctx.provider.name,
        purpose: 'invoice',
        method: 'card',
        account_id: invoice.account_id,
        invoice_id: invoice.id,
        attempt,
        currency: invoice.currency,
        amount_minor: remaining,
        metadata,
      },
      actor,
      at_ms,
    );
    await record_billing_events(tx, [
      {
        kind: 'collection_attempted',
        occurred_at_ms: at_ms,
        account_id: invoice.account_id,
        invoice_id: invoice.id,
        amount_minor: remaining,
        currency: invoice.currency,
        attributes: { attempt, method: 'card', payment_id },
      },
    ]);
    const op = await add_operation(
      tx,
      payment_id,
      {
        kind: 'charge',
        amount_minor: remaining,
        currency: invoice.currency,
        description: `Invoice ${invoice.number_text ?? invoice.id}`,
        metadata: { ...metadata, payment_id: String(payment_id) },
        customer_id: customer.provider_customer_id,
        payment_method_id: customer.payment_method_id,
      },
      at_ms,
    );
    return { credit_used_minor, resume: op };
  });
  if ('skipped' in step && step.skipped !== undefined) {
    return { invoice_id, credit_used_minor: step.credit_used_minor, skipped: step.skipped };
  }
  if (step.resume === undefined) {
    return { invoice_id, credit_used_minor: 0, waiting: step.open };
  }
  const outcome = await run_or_throw(run_operation(ctx, step.resume, actor));
  return { invoice_id, credit_used_minor: step.credit_used_minor, outcome };
}

/**
 * Issued invoices of accounts with a saved card that have no collection attempt yet, oldest first:
 * what a collection sweep charges. Later attempts after a failure follow the retry schedule.
 */
export async function invoices_to_collect(db: Queryable, limit: number): Promise<number[]> {
  const rows = await db.query<{ id: number }>(
    `SELECT i.id FROM invoices i JOIN payment_customers c ON c.account_id = i.account_id
     WHERE i.kind = 'invoice' AND i.status IN ('issued', 'partly_paid') AND c.payment_method_id IS NOT NULL
       AND i.total_minor - i.credited_minor - i.paid_minor > 0
       AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.invoice_id = i.id)
     ORDER BY i.id LIMIT $1`,
    [limit],
  );
  return rows.map((r) => r.id);
}
