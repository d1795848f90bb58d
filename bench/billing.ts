import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { RatedSessionRow } from '../analytics/sessions.js';
import {
  put_account,
  put_legal_entity,
  validate_account,
  validate_legal_entity,
} from '../billing/accounts.js';
import { run_billing } from '../billing/invoices/run.js';
import { type Ledger, open_pglite, open_server } from '../billing/ledger.js';
import { migrate_ledger } from '../billing/migrations.js';
import { record_rated_versions } from '../billing/rated-versions.js';

/**
 * Billing at volume: N accounts, M final sessions written to the ledger in batches (as the rated
 * feed consumer writes them), then one billing run. `--url` runs it on a PostgreSQL server, else
 * on PGlite in a temp dir. Prints the time of each phase.
 *   node dist/bench/billing.js --accounts 100000 --sessions 1000000 [--url postgres://...]
 */
const { values } = parseArgs({
  options: {
    accounts: { type: 'string', default: '100000' },
    sessions: { type: 'string', default: '1000000' },
    batch: { type: 'string', default: '5000' },
    url: { type: 'string' },
  },
});
const accounts_n = Number(values.accounts);
const sessions_n = Number(values.sessions);
const batch_n = Number(values.batch);

async function timed<T>(name: string, work: () => Promise<T>): Promise<T> {
  const start = performance.now();
  const result = await work();
  process.stdout.write(`${name}: ${Math.round(performance.now() - start)} ms\n`);
  return result;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'evrate-bench-billing-'));
  const ledger: Ledger = await timed('open', async () =>
    values.url === undefined ? await open_pglite(dir) : open_server(values.url, { connections_max: 4 }),
  );
  try {
    await timed('migrate', () => migrate_ledger(ledger));
    await put_legal_entity(
      ledger,
      validate_legal_entity('bench', {
        name: 'Bench B.V.',
        vat_id: 'NL000000000B01',
        address: { line1: 'A 1', postal_code: '1000 AA', city: 'Amsterdam', country_code: 'NL' },
        country_code: 'NL',
        time_zone: 'UTC',
        fee_vat_percent: '21',
      }),
    );
    await timed(`${accounts_n} accounts`, async () => {
      for (let a = 0; a < accounts_n; a++) {
        await put_account(
          ledger,
          validate_account(`B${a}`, {
            kind: 'driver',
            name: `Driver ${a}`,
            legal_entity_id: 'bench',
            currency: 'EUR',
            address: { line1: 'A 1', postal_code: '1000 AA', city: 'Amsterdam', country_code: 'NL' },
            tokens: [`B${a}-T`],
          }),
        );
      }
    });
    const start_ms = Date.parse('2026-11-01T00:00:00Z');
    await timed(`${sessions_n} sessions`, async () => {
      for (let first = 0; first < sessions_n; first += batch_n) {
        const rows: RatedSessionRow[] = [];
        for (let s = first; s < Math.min(sessions_n, first + batch_n); s++) {
          const excl = ((s * 7919) % 100_000) / 10_000;
          rows.push({
            session_id: `S${s}`,
            version: 1,
            charge_point_id: `CP${s % 1000}`,
            connector_id: 1,
            transaction_id: String(s),
            id_tag: `B${s % accounts_n}-T`,
            started_at_ms: start_ms + (s % 2_000_000) * 1000,
            stopped_at_ms: start_ms + (s % 2_000_000) * 1000 + 3_600_000,
            meter_start_wh: 0,
            meter_stop_wh: 10_000,
            energy_wh: 10_000,
            stop_reason: 'Local',
            tariff_id: 'default',
            tariff_version: 1,
            currency: 'EUR',
            total_excl_vat: String(excl),
            total_incl_vat: String(excl),
            breakdown: '{"lines":[{"vat_percent":"21","cost_excl_vat":"1"}]}',
            rated_at_ms: 0,
          });
        }
        await record_rated_versions(ledger, rows);
      }
    });
    const run = await timed('billing run', () =>
      run_billing(ledger, { period: '2026-11' }, { now_ms: () => Date.parse('2026-12-02T00:00:00Z') }),
    );
    process.stdout.write(`${JSON.stringify(run)}\n`);
  } finally {
    await ledger.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
