import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { create_logger } from '../core/log.js';
import { connect_nats, type Nats } from '../core/nats.js';
import { type LocalNatsServer, start_nats_server } from '../core/nats-server.js';
import { stream, stream_counts, subject_prefix } from './helpers/load-charger.js';
import { eventually, start_test_stack } from './helpers/stack.js';

/**
 * The ingest tier's overload limits, each driven to its bound with a real nats-server (paused
 * with SIGSTOP where the bound is about events waiting for JetStream) and raw OCPP-J 1.6 frames
 * from a `ws` client: calls in flight per connection, events waiting for JetStream in the process,
 * a charger that stops reading its answers, and a charger that went silent.
 */

type Frame = [number, string, ...unknown[]];

class RawCharger {
  readonly frames: Frame[] = [];
  readonly closed: Promise<number>;
  private constructor(readonly socket: WebSocket) {
    this.closed = new Promise((resolve) => socket.once('close', (code) => resolve(code)));
    socket.on('error', () => {});
    socket.on('message', (data) => this.frames.push(JSON.parse(data.toString()) as Frame));
  }

  static async connect(ocpp_url: string, id: string): Promise<RawCharger> {
    const socket = new WebSocket(ocpp_url.replace('{chargePointId}', id), 'ocpp1.6');
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    return new RawCharger(socket);
  }

  meter_values(id: string, wh: number): string {
    const text = JSON.stringify([
      2,
      id,
      'MeterValues',
      {
        connectorId: 1,
        meterValue: [
          {
            timestamp: new Date(Date.UTC(2026, 11, 1, 8, 0, 0) + wh * 1000).toISOString(),
            sampledValue: [{ value: String(wh), measurand: 'Energy.Active.Import.Register', unit: 'Wh' }],
          },
        ],
      },
    ]);
    this.socket.send(text);
    return text;
  }

  answer(id: string): Frame | undefined {
    return this.frames.find((f) => f[1] === id);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('ingest overload limits', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function start(env: Record<string, string>): Promise<{
    nats_server: LocalNatsServer;
    nats: Nats;
    ocpp_url: string;
    metrics: () => Promise<string>;
  }> {
    const dir = mkdtempSync(path.join(tmpdir(), 'evrate-overload-nats-'));
    const nats_server = await start_nats_server({ store_dir: dir, port: 0 });
    cleanups.push(async () => {
      // A paused server would never stop.
      process.kill(nats_server.pid, 'SIGCONT');
      await nats_server.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    const stack = await start_test_stack({
      ROLES: 'ingest,api',
      NATS_URL: nats_server.url,
      NATS_STREAM: stream,
      NATS_SUBJECT_PREFIX: subject_prefix,
      ...env,
    });
    cleanups.push(() => stack.dispose());
    const nats = await connect_nats(
      { nats_stream: stream, nats_subject_prefix: subject_prefix, node_id: 'overload-test' },
      nats_server.url,
      create_logger('warn'),
    );
    cleanups.push(() => nats.close());
    const metrics = async () => (await fetch(`${stack.api_url}/metrics`)).text();
    return { nats_server, nats, ocpp_url: stack.ocpp_url, metrics };
  }

  it('answers CALLs beyond 16 in flight on one connection with a CALLERROR, and stores the others', async () => {
    const { nats_server, nats, ocpp_url } = await start({});
    const charger = await RawCharger.connect(ocpp_url, 'CP-INFLIGHT');
    // JetStream paused: every MeterValues waits for its ack, so the calls stay in flight.
    process.kill(nats_server.pid, 'SIGSTOP');
    const ids = Array.from({ length: 20 }, (_, i) => `inflight-${i}`);
    for (const [i, id] of ids.entries()) charger.meter_values(id, 1000 + i);
    const refused = await eventually(async () => {
      const errors = charger.frames.filter((f) => f[0] === 4);
      return errors.length === 4 ? errors : undefined;
    }, 10_000);
    expect(refused.map((f) => f[1])).toEqual(ids.slice(16));
    for (const f of refused) {
      expect(f[2]).toBe('GenericError');
      expect(f[3]).toMatch(/too many calls in flight/);
    }
    // Nothing answered while JetStream cannot acknowledge.
    expect(charger.frames.filter((f) => f[0] === 3)).toEqual([]);
    process.kill(nats_server.pid, 'SIGCONT');
    await eventually(async () => (charger.frames.length === 20 ? true : undefined), 15_000);
    expect(charger.frames.filter((f) => f[0] === 3).map((f) => f[1])).toEqual(ids.slice(0, 16));
    const counts = await stream_counts(nats);
    expect([...counts.keys()].sort()).toEqual(
      ids
        .slice(0, 16)
        .map((id, i) => `CP-INFLIGHT|${id}|${1000 + i}`)
        .sort(),
    );
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
    charger.socket.close();
  }, 60_000);

  it('leaves events beyond INGEST_PENDING_EVENTS_MAX unanswered; the retried CALLs are stored once', async () => {
    const { nats_server, nats, ocpp_url, metrics } = await start({ INGEST_PENDING_EVENTS_MAX: '4' });
    const charger = await RawCharger.connect(ocpp_url, 'CP-PENDING');
    // Let the connection event reach JetStream first: it counts as pending until then.
    await sleep(500);
    process.kill(nats_server.pid, 'SIGSTOP');
    const ids = Array.from({ length: 7 }, (_, i) => `pending-${i}`);
    const texts = ids.map((id, i) => charger.meter_values(id, 2000 + i));
    await sleep(1000);
    expect(charger.frames).toEqual([]);
    process.kill(nats_server.pid, 'SIGCONT');
    await eventually(async () => (charger.frames.length >= 4 ? true : undefined), 15_000);
    // Give any late answer time to arrive: none comes for the calls that did not fit.
    await sleep(1500);
    expect(charger.frames.map((f) => [f[0], f[1]])).toEqual(ids.slice(0, 4).map((id) => [3, id]));
    expect(await metrics()).toMatch(/evrate_ingest_events_rejected_total\{reason="overloaded"\} 3\b/);

    // The charger retries the unanswered CALLs with their message ids (OCPP-J 1.6 section 4.1.1).
    for (const text of texts.slice(4)) charger.socket.send(text);
    await eventually(async () => (charger.frames.length === 7 ? true : undefined), 15_000);
    expect(charger.frames.every((f) => f[0] === 3)).toBe(true);
    const counts = await stream_counts(nats);
    expect(counts.size).toBe(7);
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
    charger.socket.close();
  }, 60_000);

  it('processes again a retried StartTransaction that failed while NATS was away (not the remembered error)', async () => {
    const { nats_server, ocpp_url } = await start({ OCPP_ACCEPT_UNKNOWN_TOKENS: 'true' });
    const charger = await RawCharger.connect(ocpp_url, 'CP-RETRY');
    await sleep(500);
    const start_frame = JSON.stringify([
      2,
      'start-1',
      'StartTransaction',
      { connectorId: 1, idTag: 'TAG-RETRY', meterStart: 1000, timestamp: new Date().toISOString() },
    ]);
    process.kill(nats_server.pid, 'SIGSTOP');
    charger.socket.send(start_frame);
    // The token and transaction id stores do not answer: a failure to process the message.
    const failed = await eventually(async () => charger.answer('start-1'), 40_000);
    expect(failed[0]).toBe(4);
    expect(failed[2]).toBe('InternalError');
    process.kill(nats_server.pid, 'SIGCONT');
    await sleep(1000);
    // The charger sends it again with the same message id (OCPP 1.6 section 3.7.1).
    charger.frames.length = 0;
    charger.socket.send(start_frame);
    const answered = await eventually(async () => charger.answer('start-1'), 15_000);
    expect(answered[0]).toBe(3);
    expect(typeof (answered[2] as { transactionId: unknown }).transactionId).toBe('number');
    charger.socket.close();
  }, 90_000);

  it('closes a charger that stops reading once its unsent answers pass OCPP_BACKPRESSURE_BYTES_MAX', async () => {
    const { ocpp_url } = await start({
      OCPP_BACKPRESSURE_BYTES_MAX: '4096',
      OCPP_CALLS_PER_S_MAX: '1000000',
    });
    const slow = await RawCharger.connect(ocpp_url, 'CP-SLOW');
    const healthy = await RawCharger.connect(ocpp_url, 'CP-HEALTHY');
    // The slow charger's socket is not read any more: its answers pile up, first in the kernel's
    // buffers, then in the server's.
    const raw = (slow.socket as unknown as { _socket: import('node:net').Socket })._socket;
    raw.pause();
    const heartbeat = JSON.stringify([2, 'hb', 'Heartbeat', {}]);
    let sent = 0;
    let server_closed = false;
    raw.once('end', () => {
      server_closed = true;
    });
    // Bounded: well above what the loopback buffers hold (a few MB of ~60-byte answers).
    for (let round = 0; round < 400 && !server_closed; round++) {
      for (let i = 0; i < 1000; i++) slow.socket.send(heartbeat);
      sent += 1000;
      await sleep(5);
      if (raw.destroyed) break;
    }
    raw.resume();
    const code = await Promise.race([slow.closed, sleep(15_000).then(() => -1)]);
    expect(code, `after ${sent} heartbeats`).not.toBe(-1);
    // The slow charger got fewer answers than it sent: the server dropped it, it did not buffer all.
    expect(slow.frames.length).toBeLessThan(sent);
    // The other charger is served as before.
    healthy.socket.send(JSON.stringify([2, 'hb-ok', 'Heartbeat', {}]));
    await eventually(async () => healthy.answer('hb-ok'), 5_000);
    healthy.socket.close();
  }, 90_000);

  it('disconnects a charger that answers no ping (idle timeout: twice the heartbeat interval, at least 8 s)', async () => {
    const { ocpp_url, metrics } = await start({ HEARTBEAT_INTERVAL_S: '4' });
    const gauge = async () => Number(/^evrate_ingest_connections (\d+)/m.exec(await metrics())?.[1]);
    // The gauge is the process's: other tests of this file ran in it before.
    const before = await gauge();
    const silent = await RawCharger.connect(ocpp_url, 'CP-SILENT');
    const alive = await RawCharger.connect(ocpp_url, 'CP-ALIVE');
    expect(await gauge()).toBe(before + 2);
    // A dead peer: nothing read, so no pong to the server's pings and no frame.
    const raw = (silent.socket as unknown as { _socket: import('node:net').Socket })._socket;
    raw.pause();
    const opened = Date.now();
    // The ws client answers pings by itself: CP-ALIVE, idle but alive, stays.
    await eventually(async () => ((await gauge()) === before + 1 ? true : undefined), 40_000);
    const after_ms = Date.now() - opened;
    expect(after_ms).toBeGreaterThan(4_000);
    raw.destroy();
    alive.socket.send(JSON.stringify([2, 'hb-alive', 'Heartbeat', {}]));
    await eventually(async () => alive.answer('hb-alive'), 5_000);
    expect(alive.socket.readyState).toBe(WebSocket.OPEN);
    alive.socket.close();
  }, 90_000);
});
