import type { Queryable } from '../ledger.js';
import {
  apply_chargeback,
  apply_chargeback_reversed,
  apply_provider_payment,
  apply_refund_succeeded,
  type Cause,
  lock_payment,
  lock_payment_of_provider,
  type PaymentRow,
} from './apply.js';
import { finish_refund, now_of, type PaymentsContext } from './operations.js';
import { apply_payout } from './payouts.js';
import type { ProviderEvent, ProviderRefund } from './provider.js';

/**
 * Provider events (verified webhooks) into the ledger, exactly once: the event's id goes into
 * `provider_events` (primary key) in the same transaction as its effect, so a duplicate delivery
 * finds the row and changes nothing, and a crash before commit leaves neither (the provider
 * delivers again). Events arrive out of order and late: each is applied as a step forward only
 * (states.ts), so the end state does not depend on their order.
 *
 * Outcomes: `applied`, `duplicate` (seen before), `unmatched` (no ledger payment: kept for
 * reconciliation), `ignored` (a kind we do not act on), `mismatch` (amounts disagree: kept).
 */
export type EventOutcome = 'applied' | 'duplicate' | 'unmatched' | 'ignored' | 'mismatch';

/**
 * The event is about money the ledger has not seen captured yet (it came before the capture's
 * answer or event): nothing is recorded and the webhook is answered 503, so the provider delivers
 * it again later (Stripe retries a non-2xx answer).
 */
export class EventNotReadyError extends Error {}

function require_captured(payment: PaymentRow, event: ProviderEvent): void {
  const captured = ['captured', 'partly_refunded', 'refunded', 'charged_back'];
  if (!captured.includes(payment.state)) {
    throw new EventNotReadyError(
      `${event.provider_type} ${event.event_id}: payment ${payment.id} is ${payment.state}, not captured yet`,
    );
  }
}

async function find_payment(
  tx: Queryable,
  provider: string,
  provider_payment_id: string | undefined,
  metadata?: Record<string, string>,
) {
  if (provider_payment_id !== undefined && provider_payment_id !== '') {
    const found = await lock_payment_of_provider(tx, provider, provider_payment_id);
    if (found !== undefined) return found;
  }
  // Before the answer to our call was recorded (a crash in between), only our metadata links them.
  const id = Number(metadata?.payment_id);
  if (Number.isSafeInteger(id) && id > 0) {
    const found = await lock_payment(tx, id);
    if (
      found !== undefined &&
      (found.provider_payment_id === null || found.provider_payment_id === provider_payment_id)
    ) {
      return found;
    }
  }
  return undefined;
}

export async function process_provider_event(
  ctx: PaymentsContext,
  event: ProviderEvent,
): Promise<EventOutcome> {
  const provider = ctx.provider.name;
  const at_ms = now_of(ctx);
  return await ctx.ledger.transaction(async (tx) => {
    const provider_payment_id =
      event.payment?.provider_payment_id ??
      event.refund?.provider_payment_id ??
      event.dispute?.provider_payment_id ??
      null;
    const [fresh] = await tx.query(
      `INSERT INTO provider_events (provider, event_id, type, provider_type, provider_payment_id, outcome, created_at_ms, received_at_ms)
       VALUES ($1, $2, $3, $4, $5, 'received', $6, $7) ON CONFLICT (provider, event_id) DO NOTHING RETURNING 1`,
      [
        provider,
        event.event_id,
        event.type,
        event.provider_type,
        provider_payment_id,
        event.created_at_ms,
        at_ms,
      ],
    );
    if (fresh === undefined) return 'duplicate';
    const cause: Cause = {
      actor: `provider:${provider}`,
      reason: event.provider_type,
      at_ms,
      provider_event_id: event.event_id,
    };
    const { outcome, payment } = await apply_event(tx, provider, event, cause);
    await tx.query(
      'UPDATE provider_events SET outcome = $3, payment_id = $4 WHERE provider = $1 AND event_id = $2',
      [provider, event.event_id, outcome, payment?.id ?? null],
    );
    return outcome;
  });
}

async function apply_event(
  tx: Queryable,
  provider: string,
  event: ProviderEvent,
  cause: Cause,
): Promise<{ outcome: EventOutcome; payment?: PaymentRow | undefined }> {
  switch (event.type) {
    case 'payment.authorized':
    case 'payment.captured':
    case 'payment.cancelled':
    case 'payment.failed':
    case 'payment.requires_action': {
      const view = event.payment!;
      const payment = await find_payment(tx, provider, view.provider_payment_id, view.metadata);
      if (payment === undefined) return { outcome: 'unmatched' };
      if (view.amount_minor !== payment.amount_minor || view.currency !== payment.currency) {
        return { outcome: 'mismatch', payment };
      }
      return { outcome: 'applied', payment: await apply_provider_payment(tx, payment, view, cause) };
    }
    case 'refund.succeeded':
    case 'refund.failed': {
      const refund = event.refund!;
      const payment = await find_payment(tx, provider, refund.provider_payment_id);
      if (payment === undefined) return { outcome: 'unmatched' };
      require_captured(payment, event);
      return await apply_refund_event(tx, payment, refund, cause);
    }
    case 'dispute.opened': {
      const dispute = event.dispute!;
      const payment = await find_payment(tx, provider, dispute.provider_payment_id);
      if (payment === undefined) return { outcome: 'unmatched' };
      require_captured(payment, event);
      return { outcome: 'applied', payment: await apply_chargeback(tx, payment, dispute, cause) };
    }
    case 'payout.updated':
      await apply_payout(tx, provider, event.payout!, cause.at_ms);
      return { outcome: 'applied' };
    case 'dispute.closed': {
      const dispute = event.dispute!;
      const payment = await find_payment(tx, provider, dispute.provider_payment_id);
      if (payment === undefined) return { outcome: 'unmatched' };
      if (dispute.status !== 'won') return { outcome: 'applied', payment };
      return { outcome: 'applied', payment: await apply_chargeback_reversed(tx, payment, dispute, cause) };
    }
    default:
      return { outcome: 'ignored' };
  }
}

/**
 * A refund event: ours (found by the provider's refund id or by the refund id we sent in its
 * metadata) is finished once; one made elsewhere (the provider's dashboard) is added and booked
 * when it fits in what is refundable, else kept as a mismatch.
 */
async function apply_refund_event(
  tx: Queryable,
  payment: PaymentRow,
  refund: ProviderRefund,
  cause: Cause,
): Promise<{ outcome: EventOutcome; payment?: PaymentRow | undefined }> {
  const [ours] = await tx.query<{ id: number }>(
    'SELECT id FROM payment_refunds WHERE payment_id = $1 AND (provider_refund_id = $2 OR id = $3)',
    [payment.id, refund.provider_refund_id, Number(refund.metadata?.refund_id ?? 0) || 0],
  );
  if (ours !== undefined) {
    const [row] = await tx.query<{ amount_minor: number }>(
      'SELECT amount_minor FROM payment_refunds WHERE id = $1',
      [ours.id],
    );
    if (row!.amount_minor !== refund.amount_minor) return { outcome: 'mismatch', payment };
    const linked = { ...refund, metadata: { ...(refund.metadata ?? {}), refund_id: String(ours.id) } };
    return { outcome: 'applied', payment: await finish_refund(tx, payment, undefined, linked, cause) };
  }
  if (refund.status !== 'succeeded') return { outcome: 'applied', payment };
  const open_minor = payment.captured_minor - payment.refunded_minor - payment.charged_back_minor;
  if (refund.amount_minor > open_minor || refund.currency !== payment.currency)
    return { outcome: 'mismatch', payment };
  const [row] = await tx.query<{ id: number }>(
    `INSERT INTO payment_refunds (payment_id, provider_refund_id, currency, amount_minor, status, reason, created_at_ms, updated_at_ms)
     VALUES ($1, $2, $3, $4, 'succeeded', 'made at the provider', $5, $5) RETURNING id`,
    [payment.id, refund.provider_refund_id, payment.currency, refund.amount_minor, cause.at_ms],
  );
  const moved = await apply_refund_succeeded(
    tx,
    payment,
    { id: row!.id, amount_minor: refund.amount_minor, credit_note_id: null },
    cause,
  );
  return { outcome: 'applied', payment: moved };
}
