import { createHmac, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A stateful, Stripe-compatible payment gateway on loopback, for tests: the machines running the
 * tests cannot reach Stripe. It follows Stripe's documented API semantics for the part evrate
 * uses (docs.stripe.com/api): customers, payment methods (+ attach / detach), PaymentIntents
 * (manual or automatic capture, confirm, off_session, capture with amount_to_capture, cancel,
 * retrieve with expand[]=latest_charge), charges, refunds, disputes (driven by a test hook) and
 * events. Requests are form-encoded like the official client sends them, answers are Stripe's
 * JSON objects and its error shape ({ error: { type, code, decline_code, message, param } }).
 *
 * Documented rules it keeps:
 * - Idempotency (docs "Idempotent requests"): a POST with an Idempotency-Key returns the first
 *   answer (status and body, header Idempotent-Replayed: true) and changes nothing again; the same
 *   key with other parameters or another endpoint is a 400 idempotency_error. Parameter validation
 *   errors are not saved (the endpoint never started executing).
 * - amount_capturable / partial capture: a manual-capture PaymentIntent confirmed with a good card
 *   goes to requires_capture with amount_capturable = amount; capture takes amount_to_capture
 *   (default all) <= amount_capturable, once; the rest is released.
 * - Refunds: amount (default what remains) <= amount_captured - amount_refunded of the charge.
 * - Test cards (docs "Testing"): pm_card_visa / tok_visa / 4242424242424242 succeed;
 *   pm_card_chargeDeclined / tok_chargeDeclined / 4000000000000002 decline (card_declined,
 *   generic_decline); pm_card_chargeDeclinedInsufficientFunds / 4000000000009995 decline with
 *   insufficient_funds; pm_card_authenticationRequired / 4000002760003184 always require 3-D
 *   Secure; 4000002500003155 (pm_card_authenticationRequiredOnSetup) requires it unless the method
 *   was authenticated before with setup_future_usage. Off-session, authentication cannot happen:
 *   402 authentication_required and the intent goes back to requires_payment_method.
 * - Currencies: zero-decimal (JPY, KRW, ...) amounts are whole units; three-decimal currencies
 *   (BHD, JOD, KWD, OMR, TND) must end in 0; Stripe's minimum charge amounts per currency.
 * - Webhooks (docs "Webhooks", "Check the webhook signatures"): each event is POSTed as JSON to the
 *   configured URL with Stripe-Signature `t=<unix s>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`;
 *   a non-2xx answer or a network error is retried with backoff, up to `webhook_attempts_max`.
 *
 * Test hooks beyond Stripe: pause / release / reorder / duplicate / delay webhook deliveries,
 * stall an answer after the work is done (to kill a client mid-call), open and close disputes,
 * complete or fail a 3-D Secure challenge, and read the emulator's state to compare with a ledger.
 */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };
export type Params = { [key: string]: string | Params | Params[] | string[] };

export interface StripeEmulatorOptions {
  /** The secret key the API requires (Authorization: Bearer ...). */
  secret_key?: string;
  webhook_url?: string | undefined;
  webhook_secret?: string;
  /** First retry after this, doubling each time (Stripe retries over 3 days; tests need ms). */
  webhook_retry_ms?: number;
  webhook_attempts_max?: number;
  /**
   * The processing fee taken from each captured charge, in basis points of the amount plus a fixed
   * part in minor units (none for zero-decimal currencies); Stripe's standard card pricing is
   * 2.9% + 30 cents (docs "Pricing"). Default 290 bp + 30.
   */
  fee_percent_bp?: number;
  fee_fixed_minor?: number;
  /** Days from a charge to its funds being available for a payout (docs "Payout schedule"). */
  available_after_days?: number;
  /** Deliver events as they happen (true) or hold them until `release_deliveries` (false). */
  deliver_automatically?: boolean;
}

interface Card {
  brand: string;
  last4: string;
  behaviour:
    | 'succeed'
    | 'decline'
    | 'insufficient_funds'
    | 'authenticate_always'
    | 'authenticate_unless_setup';
}

const cards_by_number: Record<string, Card> = {
  '4242424242424242': { brand: 'visa', last4: '4242', behaviour: 'succeed' },
  '5555555555554444': { brand: 'mastercard', last4: '4444', behaviour: 'succeed' },
  '4000000000000002': { brand: 'visa', last4: '0002', behaviour: 'decline' },
  '4000000000009995': { brand: 'visa', last4: '9995', behaviour: 'insufficient_funds' },
  '4000002760003184': { brand: 'visa', last4: '3184', behaviour: 'authenticate_always' },
  '4000002500003155': { brand: 'visa', last4: '3155', behaviour: 'authenticate_unless_setup' },
};

/** Stripe's magic test PaymentMethod ids and card tokens, by the card number they stand for. */
const test_ids: Record<string, string> = {
  pm_card_visa: '4242424242424242',
  tok_visa: '4242424242424242',
  pm_card_mastercard: '5555555555554444',
  tok_mastercard: '5555555555554444',
  pm_card_chargeDeclined: '4000000000000002',
  tok_chargeDeclined: '4000000000000002',
  pm_card_visa_chargeDeclined: '4000000000000002',
  pm_card_chargeDeclinedInsufficientFunds: '4000000000009995',
  tok_chargeDeclinedInsufficientFunds: '4000000000009995',
  pm_card_visa_chargeDeclinedInsufficientFunds: '4000000000009995',
  pm_card_authenticationRequired: '4000002760003184',
  tok_threeDSecure2Required: '4000002760003184',
  pm_card_threeDSecure2Required: '4000002760003184',
  pm_card_authenticationRequiredOnSetup: '4000002500003155',
  tok_authenticationRequiredOnSetup: '4000002500003155',
};

/** docs "Zero-decimal currencies" and "Three-decimal currencies". */
const zero_decimal = new Set([
  'bif',
  'clp',
  'djf',
  'gnf',
  'jpy',
  'kmf',
  'krw',
  'mga',
  'pyg',
  'rwf',
  'ugx',
  'vnd',
  'vuv',
  'xaf',
  'xof',
  'xpf',
]);
const three_decimal = new Set(['bhd', 'jod', 'kwd', 'omr', 'tnd']);
/** docs "Minimum and maximum charge amounts", in minor units; others: 1 minor unit. */
const minimum_minor: Record<string, number> = {
  usd: 50,
  eur: 50,
  gbp: 30,
  chf: 50,
  aud: 50,
  cad: 50,
  dkk: 250,
  nok: 300,
  sek: 300,
  jpy: 50,
  pln: 200,
  czk: 1500,
  huf: 17500,
  ron: 200,
  bgn: 100,
  hkd: 400,
  mxn: 1000,
  nzd: 50,
  sgd: 50,
};
const amount_max_minor = 99_999_999;

interface PaymentMethod {
  id: string;
  created: number;
  card: Card;
  customer: string | null;
  /** Authenticated once with setup_future_usage: later off-session charges need no 3-D Secure. */
  set_up: boolean;
  metadata: Record<string, string>;
}

interface PaymentIntent {
  id: string;
  created: number;
  amount: number;
  currency: string;
  capture_method: 'automatic' | 'automatic_async' | 'manual';
  status:
    | 'requires_payment_method'
    | 'requires_confirmation'
    | 'requires_action'
    | 'processing'
    | 'requires_capture'
    | 'canceled'
    | 'succeeded';
  amount_capturable: number;
  amount_received: number;
  customer: string | null;
  payment_method: string | null;
  description: string | null;
  metadata: Record<string, string>;
  client_secret: string;
  setup_future_usage: string | null;
  return_url: string | null;
  /** automatic_payment_methods[allow_redirects]; 'never' lets a server confirm without return_url. */
  allow_redirects: string;
  latest_charge: string | null;
  last_payment_error: JsonObject | null;
  canceled_at: number | null;
  cancellation_reason: string | null;
}

interface Charge {
  id: string;
  created: number;
  amount: number;
  amount_captured: number;
  amount_refunded: number;
  currency: string;
  captured: boolean;
  status: 'succeeded' | 'failed' | 'pending';
  paid: boolean;
  payment_intent: string;
  payment_method: string;
  customer: string | null;
  failure_code: string | null;
  failure_message: string | null;
  outcome: JsonObject;
  disputed: boolean;
  metadata: Record<string, string>;
}

interface Refund {
  id: string;
  created: number;
  amount: number;
  currency: string;
  charge: string;
  payment_intent: string;
  reason: string | null;
  status: 'succeeded' | 'pending' | 'failed';
  metadata: Record<string, string>;
}

/**
 * docs "Balance transactions": every movement of the Stripe balance; `net = amount - fee`. A
 * captured charge adds one (type charge, its fee), a refund one (type refund, negative, no fee), a
 * payout one (type payout, negative), a failed payout one (type payout_failure, the money back).
 */
interface BalanceTransaction {
  id: string;
  created: number;
  amount: number;
  currency: string;
  fee: number;
  net: number;
  type: 'charge' | 'refund' | 'payout' | 'payout_failure' | 'adjustment';
  source: string;
  available_on: number;
  description: string | null;
  /** The automatic payout that settled it (docs: list with `payout=`); null while in the balance. */
  payout: string | null;
}

/** docs "Payouts": automatic payouts of the available balance to the bank account. */
interface Payout {
  id: string;
  created: number;
  amount: number;
  currency: string;
  arrival_date: number;
  status: 'pending' | 'in_transit' | 'paid' | 'failed' | 'canceled';
  balance_transaction: string;
  failure_balance_transaction: string | null;
  failure_code: string | null;
  failure_message: string | null;
}

interface Dispute {
  id: string;
  created: number;
  amount: number;
  currency: string;
  charge: string;
  payment_intent: string;
  reason: string;
  status: 'needs_response' | 'under_review' | 'won' | 'lost';
  /** The merchant's evidence (docs "Dispute evidence"): text fields as sent, staged or submitted. */
  evidence: Record<string, string>;
  submission_count: number;
  metadata: Record<string, string>;
}

/** Stripe's text fields of dispute evidence (docs "The Dispute object", evidence); files excluded. */
const dispute_evidence_text_fields = [
  'access_activity_log',
  'billing_address',
  'cancellation_policy_disclosure',
  'cancellation_rebuttal',
  'customer_email_address',
  'customer_name',
  'customer_purchase_ip',
  'duplicate_charge_explanation',
  'duplicate_charge_id',
  'product_description',
  'refund_policy_disclosure',
  'refund_refusal_explanation',
  'service_date',
  'shipping_address',
  'shipping_carrier',
  'shipping_date',
  'shipping_tracking_number',
  'uncategorized_text',
] as const;
/** Stripe: the combined character count of all evidence fields is limited to 150,000. */
const dispute_evidence_chars_max = 150_000;

export interface StripeEvent {
  id: string;
  object: 'event';
  api_version: string;
  created: number;
  livemode: false;
  pending_webhooks: number;
  request: { id: string | null; idempotency_key: string | null };
  type: string;
  data: { object: JsonObject };
}

export interface WebhookDelivery {
  event: StripeEvent;
  attempts: number;
  /** The answers the endpoint gave, one per attempt (0 for a network error). */
  statuses: number[];
  delivered: boolean;
}

class StripeApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: {
      type: string;
      code?: string;
      decline_code?: string;
      param?: string;
      message: string;
    } & JsonObject,
    /** Validation errors are not saved under the idempotency key (the endpoint did not start). */
    readonly saved = true,
  ) {
    super(body.message);
  }
}

function invalid(message: string, param?: string, code?: string): StripeApiError {
  return new StripeApiError(
    400,
    { type: 'invalid_request_error', message, ...(param ? { param } : {}), ...(code ? { code } : {}) },
    false,
  );
}

function missing(param: string): StripeApiError {
  return invalid(`Missing required param: ${param}.`, param, 'parameter_missing');
}

function no_such(kind: string, id: string, param?: string): StripeApiError {
  return new StripeApiError(404, {
    type: 'invalid_request_error',
    code: 'resource_missing',
    message: `No such ${kind}: '${id}'`,
    ...(param ? { param } : {}),
  });
}

function unexpected_state(intent: PaymentIntent, action: string): StripeApiError {
  return new StripeApiError(400, {
    type: 'invalid_request_error',
    code: 'payment_intent_unexpected_state',
    message: `This PaymentIntent's ${action} could not be performed because it has a status of ${intent.status}.`,
  });
}

/**
 * Parses an application/x-www-form-urlencoded body with Stripe's bracket notation
 * (`metadata[k]=v`, `expand[0]=x`, `expand[]=x`) into nested objects and arrays.
 */
export function parse_form(text: string): Params {
  const root: Params = {};
  for (const [raw_key, value] of new URLSearchParams(text)) {
    const parts = raw_key.replace(/\]/g, '').split('[');
    let node: Params | string[] | Params[] = root;
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      const last = i === parts.length - 1;
      const next_is_index = !last && /^\d*$/.test(parts[i + 1]!);
      const container = node as unknown as Record<string, unknown> & unknown[];
      const key: string | number = Array.isArray(node) ? (part === '' ? node.length : Number(part)) : part;
      if (last) {
        (container as Record<string | number, unknown>)[key] = value;
      } else {
        if ((container as Record<string | number, unknown>)[key] === undefined) {
          (container as Record<string | number, unknown>)[key] = next_is_index ? [] : {};
        }
        node = (container as Record<string | number, unknown>)[key] as Params;
      }
    }
  }
  return root;
}

function text_param(params: Params, name: string): string | undefined {
  const value = params[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw invalid(`Invalid string: ${name}`, name, 'parameter_invalid_string');
  return value;
}

function integer_param(params: Params, name: string): number | undefined {
  const value = text_param(params, name);
  if (value === undefined) return undefined;
  if (!/^\d{1,15}$/.test(value))
    throw invalid(`Invalid integer: ${value}`, name, 'parameter_invalid_integer');
  return Number(value);
}

function boolean_param(params: Params, name: string): boolean | undefined {
  const value = text_param(params, name);
  if (value === undefined) return undefined;
  if (value !== 'true' && value !== 'false') throw invalid(`Invalid boolean: ${value}`, name);
  return value === 'true';
}

function metadata_param(params: Params): Record<string, string> {
  const value = params.metadata;
  if (value === undefined || value === '') return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw invalid('Invalid hash', 'metadata');
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw invalid('Invalid hash', `metadata[${k}]`);
    if (k.length > 40 || v.length > 500) throw invalid('Metadata key or value too long', `metadata[${k}]`);
    out[k] = v;
  }
  if (Object.keys(out).length > 50) throw invalid('Metadata can have at most 50 keys', 'metadata');
  return out;
}

function allow_redirects_param(params: Params): string {
  const apm = params.automatic_payment_methods;
  if (apm === undefined) return params.payment_method_types !== undefined ? 'never' : 'always';
  if (typeof apm !== 'object' || Array.isArray(apm))
    throw invalid('Invalid hash', 'automatic_payment_methods');
  const allow = apm.allow_redirects ?? 'always';
  if (allow !== 'always' && allow !== 'never') {
    throw invalid(
      `Invalid automatic_payment_methods[allow_redirects]: ${String(allow)}`,
      'automatic_payment_methods[allow_redirects]',
    );
  }
  return allow;
}

function only_params(params: Params, allowed: readonly string[]): void {
  for (const key of Object.keys(params)) {
    if (!allowed.includes(key)) throw invalid(`Received unknown parameter: ${key}`, key, 'parameter_unknown');
  }
}

function expand_list(params: Params): string[] {
  const value = params.expand;
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw invalid('Invalid array', 'expand');
  return value.map((v) => String(v));
}

/** Every POST of the same key and endpoint with the same parameters must match this. */
function canonical(params: Params): string {
  const sort = (value: unknown): unknown =>
    Array.isArray(value)
      ? value.map(sort)
      : typeof value === 'object' && value !== null
        ? Object.fromEntries(
            Object.keys(value)
              .sort()
              .map((k) => [k, sort((value as Record<string, unknown>)[k])]),
          )
        : value;
  return JSON.stringify(sort(params));
}

interface SavedAnswer {
  method_path: string;
  params: string;
  status: number;
  body: string;
}

interface Stall {
  pattern: RegExp;
  /** Resolves when the stalled answer may go out (or never, to have the client killed). */
  release: Promise<void>;
  /** Called once the request's work is done and its answer is held. */
  reached: () => void;
  remaining: number;
}

export class StripeEmulator {
  readonly secret_key: string;
  readonly webhook_secret: string;
  webhook_url: string | undefined;
  readonly api_version = '2026-11-18.endive';
  private server: Server | undefined;
  private port = 0;
  private sequence = 0;
  private readonly options: Required<Omit<StripeEmulatorOptions, 'webhook_url'>>;

  readonly customers = new Map<
    string,
    { id: string; created: number; email: string | null; metadata: Record<string, string> }
  >();
  readonly payment_methods = new Map<string, PaymentMethod>();
  readonly payment_intents = new Map<string, PaymentIntent>();
  readonly charges = new Map<string, Charge>();
  readonly refunds = new Map<string, Refund>();
  readonly disputes = new Map<string, Dispute>();
  readonly balance_transactions = new Map<string, BalanceTransaction>();
  readonly payouts = new Map<string, Payout>();
  /** The charge's or refund's balance transaction, by the charge's or refund's id. */
  private readonly balance_transaction_of = new Map<string, string>();
  readonly events: StripeEvent[] = [];
  readonly deliveries: WebhookDelivery[] = [];
  /** Every request that did work (not replays, not refused validation): method, path, key. */
  readonly executed: { method: string; path: string; idempotency_key: string | null; status: number }[] = [];
  private readonly idempotency = new Map<string, SavedAnswer>();
  private readonly in_flight = new Set<string>();
  private readonly stalls: Stall[] = [];
  private readonly request_delays: { pattern: RegExp; ms: number; remaining: number; reached: () => void }[] =
    [];
  private readonly answer_watchers: { pattern: RegExp; remaining: number; sent: () => void }[] = [];
  private held: WebhookDelivery[] = [];
  private delivering = 0;
  private readonly idle_waiters: (() => void)[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private deliver_automatically: boolean;
  private delivery_delay_ms = 0;

  constructor(options: StripeEmulatorOptions = {}) {
    this.secret_key = options.secret_key ?? `sk_test_emulator_${randomBytes(8).toString('hex')}`;
    this.webhook_secret = options.webhook_secret ?? `whsec_${randomBytes(16).toString('hex')}`;
    this.webhook_url = options.webhook_url;
    this.deliver_automatically = options.deliver_automatically ?? true;
    this.options = {
      secret_key: this.secret_key,
      webhook_secret: this.webhook_secret,
      webhook_retry_ms: options.webhook_retry_ms ?? 20,
      webhook_attempts_max: options.webhook_attempts_max ?? 5,
      deliver_automatically: this.deliver_automatically,
      fee_percent_bp: options.fee_percent_bp ?? 290,
      fee_fixed_minor: options.fee_fixed_minor ?? 30,
      available_after_days: options.available_after_days ?? 2,
    };
  }

  /** Listens on a free loopback port; returns the API base (http://127.0.0.1:port). */
  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => {
        res.statusCode = 500;
        res.end(JSON.stringify({ error: { type: 'api_error', message: String(error) } }));
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this.api_base;
  }

  get api_base(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    if (this.server === undefined) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
    this.server = undefined;
  }

  // ---- test hooks -------------------------------------------------------------------------

  /** Holds every new delivery until `release_deliveries`. */
  pause_deliveries(): void {
    this.deliver_automatically = false;
  }

  /** Deliveries held so far, oldest first. */
  held_deliveries(): readonly WebhookDelivery[] {
    return this.held;
  }

  /**
   * Sends the held deliveries: in order, reversed, or in a given order of indexes (reorder);
   * `duplicate` sends each one twice; later deliveries go out automatically again when `resume`.
   */
  release_deliveries(
    options: { order?: 'as_created' | 'reversed' | number[]; duplicate?: boolean; resume?: boolean } = {},
  ): void {
    let batch = this.held;
    this.held = [];
    if (options.order === 'reversed') batch = [...batch].reverse();
    else if (Array.isArray(options.order)) batch = options.order.map((i) => batch[i]!).filter(Boolean);
    for (const delivery of batch) {
      this.send(delivery);
      if (options.duplicate) this.send(this.new_delivery(delivery.event));
    }
    if (options.resume) this.deliver_automatically = true;
  }

  /** Every later delivery waits this long first (late webhooks). */
  delay_deliveries(delay_ms: number): void {
    this.delivery_delay_ms = delay_ms;
  }

  /** Sends an event again, as Stripe may (at-least-once delivery). */
  redeliver(event_id: string): void {
    const event = this.events.find((e) => e.id === event_id);
    if (event === undefined) throw new Error(`no event ${event_id}`);
    this.send(this.new_delivery(event));
  }

  /** Resolves when no delivery is in flight or waiting for a retry (held ones excepted). */
  async deliveries_idle(): Promise<void> {
    if (this.delivering === 0) return;
    await new Promise<void>((resolve) => this.idle_waiters.push(resolve));
  }

  /**
   * The next `count` requests whose "METHOD /path" matches `pattern` do their work, then their
   * answer is held until `release` resolves (never, to have the caller killed mid-call).
   * Resolves `reached` for each one held.
   */
  stall_answers(pattern: RegExp, options: { count?: number; release?: Promise<void> } = {}): Promise<void> {
    let reached!: () => void;
    const promise = new Promise<void>((resolve) => {
      reached = resolve;
    });
    this.stalls.push({
      pattern,
      release: options.release ?? new Promise<void>(() => {}),
      reached,
      remaining: options.count ?? 1,
    });
    return promise;
  }

  /**
   * The next `count` requests matching "METHOD /path" wait `ms` before they do their work, as a
   * slow gateway would; the work is done even when the caller has gone (a killed client), like a
   * request Stripe received. Meanwhile the same idempotency key gets Stripe's 409 "in progress".
   * Resolves when the first such request arrived.
   */
  delay_requests(pattern: RegExp, ms: number, count = 1): Promise<void> {
    let reached!: () => void;
    const promise = new Promise<void>((resolve) => {
      reached = resolve;
    });
    this.request_delays.push({ pattern, ms, remaining: count, reached });
    return promise;
  }

  /** Resolves once the next request matching "METHOD /path" has been answered (its body sent). */
  answer_sent(pattern: RegExp): Promise<void> {
    return new Promise<void>((sent) => {
      this.answer_watchers.push({ pattern, remaining: 1, sent });
    });
  }

  /** The payer completes (or fails) a 3-D Secure challenge, as on Stripe's test page. */
  complete_authentication(payment_intent_id: string, outcome: 'succeed' | 'fail' = 'succeed'): void {
    const intent = this.payment_intents.get(payment_intent_id);
    if (intent === undefined || intent.status !== 'requires_action') {
      throw new Error(`${payment_intent_id} does not require action`);
    }
    const method = this.payment_methods.get(intent.payment_method!)!;
    if (outcome === 'fail') {
      this.fail_attempt(
        intent,
        method,
        'payment_intent_authentication_failure',
        undefined,
        'The provided PaymentMethod has failed authentication.',
        null,
      );
      return;
    }
    if (intent.setup_future_usage !== null) method.set_up = true;
    this.authorize_attempt(intent, method, null);
  }

  /** The cardholder disputes a charge (a chargeback): charge.dispute.created. */
  open_dispute(payment_intent_id: string, options: { amount?: number; reason?: string } = {}): string {
    const intent = this.payment_intents.get(payment_intent_id);
    const charge = intent?.latest_charge ? this.charges.get(intent.latest_charge) : undefined;
    if (intent === undefined || charge === undefined || !charge.captured) {
      throw new Error(`${payment_intent_id} has no captured charge to dispute`);
    }
    const dispute: Dispute = {
      id: this.id('dp'),
      created: this.now_s(),
      amount: options.amount ?? charge.amount_captured - charge.amount_refunded,
      currency: charge.currency,
      charge: charge.id,
      payment_intent: intent.id,
      reason: options.reason ?? 'fraudulent',
      status: 'needs_response',
      evidence: {},
      submission_count: 0,
      metadata: {},
    };
    this.disputes.set(dispute.id, dispute);
    charge.disputed = true;
    this.emit('charge.dispute.created', this.dispute_json(dispute), null);
    return dispute.id;
  }

  /** The issuer decides a dispute: charge.dispute.closed with status won or lost. */
  close_dispute(dispute_id: string, status: 'won' | 'lost'): void {
    const dispute = this.disputes.get(dispute_id);
    if (dispute === undefined) throw new Error(`no dispute ${dispute_id}`);
    dispute.status = status;
    this.emit('charge.dispute.closed', this.dispute_json(dispute), null);
  }

  /** Captured less refunded, per PaymentIntent: what the gateway says the merchant holds. */
  net_received(payment_intent_id: string): number {
    const intent = this.payment_intents.get(payment_intent_id);
    const charge = intent?.latest_charge ? this.charges.get(intent.latest_charge) : undefined;
    return charge === undefined ? 0 : charge.amount_captured - charge.amount_refunded;
  }

  /** Requests that did work on this path pattern (e.g. /capture$/): a replay is not counted. */
  executed_count(pattern: RegExp): number {
    return this.executed.filter((r) => pattern.test(`${r.method} ${r.path}`) && r.status < 400).length;
  }

  // ---- HTTP ---------------------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', this.api_base);
    const method = req.method ?? 'GET';
    const request_id = this.id('req');
    res.setHeader('Request-Id', request_id);
    res.setHeader('Stripe-Version', this.api_version);
    res.setHeader('Content-Type', 'application/json');

    // The browser side (Stripe.js calls from a page on another origin): CORS as Stripe answers it.
    res.setHeader('Access-Control-Allow-Origin', '*');
    if (method === 'OPTIONS') {
      res.setHeader('Access-Control-Allow-Methods', 'GET, POST');
      res.setHeader('Access-Control-Allow-Headers', 'Authorization, Content-Type');
      res.statusCode = 204;
      res.end();
      return;
    }
    if (url.pathname === '/emulator/stripe.js') {
      res.setHeader('Content-Type', 'text/javascript; charset=utf-8');
      res.end(stripe_js);
      return;
    }
    if (url.pathname.startsWith('/emulator/')) {
      this.handle_page(url, res);
      return;
    }
    const auth = req.headers.authorization ?? '';
    const params =
      method === 'GET' || method === 'DELETE' ? parse_form(url.search.slice(1)) : parse_form(body);
    const key_header = req.headers['idempotency-key'];
    const idempotency_key = typeof key_header === 'string' ? key_header : null;
    const publishable_confirm =
      /^Bearer pk_test_/.test(auth) &&
      method === 'POST' &&
      /^\/v1\/payment_intents\/[^/]+\/confirm$/.test(url.pathname);
    if (auth !== `Bearer ${this.secret_key}` && !publishable_confirm) {
      res.statusCode = 401;
      res.end(
        JSON.stringify({
          error: {
            type: 'invalid_request_error',
            message: 'Invalid API Key provided: check the secret key.',
          },
        }),
      );
      return;
    }
    const method_path = `${method} ${url.pathname}`;
    if (method === 'POST' && idempotency_key !== null) {
      if (idempotency_key.length > 255) {
        this.answer(res, 400, {
          error: { type: 'invalid_request_error', message: 'Idempotency keys are at most 255 characters.' },
        });
        return;
      }
      const saved = this.idempotency.get(idempotency_key);
      if (saved !== undefined) {
        if (saved.method_path !== method_path || saved.params !== canonical(params)) {
          this.answer(res, 400, {
            error: {
              type: 'idempotency_error',
              message: `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${idempotency_key}' if you meant to execute a different request.`,
            },
          });
          return;
        }
        res.setHeader('Idempotent-Replayed', 'true');
        res.statusCode = saved.status;
        res.end(saved.body);
        return;
      }
      if (this.in_flight.has(idempotency_key)) {
        this.answer(res, 409, {
          error: {
            type: 'idempotency_error',
            message:
              'There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through). Please retry your request.',
          },
        });
        return;
      }
    }
    const delay = this.request_delays.find((d) => d.remaining > 0 && d.pattern.test(method_path));
    if (delay !== undefined) {
      delay.remaining--;
      if (idempotency_key !== null) this.in_flight.add(idempotency_key);
      delay.reached();
      await new Promise((resolve) => setTimeout(resolve, delay.ms));
      if (idempotency_key !== null) this.in_flight.delete(idempotency_key);
    }
    let status = 200;
    let answer: JsonObject;
    let saved = true;
    try {
      if (publishable_confirm && text_param(params, 'client_secret') === undefined)
        throw missing('client_secret');
      answer = this.route(method, url.pathname, params, idempotency_key);
    } catch (error) {
      if (!(error instanceof StripeApiError)) throw error;
      status = error.status;
      answer = { error: { ...error.body, request_log_url: `${this.api_base}/emulator/logs/${request_id}` } };
      saved = error.saved;
    }
    const text = JSON.stringify(answer, null, 2);
    if (saved) this.executed.push({ method, path: url.pathname, idempotency_key, status });
    if (method === 'POST' && idempotency_key !== null && saved) {
      this.idempotency.set(idempotency_key, { method_path, params: canonical(params), status, body: text });
    }
    const stall = this.stalls.find((s) => s.remaining > 0 && s.pattern.test(method_path));
    if (stall !== undefined) {
      stall.remaining--;
      if (idempotency_key !== null) this.in_flight.add(idempotency_key);
      stall.reached();
      await stall.release;
      if (idempotency_key !== null) this.in_flight.delete(idempotency_key);
    }
    if (res.destroyed) return;
    res.statusCode = status;
    const watcher = this.answer_watchers.find((w) => w.remaining > 0 && w.pattern.test(method_path));
    if (watcher !== undefined) watcher.remaining--;
    res.end(text, () => watcher?.sent());
  }

  private answer(res: ServerResponse, status: number, body: JsonObject): void {
    res.statusCode = status;
    res.end(JSON.stringify(body));
  }

  /** The 3-D Secure page a `redirect_to_url` next action points at (Stripe's test page stand-in). */
  private handle_page(url: URL, res: ServerResponse): void {
    const match = /^\/emulator\/3ds\/([^/]+)$/.exec(url.pathname);
    const intent = match ? this.payment_intents.get(match[1]!) : undefined;
    if (intent === undefined) {
      res.statusCode = 404;
      res.end('{}');
      return;
    }
    const outcome = url.searchParams.get('outcome');
    // In a frame of the paying page (Stripe.js's modal), the outcome goes to the page's script.
    const embedded = url.searchParams.get('embedded') === '1';
    if ((outcome === 'succeed' || outcome === 'fail') && embedded) {
      if (intent.status === 'requires_action') this.complete_authentication(intent.id, outcome);
      const message = JSON.stringify({
        type: 'emulator-3ds-done',
        payment_intent: intent.id,
        status: intent.status,
        error: intent.last_payment_error,
      }).replace(/</g, '\\u003c');
      res.setHeader('Content-Type', 'text/html; charset=utf-8');
      res.end(
        `<!doctype html><title>3D Secure</title><p>${outcome === 'succeed' ? 'Authenticated' : 'Failed'}</p>` +
          `<script>parent.postMessage(${message}, '*');</script>`,
      );
      return;
    }
    if (outcome === 'succeed' || outcome === 'fail') {
      if (intent.status === 'requires_action') this.complete_authentication(intent.id, outcome);
      const back = new URL(intent.return_url ?? `${this.api_base}/emulator/done`);
      back.searchParams.set('payment_intent', intent.id);
      back.searchParams.set('payment_intent_client_secret', intent.client_secret);
      back.searchParams.set('redirect_status', outcome === 'succeed' ? 'succeeded' : 'failed');
      res.statusCode = 302;
      res.setHeader('Location', back.toString());
      res.end();
      return;
    }
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.end(
      `<!doctype html><title>3D Secure test payment</title><h1>3D Secure test payment</h1>` +
        `<p>${intent.amount} ${intent.currency.toUpperCase()}</p>` +
        `<a id="complete" href="?outcome=succeed${embedded ? '&amp;embedded=1' : ''}">Complete authentication</a> ` +
        `<a id="fail" href="?outcome=fail${embedded ? '&amp;embedded=1' : ''}">Fail authentication</a>`,
    );
  }

  private route(method: string, path: string, params: Params, idempotency_key: string | null): JsonObject {
    const parts = path.split('/').filter(Boolean);
    if (parts[0] !== 'v1') throw no_such('route', path);
    const [, resource, id, action, ...rest] = parts;
    if (rest.length > 0) throw invalid(`Unrecognized request URL (${method}: ${path}).`);
    const key = (m: string, a: string | undefined) =>
      `${m} ${resource}${id === undefined ? '' : '/:id'}${a ? `/${a}` : ''}`;
    switch (key(method, action)) {
      case 'POST customers':
        return this.create_customer(params, idempotency_key);
      case 'GET customers/:id':
        return this.customer_json(this.customer(id!));
      case 'POST payment_methods':
        return this.create_payment_method(params, idempotency_key);
      case 'GET payment_methods/:id':
        return this.method_json(this.method(id!));
      case 'POST payment_methods/:id/attach':
        return this.attach(id!, params, idempotency_key);
      case 'POST payment_methods/:id/detach':
        return this.detach(id!, params, idempotency_key);
      case 'POST payment_intents':
        return this.create_intent(params, idempotency_key);
      case 'GET payment_intents/:id':
        return this.intent_json(this.intent(id!), expand_list(params));
      case 'POST payment_intents/:id/confirm':
        return this.confirm(id!, params, idempotency_key);
      case 'POST payment_intents/:id/capture':
        return this.capture(id!, params, idempotency_key);
      case 'POST payment_intents/:id/cancel':
        return this.cancel(id!, params, idempotency_key);
      case 'GET charges/:id':
        return this.charge_json(this.charge(id!), expand_list(params));
      case 'GET balance_transactions':
        return this.list_balance_transactions(params);
      case 'GET balance_transactions/:id': {
        const txn = this.balance_transactions.get(id!);
        if (txn === undefined) throw no_such('balance transaction', id!, 'id');
        return this.balance_transaction_json(txn, false);
      }
      case 'GET payouts':
        return this.list_payouts(params);
      case 'GET payouts/:id': {
        const payout = this.payouts.get(id!);
        if (payout === undefined) throw no_such('payout', id!, 'id');
        return this.payout_json(payout);
      }
      case 'POST refunds':
        return this.create_refund(params, idempotency_key);
      case 'GET refunds/:id': {
        const refund = this.refunds.get(id!);
        if (refund === undefined) throw no_such('refund', id!, 'id');
        return this.refund_json(refund);
      }
      case 'GET disputes/:id':
        return this.dispute_json(this.dispute(id!));
      case 'POST disputes/:id':
        return this.update_dispute(id!, params, idempotency_key);
      case 'GET events/:id': {
        const event = this.events.find((e) => e.id === id);
        if (event === undefined) throw no_such('event', id!, 'id');
        return event as unknown as JsonObject;
      }
      case 'GET events':
        return this.list_events(params);
      default:
        throw new StripeApiError(404, {
          type: 'invalid_request_error',
          message: `Unrecognized request URL (${method}: ${path}).`,
        });
    }
  }

  // ---- resources -----------------------------------------------------------------------------

  private create_customer(params: Params, key: string | null): JsonObject {
    only_params(params, ['email', 'name', 'description', 'metadata', 'payment_method', 'expand']);
    const customer = {
      id: this.id('cus'),
      created: this.now_s(),
      email: text_param(params, 'email') ?? null,
      metadata: metadata_param(params),
    };
    this.customers.set(customer.id, customer);
    const pm = text_param(params, 'payment_method');
    if (pm !== undefined) this.attach_to(this.resolve_method(pm), customer.id);
    const json = this.customer_json(customer);
    this.emit('customer.created', json, key);
    return json;
  }

  private create_payment_method(params: Params, _key: string | null): JsonObject {
    only_params(params, ['type', 'card', 'metadata', 'billing_details', 'expand']);
    if (text_param(params, 'type') === undefined) throw missing('type');
    if (params.type !== 'card') throw invalid(`Invalid type: ${String(params.type)}`, 'type');
    const card = params.card;
    if (typeof card !== 'object' || Array.isArray(card)) throw missing('card');
    const token = typeof card.token === 'string' ? card.token : undefined;
    const number =
      token !== undefined ? test_ids[token] : typeof card.number === 'string' ? card.number : undefined;
    if (number === undefined) {
      if (token !== undefined) throw no_such('token', token, 'card[token]');
      throw missing('card[number]');
    }
    const known = cards_by_number[number.replace(/\s/g, '')];
    if (known === undefined) {
      throw new StripeApiError(402, {
        type: 'card_error',
        code: 'incorrect_number',
        param: 'card[number]',
        message: 'Your card number is incorrect.',
      });
    }
    const method = this.new_method(known);
    method.metadata = metadata_param(params);
    return this.method_json(method);
  }

  private attach(id: string, params: Params, key: string | null): JsonObject {
    only_params(params, ['customer', 'expand']);
    const customer = text_param(params, 'customer');
    if (customer === undefined) throw missing('customer');
    this.customer(customer, 'customer');
    const method = this.resolve_method(id);
    if (method.customer !== null && method.customer !== customer) {
      throw invalid('This PaymentMethod is already attached to another customer.', 'payment_method');
    }
    this.attach_to(method, customer);
    const json = this.method_json(method);
    this.emit('payment_method.attached', json, key);
    return json;
  }

  private detach(id: string, params: Params, key: string | null): JsonObject {
    only_params(params, ['expand']);
    const method = this.method(id);
    if (method.customer === null) {
      throw invalid(
        'The payment method you provided is not attached to a customer so detachment is impossible.',
      );
    }
    method.customer = null;
    const json = this.method_json(method);
    this.emit('payment_method.detached', json, key);
    return json;
  }

  private create_intent(params: Params, key: string | null): JsonObject {
    only_params(params, [
      'amount',
      'currency',
      'customer',
      'payment_method',
      'capture_method',
      'confirm',
      'off_session',
      'setup_future_usage',
      'description',
      'metadata',
      'return_url',
      'payment_method_types',
      'automatic_payment_methods',
      'statement_descriptor',
      'statement_descriptor_suffix',
      'error_on_requires_action',
      'confirmation_method',
      'expand',
      'receipt_email',
      'payment_method_options',
    ]);
    const amount = integer_param(params, 'amount');
    if (amount === undefined) throw missing('amount');
    const currency = text_param(params, 'currency')?.toLowerCase();
    if (currency === undefined) throw missing('currency');
    if (!/^[a-z]{3}$/.test(currency)) throw invalid(`Invalid currency: ${currency}.`, 'currency');
    this.check_amount(amount, currency);
    const capture_method = text_param(params, 'capture_method') ?? 'automatic';
    if (
      capture_method !== 'automatic' &&
      capture_method !== 'automatic_async' &&
      capture_method !== 'manual'
    ) {
      throw invalid(`Invalid capture_method: ${capture_method}`, 'capture_method');
    }
    const customer = text_param(params, 'customer');
    if (customer !== undefined) this.customer(customer, 'customer');
    const confirm = boolean_param(params, 'confirm') ?? false;
    const off_session = boolean_param(params, 'off_session');
    if (off_session !== undefined && !confirm) {
      throw invalid('You may only specify `off_session` when `confirm` is true.', 'off_session');
    }
    const setup_future_usage = text_param(params, 'setup_future_usage') ?? null;
    if (
      setup_future_usage !== null &&
      setup_future_usage !== 'on_session' &&
      setup_future_usage !== 'off_session'
    ) {
      throw invalid(`Invalid setup_future_usage: ${setup_future_usage}`, 'setup_future_usage');
    }
    const pm_text = text_param(params, 'payment_method');
    const method = pm_text === undefined ? undefined : this.resolve_method(pm_text);
    if (method !== undefined && method.customer !== null && method.customer !== (customer ?? null)) {
      throw invalid(
        'The provided PaymentMethod belongs to another Customer than the one provided.',
        'payment_method',
      );
    }
    const id = this.id('pi');
    const intent: PaymentIntent = {
      id,
      created: this.now_s(),
      amount,
      currency,
      capture_method,
      status: method === undefined ? 'requires_payment_method' : 'requires_confirmation',
      amount_capturable: 0,
      amount_received: 0,
      customer: customer ?? null,
      payment_method: method?.id ?? null,
      description: text_param(params, 'description') ?? null,
      metadata: metadata_param(params),
      client_secret: `${id}_secret_${randomBytes(12).toString('hex')}`,
      setup_future_usage,
      return_url: text_param(params, 'return_url') ?? null,
      allow_redirects: allow_redirects_param(params),
      latest_charge: null,
      last_payment_error: null,
      canceled_at: null,
      cancellation_reason: null,
    };
    if (confirm && method === undefined) {
      throw invalid(
        'You cannot confirm this PaymentIntent because it\u2019s missing a payment method.',
        'payment_method',
        'payment_intent_unexpected_state',
      );
    }
    this.payment_intents.set(id, intent);
    this.emit('payment_intent.created', this.intent_json(intent), key);
    if (confirm) return this.run_confirm(intent, method!, off_session ?? false, key, expand_list(params));
    return this.intent_json(intent, expand_list(params));
  }

  private confirm(id: string, params: Params, key: string | null): JsonObject {
    only_params(params, [
      'payment_method',
      'off_session',
      'return_url',
      'setup_future_usage',
      'expand',
      'client_secret',
      'payment_method_data',
    ]);
    const intent = this.intent(id);
    const secret = text_param(params, 'client_secret');
    if (secret !== undefined && secret !== intent.client_secret) {
      throw invalid(
        'The client_secret provided does not match the client_secret associated with the PaymentIntent.',
        'client_secret',
      );
    }
    if (intent.status !== 'requires_payment_method' && intent.status !== 'requires_confirmation') {
      throw unexpected_state(intent, 'confirm');
    }
    const pm_text = text_param(params, 'payment_method');
    let method = pm_text === undefined ? undefined : this.resolve_method(pm_text);
    const data = params.payment_method_data;
    if (
      method === undefined &&
      typeof data === 'object' &&
      !Array.isArray(data) &&
      typeof data.card === 'object'
    ) {
      const card = data.card as Params;
      const number = typeof card.token === 'string' ? test_ids[card.token] : String(card.number ?? '');
      const known = number === undefined ? undefined : cards_by_number[number];
      if (known === undefined) {
        throw new StripeApiError(402, {
          type: 'card_error',
          code: 'incorrect_number',
          message: 'Your card number is incorrect.',
        });
      }
      method = this.new_method(known);
    }
    if (method === undefined) {
      if (intent.payment_method === null) {
        throw invalid(
          'You cannot confirm this PaymentIntent because it\u2019s missing a payment method.',
          'payment_method',
          'payment_intent_unexpected_state',
        );
      }
      method = this.method(intent.payment_method);
    }
    const return_url = text_param(params, 'return_url');
    if (return_url !== undefined) intent.return_url = return_url;
    const sfu = text_param(params, 'setup_future_usage');
    if (sfu !== undefined) intent.setup_future_usage = sfu;
    intent.payment_method = method.id;
    return this.run_confirm(
      intent,
      method,
      boolean_param(params, 'off_session') ?? false,
      key,
      expand_list(params),
    );
  }

  /** One payment attempt on the card: authorize (hold or capture), ask for 3-D Secure, or decline. */
  private run_confirm(
    intent: PaymentIntent,
    method: PaymentMethod,
    off_session: boolean,
    key: string | null,
    expand: string[],
  ): JsonObject {
    intent.last_payment_error = null;
    if (intent.return_url === null && intent.allow_redirects !== 'never') {
      throw invalid(
        "This PaymentIntent is configured to accept payment methods enabled in your Dashboard. Because some of these payment methods might redirect your customer off of your page, you must provide a `return_url`. If you don't want to accept redirect-based payment methods, set `automatic_payment_methods[enabled]` to `true` and `automatic_payment_methods[allow_redirects]` to `never` when creating Setup Intents and Payment Intents.",
        'return_url',
      );
    }
    const behaviour = method.card.behaviour;
    if (behaviour === 'decline' || behaviour === 'insufficient_funds') {
      const decline_code = behaviour === 'decline' ? 'generic_decline' : 'insufficient_funds';
      const message =
        behaviour === 'decline' ? 'Your card was declined.' : 'Your card has insufficient funds.';
      this.fail_attempt(intent, method, 'card_declined', decline_code, message, key);
      throw this.card_error(intent, 'card_declined', decline_code, message);
    }
    const needs_authentication =
      behaviour === 'authenticate_always' || (behaviour === 'authenticate_unless_setup' && !method.set_up);
    if (needs_authentication && off_session) {
      const message = 'Your card was declined. This transaction requires authentication.';
      this.fail_attempt(intent, method, 'authentication_required', 'authentication_required', message, key);
      throw this.card_error(intent, 'authentication_required', 'authentication_required', message);
    }
    if (needs_authentication) {
      intent.status = 'requires_action';
      this.emit('payment_intent.requires_action', this.intent_json(intent), key);
      return this.intent_json(intent, expand);
    }
    this.authorize_attempt(intent, method, key);
    return this.intent_json(intent, expand);
  }

  private card_error(
    intent: PaymentIntent,
    code: string,
    decline_code: string,
    message: string,
  ): StripeApiError {
    return new StripeApiError(402, {
      type: 'card_error',
      code,
      decline_code,
      message,
      charge: intent.latest_charge ?? '',
      payment_intent: this.intent_json(intent),
      doc_url: `https://docs.stripe.com/error-codes/${code.replace(/_/g, '-')}`,
    } as never);
  }

  private authorize_attempt(intent: PaymentIntent, method: PaymentMethod, key: string | null): void {
    const manual = intent.capture_method === 'manual';
    const charge: Charge = {
      id: this.id('ch'),
      created: this.now_s(),
      amount: intent.amount,
      amount_captured: manual ? 0 : intent.amount,
      amount_refunded: 0,
      currency: intent.currency,
      captured: !manual,
      status: 'succeeded',
      paid: true,
      payment_intent: intent.id,
      payment_method: method.id,
      customer: intent.customer,
      failure_code: null,
      failure_message: null,
      outcome: {
        network_status: 'approved_by_network',
        type: 'authorized',
        seller_message: 'Payment complete.',
      },
      disputed: false,
      metadata: { ...intent.metadata },
    };
    this.charges.set(charge.id, charge);
    intent.latest_charge = charge.id;
    if (intent.setup_future_usage !== null) {
      method.set_up = true;
      if (intent.customer !== null && method.customer === null) this.attach_to(method, intent.customer);
    }
    if (manual) {
      intent.status = 'requires_capture';
      intent.amount_capturable = intent.amount;
      this.emit('charge.succeeded', this.charge_json(charge), key);
      this.emit('payment_intent.amount_capturable_updated', this.intent_json(intent), key);
    } else {
      intent.status = 'succeeded';
      intent.amount_received = intent.amount;
      this.add_balance_transaction('charge', charge.id, charge.amount_captured, charge.currency);
      this.emit('charge.succeeded', this.charge_json(charge), key);
      this.emit('payment_intent.succeeded', this.intent_json(intent), key);
    }
  }

  private fail_attempt(
    intent: PaymentIntent,
    method: PaymentMethod,
    code: string,
    decline_code: string | undefined,
    message: string,
    key: string | null,
  ): void {
    const charge: Charge = {
      id: this.id('ch'),
      created: this.now_s(),
      amount: intent.amount,
      amount_captured: 0,
      amount_refunded: 0,
      currency: intent.currency,
      captured: false,
      status: 'failed',
      paid: false,
      payment_intent: intent.id,
      payment_method: method.id,
      customer: intent.customer,
      failure_code: code,
      failure_message: message,
      outcome: {
        network_status: 'declined_by_network',
        type: 'issuer_declined',
        reason: decline_code ?? code,
      },
      disputed: false,
      metadata: { ...intent.metadata },
    };
    this.charges.set(charge.id, charge);
    intent.latest_charge = charge.id;
    intent.status = 'requires_payment_method';
    intent.last_payment_error = {
      type: 'card_error',
      code,
      ...(decline_code ? { decline_code } : {}),
      message,
      charge: charge.id,
      payment_method: this.method_json(method),
    };
    this.emit('charge.failed', this.charge_json(charge), key);
    this.emit('payment_intent.payment_failed', this.intent_json(intent), key);
  }

  private capture(id: string, params: Params, key: string | null): JsonObject {
    only_params(params, ['amount_to_capture', 'metadata', 'expand', 'final_capture', 'statement_descriptor']);
    const intent = this.intent(id);
    const amount = integer_param(params, 'amount_to_capture') ?? intent.amount_capturable;
    if (intent.status !== 'requires_capture') throw unexpected_state(intent, 'capture');
    if (amount > intent.amount_capturable) {
      throw new StripeApiError(400, {
        type: 'invalid_request_error',
        code: 'amount_too_large',
        param: 'amount_to_capture',
        message: `The amount to capture (${amount}) must be less than or equal to the amount capturable (${intent.amount_capturable}).`,
      });
    }
    if (amount === 0) throw invalid('amount_to_capture must be greater than 0.', 'amount_to_capture');
    const charge = this.charge(intent.latest_charge!);
    charge.amount_captured = amount;
    charge.captured = true;
    this.add_balance_transaction('charge', charge.id, amount, charge.currency);
    // The uncaptured rest is released: Stripe shows it as refunded on the charge. We keep
    // amount_refunded for what was really paid back, so refunds stay bounded by amount_captured.
    intent.amount_received = amount;
    intent.amount_capturable = 0;
    intent.status = 'succeeded';
    Object.assign(intent.metadata, metadata_param(params));
    this.emit('charge.captured', this.charge_json(charge), key);
    this.emit('payment_intent.succeeded', this.intent_json(intent), key);
    return this.intent_json(intent, expand_list(params));
  }

  private cancel(id: string, params: Params, key: string | null): JsonObject {
    only_params(params, ['cancellation_reason', 'expand']);
    const intent = this.intent(id);
    const reason = text_param(params, 'cancellation_reason') ?? null;
    const reasons = ['duplicate', 'fraudulent', 'requested_by_customer', 'abandoned'];
    if (reason !== null && !reasons.includes(reason))
      throw invalid(`Invalid cancellation_reason: ${reason}`, 'cancellation_reason');
    if (intent.status === 'succeeded' || intent.status === 'canceled')
      throw unexpected_state(intent, 'cancel');
    intent.status = 'canceled';
    intent.amount_capturable = 0;
    intent.canceled_at = this.now_s();
    intent.cancellation_reason = reason;
    const json = this.intent_json(intent, expand_list(params));
    this.emit('payment_intent.canceled', this.intent_json(intent), key);
    return json;
  }

  private create_refund(params: Params, key: string | null): JsonObject {
    only_params(params, ['payment_intent', 'charge', 'amount', 'reason', 'metadata', 'expand']);
    const pi = text_param(params, 'payment_intent');
    const ch = text_param(params, 'charge');
    if (pi === undefined && ch === undefined) throw missing('charge');
    let charge: Charge | undefined;
    if (pi !== undefined) {
      const intent = this.payment_intents.get(pi);
      if (intent === undefined) throw no_such('payment_intent', pi, 'payment_intent');
      if (intent.status !== 'succeeded' || intent.latest_charge === null) {
        throw new StripeApiError(400, {
          type: 'invalid_request_error',
          code: 'charge_not_refundable',
          message: `This PaymentIntent (${pi}) does not have a successful charge to refund.`,
          param: 'payment_intent',
        });
      }
      charge = this.charge(intent.latest_charge);
    } else {
      charge = this.charges.get(ch!);
      if (charge === undefined) throw no_such('charge', ch!, 'charge');
    }
    const reason = text_param(params, 'reason') ?? null;
    if (reason !== null && !['duplicate', 'fraudulent', 'requested_by_customer'].includes(reason)) {
      throw invalid(
        `Invalid reason: must be one of duplicate, fraudulent, or requested_by_customer`,
        'reason',
      );
    }
    const remaining = charge.amount_captured - charge.amount_refunded;
    if (remaining === 0) {
      throw new StripeApiError(400, {
        type: 'invalid_request_error',
        code: 'charge_already_refunded',
        message: `Charge ${charge.id} has already been refunded.`,
      });
    }
    const amount = integer_param(params, 'amount') ?? remaining;
    if (amount <= 0) throw invalid('Refund amount must be positive.', 'amount');
    if (amount > remaining) {
      throw new StripeApiError(400, {
        type: 'invalid_request_error',
        code: 'amount_too_large',
        param: 'amount',
        message: `Refund amount (${amount}) is greater than unrefunded amount on charge (${remaining})`,
      });
    }
    const refund: Refund = {
      id: this.id('re'),
      created: this.now_s(),
      amount,
      currency: charge.currency,
      charge: charge.id,
      payment_intent: charge.payment_intent,
      reason,
      status: 'succeeded',
      metadata: metadata_param(params),
    };
    this.refunds.set(refund.id, refund);
    charge.amount_refunded += amount;
    this.add_balance_transaction('refund', refund.id, -amount, refund.currency);
    const json = this.refund_json(refund);
    this.emit('refund.created', json, key);
    this.emit('charge.refunded', this.charge_json(charge), key);
    return json;
  }

  private list_events(params: Params): JsonObject {
    const limit = Math.min(integer_param(params, 'limit') ?? 10, 100);
    const after = text_param(params, 'starting_after');
    const type = text_param(params, 'type');
    // Stripe lists newest first.
    let list = [...this.events].reverse().filter((e) => type === undefined || e.type === type);
    if (after !== undefined) {
      const at = list.findIndex((e) => e.id === after);
      list = at < 0 ? [] : list.slice(at + 1);
    }
    const page = list.slice(0, limit);
    return {
      object: 'list',
      url: '/v1/events',
      has_more: list.length > limit,
      data: page as unknown as Json[],
    };
  }

  // ---- helpers -----------------------------------------------------------------------------

  private check_amount(amount: number, currency: string): void {
    if (amount > amount_max_minor) {
      throw new StripeApiError(
        400,
        {
          type: 'invalid_request_error',
          code: 'amount_too_large',
          param: 'amount',
          message: 'Amount must be no more than 99,999,999.',
        },
        false,
      );
    }
    const minimum = minimum_minor[currency] ?? 1;
    if (amount < minimum) {
      throw new StripeApiError(
        400,
        {
          type: 'invalid_request_error',
          code: 'amount_too_small',
          param: 'amount',
          message: `Amount must be at least ${minimum} ${currency}`,
        },
        false,
      );
    }
    if (three_decimal.has(currency) && amount % 10 !== 0) {
      throw invalid(
        `Amounts in ${currency} must end in 0 (three-decimal currency).`,
        'amount',
        'invalid_amount',
      );
    }
  }

  /** Stripe's exponent for a currency: 0 for zero-decimal, 3 for three-decimal, else 2. */
  static exponent(currency: string): number {
    const c = currency.toLowerCase();
    return zero_decimal.has(c) ? 0 : three_decimal.has(c) ? 3 : 2;
  }

  private customer(id: string, param = 'id') {
    const customer = this.customers.get(id);
    if (customer === undefined) throw no_such('customer', id, param);
    return customer;
  }

  private method(id: string): PaymentMethod {
    const method = this.payment_methods.get(id);
    if (method === undefined) throw no_such('PaymentMethod', id, 'payment_method');
    return method;
  }

  /** A magic test id (pm_card_visa) stands for a fresh PaymentMethod each time it is used. */
  private resolve_method(id: string): PaymentMethod {
    const number = test_ids[id];
    if (number !== undefined && id.startsWith('pm_')) return this.new_method(cards_by_number[number]!);
    return this.method(id);
  }

  private new_method(card: Card): PaymentMethod {
    const method: PaymentMethod = {
      id: this.id('pm'),
      created: this.now_s(),
      card,
      customer: null,
      set_up: false,
      metadata: {},
    };
    this.payment_methods.set(method.id, method);
    return method;
  }

  private attach_to(method: PaymentMethod, customer: string): void {
    method.customer = customer;
  }

  private intent(id: string): PaymentIntent {
    const intent = this.payment_intents.get(id);
    if (intent === undefined) throw no_such('payment_intent', id, 'intent');
    return intent;
  }

  private charge(id: string): Charge {
    const charge = this.charges.get(id);
    if (charge === undefined) throw no_such('charge', id, 'id');
    return charge;
  }

  private id(prefix: string): string {
    this.sequence++;
    return `${prefix}_${this.sequence.toString(36).padStart(6, '0')}${randomBytes(9).toString('base64url').replace(/[-_]/g, 'x')}`;
  }

  private now_s(): number {
    return Math.floor(Date.now() / 1000);
  }

  private customer_json(c: {
    id: string;
    created: number;
    email: string | null;
    metadata: Record<string, string>;
  }): JsonObject {
    return {
      id: c.id,
      object: 'customer',
      created: c.created,
      email: c.email,
      livemode: false,
      metadata: c.metadata,
    };
  }

  private method_json(m: PaymentMethod): JsonObject {
    return {
      id: m.id,
      object: 'payment_method',
      type: 'card',
      created: m.created,
      customer: m.customer,
      livemode: false,
      metadata: m.metadata,
      card: {
        brand: m.card.brand,
        last4: m.card.last4,
        exp_month: 12,
        exp_year: new Date().getUTCFullYear() + 3,
        funding: 'credit',
        country: 'US',
      },
    };
  }

  private intent_json(i: PaymentIntent, expand: string[] = []): JsonObject {
    const charge = i.latest_charge === null ? null : this.charges.get(i.latest_charge)!;
    let next_action: JsonObject | null = null;
    if (i.status === 'requires_action') {
      const url = `${this.api_base}/emulator/3ds/${i.id}`;
      next_action =
        i.return_url !== null
          ? { type: 'redirect_to_url', redirect_to_url: { url, return_url: i.return_url } }
          : { type: 'use_stripe_sdk', use_stripe_sdk: { type: 'three_d_secure_redirect', stripe_js: url } };
    }
    return {
      id: i.id,
      object: 'payment_intent',
      amount: i.amount,
      amount_capturable: i.amount_capturable,
      amount_received: i.amount_received,
      capture_method: i.capture_method,
      confirmation_method: 'automatic',
      client_secret: i.client_secret,
      created: i.created,
      currency: i.currency,
      customer: i.customer,
      description: i.description,
      last_payment_error: i.last_payment_error,
      latest_charge:
        expand.includes('latest_charge') && charge !== null ? this.charge_json(charge) : i.latest_charge,
      livemode: false,
      metadata: { ...i.metadata },
      next_action,
      payment_method: i.payment_method,
      payment_method_types: ['card'],
      setup_future_usage: i.setup_future_usage,
      status: i.status,
      canceled_at: i.canceled_at,
      cancellation_reason: i.cancellation_reason,
    };
  }

  private charge_json(c: Charge, expand: string[] = []): JsonObject {
    return {
      id: c.id,
      object: 'charge',
      amount: c.amount,
      amount_captured: c.amount_captured,
      amount_refunded: c.amount_refunded,
      captured: c.captured,
      created: c.created,
      currency: c.currency,
      customer: c.customer,
      disputed: c.disputed,
      failure_code: c.failure_code,
      failure_message: c.failure_message,
      livemode: false,
      metadata: { ...c.metadata },
      outcome: c.outcome,
      paid: c.paid,
      payment_intent: c.payment_intent,
      payment_method: c.payment_method,
      refunded: c.captured && c.amount_refunded === c.amount_captured,
      balance_transaction: this.expandable_transaction(c.id, expand.includes('balance_transaction')),
      status: c.status,
    };
  }

  private refund_json(r: Refund): JsonObject {
    return {
      id: r.id,
      object: 'refund',
      amount: r.amount,
      charge: r.charge,
      created: r.created,
      currency: r.currency,
      metadata: { ...r.metadata },
      payment_intent: r.payment_intent,
      reason: r.reason,
      status: r.status,
      balance_transaction: this.balance_transaction_of.get(r.id) ?? null,
    };
  }

  private dispute(id: string): Dispute {
    const dispute = this.disputes.get(id);
    if (dispute === undefined) throw no_such('dispute', id, 'id');
    return dispute;
  }

  /**
   * POST /v1/disputes/:id (docs "Update a dispute"): evidence text fields are staged, and with
   * `submit` (default true) sent to the bank: the status becomes under_review and the evidence can
   * no longer change. A closed or already submitted dispute refuses the update.
   */
  private update_dispute(id: string, params: Params, key: string | null): JsonObject {
    only_params(params, ['evidence', 'metadata', 'submit', 'expand']);
    const dispute = this.dispute(id);
    if (dispute.status !== 'needs_response') {
      throw invalid(
        `This dispute is ${dispute.status} and its evidence can no longer be updated.`,
        'evidence',
      );
    }
    const evidence = params.evidence ?? {};
    if (typeof evidence !== 'object' || Array.isArray(evidence)) throw invalid('Invalid hash', 'evidence');
    const staged = { ...dispute.evidence };
    for (const [field, value] of Object.entries(evidence)) {
      if (!(dispute_evidence_text_fields as readonly string[]).includes(field))
        throw invalid(
          `Received unknown parameter: evidence[${field}]`,
          `evidence[${field}]`,
          'parameter_unknown',
        );
      if (typeof value !== 'string')
        throw invalid(`Invalid string: evidence[${field}]`, `evidence[${field}]`);
      staged[field] = value;
    }
    const chars = Object.values(staged).reduce((n, v) => n + v.length, 0);
    if (chars > dispute_evidence_chars_max)
      throw invalid(`The evidence is over ${dispute_evidence_chars_max} characters in all.`, 'evidence');
    const submit = text_param(params, 'submit') ?? 'true';
    if (submit !== 'true' && submit !== 'false') throw invalid(`Invalid boolean: ${submit}`, 'submit');
    dispute.evidence = staged;
    dispute.metadata = { ...dispute.metadata, ...metadata_param(params) };
    if (submit === 'true') {
      dispute.status = 'under_review';
      dispute.submission_count++;
    }
    const json = this.dispute_json(dispute);
    this.emit('charge.dispute.updated', json, key);
    return json;
  }

  private expandable_transaction(source: string, expand: boolean): Json {
    const id = this.balance_transaction_of.get(source);
    if (id === undefined) return null;
    return expand ? this.balance_transaction_json(this.balance_transactions.get(id)!, false) : id;
  }

  private fee_of(amount: number, currency: string): number {
    const fixed = zero_decimal.has(currency) ? 0 : this.options.fee_fixed_minor;
    return Math.floor((amount * this.options.fee_percent_bp + 5000) / 10_000) + fixed;
  }

  private add_balance_transaction(
    type: BalanceTransaction['type'],
    source: string,
    amount: number,
    currency: string,
  ): BalanceTransaction {
    const fee = type === 'charge' ? Math.min(this.fee_of(amount, currency), amount) : 0;
    const created = this.now_s();
    const txn: BalanceTransaction = {
      id: this.id('txn'),
      created,
      amount,
      currency,
      fee,
      net: amount - fee,
      type,
      source,
      available_on: type === 'charge' ? created + this.options.available_after_days * 86_400 : created,
      description: null,
      payout: null,
    };
    this.balance_transactions.set(txn.id, txn);
    if (type === 'charge' || type === 'refund') this.balance_transaction_of.set(source, txn.id);
    return txn;
  }

  private balance_transaction_json(t: BalanceTransaction, expand_source: boolean): JsonObject {
    let source: Json = t.source;
    if (expand_source) {
      const charge = this.charges.get(t.source);
      const refund = this.refunds.get(t.source);
      const payout = this.payouts.get(t.source);
      if (charge !== undefined) source = this.charge_json(charge);
      else if (refund !== undefined) source = this.refund_json(refund);
      else if (payout !== undefined) source = this.payout_json(payout);
    }
    return {
      id: t.id,
      object: 'balance_transaction',
      amount: t.amount,
      available_on: t.available_on,
      created: t.created,
      currency: t.currency,
      description: t.description,
      exchange_rate: null,
      fee: t.fee,
      fee_details:
        t.fee === 0
          ? []
          : [
              {
                amount: t.fee,
                application: null,
                currency: t.currency,
                description: 'Stripe processing fees',
                type: 'stripe_fee',
              },
            ],
      net: t.net,
      reporting_category: t.type === 'payout_failure' ? 'payout_reversal' : t.type,
      source,
      status: t.available_on <= this.now_s() ? 'available' : 'pending',
      type: t.type,
    };
  }

  private payout_json(p: Payout): JsonObject {
    return {
      id: p.id,
      object: 'payout',
      amount: p.amount,
      arrival_date: p.arrival_date,
      automatic: true,
      balance_transaction: p.balance_transaction,
      created: p.created,
      currency: p.currency,
      description: 'STRIPE PAYOUT',
      destination: 'ba_emulator',
      failure_balance_transaction: p.failure_balance_transaction,
      failure_code: p.failure_code,
      failure_message: p.failure_message,
      livemode: false,
      metadata: {},
      method: 'standard',
      reconciliation_status: p.status === 'paid' ? 'completed' : 'in_progress',
      source_type: 'card',
      statement_descriptor: null,
      status: p.status,
      type: 'bank_account',
    };
  }

  /** Newest first, `limit` (at most 100) after `starting_after`, like every Stripe list. */
  private page<T extends { id: string }>(
    url: string,
    all: T[],
    params: Params,
    json: (item: T) => JsonObject,
  ): JsonObject {
    const limit = Math.min(integer_param(params, 'limit') ?? 10, 100);
    const after = text_param(params, 'starting_after');
    let list = [...all].reverse();
    if (after !== undefined) {
      const at = list.findIndex((e) => e.id === after);
      list = at < 0 ? [] : list.slice(at + 1);
    }
    return {
      object: 'list',
      url,
      has_more: list.length > limit,
      data: list.slice(0, limit).map(json),
    };
  }

  private list_balance_transactions(params: Params): JsonObject {
    const payout = text_param(params, 'payout');
    const type = text_param(params, 'type');
    const source = text_param(params, 'source');
    const currency = text_param(params, 'currency');
    if (payout !== undefined && !this.payouts.has(payout)) throw no_such('payout', payout, 'payout');
    const expand_source = expand_list(params).includes('data.source');
    const all = [...this.balance_transactions.values()].filter(
      (t) =>
        (payout === undefined || t.payout === payout) &&
        (type === undefined || t.type === type) &&
        (source === undefined || t.source === source) &&
        (currency === undefined || t.currency === currency),
    );
    return this.page('/v1/balance_transactions', all, params, (t) =>
      this.balance_transaction_json(t, expand_source),
    );
  }

  private list_payouts(params: Params): JsonObject {
    const status = text_param(params, 'status');
    const arrival = params.arrival_date;
    const range = typeof arrival === 'object' && !Array.isArray(arrival) ? arrival : {};
    const gte = typeof range.gte === 'string' ? Number(range.gte) : undefined;
    const lte = typeof range.lte === 'string' ? Number(range.lte) : undefined;
    const all = [...this.payouts.values()].filter(
      (p) =>
        (status === undefined || p.status === status) &&
        (gte === undefined || p.arrival_date >= gte) &&
        (lte === undefined || p.arrival_date <= lte),
    );
    return this.page('/v1/payouts', all, params, (p) => this.payout_json(p));
  }

  /**
   * An automatic payout (Stripe's payout schedule, run by the test): every balance transaction of
   * `currency` not yet paid out is settled by one payout of their summed net, arriving
   * `arrival_days` later; its own balance transaction takes the amount out. payout.created.
   */
  pay_out(currency: string, options: { arrival_days?: number } = {}): string {
    const c = currency.toLowerCase();
    const open = [...this.balance_transactions.values()].filter(
      (t) => t.currency === c && t.payout === null && t.type !== 'payout',
    );
    const amount = open.reduce((sum, t) => sum + t.net, 0);
    if (open.length === 0 || amount <= 0) throw new Error(`no positive ${c} balance to pay out`);
    const id = this.id('po');
    const created = this.now_s();
    const txn = this.add_balance_transaction('payout', id, -amount, c);
    const payout: Payout = {
      id,
      created,
      amount,
      currency: c,
      arrival_date: created + (options.arrival_days ?? 2) * 86_400,
      status: 'pending',
      balance_transaction: txn.id,
      failure_balance_transaction: null,
      failure_code: null,
      failure_message: null,
    };
    this.payouts.set(id, payout);
    for (const t of open) t.payout = id;
    txn.payout = id;
    this.emit('payout.created', this.payout_json(payout), null);
    return id;
  }

  /**
   * The bank's answer to a payout: payout.paid; or payout.failed with a failure code (docs "Payout
   * failures", e.g. account_closed), whose amount comes back to the balance as a payout_failure
   * balance transaction that the next payout settles.
   */
  settle_payout(id: string, outcome: 'paid' | 'failed', failure_code = 'account_closed'): void {
    const payout = this.payouts.get(id);
    if (payout === undefined) throw new Error(`no payout ${id}`);
    if (payout.status === 'paid' || payout.status === 'failed')
      throw new Error(`payout ${id} is ${payout.status}`);
    if (outcome === 'paid') {
      payout.status = 'paid';
      this.emit('payout.paid', this.payout_json(payout), null);
      return;
    }
    payout.status = 'failed';
    payout.failure_code = failure_code;
    payout.failure_message = 'The bank account has been closed.';
    payout.failure_balance_transaction = this.add_balance_transaction(
      'payout_failure',
      id,
      payout.amount,
      payout.currency,
    ).id;
    this.emit('payout.failed', this.payout_json(payout), null);
  }

  /** The Stripe balance per currency: the net of every balance transaction. */
  balance(currency: string): number {
    const c = currency.toLowerCase();
    let sum = 0;
    for (const t of this.balance_transactions.values()) if (t.currency === c) sum += t.net;
    return sum;
  }

  private dispute_json(d: Dispute): JsonObject {
    return {
      id: d.id,
      object: 'dispute',
      amount: d.amount,
      charge: d.charge,
      created: d.created,
      currency: d.currency,
      evidence: { ...d.evidence },
      evidence_details: {
        has_evidence: Object.keys(d.evidence).length > 0,
        past_due: false,
        submission_count: d.submission_count,
      },
      livemode: false,
      metadata: { ...d.metadata },
      payment_intent: d.payment_intent,
      reason: d.reason,
      status: d.status,
    };
  }

  // ---- events and webhook deliveries ---------------------------------------------------------

  private emit(type: string, object: JsonObject, idempotency_key: string | null): void {
    const event: StripeEvent = {
      id: this.id('evt'),
      object: 'event',
      api_version: this.api_version,
      created: this.now_s(),
      livemode: false,
      pending_webhooks: this.webhook_url === undefined ? 0 : 1,
      request: { id: null, idempotency_key },
      type,
      data: { object: structuredClone(object) },
    };
    this.events.push(event);
    if (this.webhook_url === undefined) return;
    const delivery = this.new_delivery(event);
    if (this.deliver_automatically) this.send(delivery);
    else this.held.push(delivery);
  }

  private new_delivery(event: StripeEvent): WebhookDelivery {
    const delivery = { event, attempts: 0, statuses: [], delivered: false };
    this.deliveries.push(delivery);
    return delivery;
  }

  /** The Stripe-Signature header for a body (also for tests that forge bad or stale ones). */
  sign(body: string, timestamp_s = this.now_s(), secret = this.webhook_secret): string {
    const v1 = createHmac('sha256', secret).update(`${timestamp_s}.${body}`, 'utf8').digest('hex');
    return `t=${timestamp_s},v1=${v1}`;
  }

  private send(delivery: WebhookDelivery): void {
    this.delivering++;
    const attempt = (delay_ms: number) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        void this.post_event(delivery).then((ok) => {
          if (ok || delivery.attempts >= this.options.webhook_attempts_max) {
            this.delivering--;
            if (this.delivering === 0) for (const wake of this.idle_waiters.splice(0)) wake();
            return;
          }
          attempt(this.options.webhook_retry_ms * 2 ** (delivery.attempts - 1));
        });
      }, delay_ms);
      this.timers.add(timer);
    };
    attempt(this.delivery_delay_ms);
  }

  private async post_event(delivery: WebhookDelivery): Promise<boolean> {
    delivery.attempts++;
    const body = JSON.stringify(delivery.event, null, 2);
    try {
      const response = await fetch(this.webhook_url!, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json; charset=utf-8',
          'User-Agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)',
          'Stripe-Signature': this.sign(body),
        },
        body,
        signal: AbortSignal.timeout(10_000),
      });
      await response.arrayBuffer();
      delivery.statuses.push(response.status);
      delivery.delivered = response.status >= 200 && response.status < 300;
      return delivery.delivered;
    } catch {
      delivery.statuses.push(0);
      return false;
    }
  }
}

/** Starts an emulator; stop it with `await emulator.stop()`. */
export async function start_stripe_emulator(options: StripeEmulatorOptions = {}): Promise<StripeEmulator> {
  const emulator = new StripeEmulator(options);
  await emulator.start();
  return emulator;
}

/**
 * A minimal stand-in for Stripe.js v3 (served at /emulator/stripe.js), the part a card payment
 * page uses: `Stripe(publishable_key).elements().create('card').mount(selector)` and
 * `confirmCardPayment(client_secret, { payment_method: { card } })`, which confirms the
 * PaymentIntent with the publishable key straight from the browser (the card number goes to the
 * gateway only, as with Stripe's own card element). The card field's inputs have no `name`, so
 * the page's own form never submits them. Any test card number above works.
 */
const stripe_js = `(function () {
  'use strict';
  var base = new URL(document.currentScript.src).origin;
  function input(label, autocomplete, size) {
    var el = document.createElement('input');
    el.setAttribute('aria-label', label);
    el.setAttribute('autocomplete', autocomplete);
    el.setAttribute('inputmode', 'numeric');
    el.setAttribute('size', String(size));
    el.style.cssText = 'font:inherit;border:0;padding:.25rem;margin-right:.5rem;min-width:0';
    return el;
  }
  // 3-D Secure as Stripe.js shows it: the issuer's challenge in a modal frame over the page; the
  // promise settles when the challenge reports its outcome.
  function challenge(url, intent) {
    return new Promise(function (resolve) {
      var overlay = document.createElement('div');
      overlay.id = 'emulator-3ds';
      overlay.setAttribute('role', 'dialog');
      overlay.setAttribute('aria-modal', 'true');
      overlay.setAttribute('aria-label', '3D Secure');
      overlay.style.cssText = 'position:fixed;inset:0;background:rgba(0,0,0,.5);display:flex;align-items:center;justify-content:center;z-index:1000';
      var frame = document.createElement('iframe');
      frame.title = '3D Secure';
      frame.src = url + (url.indexOf('?') < 0 ? '?' : '&') + 'embedded=1';
      frame.style.cssText = 'width:min(24rem,92vw);height:22rem;border:0;background:#fff';
      overlay.appendChild(frame);
      document.body.appendChild(overlay);
      function done(event) {
        if (event.origin !== base || !event.data || event.data.type !== 'emulator-3ds-done') return;
        if (event.data.payment_intent !== intent.id) return;
        window.removeEventListener('message', done);
        overlay.remove();
        var status = event.data.status;
        resolve(event.data.error ? { error: event.data.error } : { paymentIntent: Object.assign({}, intent, { status: status, next_action: null }) });
      }
      window.addEventListener('message', done);
    });
  }
  window.Stripe = function (key) {
    return {
      elements: function () {
        return {
          create: function (type) {
            if (type !== 'card') throw new Error('only the card element is emulated');
            var number = input('Card number', 'cc-number', 19);
            number.setAttribute('data-emulator', 'number');
            var expiry = input('Expiry (MM/YY)', 'cc-exp', 5);
            expiry.setAttribute('data-emulator', 'expiry');
            var cvc = input('CVC', 'cc-csc', 4);
            cvc.setAttribute('data-emulator', 'cvc');
            return {
              mount: function (target) {
                var host = typeof target === 'string' ? document.querySelector(target) : target;
                host.appendChild(number);
                host.appendChild(expiry);
                host.appendChild(cvc);
              },
              _values: function () {
                var parts = expiry.value.split('/');
                return { number: number.value.replace(/\\s+/g, ''), exp_month: parts[0] || '', exp_year: parts[1] || '', cvc: cvc.value };
              },
            };
          },
        };
      },
      confirmCardPayment: function (client_secret, data) {
        var id = client_secret.split('_secret_')[0];
        var card = data.payment_method.card._values();
        var body = new URLSearchParams();
        body.set('client_secret', client_secret);
        body.set('return_url', window.location.href);
        body.set('payment_method_data[type]', 'card');
        body.set('payment_method_data[card][number]', card.number);
        body.set('payment_method_data[card][exp_month]', card.exp_month);
        body.set('payment_method_data[card][exp_year]', card.exp_year);
        body.set('payment_method_data[card][cvc]', card.cvc);
        return fetch(base + '/v1/payment_intents/' + encodeURIComponent(id) + '/confirm', {
          method: 'POST',
          headers: { Authorization: 'Bearer ' + key, 'Content-Type': 'application/x-www-form-urlencoded' },
          body: body.toString(),
        }).then(function (response) {
          return response.json().then(function (json) {
            if (!response.ok) return { error: json.error };
            var action = json.status === 'requires_action' ? json.next_action : null;
            if (!action) return { paymentIntent: json };
            var url = action.redirect_to_url ? action.redirect_to_url.url : action.use_stripe_sdk.stripe_js;
            return challenge(url, json);
          });
        });
      },
    };
  };
})();
`;
