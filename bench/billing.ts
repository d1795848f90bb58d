import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { RatedSessionRow } from '../analytics/sessions.js';
import {
  type Account,
  put_legal_entity,
  validate_account,
  validate_legal_entity,
} from '../billing/accounts.js';
import { minor_of } from '../billing/amounts.js';
import { run_billing } from '../billing/invoices/run.js';
import { type Ledger, open_pglite, open_server, type Queryable } from '../billing/ledger.js';
import { migrate_ledger } from '../billing/migrations.js';
import { record_rated_versions } from '../billing/rated-versions.js';
import { start_test_postgres } from '../test/helpers/postgres.js';

/**
 * Billing at volume: N accounts (every 10th with a membership of a fee, included kWh, volume tiers
 * and loyalty), M final sessions written to the ledger in batches as the rated feed consumer writes
 * them (record_rated_versions), then one billing run of the month. Prints the time of each phase,
 * the billing run's sessions/s and the process's peak RSS.
 *
 *   node dist/bench/billing.js --sessions 1000000 --accounts 100000 --store pglite|server [--url postgres://...]
 *
 * `--store server` starts a private PostgreSQL 15 server in a temp dir (test/helpers/postgres.ts,
 * fsync off) unless `--url` names one. Accounts are validated by validate_account and written with
 * one set-based statement per table per batch (the API's put_account is one transaction per account:
 * 100,000 of them would be the benchmark of the setup, not of the run).
 */
const { values } = parseArgs({
  options: {
    accounts: { type: 'string', default: '100000' },
    sessions: { type: 'string', default: '1000000' },
    store: { type: 'string', default: 'pglite' },
    batch: { type: 'string', default: '5000' },
    url: { type: 'string' },
    chunk: { type: 'string', default: '50' },
    'trace-sql': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write(
    'node dist/bench/billing.js [--sessions 1000000] [--accounts 100000] [--store pglite|server] [--url postgres://...] [--batch 5000] [--chunk 50] [--trace-sql]\n',
  );
  process.exit(0);
}
function positive(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${name}: must be a positive integer`);
  return n;
}
const accounts_n = positive('accounts', values.accounts);
const sessions_n = positive('sessions', values.sessions);
const batch_n = positive('batch', values.batch);
const chunk_n = positive('chunk', values.chunk);
if (values.store !== 'pglite' && values.store !== 'server')
  throw new Error('--store: must be pglite or server');

async function timed<T>(name: string, work: () => Promise<T>): Promise<{ result: T; ms: number }> {
  const start = performance.now();
  const result = await work();
  const ms = performance.now() - start;
  process.stdout.write(`${name}: ${Math.round(ms)} ms\n`);
  return { result, ms };
}

const address = { line1: 'A 1', postal_code: '1000 AA', city: 'Amsterdam', country_code: 'NL' };

function bench_account(a: number): Account {
  return validate_account(`B${a}`, {
    kind: 'driver',
    name: `Driver ${a}`,
    legal_entity_id: 'bench',
    currency: 'EUR',
    address,
    tokens: [`B${a}-T`],
    memberships:
      a % 10 === 0
        ? [
            {
              plan_id: 'plus',
              monthly_fee: '4.99',
              starts_on: '2026-11-11',
              included_energy: { kwh: '20', price_per_kwh: '0.05' },
              volume_tiers: [{ above_kwh: '50', discount_per_kwh: '0.02' }],
              loyalty: { every_nth_session: 5, discount_percent: '50' },
            },
          ]
        : [],
  });
}

/** Validated accounts, a batch per statement and table (bench setup only, see above). */
async function load_accounts(ledger: Ledger, accounts: readonly Account[]): Promise<void> {
  const now_ms = Date.now();
  await ledger.transaction(async (tx) => {
    await tx.query(
      `INSERT INTO accounts (id, kind, name, legal_entity_id, currency, billing_period, payment_terms_days, vat_id,
         email, address, created_at_ms, updated_at_ms)
       SELECT x.id, x.kind, x.name, x.legal_entity_id, x.currency, x.billing_period, x.payment_terms_days, x.vat_id,
         x.email, x.address, $2, $2
       FROM jsonb_to_recordset($1::jsonb) AS x(id text, kind text, name text, legal_entity_id text, currency text,
         billing_period text, payment_terms_days int, vat_id text, email text, address jsonb)`,
      [JSON.stringify(accounts), now_ms],
    );
    await tx.query(
      `INSERT INTO account_tokens (uid, account_id)
       SELECT x.uid, x.account_id FROM jsonb_to_recordset($1::jsonb) AS x(uid text, account_id text)`,
      [JSON.stringify(accounts.flatMap((a) => a.tokens.map((t) => ({ uid: t.uid, account_id: a.id }))))],
    );
    await tx.query(
      `INSERT INTO memberships (account_id, plan_id, currency, monthly_fee_minor, starts_on, benefits)
       SELECT x.account_id, x.plan_id, x.currency, x.monthly_fee_minor, x.starts_on::date, x.benefits
       FROM jsonb_to_recordset($1::jsonb) AS x(account_id text, plan_id text, currency text, monthly_fee_minor int8,
         starts_on text, benefits jsonb)`,
      [
        JSON.stringify(
          accounts.flatMap((a) =>
            a.memberships.map((m) => ({
              account_id: a.id,
              plan_id: m.plan_id,
              currency: m.currency,
              monthly_fee_minor: minor_of(m.monthly_fee, m.currency),
              starts_on: m.starts_on,
              benefits: {
                included_energy: m.included_energy,
                volume_tiers: m.volume_tiers,
                loyalty: m.loyalty,
              },
            })),
          ),
        ),
      ],
    );
  });
}

function session_row(s: number, start_ms: number): RatedSessionRow {
  const excl = (((s * 7919) % 100_000) / 10_000).toFixed(4);
  // Spread over the month (29 days), in no order of s.
  const stopped_at_ms = start_ms + ((s * 2_654_435_761) % 2_505_600) * 1000 + 3_600_000;
  return {
    session_id: `S${s}`,
    version: 1,
    charge_point_id: `CP${s % 1000}`,
    connector_id: 1,
    transaction_id: String(s),
    id_tag: `B${s % accounts_n}-T`,
    started_at_ms: stopped_at_ms - 3_600_000,
    stopped_at_ms,
    meter_start_wh: 0,
    meter_stop_wh: 5000 + (s % 20_000),
    energy_wh: 5000 + (s % 20_000),
    stop_reason: 'Local',
    tariff_id: 'default',
    tariff_version: 1,
    currency: 'EUR',
    total_excl_vat: excl,
    total_incl_vat: excl,
    breakdown: `{"lines":[{"vat_percent":"21","cost_excl_vat":"${excl}"}]}`,
    rated_at_ms: 0,
  };
}

/** `--trace-sql`: time per statement of the billing run (by its first words), to see where the run goes. */
const sql_ms = new Map<string, { n: number; ms: number }>();
function traced(ledger: Ledger): Ledger {
  const time = <T>(text: string, work: () => Promise<T>): Promise<T> => {
    const start = performance.now();
    return work().finally(() => {
      const key = text.replace(/\s+/g, ' ').trim().slice(0, 70);
      const entry = sql_ms.get(key) ?? { n: 0, ms: 0 };
      entry.n += 1;
      entry.ms += performance.now() - start;
      sql_ms.set(key, entry);
    });
  };
  const wrap = (q: Queryable): Queryable => ({
    query: (text, params) => time(text, () => q.query(text, params)),
    exec: (text) => q.exec(text),
  });
  return {
    ...wrap(ledger),
    kind: ledger.kind,
    transaction: (work) => ledger.transaction((tx) => work(wrap(tx))),
    close: () => ledger.close(),
  };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'evrate-bench-billing-'));
  const server =
    values.store === 'server' && values.url === undefined ? await start_test_postgres() : undefined;
  const url = values.url ?? server?.url;
  const { result: ledger } = await timed(`open ${values.store}`, async () =>
    values.store === 'pglite' ? await open_pglite(dir) : open_server(url!, { connections_max: 4 }),
  );
  try {
    await timed('migrate', () => migrate_ledger(ledger));
    await put_legal_entity(
      ledger,
      validate_legal_entity('bench', {
        name: 'Bench B.V.',
        vat_id: 'NL000000000B01',
        address,
        country_code: 'NL',
        time_zone: 'UTC',
        fee_vat_percent: '21',
      }),
    );
    await timed(`${accounts_n} accounts`, async () => {
      for (let first = 0; first < accounts_n; first += 10_000) {
        const accounts: Account[] = [];
        for (let a = first; a < Math.min(accounts_n, first + 10_000); a++) accounts.push(bench_account(a));
        await load_accounts(ledger, accounts);
      }
    });
    const start_ms = Date.parse('2026-11-01T00:00:00Z');
    await timed(`${sessions_n} sessions recorded (batches of ${batch_n})`, async () => {
      for (let first = 0; first < sessions_n; first += batch_n) {
        const rows: RatedSessionRow[] = [];
        for (let s = first; s < Math.min(sessions_n, first + batch_n); s++)
          rows.push(session_row(s, start_ms));
        await record_rated_versions(ledger, rows, Date.parse('2026-12-01T00:00:00Z'));
      }
    });
    const rss_before_run = process.memoryUsage().rss;
    const { result: run, ms } = await timed('billing run', () =>
      run_billing(
        values['trace-sql'] ? traced(ledger) : ledger,
        { period: '2026-11' },
        { now_ms: () => Date.parse('2026-12-02T00:00:00Z'), accounts_per_transaction: chunk_n },
      ),
    );
    const [lines] = await ledger.query<{ sessions: number; discounts: number; invoices: number }>(
      `SELECT count(*) FILTER (WHERE kind = 'session')::int8 AS sessions, count(*) FILTER (WHERE kind = 'discount')::int8 AS discounts,
         count(DISTINCT invoice_id)::int8 AS invoices FROM invoice_lines`,
    );
    if (lines!.sessions !== sessions_n || run.invoices_created !== accounts_n) {
      throw new Error(
        `billed ${lines!.sessions} of ${sessions_n} sessions, ${run.invoices_created} of ${accounts_n} invoices`,
      );
    }
    const figures = {
      store: values.store,
      accounts: accounts_n,
      sessions: sessions_n,
      run_ms: Math.round(ms),
      sessions_per_s: Math.round(sessions_n / (ms / 1000)),
      invoices: run.invoices_created,
      discount_lines: lines!.discounts,
      rss_mb_before_run: Math.round(rss_before_run / 1048576),
      // Peak resident set of this process (PGlite's WASM heap included; a server's memory is not).
      rss_mb_peak: Math.round(process.resourceUsage().maxRSS / 1024),
      loadavg: loadavg()
        .map((l) => l.toFixed(2))
        .join(' '),
    };
    process.stdout.write(`${JSON.stringify(figures)}\n`);
    for (const [key, { n, ms }] of [...sql_ms.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, 15)) {
      process.stdout.write(`${String(Math.round(ms)).padStart(8)} ms ${String(n).padStart(6)} x ${key}\n`);
    }
  } finally {
    await ledger.close();
    await server?.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
