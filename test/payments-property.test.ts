import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Ledger, open_pglite } from '../billing/ledger.js';
import { migrate_ledger } from '../billing/migrations.js';
import type { PaymentRow } from '../billing/payments/apply.js';
import { collect_invoice, save_payment_method } from '../billing/payments/collect.js';
import { EventNotReadyError, process_provider_event } from '../billing/payments/events.js';
import type { PaymentsContext } from '../billing/payments/operations.js';
import {
  cancel_payment,
  capture_payment,
  create_hold,
  PaymentUnavailableError,
  refund_payment,
} from '../billing/payments/payments.js';
import { record_payment_fees } from '../billing/payments/payouts.js';
import {
  type AuthorizeRequest,
  type ChargeSavedMethodRequest,
  type PaymentProvider,
  PaymentProviderError,
} from '../billing/payments/provider.js';
import { can_transition, type PaymentState } from '../billing/payments/states.js';
import { StripeProvider } from '../billing/payments/stripe.js';
import { sweep_payments } from '../billing/payments/sweep.js';
import { FieldError } from '../core/field-error.js';
import {
  issue_invoice,
  put_driver,
  put_payments_entity,
  start_webhook_receiver,
  type WebhookReceiver,
} from './helpers/payments.js';
import { type StripeEmulator, start_stripe_emulator } from './helpers/stripe-emulator.js';

/**
 * Property: for random sequences of holds, partial and full captures, partial and full refunds,
 * releases, off-session charges of invoices, webhook deliveries held, reordered, duplicated,
 * delayed and redelivered (the emulator's own signed deliveries, with its retries of non-2xx
 * answers), and crashes (the gateway's answer lost after it did the work; the process gone between
 * the intent row and the call; the ledger closed and reopened from its data dir), once the
 * deliveries are drained and the recovery sweep has run, the ledger and the gateway agree to the
 * cent on every payment, the gateway made no capture, charge or refund twice (its own objects
 * counted), refunds never exceed captures and every state change is a recorded, allowed transition.
 *
 * The seed: fast-check prints it with the counterexample; rerun one with PAYMENTS_PROPERTY_SEED
 * (and PAYMENTS_PROPERTY_PATH). PAYMENTS_PROPERTY_RUNS changes the number of runs.
 */

type Fault = 'none' | 'answer_lost' | 'died_before_call';

/**
 * The real Stripe adapter with crashes injected around a money call: `answer_lost` lets the call
 * reach the gateway and do its work, then throws as a timeout would; `died_before_call` throws
 * before anything is sent (the intent row is already committed, as after a process death).
 */
class CrashingProvider implements PaymentProvider {
  readonly name = 'stripe';
  fault: Fault = 'none';
  constructor(private readonly inner: StripeProvider) {}

  /** Crashes actually injected into a money call, across all runs. */
  readonly injected = { answer_lost: 0, died_before_call: 0 };
  private async money<T>(call: () => Promise<T>): Promise<T> {
    const fault = this.fault;
    this.fault = 'none';
    if (fault !== 'none') this.injected[fault]++;
    if (fault === 'died_before_call')
      throw new PaymentProviderError('unavailable', 'the process died before the call');
    const answer = await call();
    if (fault === 'answer_lost')
      throw new PaymentProviderError('unavailable', 'the answer was lost after the gateway did the work');
    return answer;
  }
  create_customer(request: Parameters<PaymentProvider['create_customer']>[0]) {
    return this.inner.create_customer(request);
  }
  attach_payment_method(request: {
    idempotency_key: string;
    customer_id: string;
    payment_method_id: string;
  }) {
    return this.inner.attach_payment_method(request);
  }
  authorize(request: AuthorizeRequest) {
    return this.money(() => this.inner.authorize(request));
  }
  capture(request: Parameters<PaymentProvider['capture']>[0]) {
    return this.money(() => this.inner.capture(request));
  }
  cancel(request: Parameters<PaymentProvider['cancel']>[0]) {
    return this.money(() => this.inner.cancel(request));
  }
  charge_saved_method(request: ChargeSavedMethodRequest) {
    return this.money(() => this.inner.charge_saved_method(request));
  }
  refund(request: Parameters<PaymentProvider['refund']>[0]) {
    return this.money(() => this.inner.refund(request));
  }
  retrieve(id: string) {
    return this.inner.retrieve(id);
  }
  charge_transaction_of(id: string) {
    return this.inner.charge_transaction_of(id);
  }
  list_payouts(request: { created_after_ms: number; limit: number }) {
    return this.inner.list_payouts(request);
  }
  payout_transactions(id: string) {
    return this.inner.payout_transactions(id);
  }
  parse_event(raw_body: Buffer, headers: Record<string, string | string[] | undefined>) {
    return this.inner.parse_event(raw_body, headers);
  }
}

type Command =
  | { t: 'hold'; amount: number; currency: 'EUR' | 'JPY'; card: string; fault: Fault }
  | { t: 'charge'; account: 'vis' | 'dec'; cents: number; fault: Fault }
  | { t: 'capture'; target: number; part: number; fault: Fault }
  | { t: 'refund'; target: number; part: number; fault: Fault }
  | { t: 'cancel'; target: number; fault: Fault }
  | { t: 'pause' }
  | { t: 'release'; order: 'as_created' | 'reversed' | 'shuffled'; shuffle: number; duplicate: boolean }
  | { t: 'late'; ms: number }
  | { t: 'redeliver'; index: number }
  | { t: 'reopen' }
  | { t: 'sweep' };

const fault = fc.constantFrom<Fault>('none', 'none', 'none', 'answer_lost', 'died_before_call');
const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      t: fc.constant('hold' as const),
      amount: fc.integer({ min: 50, max: 20_000 }),
      currency: fc.constantFrom('EUR' as const, 'EUR' as const, 'JPY' as const),
      card: fc.constantFrom(
        'pm_card_visa',
        'pm_card_visa',
        'pm_card_visa',
        'pm_card_mastercard',
        'pm_card_mastercard',
        'pm_card_visa',
        'pm_card_visa',
        'pm_card_chargeDeclined',
        'pm_card_chargeDeclinedInsufficientFunds',
      ),
      fault,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('charge' as const),
      account: fc.constantFrom('vis' as const, 'vis' as const, 'dec' as const),
      cents: fc.integer({ min: 100, max: 50_000 }),
      fault,
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      t: fc.constant('capture' as const),
      target: fc.nat({ max: 7 }),
      part: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 60 })),
      fault,
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      t: fc.constant('refund' as const),
      target: fc.nat({ max: 7 }),
      part: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 60 })),
      fault,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ t: fc.constant('cancel' as const), target: fc.nat({ max: 7 }), fault }),
  },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('pause' as const) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant('release' as const),
      order: fc.constantFrom('as_created' as const, 'reversed' as const, 'shuffled' as const),
      shuffle: fc.nat(),
      duplicate: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ t: fc.constant('late' as const), ms: fc.integer({ min: 0, max: 30 }) }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('redeliver' as const), index: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('reopen' as const) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('sweep' as const) }) },
);

function permutation(n: number, seed: number): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  let x = seed | 1;
  for (let i = n - 1; i > 0; i--) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const j = x % (i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('payments property: ledger and gateway agree after random operations, deliveries and crashes', () => {
  let dir: string;
  let ledger: Ledger;
  let emulator: StripeEmulator;
  let provider: CrashingProvider;
  let ctx: PaymentsContext;
  let receiver: WebhookReceiver;
  /** While the ledger is being reopened the endpoint answers 503 (the gateway retries). */
  let down = false;
  let handling = 0;
  let period_n = 0;
  const unexpected: unknown[] = [];
  /** What the runs exercised, counted across all runs and checked at the end. */
  const seen = {
    charges: 0,
    reordered_releases: 0,
    duplicated_releases: 0,
    redeliveries: 0,
    reopens: 0,
  };

  async function reopen(): Promise<void> {
    down = true;
    while (handling > 0) await sleep(2);
    await ledger.close();
    ledger = await open_pglite(dir);
    await migrate_ledger(ledger);
    ctx = { ledger, provider };
    down = false;
  }

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'evrate-payments-property-'));
    ledger = await open_pglite(dir);
    await migrate_ledger(ledger);
    await put_payments_entity(ledger);
    await put_driver(ledger, 'vis');
    await put_driver(ledger, 'dec');
    receiver = await start_webhook_receiver(async (body, headers) => {
      if (down) return 503;
      handling++;
      try {
        await process_provider_event(ctx, ctx.provider.parse_event(body, headers));
        return 200;
      } catch (error) {
        if (!(error instanceof EventNotReadyError)) unexpected.push(error);
        return error instanceof EventNotReadyError ? 503 : 500;
      } finally {
        handling--;
      }
    });
    emulator = await start_stripe_emulator({
      webhook_url: receiver.url,
      webhook_retry_ms: 5,
      webhook_attempts_max: 7,
    });
    provider = new CrashingProvider(
      new StripeProvider({
        secret_key: emulator.secret_key,
        webhook_secret: emulator.webhook_secret,
        api_base: emulator.api_base,
        max_network_retries: 0,
        timeout_ms: 5000,
      }),
    );
    ctx = { ledger, provider };
    await save_payment_method(ctx, { account_id: 'vis', payment_method_id: 'pm_card_visa', actor: 'test' });
    await save_payment_method(ctx, {
      account_id: 'dec',
      payment_method_id: 'pm_card_chargeDeclined',
      actor: 'test',
    });
  }, 60_000);

  afterAll(async () => {
    if (emulator !== undefined) {
      // What the runs exercised, for the log.
      console.info(
        `payments property: ${emulator.payment_intents.size} intents, ${emulator.executed_count(/\/capture$/)} captures, ` +
          `${emulator.refunds.size} refunds, ${emulator.executed_count(/\/cancel$/)} cancels, ${emulator.deliveries.length} deliveries`,
      );
    }
    await emulator?.stop();
    await receiver?.close();
    await ledger?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function payment(id: number): Promise<PaymentRow> {
    const [row] = await ledger.query<PaymentRow>('SELECT * FROM payments WHERE id = $1', [id]);
    return row!;
  }

  /** One command; refusals the ledger is right to make (FieldError) and lost answers are expected. */
  async function run(cmd: Command, mine: number[]): Promise<void> {
    // Mostly a payment in a state the command applies to (else any): the command then does
    // something, and sometimes it meets one it must refuse.
    const target = async (states: PaymentState[]) => {
      if (mine.length === 0) return undefined;
      const n = (cmd as { target: number }).target;
      const fitting = await ledger.query<{ id: number }>(
        'SELECT id FROM payments WHERE id = ANY($1::int8[]) AND state = ANY($2::text[]) ORDER BY id',
        [mine, states],
      );
      if (n < 7 && fitting.length > 0) return fitting[fitting.length - 1 - (n % fitting.length)]!.id;
      return mine[mine.length - 1 - (n % mine.length)];
    };
    const expected = (error: unknown) =>
      error instanceof FieldError || error instanceof PaymentUnavailableError;
    const guarded = async (work: () => Promise<void>) => {
      try {
        await work();
      } catch (error) {
        if (!expected(error)) throw error;
      } finally {
        provider.fault = 'none';
      }
    };
    switch (cmd.t) {
      case 'hold':
        await guarded(async () => {
          provider.fault = cmd.fault;
          try {
            const held = await create_hold(ctx, {
              amount_minor: cmd.amount,
              currency: cmd.currency,
              description: 'property hold',
              payment_method_id: cmd.card,
              actor: 'property',
            });
            mine.push(held.payment.id);
          } catch (error) {
            if (error instanceof PaymentUnavailableError) mine.push(error.payment_id);
            throw error;
          }
        });
        return;
      case 'charge':
        await guarded(async () => {
          period_n++;
          const period = `${2001 + Math.floor(period_n / 12)}-${String((period_n % 12) + 1).padStart(2, '0')}`;
          const invoice = await issue_invoice(ledger, {
            account_id: cmd.account,
            period,
            total_excl_vat: (cmd.cents / 100).toFixed(2),
          });
          provider.fault = cmd.fault;
          seen.charges++;
          try {
            await collect_invoice(ctx, invoice.id, 'property');
          } finally {
            const ids = await ledger.query<{ id: number }>('SELECT id FROM payments WHERE invoice_id = $1', [
              invoice.id,
            ]);
            for (const { id } of ids) if (!mine.includes(id)) mine.push(id);
          }
        });
        return;
      case 'capture': {
        const id = await target(['authorized']);
        if (id === undefined) return;
        const p = await payment(id);
        await guarded(async () => {
          provider.fault = cmd.fault;
          const amount =
            cmd.part === 0 ? undefined : Math.max(1, Math.floor((p.amount_minor * cmd.part) / 100));
          await capture_payment(ctx, id, { amount_minor: amount, actor: 'property' });
        });
        return;
      }
      case 'refund': {
        const id = await target(['captured', 'partly_refunded']);
        if (id === undefined) return;
        const p = await payment(id);
        await guarded(async () => {
          provider.fault = cmd.fault;
          const amount =
            cmd.part === 0 ? undefined : Math.max(1, Math.floor((p.amount_minor * cmd.part) / 100));
          await refund_payment(ctx, id, {
            amount_minor: amount,
            reason: 'requested_by_customer',
            actor: 'property',
          });
        });
        return;
      }
      case 'cancel': {
        const id = await target(['authorized', 'requires_action']);
        if (id === undefined) return;
        await guarded(async () => {
          provider.fault = cmd.fault;
          await cancel_payment(ctx, id, 'property');
        });
        return;
      }
      case 'pause':
        emulator.pause_deliveries();
        return;
      case 'release': {
        const held = emulator.held_deliveries().length;
        if (held > 1 && cmd.order !== 'as_created') seen.reordered_releases++;
        if (held > 0 && cmd.duplicate) seen.duplicated_releases++;
        emulator.release_deliveries({
          order: cmd.order === 'shuffled' ? permutation(held, cmd.shuffle) : cmd.order,
          duplicate: cmd.duplicate,
          resume: true,
        });
        return;
      }
      case 'late':
        emulator.delay_deliveries(cmd.ms);
        return;
      case 'redeliver': {
        const events = emulator.events;
        if (events.length > 0) {
          emulator.redeliver(events[cmd.index % events.length]!.id);
          seen.redeliveries++;
        }
        return;
      }
      case 'reopen':
        seen.reopens++;
        await reopen();
        return;
      case 'sweep':
        await sweep_payments(ctx);
        return;
    }
  }

  /** Drains deliveries and sweeps until nothing is pending, like a restarted billing role. */
  async function recover(): Promise<void> {
    emulator.delay_deliveries(0);
    emulator.release_deliveries({ resume: true });
    for (let round = 0; round < 20; round++) {
      const counts = await sweep_payments(ctx);
      // A step the sweep only logs (it goes on with the next) must not fail here.
      await record_payment_fees(ctx);
      await emulator.deliveries_idle();
      const [pending] = await ledger.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM payment_operations WHERE status = 'pending'",
      );
      if (pending!.n === 0 && counts.still_pending === 0 && counts.collected === 0) return;
    }
    throw new Error('operations still pending after 20 sweeps');
  }

  /** The whole ledger against the gateway's own objects. */
  async function check(): Promise<void> {
    expect(unexpected).toEqual([]);
    const payments = await ledger.query<PaymentRow>('SELECT * FROM payments ORDER BY id');
    const transitions = await ledger.query<{
      payment_id: number;
      from_state: PaymentState;
      to_state: PaymentState;
      actor: string;
      reason: string;
    }>('SELECT payment_id, from_state, to_state, actor, reason FROM payment_transitions ORDER BY id');
    const refunds = await ledger.query<{
      id: number;
      payment_id: number;
      amount_minor: number;
      status: string;
      provider_refund_id: string | null;
    }>('SELECT id, payment_id, amount_minor, status, provider_refund_id FROM payment_refunds ORDER BY id');
    const cash = await ledger.query<{ source_id: string; debit: number; credit: number }>(
      `SELECT e.source_id, sum(l.debit_minor)::int8 AS debit, sum(l.credit_minor)::int8 AS credit
       FROM journal_entries e JOIN journal_lines l ON l.entry_id = e.id
       WHERE l.ledger_account = 'cash' AND (e.source_id LIKE 'payment:%' OR e.source_id LIKE 'refund:%')
       GROUP BY e.source_id`,
    );
    const cash_of = new Map(cash.map((c) => [c.source_id, c]));
    const events = await ledger.query<{
      kind: string;
      amount_minor: number;
      attributes: Record<string, unknown>;
    }>(
      `SELECT kind, amount_minor, attributes FROM billing_events
       WHERE kind LIKE 'payment_%' OR kind LIKE 'collection_%' OR kind LIKE 'account_credit_%' OR kind = 'debit_returned'`,
    );
    for (const e of events) {
      expect(e.attributes.method, `${e.kind} ${JSON.stringify(e.attributes)}`).toMatch(
        /^(card|wallet|sepa_debit|bank_transfer|pay_at_charger|terminal|account_credit)$/,
      );
      if (e.kind === 'payment_failed') expect(e.attributes.failure_code).toBeTruthy();
    }
    const [pending] = await ledger.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM payment_operations WHERE status = 'pending'",
    );
    expect(pending!.n).toBe(0);

    const intents_of_payment = new Map<string, string[]>();
    for (const intent of emulator.payment_intents.values()) {
      const pid = intent.metadata.payment_id;
      if (pid !== undefined) intents_of_payment.set(pid, [...(intents_of_payment.get(pid) ?? []), intent.id]);
    }
    const refunds_of_intent = new Map<
      string,
      { id: string; amount: number; refund_id: string | undefined }[]
    >();
    for (const r of emulator.refunds.values()) {
      expect(r.status).toBe('succeeded');
      refunds_of_intent.set(r.payment_intent, [
        ...(refunds_of_intent.get(r.payment_intent) ?? []),
        { id: r.id, amount: r.amount, refund_id: r.metadata.refund_id },
      ]);
    }
    const succeeded_charges_of_invoice = new Map<string, number>();
    for (const charge of emulator.charges.values()) {
      const invoice = charge.metadata.invoice_id;
      if (invoice !== undefined && charge.captured && charge.status === 'succeeded')
        succeeded_charges_of_invoice.set(invoice, (succeeded_charges_of_invoice.get(invoice) ?? 0) + 1);
    }
    for (const [invoice, n] of succeeded_charges_of_invoice) expect(n, `invoice ${invoice} charged`).toBe(1);

    for (const p of payments) {
      const label = `payment ${p.id} (${p.state})`;
      // One gateway object per ledger payment, and it is the one the ledger names.
      const intents = intents_of_payment.get(String(p.id)) ?? [];
      expect(intents.length, `${label}: intents at the gateway`).toBeLessThanOrEqual(1);
      if (p.provider_payment_id === null) {
        expect(intents, label).toEqual([]);
        expect(['failed'], label).toContain(p.state);
        continue;
      }
      expect(intents, label).toEqual([p.provider_payment_id]);
      const intent = emulator.payment_intents.get(p.provider_payment_id)!;
      const charge = intent.latest_charge === null ? undefined : emulator.charges.get(intent.latest_charge);
      const expected_state: Record<string, PaymentState[]> = {
        requires_capture: ['authorized'],
        succeeded: ['captured', 'partly_refunded', 'refunded'],
        canceled: ['cancelled'],
        requires_payment_method: intent.last_payment_error === null ? ['requires_action'] : ['failed'],
        requires_action: ['requires_action'],
      };
      expect(expected_state[intent.status], `${label} vs ${intent.status}`).toContain(p.state);
      // To the cent.
      expect(p.amount_minor, label).toBe(intent.amount);
      expect(p.currency, label).toBe(intent.currency.toUpperCase());
      expect(p.capturable_minor, `${label} capturable`).toBe(intent.amount_capturable);
      const captured = charge?.captured ? charge.amount_captured : 0;
      expect(p.captured_minor, `${label} captured`).toBe(captured);
      expect(p.captured_minor, label).toBe(intent.amount_received);
      expect(p.refunded_minor, `${label} refunded`).toBe(charge?.amount_refunded ?? 0);
      expect(p.refunded_minor, label).toBeLessThanOrEqual(p.captured_minor);
      // No capture or cancel done twice at the gateway; charges: at most one successful per intent.
      expect(
        emulator.executed_count(new RegExp(`^POST /v1/payment_intents/${p.provider_payment_id}/capture$`)),
      ).toBeLessThanOrEqual(1);
      expect(
        emulator.executed_count(new RegExp(`^POST /v1/payment_intents/${p.provider_payment_id}/cancel$`)),
      ).toBeLessThanOrEqual(1);
      const charges = [...emulator.charges.values()].filter(
        (c) => c.payment_intent === p.provider_payment_id && c.status === 'succeeded',
      );
      expect(charges.length, label).toBeLessThanOrEqual(1);
      // Refunds: the gateway's refunds are exactly the ledger's succeeded ones, each once.
      const at_gateway = refunds_of_intent.get(p.provider_payment_id) ?? [];
      const ours = refunds.filter((r) => r.payment_id === p.id);
      expect(
        ours.filter((r) => r.status === 'pending'),
        label,
      ).toEqual([]);
      const succeeded = ours.filter((r) => r.status === 'succeeded');
      expect(
        at_gateway
          .map((r) => ({ id: r.id, amount: r.amount, refund_id: r.refund_id }))
          .sort((a, b) => a.id.localeCompare(b.id)),
        `${label} refunds`,
      ).toEqual(
        succeeded
          .map((r) => ({ id: r.provider_refund_id!, amount: r.amount_minor, refund_id: String(r.id) }))
          .sort((a, b) => a.id.localeCompare(b.id)),
      );
      expect(
        succeeded.reduce((s, r) => s + r.amount_minor, 0),
        label,
      ).toBe(p.refunded_minor);
      // The journal's cash moves: the capture once, each refund once.
      expect(cash_of.get(`payment:${p.id}`)?.debit ?? 0, `${label} cash captured`).toBe(p.captured_minor);
      for (const r of succeeded)
        expect(cash_of.get(`refund:${r.id}`)?.credit, `refund ${r.id}`).toBe(r.amount_minor);
      // Every change recorded: a chain of allowed transitions from created to the current state,
      // one per refund booked.
      const chain = transitions.filter((t) => t.payment_id === p.id);
      expect(chain[0], label).toMatchObject({ from_state: 'created', to_state: 'created' });
      for (let i = 1; i < chain.length; i++) {
        const t = chain[i]!;
        expect(t.from_state, `${label} transition ${i}`).toBe(chain[i - 1]!.to_state);
        expect(
          t.from_state === t.to_state || can_transition(t.from_state, t.to_state),
          `${label} ${t.from_state}->${t.to_state}`,
        ).toBe(true);
        expect(t.actor.length).toBeGreaterThan(0);
        expect(t.reason.length).toBeGreaterThan(0);
      }
      expect(chain.at(-1)!.to_state, label).toBe(p.state);
      const money_moves = chain.filter((t) =>
        ['captured', 'partly_refunded', 'refunded', 'charged_back'].includes(t.from_state),
      );
      expect(money_moves.length, `${label} refund transitions`).toBe(succeeded.length);
    }
    // Fees: each captured charge's balance transaction recorded once by the sweep, its fee as the
    // gateway took it; the journal's fee expense is their sum.
    const recorded = await ledger.query<{ payment_id: number; fee_minor: number; net_minor: number }>(
      "SELECT payment_id, fee_minor, net_minor FROM provider_balance_transactions WHERE type = 'charge'",
    );
    let fees = 0;
    for (const p of payments.filter((p) => p.captured_minor > 0)) {
      const intent = emulator.payment_intents.get(p.provider_payment_id!)!;
      const txn = [...emulator.balance_transactions.values()].find(
        (t) => t.type === 'charge' && t.source === intent.latest_charge,
      )!;
      expect(
        recorded.filter((r) => r.payment_id === p.id),
        `payment ${p.id} fee`,
      ).toEqual([{ payment_id: p.id, fee_minor: txn.fee, net_minor: txn.net }]);
      fees += txn.fee;
    }
    expect(recorded.length).toBe(payments.filter((p) => p.captured_minor > 0).length);
    const [fee_expense] = await ledger.query<{ b: number }>(
      "SELECT coalesce(sum(debit_minor - credit_minor), 0)::int8 AS b FROM journal_lines WHERE ledger_account = 'payment_fees'",
    );
    expect(fee_expense!.b).toBe(fees);
    // Every refund at the gateway belongs to a ledger payment.
    const known = new Set(payments.map((p) => p.provider_payment_id));
    for (const intent of refunds_of_intent.keys()) expect(known.has(intent)).toBe(true);
  }

  const runs = Number(process.env.PAYMENTS_PROPERTY_RUNS ?? 40);
  const seed = process.env.PAYMENTS_PROPERTY_SEED;

  it('agree to the cent, nothing done twice, every transition recorded', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 10, maxLength: 24, size: 'max' }), async (commands) => {
        const mine: number[] = [];
        for (const cmd of commands) await run(cmd, mine);
        await recover();
        await check();
      }),
      {
        numRuns: runs,
        endOnFailure: true,
        ...(seed !== undefined ? { seed: Number(seed), path: process.env.PAYMENTS_PROPERTY_PATH } : {}),
        reporter: (details) => {
          if (details.failed) {
            throw new Error(
              `payments property failed: seed ${details.seed} path ${details.counterexamplePath}\n` +
                `${JSON.stringify(details.counterexample)}\n${String(details.errorInstance)}`,
            );
          }
        },
      },
    );
    // The property must not pass vacuously: the runs together reached every path it is about.
    const reached = {
      captures: emulator.executed_count(/^POST \/v1\/payment_intents\/[^/]+\/capture$/),
      refunds: emulator.refunds.size,
      off_session_charges_succeeded: [...emulator.charges.values()].filter(
        (c) => c.metadata.invoice_id !== undefined && c.status === 'succeeded',
      ).length,
      off_session_charges_tried: seen.charges,
      cancels: emulator.executed_count(/^POST \/v1\/payment_intents\/[^/]+\/cancel$/),
      answers_lost: provider.injected.answer_lost,
      deaths_before_call: provider.injected.died_before_call,
      reopens: seen.reopens,
      reordered_releases: seen.reordered_releases,
      duplicated_releases: seen.duplicated_releases,
      redeliveries: seen.redeliveries,
      deliveries: emulator.deliveries.length,
    };
    console.info(`payments property, ${runs} runs reached: ${JSON.stringify(reached)}`);
    if (seed === undefined) {
      const at_least = (share: number) => Math.max(1, Math.floor(runs * share));
      expect(reached.captures).toBeGreaterThanOrEqual(at_least(0.35));
      expect(reached.refunds).toBeGreaterThanOrEqual(at_least(0.2));
      expect(reached.off_session_charges_succeeded).toBeGreaterThanOrEqual(at_least(0.25));
      expect(reached.cancels).toBeGreaterThanOrEqual(at_least(0.05));
      expect(reached.answers_lost).toBeGreaterThanOrEqual(at_least(0.5));
      expect(reached.deaths_before_call).toBeGreaterThanOrEqual(at_least(0.5));
      expect(reached.reopens).toBeGreaterThanOrEqual(at_least(0.25));
      expect(reached.reordered_releases).toBeGreaterThanOrEqual(at_least(0.05));
      // An event delivered twice: a duplicated release, or the emulator's retry of a refused delivery.
      expect(reached.duplicated_releases + reached.redeliveries).toBeGreaterThanOrEqual(at_least(0.1));
    }
  }, 240_000);
});
