/**
 * The system under test, each part its own process so that its CPU and memory can be reported:
 * a private nats-server, a ClickHouse server (a private Debian clickhouse-server, or the user's
 * own with --clickhouse-url and a fresh database), one `evrate start` with ROLES=ingest and one
 * with ROLES=rating,api. The embedded engine (chdb) is not used here: it lives inside one process
 * and would hide ClickHouse's share of the machine.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { open_http_store } from '../analytics/http-store.js';
import type { Store } from '../analytics/store.js';
import type { ChildServer } from '../core/child.js';
import { start_nats_server } from '../core/nats-server.js';
import { start_clickhouse_server } from '../test/helpers/clickhouse-server.js';
import { type EvrateProcess, start_evrate } from '../test/helpers/process.js';

export interface BenchStack {
  ocpp_url_base: string;
  api_url: string;
  operator_token: string;
  database: string;
  processes(): { name: string; pids: number[] }[];
  /** What the evrate processes printed (warnings and errors), for a failed run's report. */
  output(): string;
  /** Rows in meter_values (duplicates not yet merged may count twice: for progress only). */
  meter_values_rough(): Promise<number>;
  /** Exact counts, duplicates collapsed (FINAL): for the honesty check. */
  meter_values_exact(): Promise<number>;
  rated_sessions_final(): Promise<number>;
  provisional_sessions(): Promise<number>;
  /** Deletes one charger's stored meter values: only for proving that the honesty check works. */
  delete_meter_values_of(charge_point_id: string): Promise<void>;
  stop(): Promise<void>;
}

export interface StackOptions {
  clickhouse_url: string | undefined;
  env: Record<string, string>;
}

async function count(store: Store, sql: string): Promise<number> {
  return Number((await store.query<{ n: string | number }>(sql))[0]?.n ?? 0);
}

export function ocpp_url_of(p: EvrateProcess): string {
  const match = /OCPP charge points: +(wss?:\/\/\S+\/ocpp)\//.exec(p.output());
  if (match === null) throw new Error(`ingest did not print its OCPP address:\n${p.output()}`);
  return match[1]!;
}

/** A temporary directory for a stack's data and the stops that tear the stack down, last first. */
export function stack_dir(prefix: string): {
  dir: string;
  stops: (() => Promise<void>)[];
  stop: () => Promise<void>;
} {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  };
  return { dir, stops, stop };
}

/** How the bench runs ingest: chargers and their tokens unregistered, no per-charger call rate. */
export const bench_ingest_env = {
  OCPP_HOST: '127.0.0.1',
  // Simulated chargers and their tokens are not registered: accept them (the bench measures the
  // data path, not the registry).
  OCPP_ALLOW_UNKNOWN: 'true',
  OCPP_ACCEPT_UNKNOWN_TOKENS: 'true',
  // A simulated charger with one call always outstanding sends far more than a real one.
  OCPP_CALLS_PER_S_MAX: '1000000',
};

export async function start_bench_stack(options: StackOptions): Promise<BenchStack> {
  const { dir, stops, stop } = stack_dir('evrate-bench-');
  try {
    const nats = await start_nats_server({ store_dir: path.join(dir, 'nats'), port: 0 });
    stops.push(() => nats.stop());
    let clickhouse_url = options.clickhouse_url;
    let clickhouse: ChildServer | undefined;
    let database = 'evrate';
    if (clickhouse_url === undefined) {
      const ch = await start_clickhouse_server();
      stops.push(() => ch.dispose());
      clickhouse = ch;
      clickhouse_url = ch.url;
    } else {
      // The user's server: a database of its own so that counts see only this run.
      database = `evrate_bench_${Date.now()}`;
    }
    const operator_token = `bench-${Math.random().toString(36).slice(2)}-${Date.now()}`;
    const common = {
      NATS_URL: nats.url,
      CLICKHOUSE_URL: clickhouse_url,
      CLICKHOUSE_DATABASE: database,
      OPERATOR_TOKEN: operator_token,
      LOG_LEVEL: 'warn',
      ...options.env,
    };
    // Rating first: it migrates the schema and seeds the tariff before any event exists.
    const rating = await start_evrate({
      ...common,
      ROLES: 'rating,api',
      NODE_ID: 'bench-rating',
      DATA_DIR: path.join(dir, 'rating'),
      API_HOST: '127.0.0.1',
    });
    stops.push(() => rating.kill('SIGTERM'));
    const ingest = await start_evrate({
      ...common,
      ROLES: 'ingest',
      NODE_ID: 'bench-ingest',
      DATA_DIR: path.join(dir, 'ingest'),
      ...bench_ingest_env,
    });
    stops.push(() => ingest.kill('SIGTERM'));
    // nats-server and clickhouse-server die with us (core/child.ts); the evrate processes too.
    const kill_children = () => {
      for (const p of [ingest, rating]) if (p.child.exitCode === null) p.child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    };
    process.once('exit', kill_children);
    stops.push(async () => {
      process.removeListener('exit', kill_children);
    });
    const store = await open_http_store({ url: clickhouse_url, user: 'default', password: '', database });
    stops.push(() => store.close());
    const db = database;
    return {
      ocpp_url_base: ocpp_url_of(ingest),
      api_url: rating.api_url,
      operator_token,
      database,
      output: () => `--- ingest ---\n${ingest.output()}\n--- rating ---\n${rating.output()}`,
      processes: () => [
        { name: 'ingest', pids: [ingest.child.pid ?? -1] },
        { name: 'rating', pids: [rating.child.pid ?? -1] },
        { name: 'nats', pids: [nats.pid] },
        ...(clickhouse === undefined ? [] : [{ name: 'clickhouse', pids: [clickhouse.pid] }]),
      ],
      meter_values_rough: () => count(store, `SELECT count() AS n FROM ${db}.meter_values`),
      meter_values_exact: () => count(store, `SELECT count() AS n FROM ${db}.meter_values FINAL`),
      rated_sessions_final: () =>
        count(store, `SELECT count() AS n FROM ${db}.rated_sessions FINAL WHERE provisional = 0`),
      provisional_sessions: () =>
        count(store, `SELECT count() AS n FROM ${db}.rated_sessions FINAL WHERE provisional = 1`),
      async delete_meter_values_of(charge_point_id) {
        const where = `charge_point_id = '${charge_point_id.replace(/[^A-Za-z0-9_-]/g, '')}'`;
        await store.exec(`ALTER TABLE ${db}.meter_values DELETE WHERE ${where}`);
        // A mutation runs in the background (no mutations_sync on 18.16): wait, boundedly.
        const deadline = Date.now() + 30_000;
        while ((await count(store, `SELECT count() AS n FROM ${db}.meter_values WHERE ${where}`)) > 0) {
          if (Date.now() > deadline) throw new Error(`rows of ${charge_point_id} not deleted within 30 s`);
          await new Promise((r) => setTimeout(r, 200));
        }
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
