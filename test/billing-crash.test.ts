import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Decimal } from 'decimal.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  put_account,
  put_legal_entity,
  validate_account,
  validate_legal_entity,
} from '../billing/accounts.js';
import { list_billing_runs, run_billing } from '../billing/invoices/run.js';
import { type Ledger, open_pglite } from '../billing/ledger.js';
import { record_rated_versions } from '../billing/rated-versions.js';
import { ledger_backends, open_test_ledger, rated_row, test_legal_entity } from './helpers/billing.js';
import { run_cli } from './helpers/process.js';

/**
 * Billing runs in child processes (`evrate bill`, the built CLI): killed with SIGKILL at random
 * points and run again, and two at once from two processes. Whatever happens, each account gets
 * one invoice per period, numbers run 1..N without a gap or a duplicate, no session is on two
 * lines, and every total is what an independent computation here says.
 */
const accounts_n = 120;
const sessions_per_account = 30;

/** Accounts a `bill --progress` process reported done so far. */
function done(output: string): number {
  const lines = [...output.matchAll(/billing: (\d+) accounts done/g)];
  return lines.length === 0 ? 0 : Number(lines[lines.length - 1]![1]);
}

/** A killed run's lease: after it, the run shows as stale and the next run takes it over. */
const lease_ms = 1000;

function bill(env: Record<string, string>, period: string, extra: string[] = []) {
  return run_cli(['bill', '--period', period, ...extra], env);
}

function half_up_cents(d: Decimal): Decimal {
  return d.toDecimalPlaces(2, Decimal.ROUND_HALF_UP);
}

/** Seeds the sessions of one month; returns each account's expected invoice total. */
async function seed_month(ledger: Ledger, month: string, seed: number): Promise<Map<string, string>> {
  const expected = new Map<string, string>();
  const rows = [];
  for (let a = 0; a < accounts_n; a++) {
    let net = new Decimal(0);
    for (let s = 0; s < sessions_per_account; s++) {
      // Deterministic totals with three decimals: 0.000 to 49.999.
      const excl = new Decimal(((a * 7919 + s * 104_729 + seed) % 50_000) / 1000);
      net = net.add(half_up_cents(excl));
      rows.push(
        rated_row({
          session_id: `${month}-A${a}-S${s}`,
          id_tag: `A${a}-T`,
          stopped_at_ms: Date.parse(`${month}-10T10:00:00Z`) + s * 60_000,
          total_excl_vat: excl.toString(),
        }),
      );
    }
    expected.set(`A${a}`, net.add(half_up_cents(net.mul('0.21'))).toFixed(2));
  }
  await record_rated_versions(ledger, rows);
  return expected;
}

async function seed_accounts(ledger: Ledger): Promise<void> {
  await put_legal_entity(ledger, validate_legal_entity('nl', { ...test_legal_entity, time_zone: 'UTC' }));
  for (let a = 0; a < accounts_n; a++) {
    await put_account(
      ledger,
      validate_account(`A${a}`, {
        kind: 'driver',
        name: `Driver ${a}`,
        legal_entity_id: 'nl',
        currency: 'EUR',
        address: { line1: 'Weg 1', postal_code: '1000 AA', city: 'Amsterdam', country_code: 'NL' },
        tokens: [`A${a}-T`],
      }),
    );
  }
}

async function check_period(
  ledger: Ledger,
  period: string,
  expected: Map<string, string>,
  first_number: number,
) {
  const invoices = await ledger.query<{ account_id: string; number: number; total_minor: number }>(
    `SELECT account_id, number, total_minor FROM invoices WHERE kind = 'invoice' AND period = $1 ORDER BY number`,
    [period],
  );
  expect(invoices).toHaveLength(accounts_n);
  expect(invoices.map((i) => i.number)).toEqual(
    Array.from({ length: accounts_n }, (_, i) => first_number + i),
  );
  expect(new Set(invoices.map((i) => i.account_id)).size).toBe(accounts_n);
  const wrong = invoices.filter(
    (i) => new Decimal(i.total_minor).div(100).toFixed(2) !== expected.get(i.account_id),
  );
  expect(wrong).toEqual([]);
  const [lines] = await ledger.query<{ n: number; distinct_sessions: number }>(
    `SELECT count(*)::int8 AS n, count(DISTINCT l.session_id)::int8 AS distinct_sessions
     FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id WHERE i.period = $1`,
    [period],
  );
  expect(lines).toEqual({
    n: accounts_n * sessions_per_account,
    distinct_sessions: accounts_n * sessions_per_account,
  });
  const [entries] = await ledger.query<{ n: number }>(
    `SELECT count(*)::int8 AS n FROM journal_entries e JOIN invoices i ON e.source_id = i.id::text
     WHERE e.kind = 'invoice_issued' AND i.period = $1`,
    [period],
  );
  expect(entries!.n).toBe(accounts_n);
  const unbalanced = await ledger.query(
    'SELECT entry_id FROM journal_lines GROUP BY entry_id HAVING sum(debit_minor) <> sum(credit_minor)',
  );
  expect(unbalanced).toEqual([]);
}

/**
 * The runs of killed processes: `stale` (still stored as running, lease out) before the next run,
 * and after it each one `abandoned` and resumed by a later run, as GET /v1/billing/runs lists them.
 */
async function killed_runs(ledger: Ledger, period: string, after_id: number) {
  const runs = await list_billing_runs(ledger, 1000);
  return runs.filter((r) => r.period === period && r.id > after_id).sort((a, b) => a.id - b.id);
}

async function check_killed_runs_resumed(ledger: Ledger, period: string, after_id: number, final_id: number) {
  const runs = await killed_runs(ledger, period, after_id);
  expect(runs[runs.length - 1]!.id).toBe(final_id);
  for (const run of runs.slice(0, -1)) {
    // A killed process may have finished just before its kill; otherwise it was taken over.
    if (run.status === 'finished') continue;
    expect(run.status).toBe('abandoned');
    expect(run.resumed_by_run_id).toBeGreaterThan(run.id);
  }
  expect(runs.filter((r) => r.status === 'abandoned').length).toBeGreaterThan(0);
}

describe('billing runs killed and racing, on the server', () => {
  let ledger: Ledger;
  let url: string;
  let dispose: () => Promise<void>;
  const dir = mkdtempSync(path.join(tmpdir(), 'evrate-bill-'));

  beforeAll(async () => {
    const opened = await open_test_ledger('server');
    ledger = opened.ledger;
    url = opened.url!;
    dispose = opened.dispose;
    await seed_accounts(ledger);
  });

  afterAll(async () => {
    await dispose?.();
    rmSync(dir, { recursive: true, force: true });
  });

  it('two runs of one period in two processes at once invoice each account once', async () => {
    const expected = await seed_month(ledger, '2026-10', 1);
    const env = { DATABASE_URL: url, DATA_DIR: dir };
    const first = bill(env, '2026-10');
    const second = bill(env, '2026-10');
    expect([await first.exited, await second.exited]).toEqual([0, 0]);
    const created = await ledger.query<{ n: number }>(
      `SELECT sum(invoices_created)::int8 AS n FROM billing_runs WHERE period = '2026-10'`,
    );
    expect(created[0]!.n).toBe(accounts_n);
    await check_period(ledger, '2026-10', expected, 1);
  });

  it('a run killed with SIGKILL at random points, then run again, gives the same invoices', async () => {
    const expected = await seed_month(ledger, '2026-11', 2);
    const env = { DATABASE_URL: url, DATA_DIR: dir };
    const kills: number[] = [];
    const [first_run] = await ledger.query<{ id: number }>(
      'SELECT coalesce(max(id), 0)::int8 AS id FROM billing_runs',
    );
    // Kill points: before the first chunk commits, after one, after two, and one at random.
    const targets = [1, 50, 100, Math.floor(Math.random() * accounts_n)];
    for (const target of targets) {
      const [last] = await ledger.query<{ id: number }>(
        'SELECT coalesce(max(id), 0)::int8 AS id FROM billing_runs',
      );
      const run = bill(env, '2026-11', ['--lease-ms', String(lease_ms)]);
      for (;;) {
        // This attempt's own run row.
        const [row] = await ledger.query<{ done: number }>(
          `SELECT coalesce(max(accounts_done), -1)::int8 AS done FROM billing_runs WHERE id > $1`,
          [last!.id],
        );
        if (row!.done >= target || (row!.done >= 0 && target <= 1) || run.child.exitCode !== null) break;
        await new Promise((r) => setTimeout(r, 2));
      }
      run.child.kill('SIGKILL');
      await run.exited;
      const [closed] = await ledger.query<{ n: number }>(
        `SELECT count(*)::int8 AS n FROM period_closures WHERE period = '2026-11'`,
      );
      kills.push(closed!.n);
    }
    // At least one kill fell in the middle of the run.
    expect(kills.some((n) => n > 0 && n < accounts_n)).toBe(true);
    // Whatever each kill left, the closures and invoices match one to one.
    const [pairs] = await ledger.query<{ closures: number; invoices: number }>(
      `SELECT (SELECT count(*) FROM period_closures WHERE period = '2026-11')::int8 AS closures,
         (SELECT count(*) FROM invoices WHERE period = '2026-11')::int8 AS invoices`,
    );
    expect(pairs!.closures).toBe(pairs!.invoices);
    // Once the last killed run's lease has run out it shows as stale, none as running.
    await new Promise((r) => setTimeout(r, lease_ms + 200));
    const before = await killed_runs(ledger, '2026-11', first_run!.id);
    expect(before.map((r) => r.status).filter((s) => s === 'running')).toEqual([]);
    expect(before[before.length - 1]!.status).toMatch(/^(stale|finished)$/);
    const final = await run_billing(ledger, { period: '2026-11' });
    expect(final.status).toBe('finished');
    expect(final.invoices_created).toBe(accounts_n - kills[kills.length - 1]!);
    await check_period(ledger, '2026-11', expected, accounts_n + 1);
    await check_killed_runs_resumed(ledger, '2026-11', first_run!.id, final.id);
  });
});

describe('billing runs killed with SIGKILL on pglite', () => {
  it('leave a ledger that the next run completes with the same invoices, without a gap', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'evrate-bill-pglite-'));
    try {
      // The CLI's embedded ledger lives in DATA_DIR/billing; this process closes it before a child opens it.
      const data_dir = path.join(dir, 'billing');
      let ledger = await open_pglite(data_dir);
      const { migrate_ledger } = await import('../billing/migrations.js');
      await migrate_ledger(ledger);
      await seed_accounts(ledger);
      const expected = await seed_month(ledger, '2026-11', 3);
      await ledger.close();
      // Kill points: during PGlite's open (at random, before the run commits a chunk), after the
      // first committed chunk, and after a random number of accounts.
      const targets = [0, 1, 1 + Math.floor(Math.random() * (accounts_n - 51))];
      const mid_run_kills: number[] = [];
      for (const target of targets) {
        const run = bill({ DATA_DIR: dir }, '2026-11', ['--lease-ms', String(lease_ms), '--progress']);
        if (target === 0) {
          await new Promise((r) => setTimeout(r, 500 + Math.random() * 1500));
        } else {
          for (;;) {
            if (done(run.output()) >= target || run.child.exitCode !== null) break;
            await new Promise((r) => setTimeout(r, 2));
          }
        }
        run.child.kill('SIGKILL');
        const code = await run.exited;
        if (code === null && done(run.output()) > 0 && done(run.output()) < accounts_n)
          mid_run_kills.push(done(run.output()));
      }
      // At least one process died in the middle of the run, after committing some chunks.
      expect(mid_run_kills.length).toBeGreaterThan(0);
      await new Promise((r) => setTimeout(r, lease_ms + 200));
      ledger = await open_pglite(data_dir);
      try {
        const [pairs] = await ledger.query<{ closures: number; invoices: number }>(
          `SELECT (SELECT count(*) FROM period_closures WHERE period = '2026-11')::int8 AS closures,
             (SELECT count(*) FROM invoices WHERE period = '2026-11')::int8 AS invoices`,
        );
        expect(pairs!.closures).toBe(pairs!.invoices);
        expect(pairs!.closures).toBeGreaterThan(0);
        const before = await killed_runs(ledger, '2026-11', 0);
        expect(before.map((r) => r.status).filter((s) => s === 'running')).toEqual([]);
        const final = await run_billing(ledger, { period: '2026-11' });
        expect(final.status).toBe('finished');
        await check_period(ledger, '2026-11', expected, 1);
        const runs = await killed_runs(ledger, '2026-11', 0);
        expect(runs[runs.length - 1]!.id).toBe(final.id);
        // Every killed run that had started is abandoned and resumed.
        expect(runs.length).toBeGreaterThan(1);
        for (const r of runs.slice(0, -1)) {
          expect(r.status).toMatch(/^(abandoned|finished)$/);
          if (r.status === 'abandoned') expect(r.resumed_by_run_id).toBeGreaterThan(r.id);
        }
      } finally {
        await ledger.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// Both backends are exercised here: the server by processes racing and dying, PGlite by processes dying.
void ledger_backends;
