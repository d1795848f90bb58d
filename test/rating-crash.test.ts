import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open_http_store } from '../analytics/http-store.js';
import { migrate } from '../analytics/migrations.js';
import type { Store } from '../analytics/store.js';
import { type PrivateClickHouse, start_clickhouse_server } from './helpers/clickhouse-server.js';
import { interleave, publish_events, synthetic_sessions } from './helpers/events.js';
import { start_test_nats } from './helpers/nats.js';
import { type EvrateProcess, start_evrate } from './helpers/process.js';
import { expected_sessions, seed_tariff, stored_sessions, temp_dir } from './helpers/rating-run.js';
import { eventually } from './helpers/stack.js';

/**
 * Rating processes are real child processes sharing a real nats-server and a real ClickHouse
 * server; they are killed with SIGKILL at random moments while they work through the stream.
 */
describe('rating through crashes and scale-out', () => {
  let nats: Awaited<ReturnType<typeof start_test_nats>>;
  let ch: PrivateClickHouse;
  let store: Store;
  const dirs: string[] = [];
  const processes: EvrateProcess[] = [];
  const partitions = 8;

  beforeAll(async () => {
    nats = await start_test_nats();
    ch = await start_clickhouse_server();
    store = await open_http_store({ url: ch.url, user: 'default', password: '', database: 'evrate' });
    await migrate(store);
    await seed_tariff(nats.nats);
  });
  afterAll(async () => {
    for (const p of processes) await p.kill();
    await store?.close();
    await ch?.dispose();
    await nats?.dispose();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  const rater = async (node_id: string, extra: Record<string, string> = {}) => {
    const dir = temp_dir('evrate-rater-');
    dirs.push(dir);
    const p = await start_evrate({
      ROLES: 'rating',
      NODE_ID: node_id,
      DATA_DIR: dir,
      NATS_URL: nats.url,
      CLICKHOUSE_URL: ch.url,
      RATING_PARTITIONS: String(partitions),
      RATING_LEASE_TTL_MS: '1500',
      RATING_FETCH_BATCH_MAX: '20',
      ...extra,
    });
    processes.push(p);
    return p;
  };

  const rated_count = async () =>
    Number(
      (await store.query<{ n: string }>('SELECT count() AS n FROM evrate.rated_sessions FINAL'))[0]?.n ?? 0,
    );

  it('SIGKILLed at random points and restarted, it ends with exactly the undisturbed totals', async () => {
    const sessions = synthetic_sessions(150, 10, 6, Date.UTC(2026, 10, 2, 6, 0));
    const expected = expected_sessions(sessions);
    await publish_events(nats.nats, interleave(sessions), partitions, 40);

    let current = await rater('rater-crash');
    let kills = 0;
    // A seeded sequence of kill delays, so a failure can be replayed.
    const delays = [700, 350, 1200, 500, 900];
    for (const delay of delays) {
      await new Promise((r) => setTimeout(r, delay));
      if ((await rated_count()) >= sessions.length) break;
      await current.kill('SIGKILL');
      kills++;
      current = await rater('rater-crash');
    }
    await eventually(async () => ((await rated_count()) === sessions.length ? true : undefined), 180_000);
    expect(kills).toBeGreaterThan(0);

    const stored = await stored_sessions(store);
    expect(stored.size).toBe(expected.size);
    for (const [id, want] of expected) expect(stored.get(id), id).toEqual(want);
    const values = Number(
      (await store.query<{ n: string }>('SELECT count() AS n FROM evrate.meter_values FINAL'))[0]?.n,
    );
    expect(values).toBe(sessions.reduce((n, s) => n + s.sampled_values, 0));
    await current.kill('SIGTERM');
  });
});
