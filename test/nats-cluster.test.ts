import { rmSync, writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { open_http_store } from '../analytics/http-store.js';
import { migrate } from '../analytics/migrations.js';
import type { Store } from '../analytics/store.js';
import { TariffStore } from '../rating/tariff-store.js';
import { type PrivateClickHouse, start_clickhouse_server } from './helpers/clickhouse-server.js';
import { type NatsCluster, start_nats_cluster } from './helpers/nats-cluster.js';
import { type EvrateProcess, start_evrate } from './helpers/process.js';
import { temp_dir } from './helpers/rating-run.js';
import { eventually } from './helpers/stack.js';

/**
 * The scaled-out deployment for real on loopback: a three-node NATS JetStream cluster (streams and
 * KV buckets with 3 replicas), two ingest processes, two rating processes and two API processes,
 * every one a child process, sharing a ClickHouse server. Chargers are spread over both ingest
 * nodes and run whole OCPP 1.6 sessions while NATS nodes are SIGKILLed and restarted one at a
 * time. A charger behaves as OCPP-J says: a CALL without an answer is sent again with the same
 * message id, a transaction-related CALL answered InternalError is sent again after an interval
 * (OCPP 1.6 section 3.7.1), and after a dropped connection it reconnects (to the other ingest
 * node) and sends its pending CALL again; every such event is counted and printed, not hidden.
 */

const operator_token = 'cluster-operator-token-0123456789';
const chargers_count = 8;
const meter_values_per_session = 4;
const wh_per_reading = 700;
/** ENERGY 0.30/kWh + 21 % VAT: every session's price follows from its energy alone. */
const price_per_kwh = 0.3;
const answer_timeout_ms = 6_000;

interface ChargerStats {
  /** CALLs sent again on the same socket after no answer came. */
  resent: number;
  /** Connections lost and opened again (to the other ingest node). */
  reconnects: number;
  /** CALLERROR InternalError: a "failure to process the message", sent again (OCPP 1.6 3.7.1). */
  failures_to_process: number;
}

class ClusterCharger {
  readonly stats: ChargerStats = { resent: 0, reconnects: 0, failures_to_process: 0 };
  /** Energy per transaction id, as the charger measured it. */
  readonly sessions = new Map<number, number>();
  meter_values_answered = 0;
  private socket: WebSocket | undefined;
  private next_id = 0;
  private node: number;
  private register_wh = 0;
  private waiting: ((frame: unknown[]) => void) | undefined;
  private closed: (() => void) | undefined;

  constructor(
    readonly id: string,
    private readonly ingest_urls: () => string[],
    first_node: number,
    private readonly start_ms: number,
  ) {
    this.node = first_node;
  }

  private async connect(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const url = this.ingest_urls()[this.node % 2]!.replace('{chargePointId}', this.id);
      const socket = new WebSocket(url, 'ocpp1.6');
      const opened = await new Promise<boolean>((resolve) => {
        socket.once('open', () => resolve(true));
        socket.once('error', () => resolve(false));
      });
      if (opened) {
        socket.on('error', () => {});
        socket.on('message', (data) => this.waiting?.(JSON.parse(data.toString()) as unknown[]));
        socket.once('close', () => {
          this.socket = undefined;
          this.closed?.();
        });
        this.socket = socket;
        return;
      }
      // That node is down: the other one.
      this.node++;
      if (attempt > 40) throw new Error(`${this.id}: no ingest node accepts a connection`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** One CALL, retried with its message id until answered (OCPP-J 1.6 section 4.1.1). */
  async call(action: string, payload: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = `${this.id}.${this.next_id++}`;
    const text = JSON.stringify([2, id, action, payload]);
    const give_up = Date.now() + 180_000;
    const history: string[] = [];
    for (let attempt = 0; Date.now() < give_up; attempt++) {
      if (this.socket === undefined) {
        if (attempt > 0 || this.next_id > 1) this.stats.reconnects++;
        await this.connect();
      }
      const socket = this.socket!;
      const outcome = await new Promise<unknown[] | 'closed' | 'timeout'>((resolve) => {
        const timer = setTimeout(() => resolve('timeout'), answer_timeout_ms);
        this.waiting = (frame) => {
          if (frame[1] !== id) return;
          clearTimeout(timer);
          resolve(frame);
        };
        this.closed = () => {
          clearTimeout(timer);
          resolve('closed');
        };
        socket.send(text);
      });
      history.push(typeof outcome === 'string' ? outcome : String(outcome[2]));
      if (outcome === 'closed') {
        this.node++;
        continue;
      }
      if (outcome === 'timeout') {
        this.stats.resent++;
        continue;
      }
      if (outcome[0] === 4 && outcome[2] === 'InternalError') {
        // A transaction-related message the server failed to process is sent again after the
        // retry interval (OCPP 1.6 section 3.7.1, TransactionMessageRetryInterval).
        this.stats.failures_to_process++;
        await new Promise((r) => setTimeout(r, 1_000));
        continue;
      }
      if (outcome[0] !== 3) throw new Error(`${this.id} ${action}: ${JSON.stringify(outcome)}`);
      return outcome[2] as Record<string, unknown>;
    }
    throw new Error(`${this.id} ${action}: no answer within 180 s (${history.join(', ')})`);
  }

  /** Whole sessions one after another until `stop()` says so (checked between sessions). */
  async run_sessions(stop: () => boolean, on_session: () => void): Promise<void> {
    let t = this.start_ms;
    while (!stop()) {
      const meter_start = this.register_wh;
      const started = await this.call('StartTransaction', {
        connectorId: 1,
        idTag: `TAG-${this.id}`,
        meterStart: meter_start,
        timestamp: new Date(t).toISOString(),
      });
      const transaction_id = started.transactionId as number;
      expect((started.idTagInfo as { status: string }).status).toBe('Accepted');
      for (let m = 0; m < meter_values_per_session; m++) {
        t += 180_000;
        this.register_wh += wh_per_reading;
        await this.call('MeterValues', {
          connectorId: 1,
          transactionId: transaction_id,
          meterValue: [
            {
              timestamp: new Date(t).toISOString(),
              sampledValue: [
                { value: String(this.register_wh), measurand: 'Energy.Active.Import.Register', unit: 'Wh' },
              ],
            },
          ],
        });
        this.meter_values_answered++;
      }
      t += 60_000;
      await this.call('StopTransaction', {
        transactionId: transaction_id,
        meterStop: this.register_wh,
        timestamp: new Date(t).toISOString(),
        reason: 'EVDisconnected',
      });
      this.sessions.set(transaction_id, this.register_wh - meter_start);
      t += 600_000;
      on_session();
    }
    this.socket?.close();
  }
}

describe('three NATS nodes, two of each role, nodes killed under load', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
  });

  it('prices every session once with the undisturbed totals while NATS nodes die and come back', async () => {
    const cluster: NatsCluster = await start_nats_cluster(3, 3);
    cleanups.push(() => cluster.dispose());
    const ch: PrivateClickHouse = await start_clickhouse_server();
    cleanups.push(() => ch.dispose());
    const store: Store = await open_http_store({
      url: ch.url,
      user: 'default',
      password: '',
      database: 'evrate',
    });
    cleanups.push(() => store.close());
    await migrate(store);
    await (await TariffStore.open(cluster.nats)).put({
      country_code: 'NL',
      party_id: 'EVR',
      id: 'default',
      currency: 'EUR',
      elements: [{ price_components: [{ type: 'ENERGY', price: price_per_kwh, vat: 21, step_size: 1 }] }],
      last_updated: '2026-01-01T00:00:00Z',
    });

    const processes: EvrateProcess[] = [];
    cleanups.push(async () => {
      for (const p of processes) await p.kill();
    });
    const start = async (role: string, node_id: string, extra: Record<string, string> = {}) => {
      const dir = temp_dir(`evrate-cluster-${node_id}-`);
      cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
      const p = await start_evrate({
        ROLES: role,
        NODE_ID: node_id,
        DATA_DIR: dir,
        NATS_URL: cluster.url,
        NATS_REPLICAS: '3',
        CLICKHOUSE_URL: ch.url,
        OCPP_HOST: '127.0.0.1',
        API_HOST: '127.0.0.1',
        OCPP_ALLOW_UNKNOWN: 'true',
        OCPP_ACCEPT_UNKNOWN_TOKENS: 'true',
        OPERATOR_TOKEN: operator_token,
        RATING_LEASE_TTL_MS: '3000',
        LOG_LEVEL: 'warn',
        ...extra,
      });
      processes.push(p);
      return p;
    };
    const ingest = [await start('ingest', 'ingest-a'), await start('ingest', 'ingest-b')];
    const ingest_urls = ingest.map((p) => /OCPP charge points: +(ws:\/\/\S+)/.exec(p.output())?.[1] ?? '');
    expect(
      ingest_urls.every((u) => u !== ''),
      ingest.map((p) => p.output()).join('\n'),
    ).toBe(true);
    await start('rating', 'rating-a');
    await start('rating', 'rating-b');
    const api = [await start('api', 'api-a'), await start('api', 'api-b')];

    // Sessions a few days back, each charger on its own hours: prices do not depend on the time.
    const day = Date.UTC(2026, 11, 1, 6, 0, 0);
    const chargers = Array.from(
      { length: chargers_count },
      (_, i) =>
        new ClusterCharger(`CP-CL-${String(i).padStart(2, '0')}`, () => ingest_urls, i, day + i * 3_600_000),
    );
    let sessions_done = 0;
    let stopping = false;
    const runs = chargers.map((c) =>
      c.run_sessions(
        () => stopping,
        () => sessions_done++,
      ),
    );
    const failed = Promise.all(runs).then(
      () => undefined,
      (error: unknown) => {
        for (const [i, p] of processes.entries()) writeFileSync(`/tmp/cluster-process-${i}.log`, p.output());
        throw error;
      },
    );

    // Under load, each NATS node in turn is killed and restarted: the others keep a quorum.
    const kills: string[] = [];
    for (const node of [1, 0, 2]) {
      const at = sessions_done + chargers_count * 2;
      await Promise.race([eventually(async () => (sessions_done >= at ? true : undefined), 180_000), failed]);
      await cluster.kill(node);
      kills.push(`n${node + 1} at ${sessions_done} sessions`);
      await new Promise((r) => setTimeout(r, 3_000));
      await cluster.restart(node);
      // The next node may go only once this one has caught up: one down at a time.
      await cluster.healthy();
    }
    const more = sessions_done + chargers_count * 2;
    await Promise.race([eventually(async () => (sessions_done >= more ? true : undefined), 180_000), failed]);
    stopping = true;
    await failed;
    const total_sessions = sessions_done;
    const stats = chargers.map((c) => ({ id: c.id, ...c.stats }));
    console.log(`NATS nodes killed: ${kills.join(', ')}; chargers: ${JSON.stringify(stats)}`);
    expect(kills).toHaveLength(3);

    // Every finished session priced, once, with the price of its energy.
    const expected = new Map<string, number>();
    for (const c of chargers) for (const [tx, wh] of c.sessions) expected.set(`${c.id}/${tx}`, wh);
    expect(expected.size).toBe(total_sessions);
    const count = async (sql: string) => Number((await store.query<{ n: string }>(sql))[0]?.n ?? 0);
    const rated = () =>
      count(
        `SELECT toString(count()) AS n FROM evrate.rated_sessions FINAL WHERE charge_point_id LIKE 'CP-CL-%'`,
      );
    try {
      await eventually(async () => ((await rated()) === total_sessions ? true : undefined), 300_000);
    } catch (error) {
      const stored = await store.query<{ session_id: string }>(
        `SELECT session_id FROM evrate.rated_sessions FINAL WHERE charge_point_id LIKE 'CP-CL-%'`,
      );
      const have = new Set(stored.map((r) => r.session_id));
      const missing = [...expected.keys()].filter((id) => !have.has(id));
      for (const [i, p] of processes.entries()) writeFileSync(`/tmp/cluster-process-${i}.log`, p.output());
      throw new Error(
        `${have.size} of ${total_sessions} sessions rated; missing ${missing.slice(0, 20).join(' ')} (${String(error)})`,
      );
    }
    const rows = await store.query<{ session_id: string; energy_wh: string; excl: string; incl: string }>(
      `SELECT session_id, toString(energy_wh) AS energy_wh, toString(total_excl_vat) AS excl,
              toString(total_incl_vat) AS incl
       FROM evrate.rated_sessions FINAL WHERE charge_point_id LIKE 'CP-CL-%'`,
    );
    const cents = (text: string) => Math.round(Number(text) * 100);
    for (const row of rows) {
      const wh = expected.get(row.session_id);
      expect(wh, row.session_id).toBeDefined();
      expect(Number(row.energy_wh), row.session_id).toBe(wh);
      // 2,800 Wh at 0.30/kWh: 0.84 excl. VAT, exact in cents; VAT 21 % on it.
      const excl_cents = (wh! * price_per_kwh * 100) / 1000;
      expect(cents(row.excl), row.session_id).toBe(Math.round(excl_cents));
      expect(cents(row.incl), row.session_id).toBe(Math.round(excl_cents * 1.21));
    }
    // Counted without FINAL: one final version per session, and each reading stored once.
    const final_versions = await store.query<{ session_id: string; n: string }>(
      `SELECT session_id, toString(count()) AS n FROM evrate.rated_session_versions
       WHERE charge_point_id LIKE 'CP-CL-%' AND provisional = 0 GROUP BY session_id`,
    );
    expect(final_versions.length).toBe(total_sessions);
    expect(final_versions.filter((r) => r.n !== '1')).toEqual([]);
    const answered = chargers.reduce((n, c) => n + c.meter_values_answered, 0);
    expect(
      await count(
        `SELECT toString(count()) AS n FROM evrate.meter_values WHERE charge_point_id LIKE 'CP-CL-%' AND measurand = 'Energy.Active.Import.Register' AND transaction_id != ''`,
      ),
    ).toBe(answered);

    // Both API processes answer the same.
    const sample = [...expected.keys()][5]!;
    const views = await Promise.all(
      api.map(async (p) => {
        const res = await fetch(`${p.api_url}/v1/sessions/${encodeURIComponent(sample)}`, {
          headers: { authorization: `Bearer ${operator_token}` },
        });
        expect(res.status).toBe(200);
        const body = (await res.json()) as { total_incl_vat: string; energy_wh: number };
        return `${body.energy_wh} ${body.total_incl_vat}`;
      }),
    );
    expect(views[0]).toBe(views[1]);
  }, 600_000);
});
