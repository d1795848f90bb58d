import Stripe from 'stripe';
import {
  type AuthorizeRequest,
  type ChargeSavedMethodRequest,
  type PaymentProvider,
  PaymentProviderError,
  type ProviderBalanceTransaction,
  type ProviderCustomer,
  type ProviderEvent,
  type ProviderPayment,
  type ProviderPayout,
  type ProviderRefund,
} from './provider.js';

/**
 * The Stripe gateway through the official `stripe` client: PaymentIntents (manual capture for
 * holds, off-session confirmation for saved methods), Refunds, Customers and PaymentMethods, and
 * webhooks verified by `stripe.webhooks.constructEvent` (raw body, timestamp tolerance).
 *
 * Currencies: Stripe takes amounts in the currency's smallest unit, the same minor units as the
 * ledger (docs "Zero-decimal currencies": JPY as is; three-decimal currencies such as KWD in
 * thousandths, last digit 0); currency codes go lower case to Stripe and upper case to the ledger.
 */
export interface StripeProviderOptions {
  secret_key: string;
  webhook_secret: string;
  /** e.g. http://127.0.0.1:12111 for a local emulator; unset: api.stripe.com. */
  api_base?: string | undefined;
  /** Seconds a webhook's signed timestamp may be old (Stripe's default 300). */
  tolerance_s?: number;
  /** The client's own retries of network errors and 409/5xx, with our idempotency key. */
  max_network_retries?: number;
  timeout_ms?: number;
}

export class StripeProvider implements PaymentProvider {
  readonly name = 'stripe';
  private readonly stripe: Stripe;
  private readonly webhook_secret: string;
  private readonly tolerance_s: number;

  constructor(options: StripeProviderOptions) {
    const config: Stripe.StripeConfig = {
      maxNetworkRetries: options.max_network_retries ?? 2,
      timeout: options.timeout_ms ?? 30_000,
      telemetry: false,
      appInfo: { name: 'evrate' },
    };
    if (options.api_base !== undefined && options.api_base !== '') {
      const base = new URL(options.api_base);
      if (base.protocol !== 'http:' && base.protocol !== 'https:') {
        throw new Error(`STRIPE_API_BASE must be http(s): ${options.api_base}`);
      }
      config.host = base.hostname;
      config.port = base.port || (base.protocol === 'https:' ? 443 : 80);
      config.protocol = base.protocol === 'https:' ? 'https' : 'http';
    }
    this.stripe = new Stripe(options.secret_key, config);
    this.webhook_secret = options.webhook_secret;
    this.tolerance_s = options.tolerance_s ?? 300;
  }

  async create_customer(request: {
    idempotency_key: string;
    account_id: string;
    email?: string | undefined;
  }): Promise<ProviderCustomer> {
    const customer = await call(() =>
      this.stripe.customers.create(
        { metadata: { account_id: request.account_id }, ...(request.email ? { email: request.email } : {}) },
        { idempotencyKey: request.idempotency_key },
      ),
    );
    return { provider_customer_id: customer.id };
  }

  /** Saves a method for off-session charges: attaches it to the customer. */
  async attach_payment_method(request: {
    idempotency_key: string;
    customer_id: string;
    payment_method_id: string;
  }): Promise<{ payment_method_id: string; brand: string | undefined; last4: string | undefined }> {
    const method = await call(() =>
      this.stripe.paymentMethods.attach(
        request.payment_method_id,
        { customer: request.customer_id },
        { idempotencyKey: request.idempotency_key },
      ),
    );
    return { payment_method_id: method.id, brand: method.card?.brand, last4: method.card?.last4 };
  }

  async authorize(request: AuthorizeRequest): Promise<ProviderPayment> {
    const params: Stripe.PaymentIntentCreateParams = {
      amount: request.amount_minor,
      currency: request.currency.toLowerCase(),
      capture_method: 'manual',
      description: request.description,
      metadata: request.metadata,
    };
    if (request.customer_id !== undefined) params.customer = request.customer_id;
    if (request.payment_method_id !== undefined) {
      params.payment_method = request.payment_method_id;
      params.confirm = true;
      // A server-side confirmation without a return_url must rule out redirecting methods.
      if (request.return_url !== undefined) params.return_url = request.return_url;
      else params.automatic_payment_methods = { enabled: true, allow_redirects: 'never' };
    }
    return await this.intent_call(() =>
      this.stripe.paymentIntents.create(params, { idempotencyKey: request.idempotency_key }),
    );
  }

  async capture(request: {
    idempotency_key: string;
    provider_payment_id: string;
    amount_minor?: number | undefined;
  }): Promise<ProviderPayment> {
    return await this.intent_call(() =>
      this.stripe.paymentIntents.capture(
        request.provider_payment_id,
        {
          ...(request.amount_minor !== undefined ? { amount_to_capture: request.amount_minor } : {}),
          expand: ['latest_charge'],
        },
        { idempotencyKey: request.idempotency_key },
      ),
    );
  }

  async cancel(request: { idempotency_key: string; provider_payment_id: string }): Promise<ProviderPayment> {
    return await this.intent_call(() =>
      this.stripe.paymentIntents.cancel(
        request.provider_payment_id,
        { expand: ['latest_charge'] },
        { idempotencyKey: request.idempotency_key },
      ),
    );
  }

  /** docs "Charge a saved payment method": confirm=true with off_session=true, automatic capture. */
  async charge_saved_method(request: ChargeSavedMethodRequest): Promise<ProviderPayment> {
    return await this.intent_call(() =>
      this.stripe.paymentIntents.create(
        {
          amount: request.amount_minor,
          currency: request.currency.toLowerCase(),
          customer: request.customer_id,
          payment_method: request.payment_method_id,
          automatic_payment_methods: { enabled: true, allow_redirects: 'never' },
          off_session: true,
          confirm: true,
          description: request.description,
          metadata: request.metadata,
          expand: ['latest_charge'],
        },
        { idempotencyKey: request.idempotency_key },
      ),
    );
  }

  async refund(request: {
    idempotency_key: string;
    provider_payment_id: string;
    amount_minor?: number | undefined;
    reason?: string | undefined;
    metadata?: Record<string, string> | undefined;
  }): Promise<ProviderRefund> {
    const reasons = ['duplicate', 'fraudulent', 'requested_by_customer'];
    const refund = await call(() =>
      this.stripe.refunds.create(
        {
          payment_intent: request.provider_payment_id,
          ...(request.amount_minor !== undefined ? { amount: request.amount_minor } : {}),
          ...(request.reason !== undefined && reasons.includes(request.reason)
            ? { reason: request.reason as Stripe.RefundCreateParams.Reason }
            : {}),
          metadata: {
            ...(request.metadata ?? {}),
            ...(request.reason !== undefined ? { reason: request.reason.slice(0, 500) } : {}),
          },
        },
        { idempotencyKey: request.idempotency_key },
      ),
    );
    return refund_of(refund);
  }

  /** Stripe "Update a dispute" with submit: true (the evidence goes to the issuer). */
  async submit_dispute_evidence(request: {
    idempotency_key: string;
    provider_dispute_id: string;
    evidence: Record<string, string>;
    metadata: Record<string, string>;
  }): Promise<{ provider_dispute_id: string; status: string }> {
    const dispute = await call(() =>
      this.stripe.disputes.update(
        request.provider_dispute_id,
        {
          evidence: request.evidence as Stripe.DisputeUpdateParams.Evidence,
          metadata: request.metadata,
          submit: true,
        },
        { idempotencyKey: request.idempotency_key },
      ),
    );
    return { provider_dispute_id: dispute.id, status: dispute.status };
  }

  async retrieve(provider_payment_id: string): Promise<ProviderPayment> {
    return await this.intent_call(() =>
      this.stripe.paymentIntents.retrieve(provider_payment_id, { expand: ['latest_charge'] }),
    );
  }

  /** docs "Balance transactions": the charge's `balance_transaction`, expanded, holds its fee. */
  async charge_transaction_of(provider_payment_id: string): Promise<ProviderBalanceTransaction | undefined> {
    const intent = await call(() =>
      this.stripe.paymentIntents.retrieve(provider_payment_id, { expand: ['latest_charge'] }),
    );
    const charge = intent.latest_charge;
    const charge_id = typeof charge === 'string' ? charge : charge?.id;
    if (charge_id === undefined) return undefined;
    const full = await call(() =>
      this.stripe.charges.retrieve(charge_id, { expand: ['balance_transaction'] }),
    );
    const txn = full.balance_transaction;
    if (txn === null || typeof txn === 'string') return undefined;
    return { ...transaction_of(txn), provider_payment_id };
  }

  async list_payouts(request: { created_after_ms: number; limit: number }): Promise<ProviderPayout[]> {
    const payouts = await call(() =>
      this.stripe.payouts
        .list({ created: { gte: Math.floor(request.created_after_ms / 1000) }, limit: 100 })
        .autoPagingToArray({ limit: request.limit }),
    );
    return payouts.map(payout_of);
  }

  /** docs "Payout reconciliation": balance transactions listed with `payout=`, sources expanded. */
  async payout_transactions(provider_payout_id: string): Promise<ProviderBalanceTransaction[]> {
    const list = await call(() =>
      this.stripe.balanceTransactions
        .list({ payout: provider_payout_id, limit: 100, expand: ['data.source'] })
        .autoPagingToArray({ limit: 10_000 }),
    );
    return list.map(transaction_of);
  }

  parse_event(raw_body: Buffer, headers: Record<string, string | string[] | undefined>): ProviderEvent {
    const header = headers['stripe-signature'];
    if (typeof header !== 'string' || header === '') {
      throw new PaymentProviderError('signature_invalid', 'no Stripe-Signature header');
    }
    let event: Stripe.Event;
    try {
      event = this.stripe.webhooks.constructEvent(raw_body, header, this.webhook_secret, this.tolerance_s);
    } catch (error) {
      throw new PaymentProviderError('signature_invalid', (error as Error).message);
    }
    return event_of(event);
  }

  /**
   * A PaymentIntent call. A decline is an answer: Stripe throws a StripeCardError carrying the
   * intent (now requires_payment_method with last_payment_error), which maps to status `failed`.
   */
  private async intent_call(run: () => Promise<Stripe.PaymentIntent>): Promise<ProviderPayment> {
    try {
      return await this.with_charge(await run());
    } catch (error) {
      if (error instanceof Stripe.errors.StripeCardError && error.payment_intent !== undefined) {
        return await this.with_charge(error.payment_intent);
      }
      throw provider_error(error);
    }
  }

  /** amount_refunded lives on the charge: fetch it when the answer did not expand it. */
  private async with_charge(intent: Stripe.PaymentIntent): Promise<ProviderPayment> {
    if (typeof intent.latest_charge === 'string' && intent.status === 'succeeded') {
      const charge = await call(() => this.stripe.charges.retrieve(intent.latest_charge as string));
      return payment_of({ ...intent, latest_charge: charge });
    }
    return payment_of(intent);
  }
}

async function call<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw provider_error(error);
  }
}

function provider_error(error: unknown): PaymentProviderError {
  if (error instanceof PaymentProviderError) return error;
  if (!(error instanceof Stripe.errors.StripeError)) {
    return new PaymentProviderError('unavailable', String(error));
  }
  const code = error.code;
  if (error instanceof Stripe.errors.StripeIdempotencyError) {
    // 409: another request with this key is still being processed (docs "Idempotent requests"):
    // its outcome is not known yet, so the call stays pending and is sent again later.
    if (error.statusCode === 409) return new PaymentProviderError('unavailable', error.message, code);
    return new PaymentProviderError('idempotency_conflict', error.message, code);
  }
  if (error instanceof Stripe.errors.StripeConnectionError || error instanceof Stripe.errors.StripeAPIError) {
    return new PaymentProviderError('unavailable', error.message, code);
  }
  if (error instanceof Stripe.errors.StripeRateLimitError) {
    return new PaymentProviderError('unavailable', error.message, code);
  }
  if (code === 'amount_too_large' || code === 'charge_already_refunded') {
    return new PaymentProviderError('amount_too_large', error.message, code);
  }
  if (code === 'resource_missing' || error.statusCode === 404) {
    return new PaymentProviderError('not_found', error.message, code);
  }
  if ((error.statusCode ?? 0) >= 500) return new PaymentProviderError('unavailable', error.message, code);
  return new PaymentProviderError('invalid_request', error.message, code);
}

/** Stripe's PaymentIntent status onto ours (docs "How PaymentIntents work"). */
export function payment_of(intent: Stripe.PaymentIntent): ProviderPayment {
  const charge = typeof intent.latest_charge === 'object' ? intent.latest_charge : null;
  const base = {
    provider_payment_id: intent.id,
    currency: intent.currency.toUpperCase(),
    amount_minor: intent.amount,
    amount_capturable_minor: intent.amount_capturable,
    amount_captured_minor: intent.amount_received,
    amount_refunded_minor: charge?.amount_refunded ?? 0,
    client_secret: intent.client_secret ?? undefined,
    metadata: intent.metadata ?? {},
  };
  switch (intent.status) {
    case 'requires_capture':
      return { ...base, status: 'authorized' };
    case 'succeeded':
      return { ...base, status: 'captured' };
    case 'canceled':
      return { ...base, status: 'cancelled' };
    case 'requires_action': {
      const action = intent.next_action;
      const url = action?.redirect_to_url?.url ?? undefined;
      return { ...base, status: 'requires_action', next_action_url: url };
    }
    case 'requires_payment_method': {
      const error = intent.last_payment_error;
      // A fresh intent without a method waits for the payer (Stripe.js with the client secret);
      // after a failed attempt it is a failure with the card's code.
      if (error === null || error === undefined) return { ...base, status: 'requires_action' };
      return {
        ...base,
        status: 'failed',
        failure_code: error.decline_code ?? error.code ?? 'declined',
        failure_message: error.message,
      };
    }
    case 'requires_confirmation':
    case 'processing':
      return { ...base, status: 'requires_action' };
    default:
      return { ...base, status: 'failed', failure_code: intent.status };
  }
}

function day_of(unix_s: number): string {
  return new Date(unix_s * 1000).toISOString().slice(0, 10);
}

export function payout_of(payout: Stripe.Payout): ProviderPayout {
  return {
    provider_payout_id: payout.id,
    currency: payout.currency.toUpperCase(),
    amount_minor: payout.amount,
    status: payout.status as ProviderPayout['status'],
    arrival_on: day_of(payout.arrival_date),
    created_at_ms: payout.created * 1000,
    failure_code: payout.failure_code ?? undefined,
  };
}

export function transaction_of(txn: Stripe.BalanceTransaction): ProviderBalanceTransaction {
  const source = txn.source;
  let source_id = '';
  let provider_payment_id: string | undefined;
  if (typeof source === 'string') source_id = source;
  else if (source !== null) {
    source_id = source.id;
    if ('payment_intent' in source && source.payment_intent !== null && source.payment_intent !== undefined) {
      const pi = source.payment_intent;
      provider_payment_id = typeof pi === 'string' ? pi : pi.id;
    }
  }
  return {
    transaction_id: txn.id,
    type: txn.type,
    source_id,
    provider_payment_id,
    currency: txn.currency.toUpperCase(),
    amount_minor: txn.amount,
    fee_minor: txn.fee,
    net_minor: txn.net,
    created_at_ms: txn.created * 1000,
    available_on_ms: txn.available_on * 1000,
  };
}

function refund_of(refund: Stripe.Refund): ProviderRefund {
  const status =
    refund.status === 'succeeded' ? 'succeeded' : refund.status === 'failed' ? 'failed' : 'pending';
  const pi = refund.payment_intent;
  return {
    provider_refund_id: refund.id,
    provider_payment_id: typeof pi === 'string' ? pi : (pi?.id ?? ''),
    amount_minor: refund.amount,
    currency: refund.currency.toUpperCase(),
    status,
    metadata: refund.metadata ?? {},
  };
}

/** A verified Stripe event onto ProviderEvent; the payment's state comes from the event's object. */
export function event_of(event: Stripe.Event): ProviderEvent {
  const base = { event_id: event.id, provider_type: event.type, created_at_ms: event.created * 1000 };
  switch (event.type) {
    case 'payment_intent.amount_capturable_updated':
      return { ...base, type: 'payment.authorized', payment: payment_of(event.data.object) };
    case 'payment_intent.succeeded':
      return { ...base, type: 'payment.captured', payment: payment_of(event.data.object) };
    case 'payment_intent.canceled':
      return { ...base, type: 'payment.cancelled', payment: payment_of(event.data.object) };
    case 'payment_intent.payment_failed':
      return { ...base, type: 'payment.failed', payment: payment_of(event.data.object) };
    case 'payment_intent.requires_action':
      return { ...base, type: 'payment.requires_action', payment: payment_of(event.data.object) };
    case 'refund.created':
    case 'refund.updated': {
      const refund = refund_of(event.data.object);
      const type =
        refund.status === 'succeeded'
          ? 'refund.succeeded'
          : refund.status === 'failed'
            ? 'refund.failed'
            : 'other';
      return { ...base, type, refund };
    }
    case 'refund.failed':
      return { ...base, type: 'refund.failed', refund: refund_of(event.data.object) };
    case 'payout.created':
    case 'payout.updated':
    case 'payout.paid':
    case 'payout.failed':
    case 'payout.canceled':
      return { ...base, type: 'payout.updated', payout: payout_of(event.data.object) };
    case 'charge.dispute.created':
    case 'charge.dispute.closed': {
      const dispute = event.data.object;
      const pi = dispute.payment_intent;
      return {
        ...base,
        type: event.type === 'charge.dispute.created' ? 'dispute.opened' : 'dispute.closed',
        dispute: {
          provider_dispute_id: dispute.id,
          provider_payment_id: typeof pi === 'string' ? pi : (pi?.id ?? ''),
          amount_minor: dispute.amount,
          status: dispute.status,
          reason: dispute.reason,
        },
      };
    }
    default:
      return { ...base, type: 'other' };
  }
}
