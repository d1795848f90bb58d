import { expect } from 'vitest';
import WebSocket from 'ws';
import type { Nats } from '../../core/nats.js';
import { decode_event_batch } from '../../schemas/events.js';

/**
 * Load for the ingest kill and drain tests: chargers that keep one MeterValues CALL outstanding,
 * and the stream's MeterValues events counted by the CALL that made them.
 */

// The stream and subject prefix start_test_nats creates, given to the child explicitly.
export const stream = 'EVRATE_EVENTS';
export const subject_prefix = 'evrate';
/** How long an answer may take. */
const answer_timeout_ms = 15_000;

export interface Sent {
  id: string;
  value: string;
  text: string;
  /** Times the frame was sent: more than 1 when retried after a restart. */
  attempts: number;
}

/**
 * An OCPP 1.6 charger on `ws` that keeps one MeterValues CALL outstanding, sending the next one as
 * soon as the previous is answered. Each CALL carries a value unique to it (charger index x 10^6
 * + sequence) so that every event in the stream names the CALL it came from. A CALL without an
 * answer when the socket drops stays pending and is sent again, unchanged, on the next run.
 */
export class LoadCharger {
  readonly sent = new Map<string, Sent>();
  /** Message id -> attempts when its CALLRESULT arrived. */
  readonly answered = new Map<string, number>();
  pending: Sent | undefined;
  private sequence = 0;

  constructor(
    readonly charge_point_id: string,
    private readonly index: number,
  ) {}

  private next_call(): Sent {
    const n = this.sequence++;
    const id = `${this.charge_point_id}.${n}`;
    const value = String(this.index * 1_000_000 + n);
    const payload = {
      connectorId: 1,
      meterValue: [
        {
          timestamp: new Date(Date.UTC(2026, 10, 20, 10, 0, 0) + n * 1000).toISOString(),
          sampledValue: [{ value, measurand: 'Energy.Active.Import.Register', unit: 'Wh' }],
        },
      ],
    };
    const call: Sent = { id, value, text: JSON.stringify([2, id, 'MeterValues', payload]), attempts: 0 };
    this.sent.set(id, call);
    return call;
  }

  /**
   * Connects and sends CALLs one at a time, the pending one first, until `stop()` says so, the
   * socket closes (the server was killed), or `calls_max` CALLs were answered.
   */
  async run(ocpp_url: string, stop: () => boolean, calls_max: number): Promise<'closed' | 'stopped'> {
    const socket = new WebSocket(ocpp_url.replace('{chargePointId}', this.charge_point_id), 'ocpp1.6');
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    const closed = new Promise<'closed'>((resolve) => socket.once('close', () => resolve('closed')));
    socket.on('error', () => {});
    let on_frame: ((frame: unknown[]) => void) | undefined;
    socket.on('message', (data) => on_frame?.(JSON.parse(data.toString()) as unknown[]));
    for (let calls = 0; calls < calls_max; calls++) {
      if (this.pending === undefined) {
        if (stop()) break;
        this.pending = this.next_call();
      }
      const call = this.pending;
      let timer: NodeJS.Timeout | undefined;
      const answer = new Promise<unknown[]>((resolve, reject) => {
        on_frame = (frame) => {
          if (frame[1] === call.id) resolve(frame);
        };
        timer = setTimeout(() => reject(new Error(`no answer to ${call.id}`)), answer_timeout_ms);
      });
      call.attempts++;
      socket.send(call.text);
      const outcome = await Promise.race([answer, closed]).finally(() => clearTimeout(timer));
      if (outcome === 'closed') return 'closed';
      expect(outcome, call.id).toEqual([3, call.id, {}]);
      this.answered.set(call.id, call.attempts);
      this.pending = undefined;
    }
    socket.close();
    await closed;
    return 'stopped';
  }
}

/** Every MeterValues event in the stream, counted by charge point + message id + value. */
export async function stream_counts(nats: Nats): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  const last_seq = (await nats.jsm.streams.info(stream)).state.last_seq;
  if (last_seq === 0) return counts;
  const consumer = await nats.js.consumers.get(stream);
  let seq = 0;
  // Bounded: each fetch either advances or expires; the stream is not written meanwhile.
  for (let fetches = 0; seq < last_seq && fetches < 10_000; fetches++) {
    const batch = await consumer.fetch({ max_messages: 1000, expires: 2000 });
    for await (const message of batch) {
      seq = message.seq;
      for (const event of decode_event_batch(message.data).events) {
        // Connection events (connect, disconnect) are the server's own, not answers to CALLs.
        if (event.body !== 'meterValues') continue;
        const values = event.meterValues.meterValues.flatMap((mv) => mv.sampledValues.map((sv) => sv.value));
        expect(values).toHaveLength(1);
        const key = `${event.chargePointId}|${event.messageId}|${values[0]}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
    }
  }
  expect(seq).toBe(last_seq);
  return counts;
}

export const key_of = (charger: LoadCharger, call: Sent) =>
  `${charger.charge_point_id}|${call.id}|${call.value}`;
