import { AckPolicy, DeliverPolicy, type JsMsg } from '@nats-io/jetstream';
import type { RatedSessionRow } from '../analytics/sessions.js';
import type { Logger } from '../core/log.js';
import type { Nats } from '../core/nats.js';
import { ensure_rated_stream, rated_feed_names } from '../core/rated-feed.js';
import type { Ledger } from './ledger.js';
import { record_rated_versions } from './rated-versions.js';

/**
 * Billing's end of the rated feed (core/rated-feed.ts): one durable pull consumer shared by every
 * billing process. A fetched batch is written to the ledger in one transaction and acknowledged
 * only after it commits, so a crash before the ack redelivers it and the unique
 * (session_id, version) makes the second write a no-op: no version lost, none counted twice.
 */
export interface RatedFeedOptions {
  durable_name: string;
  /** Messages per batch (and per ledger transaction) at most; also the consumer's max_ack_pending. */
  batch_max: number;
  /** How long a delivered batch may stay unacknowledged before it is redelivered. */
  ack_wait_ms: number;
}

export const rated_feed_defaults: RatedFeedOptions = {
  durable_name: 'billing',
  batch_max: 1000,
  ack_wait_ms: 60_000,
};

export class RatedFeedConsumer {
  private running = true;
  private loop: Promise<void> = Promise.resolve();
  versions_recorded = 0;

  private constructor(
    private readonly nats: Nats,
    private readonly ledger: Ledger,
    private readonly options: RatedFeedOptions,
    private readonly log: Logger,
  ) {}

  static async start(
    nats: Nats,
    ledger: Ledger,
    options: RatedFeedOptions,
    log: Logger,
  ): Promise<RatedFeedConsumer> {
    await ensure_rated_stream(nats);
    const { stream } = rated_feed_names(nats);
    const config = {
      durable_name: options.durable_name,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: options.ack_wait_ms * 1_000_000,
      max_ack_pending: options.batch_max,
    };
    try {
      await nats.jsm.consumers.info(stream, options.durable_name);
    } catch (error) {
      if (!(error instanceof Error && /not found/i.test(error.message))) throw error;
      await nats.jsm.consumers.add(stream, config);
    }
    const consumer = new RatedFeedConsumer(nats, ledger, options, log);
    consumer.loop = consumer.run();
    return consumer;
  }

  private async run(): Promise<void> {
    const { stream } = rated_feed_names(this.nats);
    const decoder = new TextDecoder();
    while (this.running) {
      try {
        const consumer = await this.nats.js.consumers.get(stream, this.options.durable_name);
        const fetched = await consumer.fetch({ max_messages: this.options.batch_max, expires: 1000 });
        const messages: JsMsg[] = [];
        try {
          for await (const message of fetched) messages.push(message);
        } catch (error) {
          // A fetch that ends early (missed heartbeats while the process was busy) still delivered
          // what it holds: write those rather than leave them to come back after ack_wait.
          if (messages.length === 0) throw error;
        }
        if (messages.length === 0) continue;
        const rows = messages.map((m) => JSON.parse(decoder.decode(m.data)) as RatedSessionRow);
        const outcome = await record_rated_versions(this.ledger, rows);
        for (const message of messages) message.ack();
        this.versions_recorded += outcome.versions_recorded;
        if (outcome.credit_notes.length > 0) {
          this.log.info({ credit_notes: outcome.credit_notes }, 're-rated sessions credited');
        }
      } catch (error) {
        if (!this.running) break;
        // Unacknowledged messages come back after ack_wait; the ledger write is idempotent.
        this.log.warn({ err: error }, 'rated feed batch failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  }

  /** True when every message of the feed has been written and acknowledged. */
  async caught_up(): Promise<boolean> {
    const info = await this.nats.jsm.consumers.info(
      rated_feed_names(this.nats).stream,
      this.options.durable_name,
    );
    return info.num_pending === 0 && info.num_ack_pending === 0;
  }

  async close(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}
