import { rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { open_http_store } from '../analytics/http-store.js';
import { migrate } from '../analytics/migrations.js';
import type { Store } from '../analytics/store.js';
import { type PrivateClickHouse, start_clickhouse_server } from './helpers/clickhouse-server.js';
import { interleave, publish_events, type SyntheticSession, synthetic_sessions } from './helpers/events.js';
import { start_test_nats } from './helpers/nats.js';
import { type EvrateProcess, start_evrate } from './helpers/process.js';
import { expected_sessions, seed_tariff, stored_sessions, temp_dir } from './helpers/rating-run.js';
import { eventually } from './helpers/stack.js';

/**
 * Rating processes are real child processes sharing a real nats-server and a real ClickHouse
 * server; they are killed with SIGKILL at random moments while they work through the stream.
 */
interface Env {
  nats: Awaited<ReturnType<typeof start_test_nats>>;
  ch: PrivateClickHouse;
  store: Store;
  dirs: string[];
  processes: EvrateProcess[];
}

const partitions = 8;

async function setup(): Promise<Env> {
  const nats = await start_test_nats();
  const ch = await start_clickhouse_server();
  const store = await open_http_store({ url: ch.url, user: 'default', password: '', database: 'evrate' });
  await migrate(store);
  await seed_tariff(nats.nats);
  return { nats, ch, store, dirs: [], processes: [] };
}

async function teardown(env: Env | undefined): Promise<void> {
  if (env === undefined) return;
  for (const p of env.processes) await p.kill();
  await env.store.close();
  await env.ch.dispose();
  await env.nats.dispose();
  for (const dir of env.dirs) rmSync(dir, { recursive: true, force: true });
}

async function rater(env: Env, node_id: string, extra: Record<string, string> = {}): Promise<EvrateProcess> {
  const dir = temp_dir('evrate-rater-');
  env.dirs.push(dir);
  const p = await start_evrate({
    ROLES: 'rating',
    NODE_ID: node_id,
    DATA_DIR: dir,
    NATS_URL: env.nats.url,
    CLICKHOUSE_URL: env.ch.url,
    RATING_PARTITIONS: String(partitions),
    RATING_LEASE_TTL_MS: '1500',
    RATING_FETCH_BATCH_MAX: '20',
    ...extra,
  });
  env.processes.push(p);
  return p;
}

async function rated_count(store: Store): Promise<number> {
  return Number(
    (await store.query<{ n: string }>('SELECT count() AS n FROM evrate.rated_sessions FINAL'))[0]?.n ?? 0,
  );
}

async function expect_undisturbed_totals(store: Store, sessions: SyntheticSession[]): Promise<void> {
  await eventually(async () => ((await rated_count(store)) === sessions.length ? true : undefined), 240_000);
  const expected = expected_sessions(sessions);
  const stored = await stored_sessions(store);
  expect(stored.size).toBe(expected.size);
  for (const [id, want] of expected) expect(stored.get(id), id).toEqual(want);
  const values = Number(
    (await store.query<{ n: string }>('SELECT count() AS n FROM evrate.meter_values FINAL'))[0]?.n,
  );
  expect(values).toBe(sessions.reduce((n, s) => n + s.sampled_values, 0));
}

/** The partitions a process holds according to its log, at the moment of reading. */
function owned_from_log(output: string): Set<number> {
  const owned = new Set<number>();
  for (const line of output.split('\n')) {
    const m = /"partition":(\d+).*"msg":"partition lease (claimed|released|lost)"/.exec(line);
    if (m === null) continue;
    if (m[2] === 'claimed') owned.add(Number(m[1]));
    else owned.delete(Number(m[1]));
  }
  return owned;
}

/**
 * Rating processes are real child processes sharing a real nats-server and a real ClickHouse
 * server; they are killed with SIGKILL at moments spread over the run.
 */
describe('rating through crashes and scale-out', () => {
  let env: Env | undefined;
  afterEach(async () => {
    await teardown(env);
    env = undefined;
  });

  it('SIGKILLed at random points and restarted, it ends with exactly the undisturbed totals', async () => {
    env = await setup();
    const sessions = synthetic_sessions(150, 10, 6, Date.UTC(2026, 10, 2, 6, 0));
    await publish_events(env.nats.nats, interleave(sessions), partitions, 40);
    let current = await rater(env, 'rater-crash');
    let kills = 0;
    // A fixed sequence of kill delays, so that a failure can be replayed.
    for (const delay of [700, 350, 1200, 500, 900]) {
      await new Promise((r) => setTimeout(r, delay));
      if ((await rated_count(env.store)) >= sessions.length) break;
      await current.kill('SIGKILL');
      kills++;
      current = await rater(env, 'rater-crash');
    }
    expect(kills).toBeGreaterThan(0);
    await expect_undisturbed_totals(env.store, sessions);
  }, 400_000);

  it('two processes split the partitions; killing one moves its partitions to the other', async () => {
    env = await setup();
    const a = await rater(env, 'rater-a');
    const b = await rater(env, 'rater-b');
    // Both hold a disjoint half of the partitions once B has joined.
    await eventually(
      async () => (owned_from_log(b.output()).size === partitions / 2 ? true : undefined),
      30_000,
    );
    await eventually(
      async () => (owned_from_log(a.output()).size === partitions / 2 ? true : undefined),
      30_000,
    );
    const owned_a = owned_from_log(a.output());
    const owned_b = owned_from_log(b.output());
    expect([...owned_a].filter((p) => owned_b.has(p))).toEqual([]);

    const sessions = synthetic_sessions(120, 8, 6, Date.UTC(2026, 10, 3, 15, 0));
    await publish_events(env.nats.nats, interleave(sessions), partitions, 40);
    await new Promise((r) => setTimeout(r, 800));
    await b.kill('SIGKILL');
    await eventually(
      async () => (owned_from_log(a.output()).size === partitions ? true : undefined),
      120_000,
    );
    await expect_undisturbed_totals(env.store, sessions);
  }, 400_000);

  it('holds the backlog while ClickHouse is down for a minute and catches up without loss', async () => {
    env = await setup();
    const token = 'outage-test-token-0123456789';
    const p = await rater(env, 'rater-outage', {
      ROLES: 'rating,api',
      OPERATOR_TOKEN: token,
      API_HOST: '127.0.0.1',
    });
    const sessions = synthetic_sessions(100, 6, 6, Date.UTC(2026, 10, 4, 18, 0));
    const half = Math.floor(sessions.length / 2);
    await publish_events(env.nats.nats, interleave(sessions.slice(0, half)), partitions, 40);
    await eventually(async () => ((await rated_count(env!.store)) === half ? true : undefined), 120_000);

    await env.ch.stop();
    await publish_events(env.nats.nats, interleave(sessions.slice(half)), partitions, 40);
    await new Promise((r) => setTimeout(r, 60_000));
    const metrics = await (await fetch(`${p.api_url}/metrics`)).text();
    const lag = [...metrics.matchAll(/^evrate_rating_consumer_pending_messages\{[^}]*\} (\d+)/gm)].reduce(
      (n, m) => n + Number(m[1]),
      0,
    );
    expect(lag).toBeGreaterThan(0);
    // The sink keeps retrying the inserts; the batch waits unacknowledged meanwhile.
    expect(metrics).toMatch(/^evrate_sink_insert_retries_total\{[^}]*\} [1-9]/m);

    await env.ch.restart();
    await expect_undisturbed_totals(env.store, sessions);
  }, 400_000);
});
