import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Nats } from '../core/nats.js';
import { cdr_seed_sql } from './helpers/cdr-seed.js';
import { register_emsp_partner } from './helpers/ocpi-partner.js';
import { start_test_stack } from './helpers/stack.js';

/**
 * A partner pages through 100,000 CDRs (the embedded engine) by following the Link headers and
 * gets every one exactly once, while CDRs of another party stay invisible. Ten CDRs share each
 * last_updated, so the order rests on the id as well.
 */

const cdrs_total = 100_000;
const base_s = Math.floor(Date.UTC(2026, 9, 1) / 1000);

function seed_sql(database: string, party: string, count: number, first: number): string {
  return cdr_seed_sql({ database, party, count, first, base_s, charge_points: 500 });
}

describe('OCPI CDR paging at 100,000 CDRs', () => {
  let stack: Awaited<ReturnType<typeof start_test_stack>>;
  let nats: Nats;
  const token = 'paging-partner-token-c-0123456789';

  beforeAll(async () => {
    stack = await start_test_stack({ OCPI_CDR_PUSH_INTERVAL_MS: '0', OCPI_RATE_LIMIT_BURST: '100000' });
    nats = await register_emsp_partner(stack, {
      partner_id: 'paging',
      country_code: 'DE',
      party_id: 'PGE',
      name: 'Paging',
      token,
      partner_token: 'unused',
    });
    await stack.store!.exec(seed_sql(stack.store!.database, 'DE*PGE', cdrs_total, 0));
    await stack.store!.exec(seed_sql(stack.store!.database, 'FR*OTH', 5_000, cdrs_total));
  });

  afterAll(async () => {
    await nats?.close();
    await stack?.dispose();
  });

  it('follows the Link headers through every CDR exactly once, in last_updated then id order', async () => {
    const seen = new Set<string>();
    let duplicates = 0;
    let previous = '';
    let out_of_order = 0;
    let url: string | undefined = `${stack.api_url}/ocpi/2.2.1/cdrs`;
    let pages = 0;
    while (url !== undefined) {
      const res = await fetch(url, {
        headers: { authorization: `Token ${Buffer.from(token).toString('base64')}` },
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('x-total-count')).toBe(String(cdrs_total));
      expect(res.headers.get('x-limit')).toBe('1000');
      const body = (await res.json()) as {
        status_code: number;
        data: { id: string; last_updated: string; cdr_token: { party_id: string } }[];
      };
      expect(body.status_code).toBe(1000);
      for (const cdr of body.data) {
        if (seen.has(cdr.id)) duplicates++;
        seen.add(cdr.id);
        const key = `${cdr.last_updated} ${cdr.id}`;
        if (key <= previous) out_of_order++;
        previous = key;
        expect(cdr.cdr_token.party_id).toBe('PGE');
      }
      const link = res.headers.get('link');
      url = link === null ? undefined : /^<([^>]+)>; rel="next"$/.exec(link)?.[1];
      pages++;
      expect(pages).toBeLessThanOrEqual(cdrs_total / 1000);
    }
    expect(pages).toBe(cdrs_total / 1000);
    expect(duplicates).toBe(0);
    expect(out_of_order).toBe(0);
    expect(seen.size).toBe(cdrs_total);
    for (const n of [0, 1, 4_242, 99_999]) expect(seen.has(`CP${n % 500}/${n}`)).toBe(true);
    expect(seen.has(`CP${cdrs_total % 500}/${cdrs_total}`)).toBe(false);
  });
});
