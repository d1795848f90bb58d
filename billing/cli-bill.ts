import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Config } from '../core/config.js';
import { FieldError } from '../core/field-error.js';
import { run_billing } from './invoices/run.js';
import { open_ledger } from './ledger.js';
import { migrate_ledger } from './migrations.js';

/**
 * `evrate bill --period YYYY-MM [--account ID]... [--draft] [--lease-ms N] [--progress]`: a billing run in this process,
 * against DATABASE_URL or the embedded ledger under DATA_DIR/billing (PGlite is one process at a
 * time: with the embedded ledger, stop the stack or use POST /v1/billing/runs). Prints the run's
 * status as JSON. Safe to run again, or beside another run: see invoices/run.ts. `--lease-ms`: how
 * long after its last renewal a run of a killed process shows as stale and may be taken over;
 * `--progress`: a line on stderr after each committed chunk of accounts.
 */
export class BillUsageError extends Error {}

/** After each committed chunk: `billing: <accounts> accounts done` on stderr (closed now or before). */
function progress_line(): (account_ids: string[]) => Promise<void> {
  let accounts = 0;
  return async (account_ids) => {
    accounts += account_ids.length;
    process.stderr.write(`billing: ${accounts} accounts done\n`);
  };
}

export async function bill_command(argv: string[], config: Config): Promise<void> {
  let values: {
    period?: string;
    account?: string[];
    draft?: boolean;
    'lease-ms'?: string;
    progress?: boolean;
  };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        period: { type: 'string' },
        account: { type: 'string', multiple: true },
        draft: { type: 'boolean' },
        'lease-ms': { type: 'string' },
        progress: { type: 'boolean' },
      },
      strict: true,
    }));
  } catch (error) {
    throw new BillUsageError(`bill: ${(error as Error).message}`);
  }
  if (values.period === undefined) throw new BillUsageError('bill: --period YYYY-MM is required');
  const lease_text = values['lease-ms'];
  if (lease_text !== undefined && !/^\d{1,8}$/.test(lease_text))
    throw new BillUsageError('bill: --lease-ms must be a whole number of milliseconds');
  const ledger = await open_ledger({
    database_url: config.database_url,
    data_dir: path.join(config.data_dir, 'billing'),
  });
  try {
    await migrate_ledger(ledger);
    const status = await run_billing(
      ledger,
      {
        period: values.period,
        ...(values.account === undefined ? {} : { account_ids: values.account }),
        issue: values.draft !== true,
      },
      {
        ...(lease_text === undefined ? {} : { lease_ms: Number(lease_text) }),
        ...(values.progress === true ? { on_chunk: progress_line() } : {}),
      },
    );
    process.stdout.write(`${JSON.stringify(status, null, 2)}\n`);
  } catch (error) {
    if (error instanceof FieldError)
      throw new BillUsageError(
        `bill: ${error.field === 'period' ? '--period' : error.field === 'lease_ms' ? '--lease-ms' : error.field}: ${error.rule}`,
      );
    throw error;
  } finally {
    await ledger.close();
  }
}
