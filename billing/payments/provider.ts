/**
 * The one interface every payment gateway adapter implements (Stripe in billing/payments/stripe.ts;
 * SEPA direct debit needs no gateway and is a file, not a provider). The ledger, collection,
 * pay-at-charger pages and dispute refunds speak only to this.
 *
 * Rules every adapter keeps:
 * - Amounts are integer minor units of `currency` with its ISO 4217 exponent (core/money.ts
 *   minor_units: JPY 0, EUR 2, KWD 3), never binary floating point fractions.
 * - Every call that moves or reserves money carries `idempotency_key`, derived by the caller from
 *   the ledger row it serves (for example `payment:42:capture:1`). The same key with the same
 *   request returns the first answer and moves nothing again; a retry after a crash or a timeout is
 *   always safe.
 * - A provider error is thrown as PaymentProviderError with a stable `code`; a declined card is an
 *   answer (status `failed` with `failure_code`), not an exception.
 */

export type ProviderPaymentStatus =
  | 'requires_action' // the payer must act (3-D Secure, a wallet confirmation): see `next_action_url`
  | 'authorized' // a hold: `amount_capturable_minor` may still be captured
  | 'captured' // money taken: `amount_captured_minor`
  | 'cancelled' // the hold was released, nothing taken
  | 'failed'; // declined or errored; nothing taken

export interface ProviderPayment {
  /** The provider's id of the payment (a Stripe PaymentIntent id). */
  provider_payment_id: string;
  status: ProviderPaymentStatus;
  currency: string;
  amount_minor: number;
  amount_capturable_minor: number;
  amount_captured_minor: number;
  amount_refunded_minor: number;
  /** Where the payer completes a `requires_action` payment; never carries a secret. */
  next_action_url?: string | undefined;
  /** For a browser-side confirmation (Stripe's client_secret); only ever sent to the payer. */
  client_secret?: string | undefined;
  failure_code?: string | undefined;
  failure_message?: string | undefined;
  /** The ledger references sent with the request (lets an event find its payment before the answer). */
  metadata?: Record<string, string> | undefined;
}

export interface ProviderRefund {
  provider_refund_id: string;
  provider_payment_id: string;
  amount_minor: number;
  currency: string;
  status: 'pending' | 'succeeded' | 'failed';
  /** The ledger references sent with the request. */
  metadata?: Record<string, string> | undefined;
}

export interface AuthorizeRequest {
  idempotency_key: string;
  amount_minor: number;
  currency: string;
  /** Shown on the payer's statement and in the provider's dashboard. */
  description: string;
  /** Ledger references copied to the provider (ids only, never personal data). */
  metadata: Record<string, string>;
  /** A saved customer and method, for an off-session authorization; absent for a one-off payer. */
  customer_id?: string | undefined;
  payment_method_id?: string | undefined;
  /** Where a `requires_action` payer returns to. */
  return_url?: string | undefined;
}

export interface ChargeSavedMethodRequest {
  idempotency_key: string;
  amount_minor: number;
  currency: string;
  description: string;
  metadata: Record<string, string>;
  customer_id: string;
  payment_method_id: string;
}

export interface ProviderCustomer {
  provider_customer_id: string;
}

/**
 * A movement of the provider's balance (Stripe balance transaction): a captured charge with the
 * provider's fee, a refund, a payout and a failed payout's money coming back. net = amount - fee.
 */
export interface ProviderBalanceTransaction {
  transaction_id: string;
  type: string;
  /** The object that moved it: a charge, refund or payout id. */
  source_id: string;
  /** For a charge or refund: the payment it belongs to (PaymentIntent id), when the provider says. */
  provider_payment_id?: string | undefined;
  currency: string;
  amount_minor: number;
  fee_minor: number;
  net_minor: number;
  created_at_ms: number;
  available_on_ms: number;
}

/** A transfer of the provider's balance to the merchant's bank (Stripe payout). */
export interface ProviderPayout {
  provider_payout_id: string;
  currency: string;
  amount_minor: number;
  status: 'pending' | 'in_transit' | 'paid' | 'failed' | 'canceled';
  /** YYYY-MM-DD (UTC) the bank is expected to receive it. */
  arrival_on: string;
  created_at_ms: number;
  failure_code?: string | undefined;
}

/** An event the provider sent us, already verified (signature, tolerance) by the adapter. */
export interface ProviderEvent {
  /** The provider's event id: the key that makes processing exactly once. */
  event_id: string;
  type:
    | 'payment.authorized'
    | 'payment.captured'
    | 'payment.cancelled'
    | 'payment.failed'
    | 'payment.requires_action'
    | 'refund.succeeded'
    | 'refund.failed'
    | 'dispute.opened'
    | 'dispute.closed'
    | 'payout.updated'
    | 'other';
  /** The provider's own type name, kept for the audit trail. */
  provider_type: string;
  created_at_ms: number;
  payment?: ProviderPayment | undefined;
  refund?: ProviderRefund | undefined;
  /** For `payout.updated` (Stripe payout.created / paid / failed / updated): the payout. */
  payout?: ProviderPayout | undefined;
  /** For `dispute.*`: the provider's dispute id, amount and status. */
  dispute?: {
    provider_dispute_id: string;
    provider_payment_id: string;
    amount_minor: number;
    status: string;
    /** The provider's reason code (Stripe: fraudulent, duplicate, product_not_received, ...). */
    reason?: string | undefined;
  };
}

export interface PaymentProvider {
  /** A stable name stored with each payment row ('stripe'). */
  readonly name: string;
  create_customer(request: {
    idempotency_key: string;
    account_id: string;
    email?: string | undefined;
  }): Promise<ProviderCustomer>;
  /** Places a hold (manual capture). */
  authorize(request: AuthorizeRequest): Promise<ProviderPayment>;
  /** Captures at most what is capturable, once; `amount_minor` absent captures all of it. */
  capture(request: {
    idempotency_key: string;
    provider_payment_id: string;
    amount_minor?: number | undefined;
  }): Promise<ProviderPayment>;
  /** Releases a hold that was not captured. */
  cancel(request: { idempotency_key: string; provider_payment_id: string }): Promise<ProviderPayment>;
  /** Charges a saved method without the payer present (automatic capture). */
  charge_saved_method(request: ChargeSavedMethodRequest): Promise<ProviderPayment>;
  /** Refunds all or part of what was captured, never more than captured less refunded. */
  refund(request: {
    idempotency_key: string;
    provider_payment_id: string;
    amount_minor?: number | undefined;
    reason?: string | undefined;
    /** Ledger references (ids only) copied to the refund, so its events find their ledger row. */
    metadata?: Record<string, string> | undefined;
  }): Promise<ProviderRefund>;
  retrieve(provider_payment_id: string): Promise<ProviderPayment>;
  /**
   * Saves a payment method (from the payer's browser or a test token) on a customer for later
   * off-session charges. Optional: a provider without saved methods leaves it out.
   */
  attach_payment_method?(request: {
    idempotency_key: string;
    customer_id: string;
    payment_method_id: string;
  }): Promise<{ payment_method_id: string; brand?: string | undefined; last4?: string | undefined }>;
  /**
   * Sends the merchant's evidence for a chargeback (text fields, Stripe's dispute evidence names)
   * and submits it to the card issuer. Optional: a provider without chargebacks leaves it out.
   */
  submit_dispute_evidence?(request: {
    idempotency_key: string;
    provider_dispute_id: string;
    evidence: Record<string, string>;
    metadata: Record<string, string>;
  }): Promise<{ provider_dispute_id: string; status: string }>;
  /**
   * Verifies a webhook delivery from its raw body and headers and returns the event; throws
   * PaymentProviderError('signature_invalid') when the signature or its timestamp fails.
   */
  parse_event(raw_body: Buffer, headers: Record<string, string | string[] | undefined>): ProviderEvent;
  /**
   * Fees and payouts (optional: a provider without them leaves these out). The balance transaction
   * of a payment's captured charge (its fee), or undefined before capture.
   */
  charge_transaction_of?(provider_payment_id: string): Promise<ProviderBalanceTransaction | undefined>;
  /** Payouts, newest first, created at or after `created_after_ms`. */
  list_payouts?(request: { created_after_ms: number; limit: number }): Promise<ProviderPayout[]>;
  /** The balance transactions one payout settled, its own (type `payout`) included. */
  payout_transactions?(provider_payout_id: string): Promise<ProviderBalanceTransaction[]>;
}

export type PaymentProviderErrorCode =
  | 'signature_invalid'
  | 'invalid_request' // the provider refused the request as malformed or not allowed in this state
  | 'amount_too_large' // capture or refund above what remains
  | 'idempotency_conflict' // the key was used before with another request
  | 'not_found'
  | 'unavailable'; // network error, timeout or 5xx: the call may be retried with the same key

export class PaymentProviderError extends Error {
  constructor(
    readonly code: PaymentProviderErrorCode,
    message: string,
    readonly provider_code?: string | undefined,
  ) {
    super(message);
    this.name = 'PaymentProviderError';
  }
}
