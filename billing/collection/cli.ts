import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import type { Config } from '../../core/config.js';
import { FieldError } from '../../core/field-error.js';
import { create_logger } from '../../core/log.js';
import { connect_nats, type Nats } from '../../core/nats.js';
import { TokenStore } from '../../core/tokens.js';
import { BillUsageError } from '../cli-bill.js';
import { type Ledger, open_ledger } from '../ledger.js';
import { migrate_ledger } from '../migrations.js';
import { apply_bank_file } from './bank-returns.js';
import { collect_billing_run, get_collection_file } from './collect.js';
import type { TokenAccess } from './dunning.js';
import { reconciliation_report } from './reconciliation.js';
import { collection_policy, run_collection_pass } from './schedule.js';

/**
 * The collection commands, in this process against DATABASE_URL or the embedded ledger under
 * DATA_DIR/billing (PGlite is one process at a time: with the embedded ledger, stop the stack or
 * use the API). Token blocks need the token store: with NATS_URL set they are applied here,
 * otherwise the billing process's next collection pass applies them.
 *
 *   evrate sepa-return FILE             apply a pain.002 or camt.054 file; prints what each line matched
 *   evrate sepa-file --run ID [--out F] the pain.008 file of a finished billing run (created once)
 *   evrate dunning [--account ID]...    run the collection pass now (retries, dunning, token blocks)
 *   evrate reconciliation --day DAY     the reconciliation report of a day, as JSON
 */
export const collection_commands = ['sepa-return', 'sepa-file', 'dunning', 'reconciliation'] as const;

export const collection_usage = `  sepa-return FILE   apply a bank file fed back (pain.002 status report or camt.054 notification):
                     returned debits reopen their invoices and start dunning, RF-referenced
                     transfers pay invoices; prints each line and what it matched, as JSON
  sepa-file          the pain.008.001.02 SEPA collection file of a billing run (created once)
              --run ID            a finished billing run (required)
              --out FILE          write the XML there (default: standard output)
  dunning            run the collection pass now: retry files, dunning states, token blocks
              --account ID        only this account (repeatable)
  reconciliation     the reconciliation report of a day as JSON
              --day YYYY-MM-DD    the booking day (required)
`;

/** A mistake in the command line: printed as one line, exit code 2 (like `evrate bill`). */
export class CollectionUsageError extends BillUsageError {}

function args(
  command: string,
  argv: string[],
  options: ParseArgsConfig['options'],
): { values: Record<string, unknown>; positionals: string[] } {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: command === 'sepa-return' });
  } catch (error) {
    throw new CollectionUsageError(`${command}: ${(error as Error).message}`);
  }
}

async function with_ledger<T>(config: Config, work: (ledger: Ledger) => Promise<T>): Promise<T> {
  const ledger = await open_ledger({
    database_url: config.database_url,
    data_dir: path.join(config.data_dir, 'billing'),
  });
  try {
    await migrate_ledger(ledger);
    return await work(ledger);
  } finally {
    await ledger.close();
  }
}

async function with_tokens<T>(
  config: Config,
  work: (tokens: TokenAccess | undefined) => Promise<T>,
): Promise<T> {
  if (config.nats_url === undefined) return await work(undefined);
  let nats: Nats | undefined;
  try {
    nats = await connect_nats(config, config.nats_url, create_logger('warn'));
    return await work(await TokenStore.open(nats));
  } finally {
    await nats?.close();
  }
}

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export async function collection_command(command: string, argv: string[], config: Config): Promise<void> {
  const policy = collection_policy(config);
  try {
    if (command === 'sepa-return') {
      const { positionals } = args(command, argv, {});
      if (positionals.length !== 1) throw new CollectionUsageError('sepa-return: give one FILE');
      const file = positionals[0]!;
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (error) {
        throw new CollectionUsageError(`sepa-return: ${file}: ${(error as NodeJS.ErrnoException).code}`);
      }
      await with_ledger(config, async (ledger) => {
        let applied: Awaited<ReturnType<typeof apply_bank_file>>;
        try {
          applied = await apply_bank_file(ledger, text, policy);
        } catch (error) {
          if (error instanceof FieldError)
            throw new CollectionUsageError(`sepa-return: ${file}: ${error.message}`);
          throw error;
        }
        const pass = await with_tokens(config, (tokens) =>
          applied.dunning_started.length === 0
            ? Promise.resolve(undefined)
            : run_collection_pass(ledger, tokens, policy, Date.now(), applied.dunning_started),
        );
        print({ ...applied, dunning: pass?.transitions ?? [] });
      });
      return;
    }
    if (command === 'sepa-file') {
      const { values } = args(command, argv, { run: { type: 'string' }, out: { type: 'string' } });
      const run = values.run as string | undefined;
      if (run === undefined || !/^[1-9]\d{0,15}$/.test(run)) {
        throw new CollectionUsageError('sepa-file: --run ID (a billing run id) is required');
      }
      await with_ledger(config, async (ledger) => {
        const result = await collect_billing_run(ledger, Number(run));
        if (result.file === undefined) {
          print(result);
          return;
        }
        const xml = (await get_collection_file(ledger, result.file.id))!.xml;
        const out = values.out as string | undefined;
        if (out === undefined) process.stdout.write(xml);
        else {
          writeFileSync(out, xml);
          print(result);
        }
      });
      return;
    }
    if (command === 'dunning') {
      const { values } = args(command, argv, { account: { type: 'string', multiple: true } });
      const accounts = values.account as string[] | undefined;
      await with_ledger(config, async (ledger) =>
        print(
          await with_tokens(config, (tokens) =>
            run_collection_pass(ledger, tokens, policy, Date.now(), accounts),
          ),
        ),
      );
      return;
    }
    if (command === 'reconciliation') {
      const { values } = args(command, argv, { day: { type: 'string' } });
      if (values.day === undefined)
        throw new CollectionUsageError('reconciliation: --day YYYY-MM-DD is required');
      await with_ledger(config, async (ledger) =>
        print(
          await reconciliation_report(ledger, values.day, {
            terminal: { grace_min: config.pay_terminal_grace_min },
          }),
        ),
      );
      return;
    }
  } catch (error) {
    if (error instanceof FieldError)
      throw new CollectionUsageError(`${command}: ${error.field}: ${error.rule}`);
    throw error;
  }
  throw new CollectionUsageError(`unknown collection command ${command}`);
}
