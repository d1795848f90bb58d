import { AckPolicy, type JsMsg } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { Counter, Gauge } from 'prom-client';
import { meter_value_json_rows } from '../analytics/meter-values.js';
import { type RatedSessionRow, rated_session_json } from '../analytics/sessions.js';
import type { Store } from '../analytics/store.js';
import type { Logger } from '../core/log.js';
import { metrics_registry } from '../core/metrics.js';
import { type Nats, open_kv } from '../core/nats.js';
import { decode_event_batch, type OcppEvent } from '../schemas/events.js';
import type { PricingPool } from './pool.js';
import type { TariffStore, TariffVersion } from './tariff-store.js';
import type { PriceTask } from './worker.js';

const events_consumed = new Counter({
  name: 'evrate_rating_events_total',
  help: 'OCPP events consumed by the rating service, by kind',
  labelNames: ['kind'],
  registers: [metrics_registry],
});
const sessions_rated = new Counter({
  name: 'evrate_rating_sessions_rated_total',
  help: 'Sessions priced and written',
  registers: [metrics_registry],
});
const rating_anomalies = new Counter({
  name: 'evrate_rating_anomalies_total',
  help: 'Events that could not be rated (stop without start, pricing error, missing tariff)',
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
  help: 'Messages in the stream not yet delivered to the rating consumer (lag)',
  registers: [metrics_registry],
});

/** What the rating service remembers of an open session between its start and stop events. */
export interface OpenSession {
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

export interface RatingOptions {
  consumer_name: string;
  fetch_batch_max: number;
  default_tariff_id: string;
  /** Bound on sessions held in memory; the KV bucket stays the source of truth. */
  open_sessions_cached_max: number;
}

/** Sessions are identified by charge point and transaction id (2.0.1 ids are per charger). */
export function session_id_of(charge_point_id: string, transaction_id: string): string {
  return `${charge_point_id}/${transaction_id}`;
}

function kv_key(session_id: string): string {
  return `s.${Buffer.from(session_id, 'utf8').toString('base64url')}`;
}

/**
 * The streaming rating service: a durable pull consumer on the events stream. Each fetched batch
 * is processed as a whole — open sessions recorded in KV, raw meter values and priced sessions
 * inserted into ClickHouse — and only then acknowledged, so a crash at any point is followed by a
 * redelivery that rewrites the same rows (idempotent by session id and version).
 */
export class RatingService {
  private running = false;
  private loop: Promise<void> | undefined;
  private readonly cache = new Map<string, OpenSession>();

  private constructor(
    private readonly nats: Nats,
    private readonly store: Store,
    private readonly pool: PricingPool,
    private readonly tariffs: TariffStore,
    private readonly open_kv_bucket: KV,
    private readonly done_kv_bucket: KV,
    private readonly options: RatingOptions,
    private readonly log: Logger,
  ) {}

  static async start(
    deps: { nats: Nats; store: Store; pool: PricingPool; tariffs: TariffStore; log: Logger },
    options: RatingOptions,
    stream: string,
  ): Promise<RatingService> {
    await deps.nats.jsm.consumers.add(stream, {
      durable_name: options.consumer_name,
      ack_policy: AckPolicy.Explicit,
      ack_wait: 60_000_000_000,
      max_ack_pending: 20_000,
      filter_subject: `${deps.nats.events_subject}.>`,
    });
    const service = new RatingService(
      deps.nats,
      deps.store,
      deps.pool,
      deps.tariffs,
      await open_kv(deps.nats, 'evrate_sessions_open'),
      // Finished sessions are remembered for a day so that a redelivered stop still finds its start.
      await open_kv(deps.nats, 'evrate_sessions_done', { ttl_ms: 24 * 3600 * 1000 }),
      options,
      deps.log,
    );
    service.running = true;
    service.loop = service.run(stream);
    return service;
  }

  private async run(stream: string): Promise<void> {
    const consumer = await this.nats.js.consumers.get(stream, this.options.consumer_name);
    let failures = 0;
    while (this.running) {
      const batch: JsMsg[] = [];
      try {
        const messages = await consumer.fetch({ max_messages: this.options.fetch_batch_max, expires: 1000 });
        for await (const message of messages) batch.push(message);
      } catch (error) {
        if (!this.running) break;
        this.log.warn({ err: error }, 'fetch failed');
        await sleep(500);
        continue;
      }
      // A batch is retried in place until it is written; the stream holds everything behind it.
      while (batch.length > 0) {
        try {
          await this.process(batch);
          for (const message of batch) message.ack();
          failures = 0;
          break;
        } catch (error) {
          batch_failures.inc();
          failures++;
          this.log.error({ err: error, attempt: failures }, 'rating batch failed; retrying');
          for (const message of batch) message.working();
          if (!this.running) return;
          await sleep(Math.min(100 * 2 ** failures, 5000));
        }
      }
      const info = batch.at(-1)?.info;
      if (info !== undefined) consumer_pending.set(info.pending);
    }
  }

  private async process(batch: JsMsg[]): Promise<void> {
    const events: OcppEvent[] = [];
    for (const message of batch) {
      try {
        events.push(...decode_event_batch(message.data).events);
      } catch (error) {
        // Not ours to fix: count it, keep the message in the stream for inspection, move on.
        rating_anomalies.inc({ reason: 'undecodable_batch' });
        this.log.error({ err: error, seq: message.seq }, 'undecodable event batch');
      }
    }
    const meter_rows: string[] = [];
    const started = new Map<string, OpenSession>();
    const finished: { open: OpenSession; stop: Extract<OcppEvent, { body: 'stopped' }> }[] = [];
    // Sessions starting in one batch (a few milliseconds of events) share the tariff version
    // current when the batch is processed: one KV read per batch, not one per session.
    let current_tariff: Promise<TariffVersion | undefined> | undefined;

    for (const event of events) {
      events_consumed.inc({ kind: event.body });
      if (event.body === 'started') {
        const s = event.started;
        const session_id = session_id_of(event.chargePointId, s.transactionId);
        if ((await this.done_kv_bucket.get(kv_key(session_id))) !== null) continue; // redelivered
        current_tariff ??= this.tariffs.current(this.options.default_tariff_id);
        const tariff = await current_tariff;
        if (tariff === undefined) throw new Error(`tariff ${this.options.default_tariff_id} not found`);
        const open: OpenSession = {
          session_id,
          charge_point_id: event.chargePointId,
          transaction_id: s.transactionId,
          connector_id: s.connectorId,
          id_tag: s.idTag,
          meter_start_wh: s.meterStartWh,
          started_at_ms: s.timestampMs,
          tariff_id: tariff.tariff_id,
          tariff_version: tariff.version,
        };
        started.set(session_id, open);
        this.remember(open);
      } else if (event.body === 'meterValues') {
        const m = event.meterValues;
        meter_rows.push(
          ...meter_value_json_rows(
            {
              charge_point_id: event.chargePointId,
              connector_id: m.connectorId,
              transaction_id: m.transactionId,
              received_at_ms: event.receivedAtMs,
            },
            m.meterValues,
          ),
        );
      } else if (event.body === 'stopped') {
        const session_id = session_id_of(event.chargePointId, event.stopped.transactionId);
        const open = started.get(session_id) ?? (await this.lookup(session_id));
        if (open === undefined) {
          rating_anomalies.inc({ reason: 'stop_without_start' });
          this.log.error({ session_id }, 'stop without a known start; not rated');
          continue;
        }
        meter_rows.push(
          ...meter_value_json_rows(
            {
              charge_point_id: event.chargePointId,
              connector_id: open.connector_id,
              transaction_id: open.transaction_id,
              received_at_ms: event.receivedAtMs,
            },
            event.stopped.transactionData,
          ),
        );
        finished.push({ open, stop: event });
        started.delete(session_id);
      }
    }

    await Promise.all(
      [...started.values()].map((o) => this.open_kv_bucket.put(kv_key(o.session_id), JSON.stringify(o))),
    );
    const session_rows = await this.price(finished);
    await this.store.insert_json_rows('meter_values', meter_rows);
    await this.store.insert_json_rows('rated_sessions', session_rows.map(rated_session_json));
    for (const { open } of finished) {
      await this.done_kv_bucket.put(kv_key(open.session_id), JSON.stringify(open));
      await this.open_kv_bucket.delete(kv_key(open.session_id));
      this.cache.delete(open.session_id);
    }
    sessions_rated.inc(session_rows.length);
  }

  private async price(
    finished: { open: OpenSession; stop: Extract<OcppEvent, { body: 'stopped' }> }[],
  ): Promise<RatedSessionRow[]> {
    const tasks: PriceTask[] = [];
    const facts: { open: OpenSession; stop: Extract<OcppEvent, { body: 'stopped' }> }[] = [];
    for (const item of finished) {
      const tariff = await this.tariffs.version(item.open.tariff_id, item.open.tariff_version);
      if (tariff === undefined)
        throw new Error(`tariff ${item.open.tariff_id} v${item.open.tariff_version} missing`);
      if (item.stop.stopped.meterStopWh < 0 || item.open.meter_start_wh < 0) {
        // OCPP 2.0.1 chargers that send no energy register at start or end: not priced by guess.
        rating_anomalies.inc({ reason: 'missing_register' });
        this.log.error(
          { session_id: item.open.session_id },
          'no energy register at start or stop; not rated',
        );
        continue;
      }
      const energy_wh = item.stop.stopped.meterStopWh - item.open.meter_start_wh;
      if (energy_wh < 0) {
        // A register that ran backwards is a meter fault or replacement; never priced as negative.
        rating_anomalies.inc({ reason: 'negative_energy' });
        this.log.error(
          { session_id: item.open.session_id, energy_wh },
          'meter register decreased; not rated',
        );
        continue;
      }
      const stopped_at_ms = Math.max(item.stop.stopped.timestampMs, item.open.started_at_ms);
      tasks.push({
        tariff: tariff.tariff,
        facts: { energy_wh, started_at_ms: item.open.started_at_ms, stopped_at_ms },
      });
      facts.push(item);
    }
    const outcomes = await this.pool.price(tasks);
    const rows: RatedSessionRow[] = [];
    outcomes.forEach((outcome, i) => {
      const { open, stop } = facts[i]!;
      if (!outcome.ok) {
        rating_anomalies.inc({ reason: 'pricing_error' });
        this.log.error({ session_id: open.session_id, error: outcome.error }, 'pricing failed; not rated');
        return;
      }
      rows.push({
        session_id: open.session_id,
        version: 1,
        charge_point_id: open.charge_point_id,
        connector_id: open.connector_id,
        transaction_id: open.transaction_id,
        id_tag: open.id_tag,
        started_at_ms: open.started_at_ms,
        stopped_at_ms: tasks[i]!.facts.stopped_at_ms,
        meter_start_wh: open.meter_start_wh,
        meter_stop_wh: stop.stopped.meterStopWh,
        energy_wh: outcome.priced.energy_wh,
        stop_reason: stop.stopped.reason,
        tariff_id: open.tariff_id,
        tariff_version: open.tariff_version,
        currency: outcome.priced.currency,
        total_excl_vat: outcome.priced.total_excl_vat,
        total_incl_vat: outcome.priced.total_incl_vat,
        breakdown: JSON.stringify(outcome.priced),
        // Deterministic so that a redelivered stop writes a byte-identical row.
        rated_at_ms: stop.receivedAtMs,
      });
    });
    return rows;
  }

  private remember(open: OpenSession): void {
    if (this.cache.size >= this.options.open_sessions_cached_max) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(open.session_id, open);
  }

  private async lookup(session_id: string): Promise<OpenSession | undefined> {
    const cached = this.cache.get(session_id);
    if (cached !== undefined) return cached;
    for (const bucket of [this.open_kv_bucket, this.done_kv_bucket]) {
      const entry = await bucket.get(kv_key(session_id));
      if (entry !== null && entry.operation === 'PUT') return JSON.parse(entry.string()) as OpenSession;
    }
    return undefined;
  }

  async close(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
