import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { doc_of } from '../api/openapi.js';
import { run_ocpp16_session, TestCharger } from './helpers/charger.js';
import { api_get, api_put, eventually, start_test_stack, test_operator_token } from './helpers/stack.js';
import { type StripeEmulator, start_stripe_emulator } from './helpers/stripe-emulator.js';

type Stack = Awaited<ReturnType<typeof start_test_stack>>;

/**
 * Card payments through the running stack against the Stripe emulator: a real OCPP 1.6 charger's
 * session is invoiced, the invoice is collected by the account's saved card, Stripe's signed
 * webhooks reach POST /v1/payments/webhooks/stripe and are applied once, a forged or stale one is
 * refused with 400 and changes nothing, and a credit note is refunded to the card by the payments
 * sweep. All of it over the operator API, as documented in the OpenAPI document.
 */
const tariff = {
  country_code: 'DE',
  party_id: 'EVR',
  id: 'pay',
  currency: 'EUR',
  elements: [{ price_components: [{ type: 'ENERGY', price: 0.4, vat: 19, step_size: 1 }] }],
  last_updated: '2026-11-01T00:00:00Z',
};
const address = { line1: 'Hauptstr. 1', postal_code: '10115', city: 'Berlin', country_code: 'DE' };

async function api(stack: Stack, method: string, pathname: string, body?: unknown) {
  const res = await fetch(`${stack.api_url}${pathname}`, {
    method,
    headers: { authorization: `Bearer ${test_operator_token}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: (text === '' ? {} : JSON.parse(text)) as Record<string, unknown> };
}

async function provider_events(stack: Stack): Promise<number> {
  const [row] = await stack.ledger!.query<{ n: number }>('SELECT count(*)::int8 AS n FROM provider_events');
  return row!.n;
}

describe('card payments over the API, from an OCPP charger to a refunded credit note', () => {
  let stack: Stack;
  let emulator: StripeEmulator;
  let invoice_id = 0;
  let payment_id = 0;

  beforeAll(async () => {
    emulator = await start_stripe_emulator({ webhook_retry_ms: 50 });
    stack = await start_test_stack({
      ROLES: 'ingest,rating,api,billing',
      DEFAULT_TARIFF_ID: 'pay',
      OCPI_CDR_PUSH_INTERVAL_MS: '0',
      STRIPE_SECRET_KEY: emulator.secret_key,
      STRIPE_WEBHOOK_SECRET: emulator.webhook_secret,
      STRIPE_API_BASE: emulator.api_base,
      PAYMENTS_SWEEP_INTERVAL_MS: '200',
    });
    emulator.webhook_url = `${stack.api_url}/v1/payments/webhooks/stripe`;
  }, 120_000);

  afterAll(async () => {
    await stack?.dispose();
    await emulator?.stop();
  });

  it('documents every payments route in the OpenAPI document', async () => {
    const routes = stack.api_routes.filter((r) => /payments|payment-method|collect/.test(r.path.source));
    expect(routes.length).toBeGreaterThanOrEqual(8);
    const { body } = await api_get(stack, '/v1/openapi.json');
    const paths = (body as { paths: Record<string, Record<string, unknown>> }).paths;
    for (const route of routes) {
      const doc = doc_of(route);
      expect(doc, route.path.source).toBeDefined();
      expect(paths[doc!.path]?.[route.method.toLowerCase()], `${route.method} ${doc!.path}`).toBeDefined();
    }
  });

  it('collects the invoice of a charging session with the saved card; webhooks are applied once', async () => {
    expect((await api_put(stack, '/v1/tariffs/pay', JSON.stringify(tariff))).status).toBe(200);
    const entity = await api(stack, 'PUT', '/v1/legal-entities/de', {
      name: 'evrate GmbH',
      vat_id: 'DE123456789',
      address,
      country_code: 'DE',
      time_zone: 'Europe/Berlin',
      fee_vat_percent: '19',
    });
    expect(entity.status).toBe(200);
    const account = await api(stack, 'PUT', '/v1/accounts/eva', {
      kind: 'driver',
      name: 'Eva',
      legal_entity_id: 'de',
      currency: 'EUR',
      address,
      tokens: ['TAG-EVA'],
    });
    expect(account.status).toBe(201);
    const bad_card = await api(stack, 'PUT', '/v1/accounts/eva/payment-method', { payment_method_id: 'x y' });
    expect(bad_card).toMatchObject({ status: 400, body: { field: 'payment_method_id' } });
    const saved = await api(stack, 'PUT', '/v1/accounts/eva/payment-method', {
      payment_method_id: 'pm_card_visa',
      credit_notes: 'refund',
    });
    expect(saved).toMatchObject({
      status: 200,
      body: { payment_method: { brand: 'visa', last4: '4242' }, credit_notes: 'refund' },
    });

    const charger = await TestCharger.connect(stack.ocpp_url.replace('{chargePointId}', 'CP-PAY-1'));
    await charger.call('BootNotification', { chargePointVendor: 'Acme', chargePointModel: 'X1' });
    await run_ocpp16_session(charger, {
      id_tag: 'TAG-EVA',
      connector_id: 1,
      meter_start_wh: 0,
      meter_stop_wh: 25_000,
      start: new Date('2026-11-20T17:00:00.000Z'),
      stop: new Date('2026-11-20T18:30:00.000Z'),
    });
    charger.close();
    await eventually(async () => {
      const rows = await stack.ledger!.query<{ n: number }>(
        "SELECT count(*)::int8 AS n FROM sessions WHERE account_id = 'eva' AND final_version IS NOT NULL",
      );
      return rows[0]!.n === 1 ? true : undefined;
    });
    const run = await api(stack, 'POST', '/v1/billing/runs', { period: '2026-11' });
    expect(run.status).toBe(202);
    const invoice = await eventually(async () => {
      const { body } = await api(stack, 'GET', '/v1/invoices?account_id=eva&period=2026-11');
      const found = (body.invoices as { id: number; status: string; total: string }[] | undefined)?.[0];
      return found?.status === 'issued' || found?.status === 'paid' ? found : undefined;
    });
    invoice_id = invoice.id;
    // 25 kWh x 0.40 = 10.00, + 19 % VAT = 11.90.
    expect(invoice.total).toBe('11.90');

    // The sweep charges new invoices of accounts with a saved card; POST collect does it now.
    // Either way there is exactly one attempt.
    const collected = await api(stack, 'POST', `/v1/invoices/${invoice_id}/collect`);
    expect(collected.status).toBe(200);
    const paid = await eventually(async () => {
      const { body } = await api(stack, 'GET', `/v1/invoices/${invoice_id}`);
      return body.status === 'paid' ? body : undefined;
    });
    expect(paid).toMatchObject({ status: 'paid' });
    const listed = await api(stack, 'GET', `/v1/invoices/${invoice_id}/payments`);
    const payments = listed.body.payments as {
      id: number;
      state: string;
      captured: string;
      provider_payment_id: string;
    }[];
    expect(payments).toHaveLength(1);
    expect(payments[0]).toMatchObject({ state: 'captured', captured: '11.90' });
    payment_id = payments[0]!.id;
    expect(emulator.net_received(payments[0]!.provider_payment_id)).toBe(1190);

    await emulator.deliveries_idle();
    expect(emulator.deliveries.length).toBeGreaterThan(0);
    for (const d of emulator.deliveries) expect(d.statuses.at(-1), d.event.type).toBe(200);
    const seen = await provider_events(stack);
    expect(seen).toBe(new Set(emulator.events.map((e) => e.id)).size);
    // Stripe may deliver an event twice: the second changes nothing.
    const transitions = (
      (await api(stack, 'GET', `/v1/payments/${payment_id}`)).body.transitions as unknown[]
    ).length;
    emulator.redeliver(emulator.events.at(-1)!.id);
    await emulator.deliveries_idle();
    expect(await provider_events(stack)).toBe(seen);
    expect(
      ((await api(stack, 'GET', `/v1/payments/${payment_id}`)).body.transitions as unknown[]).length,
    ).toBe(transitions);
  });

  it('refuses a webhook with a bad or stale signature with 400 and changes nothing', async () => {
    const before = await provider_events(stack);
    const payment_before = (await api(stack, 'GET', `/v1/payments/${payment_id}`)).body;
    const event = JSON.stringify({
      id: 'evt_forged',
      object: 'event',
      type: 'charge.dispute.created',
      created: Math.floor(Date.now() / 1000),
      data: {
        object: {
          id: 'dp_forged',
          object: 'dispute',
          amount: 1190,
          payment_intent: payment_before.provider_payment_id,
          status: 'needs_response',
        },
      },
    });
    const post = (signature: string | undefined, body = event) =>
      fetch(`${stack.api_url}/v1/payments/webhooks/stripe`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(signature === undefined ? {} : { 'stripe-signature': signature }),
        },
        body,
      });
    const forged = await post(emulator.sign(event, undefined, 'whsec_notthesecret1234'));
    expect(forged.status).toBe(400);
    expect(await forged.json()).toMatchObject({ field: 'stripe-signature' });
    expect((await post(emulator.sign(event, Math.floor(Date.now() / 1000) - 3600))).status).toBe(400);
    expect((await post(undefined)).status).toBe(400);
    expect((await post(emulator.sign(event), event.replace('1190', '9999'))).status).toBe(400);
    expect(await provider_events(stack)).toBe(before);
    expect((await api(stack, 'GET', `/v1/payments/${payment_id}`)).body).toEqual(payment_before);
  });

  it('refunds a credit note to the card by the sweep; refuses a refund above what the credit notes leave', async () => {
    const too_much = await api(stack, 'POST', `/v1/payments/${payment_id}/refunds`, {
      amount: '1.00',
      reason: 'requested_by_customer',
    });
    expect(too_much).toMatchObject({ status: 400, body: { field: 'amount_minor' } });
    const bad = await api(stack, 'POST', `/v1/payments/${payment_id}/refunds`, {
      amount: 'ten',
      reason: 'x',
    });
    expect(bad).toMatchObject({ status: 400, body: { field: 'amount' } });
    const note = await api(stack, 'POST', '/v1/credit-notes', {
      invoice_id,
      amount: '2.00',
      reason: 'slow charging',
    });
    expect(note.status).toBe(201);
    // 2.00 + 19 % = 2.38, refunded to the card by the sweep.
    const refunded = await eventually(async () => {
      const { body } = await api(stack, 'GET', `/v1/payments/${payment_id}`);
      return body.state === 'partly_refunded' ? body : undefined;
    });
    expect(refunded).toMatchObject({ refunded: '2.38', captured: '11.90' });
    expect((refunded.refunds as { status: string; credit_note_id: number }[])[0]).toMatchObject({
      status: 'succeeded',
      credit_note_id: note.body.id,
    });
    expect(emulator.net_received(refunded.provider_payment_id as string)).toBe(1190 - 238);
    const account = await api(stack, 'GET', '/v1/accounts/eva/payments');
    expect((account.body.payments as { id: number }[]).map((p) => p.id)).toEqual([payment_id]);
    const retry = await api(stack, 'POST', `/v1/payments/${payment_id}/retry`);
    expect(retry).toMatchObject({ status: 400, body: { field: 'id' } });
    expect((await api(stack, 'GET', '/v1/payments/999999')).status).toBe(404);
  });

  it('pays out the balance: payout.paid through the webhook, reconciled to the cent, listed over the API', async () => {
    // 11.90 captured (fee 2.9 % + 0.30 = 0.65), 2.38 refunded: 8.87 paid out.
    const payout_id = emulator.pay_out('eur', { arrival_days: 0 });
    emulator.settle_payout(payout_id, 'paid');
    await emulator.deliveries_idle();
    const synced = await api(stack, 'POST', '/v1/payments/payouts/sync');
    expect(synced.status).toBe(200);
    const payout = await eventually(async () => {
      const { body } = await api(stack, 'GET', `/v1/payments/payouts/${payout_id}`);
      return body.reconciliation === 'matched' ? body : undefined;
    });
    expect(payout).toMatchObject({
      amount: '8.87',
      status: 'paid',
      transactions: 2,
      transactions_net: '8.87',
    });
    expect((payout.items as { type: string; fee: string }[]).find((i) => i.type === 'charge')).toMatchObject({
      fee: '0.65',
    });
    const list = await api(stack, 'GET', '/v1/payments/payouts?status=paid');
    expect((list.body.payouts as { payout_id: string }[]).map((p) => p.payout_id)).toEqual([payout_id]);
    expect(await api(stack, 'GET', '/v1/payments/payouts?status=lost')).toMatchObject({
      status: 400,
      body: { field: 'status' },
    });
    expect((await api(stack, 'GET', '/v1/payments/payouts/po_none')).status).toBe(404);
    const today = new Date().toISOString().slice(0, 10);
    const report = await api(stack, 'GET', `/v1/reconciliation?day=${today}`);
    expect(report.body).toMatchObject({ payouts: [{ payout_id, reconciliation: 'matched', items: [] }] });
  });
});
