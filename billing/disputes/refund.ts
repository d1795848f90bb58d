import type { Queryable } from '../ledger.js';
import { select_payments } from '../payments/apply.js';
import { get_payment_customer } from '../payments/collect.js';
import {
  type OperationOutcome,
  type OperationRow,
  type PaymentsContext,
  run_operation,
} from '../payments/operations.js';
import { add_refund, invoice_excess_minor, refundable_minor } from '../payments/payments.js';

/**
 * The refund of a dispute's credit note, as an intent in the resolution's own transaction: the
 * refund rows and their provider operations (billing/payments, with their idempotency keys) are
 * written with the case's resolution and the credit note, so either all of it is in the ledger or
 * none of it. The provider calls follow the commit (`send_refunds`); a crash or a provider that
 * does not answer leaves the operations pending, and the payments sweep sends them again with the
 * same keys, so the money moves exactly once. The pending refunds count against the invoice's
 * excess (payments.ts invoice_excess_minor), so the sweep's own credit note payout
 * (credit-notes.ts) finds nothing more to pay for this note.
 *
 * What goes back is the credit note's total, at most what the invoice was paid beyond what it
 * still asks, to the invoice's card payments newest first (as credit-notes.ts does). An account
 * that chose account credit over refunds (payment_customers.credit_notes) gets none here: the
 * payments sweep books its account credit.
 */
export async function add_credit_note_refunds(
  tx: Queryable,
  request: { invoice_id: number; credit_note_id: number; credit_total_minor: number; actor: string },
  at_ms: number,
): Promise<OperationRow[]> {
  const [invoice] = await tx.query<{ account_id: string }>(
    'SELECT account_id FROM invoices WHERE id = $1 FOR UPDATE',
    [request.invoice_id],
  );
  if (invoice === undefined) return [];
  const choice = (await get_payment_customer(tx, invoice.account_id))?.credit_notes ?? 'refund';
  if (choice !== 'refund') return [];
  let left = Math.min(request.credit_total_minor, await invoice_excess_minor(tx, request.invoice_id));
  const ops: OperationRow[] = [];
  if (left <= 0) return ops;
  const payments = await select_payments(
    tx,
    "invoice_id = $1 AND state IN ('captured', 'partly_refunded', 'charged_back') ORDER BY id DESC FOR UPDATE",
    [request.invoice_id],
  );
  for (const payment of payments) {
    if (left === 0) break;
    const amount = Math.min(left, await refundable_minor(tx, payment));
    if (amount <= 0) continue;
    ops.push(
      await add_refund(
        tx,
        payment,
        {
          amount_minor: amount,
          reason: `credit note ${request.credit_note_id}`,
          credit_note_id: request.credit_note_id,
          actor: request.actor,
        },
        at_ms,
      ),
    );
    left -= amount;
  }
  return ops;
}

/** The provider calls of the refund intents, after the commit; each outcome as payments gives it. */
export async function send_refunds(
  ctx: PaymentsContext,
  ops: readonly OperationRow[],
  actor: string,
): Promise<OperationOutcome[]> {
  const outcomes: OperationOutcome[] = [];
  for (const op of ops) outcomes.push(await run_operation(ctx, op, actor));
  return outcomes;
}
