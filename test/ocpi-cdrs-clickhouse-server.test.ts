import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RatedSessionRow, rated_session_json } from '../analytics/sessions.js';
import type { Nats } from '../core/nats.js';
import { type PrivateClickHouse, start_clickhouse_server } from './helpers/clickhouse-server.js';
import { register_emsp_partner } from './helpers/ocpi-partner.js';
import { start_test_stack } from './helpers/stack.js';

/**
 * The OCPI CDR sender on Debian's clickhouse-server 18.16 over HTTP: the same queries (FINAL
 * without the newer settings), the same scoping, paging by Link cursor and by offset.
 */

const base_ms = Date.UTC(2026, 10, 3, 12, 0, 0);

function row(n: number, party: string, version = 1, total = '2.50'): RatedSessionRow {
  const rated_at_ms = base_ms + Math.floor(n / 2) * 60_000; // two CDRs share each last_updated
  return {
    session_id: `CP${n % 3}/${n}`,
    version,
    charge_point_id: `CP${n % 3}`,
    connector_id: 2,
    transaction_id: String(n),
    id_tag: `TAG${n}`,
    started_at_ms: rated_at_ms - 1_800_000,
    stopped_at_ms: rated_at_ms,
    meter_start_wh: 0,
    meter_stop_wh: 7_500,
    energy_wh: 7_500,
    stop_reason: 'Local',
    tariff_id: 'default',
    tariff_version: 1,
    currency: 'EUR',
    total_excl_vat: total,
    total_incl_vat: '3.00',
    breakdown: '{}',
    rated_at_ms,
    party,
    payment_method: 'ROAMING',
    duration_s: 1800,
    provisional: 0,
  };
}

describe('OCPI CDRs on clickhouse-server 18.16', () => {
  let clickhouse: PrivateClickHouse;
  let stack: Awaited<ReturnType<typeof start_test_stack>>;
  let nats: Nats;
  const token = 'ch-server-partner-token-0123456789';

  beforeAll(async () => {
    clickhouse = await start_clickhouse_server();
    stack = await start_test_stack({ CLICKHOUSE_URL: clickhouse.url, OCPI_CDR_PUSH_INTERVAL_MS: '0' });
    nats = await register_emsp_partner(stack, {
      partner_id: 'ch',
      country_code: 'DE',
      party_id: 'CHS',
      name: 'CH',
      token,
    });
    const rows = [];
    for (let n = 0; n < 25; n++) rows.push(rated_session_json(row(n, n < 20 ? 'DE*CHS' : 'NL*OTH')));
    rows.push(rated_session_json(row(4, 'DE*CHS', 2, '7.25')));
    await stack.store!.insert_json_rows('rated_sessions', rows);
  });

  afterAll(async () => {
    await nats?.close();
    await stack?.dispose();
    await clickhouse?.dispose();
  });

  it('pages through the partner’s CDRs by Link and by offset, latest version only', async () => {
    expect(stack.store!.server_version).toMatch(/^18\./);
    const get = async (url: string) => {
      const res = await fetch(url, {
        headers: { authorization: `Token ${Buffer.from(token).toString('base64')}` },
      });
      return {
        headers: res.headers,
        body: (await res.json()) as { status_code: number; data: { id: string; total_cost: unknown }[] },
      };
    };
    const ids: string[] = [];
    let url: string | undefined = `${stack.api_url}/ocpi/2.2.1/cdrs?limit=6`;
    while (url !== undefined) {
      const page = await get(url);
      expect(page.body.status_code).toBe(1000);
      expect(page.headers.get('x-total-count')).toBe('20');
      ids.push(...page.body.data.map((c) => c.id));
      const link = page.headers.get('link');
      url = link === null ? undefined : /^<([^>]+)>/.exec(link)?.[1];
    }
    expect(ids).toHaveLength(20);
    expect(new Set(ids).size).toBe(20);
    expect(ids.some((id) => id.endsWith('/20'))).toBe(false);
    const by_offset = await get(`${stack.api_url}/ocpi/2.2.1/cdrs?offset=6&limit=6`);
    expect(by_offset.body.data.map((c) => c.id)).toEqual(ids.slice(6, 12));
    const replaced = (await get(`${stack.api_url}/ocpi/2.2.1/cdrs?limit=50`)).body.data.find(
      (c) => c.id === 'CP1/4',
    );
    expect(replaced?.total_cost).toEqual({ excl_vat: 7.25, incl_vat: 3 });
  });
});
