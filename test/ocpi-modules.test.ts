import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RatedSessionRow, rated_session_json } from '../analytics/sessions.js';
import { CdrPusher } from '../api/ocpi/cdr-push.js';
import {
  type CredentialsRole,
  type PartnerRecord,
  PartnerRegistry,
  token_sha256,
} from '../api/ocpi/partners.js';
import { create_logger } from '../core/log.js';
import { connect_nats, type Nats, open_kv } from '../core/nats.js';
import { TokenStore } from '../core/tokens.js';
import { start_test_stack } from './helpers/stack.js';

/**
 * The OCPI functional modules against the whole stack (NATS, chdb): CDRs, tariffs and sessions
 * senders scoped to the partner's own parties, the tokens receiver feeding the token store, and
 * the CDR push to a partner's receiver. Partners are registered through the registry directly.
 */

type Envelope = { data?: unknown; status_code: number; status_message?: string; timestamp: string };
type Cdr = Record<string, unknown> & { id: string; last_updated: string; cdr_token: Record<string, string> };

const base_ms = Date.UTC(2026, 10, 2, 8, 0, 0);

function row(
  n: number,
  party: string,
  rated_at_ms: number,
  extra: Partial<RatedSessionRow> = {},
): RatedSessionRow {
  const started = rated_at_ms - 3_600_000;
  return {
    session_id: `CP${n % 7}/${n}`,
    version: 1,
    charge_point_id: `CP${n % 7}`,
    connector_id: 1,
    transaction_id: String(n),
    id_tag: `TAG${n}`,
    started_at_ms: started,
    stopped_at_ms: rated_at_ms,
    meter_start_wh: 0,
    meter_stop_wh: 12_345,
    energy_wh: 12_345,
    stop_reason: 'Local',
    tariff_id: 'default',
    tariff_version: 1,
    currency: 'EUR',
    total_excl_vat: '3.70',
    total_incl_vat: '4.44',
    breakdown: JSON.stringify({
      charging_periods: [
        {
          start_date_time: new Date(started).toISOString(),
          dimensions: [{ type: 'ENERGY', volume: '12.345' }],
          tariff_id: 'default',
        },
      ],
      total_energy_cost: { excl_vat: '3.70', incl_vat: '4.44' },
    }),
    rated_at_ms,
    evse_id: 1,
    station_id: `CP${n % 7}`,
    payment_method: party === '' ? 'RFID' : 'ROAMING',
    party,
    time_zone: 'UTC',
    energy_cost_excl_vat: '3.70',
    time_cost_excl_vat: '0',
    parking_cost_excl_vat: '0',
    fixed_cost_excl_vat: '0',
    duration_s: 3600,
    parking_s: 0,
    provisional: 0,
    ...extra,
  };
}

function b64(token: string): string {
  return Buffer.from(token, 'utf8').toString('base64');
}

function role(country_code: string, party_id: string): CredentialsRole {
  return { role: 'EMSP', business_details: { name: `${country_code}${party_id}` }, country_code, party_id };
}

describe('OCPI 2.2.1 modules', () => {
  let stack: Awaited<ReturnType<typeof start_test_stack>>;
  let nats: Nats;
  let partners: PartnerRegistry;
  const token_de = 'token-c-of-de-abc-0123456789';
  const token_nl = 'token-c-of-nl-tnm-0123456789';

  async function register(
    partner_id: string,
    token_c: string,
    roles: CredentialsRole[],
    extra: Partial<PartnerRecord> = {},
  ) {
    const record: PartnerRecord = {
      partner_id,
      parties: roles.map((r) => ({ country_code: r.country_code, party_id: r.party_id })),
      status: 'registered',
      token_sha256: token_sha256(token_c),
      token_kind: 'C',
      partner_token: `${partner_id}-token-b`,
      versions_url: 'http://127.0.0.1:1/ocpi/versions',
      version: '2.2.1',
      endpoints: [],
      roles,
      created_at_ms: base_ms,
      updated_at_ms: base_ms,
      ...extra,
    };
    await partners.save(record, await partners.get(partner_id));
  }

  async function ocpi(method: string, path: string, token: string, body?: unknown) {
    const res = await fetch(path.startsWith('http') ? path : `${stack.api_url}${path}`, {
      method,
      headers: {
        authorization: `Token ${b64(token)}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as Envelope, headers: res.headers };
  }

  beforeAll(async () => {
    stack = await start_test_stack({
      OCPI_CDR_PUSH_INTERVAL_MS: '0',
      OCPI_PAGE_LIMIT_MAX: '50',
      OCPI_RATE_LIMIT_BURST: '10000',
    });
    nats = await connect_nats(
      { nats_stream: 'EVRATE_EVENTS', nats_subject_prefix: 'evrate', node_id: 'ocpi-test' },
      stack.nats_url,
      create_logger('warn'),
    );
    partners = await PartnerRegistry.open(nats);
    await register('emsp-de', token_de, [role('DE', 'ABC')]);
    await register('emsp-nl', token_nl, [role('NL', 'TNM')]);
    const rows: string[] = [];
    for (let n = 0; n < 30; n++)
      rows.push(rated_session_json(row(n, n % 3 === 0 ? 'NL*TNM' : 'DE*ABC', base_ms + n * 60_000)));
    // Our own tokens' sessions are nobody's CDRs.
    rows.push(rated_session_json(row(100, '', base_ms + 5_000)));
    // A provisional version (no stop yet) is not a CDR; the later final version of n=1 replaces version 1.
    rows.push(rated_session_json(row(101, 'DE*ABC', base_ms + 7_000, { provisional: 1 })));
    rows.push(
      rated_session_json(
        row(1, 'DE*ABC', base_ms + 60_000, { version: 2, total_excl_vat: '9.99', total_incl_vat: '12.09' }),
      ),
    );
    await stack.store!.insert_json_rows('rated_sessions', rows);
  });

  afterAll(async () => {
    await nats?.close();
    await stack?.dispose();
  });

  it('gives each partner only the CDRs of its own party, latest version, final only, oldest first', async () => {
    const de = await ocpi('GET', '/ocpi/2.2.1/cdrs', token_de);
    expect(de.status).toBe(200);
    expect(de.body.status_code).toBe(1000);
    const cdrs = de.body.data as Cdr[];
    expect(cdrs).toHaveLength(20);
    expect(de.headers.get('x-total-count')).toBe('20');
    expect(de.headers.get('x-limit')).toBe('50');
    expect(de.headers.get('link')).toBeNull();
    expect(cdrs.every((c) => c.cdr_token.country_code === 'DE' && c.cdr_token.party_id === 'ABC')).toBe(true);
    expect(cdrs.map((c) => c.id)).not.toContain('CP3/101');
    const sorted = [...cdrs].sort(
      (a, b) => a.last_updated.localeCompare(b.last_updated) || a.id.localeCompare(b.id),
    );
    expect(cdrs.map((c) => c.id)).toEqual(sorted.map((c) => c.id));
    const first = cdrs.find((c) => c.id === 'CP1/1')!;
    expect(first).toMatchObject({
      country_code: 'NL',
      party_id: 'EVR',
      session_id: 'CP1/1',
      currency: 'EUR',
      total_cost: { excl_vat: 9.99, incl_vat: 12.09 },
      total_energy: 12.345,
      total_energy_cost: { excl_vat: 3.7, incl_vat: 4.44 },
      total_time: 1,
      auth_method: 'WHITELIST',
      cdr_token: { uid: 'TAG1', type: 'RFID', contract_id: 'TAG1', country_code: 'DE', party_id: 'ABC' },
      last_updated: '2026-11-02T08:01:00Z',
      end_date_time: '2026-11-02T08:01:00Z',
      start_date_time: '2026-11-02T07:01:00Z',
    });
    expect(first.charging_periods).toEqual([
      {
        start_date_time: '2026-11-02T07:01:00.000Z',
        dimensions: [{ type: 'ENERGY', volume: 12.345 }],
        tariff_id: 'default',
      },
    ]);
    expect(first.cdr_location).toMatchObject({
      id: 'CP1',
      evse_uid: 'CP1-1',
      connector_id: '1',
      country: 'NLD',
    });

    // A cursor is data, never SQL: a quote in it widens nothing.
    const sneaky = Buffer.from("x' OR party != '", 'utf8').toString('base64url');
    const injected = await ocpi('GET', `/ocpi/2.2.1/cdrs?cursor=0.${sneaky}`, token_de);
    expect(injected.body.status_code).toBe(1000);
    expect((injected.body.data as Cdr[]).every((c) => c.cdr_token.party_id === 'ABC')).toBe(true);
    const nl = await ocpi('GET', '/ocpi/2.2.1/cdrs', token_nl);
    const nl_ids = (nl.body.data as Cdr[]).map((c) => c.id);
    expect(nl_ids).toHaveLength(10);
    expect(nl_ids.filter((id) => cdrs.some((c) => c.id === id))).toEqual([]);
    expect((nl.body.data as Cdr[]).every((c) => c.cdr_token.party_id === 'TNM')).toBe(true);
  });

  it('fills cdr_token and auth_method from the rated row, and a second partner sees none of the first one’s CDRs', async () => {
    const token_fr = 'token-c-of-fr-tok-0123456789';
    const token_be = 'token-c-of-be-non-0123456789';
    await register('emsp-fr', token_fr, [role('FR', 'TOK')]);
    await register('emsp-be', token_be, [role('BE', 'NON')]);
    const at_ms = base_ms + 200 * 60_000; // 11:20, after every other CDR of this file
    await stack.store!.insert_json_rows('rated_sessions', [
      // An app user's token authorized by a remote start (OCPI COMMAND), with its eMAID.
      rated_session_json(
        row(300, 'FR*TOK', at_ms, {
          token_type: 'APP_USER',
          contract_id: 'FR-TOK-C00000300-A',
          auth_method: 'COMMAND',
          group_id: 'FLEET-7',
          last_updated_ms: at_ms + 30_000,
        }),
      ),
      // Rated before the columns existed: the payment method gives the type, the uid the contract.
      rated_session_json(row(301, 'FR*TOK', at_ms + 60_000)),
    ]);
    const fr = await ocpi('GET', '/ocpi/2.2.1/cdrs', token_fr);
    const cdrs = fr.body.data as Cdr[];
    expect(cdrs.map((c) => [c.id, c.cdr_token, c.auth_method, c.last_updated])).toEqual([
      [
        'CP6/300',
        {
          country_code: 'FR',
          party_id: 'TOK',
          uid: 'TAG300',
          type: 'APP_USER',
          contract_id: 'FR-TOK-C00000300-A',
        },
        'COMMAND',
        // last_updated_ms, 30 s after the stop.
        '2026-11-02T11:20:30Z',
      ],
      [
        'CP0/301',
        { country_code: 'FR', party_id: 'TOK', uid: 'TAG301', type: 'RFID', contract_id: 'TAG301' },
        'WHITELIST',
        '2026-11-02T11:21:00Z',
      ],
    ]);
    // No other partner sees them: not the DE partner, not one whose party has no CDRs at all.
    const de = await ocpi('GET', '/ocpi/2.2.1/cdrs?date_from=2026-11-02T11:00:00Z', token_de);
    expect(de.body.data).toEqual([]);
    expect(de.headers.get('x-total-count')).toBe('0');
    const be = await ocpi('GET', '/ocpi/2.2.1/cdrs', token_be);
    expect(be.body.status_code).toBe(1000);
    expect(be.body.data).toEqual([]);
    expect(be.headers.get('x-total-count')).toBe('0');
    // And FR sees none of DE's or NL's.
    expect(cdrs).toHaveLength(2);
  });

  it('lists a re-rated CDR in a date_from pull taken after its first version was pulled', async () => {
    const token_it = 'token-c-of-it-rrt-0123456789';
    await register('emsp-it', token_it, [role('IT', 'RRT')]);
    const stop_ms = base_ms + 300_000; // 08:05
    // Version 1 rated at the stop; the partner pulls at 09:00 and remembers that time.
    await stack.store!.insert_json_rows('rated_sessions', [
      rated_session_json(row(400, 'IT*RRT', stop_ms, { last_updated_ms: stop_ms })),
    ]);
    const first = await ocpi('GET', '/ocpi/2.2.1/cdrs?date_from=2026-11-02T08:00:00Z', token_it);
    expect((first.body.data as Cdr[]).map((c) => `${c.id} ${c.last_updated}`)).toEqual([
      'CP1/400 2026-11-02T08:05:00Z',
    ]);
    // Re-rated at 09:30 with the same stop (so the same rated_at_ms) and a corrected total.
    await stack.store!.insert_json_rows('rated_sessions', [
      rated_session_json(
        row(400, 'IT*RRT', stop_ms, {
          version: 2,
          total_excl_vat: '2.00',
          total_incl_vat: '2.40',
          last_updated_ms: base_ms + 5_400_000,
        }),
      ),
    ]);
    const next = await ocpi('GET', '/ocpi/2.2.1/cdrs?date_from=2026-11-02T09:00:00Z', token_it);
    expect(
      (next.body.data as Cdr[]).map((c) => [
        c.id,
        c.last_updated,
        (c.total_cost as { excl_vat: number }).excl_vat,
      ]),
    ).toEqual([['CP1/400', '2026-11-02T09:30:00Z', 2]]);
    // The whole list has the session once, the corrected version.
    const all = await ocpi('GET', '/ocpi/2.2.1/cdrs', token_it);
    expect((all.body.data as Cdr[]).map((c) => c.last_updated)).toEqual(['2026-11-02T09:30:00Z']);
  });

  it('pages with Link, X-Total-Count and X-Limit, keeps the date filters in the Link, caps the limit', async () => {
    const seen: string[] = [];
    let url: string | undefined =
      '/ocpi/2.2.1/cdrs?limit=3&date_from=2026-11-02T08:02:00Z&date_to=2026-11-02T08:20:00Z';
    let pages = 0;
    while (url !== undefined) {
      const page = await ocpi('GET', url, token_de);
      expect(page.headers.get('x-limit')).toBe('3');
      expect(page.headers.get('x-total-count')).toBe('12');
      seen.push(...(page.body.data as Cdr[]).map((c) => c.id));
      const link = page.headers.get('link');
      if (link !== null) {
        expect(link).toMatch(/date_from=2026-11-02T08%3A02%3A00Z/);
        expect(link).toMatch(/date_to=2026-11-02T08%3A20%3A00Z/);
      }
      url = link === null ? undefined : /^<([^>]+)>; rel="next"$/.exec(link)![1];
      pages++;
    }
    expect(pages).toBe(4);
    expect(new Set(seen).size).toBe(12);
    // A URL built by the client with offset alone gives the same page as the Link's cursor.
    const by_offset = await ocpi(
      'GET',
      '/ocpi/2.2.1/cdrs?offset=3&limit=3&date_from=2026-11-02T08:02:00Z&date_to=2026-11-02T08:20:00Z',
      token_de,
    );
    expect((by_offset.body.data as Cdr[]).map((c) => c.id)).toEqual(seen.slice(3, 6));
    const over = await ocpi('GET', '/ocpi/2.2.1/cdrs?limit=5000', token_de);
    expect(over.headers.get('x-limit')).toBe('50');
  });

  it('answers invalid paging parameters with OCPI status 2001', async () => {
    for (const query of [
      'limit=abc',
      'offset=-1',
      'limit=0',
      'date_from=yesterday',
      'cursor=not-a-cursor',
      'date_from=2026-11-02T10:00:00Z&date_to=2026-11-02T09:00:00Z',
    ]) {
      const res = await ocpi('GET', `/ocpi/2.2.1/cdrs?${query}`, token_de);
      expect(res.body.status_code, query).toBe(2001);
      expect(res.body.data, query).toBeUndefined();
    }
  });

  it('lists the current tariffs with pagination headers', async () => {
    const res = await ocpi('GET', '/ocpi/2.2.1/tariffs', token_de);
    expect(res.body.status_code).toBe(1000);
    const tariffs = res.body.data as { id: string; currency: string; elements: unknown[] }[];
    expect(tariffs.map((t) => t.id)).toEqual(['default']);
    expect(tariffs[0]!.elements.length).toBeGreaterThan(0);
    expect(res.headers.get('x-total-count')).toBe('1');
    const none = await ocpi('GET', '/ocpi/2.2.1/tariffs?date_from=2099-01-01T00:00:00Z', token_de);
    expect(none.body.data).toEqual([]);
  });

  it('lists only the partner’s own open sessions with their running cost', async () => {
    const bucket = await open_kv(nats, 'evrate_sessions_open');
    const open = (id: string, party: string, cost: { excl_vat: string; incl_vat: string } | null) => ({
      session_id: id,
      charge_point_id: id.split('/')[0],
      connector_id: 2,
      id_tag: `TAG-${id}`,
      started_at_ms: base_ms,
      tariff_id: 'default',
      tariff_version: 1,
      meta: { party, payment_method: 'ROAMING', evse_id: 2 },
      closed: 'open',
      energy_wh: 5_500,
      running_cost: cost,
      last_activity_ms: base_ms + 600_000,
    });
    await bucket.put(
      's.de1',
      JSON.stringify(open('CPX/1', 'DE*ABC', { excl_vat: '1.65', incl_vat: '1.98' })),
    );
    // The NL session's token as the rating keeps it (the same fields as the rated row).
    const nl_open = open('CPX/2', 'NL*TNM', { excl_vat: '2.00', incl_vat: '2.40' });
    await bucket.put(
      's.nl1',
      JSON.stringify({
        ...nl_open,
        meta: {
          ...nl_open.meta,
          token_type: 'APP_USER',
          contract_id: 'NL-TNM-C00000002-Y',
          auth_method: 'AUTH_REQUEST',
        },
      }),
    );
    await bucket.put('s.de2', JSON.stringify({ ...open('CPX/3', 'DE*ABC', null), closed: 'stopped' }));
    const de = await ocpi('GET', '/ocpi/2.2.1/sessions', token_de);
    expect(de.body.status_code).toBe(1000);
    expect(de.body.data).toEqual([
      expect.objectContaining({
        id: 'CPX/1',
        status: 'ACTIVE',
        kwh: 5.5,
        currency: 'EUR',
        total_cost: { excl_vat: 1.65, incl_vat: 1.98 },
        // No type or contract kept: the payment method's type and the uid, as for older CDRs.
        cdr_token: {
          country_code: 'DE',
          party_id: 'ABC',
          uid: 'TAG-CPX/1',
          type: 'RFID',
          contract_id: 'TAG-CPX/1',
        },
        auth_method: 'WHITELIST',
        evse_uid: 'CPX-2',
        last_updated: '2026-11-02T08:10:00Z',
      }),
    ]);
    const nl = await ocpi('GET', '/ocpi/2.2.1/sessions', token_nl);
    expect((nl.body.data as { id: string }[]).map((s) => s.id)).toEqual(['CPX/2']);
    expect(nl.body.data).toEqual([
      expect.objectContaining({
        cdr_token: {
          country_code: 'NL',
          party_id: 'TNM',
          uid: 'TAG-CPX/2',
          type: 'APP_USER',
          contract_id: 'NL-TNM-C00000002-Y',
        },
        auth_method: 'AUTH_REQUEST',
      }),
    ]);
  });

  it('takes tokens from a partner for its own party only and feeds the token store', async () => {
    const tokens = await TokenStore.open(nats, { cache_ttl_ms: 0, cache_entries_max: 10 });
    const token = {
      country_code: 'DE',
      party_id: 'ABC',
      uid: '04A1B2C3D4',
      type: 'RFID',
      contract_id: 'DE-ABC-C12345678-X',
      issuer: 'ABC Mobility',
      valid: true,
      whitelist: 'ALLOWED',
      last_updated: '2026-11-02T08:00:00Z',
    };
    const path = '/ocpi/2.2.1/tokens/DE/ABC/04A1B2C3D4';
    const created = await ocpi('PUT', path, token_de, token);
    expect(created.status).toBe(201);
    expect(created.body.status_code).toBe(1000);
    expect((await tokens.authorize('04A1B2C3D4', false)).status).toBe('Accepted');
    expect((await tokens.get('04A1B2C3D4'))?.contract_id).toBe('DE-ABC-C12345678-X');
    const replaced = await ocpi('PUT', path, token_de, { ...token, issuer: 'ABC Mobility GmbH' });
    expect(replaced.status).toBe(200);
    const got = await ocpi('GET', path, token_de);
    expect(got.body.data).toMatchObject({ uid: '04A1B2C3D4', issuer: 'ABC Mobility GmbH', valid: true });

    const patched = await ocpi('PATCH', path, token_de, {
      valid: false,
      last_updated: '2026-11-02T09:00:00Z',
    });
    expect(patched.body.status_code).toBe(1000);
    expect((await tokens.authorize('04A1B2C3D4', false)).status).toBe('Blocked');
    const no_date = await ocpi('PATCH', path, token_de, { valid: true });
    expect(no_date.body.status_code).toBe(2001);
    expect((await tokens.get('04A1B2C3D4'))?.valid).toBe(false);

    // Another partner can neither read, write nor patch under DE/ABC ...
    expect((await ocpi('GET', path, token_nl)).status).toBe(404);
    const foreign_put = await ocpi('PUT', path, token_nl, token);
    expect(foreign_put.status).toBe(404);
    expect(foreign_put.body.status_code).toBe(2000);
    expect(
      (await ocpi('PATCH', path, token_nl, { valid: true, last_updated: '2026-11-02T10:00:00Z' })).status,
    ).toBe(404);
    // ... nor take over the uid under its own party.
    const takeover = await ocpi('PUT', '/ocpi/2.2.1/tokens/NL/TNM/04A1B2C3D4', token_nl, {
      ...token,
      country_code: 'NL',
      party_id: 'TNM',
    });
    expect(takeover.body.status_code).toBe(2000);
    expect((await tokens.get('04A1B2C3D4'))?.party_id).toBe('ABC');
    expect((await tokens.authorize('04A1B2C3D4', false)).status).toBe('Blocked');

    const mismatch = await ocpi('PUT', '/ocpi/2.2.1/tokens/DE/ABC/OTHER', token_de, token);
    expect(mismatch.body.status_code).toBe(2001);
    const invalid = await ocpi('PUT', '/ocpi/2.2.1/tokens/DE/ABC/NEW1', token_de, {
      ...token,
      uid: 'NEW1',
      whitelist: 'SOMETIMES',
    });
    expect(invalid.body.status_code).toBe(2001);
    expect(invalid.body.status_message).toMatch(/^whitelist/);
    expect(await tokens.get('NEW1')).toBeUndefined();
    const unknown = await ocpi('GET', '/ocpi/2.2.1/tokens/DE/ABC/NOPE', token_de);
    expect(unknown.status).toBe(404);
    expect(unknown.body.status_code).toBe(2004);
    const too_big = await fetch(`${stack.api_url}${path}`, {
      method: 'PUT',
      headers: { authorization: `Token ${b64(token_de)}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ...token, issuer: 'x'.repeat(2 * 1024 * 1024) }),
    });
    expect(too_big.status).toBe(413);
    expect(((await too_big.json()) as Envelope).status_code).toBe(2001);
  });

  it('pushes new CDRs to the partner’s receiver once each, retries a failing receiver and resumes after a restart', async () => {
    const received: { id: string; authorization: string; last_updated: string; total_excl_vat: number }[] =
      [];
    let failing = false;
    let requests = 0;
    const receiver = http.createServer((req, res) => {
      requests++;
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        if (failing) {
          res.writeHead(503);
          res.end(JSON.stringify({ status_code: 3000, timestamp: new Date().toISOString() }));
          return;
        }
        const cdr = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
          id: string;
          last_updated: string;
          total_cost: { excl_vat: number };
        };
        received.push({
          id: cdr.id,
          authorization: req.headers.authorization ?? '',
          last_updated: cdr.last_updated,
          total_excl_vat: cdr.total_cost.excl_vat,
        });
        res.setHeader('location', `http://emsp.example/cdrs/${cdr.id}`);
        res.end(JSON.stringify({ status_code: 1000, timestamp: new Date().toISOString() }));
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/ocpi/emsp/2.2.1/cdrs`;
    try {
      const registered_ms = base_ms + 100 * 60_000;
      await register('emsp-push', 'token-c-of-push-0123456789', [role('BE', 'PSH')], {
        endpoints: [{ identifier: 'cdrs', role: 'RECEIVER', url }],
        updated_at_ms: registered_ms,
      });
      // One CDR rated before registration (for pulling), three after, one of another party.
      await stack.store!.insert_json_rows('rated_sessions', [
        rated_session_json(row(200, 'BE*PSH', registered_ms - 60_000)),
        rated_session_json(row(201, 'BE*PSH', registered_ms + 60_000)),
        rated_session_json(row(202, 'BE*PSH', registered_ms + 120_000)),
        rated_session_json(row(203, 'DE*ABC', registered_ms + 130_000)),
        rated_session_json(row(204, 'BE*PSH', registered_ms + 180_000)),
      ]);
      const options = {
        interval_ms: 1000,
        batch_max: 2,
        attempts_max: 3,
        backoff_ms_initial: 10,
        backoff_ms_max: 40,
        settle_ms: 0,
      };
      const deps = {
        store: stack.store!,
        partners,
        mapping: { cpo: { country_code: 'NL', party_id: 'EVR' }, location_country: 'NLD' },
        // The receiver listens on loopback: allowed explicitly.
        client: { timeout_ms: 5000, response_bytes_max: 65536, allow_private_addresses: true },
        log: create_logger('silent'),
      };
      const now = registered_ms + 3_600_000;

      // Without OCPI_ALLOW_PRIVATE_ADDRESSES a receiver on loopback is never called.
      const refusing = await CdrPusher.open(
        nats,
        { ...deps, client: { ...deps.client, allow_private_addresses: false } },
        options,
      );
      expect((await refusing.push_pending(now))['emsp-push']).toBe(0);
      await refusing.close();
      expect(requests).toBe(0);

      failing = true;
      const pusher = await CdrPusher.open(nats, deps, options);
      expect((await pusher.push_pending(now))['emsp-push']).toBe(0);
      expect(received).toEqual([]);

      failing = false;
      expect((await pusher.push_pending(now))['emsp-push']).toBe(2); // batch_max
      // While it holds the partner's lease, another process does not push to that partner.
      const other = await CdrPusher.open(nats, deps, options);
      expect((await other.push_pending(now))['emsp-push']).toBeUndefined();
      await other.close();
      await pusher.close();
      // A new process continues from the cursor in KV.
      const restarted = await CdrPusher.open(nats, deps, options);
      expect((await restarted.push_pending(now))['emsp-push']).toBe(1);
      expect((await restarted.push_pending(now))['emsp-push']).toBe(0);
      // A re-rating of 201 with the same stop, 20 minutes after the last CDR pushed: its
      // last_updated is the re-rating time, after the cursor, so the correction is pushed.
      await stack.store!.insert_json_rows('rated_sessions', [
        rated_session_json(
          row(201, 'BE*PSH', registered_ms + 60_000, {
            version: 2,
            total_excl_vat: '5.00',
            total_incl_vat: '6.00',
            last_updated_ms: registered_ms + 1_380_000,
          }),
        ),
      ]);
      expect((await restarted.push_pending(now))['emsp-push']).toBe(1);
      expect((await restarted.push_pending(now))['emsp-push']).toBe(0);
      await restarted.close();
      expect(received.map((r) => r.id)).toEqual(['CP5/201', 'CP6/202', 'CP1/204', 'CP5/201']);
      expect(received[3]!.last_updated).toBe('2026-11-02T10:03:00Z');
      expect(received[3]!.total_excl_vat).toBe(5);
      expect(new Set(received.map((r) => r.authorization))).toEqual(
        new Set([`Token ${b64('emsp-push-token-b')}`]),
      );
    } finally {
      receiver.closeAllConnections();
      await new Promise<void>((resolve) => receiver.close(() => resolve()));
    }
  });
});
