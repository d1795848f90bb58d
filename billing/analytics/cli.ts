import path from 'node:path';
import { parseArgs } from 'node:util';
import { migrate } from '../../analytics/migrations.js';
import { open_store } from '../../analytics/open.js';
import type { Config } from '../../core/config.js';
import { parse_deadline_rules } from '../disputes/workflow.js';
import { open_ledger } from '../ledger.js';
import { migrate_ledger } from '../migrations.js';
import { ship_batch_max_default, ship_billing_events } from './shipper.js';

export const billing_events_usage = `  billing-events ship   ship the ledger's billing events to ClickHouse once, exactly once, and
                        print what was shipped as JSON (DATABASE_URL or DATA_DIR/billing; CLICKHOUSE_URL
                        or the embedded engine under DATA_DIR; safe beside the running billing process)
              --batch-max N       events per ClickHouse insert (default ${ship_batch_max_default})
              --progress          a line on stderr after each batch
`;

export class BillingEventsUsageError extends Error {}

export async function billing_events_command(argv: string[], config: Config): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub !== 'ship')
    throw new BillingEventsUsageError(
      `billing-events: unknown subcommand ${JSON.stringify(sub ?? '')}; try ship`,
    );
  let values: { 'batch-max'?: string; progress?: boolean };
  try {
    ({ values } = parseArgs({
      args: rest,
      options: { 'batch-max': { type: 'string' }, progress: { type: 'boolean' } },
      strict: true,
    }));
  } catch (error) {
    throw new BillingEventsUsageError(`billing-events ship: ${(error as Error).message}`);
  }
  const batch_text = values['batch-max'];
  if (
    batch_text !== undefined &&
    !(/^\d{1,5}$/.test(batch_text) && Number(batch_text) >= 1 && Number(batch_text) <= 10_000)
  )
    throw new BillingEventsUsageError(
      'billing-events ship: --batch-max must be a whole number from 1 to 10000',
    );
  const ledger = await open_ledger({
    database_url: config.database_url,
    data_dir: path.join(config.data_dir, 'billing'),
  });
  try {
    await migrate_ledger(ledger);
    const store = await open_store(config);
    try {
      await migrate(store, { raw_retention_days: config.analytics_raw_retention_days });
      const result = await ship_billing_events(ledger, store, {
        batch_max: batch_text === undefined ? ship_batch_max_default : Number(batch_text),
        deadline_rules: parse_deadline_rules(config.dispute_deadline_working_days),
        ...(values.progress === true
          ? {
              on_batch: (n: number, cursor: { xid: number; id: number }) =>
                process.stderr.write(
                  `billing-events: shipped ${n} up to xid ${cursor.xid} id ${cursor.id}\n`,
                ),
            }
          : {}),
      });
      process.stdout.write(`${JSON.stringify(result)}\n`);
    } finally {
      await store.close();
    }
  } finally {
    await ledger.close();
  }
}
