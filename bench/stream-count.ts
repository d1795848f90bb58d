/**
 * Counts what ingest made durable, read back from the JetStream events stream: sampled meter
 * values (from MeterValues and TransactionEvent values and from StopTransaction's
 * transactionData, as rating stores them) and finished sessions. Values are counted once per
 * key of the meter_values table (charge point, transaction, instant, measurand, phase, location,
 * context, format, unit), so a value published twice counts once, as it would be stored once.
 */
import { DeliverPolicy } from '@nats-io/jetstream';
import type { Nats } from '../core/nats.js';
import { decode_event_batch, type MeterValue } from '../schemas/events.js';

export interface StreamCounts {
  /** Distinct sampled values, and all sampled values including repeats. */
  meter_values: number;
  meter_values_with_repeats: number;
  /** Distinct (charge point, transaction) of stop events. */
  sessions_stopped: number;
  batches: number;
}

export class StreamCounter {
  private next_seq = 1;
  private readonly values = new Set<string>();
  private readonly sessions = new Set<string>();
  private with_repeats = 0;
  private batches = 0;
  /** Charge points left out of the counts: the honesty check's self-test. */
  readonly excluded = new Set<string>();

  constructor(
    private readonly nats: Nats,
    private readonly stream: string,
  ) {}

  /** Reads what was appended since the last call; bounded by the stream's last sequence now. */
  async count(): Promise<StreamCounts> {
    const last_seq = (await this.nats.jsm.streams.info(this.stream)).state.last_seq;
    if (last_seq >= this.next_seq) {
      const consumer = await this.nats.js.consumers.get(this.stream, {
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: this.next_seq,
      });
      let idle_fetches = 0;
      while (this.next_seq <= last_seq) {
        const batch = await consumer.fetch({ max_messages: 1000, expires: 2000 });
        let got = 0;
        for await (const message of batch) {
          got++;
          this.next_seq = message.seq + 1;
          this.take(message.data);
          if (message.seq >= last_seq) break;
        }
        if (got > 0) idle_fetches = 0;
        else if (++idle_fetches >= 5) throw new Error(`stream read stalled at sequence ${this.next_seq}`);
      }
    }
    let meter_values = 0;
    for (const key of this.values) if (!this.excluded.has(key.slice(0, key.indexOf('|')))) meter_values++;
    return {
      meter_values,
      meter_values_with_repeats: this.with_repeats,
      sessions_stopped: this.sessions.size,
      batches: this.batches,
    };
  }

  private take(bytes: Uint8Array): void {
    this.batches++;
    for (const event of decode_event_batch(bytes).events) {
      if (event.body === 'meterValues') {
        this.add_values(event.chargePointId, event.meterValues.transactionId, event.meterValues.meterValues);
      } else if (event.body === 'stopped') {
        this.add_values(event.chargePointId, event.stopped.transactionId, event.stopped.transactionData);
        this.sessions.add(`${event.chargePointId}|${event.stopped.transactionId}`);
      }
    }
  }

  private add_values(charge_point_id: string, transaction_id: string, meter_values: MeterValue[]): void {
    for (const mv of meter_values) {
      for (const sv of mv.sampledValues) {
        this.with_repeats++;
        this.values.add(
          `${charge_point_id}|${transaction_id}|${mv.timestampMs}|${sv.measurand}|${sv.phase}|${sv.location}|${sv.context}|${sv.format}|${sv.unit}`,
        );
      }
    }
  }
}
