import { rmSync } from 'node:fs';
import { Decimal } from 'decimal.js';
import { afterEach, describe, expect, it } from 'vitest';
import { open_http_store } from '../analytics/http-store.js';
import { migrate } from '../analytics/migrations.js';
import type { Store } from '../analytics/store.js';
import { open_kv } from '../core/nats.js';
import type { Tariff } from '../rating/tariff.js';
import { TariffStore } from '../rating/tariff-store.js';
import { type PrivateClickHouse, start_clickhouse_server } from './helpers/clickhouse-server.js';
import { start_test_nats } from './helpers/nats.js';
import { connect_rpc_charger, type RpcCharger } from './helpers/ocpp-rpc.js';
import { type EvrateProcess, start_evrate } from './helpers/process.js';
import { temp_dir } from './helpers/rating-run.js';
import { eventually } from './helpers/stack.js';

/**
 * What is fixed at a session's start, across processes: the tariff version in force when it
 * started, whatever the rating service's backlog; and a session whose stop never comes is closed
 * by whichever rating process owns its partition after a restart, from the checkpointed state.
 * Real processes (ingest, rating), a real nats-server and ClickHouse server, a charger played by
 * ocpp-rpc in strict mode.
 */

const tariff = (price: number, extra: Partial<Tariff> = {}): Tariff => ({
  country_code: 'NL',
  party_id: 'EVR',
  id: 'default',
  currency: 'EUR',
  elements: [{ price_components: [{ type: 'ENERGY', price, step_size: 1 }] }],
  last_updated: '2026-11-01T00:00:00Z',
  ...extra,
});

interface Env {
  nats: Awaited<ReturnType<typeof start_test_nats>>;
  ch: PrivateClickHouse;
  store: Store;
  dirs: string[];
  processes: EvrateProcess[];
  clients: RpcCharger[];
}

let env: Env | undefined;

async function setup(): Promise<Env> {
  const nats = await start_test_nats();
  const ch = await start_clickhouse_server();
  const store = await open_http_store({ url: ch.url, user: 'default', password: '', database: 'evrate' });
  await migrate(store);
  env = { nats, ch, store, dirs: [], processes: [], clients: [] };
  return env;
}

afterEach(async () => {
  if (env === undefined) return;
  for (const c of env.clients) await c.close({ force: true }).catch(() => {});
  for (const p of env.processes) await p.kill();
  await env.store.close();
  await env.ch.dispose();
  await env.nats.dispose();
  for (const dir of env.dirs) rmSync(dir, { recursive: true, force: true });
  env = undefined;
});

async function process_of(e: Env, roles: string, extra: Record<string, string> = {}): Promise<EvrateProcess> {
  const dir = temp_dir('evrate-start-rules-');
  e.dirs.push(dir);
  const p = await start_evrate({
    ROLES: roles,
    NODE_ID: `${roles.replace(',', '-')}-${e.processes.length}`,
    DATA_DIR: dir,
    NATS_URL: e.nats.url,
    CLICKHOUSE_URL: e.ch.url,
    OCPP_HOST: '127.0.0.1',
    OCPP_ALLOW_UNKNOWN: 'true',
    OCPP_ACCEPT_UNKNOWN_TOKENS: 'true',
    RATING_PARTITIONS: '2',
    RATING_LEASE_TTL_MS: '1500',
    LOG_LEVEL: 'warn',
    ...extra,
  });
  e.processes.push(p);
  return p;
}

async function charger(e: Env, ingest: EvrateProcess, identity: string): Promise<RpcCharger> {
  const url = /OCPP charge points: +(ws:\/\/\S+)/.exec(ingest.output())?.[1];
  expect(url, ingest.output()).toBeDefined();
  const client = await connect_rpc_charger(url!, identity, 'ocpp1.6');
  e.clients.push(client);
  await client.call('BootNotification', { chargePointVendor: 'Test', chargePointModel: 'Rules' });
  return client;
}

function energy(at_ms: number, wh: number) {
  return {
    timestamp: new Date(at_ms).toISOString(),
    sampledValue: [{ value: String(wh), measurand: 'Energy.Active.Import.Register', unit: 'Wh' }],
  };
}

describe('what is fixed at a session start', () => {
  it('prices a session worked off a backlog by the tariff version in force when it started', async () => {
    const e = await setup();
    const tariffs = await TariffStore.open(e.nats.nats);
    await tariffs.put(tariff(0.3)); // v1: 0.30 EUR/kWh
    const ingest = await process_of(e, 'ingest');
    const client = await charger(e, ingest, 'CP-BACKLOG');
    // A session that starts now, while the rating service is down (its events wait in JetStream).
    // Its readings are stamped up to 4 min ahead, inside the charger clock's window.
    const t0 = Date.now();
    const started = (await client.call('StartTransaction', {
      connectorId: 1,
      idTag: 'TAG-1',
      meterStart: 1000,
      timestamp: new Date(t0).toISOString(),
    })) as { transactionId: number };
    await client.call('MeterValues', {
      connectorId: 1,
      transactionId: started.transactionId,
      meterValue: [energy(t0 + 2 * 60_000, 6000)],
    });
    await client.call('StopTransaction', {
      transactionId: started.transactionId,
      meterStop: 11_000,
      timestamp: new Date(t0 + 4 * 60_000).toISOString(),
    });
    // The operator publishes a new price before the rating service has caught up.
    const v2 = await tariffs.put(tariff(0.5));
    expect(v2.version).toBe(2);
    await process_of(e, 'rating', { DEFAULT_TARIFF_ID: 'default' });
    const rows = await eventually(async () => {
      const found = await e.store.query<{
        tariff_version: number | string;
        total: string;
        version: number | string;
      }>(
        `SELECT tariff_version, toString(total_excl_vat) AS total, version FROM evrate.rated_session_versions
         WHERE charge_point_id = 'CP-BACKLOG'`,
      );
      return found.length > 0 ? found : undefined;
    });
    // 10 kWh x 0.30 = 3.00 with the version in force at the start (v2 would give 5.00). One
    // version, counted without FINAL.
    expect(rows).toHaveLength(1);
    expect(Number(rows[0]!.tariff_version)).toBe(1);
    expect(new Decimal(rows[0]!.total).toFixed(2)).toBe('3.00');
  });

  it('closes a session whose stop never comes after the rating process restarted', async () => {
    const e = await setup();
    const tariffs = await TariffStore.open(e.nats.nats);
    await tariffs.put(tariff(0.3));
    const ingest = await process_of(e, 'ingest');
    const silence = { RATING_SILENCE_S: '5' };
    const first = await process_of(e, 'rating', silence);
    const client = await charger(e, ingest, 'CP-SILENT');
    const t0 = Date.now();
    const started = (await client.call('StartTransaction', {
      connectorId: 1,
      idTag: 'TAG-2',
      meterStart: 2000,
      timestamp: new Date(t0).toISOString(),
    })) as { transactionId: number };
    await client.call('MeterValues', {
      connectorId: 1,
      transactionId: started.transactionId,
      meterValue: [energy(t0 + 60_000, 2500)],
    });
    // Wait for the open state to be checkpointed, then kill the process before the silence ends.
    const open = await open_kv(e.nats.nats, 'evrate_sessions_open');
    await eventually(async () => {
      for await (const key of await open.keys('s.>')) return key;
      return undefined;
    }, 4000);
    await first.kill('SIGKILL');
    // Nothing more from the charger. A new process takes the partitions; it has nothing in memory.
    await process_of(e, 'rating', silence);
    const rows = await eventually(async () => {
      const found = await e.store.query<{
        version: number | string;
        provisional: number | string;
        total: string;
      }>(
        `SELECT version, provisional, toString(total_excl_vat) AS total FROM evrate.rated_session_versions
         WHERE charge_point_id = 'CP-SILENT'`,
      );
      return found.length > 0 ? found : undefined;
    }, 30_000);
    // One provisional version: 0.5 kWh (in 1 min, 30 kW) x 0.30 = 0.15, counted without FINAL.
    expect(rows).toHaveLength(1);
    expect(Number(rows[0]!.provisional)).toBe(1);
    expect(new Decimal(rows[0]!.total).toFixed(2)).toBe('0.15');
  });
});

describe('the tariff version in force at an instant', () => {
  it('honours publication time and OCPI start_date_time / end_date_time', async () => {
    const nats = await start_test_nats();
    try {
      const tariffs = await TariffStore.open(nats.nats);
      const v1 = await tariffs.put(tariff(0.3));
      const before_v2 = Date.now();
      await new Promise((r) => setTimeout(r, 5));
      // v2 valid only from 2030: sessions before then stay on v1.
      const v2 = await tariffs.put(tariff(0.4, { start_date_time: '2030-01-01T00:00:00Z' }));
      expect((await tariffs.in_force_at('default', before_v2))?.version).toBe(v1.version);
      expect((await tariffs.in_force_at('default', Date.now()))?.version).toBe(v1.version);
      expect((await tariffs.in_force_at('default', Date.UTC(2030, 0, 2)))?.version).toBe(v2.version);
      // Before any version was published, the tariff applies as it is now: its newest valid version.
      expect((await tariffs.in_force_at('default', v1.created_at_ms - 60_000))?.version).toBe(v1.version);
      // v3 ended in 2020: not in force now; v1 is.
      await tariffs.put(tariff(0.5, { end_date_time: '2020-01-01T00:00:00Z' }));
      expect((await tariffs.in_force_at('default', Date.now()))?.version).toBe(v1.version);
      // A tariff whose only version has ended is in force at no instant after its end.
      const ended = await tariffs.put({
        ...tariff(0.5, { end_date_time: '2020-01-01T00:00:00Z' }),
        id: 'ended',
      });
      expect(await tariffs.in_force_at('ended', Date.now())).toBeUndefined();
      expect((await tariffs.in_force_at('ended', Date.UTC(2019, 0, 1)))?.version).toBe(ended.version);
    } finally {
      await nats.dispose();
    }
  });
});
