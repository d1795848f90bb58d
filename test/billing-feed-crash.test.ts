import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ledger } from '../billing/ledger.js';
import { publish_rated_versions } from '../core/rated-feed.js';
import { open_test_ledger, rated_row } from './helpers/billing.js';
import { start_test_nats } from './helpers/nats.js';
import { start_evrate } from './helpers/process.js';
import { eventually } from './helpers/stack.js';

/**
 * A billing process (`evrate start` with ROLES=billing) killed with SIGKILL while it writes the
 * rated feed into the ledger, then started again: every version is in the ledger exactly once.
 */
const versions_n = 20_000;

describe('the rated feed consumer killed mid-feed', () => {
  let nats: Awaited<ReturnType<typeof start_test_nats>>;
  let ledger: Ledger;
  let url: string;
  let dispose: () => Promise<void>;
  const dir = mkdtempSync(path.join(tmpdir(), 'evrate-feed-crash-'));

  beforeAll(async () => {
    nats = await start_test_nats();
    const opened = await open_test_ledger('server');
    ledger = opened.ledger;
    url = opened.url!;
    dispose = opened.dispose;
  });

  afterAll(async () => {
    await dispose?.();
    await nats?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  async function count(sql: string): Promise<number> {
    const [row] = await ledger.query<{ n: number }>(sql);
    return row!.n;
  }

  it('loses no version and writes none twice', async () => {
    // Two versions per session: a provisional one, then the final one.
    const rows = [];
    for (let i = 0; i < versions_n / 2; i++) {
      const base = {
        session_id: `S${i}`,
        id_tag: `T${i % 50}`,
        stopped_at_ms: Date.parse('2026-11-05T10:00:00Z') + i * 1000,
      };
      rows.push(rated_row({ ...base, version: 1, provisional: 1, total_excl_vat: '1.00' }));
      rows.push(rated_row({ ...base, version: 2, total_excl_vat: '2.00' }));
    }
    await publish_rated_versions(nats.nats, rows);
    const env = {
      ROLES: 'billing',
      NATS_URL: nats.url,
      DATABASE_URL: url,
      DATA_DIR: dir,
      BILLING_FEED_BATCH_MAX: '500',
      LOG_LEVEL: 'warn',
    };
    const first = await start_evrate(env);
    await eventually(async () =>
      (await count('SELECT count(*)::int8 AS n FROM session_versions')) >= 2000 ? true : undefined,
    );
    await first.kill('SIGKILL');
    const after_kill = await count('SELECT count(*)::int8 AS n FROM session_versions');
    expect(after_kill).toBeLessThan(versions_n);
    const second = await start_evrate(env);
    try {
      await eventually(
        async () =>
          (await count('SELECT count(*)::int8 AS n FROM session_versions')) === versions_n ? true : undefined,
        150_000,
      ).catch(async (error) => {
        throw new Error(
          `${(error as Error).message} (${await count('SELECT count(*)::int8 AS n FROM session_versions')} of ${versions_n} versions); the billing process printed:\n${second.output().slice(-3000)}`,
        );
      });
      // Redelivered batches (those unacknowledged at the kill) added nothing: still exactly N.
      await new Promise((r) => setTimeout(r, 1500));
      expect(await count('SELECT count(*)::int8 AS n FROM session_versions')).toBe(versions_n);
      expect(await count('SELECT count(*)::int8 AS n FROM sessions WHERE final_version = 2')).toBe(
        versions_n / 2,
      );
    } finally {
      await second.kill('SIGTERM');
    }
    // The rest of the feed after the kill (about 18,000 versions, each batch also checked for
    // per-session invoices) takes about a minute on a busy two-core machine.
  }, 240_000);
});
