import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { Nats } from '../core/nats.js';
import { decode_event_batch } from '../schemas/events.js';
import {
  key_of,
  LoadCharger,
  type Sent,
  stream,
  stream_counts,
  subject_prefix,
} from './helpers/load-charger.js';
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

const chargers_count = 8;
/** Answers to wait for before each SIGTERM (summed over chargers). */
const answers_before_term = 1500;
/** Bound of one charger's run: CALLs sent per run. */
const calls_per_run_max = 20_000;
const calls_after_last_restart = 100;

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
