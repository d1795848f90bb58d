import { FieldError } from '../../core/field-error.js';
import { text_of_minor } from '../amounts.js';
import type { Queryable } from '../ledger.js';
import { lock_payment, type PaymentRow } from './apply.js';
import {
  add_operation,
  now_of,
  type OperationKind,
  type OperationOutcome,
  type OperationRequest,
  type OperationRow,
  type PaymentsContext,
  pending_operation,
  run_operation,
} from './operations.js';

/**
 * Card payments: holds (authorize), captures, releases and refunds, each one intent row and one
 * provider call through `operations.ts`. Invoice collection (`collect.ts`) and credit note payouts
 * (`credit-notes.ts`) build on these.
 */
export class PaymentUnavailableError extends Error {
  constructor(
    readonly payment_id: number,
    message: string,
  ) {
    super(message);
  }
}

/** Runs the operation; an unreachable provider leaves it pending and throws (the caller may retry). */
export async function run_or_throw(outcome_of: Promise<OperationOutcome>): Promise<OperationOutcome> {
  const outcome = await outcome_of;
  if (outcome.error?.code === 'unavailable') {
    throw new PaymentUnavailableError(
      outcome.payment.id,
      `the provider did not answer (${outcome.error.message}); operation ${outcome.operation.idempotency_key} stays pending and is retried with the same key`,
    );
  }
  return outcome;
}

export interface CreatePaymentRow {
  provider: string;
  purpose: 'invoice' | 'hold';
  method: 'card' | 'wallet';
  account_id: string | null;
  invoice_id: number | null;
  attempt: number;
  currency: string;
  amount_minor: number;
  metadata: Record<string, string>;
}

export async function insert_payment(
  tx: Queryable,
  row: CreatePaymentRow,
  actor: string,
  at_ms: number,
): Promise<number> {
  const [inserted] = await tx.query<{ id: number }>(
    `INSERT INTO payments (provider, purpose, method, account_id, invoice_id, attempt, currency, amount_minor, state,
       metadata, created_at_ms, updated_at_ms)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'created', $9, $10, $10) RETURNING id`,
    [
      row.provider,
      row.purpose,
      row.method,
      row.account_id,
      row.invoice_id,
      row.attempt,
      row.currency,
      row.amount_minor,
      JSON.stringify(row.metadata),
      at_ms,
    ],
  );
  await tx.query(
    `INSERT INTO payment_transitions (payment_id, from_state, to_state, actor, reason, at_ms)
     VALUES ($1, 'created', 'created', $2, $3, $4)`,
    [inserted!.id, actor, `${row.purpose} payment of ${row.amount_minor} ${row.currency} created`, at_ms],
  );
  return inserted!.id;
}

export interface HoldRequest {
  amount_minor: number;
  currency: string;
  description: string;
  account_id?: string | undefined;
  /** A saved (or one-off) method; absent: the payer confirms in the browser with the client secret. */
  payment_method_id?: string | undefined;
  customer_id?: string | undefined;
  return_url?: string | undefined;
  metadata?: Record<string, string> | undefined;
  method?: 'card' | 'wallet';
  actor: string;
}

function check_amount(amount_minor: unknown, field = 'amount_minor'): number {
  if (typeof amount_minor !== 'number' || !Number.isSafeInteger(amount_minor) || amount_minor <= 0) {
    throw new FieldError(field, 'must be a positive integer of minor units');
  }
  return amount_minor;
}

/** A hold (manual capture), e.g. before a pay-at-charger session starts. */
export async function create_hold(ctx: PaymentsContext, request: HoldRequest): Promise<OperationOutcome> {
  const amount_minor = check_amount(request.amount_minor);
  if (typeof request.currency !== 'string' || !/^[A-Z]{3}$/.test(request.currency)) {
    throw new FieldError('currency', 'must be an ISO 4217 code');
  }
  const at_ms = now_of(ctx);
  const op = await ctx.ledger.transaction(async (tx) => {
    const id = await insert_payment(
      tx,
      {
        provider: ctx.provider.name,
        purpose: 'hold',
        method: request.method ?? 'card',
        account_id: request.account_id ?? null,
        invoice_id: null,
        attempt: 1,
        currency: request.currency,
        amount_minor,
        metadata: request.metadata ?? {},
      },
      request.actor,
      at_ms,
    );
    const op_request: OperationRequest = {
      kind: 'authorize',
      amount_minor,
      currency: request.currency,
      description: request.description,
      metadata: {
        ...(request.metadata ?? {}),
        payment_id: String(id),
        ...(request.account_id ? { account_id: request.account_id } : {}),
      },
      ...(request.customer_id !== undefined ? { customer_id: request.customer_id } : {}),
      ...(request.payment_method_id !== undefined ? { payment_method_id: request.payment_method_id } : {}),
      ...(request.return_url !== undefined ? { return_url: request.return_url } : {}),
    };
    return await add_operation(tx, id, op_request, at_ms);
  });
  return await run_or_throw(run_operation(ctx, op, request.actor));
}

async function locked_for(tx: Queryable, payment_id: number): Promise<PaymentRow> {
  const payment = await lock_payment(tx, payment_id);
  if (payment === undefined) throw new FieldError('payment_id', 'is not a known payment');
  return payment;
}

/**
 * Starts an operation on an existing payment. A pending operation of the same kind is sent again
 * instead (same key), so a double click or a retried request never starts a second capture; a
 * pending one of another kind is finished first.
 */
async function start(
  ctx: PaymentsContext,
  payment_id: number,
  kind: OperationKind,
  actor: string,
  prepare: (tx: Queryable, payment: PaymentRow, at_ms: number) => Promise<OperationRow>,
): Promise<OperationOutcome> {
  for (let round = 0; ; round++) {
    const at_ms = now_of(ctx);
    const { op, fresh } = await ctx.ledger.transaction(async (tx) => {
      const payment = await locked_for(tx, payment_id);
      const pending = await pending_operation(tx, payment.id);
      if (pending !== undefined) return { op: pending, fresh: false };
      return { op: await prepare(tx, payment, at_ms), fresh: true };
    });
    const outcome = await run_or_throw(run_operation(ctx, op, actor));
    if (fresh || op.kind === kind || round >= 1) return outcome;
  }
}

/** Captures all (no amount) or part of a hold, at most what is capturable, once. */
export async function capture_payment(
  ctx: PaymentsContext,
  payment_id: number,
  request: { amount_minor?: number | undefined; actor: string },
): Promise<OperationOutcome> {
  return await start(ctx, payment_id, 'capture', request.actor, async (tx, payment, at_ms) => {
    if (payment.state !== 'authorized') {
      throw new FieldError('payment_id', `is ${payment.state}: only an authorized payment can be captured`);
    }
    if (request.amount_minor !== undefined) {
      const amount = check_amount(request.amount_minor);
      if (amount > payment.capturable_minor) {
        throw new FieldError(
          'amount_minor',
          `must be at most the ${text_of_minor(payment.capturable_minor, payment.currency)} ${payment.currency} authorized`,
        );
      }
      return await add_operation(tx, payment.id, { kind: 'capture', amount_minor: amount }, at_ms);
    }
    return await add_operation(tx, payment.id, { kind: 'capture' }, at_ms);
  });
}

/** Releases a hold that was not captured. */
export async function cancel_payment(
  ctx: PaymentsContext,
  payment_id: number,
  actor: string,
): Promise<OperationOutcome> {
  return await start(ctx, payment_id, 'cancel', actor, async (tx, payment, at_ms) => {
    if (payment.state !== 'authorized' && payment.state !== 'requires_action') {
      throw new FieldError('payment_id', `is ${payment.state}: only a hold not captured can be released`);
    }
    return await add_operation(tx, payment.id, { kind: 'cancel' }, at_ms);
  });
}

/** What can still be refunded of a payment: captured, less refunded, charged back and refunds under way. */
export async function refundable_minor(tx: Queryable, payment: PaymentRow): Promise<number> {
  const [pending] = await tx.query<{ amount: number }>(
    "SELECT coalesce(sum(amount_minor), 0)::int8 AS amount FROM payment_refunds WHERE payment_id = $1 AND status = 'pending'",
    [payment.id],
  );
  return payment.captured_minor - payment.refunded_minor - payment.charged_back_minor - pending!.amount;
}

/**
 * What of an invoice was paid beyond what it still asks (paid + credited - total), less refunds
 * under way: the most that may go back to the payer. Money for an invoice goes back only against
 * a credit note (or an overpayment), never as a bare refund that would leave the books unbalanced.
 */
export async function invoice_excess_minor(tx: Queryable, invoice_id: number): Promise<number> {
  const [row] = await tx.query<{ excess: number }>(
    `SELECT (i.paid_minor + i.credited_minor - i.total_minor
       - coalesce((SELECT sum(r.amount_minor) FROM payment_refunds r JOIN payments p ON p.id = r.payment_id
                   WHERE p.invoice_id = i.id AND r.status = 'pending'), 0))::int8 AS excess
     FROM invoices i WHERE i.id = $1`,
    [invoice_id],
  );
  return Math.max(0, row?.excess ?? 0);
}

export interface RefundRequest {
  /** Absent: all that may be refunded. */
  amount_minor?: number | undefined;
  reason: string;
  credit_note_id?: number | undefined;
  actor: string;
}

/** Adds the refund row and its operation in the caller's transaction (the payment locked). */
export async function add_refund(
  tx: Queryable,
  payment: PaymentRow,
  request: RefundRequest,
  at_ms: number,
): Promise<OperationRow> {
  if (
    payment.state !== 'captured' &&
    payment.state !== 'partly_refunded' &&
    payment.state !== 'charged_back'
  ) {
    throw new FieldError('payment_id', `is ${payment.state}: only a captured payment can be refunded`);
  }
  let bound = await refundable_minor(tx, payment);
  let bound_reason = 'captured and not yet refunded';
  if (payment.invoice_id !== null) {
    const excess = await invoice_excess_minor(tx, payment.invoice_id);
    if (excess < bound) {
      bound = excess;
      bound_reason =
        'credited on (or paid beyond) its invoice and not yet refunded: issue a credit note first';
    }
  }
  const amount = request.amount_minor === undefined ? bound : check_amount(request.amount_minor);
  if (amount <= 0 || amount > bound) {
    throw new FieldError(
      'amount_minor',
      `must be more than 0 and at most the ${text_of_minor(Math.max(bound, 0), payment.currency)} ${payment.currency} ${bound_reason}`,
    );
  }
  const [refund] = await tx.query<{ id: number }>(
    `INSERT INTO payment_refunds (payment_id, credit_note_id, currency, amount_minor, status, reason, created_at_ms, updated_at_ms)
     VALUES ($1, $2, $3, $4, 'pending', $5, $6, $6) RETURNING id`,
    [
      payment.id,
      request.credit_note_id ?? null,
      payment.currency,
      amount,
      request.reason.slice(0, 500),
      at_ms,
    ],
  );
  const reasons = ['duplicate', 'fraudulent', 'requested_by_customer'];
  const op = await add_operation(
    tx,
    payment.id,
    {
      kind: 'refund',
      refund_id: refund!.id,
      amount_minor: amount,
      ...(reasons.includes(request.reason) ? { reason: request.reason } : {}),
    },
    at_ms,
  );
  await tx.query('UPDATE payment_refunds SET operation_id = $2 WHERE id = $1', [refund!.id, op.id]);
  return op;
}

/** Refunds all or part of a captured payment, bounded as `add_refund` says. */
export async function refund_payment(
  ctx: PaymentsContext,
  payment_id: number,
  request: RefundRequest,
): Promise<OperationOutcome> {
  if (typeof request.reason !== 'string' || request.reason.length === 0 || request.reason.length > 500) {
    throw new FieldError('reason', 'must be 1 to 500 characters');
  }
  return await start(ctx, payment_id, 'refund', request.actor, async (tx, payment, at_ms) =>
    add_refund(tx, payment, request, at_ms),
  );
}
