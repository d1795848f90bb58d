import { afterEach, describe, expect, it } from 'vitest';
import { send_json } from '../api/http.js';
import { ApiServer } from '../api/server.js';
import { ConfigError, load_config } from '../core/config.js';
import { create_logger } from '../core/log.js';

const metrics_token = 'metrics-token-for-the-scraper-0001';

/** /metrics behind METRICS_TOKEN, on a real HTTP server; open when the token is unset. */
describe('metrics token', () => {
  const servers: ApiServer[] = [];
  afterEach(async () => {
    for (const server of servers.splice(0)) await server.close();
  });

  async function start(token: string | undefined): Promise<string> {
    const server = new ApiServer(
      {
        host: '127.0.0.1',
        port: 0,
        operator_token: 'operator-token-for-metrics-test',
        metrics_token: token,
        body_bytes_max: 1024,
        operator_requests_per_s_max: 100,
      },
      [],
      create_logger('silent'),
    );
    servers.push(server);
    return `http://127.0.0.1:${await server.listen()}/metrics`;
  }

  const scrape = (url: string, authorization?: string) =>
    fetch(url, authorization === undefined ? {} : { headers: { authorization } });

  it('serves /metrics to anyone when METRICS_TOKEN is unset', async () => {
    const res = await scrape(await start(undefined));
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('# HELP');
  });

  it('asks for the bearer token when METRICS_TOKEN is set', async () => {
    const url = await start(metrics_token);
    const without = await scrape(url);
    expect(without.status).toBe(401);
    expect(without.headers.get('www-authenticate')).toBe('Bearer realm="metrics"');
    expect(await without.json()).toMatchObject({ error: expect.stringContaining('metrics token') });
    // One character off, a prefix, the operator's token, Basic instead of Bearer: all refused.
    for (const authorization of [
      `Bearer ${metrics_token}x`,
      `Bearer ${metrics_token.slice(0, -1)}`,
      'Bearer operator-token-for-metrics-test',
      `Basic ${metrics_token}`,
    ]) {
      const res = await scrape(url, authorization);
      expect(res.status, authorization).toBe(401);
      await res.body?.cancel();
    }
    const res = await scrape(url, `Bearer ${metrics_token}`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('# HELP');
  });

  it('reads METRICS_TOKEN from the environment and refuses a short one naming the field', () => {
    expect(load_config({}).metrics_token).toBeUndefined();
    expect(load_config({ METRICS_TOKEN: metrics_token }).metrics_token).toBe(metrics_token);
    expect(() => load_config({ METRICS_TOKEN: 'short' })).toThrow(ConfigError);
    expect(() => load_config({ METRICS_TOKEN: 'short' })).toThrow(/METRICS_TOKEN/);
  });
});

const old_token = 'operator-token-old-0000000001';
const new_token = 'operator-token-new-0000000002';

/** OPERATOR_TOKEN as a comma list during a rotation: the first current, the others still accepted. */
describe('operator token rotation', () => {
  const servers: ApiServer[] = [];
  afterEach(async () => {
    for (const server of servers.splice(0)) await server.close();
  });

  async function start(env_token: string): Promise<string> {
    const config = load_config({ OPERATOR_TOKEN: env_token });
    const server = new ApiServer(
      {
        host: '127.0.0.1',
        port: 0,
        operator_token: config.operator_token,
        operator_tokens_previous: config.operator_tokens_previous,
        body_bytes_max: 1024,
        operator_requests_per_s_max: 100,
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
    servers.push(server);
    return `http://127.0.0.1:${await server.listen()}/v1/ping`;
  }

  const status = async (url: string, token: string) => {
    const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
    await res.body?.cancel();
    return res.status;
  };

  it('accepts both tokens during a rotation and refuses the old one once it is removed', async () => {
    const during = await start(`${new_token}, ${old_token}`);
    expect(await status(during, new_token)).toBe(200);
    expect(await status(during, old_token)).toBe(200);
    expect(await status(during, 'operator-token-other-000000003')).toBe(401);
    const after = await start(new_token);
    expect(await status(after, new_token)).toBe(200);
    expect(await status(after, old_token)).toBe(401);
  });

  it('takes the first token of the list as current and checks every one for length', () => {
    const config = load_config({ OPERATOR_TOKEN: `${new_token},${old_token}` });
    expect(config.operator_token).toBe(new_token);
    expect(config.operator_tokens_previous).toEqual([old_token]);
    expect(load_config({ OPERATOR_TOKEN: new_token }).operator_tokens_previous).toEqual([]);
    expect(() => load_config({ OPERATOR_TOKEN: `${new_token},short` })).toThrow(
      /OPERATOR_TOKEN.*token 2 of the comma list must be at least 16 characters/,
    );
    expect(() => load_config({ OPERATOR_TOKEN: `${new_token},` })).toThrow(/OPERATOR_TOKEN/);
  });
});
