import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { TestCharger } from './helpers/charger.js';
import { start_test_stack } from './helpers/stack.js';

type Stack = Awaited<ReturnType<typeof start_test_stack>>;

/** Connections opened and closed in the loop (bounded), and at once (as several chargers would). */
const connections_count = 240;
const parallel = 4;
/** A connection that closes this soon after opening, with no one asking, is an early drop. */
const settle_ms = 50;

/**
 * A charger's connection stays open until someone closes it: on a real ingest, connections opened
 * and closed in a loop (each closing one way or another: a close handshake, a TCP teardown
 * without one, after a CALL or before any) are never dropped by the server right after opening.
 * Raw `ws` sockets, no reconnect: a drop counts.
 */
describe('OCPP connections opened and closed in a loop', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await start_test_stack({ ROLES: 'ingest', OCPP_ACCEPT_UNKNOWN_TOKENS: 'true' });
  });
  afterAll(async () => {
    await stack?.dispose();
  });

  it(`drops none of ${connections_count} connections right after opening`, async () => {
    const early_drops: string[] = [];
    let answered = 0;
    const one = async (i: number): Promise<void> => {
      // Ids are reused (every 16th connection), as when a charger reconnects.
      const id = `CP-LOOP-${i % 16}`;
      const socket = new WebSocket(stack.ocpp_url.replace('{chargePointId}', id), 'ocpp1.6');
      await new Promise<void>((resolve, reject) => {
        socket.once('open', () => resolve());
        socket.once('error', reject);
      });
      socket.on('error', () => {});
      const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
      const early = await Promise.race([
        closed,
        new Promise((r) => setTimeout(() => r(undefined), settle_ms)),
      ]);
      if (early !== undefined) {
        early_drops.push(`${id} #${i}: ${String(early)}`);
        return;
      }
      if (i % 2 === 0) {
        const answer = new Promise<unknown[]>((resolve) =>
          socket.once('message', (data) => resolve(JSON.parse(data.toString()) as unknown[])),
        );
        socket.send(JSON.stringify([2, `hb-${i}`, 'Heartbeat', {}]));
        const frame = await Promise.race([answer, closed]);
        if (Array.isArray(frame) && frame[0] === 3 && frame[1] === `hb-${i}`) answered++;
      }
      // Half close with the handshake, half tear the TCP connection down (a charger losing power).
      if (i % 4 < 2) socket.close();
      else socket.terminate();
      await closed;
    };
    let next = 0;
    await Promise.all(
      Array.from({ length: parallel }, async () => {
        while (next < connections_count) await one(next++);
      }),
    );
    expect(early_drops).toEqual([]);
    // Every even-numbered connection sent a Heartbeat: 240 / 2 = 120 answers.
    expect(answered).toBe(120);
    // Nor did the test chargers of this process reconnect after an early drop.
    expect(TestCharger.early_drops).toBe(0);
  }, 120_000);

  it('refuses a handshake whose Connection header lacks Upgrade (400) instead of dropping it after 101', async () => {
    const port = Number(new URL(stack.ocpp_url.replace('ws:', 'http:').replace('{chargePointId}', 'x')).port);
    const status_of = (connection: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = net.connect(port, '127.0.0.1');
        let text = '';
        socket.on('connect', () =>
          socket.write(
            `GET /ocpp/CP-CONN-CLOSE HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: ${connection}\r\n` +
              `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n` +
              'Sec-WebSocket-Protocol: ocpp1.6\r\n\r\n',
          ),
        );
        socket.on('data', (chunk) => {
          text += chunk.toString('latin1');
          if (text.includes('\r\n')) {
            resolve(text.slice(0, text.indexOf('\r\n')));
            socket.destroy();
          }
        });
        socket.on('error', reject);
      });
    // Before: 101, then the socket was shut down right after opening (1006).
    expect(await status_of('close')).toBe('HTTP/1.1 400 Bad Request');
    expect(await status_of('keep-alive')).toBe('HTTP/1.1 400 Bad Request');
    expect(await status_of('keep-alive, Upgrade')).toBe('HTTP/1.1 101 Switching Protocols');
  });
});
