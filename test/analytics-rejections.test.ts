import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analytics_routes } from '../api/analytics-routes.js';
import { ApiServer } from '../api/server.js';
import { create_logger } from '../core/log.js';
import { store_transports, type TestStore } from './helpers/stores.js';

/**
 * Rejected frames written twice (a redelivered batch) count once: in the table once it merged
 * (ReplacingMergeTree keyed by charge point, time, node, action and error code; migration 35),
 * and in the API figure before and after the merge.
 */

const token = 'rejections-test-token-0123456789';
const at_ms = Date.UTC(2026, 10, 4, 9, 0, 0);

interface Rejection {
  charge_point_id: string;
  node_id: string;
  action: string;
  error_code: string;
  at_ms: number;
}

// Four distinct rejections. The last two differ from the first only by node and by time, so a
// key too narrow to tell them apart would fold them.
const rejections: Rejection[] = [
  { charge_point_id: 'CP-R1', node_id: 'n1', action: 'MeterValues', error_code: 'FormatViolation', at_ms },
  { charge_point_id: 'CP-R1', node_id: 'n1', action: 'StartTransaction', error_code: 'ProtocolError', at_ms },
  { charge_point_id: 'CP-R1', node_id: 'n2', action: 'MeterValues', error_code: 'FormatViolation', at_ms },
  {
    charge_point_id: 'CP-R1',
    node_id: 'n1',
    action: 'MeterValues',
    error_code: 'FormatViolation',
    at_ms: at_ms + 1,
  },
];

function json(r: Rejection): string {
  return JSON.stringify({ ...r, at: Math.floor(r.at_ms / 1000) });
}

describe.each(store_transports)('rejected frames on $name', ({ open }) => {
  let env: TestStore;
  let api: ApiServer;
  let base_url: string;
  const figure = async () => {
    const params = new URLSearchParams({ from: '2026-11-04T00:00:00Z', to: '2026-11-05T00:00:00Z' });
    const response = await fetch(`${base_url}/v1/analytics/rejections?${params}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(response.status).toBe(200);
    return (await response.json()) as Record<string, unknown>;
  };
  const raw_count = async (distinct: boolean) => {
    const [row] = await env.store.query<{ n: string | number }>(
      distinct
        ? 'SELECT count(DISTINCT charge_point_id, at_ms, node_id, action, error_code) AS n FROM evrate.ocpp_rejections'
        : 'SELECT count() AS n FROM evrate.ocpp_rejections',
    );
    return Number(row?.n);
  };

  beforeAll(async () => {
    env = await open();
    api = new ApiServer(
      {
        host: '127.0.0.1',
        port: 0,
        operator_token: token,
        body_bytes_max: 65_536,
        operator_requests_per_s_max: 1000,
      },
      analytics_routes({ store: env.store }),
      create_logger('silent'),
    );
    base_url = `http://127.0.0.1:${await api.listen()}`;
  });
  afterAll(async () => {
    await api?.close();
    await env?.dispose();
  });

  it('counts a rejection written twice once, before and after the table merges', async () => {
    // The batch, then its redelivery: the same rows again, in a second insert (a second part).
    await env.store.insert_json_rows('ocpp_rejections', rejections.map(json));
    await env.store.insert_json_rows('ocpp_rejections', rejections.map(json));
    // Four rejections: three MeterValues/FormatViolation (n1 at :00, n2 at :00, n1 one ms later)
    // and one StartTransaction/ProtocolError, all from CP-R1.
    const expected = {
      from: '2026-11-04T00:00:00.000Z',
      to: '2026-11-05T00:00:00.000Z',
      rejected_frames: 4,
      by_error_code_and_action: [
        { error_code: 'FormatViolation', action: 'MeterValues', frames: 3, chargers: 1 },
        { error_code: 'ProtocolError', action: 'StartTransaction', frames: 1, chargers: 1 },
      ],
    };
    expect(await raw_count(true)).toBe(4);
    expect(await figure()).toEqual(expected);
    await env.store.exec('OPTIMIZE TABLE evrate.ocpp_rejections FINAL');
    expect(await raw_count(false)).toBe(4);
    expect(await figure()).toEqual(expected);
  });

  it('refuses a parameter the question does not take', async () => {
    const response = await fetch(
      `${base_url}/v1/analytics/rejections?from=2026-11-04T00:00:00Z&to=2026-11-05T00:00:00Z&tariff=T1`,
      { headers: { authorization: `Bearer ${token}` } },
    );
    expect(response.status).toBe(400);
    expect(((await response.json()) as { field: string }).field).toBe('tariff');
  });
});
