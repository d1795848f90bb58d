import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { Nats } from '../core/nats.js';
import { decode_event_batch } from '../schemas/events.js';
import { start_test_nats } from './helpers/nats.js';
import { type EvrateProcess, start_evrate } from './helpers/process.js';

/**
 * The ingest tier's promise under SIGKILL: a charger that got a CALLRESULT for a MeterValues has
 * it in JetStream exactly once; nothing is published twice; a charger retrying its unanswered
 * CALL with the same message id after a restart gets its answer, and what was answered before
 * stays exactly once. The ingest role runs as a real child process against a real nats-server.
 */

// The stream and subject prefix start_test_nats creates, given to the child explicitly.
const stream = 'EVRATE_EVENTS';
const subject_prefix = 'evrate';

const chargers_count = 8;
/** Answers to wait for before each kill (summed over chargers). */
const answers_before_kill = 1500;
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

/**
 * The invariants, at any point after the ingest process is gone or idle: a CALL answered at its
 * first attempt is in the stream exactly once; a retried one that is answered is there at least
 * once and at most once per attempt; nothing is there that no charger sent, and nothing more often
 * than it was sent.
 */
function check_stream(chargers: LoadCharger[], counts: Map<string, number>): { duplicated: number } {
  const sent = new Map<string, Sent>();
  for (const charger of chargers)
    for (const call of charger.sent.values()) sent.set(key_of(charger, call), call);
  for (const [key, count] of counts) {
    const call = sent.get(key);
    expect(call, `${key} is in the stream but was never sent`).toBeDefined();
    expect(count, `${key} appears more often than it was sent`).toBeLessThanOrEqual(call!.attempts);
  }
  let duplicated = 0;
  for (const charger of chargers) {
    for (const [id, attempts] of charger.answered) {
      const call = charger.sent.get(id)!;
      const count = counts.get(key_of(charger, call)) ?? 0;
      if (attempts === 1) expect(count, `${id} answered once`).toBe(1);
      else expect(count, `${id} answered after ${attempts} attempts`).toBeGreaterThanOrEqual(1);
      if (count > 1) duplicated++;
    }
  }
  return { duplicated };
}

describe('ingest killed with SIGKILL under load', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('keeps every answered MeterValues exactly once in JetStream, and answers retries after a restart', async () => {
    const nats = await start_test_nats();
    cleanups.push(() => nats.dispose());
    const data_dir = mkdtempSync(path.join(tmpdir(), 'evrate-ingest-kill-'));
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
      // An ingest-only process does not open ClickHouse (no embedded chdb beside the sockets).
      expect(ingest.output()).toMatch(/ClickHouse: +not used by this process/);
      expect(existsSync(path.join(data_dir, 'chdb'))).toBe(false);
      return url!;
    };

    const chargers = Array.from(
      { length: chargers_count },
      (_, i) => new LoadCharger(`CP-KILL-${String(i).padStart(2, '0')}`, i + 1),
    );
    const answered_total = () => chargers.reduce((n, c) => n + c.answered.size, 0);

    // Two kills under load, each followed by a restart whose first CALLs are the retries.
    for (let kill = 0; kill < 2; kill++) {
      const url = await start_ingest();
      const retried = chargers.filter((c) => c.pending !== undefined).length;
      const target = answered_total() + answers_before_kill;
      const runs = chargers.map((c) => c.run(url, () => false, calls_per_run_max));
      const deadline = Date.now() + 30_000;
      while (answered_total() < target && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(answered_total()).toBeGreaterThanOrEqual(target);
      if (kill > 0) expect(retried).toBeGreaterThan(0);

      await ingest!.kill('SIGKILL');
      // Every charger sees its socket drop mid-call, the CALL in flight left unanswered.
      expect(await Promise.all(runs)).toEqual(chargers.map(() => 'closed'));
      expect(chargers.filter((c) => c.pending !== undefined).length).toBeGreaterThan(0);
      check_stream(chargers, await stream_counts(nats.nats));
    }

    // The last restart: the retries first, then some more CALLs, then a clean stop.
    const url = await start_ingest();
    const runs = chargers.map((c) => c.run(url, () => false, calls_after_last_restart));
    expect(await Promise.all(runs)).toEqual(chargers.map(() => 'stopped'));
    for (const c of chargers) {
      expect(c.pending).toBeUndefined();
      expect(c.answered.size).toBe(c.sent.size);
    }
    await ingest!.kill('SIGTERM');
    const { duplicated } = check_stream(chargers, await stream_counts(nats.nats));
    // A retry reaches a process that has never seen the message id, so a CALL that was durable but
    // unanswered when the process died is published again: at least once, never lost.
    const retried_total = chargers.reduce(
      (n, c) => n + [...c.answered.values()].filter((a) => a > 1).length,
      0,
    );
    expect(retried_total).toBeGreaterThan(0);
    expect(duplicated).toBeLessThanOrEqual(retried_total);
  }, 120_000);
});
