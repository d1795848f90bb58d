import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PaymentProviderError, type ProviderEvent } from '../billing/payments/provider.js';
import { StripeProvider } from '../billing/payments/stripe.js';
import { type StripeEmulator, start_stripe_emulator } from './helpers/stripe-emulator.js';

/** The Stripe adapter (official client) against the local Stripe-compatible emulator. */
describe('Stripe adapter against the emulator', () => {
  let emulator: StripeEmulator;
  let provider: StripeProvider;
  let receiver: Server;
  const received: { body: Buffer; headers: Record<string, string | string[] | undefined> }[] = [];
  let answer_status = 200;
  let key_n = 0;
  const key = (what: string) => `test:${what}:${++key_n}`;
  const hold = (amount_minor: number, payment_method_id = 'pm_card_visa', currency = 'EUR') =>
    provider.authorize({
      idempotency_key: key('hold'),
      amount_minor,
      currency,
      description: 'test hold',
      metadata: { payment_id: String(key_n) },
      payment_method_id,
    });

  beforeAll(async () => {
    receiver = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({ body: Buffer.concat(chunks), headers: req.headers });
        res.statusCode = answer_status;
        res.end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const webhook_url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    emulator = await start_stripe_emulator({ webhook_url, webhook_retry_ms: 5 });
    provider = new StripeProvider({
      secret_key: emulator.secret_key,
      webhook_secret: emulator.webhook_secret,
      api_base: emulator.api_base,
      max_network_retries: 0,
    });
  });

  afterAll(async () => {
    await emulator.stop();
    await new Promise<void>((r) => receiver.close(() => r()));
  });

  it('places a hold, captures part of it once and releases the rest', async () => {
    const held = await hold(5000);
    expect(held).toMatchObject({
      status: 'authorized',
      amount_minor: 5000,
      amount_capturable_minor: 5000,
      currency: 'EUR',
    });
    const capture_key = key('capture');
    const captured = await provider.capture({
      idempotency_key: capture_key,
      provider_payment_id: held.provider_payment_id,
      amount_minor: 3210,
    });
    expect(captured).toMatchObject({
      status: 'captured',
      amount_captured_minor: 3210,
      amount_capturable_minor: 0,
    });
    // The same key again: the first answer, nothing captured twice.
    const replay = await provider.capture({
      idempotency_key: capture_key,
      provider_payment_id: held.provider_payment_id,
      amount_minor: 3210,
    });
    expect(replay).toEqual(captured);
    expect(
      emulator.executed_count(new RegExp(`POST /v1/payment_intents/${held.provider_payment_id}/capture`)),
    ).toBe(1);
    // A second capture with a new key is refused: nothing is capturable any more.
    await expect(
      provider.capture({ idempotency_key: key('capture'), provider_payment_id: held.provider_payment_id }),
    ).rejects.toMatchObject({ code: 'invalid_request', provider_code: 'payment_intent_unexpected_state' });
  });

  it('refuses a capture above what is capturable and changes nothing', async () => {
    const held = await hold(2000);
    await expect(
      provider.capture({
        idempotency_key: key('capture'),
        provider_payment_id: held.provider_payment_id,
        amount_minor: 2001,
      }),
    ).rejects.toMatchObject({ code: 'amount_too_large' });
    expect(await provider.retrieve(held.provider_payment_id)).toMatchObject({
      status: 'authorized',
      amount_capturable_minor: 2000,
    });
  });

  it('cancels a hold; a cancelled hold cannot be captured', async () => {
    const held = await hold(1500);
    const cancelled = await provider.cancel({
      idempotency_key: key('cancel'),
      provider_payment_id: held.provider_payment_id,
    });
    expect(cancelled).toMatchObject({
      status: 'cancelled',
      amount_capturable_minor: 0,
      amount_captured_minor: 0,
    });
    await expect(
      provider.capture({ idempotency_key: key('capture'), provider_payment_id: held.provider_payment_id }),
    ).rejects.toBeInstanceOf(PaymentProviderError);
  });

  it('charges a saved method off-session', async () => {
    const customer = await provider.create_customer({ idempotency_key: key('customer'), account_id: 'acme' });
    const saved = await provider.attach_payment_method({
      idempotency_key: key('attach'),
      customer_id: customer.provider_customer_id,
      payment_method_id: 'pm_card_visa',
    });
    expect(saved).toMatchObject({ brand: 'visa', last4: '4242' });
    const charged = await provider.charge_saved_method({
      idempotency_key: key('charge'),
      amount_minor: 12345,
      currency: 'EUR',
      description: 'invoice 1',
      metadata: { invoice_id: '1' },
      customer_id: customer.provider_customer_id,
      payment_method_id: saved.payment_method_id,
    });
    expect(charged).toMatchObject({
      status: 'captured',
      amount_captured_minor: 12345,
      amount_refunded_minor: 0,
    });
    expect(emulator.net_received(charged.provider_payment_id)).toBe(12345);
  });

  it('answers a declined card with status failed and the decline code', async () => {
    const customer = await provider.create_customer({ idempotency_key: key('customer'), account_id: 'acme' });
    const saved = await provider.attach_payment_method({
      idempotency_key: key('attach'),
      customer_id: customer.provider_customer_id,
      payment_method_id: 'pm_card_chargeDeclined',
    });
    const charged = await provider.charge_saved_method({
      idempotency_key: key('charge'),
      amount_minor: 999,
      currency: 'EUR',
      description: 'invoice 2',
      metadata: {},
      customer_id: customer.provider_customer_id,
      payment_method_id: saved.payment_method_id,
    });
    expect(charged).toMatchObject({
      status: 'failed',
      failure_code: 'generic_decline',
      amount_captured_minor: 0,
    });
    const insufficient = await hold(999, 'pm_card_chargeDeclinedInsufficientFunds');
    expect(insufficient).toMatchObject({ status: 'failed', failure_code: 'insufficient_funds' });
  });

  it('a card needing 3-D Secure asks for action on-session and fails off-session', async () => {
    const on_session = await provider.authorize({
      idempotency_key: key('hold'),
      amount_minor: 4000,
      currency: 'EUR',
      description: 'hold',
      metadata: {},
      payment_method_id: 'pm_card_authenticationRequired',
      return_url: 'http://127.0.0.1:1/back',
    });
    expect(on_session.status).toBe('requires_action');
    expect(on_session.next_action_url).toMatch(/\/emulator\/3ds\//);
    emulator.complete_authentication(on_session.provider_payment_id);
    expect(await provider.retrieve(on_session.provider_payment_id)).toMatchObject({
      status: 'authorized',
      amount_capturable_minor: 4000,
    });

    const customer = await provider.create_customer({ idempotency_key: key('customer'), account_id: 'acme' });
    const saved = await provider.attach_payment_method({
      idempotency_key: key('attach'),
      customer_id: customer.provider_customer_id,
      payment_method_id: 'pm_card_authenticationRequired',
    });
    const off_session = await provider.charge_saved_method({
      idempotency_key: key('charge'),
      amount_minor: 4000,
      currency: 'EUR',
      description: 'invoice',
      metadata: {},
      customer_id: customer.provider_customer_id,
      payment_method_id: saved.payment_method_id,
    });
    expect(off_session).toMatchObject({ status: 'failed', failure_code: 'authentication_required' });
  });

  it('refunds partly, then the rest; an over-refund is refused', async () => {
    const held = await hold(10000);
    const captured = await provider.capture({
      idempotency_key: key('capture'),
      provider_payment_id: held.provider_payment_id,
      amount_minor: 8000,
    });
    expect(captured.amount_captured_minor).toBe(8000);
    const first = await provider.refund({
      idempotency_key: key('refund'),
      provider_payment_id: held.provider_payment_id,
      amount_minor: 2500,
      reason: 'requested_by_customer',
    });
    expect(first).toMatchObject({ amount_minor: 2500, status: 'succeeded', currency: 'EUR' });
    await expect(
      provider.refund({
        idempotency_key: key('refund'),
        provider_payment_id: held.provider_payment_id,
        amount_minor: 5501,
      }),
    ).rejects.toMatchObject({ code: 'amount_too_large' });
    const rest = await provider.refund({
      idempotency_key: key('refund'),
      provider_payment_id: held.provider_payment_id,
    });
    expect(rest.amount_minor).toBe(5500);
    expect(await provider.retrieve(held.provider_payment_id)).toMatchObject({
      amount_captured_minor: 8000,
      amount_refunded_minor: 8000,
    });
    await expect(
      provider.refund({
        idempotency_key: key('refund'),
        provider_payment_id: held.provider_payment_id,
        amount_minor: 1,
      }),
    ).rejects.toMatchObject({ code: 'amount_too_large', provider_code: 'charge_already_refunded' });
    expect(emulator.net_received(held.provider_payment_id)).toBe(0);
  });

  it('replays an idempotent request with its first answer and refuses the key with other parameters', async () => {
    const k = key('hold');
    const request = {
      idempotency_key: k,
      amount_minor: 777,
      currency: 'EUR',
      description: 'x',
      metadata: {},
      payment_method_id: 'pm_card_visa',
    };
    const first = await provider.authorize(request);
    const again = await provider.authorize(request);
    expect(again.provider_payment_id).toBe(first.provider_payment_id);
    expect([...emulator.payment_intents.values()].filter((i) => i.amount === 777)).toHaveLength(1);
    await expect(provider.authorize({ ...request, amount_minor: 778 })).rejects.toMatchObject({
      code: 'idempotency_conflict',
    });
    // A decline is saved under its key too: the replay is the same decline, not a new attempt.
    const decline_key = key('hold');
    const declined = {
      ...request,
      idempotency_key: decline_key,
      payment_method_id: 'pm_card_chargeDeclined',
    };
    const d1 = await provider.authorize(declined);
    const d2 = await provider.authorize(declined);
    expect(d2.provider_payment_id).toBe(d1.provider_payment_id);
  });

  it('takes zero-decimal JPY and three-decimal KWD amounts in their minor units', async () => {
    const yen = await hold(1500, 'pm_card_visa', 'JPY');
    expect(yen).toMatchObject({ currency: 'JPY', amount_minor: 1500 });
    expect(emulator.payment_intents.get(yen.provider_payment_id)).toMatchObject({
      currency: 'jpy',
      amount: 1500,
    });
    const captured = await provider.capture({
      idempotency_key: key('capture'),
      provider_payment_id: yen.provider_payment_id,
      amount_minor: 1234,
    });
    expect(captured.amount_captured_minor).toBe(1234);
    await expect(hold(49, 'pm_card_visa', 'JPY')).rejects.toMatchObject({
      provider_code: 'amount_too_small',
    });
    const dinar = await hold(12340, 'pm_card_visa', 'KWD');
    expect(dinar).toMatchObject({ status: 'authorized', amount_minor: 12340 });
    await expect(hold(12345, 'pm_card_visa', 'KWD')).rejects.toMatchObject({ code: 'invalid_request' });
  });

  it('delivers signed webhooks the adapter verifies; retries a failed delivery; refuses bad and stale signatures', async () => {
    await emulator.deliveries_idle();
    received.length = 0;
    answer_status = 500;
    const held = await hold(3000);
    await new Promise((r) => setTimeout(r, 30));
    answer_status = 200;
    await emulator.deliveries_idle();
    const events: ProviderEvent[] = received.map((r) => provider.parse_event(r.body, r.headers));
    const ids = new Set(events.map((e) => e.event_id));
    const authorized = events.find((e) => e.type === 'payment.authorized');
    expect(authorized?.payment).toMatchObject({
      provider_payment_id: held.provider_payment_id,
      status: 'authorized',
      amount_capturable_minor: 3000,
    });
    // Each failed attempt was retried until a 2xx: more deliveries than events.
    expect(received.length).toBeGreaterThan(ids.size);
    const delivery = emulator.deliveries.find((d) => d.event.id === authorized!.event_id)!;
    expect(delivery.statuses.at(-1)).toBe(200);

    const body = received[0]!.body;
    expect(() =>
      provider.parse_event(body, {
        'stripe-signature': emulator.sign(body.toString(), undefined, 'whsec_wrong'),
      }),
    ).toThrow(PaymentProviderError);
    const stale = emulator.sign(body.toString(), Math.floor(Date.now() / 1000) - 301);
    expect(() => provider.parse_event(body, { 'stripe-signature': stale })).toThrow(
      /signature|tolerance|timestamp/i,
    );
    const tampered = Buffer.from(body.toString().replace('3000', '3001'));
    expect(() => provider.parse_event(tampered, received[0]!.headers)).toThrow(PaymentProviderError);
    expect(() => provider.parse_event(body, {})).toThrow(PaymentProviderError);
  });

  it('holds, reorders and duplicates deliveries on request', async () => {
    await emulator.deliveries_idle();
    received.length = 0;
    emulator.pause_deliveries();
    const held = await hold(2500);
    await provider.capture({
      idempotency_key: key('capture'),
      provider_payment_id: held.provider_payment_id,
    });
    const pending = emulator.held_deliveries().map((d) => d.event.type);
    expect(pending).toEqual([
      'payment_intent.created',
      'charge.succeeded',
      'payment_intent.amount_capturable_updated',
      'charge.captured',
      'payment_intent.succeeded',
    ]);
    emulator.release_deliveries({ order: 'reversed', duplicate: true, resume: true });
    await emulator.deliveries_idle();
    const types = received.map((r) => (JSON.parse(r.body.toString()) as { type: string }).type);
    expect(types.length).toBe(10);
    expect(new Set(types).size).toBe(5);
  });

  it('speaks the official client at the wire level: form bodies with nested metadata, Stripe error shape', async () => {
    const stripe = new Stripe(emulator.secret_key, {
      host: '127.0.0.1',
      port: new URL(emulator.api_base).port,
      protocol: 'http',
      maxNetworkRetries: 0,
    });
    const intent = await stripe.paymentIntents.create({
      amount: 100,
      currency: 'usd',
      metadata: { a: 'b', 'c d': 'e' },
      capture_method: 'manual',
    });
    expect(intent).toMatchObject({
      status: 'requires_payment_method',
      metadata: { a: 'b', 'c d': 'e' },
      capture_method: 'manual',
    });
    const error = await stripe.paymentIntents
      .create({ amount: 100, currency: 'usd', bogus: 1 } as never)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(error).toMatchObject({ code: 'parameter_unknown', param: 'bogus', statusCode: 400 });
    const wrong_key = new Stripe('sk_test_wrong', {
      host: '127.0.0.1',
      port: new URL(emulator.api_base).port,
      protocol: 'http',
      maxNetworkRetries: 0,
    });
    await expect(wrong_key.customers.create({})).rejects.toBeInstanceOf(
      Stripe.errors.StripeAuthenticationError,
    );
  });
});
