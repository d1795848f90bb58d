import { Counter, Histogram } from 'prom-client';
import { JetStreamPublisher } from '../core/jetstream-publish.js';
import type { Logger } from '../core/log.js';
import { metrics_registry } from '../core/metrics.js';
import type { Nats } from '../core/nats.js';
import { group_by_partition, partition_subject } from '../core/partitions.js';
import { encode_event_batch, type OcppEvent } from '../schemas/events.js';

const batch_events = new Histogram({
  name: 'evrate_ingest_batch_events',
  help: 'Events per JetStream publish (group commit size)',
  buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000],
  registers: [metrics_registry],
});
const publish_seconds = new Histogram({
  name: 'evrate_ingest_publish_seconds',
  help: 'JetStream publish latency of one batch, until its ack',
  buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  registers: [metrics_registry],
});
const rejected_events = new Counter({
  name: 'evrate_ingest_events_rejected_total',
  help: 'Events not made durable (publish failed or too many pending); the charger got no answer',
  labelNames: ['reason'],
  registers: [metrics_registry],
});

/**
 * A batch not acknowledged in this long is given up: its chargers get no answer and retry. Should
 * the first batch have landed after all, the retried event is in the stream twice, as after any
 * retry of an unanswered CALL, and is taken once downstream (rating/session.ts rule 2, the meter
 * values' key).
 */
const publish_timeout_ms = 10_000;

export interface PublisherOptions {
  node_id: string;
  linger_ms: number;
  batch_events_max: number;
  batch_bytes_max: number;
  pending_events_max: number;
  /** Partitions of the events subject (RATING_PARTITIONS). */
  partitions: number;
}

export class PublishRejected extends Error {
  constructor(readonly reason: 'overloaded' | 'publish_failed' | 'closed') {
    super(`event not made durable: ${reason}`);
    this.name = 'PublishRejected';
  }
}

interface Waiting {
  event: OcppEvent;
  bytes: number;
  resolve: () => void;
  reject: (error: Error) => void;
}

/**
 * Group commit: events collected for up to linger_ms (bounded by count and bytes) are published
 * as one protobuf EventBatch; every waiting charger is answered when JetStream acknowledges it.
 * The message id "<node>.<boot>.<sequence>" makes a re-published batch a duplicate that the
 * stream drops.
 */
export class EventPublisher {
  private buffer: Waiting[] = [];
  private buffer_bytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private sequence = 0;
  private pending = 0;
  private in_flight = new Set<Promise<void>>();
  private closed = false;
  private readonly boot_ms = Date.now();
  private readonly jetstream: JetStreamPublisher;

  constructor(
    private readonly nats: Nats,
    private readonly options: PublisherOptions,
    private readonly log: Logger,
  ) {
    this.jetstream = new JetStreamPublisher(nats.nc, publish_timeout_ms);
  }

  /** Whether events nobody waits for may be buffered: only while less than half the bound is used. */
  has_room_for_telemetry(): boolean {
    return this.pending < this.options.pending_events_max / 2;
  }

  /** Resolves once the event is durable in JetStream; rejects with PublishRejected otherwise. */
  publish(event: OcppEvent, bytes: number): Promise<void> {
    if (this.closed) return Promise.reject(new PublishRejected('closed'));
    if (this.pending >= this.options.pending_events_max) {
      rejected_events.inc({ reason: 'overloaded' });
      return Promise.reject(new PublishRejected('overloaded'));
    }
    this.pending++;
    return new Promise<void>((resolve, reject) => {
      this.buffer.push({ event, bytes, resolve, reject });
      this.buffer_bytes += bytes;
      if (
        this.buffer.length >= this.options.batch_events_max ||
        this.buffer_bytes >= this.options.batch_bytes_max
      ) {
        this.flush();
      } else if (this.timer === undefined) {
        this.timer = setTimeout(() => this.flush(), this.options.linger_ms);
      }
    });
  }

  private flush(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.buffer.length === 0) return;
    const waiting = this.buffer;
    this.buffer = [];
    this.buffer_bytes = 0;
    const sequence = ++this.sequence;
    const done = this.send(waiting, sequence).finally(() => {
      this.pending -= waiting.length;
      this.in_flight.delete(done);
    });
    this.in_flight.add(done);
  }

  /**
   * One JetStream message per partition present in the flush (see core/partitions.ts); each
   * partition's waiters are answered by its own publish.
   */
  private async send(waiting: Waiting[], sequence: number): Promise<void> {
    const by_partition = group_by_partition(waiting, (w) => w.event.chargePointId, this.options.partitions);
    await Promise.all(
      [...by_partition].map(([partition, group]) => this.send_partition(partition, group, sequence)),
    );
  }

  private async send_partition(partition: number, waiting: Waiting[], sequence: number): Promise<void> {
    const data = encode_event_batch({
      nodeId: this.options.node_id,
      sequence,
      events: waiting.map((w) => w.event),
    });
    const started = performance.now();
    try {
      await this.jetstream.publish(
        partition_subject(this.nats.events_subject, partition),
        data,
        `${this.options.node_id}.${this.boot_ms}.${sequence}.${partition}`,
      );
    } catch (error) {
      rejected_events.inc({ reason: 'publish_failed' }, waiting.length);
      this.log.error({ err: error, events: waiting.length }, 'event batch publish failed');
      for (const w of waiting) w.reject(new PublishRejected('publish_failed'));
      return;
    }
    publish_seconds.observe((performance.now() - started) / 1000);
    batch_events.observe(waiting.length);
    for (const w of waiting) w.resolve();
  }

  /** Publishes what is buffered and waits for every batch in flight. */
  async close(): Promise<void> {
    this.flush();
    this.closed = true;
    await Promise.allSettled([...this.in_flight]);
    this.jetstream.close();
  }
}
