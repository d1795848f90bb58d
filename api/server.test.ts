import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { create_logger } from '../core/log.js';
import { send_json } from './http.js';
import { ApiServer } from './server.js';

/** The router's own guarantees, on a real HTTP server with one operator route. */
describe('API server', () => {
  const token = 'operator-token-for-server-test';
  let server: ApiServer;
  let base_url: string;

  beforeAll(async () => {
    server = new ApiServer(
      {
        host: '127.0.0.1',
        port: 0,
        operator_token: token,
        body_bytes_max: 1024,
        operator_requests_per_s_max: 1,
      },
      [
        {
          method: 'GET',
          path: /^\/v1\/ping$/,
          auth: 'operator',
          async handle({ res }) {
            send_json(res, 200, { pong: true });
          },
        },
      ],
      create_logger('silent'),
    );
    base_url = `http://127.0.0.1:${await server.listen()}`;
  });
  afterAll(async () => {
    await server?.close();
  });

  const ping = (authorization = `Bearer ${token}`) =>
    fetch(`${base_url}/v1/ping`, { headers: { authorization } });

  it('refuses a wrong operator token before counting it against the rate', async () => {
    const wrong = await ping('Bearer nope');
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toMatchObject({ error: expect.stringContaining('operator token') });
  });

  it('answers operator requests above the rate limit with 429 and Retry-After', async () => {
    // One request a second, bursts of two: of five requests in a row, at most four pass even if
    // the machine stalls for two seconds in between.
    const statuses: number[] = [];
    let retry_after: string | null = null;
    for (let i = 0; i < 5; i++) {
      const res = await ping();
      statuses.push(res.status);
      if (res.status === 429) retry_after = res.headers.get('retry-after');
      await res.body?.cancel();
    }
    expect(statuses.slice(0, 2)).toEqual([200, 200]);
    expect(statuses).toContain(429);
    expect(Number(retry_after)).toBeGreaterThanOrEqual(1);
  });
});
