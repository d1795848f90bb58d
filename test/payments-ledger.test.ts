import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { create_credit_note } from '../billing/credit-notes/create.js';
import type { Ledger } from '../billing/ledger.js';
import { collect_invoice, save_payment_method, set_credit_note_choice } from '../billing/payments/collect.js';
import { settle_invoice_excess } from '../billing/payments/credit-notes.js';
import { EventNotReadyError, process_provider_event } from '../billing/payments/events.js';
import { type PaymentsContext, resume_pending_operations } from '../billing/payments/operations.js';
import {
  cancel_payment,
  capture_payment,
  create_hold,
  PaymentUnavailableError,
  refund_payment,
} from '../billing/payments/payments.js';
import { get_payment, payments_of_invoice } from '../billing/payments/query.js';
import { StripeProvider } from '../billing/payments/stripe.js';
import { ledger_backends, open_test_ledger } from './helpers/billing.js';
import {
  issue_invoice,
  put_driver,
  put_payments_entity,
  start_webhook_receiver,
  type WebhookReceiver,
} from './helpers/payments.js';
import { type StripeEmulator, start_stripe_emulator } from './helpers/stripe-emulator.js';

/**
 * Card payments on the ledger against the Stripe emulator: every state change recorded, journal
 * entries balanced, invoices paid and reopened, credit notes refunded or kept as account credit,
 * provider events applied once, a lost answer resent with the same key.
 */
async function balance(ledger: Ledger, account: string, party?: string): Promise<number> {
  const [row] = await ledger.query<{ b: number }>(
    `SELECT coalesce(sum(debit_minor - credit_minor), 0)::int8 AS b FROM journal_lines WHERE ledger_account = $1
     AND ($2::text IS NULL OR party = $2)`,
    [account, party ?? null],
  );
  return row!.b;
}

async function events_of(
  ledger: Ledger,
  kind: string,
): Promise<{ amount_minor: number; attributes: Record<string, unknown> }[]> {
  return await ledger.query(
    'SELECT amount_minor, attributes FROM billing_events WHERE kind = $1 ORDER BY id',
    [kind],
  );
}

describe.each(ledger_backends)('card payments in the ledger on %s', (backend) => {
  let ledger: Ledger;
  let dispose: () => Promise<void>;
  let emulator: StripeEmulator;
  let ctx: PaymentsContext;
  let receiver: WebhookReceiver;
  let webhook_results: string[] = [];

  beforeAll(async () => {
    const opened = await open_test_ledger(backend);
    ledger = opened.ledger;
    dispose = opened.dispose;
    await put_payments_entity(ledger);
    for (const id of ['ann', 'ben', 'cas', 'dee', 'jun'])
      await put_driver(ledger, id, id === 'jun' ? 'JPY' : 'EUR');
    receiver = await start_webhook_receiver(async (body, headers) => {
      try {
        webhook_results.push(await process_provider_event(ctx, ctx.provider.parse_event(body, headers)));
        return 200;
      } catch (error) {
        return error instanceof EventNotReadyError ? 503 : 400;
      }
    });
    emulator = await start_stripe_emulator({
      webhook_url: receiver.url,
      webhook_retry_ms: 5,
    });
    const provider = new StripeProvider({
      secret_key: emulator.secret_key,
      webhook_secret: emulator.webhook_secret,
      api_base: emulator.api_base,
      max_network_retries: 0,
      timeout_ms: 2000,
    });
    ctx = { ledger, provider };
  }, 60_000);

  afterAll(async () => {
    await emulator?.stop();
    await receiver?.close();
    await dispose?.();
  });

  it('holds, captures part, refunds part; every transition recorded; the journal balances', async () => {
    const held = await create_hold(ctx, {
      amount_minor: 5000,
      currency: 'EUR',
      description: 'pay at charger',
      payment_method_id: 'pm_card_visa',
      actor: 'test',
    });
    expect(held.payment).toMatchObject({ state: 'authorized', capturable_minor: 5000, purpose: 'hold' });
    const captured = await capture_payment(ctx, held.payment.id, {
      amount_minor: 3120,
      actor: 'operator:alice',
    });
    expect(captured.payment).toMatchObject({ state: 'captured', captured_minor: 3120, capturable_minor: 0 });
    await expect(capture_payment(ctx, held.payment.id, { actor: 'test' })).rejects.toMatchObject({
      field: 'payment_id',
    });
    await expect(
      refund_payment(ctx, held.payment.id, {
        amount_minor: 3121,
        reason: 'requested_by_customer',
        actor: 'test',
      }),
    ).rejects.toMatchObject({
      field: 'amount_minor',
    });
    const refunded = await refund_payment(ctx, held.payment.id, {
      amount_minor: 1000,
      reason: 'requested_by_customer',
      actor: 'test',
    });
    expect(refunded.payment).toMatchObject({ state: 'partly_refunded', refunded_minor: 1000 });
    expect(emulator.net_received(held.payment.provider_payment_id!)).toBe(2120);
    const view = (await get_payment(ledger, held.payment.id))!;
    expect(view.transitions.map((t) => t.to)).toEqual([
      'created',
      'authorized',
      'captured',
      'partly_refunded',
    ]);
    expect(view.transitions[2]).toMatchObject({ actor: 'operator:alice' });
    expect(view.operations.map((o) => o.idempotency_key)).toEqual([
      `payment:${held.payment.id}:authorize:1`,
      `payment:${held.payment.id}:capture:1`,
      `payment:${held.payment.id}:refund:1`,
    ]);
    expect(view).toMatchObject({ captured: '31.20', refunded: '10.00' });
    expect(await balance(ledger, 'cash')).toBe(2120);
    expect(await balance(ledger, 'unapplied_payments', `payment:${held.payment.id}`)).toBe(-2120);
  });

  it('releases a hold; a released hold cannot be captured', async () => {
    const held = await create_hold(ctx, {
      amount_minor: 2000,
      currency: 'EUR',
      description: 'x',
      payment_method_id: 'pm_card_visa',
      actor: 'test',
    });
    const cancelled = await cancel_payment(ctx, held.payment.id, 'test');
    expect(cancelled.payment.state).toBe('cancelled');
    await expect(capture_payment(ctx, held.payment.id, { actor: 'test' })).rejects.toMatchObject({
      field: 'payment_id',
    });
    expect((await events_of(ledger, 'payment_cancelled')).length).toBeGreaterThanOrEqual(1);
  });

  it('collects an invoice with the saved card; a decline fails the attempt and a retry with a new card pays it', async () => {
    const invoice = await issue_invoice(ledger, {
      account_id: 'ann',
      period: '2026-10',
      total_excl_vat: '40.00',
    });
    await save_payment_method(ctx, {
      account_id: 'ann',
      payment_method_id: 'pm_card_chargeDeclined',
      actor: 'test',
    });
    const first = await collect_invoice(ctx, invoice.id, 'system:test');
    expect(first.outcome?.payment).toMatchObject({
      state: 'failed',
      failure_code: 'generic_decline',
      attempt: 1,
    });
    expect((await events_of(ledger, 'collection_failed')).at(-1)?.attributes).toMatchObject({
      failure_code: 'generic_decline',
      attempt: 1,
    });
    await save_payment_method(ctx, { account_id: 'ann', payment_method_id: 'pm_card_visa', actor: 'test' });
    const second = await collect_invoice(ctx, invoice.id, 'system:test');
    expect(second.outcome?.payment).toMatchObject({
      state: 'captured',
      captured_minor: invoice.total_minor,
      attempt: 2,
    });
    const [row] = await ledger.query<{ status: string; paid_minor: number }>(
      'SELECT status, paid_minor FROM invoices WHERE id = $1',
      [invoice.id],
    );
    expect(row).toEqual({ status: 'paid', paid_minor: invoice.total_minor });
    // Collecting a paid invoice again charges nothing.
    expect((await collect_invoice(ctx, invoice.id, 'system:test')).skipped).toBe('paid');
    const received = (await events_of(ledger, 'payment_received')).at(-1)!;
    expect(received).toMatchObject({ amount_minor: invoice.total_minor, attributes: { method: 'card' } });
    expect(
      (await events_of(ledger, 'collection_attempted')).slice(-2).map((e) => e.attributes.attempt),
    ).toEqual([1, 2]);
    expect(await balance(ledger, 'receivable', 'ann')).toBe(0);
  });

  it('refunds a credit note on a paid invoice to its card payment', async () => {
    const invoice = await issue_invoice(ledger, {
      account_id: 'ben',
      period: '2026-10',
      total_excl_vat: '50.00',
    });
    await save_payment_method(ctx, { account_id: 'ben', payment_method_id: 'pm_card_visa', actor: 'test' });
    const paid = await collect_invoice(ctx, invoice.id, 'test');
    const pi = paid.outcome!.payment.provider_payment_id!;
    // A bare refund of an invoice payment is refused: a credit note must come first.
    await expect(
      refund_payment(ctx, paid.outcome!.payment.id, { amount_minor: 100, reason: 'goodwill', actor: 'test' }),
    ).rejects.toMatchObject({
      field: 'amount_minor',
    });
    await create_credit_note(ledger, { invoice_id: invoice.id, amount: '10.00', reason: 'faulty session' });
    const settled = await settle_invoice_excess(ctx, invoice.id, 'test');
    expect(settled.refunds).toHaveLength(1);
    expect(settled.refunds[0]!.payment).toMatchObject({ state: 'partly_refunded', refunded_minor: 1210 });
    expect(emulator.net_received(pi)).toBe(invoice.total_minor - 1210);
    // Settling again refunds nothing more.
    expect((await settle_invoice_excess(ctx, invoice.id, 'test')).refunds).toHaveLength(0);
    const [row] = await ledger.query<{ status: string; paid_minor: number }>(
      'SELECT status, paid_minor FROM invoices WHERE id = $1',
      [invoice.id],
    );
    expect(row).toEqual({ status: 'paid', paid_minor: invoice.total_minor - 1210 });
    expect(await balance(ledger, 'receivable', 'ben')).toBe(0);
    const [refund] = (await payments_of_invoice(ledger, invoice.id))[0]!.refunds;
    expect(refund).toMatchObject({ amount: '12.10', status: 'succeeded' });
    expect(refund!.credit_note_id).toBeGreaterThan(0);
  });

  it('keeps a credit note as account credit by the account choice and uses it before the next charge', async () => {
    await save_payment_method(ctx, { account_id: 'cas', payment_method_id: 'pm_card_visa', actor: 'test' });
    await set_credit_note_choice(ledger, 'cas', 'account_credit');
    const october = await issue_invoice(ledger, {
      account_id: 'cas',
      period: '2026-10',
      total_excl_vat: '20.00',
    });
    await collect_invoice(ctx, october.id, 'test');
    await create_credit_note(ledger, { invoice_id: october.id, amount: '5.00', reason: 'price error' });
    const settled = await settle_invoice_excess(ctx, october.id, 'test');
    expect(settled).toMatchObject({ refunds: [], credit_added_minor: 605 });
    const november = await issue_invoice(ledger, {
      account_id: 'cas',
      period: '2026-11',
      total_excl_vat: '30.00',
    });
    const collected = await collect_invoice(ctx, november.id, 'test');
    expect(collected.credit_used_minor).toBe(605);
    expect(collected.outcome?.payment).toMatchObject({
      amount_minor: november.total_minor - 605,
      state: 'captured',
    });
    expect(await balance(ledger, 'account_credit', 'cas')).toBe(0);
    expect(await balance(ledger, 'receivable', 'cas')).toBe(0);
    expect((await events_of(ledger, 'account_credit_used')).at(-1)?.amount_minor).toBe(605);
  });

  it('a chargeback reopens the invoice; a won dispute pays it again', async () => {
    const invoice = await issue_invoice(ledger, {
      account_id: 'dee',
      period: '2026-10',
      total_excl_vat: '10.00',
    });
    await save_payment_method(ctx, { account_id: 'dee', payment_method_id: 'pm_card_visa', actor: 'test' });
    const paid = await collect_invoice(ctx, invoice.id, 'test');
    await emulator.deliveries_idle();
    const dispute = emulator.open_dispute(paid.outcome!.payment.provider_payment_id!);
    await emulator.deliveries_idle();
    let [row] = await ledger.query<{ status: string; paid_minor: number }>(
      'SELECT status, paid_minor FROM invoices WHERE id = $1',
      [invoice.id],
    );
    expect(row).toEqual({ status: 'issued', paid_minor: 0 });
    expect((await get_payment(ledger, paid.outcome!.payment.id))!.state).toBe('charged_back');
    emulator.close_dispute(dispute, 'won');
    await emulator.deliveries_idle();
    [row] = await ledger.query<{ status: string; paid_minor: number }>(
      'SELECT status, paid_minor FROM invoices WHERE id = $1',
      [invoice.id],
    );
    expect(row).toEqual({ status: 'paid', paid_minor: invoice.total_minor });
    expect((await get_payment(ledger, paid.outcome!.payment.id))!.state).toBe('captured');
  });

  it('applies each webhook once: a redelivered event changes nothing', async () => {
    await emulator.deliveries_idle();
    webhook_results = [];
    const held = await create_hold(ctx, {
      amount_minor: 900,
      currency: 'EUR',
      description: 'x',
      payment_method_id: 'pm_card_visa',
      actor: 'test',
    });
    await emulator.deliveries_idle();
    const event = emulator.events.find(
      (e) =>
        e.type === 'payment_intent.amount_capturable_updated' &&
        (e.data.object as { id: string }).id === held.payment.provider_payment_id,
    )!;
    const transitions = (await get_payment(ledger, held.payment.id))!.transitions.length;
    emulator.redeliver(event.id);
    emulator.redeliver(event.id);
    await emulator.deliveries_idle();
    expect(webhook_results.filter((r) => r === 'duplicate').length).toBe(2);
    expect((await get_payment(ledger, held.payment.id))!.transitions.length).toBe(transitions);
  });

  it('a capture whose answer is lost stays pending and is resent with the same key: one capture at the provider', async () => {
    const held = await create_hold(ctx, {
      amount_minor: 4200,
      currency: 'EUR',
      description: 'x',
      payment_method_id: 'pm_card_visa',
      actor: 'test',
    });
    emulator.pause_deliveries();
    const stalled = emulator.stall_answers(/\/capture$/);
    await expect(capture_payment(ctx, held.payment.id, { actor: 'test' })).rejects.toBeInstanceOf(
      PaymentUnavailableError,
    );
    await stalled;
    expect((await get_payment(ledger, held.payment.id))!.state).toBe('authorized');
    const again = await resume_pending_operations(ctx);
    expect(again.resumed).toBeGreaterThanOrEqual(1);
    expect((await get_payment(ledger, held.payment.id))!).toMatchObject({
      state: 'captured',
      captured: '42.00',
    });
    expect(emulator.executed_count(new RegExp(`${held.payment.provider_payment_id}/capture$`))).toBe(1);
    emulator.release_deliveries({ resume: true });
    await emulator.deliveries_idle();
  });

  it('collects a zero-decimal JPY invoice in yen', async () => {
    const invoice = await issue_invoice(ledger, {
      account_id: 'jun',
      period: '2026-10',
      total_excl_vat: '1500',
      currency: 'JPY',
    });
    await save_payment_method(ctx, { account_id: 'jun', payment_method_id: 'pm_card_visa', actor: 'test' });
    const paid = await collect_invoice(ctx, invoice.id, 'test');
    expect(paid.outcome?.payment).toMatchObject({
      currency: 'JPY',
      captured_minor: invoice.total_minor,
      state: 'captured',
    });
    expect(emulator.payment_intents.get(paid.outcome!.payment.provider_payment_id!)).toMatchObject({
      currency: 'jpy',
      amount: invoice.total_minor,
    });
    expect(invoice.total_minor).toBe(1815);
  });

  it('the books balance and the provider agrees with the ledger on every payment', async () => {
    await emulator.deliveries_idle();
    const payments = await ledger.query<{
      provider_payment_id: string | null;
      captured_minor: number;
      refunded_minor: number;
      charged_back_minor: number;
    }>('SELECT provider_payment_id, captured_minor, refunded_minor, charged_back_minor FROM payments');
    for (const p of payments) {
      if (p.provider_payment_id === null) continue;
      expect(emulator.net_received(p.provider_payment_id)).toBe(p.captured_minor - p.refunded_minor);
    }
    const [sums] = await ledger.query<{ d: number; c: number }>(
      'SELECT sum(debit_minor)::int8 AS d, sum(credit_minor)::int8 AS c FROM journal_lines',
    );
    expect(sums!.d).toBe(sums!.c);
  });
});
