import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open_chdb_store } from '../analytics/chdb-store.js';
import { open_http_store } from '../analytics/http-store.js';
import { migrate } from '../analytics/migrations.js';
import type { Store } from '../analytics/store.js';
import { ship_billing_events, start_billing_event_shipper } from '../billing/analytics/shipper.js';
import { type BillingEvent, record_billing_events } from '../billing/events.js';
import { type Ledger, open_pglite, open_server } from '../billing/ledger.js';
import { migrate_ledger } from '../billing/migrations.js';
import { create_logger } from '../core/log.js';
import { type PrivateClickHouse, start_clickhouse_server } from './helpers/clickhouse-server.js';
import { start_test_postgres } from './helpers/postgres.js';
import { run_cli } from './helpers/process.js';
import { eventually, start_test_stack } from './helpers/stack.js';

/**
 * The ledger's outbox shipped to ClickHouse exactly once: counted WITHOUT FINAL (the table is a
 * plain MergeTree, a second copy would show), compared event by event with the ledger, across
 * SIGKILLs of the shipper process (`evrate billing-events ship`, the built CLI) at random points
 * and with writers that commit out of order. On PGlite + chdb (both embedded, so the shipper
 * process owns them while it runs) and on a PostgreSQL 15 server + ClickHouse 18.16 server.
 */

function events_of(writer: string, n: number, at_ms: number): BillingEvent[] {
  return Array.from({ length: n }, (_, i) => ({
    kind: i % 3 === 0 ? 'payment_received' : i % 3 === 1 ? 'collection_attempted' : 'payment_failed',
    occurred_at_ms: at_ms + i,
    account_id: `acct-${writer}`,
    amount_minor: 100 + i,
    currency: 'EUR',
    attributes: { method: 'card', attempt: 1 + (i % 2), writer, n: i },
  }));
}

async function ledger_ids(ledger: Ledger): Promise<number[]> {
  return (await ledger.query<{ id: number }>('SELECT id FROM billing_events ORDER BY id')).map((r) => r.id);
}

async function store_ids(store: Store): Promise<{ rows: number; ids: number[] }> {
  const [c] = await store.query<{ n: string | number }>('SELECT count() AS n FROM evrate.billing_events');
  const ids = (
    await store.query<{ id: string | number }>('SELECT id FROM evrate.billing_events ORDER BY id')
  ).map((r) => Number(r.id));
  return { rows: Number(c?.n ?? 0), ids };
}

function ship_process(env: Record<string, string>, batch_max: number) {
  return run_cli(['billing-events', 'ship', '--batch-max', String(batch_max), '--progress'], env);
}

/**
 * Kills the shipper at a random point of its shipment: after its first committed batch (its
 * start-up, the same every time, is not where the interesting crashes are) plus 0 to `spread_ms`.
 * Returns whether it was killed (false: it finished first).
 */
async function kill_while_shipping(
  shipper: ReturnType<typeof ship_process>,
  spread_ms: number,
): Promise<boolean> {
  const deadline = Date.now() + 90_000;
  while (
    !/billing-events: shipped/.test(shipper.output()) &&
    shipper.child.exitCode === null &&
    Date.now() < deadline
  )
    await new Promise((r) => setTimeout(r, 5));
  await new Promise((r) => setTimeout(r, Math.floor(Math.random() * spread_ms)));
  if (shipper.child.exitCode !== null) return false;
  shipper.child.kill('SIGKILL');
  await shipper.exited;
  return true;
}

/** A transaction that writes its events, then stays open until `release` is called. */
function long_writer(ledger: Ledger, events: BillingEvent[]) {
  let release!: () => void;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  let wrote!: () => void;
  const written = new Promise<void>((r) => {
    wrote = r;
  });
  const done = ledger.transaction(async (tx) => {
    await record_billing_events(tx, events);
    wrote();
    await gate;
  });
  return { written, release, done };
}

describe('billing events shipped exactly once: PostgreSQL server and ClickHouse 18.16 server', () => {
  let pg: { url: string; dispose(): Promise<void> };
  let ch: PrivateClickHouse;
  let ledger: Ledger;
  let store: Store;
  beforeAll(async () => {
    pg = await start_test_postgres();
    ch = await start_clickhouse_server();
    ledger = open_server(pg.url, { connections_max: 8 });
    await migrate_ledger(ledger);
    store = await open_http_store({ url: ch.url, user: 'default', password: '', database: 'evrate' });
    await migrate(store);
  }, 120_000);
  afterAll(async () => {
    await store?.close();
    await ledger?.close();
    await ch?.dispose();
    await pg?.dispose();
  });

  it('a long transaction that wrote first and commits last is shipped, once, after it commits', async () => {
    const long = long_writer(ledger, events_of('long', 3, 1_000));
    await long.written;
    // The short writer takes later ids and commits first: an id cursor would pass the long one's rows.
    await ledger.transaction(async (tx) => record_billing_events(tx, events_of('short', 4, 2_000)));
    const before = await ship_billing_events(ledger, store);
    expect(before.shipped).toBe(0); // the long transaction holds the horizon
    // A transaction that began before the short one but writes after it commits gets a later xid.
    const late = ledger.transaction(async (tx) => {
      await tx.query('SELECT count(*) FROM billing_events');
      await new Promise((r) => setTimeout(r, 50));
      await record_billing_events(tx, events_of('late', 2, 3_000));
    });
    long.release();
    await long.done;
    await late;
    await ship_billing_events(ledger, store);
    await ship_billing_events(ledger, store);
    const shipped = await store_ids(store);
    expect(shipped.rows).toBe(9);
    expect(shipped.ids).toEqual(await ledger_ids(ledger));
  });

  it("the billing process's loop ships what commits while it runs, and stops after its pass", async () => {
    const shipper = start_billing_event_shipper(ledger, store, 50, create_logger('silent'), { batch_max: 4 });
    try {
      for (let i = 0; i < 5; i++)
        await ledger.transaction(async (tx) =>
          record_billing_events(tx, events_of(`loop-${i}`, 3, 5_000 + i)),
        );
      const ids = await ledger_ids(ledger);
      const deadline = Date.now() + 30_000;
      while ((await store_ids(store)).rows < ids.length && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      const shipped = await store_ids(store);
      expect(shipped.rows).toBe(ids.length);
      expect(shipped.ids).toEqual(ids);
    } finally {
      await shipper.stop();
    }
  });

  it('survives SIGKILLs of the shipper process at random points while writers commit out of order', async () => {
    const env = { DATABASE_URL: pg.url, CLICKHOUSE_URL: ch.url, CLICKHOUSE_DATABASE: 'evrate' };
    let kills = 0;
    let killed_mid_shipment = 0;
    for (let round = 0; round < 6; round++) {
      const long = long_writer(ledger, events_of(`long-${round}`, 20, 10_000 * round));
      await long.written;
      const shipper = ship_process(env, 3);
      for (let i = 0; i < 10; i++)
        await ledger.transaction(async (tx) =>
          record_billing_events(tx, events_of(`r${round}-${i}`, 15, 10_000 * round + i)),
        );
      long.release();
      await long.done;
      if (await kill_while_shipping(shipper, 400)) {
        kills++;
        if (/billing-events: shipped/.test(shipper.output())) killed_mid_shipment++;
      }
      await shipper.exited;
    }
    console.info(
      `server: ${kills} of 6 shipper processes killed, ${killed_mid_shipment} after shipping some batches`,
    );
    const last = ship_process(env, 50);
    expect(await last.exited, last.output()).toBe(0);
    const shipped = await store_ids(store);
    const ids = await ledger_ids(ledger);
    expect(ids.length).toBe(9 + 15 + 6 * (20 + 10 * 15));
    expect(shipped.rows).toBe(ids.length);
    expect(shipped.ids).toEqual(ids);
    expect(kills).toBeGreaterThan(0);
  }, 240_000);
});

describe('billing events shipped exactly once: PGlite and chdb', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'evrate-ship-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('writers queued behind a long transaction, shipments in between, then SIGKILLs of the shipper', async () => {
    const data_dir = path.join(dir, 'data');
    const ledger_dir = path.join(data_dir, 'billing');
    let ledger = await open_pglite(ledger_dir);
    await migrate_ledger(ledger);
    let store = await open_chdb_store(path.join(data_dir, 'chdb'), 'evrate');
    await migrate(store);
    // PGlite is one connection: a second writer waits for the long one, and so does the shipper.
    const long = long_writer(ledger, events_of('long', 3, 1_000));
    await long.written;
    const short = ledger.transaction(async (tx) => record_billing_events(tx, events_of('short', 4, 2_000)));
    const during = ship_billing_events(ledger, store);
    long.release();
    await Promise.all([long.done, short, during]);
    await ship_billing_events(ledger, store);
    expect((await store_ids(store)).ids).toEqual(await ledger_ids(ledger));
    await store.close();
    await ledger.close();

    let kills = 0;
    let killed_mid_shipment = 0;
    for (let round = 0; round < 5; round++) {
      ledger = await open_pglite(ledger_dir);
      for (let i = 0; i < 10; i++)
        await ledger.transaction(async (tx) =>
          record_billing_events(tx, events_of(`r${round}-${i}`, 15, round * 1000 + i)),
        );
      await ledger.close();
      const shipper = ship_process({ DATA_DIR: data_dir }, 3);
      if (await kill_while_shipping(shipper, 600)) {
        kills++;
        if (/billing-events: shipped/.test(shipper.output())) killed_mid_shipment++;
      }
      await shipper.exited;
    }
    console.info(
      `pglite: ${kills} of 5 shipper processes killed, ${killed_mid_shipment} after shipping some batches`,
    );
    const last = ship_process({ DATA_DIR: data_dir }, 50);
    expect(await last.exited, last.output()).toBe(0);
    ledger = await open_pglite(ledger_dir);
    store = await open_chdb_store(path.join(data_dir, 'chdb'), 'evrate');
    try {
      const ids = await ledger_ids(ledger);
      expect(ids.length).toBe(7 + 5 * 150);
      const shipped = await store_ids(store);
      expect(shipped.rows).toBe(ids.length);
      expect(shipped.ids).toEqual(ids);
      expect(kills).toBeGreaterThan(0);
    } finally {
      await store.close();
      await ledger.close();
    }
  }, 240_000);
});

describe('billing events shipped by the billing role of the stack', () => {
  it('ROLES with billing and api, embedded ledger and engine: an event committed is in ClickHouse soon after', async () => {
    const stack = await start_test_stack({ ROLES: 'api,billing', BILLING_EVENTS_SHIP_INTERVAL_MS: '100' });
    try {
      const ledger = stack.ledger!;
      const store = stack.store!;
      await ledger.transaction(async (tx) => record_billing_events(tx, events_of('stack', 5, 7_000)));
      const ids = await ledger_ids(ledger);
      const shipped = await eventually(async () => {
        const s = await store_ids(store);
        return s.rows >= ids.length ? s : undefined;
      });
      expect(shipped.rows).toBe(ids.length);
      expect(shipped.ids).toEqual(ids);
    } finally {
      await stack.dispose();
    }
  }, 120_000);
});
