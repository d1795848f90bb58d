import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open_http_store } from '../analytics/http-store.js';
import { migrate } from '../analytics/migrations.js';
import { Sink } from '../analytics/sink.js';
import type { Store } from '../analytics/store.js';
import { type PrivateClickHouse, start_clickhouse_server } from './helpers/clickhouse-server.js';
import { store_transports, type TestStore } from './helpers/stores.js';

/** Distinct sampled values (distinct sorting keys, so nothing collapses) for charge point `cp`. */
function meter_rows(cp: string, n: number, value_pad = 0): string[] {
  return Array.from({ length: n }, (_, i) => {
    const ms = Date.UTC(2026, 2, 2) + i * 1000;
    return JSON.stringify({
      charge_point_id: cp,
      connector_id: 1,
      transaction_id: 'T1',
      timestamp: Math.floor(ms / 1000),
      timestamp_ms: ms,
      received_at_ms: ms,
      measurand: 'Energy.Active.Import.Register',
      phase: '',
      location: 'Outlet',
      unit: 'Wh',
      context: 'Sample.Periodic',
      format: 'Raw',
      value: String(i).padStart(value_pad, '0'),
    });
  });
}

async function count_rows(store: Store, cp: string): Promise<number> {
  // Plain count, not FINAL: a row written twice would show.
  const [row] = await store.query<{ n: string }>(
    `SELECT count() AS n FROM evrate.meter_values WHERE charge_point_id = '${cp}'`,
  );
  return Number(row!.n);
}

describe.each(store_transports)('sink on $name', ({ open }) => {
  let env: TestStore;
  beforeAll(async () => {
    env = await open();
  });
  afterAll(async () => env?.dispose());

  it('writes in inserts of at most flush_rows_max rows and resolves only when the rows are in', async () => {
    const sink = new Sink(env.store, { flush_rows_max: 10_000, flush_interval_ms: 50 });
    await sink.write('meter_values', meter_rows('CP-ROWS', 25_000));
    expect(await count_rows(env.store, 'CP-ROWS')).toBe(25_000);
    expect(sink.stats).toMatchObject({ inserts: 3, rows: 25_000, retries: 0 });
    await sink.close();
  });

  it('cuts inserts at flush_bytes_max and flushes a part-filled buffer after the interval', async () => {
    const rows = meter_rows('CP-BYTES', 100, 1000);
    const row_bytes = Buffer.byteLength(rows[0]!) + 1;
    const sink = new Sink(env.store, { flush_bytes_max: row_bytes * 10, flush_interval_ms: 20 });
    // Two writers share the buffer; each is answered when its own rows are in.
    await Promise.all([
      sink.write('meter_values', rows.slice(0, 55)),
      sink.write('meter_values', rows.slice(55)),
    ]);
    expect(await count_rows(env.store, 'CP-BYTES')).toBe(100);
    expect(sink.stats.inserts).toBe(10);
    await sink.write('meter_values', meter_rows('CP-LINGER', 3));
    expect(await count_rows(env.store, 'CP-LINGER')).toBe(3);
    await sink.close();
    await expect(sink.write('meter_values', meter_rows('CP-LATE', 1))).rejects.toThrow('sink is closed');
  });

  it('flush() writes a part-filled buffer at once instead of after the interval', async () => {
    const sink = new Sink(env.store, { flush_interval_ms: 3_600_000 });
    let written = false;
    const write = sink.write('meter_values', meter_rows('CP-FLUSH', 7)).then(() => {
      written = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(written).toBe(false);
    expect(await count_rows(env.store, 'CP-FLUSH')).toBe(0);
    await sink.flush();
    await write;
    expect(await count_rows(env.store, 'CP-FLUSH')).toBe(7);
    await sink.close();
  });

  it('quarantines a row the store refuses and writes the others of its batch', async () => {
    const sink = new Sink(env.store, { flush_interval_ms: 10 });
    const rows = meter_rows('CP-BAD', 5);
    rows[2] = rows[2]!.replace('"connector_id":1', '"connector_id":"not a number"');
    await sink.write('meter_values', rows);
    expect(await count_rows(env.store, 'CP-BAD')).toBe(4);
    expect(sink.stats).toMatchObject({ rows: 4, quarantined: 1 });
    const [q] = await env.store.query<{ n: string }>(
      "SELECT count() AS n FROM evrate.quarantined_rows WHERE table_name = 'meter_values' AND position(row_json, 'not a number') > 0",
    );
    expect(Number(q!.n)).toBe(1);
    await sink.close();
  });
});

describe('sink while clickhouse-server is down', () => {
  let server: PrivateClickHouse;
  let store: Store;
  beforeAll(async () => {
    server = await start_clickhouse_server();
    store = await open_http_store({ url: server.url, user: 'default', password: '', database: 'evrate' });
    await migrate(store);
  });
  afterAll(async () => {
    await store?.close();
    await server?.dispose();
  });

  it('holds writers unanswered, bounds what it buffers, retries, and writes every row once after the restart', async () => {
    const sink = new Sink(store, {
      flush_interval_ms: 10,
      pending_rows_max: 300,
      retry_delay_ms_min: 50,
      retry_delay_ms_max: 200,
    });
    await server.stop();
    const answered: string[] = [];
    const rows = meter_rows('CP-DOWN', 500);
    const first = sink.write('meter_values', rows.slice(0, 300)).then(() => answered.push('first'));
    const second = sink.write('meter_values', rows.slice(300)).then(() => answered.push('second'));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(answered).toEqual([]);
    expect(sink.pending_rows).toBe(300); // the second writer waits for room
    expect(sink.stats.retries).toBeGreaterThan(0);
    await server.restart();
    await Promise.all([first, second]);
    expect(answered).toEqual(['first', 'second']);
    expect(await count_rows(store, 'CP-DOWN')).toBe(500);
    expect(sink.pending_rows).toBe(0);
    await sink.close();
  });
});
