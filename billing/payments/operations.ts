import type { Ledger, Queryable } from '../ledger.js';
import {
  apply_provider_payment,
  apply_refund_succeeded,
  type Cause,
  lock_payment,
  type PaymentRow,
} from './apply.js';
import {
  type PaymentProvider,
  PaymentProviderError,
  type ProviderPayment,
  type ProviderRefund,
} from './provider.js';

/**
 * Calls to the provider, made safe against crashes and timeouts (STYLE.md "records its intent in
 * the ledger first"):
 *
 * 1. In one transaction the operation row is written with its idempotency key, derived from the
 *    ledger row it serves (`payment:<id>:<kind>:<n>`), and the exact request; it commits.
 * 2. The provider is called with that key.
 * 3. In a second transaction the answer is applied (state, amounts, journal) and the operation is
 *    finished, unless an event or a concurrent retry finished it first.
 *
 * A crash or timeout between 1 and 3 leaves the row `pending`; `resume_pending_operations` sends
 * the same request with the same key again, and the provider answers with its first answer
 * (Stripe "Idempotent requests"), so the money moves exactly once.
 */
export interface PaymentsContext {
  ledger: Ledger;
  provider: PaymentProvider;
  now?: () => number;
}

export type OperationKind = 'authorize' | 'charge' | 'capture' | 'cancel' | 'refund';

/** The request as stored: what is sent again after a crash, byte for byte the same parameters. */
export type OperationRequest =
  | {
      kind: 'authorize';
      amount_minor: number;
      currency: string;
      description: string;
      metadata: Record<string, string>;
      customer_id?: string;
      payment_method_id?: string;
      return_url?: string;
    }
  | {
      kind: 'charge';
      amount_minor: number;
      currency: string;
      description: string;
      metadata: Record<string, string>;
      customer_id: string;
      payment_method_id: string;
    }
  | { kind: 'capture'; amount_minor?: number }
  | { kind: 'cancel' }
  | { kind: 'refund'; refund_id: number; amount_minor: number; reason?: string };

export interface OperationRow {
  id: number;
  payment_id: number;
  kind: OperationKind;
  seq: number;
  idempotency_key: string;
  request: OperationRequest;
  status: 'pending' | 'succeeded' | 'failed';
  error_code: string | null;
}

/** Provider answers the ledger waits for before it gives up on a call (and leaves it pending). */
export const pending_operations_batch_max = 100;

export function now_of(ctx: PaymentsContext): number {
  return (ctx.now ?? Date.now)();
}

/** Step 1: writes the intent in the caller's transaction (the payment locked). */
export async function add_operation(
  tx: Queryable,
  payment_id: number,
  request: OperationRequest,
  at_ms: number,
): Promise<OperationRow> {
  const [next] = await tx.query<{ seq: number }>(
    'SELECT coalesce(max(seq), 0)::int8 + 1 AS seq FROM payment_operations WHERE payment_id = $1 AND kind = $2',
    [payment_id, request.kind],
  );
  const seq = next!.seq;
  const idempotency_key = `payment:${payment_id}:${request.kind}:${seq}`;
  const [row] = await tx.query<{ id: number }>(
    `INSERT INTO payment_operations (payment_id, kind, seq, idempotency_key, request, status, created_at_ms)
     VALUES ($1, $2, $3, $4, $5, 'pending', $6) RETURNING id`,
    [payment_id, request.kind, seq, idempotency_key, JSON.stringify(request), at_ms],
  );
  return {
    id: row!.id,
    payment_id,
    kind: request.kind,
    seq,
    idempotency_key,
    request,
    status: 'pending',
    error_code: null,
  };
}

export async function pending_operation(
  tx: Queryable,
  payment_id: number,
): Promise<OperationRow | undefined> {
  const [row] = await tx.query<OperationRow>(
    `SELECT id, payment_id, kind, seq, idempotency_key, request, status, error_code FROM payment_operations
     WHERE payment_id = $1 AND status = 'pending' ORDER BY id LIMIT 1`,
    [payment_id],
  );
  return row;
}

type Answer =
  | { kind: 'payment'; payment: ProviderPayment }
  | { kind: 'refund'; refund: ProviderRefund }
  | { kind: 'error'; error: PaymentProviderError };

/** Step 2: the call itself, with the operation's key; never touches the ledger. */
async function call_provider(
  provider: PaymentProvider,
  op: OperationRow,
  payment: PaymentRow,
): Promise<Answer> {
  const key = op.idempotency_key;
  const request = op.request;
  try {
    switch (request.kind) {
      case 'authorize': {
        const { kind: _, ...fields } = request;
        return { kind: 'payment', payment: await provider.authorize({ idempotency_key: key, ...fields }) };
      }
      case 'charge': {
        const { kind: _, ...fields } = request;
        return {
          kind: 'payment',
          payment: await provider.charge_saved_method({ idempotency_key: key, ...fields }),
        };
      }
      case 'capture':
        return {
          kind: 'payment',
          payment: await provider.capture({
            idempotency_key: key,
            provider_payment_id: payment.provider_payment_id!,
            amount_minor: request.amount_minor,
          }),
        };
      case 'cancel':
        return {
          kind: 'payment',
          payment: await provider.cancel({
            idempotency_key: key,
            provider_payment_id: payment.provider_payment_id!,
          }),
        };
      case 'refund':
        return {
          kind: 'refund',
          refund: await provider.refund({
            idempotency_key: key,
            provider_payment_id: payment.provider_payment_id!,
            amount_minor: request.amount_minor,
            reason: request.reason,
            metadata: { payment_id: String(payment.id), refund_id: String(request.refund_id) },
          }),
        };
    }
  } catch (error) {
    if (error instanceof PaymentProviderError) return { kind: 'error', error };
    return { kind: 'error', error: new PaymentProviderError('unavailable', String(error)) };
  }
}

export interface OperationOutcome {
  operation: OperationRow;
  payment: PaymentRow;
  /** What the provider answered, for the caller (client_secret, next_action_url); not stored. */
  provider_payment?: ProviderPayment | undefined;
  error?: PaymentProviderError | undefined;
}

/**
 * Steps 2 and 3 for one pending operation. A provider that is unavailable leaves it pending (the
 * outcome carries the error); any other refusal finishes it as failed.
 */
export async function run_operation(
  ctx: PaymentsContext,
  op: OperationRow,
  actor: string,
): Promise<OperationOutcome> {
  const [payment] = await ctx.ledger.query<PaymentRow>(
    `SELECT id, provider, provider_payment_id, purpose, method, account_id, invoice_id, attempt, currency, amount_minor,
       capturable_minor, captured_minor, refunded_minor, charged_back_minor, state, next_action_url, failure_code, metadata,
       created_at_ms, updated_at_ms FROM payments WHERE id = $1`,
    [op.payment_id],
  );
  if (payment === undefined) throw new Error(`operation ${op.id}: payment ${op.payment_id} is missing`);
  const answer = await call_provider(ctx.provider, op, payment);
  if (answer.kind === 'error' && answer.error.code === 'unavailable') {
    return { operation: op, payment, error: answer.error };
  }
  return await record_answer(ctx, op, answer, actor);
}

/** Step 3. */
async function record_answer(
  ctx: PaymentsContext,
  op: OperationRow,
  answer: Answer,
  actor: string,
): Promise<OperationOutcome> {
  const at_ms = now_of(ctx);
  return await ctx.ledger.transaction(async (tx) => {
    let payment = (await lock_payment(tx, op.payment_id))!;
    const [current] = await tx.query<{ status: string }>(
      'SELECT status FROM payment_operations WHERE id = $1 FOR UPDATE',
      [op.id],
    );
    const provider_payment = answer.kind === 'payment' ? answer.payment : undefined;
    if (current?.status !== 'pending') {
      return {
        operation: { ...op, status: current!.status as OperationRow['status'] },
        payment,
        provider_payment,
      };
    }
    const cause: Cause = { actor, reason: `${op.kind} answered (${op.idempotency_key})`, at_ms };
    let status: OperationRow['status'] = 'succeeded';
    let error: PaymentProviderError | undefined;
    if (answer.kind === 'payment') {
      payment = await apply_provider_payment(tx, payment, answer.payment, cause);
    } else if (answer.kind === 'refund') {
      payment = await finish_refund(tx, payment, op, answer.refund, cause);
      if (answer.refund.status === 'failed') status = 'failed';
    } else {
      status = 'failed';
      error = answer.error;
      payment = await refuse(tx, payment, op, answer.error, cause);
    }
    await tx.query(
      `UPDATE payment_operations SET status = $2, error_code = $3, error_message = $4, finished_at_ms = $5 WHERE id = $1`,
      [
        op.id,
        status,
        error?.provider_code ?? error?.code ?? null,
        error?.message.slice(0, 500) ?? null,
        at_ms,
      ],
    );
    return {
      operation: { ...op, status, error_code: error?.code ?? null },
      payment,
      provider_payment,
      error,
    };
  });
}

/** The provider refused the call: a refund is failed; a first authorization or charge fails the payment. */
async function refuse(
  tx: Queryable,
  payment: PaymentRow,
  op: OperationRow,
  error: PaymentProviderError,
  cause: Cause,
): Promise<PaymentRow> {
  if (op.request.kind === 'refund') {
    await tx.query(
      "UPDATE payment_refunds SET status = 'failed', updated_at_ms = $2 WHERE id = $1 AND status = 'pending'",
      [op.request.refund_id, cause.at_ms],
    );
    return payment;
  }
  if ((op.kind === 'authorize' || op.kind === 'charge') && payment.provider_payment_id === null) {
    return await apply_provider_payment(
      tx,
      payment,
      {
        provider_payment_id: '',
        status: 'failed',
        currency: payment.currency,
        amount_minor: payment.amount_minor,
        amount_capturable_minor: 0,
        amount_captured_minor: 0,
        amount_refunded_minor: 0,
        failure_code: error.provider_code ?? error.code,
        failure_message: error.message,
      },
      { ...cause, reason: `${op.kind} refused: ${error.message}` },
    );
  }
  return payment;
}

/** A refund answer or event for a refund row: booked once, when it first succeeds. */
export async function finish_refund(
  tx: Queryable,
  payment: PaymentRow,
  op: OperationRow | undefined,
  refund: ProviderRefund,
  cause: Cause,
): Promise<PaymentRow> {
  const refund_id = op?.request.kind === 'refund' ? op.request.refund_id : Number(refund.metadata?.refund_id);
  const [row] = await tx.query<{
    id: number;
    status: string;
    amount_minor: number;
    credit_note_id: number | null;
  }>(
    'SELECT id, status, amount_minor, credit_note_id FROM payment_refunds WHERE id = $1 AND payment_id = $2 FOR UPDATE',
    [refund_id, payment.id],
  );
  if (row === undefined) throw new Error(`refund ${refund_id} of payment ${payment.id} is missing`);
  if (row.status !== 'pending') return payment;
  if (refund.amount_minor !== row.amount_minor) {
    throw new Error(
      `refund ${row.id}: the provider refunded ${refund.amount_minor}, the ledger asked ${row.amount_minor}`,
    );
  }
  if (refund.status === 'pending') {
    await tx.query('UPDATE payment_refunds SET provider_refund_id = $2, updated_at_ms = $3 WHERE id = $1', [
      row.id,
      refund.provider_refund_id,
      cause.at_ms,
    ]);
    return payment;
  }
  await tx.query(
    'UPDATE payment_refunds SET status = $2, provider_refund_id = $3, updated_at_ms = $4 WHERE id = $1',
    [row.id, refund.status, refund.provider_refund_id, cause.at_ms],
  );
  if (refund.status === 'failed') return payment;
  return await apply_refund_succeeded(tx, payment, row, cause);
}

/**
 * After a restart (or on a schedule): every pending operation is sent again with its own key, in
 * the order they were written (an authorization before its capture).
 */
export async function resume_pending_operations(
  ctx: PaymentsContext,
  actor = 'system:resume',
): Promise<{ resumed: number; still_pending: number }> {
  const ops = await ctx.ledger.query<OperationRow>(
    `SELECT id, payment_id, kind, seq, idempotency_key, request, status, error_code FROM payment_operations
     WHERE status = 'pending' ORDER BY id LIMIT $1`,
    [pending_operations_batch_max],
  );
  let resumed = 0;
  let still_pending = 0;
  for (const op of ops) {
    const outcome = await run_operation(ctx, op, actor);
    if (outcome.error?.code === 'unavailable') still_pending++;
    else resumed++;
  }
  return { resumed, still_pending };
}
