import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Config } from '../../core/config.js';
import { FieldError } from '../../core/field-error.js';
import { BillUsageError } from '../cli-bill.js';
import { open_ledger } from '../ledger.js';
import { migrate_ledger } from '../migrations.js';
import { collect_invoice } from './collect.js';
import type { PaymentsContext } from './operations.js';
import { capture_payment, refund_payment } from './payments.js';
import { payment_provider_of } from './setup.js';
import { sweep_payments } from './sweep.js';

/**
 * `evrate payments sweep | capture | refund | collect`: one payments operation in this process,
 * against DATABASE_URL or the embedded ledger, with the configured gateway. `sweep` sends every
 * pending provider call again with its key (after a crash), pays out credit notes and charges new
 * invoices of accounts with a saved card. Prints the outcome as JSON.
 */
export class PaymentsUsageError extends BillUsageError {}

const usage =
  'payments sweep | capture --payment ID [--amount-minor N] | refund --payment ID [--amount-minor N] --reason TEXT | collect --invoice ID';

function positive(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[1-9]\d{0,15}$/.test(value))
    throw new PaymentsUsageError(`payments: ${flag} must be a positive integer`);
  return Number(value);
}

export async function payments_command(argv: string[], config: Config): Promise<void> {
  const [action, ...rest] = argv;
  let values: { payment?: string; invoice?: string; 'amount-minor'?: string; reason?: string };
  try {
    ({ values } = parseArgs({
      args: rest,
      options: {
        payment: { type: 'string' },
        invoice: { type: 'string' },
        'amount-minor': { type: 'string' },
        reason: { type: 'string' },
      },
      strict: true,
    }));
  } catch (error) {
    throw new PaymentsUsageError(`payments: ${(error as Error).message}`);
  }
  if (!['sweep', 'capture', 'refund', 'collect'].includes(action ?? '')) throw new PaymentsUsageError(usage);
  const provider = payment_provider_of(config);
  if (provider === undefined)
    throw new PaymentsUsageError('payments: STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET are required');
  const ledger = await open_ledger({
    database_url: config.database_url,
    data_dir: path.join(config.data_dir, 'billing'),
  });
  const ctx: PaymentsContext = { ledger, provider };
  try {
    await migrate_ledger(ledger);
    let result: unknown;
    if (action === 'sweep') result = await sweep_payments(ctx);
    else if (action === 'collect') {
      const invoice = positive(values.invoice, '--invoice');
      if (invoice === undefined) throw new PaymentsUsageError('payments collect: --invoice is required');
      result = await collect_invoice(ctx, invoice, 'cli');
    } else {
      const payment = positive(values.payment, '--payment');
      if (payment === undefined) throw new PaymentsUsageError(`payments ${action}: --payment is required`);
      const amount_minor = positive(values['amount-minor'], '--amount-minor');
      result =
        action === 'capture'
          ? await capture_payment(ctx, payment, { amount_minor, actor: 'cli' })
          : await refund_payment(ctx, payment, { amount_minor, reason: values.reason ?? '', actor: 'cli' });
    }
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } catch (error) {
    if (error instanceof FieldError)
      throw new PaymentsUsageError(`payments ${action}: ${error.field}: ${error.rule}`);
    throw error;
  } finally {
    await ledger.close();
  }
}
