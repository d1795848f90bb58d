import { AckPolicy, DeliverPolicy, type JsMsg } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { Counter, Gauge, Histogram } from 'prom-client';
import { meter_value_json_rows } from '../analytics/meter-values.js';
import { ocpp_frame_json } from '../analytics/ocpp-frames.js';
import { rated_session_json } from '../analytics/sessions.js';
import type { Sink } from '../analytics/sink.js';
import type { Logger } from '../core/log.js';
import { metrics_registry } from '../core/metrics.js';
import { Money } from '../core/money.js';
import { type Nats, open_kv } from '../core/nats.js';
import { partition_of, partition_subject } from '../core/partitions.js';
import { publish_rated_versions } from '../core/rated-feed.js';
import { decode_event_batch, type OcppEvent, type TransactionStartedEvent } from '../schemas/events.js';
import { session_clock } from './clock.js';
import { PartitionLeases } from './leases.js';
import {
  attribution_of,
  cost_subject,
  event_fact,
  type RatedVersionRow,
  type RunningCostMessage,
  rated_row,
  rated_version_json,
  start_fact,
} from './outputs.js';
import type { Plan } from './plans.js';
import type { PricingPool } from './pool.js';
import {
  new_session_state,
  type RatedVersion,
  type SessionEvent,
  type SessionMeta,
  type SessionRules,
  type SessionState,
  upgraded_state,
} from './session.js';
import type { TariffStore, TariffVersion } from './tariff-store.js';
import { type SessionTask, tariff_key } from './worker.js';

const events_consumed = new Counter({
  name: 'evrate_rating_events_total',
  help: 'OCPP events consumed by the rating service, by kind',
  labelNames: ['kind'],
  registers: [metrics_registry],
});
const sessions_rated = new Counter({
  name: 'evrate_rating_sessions_rated_total',
  help: 'Rated session versions written (final and provisional)',
  labelNames: ['kind'],
  registers: [metrics_registry],
});
const rating_anomalies = new Counter({
  name: 'evrate_rating_anomalies_total',
  help: 'Facts that needed a rule (late sample, register reset, clock skew...) or could not be rated',
  labelNames: ['reason'],
  registers: [metrics_registry],
});
const batch_failures = new Counter({
  name: 'evrate_rating_batch_failures_total',
  help: 'Batches whose processing failed and will be retried (e.g. ClickHouse down)',
  registers: [metrics_registry],
});
const consumer_pending = new Gauge({
  name: 'evrate_rating_consumer_pending_messages',
  help: 'Messages in the stream not yet delivered to the rating consumer of a partition (lag)',
  labelNames: ['partition'],
  registers: [metrics_registry],
});
const event_lag_seconds = new Histogram({
  name: 'evrate_rating_event_lag_seconds',
  help: 'From ingest accepting an event to the rating service having written its effects',
  buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300],
  registers: [metrics_registry],
});
const partitions_owned = new Gauge({
  name: 'evrate_rating_partitions_owned',
  help: 'Event partitions this process owns',
  registers: [metrics_registry],
});

/** Resolves the membership plan of the driver presenting a token. */
export type PlanOfToken = (id_tag: string) => Promise<Plan | undefined>;

/** The charge point's assigned tariff, location time zone and station (each optional). */
export type SiteOf = (
  charge_point_id: string,
) => Promise<
  { tariff_id?: string; time_zone?: string; station_id?: string; max_power_w?: number } | undefined
>;

export interface RatingOptions {
  process_id: string;
  partitions: number;
  fetch_batch_max: number;
  default_tariff_id: string;
  default_time_zone: string;
  /** Bound on session states held in memory; KV stays the source of truth. */
  sessions_cached_max: number;
  rules: SessionRules;
  lease_ttl_ms: number;
  /** Subject prefix for running costs: "<prefix>.cost.<base64url(charge point id)>". */
  cost_subject_prefix: string;
}

/** What a partition's consumer delivered and the runner has not taken yet. */
interface Feed {
  queue: JsMsg[];
  /** The subscription ended (consumer deleted, connection closed). */
  done: boolean;
  wake: (() => void) | undefined;
}

/** How often a batch being written tells JetStream it is still in hand (ack_wait is 60 s). */
const ack_heartbeat_ms = 15_000;

/** How often a caught-up partition looks for silent sessions among those in memory. */
const sweep_ms = 60_000;
/** How often it looks at all its open sessions in KV (and once after taking the partition). */
const kv_sweep_ms = 10 * 60_000;
/** Sessions closed by one sweep at most; the next sweep takes the rest. */
const sweep_sessions_max = 10_000;

/** How long a partial batch waits for more of a burst before it is processed. */
const batch_linger_ms = 5;

/** Sessions are identified by charge point and transaction id (2.0.1 ids are per charger). */
export function session_id_of(charge_point_id: string, transaction_id: string): string {
  return `${charge_point_id}/${transaction_id}`;
}

/**
 * KV key of a session's state: "s.p<partition>.<base64url(session id)>", so that a partition's
 * open sessions can be listed (the silence sweep after a restart or a partition move).
 */
function key_of(id: string, partition: number): string {
  return `s.p${partition}.${Buffer.from(id, 'utf8').toString('base64url')}`;
}

/** The key states had before they were kept by partition; still read. */
function legacy_key_of(id: string): string {
  return `s.${Buffer.from(id, 'utf8').toString('base64url')}`;
}

/** The session id in a state key of either form. */
function session_of_key(key: string): string {
  return Buffer.from(key.slice(key.lastIndexOf('.') + 1), 'base64url').toString('utf8');
}

function connector_key(charge_point_id: string, connector_id: number): string {
  return `c.${Buffer.from(`${charge_point_id}/${connector_id}`, 'utf8').toString('base64url')}`;
}

interface ConnectorState {
  session_id: string | null;
  status: string;
}

/** What is kept in KV for an open session: the state, plus a flat view for the APIs. */
interface StoredSession extends SessionState {
  session_id: string;
  charge_point_id: string;
  transaction_id: string;
  connector_id: number;
  id_tag: string;
  meter_start_wh: number;
  started_at_ms: number;
  tariff_id: string;
  tariff_version: number;
}

function stored(state: SessionState): StoredSession {
  const m = state.meta;
  return {
    ...state,
    session_id: m.session_id,
    charge_point_id: m.charge_point_id,
    transaction_id: m.transaction_id,
    connector_id: m.connector_id,
    id_tag: m.id_tag,
    meter_start_wh: m.meter_start_wh,
    started_at_ms: m.started_at_ms,
    tariff_id: m.tariff_id,
    tariff_version: m.tariff_version,
  };
}

/**
 * The streaming rating service. Each owned partition has a durable pull consumer; a fetched batch
 * is processed as a whole: events routed to their sessions, priced on the worker pool, raw facts
 * and rated versions inserted into ClickHouse, session states checkpointed to KV, and only then
 * acknowledged. A crash anywhere before the ack redelivers the batch, which rewrites identical
 * rows (deterministic ids and versions) and skips events a checkpoint already holds (per-session
 * stream sequence), so no kWh or cent is lost or counted twice.
 */
export class RatingService {
  private running = false;
  private readonly runners = new Map<number, Promise<void>>();
  private readonly stopping = new Set<number>();
  private readonly sessions = new Map<string, SessionState>();
  /** Open sessions read from a key of the form before states were kept by partition. */
  private readonly legacy_keyed = new Set<string>();
  private leases_timer: NodeJS.Timeout | undefined;
  private renew_timer: NodeJS.Timeout | undefined;
  private renewing = false;
  private leases_busy: Promise<void> = Promise.resolve();
  private readonly tariff_cache = new Map<string, TariffVersion>();
  /** When each partition last looked for silent sessions, in memory and in KV. */
  private readonly last_sweep_ms = new Map<number, number>();
  private readonly last_kv_sweep_ms = new Map<number, number>();
  private readonly started_ms = Date.now();

  private constructor(
    private readonly nats: Nats,
    private readonly sink: Sink,
    private readonly pool: PricingPool,
    private readonly tariffs: TariffStore,
    private readonly open_bucket: KV,
    private readonly done_bucket: KV,
    private readonly connector_bucket: KV,
    private readonly leases: PartitionLeases,
    private readonly options: RatingOptions,
    private readonly stream: string,
    private readonly log: Logger,
    private readonly plan_of_token: PlanOfToken,
    private readonly site_of: SiteOf,
  ) {}

  static async start(
    deps: {
      nats: Nats;
      /** Batched inserts shared by every partition; a write settles when its rows are stored. */
      sink: Sink;
      pool: PricingPool;
      tariffs: TariffStore;
      log: Logger;
      /** The membership plan of the driver presenting a token (none when absent). */
      plan_of_token?: PlanOfToken;
      /** What the operator assigned to a charge point: tariff, time zone, station. */
      site_of?: SiteOf;
    },
    options: RatingOptions,
    stream: string,
  ): Promise<RatingService> {
    const service = new RatingService(
      deps.nats,
      deps.sink,
      deps.pool,
      deps.tariffs,
      await open_kv(deps.nats, 'evrate_sessions_open'),
      // Finished sessions are remembered for a week so that a redelivered or late stop finds them.
      await open_kv(deps.nats, 'evrate_sessions_done', { ttl_ms: 7 * 24 * 3600 * 1000 }),
      await open_kv(deps.nats, 'evrate_connectors'),
      await PartitionLeases.open(
        deps.nats,
        { process_id: options.process_id, partitions: options.partitions, ttl_ms: options.lease_ttl_ms },
        deps.log,
      ),
      options,
      stream,
      deps.log,
      deps.plan_of_token ?? (async () => undefined),
      deps.site_of ?? (async () => undefined),
    );
    service.running = true;
    await service.rebalance();
    const period_ms = Math.max(200, Math.floor(options.lease_ttl_ms / 3));
    service.leases_timer = setInterval(() => {
      service.leases_busy = service.leases_busy.then(() => service.rebalance()).catch(() => {});
    }, period_ms);
    // Renewal has its own timer: a rebalance waits for runners to finish their batch, and a lease
    // must not expire meanwhile (another process would take the partition while this one still
    // works on it).
    service.renew_timer = setInterval(() => {
      if (service.renewing) return;
      service.renewing = true;
      service
        .renew()
        .catch((error: unknown) => service.log.warn({ err: error }, 'partition lease renewal failed'))
        .finally(() => {
          service.renewing = false;
        });
    }, period_ms);
    return service;
  }

  /** Owned partitions, for tests and the log. */
  owned_partitions(): number[] {
    return [...this.runners.keys()].sort((a, b) => a - b);
  }

  private async renew(): Promise<void> {
    const lost = await this.leases.renew();
    // Stop at once: the partition may already be another process's.
    for (const partition of lost) this.stopping.add(partition);
    await Promise.all(lost.map((partition) => this.stop_runner(partition)));
  }

  private async rebalance(): Promise<void> {
    if (!this.running) return;
    try {
      const desired = await this.leases.desired();
      const surplus = [...this.leases.owned()].filter((partition) => !desired.has(partition));
      for (const partition of surplus) this.stopping.add(partition);
      await Promise.all(
        surplus.map(async (partition) => {
          await this.stop_runner(partition);
          await this.leases.release(partition);
        }),
      );
      for (const partition of desired) {
        if (this.runners.has(partition) || !this.running) continue;
        if (await this.leases.claim(partition)) this.start_runner(partition);
      }
      partitions_owned.set(this.runners.size);
      // Lag: what the stream holds for each owned partition that is not yet acknowledged.
      for (const partition of this.runners.keys()) {
        const info = await this.nats.jsm.consumers
          .info(this.stream, `rating-p${partition}`)
          .catch(() => undefined);
        if (info !== undefined) {
          consumer_pending.set({ partition: String(partition) }, info.num_pending + info.num_ack_pending);
        }
      }
    } catch (error) {
      this.log.warn({ err: error }, 'partition rebalance failed; retrying');
    }
  }

  private start_runner(partition: number): void {
    this.stopping.delete(partition);
    this.last_kv_sweep_ms.delete(partition); // sessions left by the previous owner: sweep KV first
    const runner = this.run(partition).catch((error: unknown) => {
      this.log.error({ err: error, partition }, 'partition runner failed');
    });
    this.runners.set(partition, runner);
  }

  private async stop_runner(partition: number): Promise<void> {
    const runner = this.runners.get(partition);
    if (runner === undefined) return;
    this.stopping.add(partition);
    await runner;
    this.runners.delete(partition);
    // States of sessions of that partition are in KV; the next owner reads them there.
    this.sessions.clear();
  }

  private active(partition: number): boolean {
    return this.running && !this.stopping.has(partition);
  }

  private async run(partition: number): Promise<void> {
    const consumer_name = `rating-p${partition}`;
    await this.take_over_consumer(partition, consumer_name);
    while (this.active(partition)) {
      // Messages flow continuously (consume, not fetch: a fetch waits up to its 1 s expiry for a
      // full batch, which would be the latency of a quiet partition). The consumer's
      // max_ack_pending of one batch bounds what is delivered and not yet acknowledged.
      let messages: Awaited<ReturnType<Awaited<ReturnType<typeof this.nats.js.consumers.get>>['consume']>>;
      try {
        const consumer = await this.nats.js.consumers.get(this.stream, consumer_name);
        messages = await consumer.consume({ max_messages: this.options.fetch_batch_max, expires: 5000 });
      } catch (error) {
        this.log.warn({ err: error, partition }, 'consumer not available; retrying');
        await sleep(500);
        continue;
      }
      const feed: Feed = { queue: [], done: false, wake: undefined };
      const pump = (async () => {
        for await (const message of messages) {
          feed.queue.push(message);
          feed.wake?.();
        }
      })()
        .catch((error: unknown) => this.log.warn({ err: error, partition }, 'consume ended'))
        .finally(() => {
          feed.done = true;
          feed.wake?.();
        });
      try {
        await this.run_batches(partition, feed);
      } finally {
        await messages.close().catch(() => {});
        await pump;
      }
    }
  }

  /** Takes what the partition's consumer delivered, a batch at a time, and acknowledges it when written. */
  private async run_batches(partition: number, feed: Feed): Promise<void> {
    const { queue } = feed;
    let failures = 0;
    while (this.active(partition)) {
      if (queue.length === 0) {
        if (feed.done) return; // the subscription ended: the caller opens a new one
        await new Promise<void>((resolve) => {
          feed.wake = resolve;
          setTimeout(resolve, 500);
        });
        if (queue.length === 0) {
          // Caught up (nothing delivered for a while): silence now means the charger is silent.
          await this.sweep_silent(partition);
          continue;
        }
      }
      // Group commit: a few ms for the rest of a burst to arrive.
      if (queue.length < this.options.fetch_batch_max) await sleep(batch_linger_ms);
      const batch = queue.splice(0, this.options.fetch_batch_max);
      // A batch is retried in place until it is written; the stream holds everything behind it.
      while (batch.length > 0) {
        // Writes wait while ClickHouse is down (the sink retries): keep the batch's ack deadline
        // moving, or JetStream would redeliver it behind our back, out of order.
        const heartbeat = setInterval(() => {
          for (const message of batch) message.working();
        }, ack_heartbeat_ms);
        try {
          await this.process(batch);
          for (const message of batch) message.ack();
          failures = 0;
          break;
        } catch (error) {
          batch_failures.inc();
          failures++;
          this.log.error({ err: error, attempt: failures, partition }, 'rating batch failed; retrying');
          for (const message of batch) message.working();
          if (!this.active(partition)) return;
          await sleep(Math.min(100 * 2 ** failures, 5000));
        } finally {
          clearInterval(heartbeat);
        }
      }
      const info = batch.at(-1)?.info;
      if (info !== undefined) consumer_pending.set({ partition: String(partition) }, info.pending);
      if (info !== undefined && info.pending === 0) await this.sweep_silent(partition);
    }
  }

  /**
   * Opens the partition's durable consumer so that it delivers in stream order from the first
   * unacknowledged message. JetStream redelivers a dead owner's unacknowledged messages only after
   * ack_wait and after newer ones, which would apply a session's events out of order; so when the
   * consumer has messages pending acknowledgement, it is recreated to start at its ack floor.
   */
  private async take_over_consumer(partition: number, consumer_name: string): Promise<void> {
    const config = {
      durable_name: consumer_name,
      ack_policy: AckPolicy.Explicit,
      ack_wait: 60_000_000_000,
      // One batch in flight: the next fetch only comes after the previous batch was acknowledged.
      max_ack_pending: this.options.fetch_batch_max,
      filter_subject: partition_subject(this.nats.events_subject, partition),
    };
    let info: Awaited<ReturnType<typeof this.nats.jsm.consumers.info>> | undefined;
    try {
      info = await this.nats.jsm.consumers.info(this.stream, consumer_name);
    } catch {
      info = undefined;
    }
    if (
      info !== undefined &&
      info.num_ack_pending === 0 &&
      info.config.max_ack_pending === config.max_ack_pending
    ) {
      return;
    }
    if (info === undefined) {
      await this.nats.jsm.consumers.add(this.stream, { ...config, deliver_policy: DeliverPolicy.All });
      return;
    }
    const start_seq = info.ack_floor.stream_seq + 1;
    await this.nats.jsm.consumers.delete(this.stream, consumer_name);
    await this.nats.jsm.consumers.add(this.stream, {
      ...config,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: start_seq,
    });
    this.log.info(
      { partition, start_seq, pending: info.num_ack_pending },
      'partition consumer reset to its ack floor',
    );
  }

  private async tariff(tariff_id: string, version: number): Promise<TariffVersion> {
    const key = tariff_key(tariff_id, version);
    let found = this.tariff_cache.get(key);
    if (found === undefined) {
      found = await this.tariffs.version(tariff_id, version);
      if (found === undefined) throw new Error(`tariff ${key} missing from the tariff store`);
      if (this.tariff_cache.size > 10_000) this.tariff_cache.clear();
      this.tariff_cache.set(key, found);
    }
    return found;
  }

  /**
   * The tariff and plan of a session started at `at_ms` (its start on the server's clock): the
   * charge point's assigned tariff (else the default), unless the driver's plan (from the token)
   * names a members' tariff; of each, the version in force at the start (TariffStore.in_force_at).
   * A plan whose tariff is missing or whose fixed amounts are in another currency than the tariff
   * is not applied (counted and logged); an assigned tariff missing or not in force falls back to
   * the default. A default tariff not in force at the start still prices the session (its
   * current version, counted): no session is ever left unrated.
   */
  private async tariff_and_plan(
    id_tag: string,
    site_tariff_id: string | undefined,
    at_ms: number,
    heads: Map<string, Promise<TariffVersion | undefined>>,
    count: (anomaly: string) => void,
  ): Promise<{ tariff: TariffVersion; plan: Plan | undefined }> {
    const head = (tariff_id: string): Promise<TariffVersion | undefined> => {
      let found = heads.get(tariff_id);
      if (found === undefined) {
        found = this.tariffs.current(tariff_id);
        heads.set(tariff_id, found);
      }
      return found;
    };
    const at_start = async (tariff_id: string): Promise<TariffVersion | undefined> => {
      const newest = await head(tariff_id);
      return newest === undefined ? undefined : await this.tariffs.in_force_at(tariff_id, at_ms, newest);
    };
    const site_tariff = site_tariff_id === undefined ? undefined : await at_start(site_tariff_id);
    if (site_tariff_id !== undefined && site_tariff === undefined) {
      count('site_tariff_not_in_force');
      this.log.warn(
        { tariff_id: site_tariff_id, at_ms },
        'assigned tariff missing or not in force; default tariff used',
      );
    }
    let fallback = site_tariff ?? (await at_start(this.options.default_tariff_id));
    if (fallback === undefined) {
      fallback = await head(this.options.default_tariff_id);
      if (fallback === undefined) throw new Error(`tariff ${this.options.default_tariff_id} not found`);
      count('default_tariff_not_in_force');
    }
    const plan = id_tag === '' ? undefined : await this.plan_of_token(id_tag);
    if (plan === undefined) return { tariff: fallback, plan: undefined };
    const tariff = plan.tariff_id === undefined ? fallback : await at_start(plan.tariff_id);
    if (tariff === undefined) {
      count('plan_tariff_missing');
      this.log.warn({ plan_id: plan.id, tariff_id: plan.tariff_id }, 'plan tariff missing; plan not applied');
      return { tariff: fallback, plan: undefined };
    }
    const has_amounts = plan.discount_fixed_excl_vat !== undefined || plan.session_cap_excl_vat !== undefined;
    if (has_amounts && plan.currency !== tariff.tariff.currency) {
      count('plan_currency_mismatch');
      this.log.warn(
        { plan_id: plan.id, plan_currency: plan.currency, tariff_currency: tariff.tariff.currency },
        'plan currency differs from the tariff; plan not applied',
      );
      return { tariff: fallback, plan: undefined };
    }
    return { tariff, plan };
  }

  /**
   * What is fixed when a session starts: its start on the server's clock (rating/clock.ts), the
   * tariff and plan in force then, the site's zone, station and maximum power, and who pays.
   */
  private async session_meta(
    cp: string,
    s: TransactionStartedEvent,
    received_at_ms: number,
    heads: Map<string, Promise<TariffVersion | undefined>>,
  ): Promise<SessionMeta> {
    const anomalies: string[] = [];
    const count = (anomaly: string) => {
      rating_anomalies.inc({ reason: anomaly });
      anomalies.push(anomaly);
    };
    const clock = session_clock(s.timestampMs, received_at_ms, this.options.rules);
    if (clock.corrected) {
      count('clock_corrected');
      this.log.warn(
        { charge_point_id: cp, transaction_id: s.transactionId, clock_offset_ms: clock.clock_offset_ms },
        'charger clock wrong at the start; session timed by the receipt',
      );
    }
    const site = await this.site_of(cp);
    const { tariff, plan } = await this.tariff_and_plan(
      s.idTag,
      site?.tariff_id,
      clock.started_at_ms,
      heads,
      count,
    );
    const charging_state = s.chargingState ?? '';
    return {
      session_id: session_id_of(cp, s.transactionId),
      charge_point_id: cp,
      transaction_id: s.transactionId,
      connector_id: s.connectorId,
      evse_id: s.evseId,
      id_tag: s.idTag,
      ...attribution_of(s),
      started_at_ms: clock.started_at_ms,
      started_at_ms_charger: s.timestampMs,
      ...(clock.clock_offset_ms === 0 ? {} : { clock_offset_ms: clock.clock_offset_ms }),
      meter_start_wh: s.meterStartWh,
      tariff_id: tariff.tariff_id,
      tariff_version: tariff.version,
      time_zone: site?.time_zone ?? this.options.default_time_zone,
      ...(site?.station_id === undefined ? {} : { station_id: site.station_id }),
      ...(site?.max_power_w === undefined ? {} : { power_w_max: site.max_power_w }),
      ...(plan === undefined ? {} : { plan }),
      ...(charging_state === '' ? {} : { charging_state_at_start: charging_state }),
      ...(anomalies.length === 0 ? {} : { start_anomalies: anomalies }),
    };
  }

  private partition_of_session(charge_point_id: string): number {
    return partition_of(charge_point_id, this.options.partitions);
  }

  private async load(session_id: string, charge_point_id: string): Promise<SessionState | undefined> {
    const cached = this.sessions.get(session_id);
    if (cached !== undefined) return cached;
    const keys = [key_of(session_id, this.partition_of_session(charge_point_id)), legacy_key_of(session_id)];
    for (const bucket of [this.open_bucket, this.done_bucket]) {
      for (const key of keys) {
        const entry = await bucket.get(key);
        if (entry !== null && entry.operation === 'PUT') {
          const state = entry.json<SessionState>();
          // Entries written before session states existed carry no state: not resumable here.
          if (state.meta === undefined) return undefined;
          if (bucket === this.open_bucket && key === keys[1]) this.legacy_keyed.add(session_id);
          return upgraded_state(state);
        }
      }
    }
    return undefined;
  }

  private async process(batch: JsMsg[]): Promise<void> {
    const meter_rows: string[] = [];
    const status_rows: string[] = [];
    const connection_rows: string[] = [];
    const rejection_rows: string[] = [];
    const frame_rows: string[] = [];
    const work = new Map<
      string,
      { state: SessionState; events: SessionEvent[]; created: boolean; facts: string[] }
    >();
    const connectors = new Map<string, ConnectorState>();
    const connector_updates = new Map<string, ConnectorState>();
    // Current tariff versions read once per batch.
    const current_tariffs = new Map<string, Promise<TariffVersion | undefined>>();
    let oldest_received_ms = Number.POSITIVE_INFINITY;

    const connector = async (cp: string, connector_id: number): Promise<ConnectorState> => {
      const key = connector_key(cp, connector_id);
      let state = connectors.get(key);
      if (state === undefined) {
        const entry = await this.connector_bucket.get(key);
        state =
          entry !== null && entry.operation === 'PUT'
            ? entry.json<ConnectorState>()
            : { session_id: null, status: 'Unknown' };
        connectors.set(key, state);
      }
      return state;
    };
    const set_connector = (cp: string, connector_id: number, state: ConnectorState): void => {
      const key = connector_key(cp, connector_id);
      connectors.set(key, state);
      connector_updates.set(key, state);
    };
    const route = async (
      session_id: string,
      seq: number,
      idx: number,
      event: OcppEvent,
    ): Promise<boolean> => {
      let item = work.get(session_id);
      if (item === undefined) {
        const state = await this.load(session_id, event.chargePointId);
        if (state === undefined) return false;
        item = { state, events: [], created: false, facts: [] };
        work.set(session_id, item);
      }
      item.events.push({ seq, event });
      // The reducer skips what a checkpoint already holds; so does the fact log (rule 1).
      if (seq > item.state.last_seq) item.facts.push(event_fact(session_id, seq, idx, event));
      return true;
    };

    for (const message of batch) {
      let events: OcppEvent[];
      try {
        events = decode_event_batch(message.data).events;
      } catch (error) {
        // Not ours to fix: count it, keep the message in the stream for inspection, move on.
        rating_anomalies.inc({ reason: 'undecodable_batch' });
        this.log.error({ err: error, seq: message.seq }, 'undecodable event batch');
        continue;
      }
      const seq = message.seq;
      for (const [idx, event] of events.entries()) {
        events_consumed.inc({ kind: event.body });
        oldest_received_ms = Math.min(oldest_received_ms, event.receivedAtMs);
        const cp = event.chargePointId;
        if (event.rawFrame !== undefined && event.rawFrame !== '') {
          frame_rows.push(ocpp_frame_json(event as typeof event & { rawFrame: string }));
          // The frame is kept once, in ocpp_frames; the session log keeps the decoded facts.
          delete event.rawFrame;
        }
        if (event.body === 'connection') {
          const c = event.connection;
          connection_rows.push(
            JSON.stringify({
              charge_point_id: cp,
              node_id: c.nodeId,
              connected: c.connected ? 1 : 0,
              protocol: c.protocol,
              at: Math.floor(event.receivedAtMs / 1000),
              at_ms: event.receivedAtMs,
            }),
          );
        } else if (event.body === 'rejected') {
          const r = event.rejected;
          rejection_rows.push(
            JSON.stringify({
              charge_point_id: cp,
              node_id: r.nodeId,
              action: r.action,
              error_code: r.errorCode,
              at: Math.floor(event.receivedAtMs / 1000),
              at_ms: event.receivedAtMs,
            }),
          );
        } else if (event.body === 'status') {
          const s = event.status;
          const connector_id = s.evseId > 0 ? s.evseId : s.connectorId;
          status_rows.push(
            JSON.stringify({
              charge_point_id: cp,
              evse_id: s.evseId,
              connector_id: s.connectorId,
              status: s.status,
              error_code: s.errorCode,
              timestamp: Math.floor((s.timestampMs || event.receivedAtMs) / 1000),
              timestamp_ms: s.timestampMs || event.receivedAtMs,
              received_at_ms: event.receivedAtMs,
            }),
          );
          const state = await connector(cp, connector_id);
          set_connector(cp, connector_id, { ...state, status: s.status });
          if (state.session_id !== null) await route(state.session_id, seq, idx, event);
        } else if (event.body === 'started') {
          const s = event.started;
          const session_id = session_id_of(cp, s.transactionId);
          const connector_id = s.evseId > 0 ? s.evseId : s.connectorId;
          const existing = work.get(session_id)?.state ?? (await this.load(session_id, cp));
          if (existing !== undefined && existing.closed !== 'open') continue; // redelivered start
          if (existing === undefined) {
            const meta = await this.session_meta(cp, s, event.receivedAtMs, current_tariffs);
            const status = (await connector(cp, connector_id)).status;
            if (status !== 'Unknown') meta.status_at_start = status;
            const state = new_session_state(meta, seq, event.receivedAtMs);
            work.set(session_id, {
              state,
              events: [],
              created: true,
              facts: [start_fact(meta, seq, idx, event.receivedAtMs)],
            });
          }
          set_connector(cp, connector_id, { session_id, status: (await connector(cp, connector_id)).status });
        } else if (event.body === 'meterValues') {
          const m = event.meterValues;
          meter_rows.push(
            ...meter_value_json_rows(
              {
                charge_point_id: cp,
                connector_id: m.connectorId,
                transaction_id: m.transactionId,
                received_at_ms: event.receivedAtMs,
              },
              m.meterValues,
            ),
          );
          if (m.transactionId === '') continue; // connector-level values: evidence only
          if (!(await route(session_id_of(cp, m.transactionId), seq, idx, event))) {
            rating_anomalies.inc({ reason: 'meter_values_without_session' });
          }
        } else if (event.body === 'stopped') {
          const session_id = session_id_of(cp, event.stopped.transactionId);
          const routed = await route(session_id, seq, idx, event);
          const item = work.get(session_id);
          meter_rows.push(
            ...meter_value_json_rows(
              {
                charge_point_id: cp,
                connector_id: item?.state.meta.connector_id ?? 0,
                transaction_id: event.stopped.transactionId,
                received_at_ms: event.receivedAtMs,
              },
              event.stopped.transactionData,
            ),
          );
          if (!routed) {
            rating_anomalies.inc({ reason: 'stop_without_start' });
            this.log.error({ session_id }, 'stop without a known start; not rated');
            continue;
          }
          const m = item!.state.meta;
          const connector_id = m.evse_id > 0 ? m.evse_id : m.connector_id;
          const c = await connector(cp, connector_id);
          if (c.session_id === session_id)
            set_connector(cp, connector_id, { session_id: null, status: c.status });
        }
      }
    }

    const fact_rows: string[] = [];
    const tasks: SessionTask[] = [];
    for (const item of work.values()) {
      for (const fact of item.facts) fact_rows.push(fact);
      if (item.events.length === 0 && !item.created) continue;
      tasks.push({
        state: item.state,
        events: item.events,
        tariff_key: tariff_key(item.state.meta.tariff_id, item.state.meta.tariff_version),
      });
    }
    const { states, rated, costs } = await this.price(tasks);
    // Running costs go out at once: they come from events already durable in JetStream, and a
    // redelivered batch republishes the same figures. Only the display waits on nothing here.
    for (const cost of costs) {
      this.nats.nc.publish(
        cost_subject(this.options.cost_subject_prefix, cost.charge_point_id),
        JSON.stringify(cost),
      );
    }

    await Promise.all([
      this.sink.write('meter_values', meter_rows),
      this.sink.write('connector_status', status_rows),
      this.sink.write('charger_connections', connection_rows),
      this.sink.write('ocpp_rejections', rejection_rows),
      this.sink.write('session_events', fact_rows),
      this.sink.write('ocpp_frames', frame_rows),
      this.write_rated(rated),
    ]);
    await Promise.all([
      this.checkpoint(states),
      ...[...connector_updates].map(([key, state]) => this.connector_bucket.put(key, JSON.stringify(state))),
    ]);
    if (Number.isFinite(oldest_received_ms))
      event_lag_seconds.observe((Date.now() - oldest_received_ms) / 1000);
  }

  /** Runs the tasks on the pool; a session whose pricing fails keeps its state and is counted. */
  private async price(
    tasks: SessionTask[],
  ): Promise<{ states: SessionState[]; rated: RatedVersionRow[]; costs: RunningCostMessage[] }> {
    const tariffs: Record<string, TariffVersion['tariff']> = {};
    for (const task of tasks) {
      const m = task.state.meta;
      tariffs[task.tariff_key] = (await this.tariff(m.tariff_id, m.tariff_version)).tariff;
    }
    const outcomes = await this.pool.run({ tasks, tariffs, rules: this.options.rules, now_ms: Date.now() });
    const states: SessionState[] = [];
    const rated: RatedVersionRow[] = [];
    const costs: RunningCostMessage[] = [];
    outcomes.forEach((outcome, i) => {
      const task = tasks[i]!;
      if (!outcome.ok) {
        // Deterministic: retrying cannot help. The events are skipped (the raw facts are kept in
        // meter_values) and the session is flagged for a re-rating.
        rating_anomalies.inc({ reason: 'pricing_error' });
        this.log.error(
          { session_id: task.state.meta.session_id, error: outcome.error },
          'pricing failed; events skipped',
        );
        const seqs = (task.events ?? []).map((e) => e.seq);
        const state = structuredClone(task.state);
        state.last_seq = Math.max(state.last_seq, ...seqs);
        state.anomalies.pricing_error = (state.anomalies.pricing_error ?? 0) + 1;
        states.push(state);
        return;
      }
      if (outcome.outcome === undefined) return;
      const { state } = outcome.outcome;
      for (const [reason, n] of Object.entries(state.anomalies)) {
        const before = task.state.anomalies[reason] ?? 0;
        if (n > before) rating_anomalies.inc({ reason }, n - before);
      }
      states.push(state);
      for (const version of outcome.outcome.rated) {
        rated.push({
          row: rated_row(state, version),
          reason: version.provisional ? 'provisional' : version.version > 1 ? 'late_stop' : 'live',
          previous_total: version.previous_total,
        });
        sessions_rated.inc({ kind: version.provisional ? 'provisional' : 'final' });
      }
      const cost = outcome.outcome.running_cost;
      if (cost !== null) {
        costs.push({
          session_id: state.meta.session_id,
          charge_point_id: state.meta.charge_point_id,
          transaction_id: state.meta.transaction_id,
          currency: tariffs[task.tariff_key]!.currency,
          total_cost: cost,
          energy_wh: state.energy_wh,
          at_ms: state.rater?.last.at_ms ?? state.meta.started_at_ms,
        });
      }
    });
    return { states, rated, costs };
  }

  /** Latest versions to rated_sessions, every version to rated_session_versions (audit). */
  private async write_rated(rated: RatedVersionRow[]): Promise<void> {
    await Promise.all([
      this.sink.write(
        'rated_sessions',
        rated.map((r) => rated_session_json(r.row)),
      ),
      this.sink.write('rated_session_versions', rated.map(rated_version_json)),
    ]);
    // Announced to billing only once stored: a crash between the two republishes on redelivery.
    await publish_rated_versions(
      this.nats,
      rated.map((r) => r.row),
    );
  }

  /** Session states to KV: open ones in the open bucket, closed ones moved to the done bucket. */
  private async checkpoint(states: SessionState[]): Promise<void> {
    await Promise.all(
      states.map(async (state) => {
        const id = state.meta.session_id;
        const key = key_of(id, this.partition_of_session(state.meta.charge_point_id));
        const value = JSON.stringify(stored(state));
        if (state.closed === 'open') {
          await this.open_bucket.put(key, value);
          this.remember(state);
        } else {
          await this.done_bucket.put(key, value);
          await this.open_bucket.delete(key);
          this.sessions.delete(id);
        }
        if (this.legacy_keyed.delete(id)) await this.open_bucket.delete(legacy_key_of(id));
      }),
    );
  }

  /**
   * Rule 8: closes open sessions that have been silent too long. Once a minute it looks at the
   * partition's sessions held in memory; every `kv_sweep_ms`, and at the first sweep after the
   * partition was taken (a restart, a partition moved from another process), at every open
   * session the partition has in KV, so a session whose stop never comes is closed wherever its
   * state was last checkpointed.
   *
   * Only the partition's own runner sweeps its sessions, between its batches: a sweep racing the
   * runner could write a provisional version over the final one. And only when the partition is
   * caught up: while a backlog is being worked off, old events are not silence.
   */
  private async sweep_silent(partition: number): Promise<void> {
    const now = Date.now();
    const silence_ms = this.options.rules.silence_ms;
    if (now - (this.last_sweep_ms.get(partition) ?? this.started_ms) < Math.min(sweep_ms, silence_ms)) return;
    this.last_sweep_ms.set(partition, now);
    const due_of = (s: SessionState) =>
      s.closed === 'open' &&
      now - s.last_activity_ms >= silence_ms &&
      this.partition_of_session(s.meta.charge_point_id) === partition;
    const due = new Map<string, SessionState>();
    for (const state of this.sessions.values()) if (due_of(state)) due.set(state.meta.session_id, state);
    const last_kv_sweep = this.last_kv_sweep_ms.get(partition);
    if (last_kv_sweep === undefined || now - last_kv_sweep >= Math.min(kv_sweep_ms, silence_ms)) {
      this.last_kv_sweep_ms.set(partition, now);
      for (const state of await this.open_states_in_kv(partition)) {
        if (due.size >= sweep_sessions_max) break;
        if (due_of(state)) due.set(state.meta.session_id, state);
      }
    }
    if (due.size === 0) return;
    const tasks: SessionTask[] = [...due.values()].slice(0, sweep_sessions_max).map((state) => ({
      state,
      tariff_key: tariff_key(state.meta.tariff_id, state.meta.tariff_version),
    }));
    const { states, rated } = await this.price(tasks);
    await this.write_rated(rated);
    await this.checkpoint(states);
    this.log.info({ sessions: rated.length, partition }, 'silent sessions closed provisionally');
  }

  /** The partition's open sessions checkpointed in KV (either key form), at most `sweep_sessions_max` read. */
  private async open_states_in_kv(partition: number): Promise<SessionState[]> {
    const states: SessionState[] = [];
    for (const filter of [`s.p${partition}.*`, 's.*']) {
      const keys: string[] = [];
      for await (const key of await this.open_bucket.keys(filter)) keys.push(key);
      for (const key of keys) {
        if (states.length >= sweep_sessions_max) return states;
        const session_id = session_of_key(key);
        const cached = this.sessions.get(session_id);
        if (cached !== undefined) continue; // the in-memory pass has it
        const entry = await this.open_bucket.get(key);
        if (entry === null || entry.operation !== 'PUT') continue;
        const state = entry.json<SessionState>();
        if (state.meta === undefined) continue;
        if (this.partition_of_session(state.meta.charge_point_id) !== partition) continue;
        if (filter === 's.*') this.legacy_keyed.add(session_id);
        states.push(upgraded_state(state));
      }
    }
    return states;
  }

  private remember(state: SessionState): void {
    this.sessions.delete(state.meta.session_id);
    if (this.sessions.size >= this.options.sessions_cached_max) {
      const oldest = this.sessions.keys().next().value;
      if (oldest !== undefined) this.sessions.delete(oldest);
    }
    this.sessions.set(state.meta.session_id, state);
  }

  async close(): Promise<void> {
    this.running = false;
    if (this.leases_timer !== undefined) clearInterval(this.leases_timer);
    if (this.renew_timer !== undefined) clearInterval(this.renew_timer);
    await this.leases_busy;
    await Promise.all(this.runners.values());
    this.runners.clear();
    await this.leases.leave().catch(() => {});
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
