import { existsSync, mkdtempSync, rmSync } from 'node:fs';
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
 * The ingest tier's promise under SIGKILL: a charger that got a CALLRESULT for a MeterValues has
 * it in JetStream exactly once; nothing is published twice; a charger retrying its unanswered
 * CALL with the same message id after a restart gets its answer, and what was answered before
 * stays exactly once. The ingest role runs as a real child process against a real nats-server.
 */

const chargers_count = 8;
/** Answers to wait for before each kill (summed over chargers). */
const answers_before_kill = 1500;
/** Bound of one charger's run: CALLs sent per run. */
const calls_per_run_max = 20_000;
const calls_after_last_restart = 100;

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
