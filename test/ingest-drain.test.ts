import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { Nats } from '../core/nats.js';
import { decode_event_batch } from '../schemas/events.js';
import { start_test_nats } from './helpers/nats.js';
import { type EvrateProcess, start_evrate } from './helpers/process.js';

/**
 * The ingest tier's promise under SIGTERM with CALLs in flight: the drain answers every CALL whose
 * event is durable before closing the sockets, and answers nothing it did not make durable. So a
 * charger that got a CALLRESULT has its event in JetStream, and one whose CALL went unanswered
 * retries it (same message id) against the restarted process and has it stored once: in the
 * end every MeterValues sent is in the stream exactly once, retried or not. (Under SIGKILL,
 * test/ingest-kill.test.ts, a durable but unanswered CALL may be stored twice; a drain has no
 * such excuse.) The ingest role runs as a real child process against a real nats-server.
 */

// The stream and subject prefix start_test_nats creates, given to the child explicitly.
const stream = 'EVRATE_EVENTS';
const subject_prefix = 'evrate';

const chargers_count = 8;
/** Answers to wait for before each SIGTERM (summed over chargers). */
const answers_before_term = 1500;
/** Bounds of one charger's run: CALLs sent per run, and how long an answer may take. */
const calls_per_run_max = 20_000;
const answer_timeout_ms = 15_000;
const calls_after_last_restart = 100;

interface Sent {
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
class LoadCharger {
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
async function stream_counts(nats: Nats): Promise<Map<string, number>> {
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

const key_of = (charger: LoadCharger, call: Sent) => `${charger.charge_point_id}|${call.id}|${call.value}`;

describe('ingest stopped with SIGTERM under load', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('answers only what is durable, and every MeterValues, retried or not, is stored exactly once', async () => {
    const nats = await start_test_nats();
    cleanups.push(() => nats.dispose());
    const data_dir = mkdtempSync(path.join(tmpdir(), 'evrate-ingest-drain-'));
    cleanups.push(async () => rmSync(data_dir, { recursive: true, force: true }));
    let ingest: EvrateProcess | undefined;
    cleanups.push(async () => ingest?.kill('SIGKILL'));
    const start_ingest = async (): Promise<string> => {
      ingest = await start_evrate({
        ROLES: 'ingest',
        NATS_URL: nats.url,
        NATS_STREAM: stream,
        NATS_SUBJECT_PREFIX: subject_prefix,
        OCPP_HOST: '127.0.0.1',
        OCPP_ALLOW_UNKNOWN: 'true',
        OCPP_ACCEPT_UNKNOWN_TOKENS: 'true',
        DATA_DIR: data_dir,
        LOG_LEVEL: 'warn',
      });
      const url = /OCPP charge points: +(ws:\/\/\S+)/.exec(ingest.output())?.[1];
      expect(url, ingest.output()).toBeDefined();
      return url!;
    };
    const chargers = Array.from(
      { length: chargers_count },
      (_, i) => new LoadCharger(`CP-TERM-${String(i).padStart(2, '0')}`, i + 1),
    );
    const answered_total = () => chargers.reduce((n, c) => n + c.answered.size, 0);
    /** Every charger's pending CALL right after each SIGTERM, summed: the CALLs left to retry. */
    let unanswered_at_term = 0;

    for (let term = 0; term < 2; term++) {
      const url = await start_ingest();
      const target = answered_total() + answers_before_term;
      const runs = chargers.map((c) => c.run(url, () => false, calls_per_run_max));
      const deadline = Date.now() + 30_000;
      while (answered_total() < target && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(answered_total()).toBeGreaterThanOrEqual(target);

      await ingest!.kill('SIGTERM');
      // A drain exits 0 (core/shutdown.ts); every charger's socket is closed by the server.
      expect(await ingest!.exited).toBe(0);
      expect(await Promise.all(runs)).toEqual(chargers.map(() => 'closed'));
      unanswered_at_term += chargers.filter((c) => c.pending !== undefined).length;
    }

    // The last run: the retries first, then some more CALLs, then a clean stop.
    const url = await start_ingest();
    const runs = chargers.map((c) => c.run(url, () => false, calls_after_last_restart));
    expect(await Promise.all(runs)).toEqual(chargers.map(() => 'stopped'));
    await ingest!.kill('SIGTERM');
    expect(await ingest!.exited).toBe(0);

    const counts = await stream_counts(nats.nats);
    let sent_total = 0;
    let retried_total = 0;
    for (const c of chargers) {
      expect(c.pending).toBeUndefined();
      expect(c.answered.size).toBe(c.sent.size);
      for (const call of c.sent.values()) {
        sent_total++;
        if (call.attempts > 1) retried_total++;
        // Counted messages, not a deduplicated view: once, whether answered at the first attempt
        // or after a retry against the restarted process.
        expect(counts.get(key_of(c, call)) ?? 0, `${call.id} after ${call.attempts} attempts`).toBe(1);
      }
    }
    // Nothing in the stream that no charger sent.
    expect(counts.size).toBe(sent_total);
    // The SIGTERMs came with CALLs in flight: some were left unanswered and retried.
    expect(unanswered_at_term).toBeGreaterThan(0);
    expect(retried_total).toBe(unanswered_at_term);
  }, 120_000);
});
