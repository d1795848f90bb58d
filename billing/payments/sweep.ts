import type { Logger } from '../../core/log.js';
import { collect_invoice, invoices_to_collect } from './collect.js';
import { invoices_with_excess, settle_invoice_excess } from './credit-notes.js';
import { type PaymentsContext, resume_pending_operations } from './operations.js';
import { record_payment_fees, sync_payouts } from './payouts.js';

/**
 * The payments loop of the billing role, at its own pace: pending provider calls sent again with
 * their keys (after a crash or timeout), paid invoices with a credit note settled (refund or
 * account credit), new invoices of accounts with a saved card charged, provider fees of captured
 * payments recorded and the provider's payouts listed and reconciled. Each pass does at most
 * `batch_max` of each; a pass never overlaps the previous one.
 */
export interface SweepCounts {
  resumed: number;
  still_pending: number;
  settled: number;
  collected: number;
  /** Provider fees recorded (balance transactions of captured charges). */
  fees: number;
  /** Payouts reconciled against their balance transactions. */
  payouts_reconciled: number;
  errors: number;
}

export const sweep_batch_max = 50;

export async function sweep_payments(
  ctx: PaymentsContext,
  log?: Logger,
  batch_max = sweep_batch_max,
): Promise<SweepCounts> {
  const counts: SweepCounts = {
    resumed: 0,
    still_pending: 0,
    settled: 0,
    collected: 0,
    fees: 0,
    payouts_reconciled: 0,
    errors: 0,
  };
  const resumed = await resume_pending_operations(ctx);
  counts.resumed = resumed.resumed;
  counts.still_pending = resumed.still_pending;
  const guarded = async (what: string, work: () => Promise<unknown>) => {
    try {
      await work();
      return true;
    } catch (error) {
      counts.errors++;
      log?.warn({ err: error, what }, 'payments sweep step failed');
      return false;
    }
  };
  for (const id of await invoices_with_excess(ctx.ledger, batch_max)) {
    if (await guarded(`settle invoice ${id}`, () => settle_invoice_excess(ctx, id, 'system:sweep')))
      counts.settled++;
  }
  for (const id of await invoices_to_collect(ctx.ledger, batch_max)) {
    if (await guarded(`collect invoice ${id}`, () => collect_invoice(ctx, id, 'system:sweep')))
      counts.collected++;
  }
  await guarded('record provider fees', async () => {
    counts.fees = await record_payment_fees(ctx, batch_max);
  });
  await guarded('sync payouts', async () => {
    counts.payouts_reconciled = (await sync_payouts(ctx, { limit: batch_max })).reconciled;
  });
  return counts;
}

/** Runs `sweep_payments` every `interval_ms` until `stop()`. */
export function start_payment_sweeps(
  ctx: PaymentsContext,
  interval_ms: number,
  log?: Logger,
): { stop(): Promise<void> } {
  let running: Promise<unknown> = Promise.resolve();
  let stopped = false;
  const timer = setInterval(() => {
    running = running.then(async () => {
      if (stopped) return;
      try {
        await sweep_payments(ctx, log);
      } catch (error) {
        log?.warn({ err: error }, 'payments sweep failed');
      }
    });
  }, interval_ms);
  timer.unref();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
