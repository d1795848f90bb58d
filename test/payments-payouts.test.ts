import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reconciliation_report } from '../billing/collection/reconciliation.js';
import type { Ledger } from '../billing/ledger.js';
import { EventNotReadyError, process_provider_event } from '../billing/payments/events.js';
import type { PaymentsContext } from '../billing/payments/operations.js';
import { capture_payment, create_hold, refund_payment } from '../billing/payments/payments.js';
import { get_payout, list_payouts } from '../billing/payments/payouts.js';
import { StripeProvider } from '../billing/payments/stripe.js';
import { sweep_payments } from '../billing/payments/sweep.js';
import { ledger_backends, open_test_ledger } from './helpers/billing.js';
import {
  put_driver,
  put_payments_entity,
  start_webhook_receiver,
  type WebhookReceiver,
} from './helpers/payments.js';
import { type StripeEmulator, start_stripe_emulator } from './helpers/stripe-emulator.js';

/**
 * Provider fees and payouts against the emulator: each captured charge's balance transaction
 * (amount, fee, net) recorded once with its fee booked (payment_fees against cash); a payout paid
 * (payout.paid webhook) booked to the bank and reconciled against the sum of the balance
 * transactions it settled and the ledger's payments; a charge made outside the ledger listed as
 * unmatched in the daily report; a failed payout (payout.failed) booked nothing and its money
 * paid out again by the next one. The ledger's cash (the clearing account of card money) ends
 * equal to the gateway's balance.
 */
async function balance(ledger: Ledger, account: string): Promise<number> {
  const [row] = await ledger.query<{ b: number }>(
    'SELECT coalesce(sum(debit_minor - credit_minor), 0)::int8 AS b FROM journal_lines WHERE ledger_account = $1',
    [account],
  );
  return row!.b;
}

describe.each(ledger_backends)('provider fees and payouts on %s', (backend) => {
  let ledger: Ledger;
  let dispose: () => Promise<void>;
  let emulator: StripeEmulator;
  let ctx: PaymentsContext;
  let receiver: WebhookReceiver;
  const today = new Date().toISOString().slice(0, 10);

  beforeAll(async () => {
    const opened = await open_test_ledger(backend);
    ledger = opened.ledger;
    dispose = opened.dispose;
    await put_payments_entity(ledger);
    await put_driver(ledger, 'pay');
    receiver = await start_webhook_receiver(async (body, headers) => {
      try {
        await process_provider_event(ctx, ctx.provider.parse_event(body, headers));
        return 200;
      } catch (error) {
        return error instanceof EventNotReadyError ? 503 : 400;
      }
    });
    emulator = await start_stripe_emulator({
      webhook_url: receiver.url,
      webhook_retry_ms: 5,
      fee_percent_bp: 150,
      fee_fixed_minor: 25,
    });
    ctx = {
      ledger,
      provider: new StripeProvider({
        secret_key: emulator.secret_key,
        webhook_secret: emulator.webhook_secret,
        api_base: emulator.api_base,
        max_network_retries: 0,
      }),
    };
  }, 180_000);

  afterAll(async () => {
    await emulator?.stop();
    await receiver?.close();
    await dispose?.();
  });

  async function captured(amount: number, capture?: number) {
    const held = await create_hold(ctx, {
      amount_minor: amount,
      currency: 'EUR',
      description: 'payout test',
      account_id: 'pay',
      payment_method_id: 'pm_card_visa',
      actor: 'test',
    });
    return (await capture_payment(ctx, held.payment.id, { amount_minor: capture, actor: 'test' })).payment;
  }

  it('records each fee once, books it, pays out and reconciles to the cent', async () => {
    const a = await captured(10_000);
    const b = await captured(5_000, 3_333);
    await refund_payment(ctx, a.id, { amount_minor: 1_250, reason: 'requested_by_customer', actor: 'test' });
    await sweep_payments(ctx);
    await sweep_payments(ctx); // a second pass records nothing again
    const fees = await ledger.query<{
      payment_id: number;
      amount_minor: number;
      fee_minor: number;
      net_minor: number;
    }>(
      "SELECT payment_id, amount_minor, fee_minor, net_minor FROM provider_balance_transactions WHERE type = 'charge' ORDER BY payment_id",
    );
    // 1.5% + 0.25: 150 + 25 and round(49.995) + 25.
    expect(fees).toEqual([
      { payment_id: a.id, amount_minor: 10_000, fee_minor: 175, net_minor: 9_825 },
      { payment_id: b.id, amount_minor: 3_333, fee_minor: 75, net_minor: 3_258 },
    ]);
    for (const f of fees) {
      const intent = emulator.payment_intents.get(
        (
          await ledger.query<{ p: string }>('SELECT provider_payment_id AS p FROM payments WHERE id = $1', [
            f.payment_id,
          ])
        )[0]!.p,
      )!;
      const txn = [...emulator.balance_transactions.values()].find((t) => t.source === intent.latest_charge)!;
      expect({ fee: txn.fee, net: txn.net }).toEqual({ fee: f.fee_minor, net: f.net_minor });
    }
    expect(await balance(ledger, 'payment_fees')).toBe(250);
    const fee_events = await ledger.query<{
      amount_minor: number;
      attributes: Record<string, unknown>;
      account_id: string;
    }>(
      "SELECT amount_minor, attributes, account_id FROM billing_events WHERE kind = 'payment_fee' ORDER BY id",
    );
    expect(fee_events.map((e) => [e.amount_minor, e.attributes.method, e.account_id])).toEqual([
      [175, 'card', 'pay'],
      [75, 'card', 'pay'],
    ]);

    const payout_id = emulator.pay_out('eur', { arrival_days: 0 });
    emulator.settle_payout(payout_id, 'paid');
    await emulator.deliveries_idle();
    expect((await list_payouts(ledger, {})).map((p) => [p.payout_id, p.status, p.reconciliation])).toEqual([
      [payout_id, 'paid', 'pending'],
    ]);
    const counts = await sweep_payments(ctx);
    expect(counts.payouts_reconciled).toBe(1);
    const payout = (await get_payout(ledger, 'stripe', payout_id))!;
    // 9825 + 3258 - 1250 = 11833
    expect(payout).toMatchObject({
      amount: '118.33',
      status: 'paid',
      reconciliation: 'matched',
      transactions: 3,
      transactions_net: '118.33',
      note: '',
    });
    expect(payout.items!.map((i) => [i.type, i.net, i.match_status]).sort()).toEqual(
      [
        ['charge', '98.25', 'matched'],
        ['charge', '32.58', 'matched'],
        ['payout', '-118.33', 'payout'],
        ['refund', '-12.50', 'matched'],
      ].sort(),
    );
    expect(emulator.payouts.get(payout_id)!.amount).toBe(11_833);
    expect(await balance(ledger, 'bank')).toBe(11_833);
    const [payout_event] = await ledger.query<{ amount_minor: number; attributes: Record<string, unknown> }>(
      "SELECT amount_minor, attributes FROM billing_events WHERE kind = 'payout_paid'",
    );
    expect(payout_event).toMatchObject({ amount_minor: 11_833, attributes: { method: 'card', payout_id } });
    // Cash is what the gateway holds: nothing after the payout.
    expect(emulator.balance('eur')).toBe(0);
    const report = await reconciliation_report(ledger, today);
    expect(report.payouts.map((p) => [p.payout_id, p.reconciliation, p.items])).toEqual([
      [payout_id, 'matched', []],
    ]);
    expect(report.transactions_unmatched).toEqual([]);
    expect(report.provider_fees).toEqual([{ currency: 'EUR', amount: '2.50', amount_minor: 250 }]);
  });

  it('lists a charge the ledger never made as unmatched; a failed payout books nothing and is paid out again', async () => {
    const cash_before = await balance(ledger, 'cash');
    const c = await captured(2_000);
    // Money taken at the gateway outside the ledger (e.g. in its dashboard).
    const stripe = new Stripe(emulator.secret_key, {
      host: '127.0.0.1',
      port: Number(new URL(emulator.api_base).port),
      protocol: 'http',
    });
    await stripe.paymentIntents.create({
      amount: 700,
      currency: 'eur',
      payment_method: 'pm_card_visa',
      confirm: true,
      automatic_payment_methods: { enabled: true, allow_redirects: 'never' },
    });
    const failed = emulator.pay_out('eur', { arrival_days: 0 });
    emulator.settle_payout(failed, 'failed', 'account_closed');
    await emulator.deliveries_idle();
    await sweep_payments(ctx);
    const first = (await get_payout(ledger, 'stripe', failed))!;
    expect(first).toMatchObject({
      status: 'failed',
      failure_code: 'account_closed',
      reconciliation: 'mismatch',
    });
    expect(first.note).toMatch(/unmatched/);
    const [failed_event] = await ledger.query<{ attributes: Record<string, unknown> }>(
      "SELECT attributes FROM billing_events WHERE kind = 'payout_failed'",
    );
    expect(failed_event!.attributes).toMatchObject({ failure_code: 'account_closed', method: 'card' });
    expect(await balance(ledger, 'bank')).toBe(11_833);
    const report = await reconciliation_report(ledger, today);
    const outside = report.transactions_unmatched.filter((t) => t.match_status === 'unmatched');
    expect(outside.map((t) => [t.type, t.amount])).toEqual([['charge', '7.00']]);
    // The failed payout's money comes back and the next payout takes it.
    const again = emulator.pay_out('eur', { arrival_days: 0 });
    emulator.settle_payout(again, 'paid');
    await emulator.deliveries_idle();
    await sweep_payments(ctx);
    const second = (await get_payout(ledger, 'stripe', again))!;
    expect(second.items!.map((i) => i.type).sort()).toEqual(['payout', 'payout_failure']);
    expect(second).toMatchObject({ reconciliation: 'matched', amount_minor: first.amount_minor });
    // 2000 - 55 fee + 700 - 36 fee: the failed payout and the charge outside the ledger.
    expect(first.amount_minor).toBe(2_000 - 55 + 700 - 36);
    expect(await balance(ledger, 'bank')).toBe(11_833 + first.amount_minor);
    // The ledger's cash moved by the capture, both fees and the payout; the outside charge is not in
    // it, which is the mismatch the report lists.
    expect(await balance(ledger, 'cash')).toBe(cash_before + c.captured_minor - 55 - 36 - first.amount_minor);
    expect(emulator.balance('eur')).toBe(0);
  });
});
