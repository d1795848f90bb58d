import type { ProviderPaymentStatus } from './provider.js';

/**
 * A payment's states and the transitions between them. Every change is one row in
 * `payment_transitions` (who, when, why); nothing else moves `payments.state`.
 *
 *   created ─► requires_action ─► authorized ─► captured ─► partly_refunded ─► refunded
 *      │              │               │            │  └──────────┴──────► charged_back
 *      └──────────────┴───────────────┴─► cancelled / failed
 *
 * `created`: the intent is in the ledger, the provider has not answered yet. Answers and webhooks
 * arrive duplicated, late and out of order: a payment only moves forward (a late "authorized"
 * after "captured" changes nothing), so applying the same fact twice or in another order ends in
 * the same row. The money states after capture (partly_refunded, refunded, charged_back) follow
 * from the amounts: captured - refunded - charged back.
 */
export type PaymentState =
  | 'created'
  | 'requires_action'
  | 'authorized'
  | 'captured'
  | 'partly_refunded'
  | 'refunded'
  | 'charged_back'
  | 'cancelled'
  | 'failed';

const lifecycle_rank: Record<PaymentState, number> = {
  created: 0,
  requires_action: 1,
  authorized: 2,
  captured: 3,
  partly_refunded: 3,
  refunded: 3,
  charged_back: 3,
  cancelled: 3,
  failed: 3,
};

const allowed: Record<PaymentState, readonly PaymentState[]> = {
  created: ['requires_action', 'authorized', 'captured', 'cancelled', 'failed'],
  requires_action: ['authorized', 'captured', 'cancelled', 'failed'],
  authorized: ['captured', 'cancelled', 'failed'],
  captured: ['partly_refunded', 'refunded', 'charged_back'],
  partly_refunded: ['partly_refunded', 'refunded', 'charged_back'],
  refunded: ['charged_back'],
  charged_back: ['captured', 'partly_refunded', 'refunded', 'charged_back'],
  cancelled: [],
  failed: [],
};

export function can_transition(from: PaymentState, to: PaymentState): boolean {
  return allowed[from].includes(to);
}

/** The state a provider's answer moves a payment to, or undefined when it is not a step forward. */
export function lifecycle_target(
  from: PaymentState,
  status: ProviderPaymentStatus,
): PaymentState | undefined {
  const to: PaymentState = status;
  if (lifecycle_rank[to] <= lifecycle_rank[from]) return undefined;
  return can_transition(from, to) ? to : undefined;
}

/** After capture, the state follows from the amounts. */
export function money_state(amounts: {
  captured_minor: number;
  refunded_minor: number;
  charged_back_minor: number;
}): PaymentState {
  if (amounts.charged_back_minor > 0) return 'charged_back';
  if (amounts.refunded_minor === 0) return 'captured';
  return amounts.refunded_minor >= amounts.captured_minor ? 'refunded' : 'partly_refunded';
}

export function is_final(state: PaymentState): boolean {
  return state === 'cancelled' || state === 'failed' || state === 'refunded';
}

/** Still waiting for the payer or the provider: a new collection attempt must not start. */
export function is_open(state: PaymentState): boolean {
  return state === 'created' || state === 'requires_action' || state === 'authorized';
}
