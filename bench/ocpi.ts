/**
 * OCPI CDR paging benchmark: seeds CDR rows in the embedded engine (chdb), starts the stack
 * (API, private nats-server), registers a partner, and times pages of 1,000 CDRs over HTTP:
 *   - crawl: following the Link headers from the first page to the last (what partners do);
 *   - offset: pages at random offsets with offset/limit only (clients that build their URLs).
 * Each page is one GET with its X-Total-Count (a count query) and the mapping to OCPI CDRs.
 * Prints figures; asserts nothing but the crawl's completeness.
 *
 *   node dist/bench/ocpi.js [--cdrs 1000000] [--crawl-pages 1000] [--offset-pages 100]
 */
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { cdr_seed_sql } from '../test/helpers/cdr-seed.js';
import { register_emsp_partner } from '../test/helpers/ocpi-partner.js';
import { start_test_stack } from '../test/helpers/stack.js';

const { values } = parseArgs({
  options: {
    cdrs: { type: 'string', default: '1000000' },
    'crawl-pages': { type: 'string', default: '1000' },
    'offset-pages': { type: 'string', default: '100' },
  },
});
const cdrs_total = Number(values.cdrs);
const crawl_pages_max = Number(values['crawl-pages']);
const offset_pages = Number(values['offset-pages']);
const page_size = 1000;
const token = 'bench-partner-token-c-0123456789';
const base_s = Math.floor(Date.UTC(2026, 0, 1) / 1000);

function seed_sql(database: string, party: string, count: number, first: number): string {
  return cdr_seed_sql({ database, party, count, first, base_s, charge_points: 5000 });
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function summary(pages: PageTiming[]): Record<string, number> {
  const of = (pick: (p: PageTiming) => number) => [...pages.map(pick)].sort((a, b) => a - b);
  const total = of((p) => p.ms);
  const db = of((p) => p.db_ms);
  const map = of((p) => p.map_ms);
  const total_ms = total.reduce((a, b) => a + b, 0);
  const fixed = (value: number) => Number(value.toFixed(1));
  return {
    pages: pages.length,
    p50_ms: fixed(percentile(total, 50)),
    p99_ms: fixed(percentile(total, 99)),
    max_ms: fixed(total[total.length - 1]!),
    db_p50_ms: fixed(percentile(db, 50)),
    db_p99_ms: fixed(percentile(db, 99)),
    map_p50_ms: fixed(percentile(map, 50)),
    map_p99_ms: fixed(percentile(map, 99)),
    pages_per_s: fixed((pages.length / total_ms) * 1000),
  };
}

interface PageTiming {
  ms: number;
  db_ms: number;
  map_ms: number;
  count: number;
  next: string | undefined;
}

async function get_page(url: string): Promise<PageTiming> {
  const started = performance.now();
  const res = await fetch(url, {
    headers: { authorization: `Token ${Buffer.from(token).toString('base64')}` },
  });
  const body = (await res.json()) as { status_code: number; data: unknown[] };
  const ms = performance.now() - started;
  if (res.status !== 200 || body.status_code !== 1000) throw new Error(`page ${url}: HTTP ${res.status}`);
  const link = res.headers.get('link');
  const timing = res.headers.get('server-timing') ?? '';
  return {
    ms,
    db_ms: Number(/db;dur=([\d.]+)/.exec(timing)?.[1] ?? Number.NaN),
    map_ms: Number(/map;dur=([\d.]+)/.exec(timing)?.[1] ?? Number.NaN),
    count: body.data.length,
    next: link === null ? undefined : /^<([^>]+)>/.exec(link)?.[1],
  };
}

const stack = await start_test_stack({
  OPERATOR_TOKEN: 'bench-operator-token-0123456789',
  ROLES: 'api',
  OCPI_CDR_PUSH_INTERVAL_MS: '0',
  OCPI_RATE_LIMIT_PER_S: '1000000',
  OCPI_RATE_LIMIT_BURST: '1000000',
});
try {
  const nats = await register_emsp_partner(stack, {
    partner_id: 'bench',
    country_code: 'DE',
    party_id: 'BEN',
    name: 'Bench',
    token,
  });
  const seed_started = performance.now();
  for (let first = 0; first < cdrs_total; first += 250_000) {
    await stack.store!.exec(
      seed_sql(stack.store!.database, 'DE*BEN', Math.min(250_000, cdrs_total - first), first),
    );
  }
  const seed_s = (performance.now() - seed_started) / 1000;

  const load_at_start = loadavg()[0]!;
  // Warm up: the first queries load marks and caches.
  for (let i = 0; i < 3; i++) await get_page(`${stack.api_url}/ocpi/2.2.1/cdrs?limit=${page_size}`);

  const crawl: PageTiming[] = [];
  let crawled = 0;
  let url: string | undefined = `${stack.api_url}/ocpi/2.2.1/cdrs?limit=${page_size}`;
  while (url !== undefined && crawl.length < crawl_pages_max) {
    const page = await get_page(url);
    crawl.push(page);
    crawled += page.count;
    url = page.next;
  }
  const complete = url === undefined;
  if (complete && crawled !== cdrs_total) throw new Error(`crawl saw ${crawled} CDRs of ${cdrs_total}`);

  const offsets: PageTiming[] = [];
  for (let i = 0; i < offset_pages; i++) {
    const offset = Math.floor(Math.random() * (cdrs_total / page_size)) * page_size;
    offsets.push(await get_page(`${stack.api_url}/ocpi/2.2.1/cdrs?offset=${offset}&limit=${page_size}`));
  }
  await nats.close();
  process.stdout.write(
    `${JSON.stringify(
      {
        cdrs: cdrs_total,
        page_size,
        load_average_1m: { start: Number(load_at_start.toFixed(1)), end: Number(loadavg()[0]!.toFixed(1)) },
        cores: cpus().length,
        store: `chdb ${stack.store!.server_version}`,
        seed_s: Number(seed_s.toFixed(1)),
        crawl: { ...summary(crawl), cdrs_seen: crawled, reached_last_page: complete },
        random_offset: summary(offsets),
      },
      null,
      2,
    )}\n`,
  );
} finally {
  await stack.dispose();
}
