import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { start_test_stack, test_operator_token } from './helpers/stack.js';

/**
 * The OCPI 2.2.1 credentials handshake and authentication against the whole stack, with the
 * partner (an eMSP) played by a small node:http server on a free port.
 */

type Envelope = { data?: unknown; status_code: number; status_message?: string; timestamp: string };

function b64(token: string): string {
  return Buffer.from(token, 'utf8').toString('base64');
}

interface FakeEmsp {
  url: string;
  /** Authorization headers it received, in order. */
  authorizations: string[];
  /** X-Request-ID headers it received, in order. */
  request_ids: string[];
  cdrs_received: unknown[];
  /** When set, the versions endpoint answers HTTP 500. */
  broken: boolean;
  /** Credentials objects we PUT to it (token rotation), and what our versions endpoint answered to
   * the new token while it handled each PUT. */
  put_credentials: { token: string; url: string; versions_status: number }[];
  /** The token B it accepts now; a PUT of our credentials replaces it with `${token_b}-<n>`. */
  readonly token_b: string;
  close(): Promise<void>;
}

async function start_fake_emsp(token_b: string, party: [string, string] = ['DE', 'ABC']): Promise<FakeEmsp> {
  const state = {
    authorizations: [] as string[],
    request_ids: [] as string[],
    cdrs_received: [] as unknown[],
    broken: false,
    put_credentials: [] as { token: string; url: string; versions_status: number }[],
    token_b,
  };
  let base = '';
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      state.authorizations.push(req.headers.authorization ?? '');
      state.request_ids.push(String(req.headers['x-request-id'] ?? ''));
      const reply = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      const ok = (data: unknown) =>
        reply(200, { data, status_code: 1000, timestamp: new Date().toISOString() });
      if (req.headers.authorization !== `Token ${b64(state.token_b)}`)
        return reply(401, { status_code: 2000, timestamp: '' });
      if (state.broken) return reply(500, { status_code: 3000, timestamp: '' });
      if (req.url === '/ocpi/versions') return ok([{ version: '2.2.1', url: `${base}/ocpi/2.2.1` }]);
      if (req.url === '/ocpi/2.2.1') {
        return ok({
          version: '2.2.1',
          endpoints: [
            { identifier: 'credentials', role: 'SENDER', url: `${base}/ocpi/2.2.1/credentials` },
            { identifier: 'cdrs', role: 'RECEIVER', url: `${base}/ocpi/2.2.1/cdrs` },
          ],
        });
      }
      if (req.url === '/ocpi/2.2.1/credentials' && req.method === 'PUT') {
        // As a partner does on a PUT (credentials "PUT Method"): fetch the caller's versions with
        // the token it sent, then answer with a new token for the caller.
        const ours = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { token: string; url: string };
        const check = await fetch(ours.url, { headers: { authorization: `Token ${b64(ours.token)}` } });
        state.put_credentials.push({ ...ours, versions_status: check.status });
        state.token_b = `${token_b}-${state.put_credentials.length}`;
        return ok(emsp_credentials(state.token_b, `${base}/ocpi/versions`, ...party));
      }
      if (req.url === '/ocpi/2.2.1/cdrs' && req.method === 'POST') {
        state.cdrs_received.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        res.setHeader('location', `${base}/ocpi/2.2.1/cdrs/${state.cdrs_received.length}`);
        return ok(undefined);
      }
      reply(404, { status_code: 2000, timestamp: '' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: `${base}/ocpi/versions`,
    authorizations: state.authorizations,
    request_ids: state.request_ids,
    cdrs_received: state.cdrs_received,
    put_credentials: state.put_credentials,
    get token_b() {
      return state.token_b;
    },
    get broken() {
      return state.broken;
    },
    set broken(value: boolean) {
      state.broken = value;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function emsp_credentials(token_b: string, url: string, country_code = 'DE', party_id = 'ABC') {
  return {
    token: token_b,
    url,
    roles: [{ role: 'EMSP', business_details: { name: 'Test eMSP' }, country_code, party_id }],
  };
}

describe('OCPI 2.2.1 credentials and authentication', () => {
  let stack: Awaited<ReturnType<typeof start_test_stack>>;
  let emsp: FakeEmsp;
  const token_b = 'emsp-token-b-0123456789';

  async function ocpi(
    method: string,
    path: string,
    token: string | undefined,
    body?: unknown,
    raw = false,
  ): Promise<{ status: number; body: Envelope; headers: Headers }> {
    const headers: Record<string, string> = {};
    if (token !== undefined) headers.authorization = `Token ${raw ? token : b64(token)}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${stack.api_url}${path}`, {
      method,
      headers,
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as Envelope, headers: res.headers };
  }

  async function create_partner(partner_id: string, parties: unknown) {
    const res = await fetch(`${stack.api_url}/v1/partners`, {
      method: 'POST',
      headers: { authorization: `Bearer ${test_operator_token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ partner_id, parties }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, string> };
  }

  beforeAll(async () => {
    // The partner runs on loopback: allowed explicitly, in the config and in the environment
    // (which the OCPI client reads when its options do not carry the setting).
    process.env.OCPI_ALLOW_PRIVATE_ADDRESSES = 'true';
    stack = await start_test_stack({
      OCPI_CDR_PUSH_INTERVAL_MS: '0',
      OCPI_RATE_LIMIT_PER_S: '5',
      OCPI_RATE_LIMIT_BURST: '50',
      OCPI_ALLOW_PRIVATE_ADDRESSES: 'true',
    });
    emsp = await start_fake_emsp(token_b);
  });

  afterAll(async () => {
    delete process.env.OCPI_ALLOW_PRIVATE_ADDRESSES;
    await emsp?.close();
    await stack?.dispose();
  });

  it('issues token A only to the operator and answers 401 in the OCPI envelope without a valid token', async () => {
    const no_operator = await fetch(`${stack.api_url}/v1/partners`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(no_operator.status).toBe(401);
    const bad = await create_partner('emsp-x', [{ country_code: 'DEU', party_id: 'ABC' }]);
    expect(bad.status).toBe(400);
    expect(bad.body.field).toBe('parties[0].country_code');

    for (const [token, raw] of [
      [undefined, false],
      ['not-a-token-we-issued', false],
      ['not-a-token-we-issued', true],
    ] as const) {
      const res = await ocpi('GET', '/ocpi/versions', token, undefined, raw);
      expect(res.status).toBe(401);
      expect(res.body.status_code).toBe(2000);
      expect(res.body.timestamp).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
      expect(res.body.data).toBeUndefined();
    }
    // transport_and_format "Unique message IDs": the response carries the request's IDs, errors too.
    const ids = await fetch(`${stack.api_url}/ocpi/versions`, {
      headers: { 'x-request-id': 'req-123', 'x-correlation-id': 'corr-456' },
    });
    expect(ids.status).toBe(401);
    expect(ids.headers.get('x-request-id')).toBe('req-123');
    expect(ids.headers.get('x-correlation-id')).toBe('corr-456');
    const unknown_path = await ocpi('GET', '/ocpi/2.2.1/nothing', 'x');
    expect(unknown_path.status).toBe(404);
    expect(unknown_path.body.status_code).toBe(2000);
  });

  it('registers a partner: token A for versions, token B used to call it, token C returned; A then dies', async () => {
    const created = await create_partner('emsp-de', [{ country_code: 'de', party_id: 'abc' }]);
    expect(created.status).toBe(201);
    const token_a = created.body.token_a!;
    expect(token_a).toMatch(/^[\x21-\x7e]{16,64}$/);
    expect(created.body.versions_url).toBe(`${stack.api_url}/ocpi/versions`);

    // Base64 as 2.2.1 requires, and the raw token of 2.1.1/2.2 implementations.
    for (const raw of [false, true]) {
      const versions = await ocpi('GET', '/ocpi/versions', token_a, undefined, raw);
      expect(versions.status).toBe(200);
      expect(versions.body.status_code).toBe(1000);
      expect(versions.body.data).toEqual([{ version: '2.2.1', url: `${stack.api_url}/ocpi/2.2.1` }]);
    }
    const details = await ocpi('GET', '/ocpi/2.2.1', token_a);
    const endpoints = (details.body.data as { endpoints: { identifier: string; role: string }[] }).endpoints;
    expect(endpoints.map((e) => `${e.identifier}:${e.role}`).sort()).toEqual([
      'cdrs:SENDER',
      'credentials:SENDER',
      'sessions:SENDER',
      'tariffs:SENDER',
      'tokens:RECEIVER',
    ]);

    // Token A may not be used on functional modules (transport_and_format).
    const cdrs_with_a = await ocpi('GET', '/ocpi/2.2.1/cdrs', token_a);
    expect(cdrs_with_a.status).toBe(401);
    expect(cdrs_with_a.body.status_code).toBe(2000);

    // A role for a party the operator did not register for this partner is refused.
    const foreign = await ocpi(
      'POST',
      '/ocpi/2.2.1/credentials',
      token_a,
      emsp_credentials(token_b, emsp.url, 'NL', 'TNM'),
    );
    expect(foreign.status).toBe(200);
    expect(foreign.body.status_code).toBe(2001);

    const invalid = await ocpi('POST', '/ocpi/2.2.1/credentials', token_a, {
      token: token_b,
      url: emsp.url,
      roles: [],
    });
    expect(invalid.body.status_code).toBe(2001);
    expect(invalid.body.status_message).toMatch(/^roles/);
    const not_json = await ocpi('POST', '/ocpi/2.2.1/credentials', token_a, '{"token":');
    expect(not_json.status).toBe(400);
    expect(not_json.body.status_code).toBe(2001);

    emsp.broken = true;
    const unreachable = await ocpi(
      'POST',
      '/ocpi/2.2.1/credentials',
      token_a,
      emsp_credentials(token_b, emsp.url),
    );
    expect(unreachable.body.status_code).toBe(3001);
    emsp.broken = false;

    const seen_before = emsp.authorizations.length;
    const registered = await ocpi(
      'POST',
      '/ocpi/2.2.1/credentials',
      token_a,
      emsp_credentials(token_b, emsp.url),
    );
    expect(registered.status).toBe(200);
    expect(registered.body.status_code).toBe(1000);
    const ours = registered.body.data as {
      token: string;
      url: string;
      roles: { role: string; country_code: string; party_id: string }[];
    };
    expect(ours.url).toBe(`${stack.api_url}/ocpi/versions`);
    expect(ours.roles).toEqual([
      { role: 'CPO', business_details: { name: 'evrate' }, country_code: 'NL', party_id: 'EVR' },
    ]);
    expect(ours.token).not.toBe(token_a);
    // We called the partner's versions and version details with token B, Base64-encoded.
    expect(emsp.authorizations.slice(seen_before)).toEqual([
      `Token ${b64(token_b)}`,
      `Token ${b64(token_b)}`,
    ]);
    const request_ids = emsp.request_ids.slice(seen_before);
    expect(request_ids.every((id) => /^[0-9a-f-]{36}$/.test(id))).toBe(true);
    expect(new Set(request_ids).size).toBe(2);

    const token_c = ours.token;
    expect((await ocpi('GET', '/ocpi/versions', token_a)).status).toBe(401);
    const cdrs = await ocpi('GET', '/ocpi/2.2.1/cdrs', token_c);
    expect(cdrs.status).toBe(200);
    expect(cdrs.body.data).toEqual([]);

    // Registered already: POST is 405 (credentials POST).
    const again = await ocpi('POST', '/ocpi/2.2.1/credentials', token_c, emsp_credentials(token_b, emsp.url));
    expect(again.status).toBe(405);
    expect(again.body.status_code).toBe(2000);

    const got = await ocpi('GET', '/ocpi/2.2.1/credentials', token_c);
    expect((got.body.data as { token: string }).token).toBe(token_c);

    // PUT: new token C, the old one stops working.
    const updated = await ocpi(
      'PUT',
      '/ocpi/2.2.1/credentials',
      token_c,
      emsp_credentials(token_b, emsp.url),
    );
    expect(updated.body.status_code).toBe(1000);
    const token_c2 = (updated.body.data as { token: string }).token;
    expect(token_c2).not.toBe(token_c);
    expect((await ocpi('GET', '/ocpi/2.2.1/cdrs', token_c)).status).toBe(401);
    expect((await ocpi('GET', '/ocpi/2.2.1/cdrs', token_c2)).status).toBe(200);

    const partners = await fetch(`${stack.api_url}/v1/partners`, {
      headers: { authorization: `Bearer ${test_operator_token}` },
    });
    const listed = ((await partners.json()) as { partners: Record<string, unknown>[] }).partners;
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ partner_id: 'emsp-de', status: 'registered', partner_token_set: true });
    expect(JSON.stringify(listed)).not.toContain(token_b);
    expect(JSON.stringify(listed)).not.toContain(token_c2);

    // DELETE unregisters: the token stops working everywhere.
    const deleted = await ocpi('DELETE', '/ocpi/2.2.1/credentials', token_c2);
    expect(deleted.status).toBe(200);
    expect(deleted.body.status_code).toBe(1000);
    expect((await ocpi('GET', '/ocpi/versions', token_c2)).status).toBe(401);

    // A new token A restarts the onboarding; PUT before registering is 405.
    const again_a = (await create_partner('emsp-de', [{ country_code: 'DE', party_id: 'ABC' }])).body
      .token_a!;
    const put_unregistered = await ocpi(
      'PUT',
      '/ocpi/2.2.1/credentials',
      again_a,
      emsp_credentials(token_b, emsp.url),
    );
    expect(put_unregistered.status).toBe(405);
    const delete_unregistered = await ocpi('DELETE', '/ocpi/2.2.1/credentials', again_a);
    expect(delete_unregistered.status).toBe(405);
  });

  it('rotates our token C when the operator asks: the partner gets it by PUT, the old one then dies', async () => {
    const partner = await start_fake_emsp('rotating-emsp-token-b', ['DE', 'ROT']);
    try {
      const token_a = (await create_partner('emsp-rot', [{ country_code: 'DE', party_id: 'ROT' }])).body
        .token_a!;
      const registered = await ocpi(
        'POST',
        '/ocpi/2.2.1/credentials',
        token_a,
        emsp_credentials(partner.token_b, partner.url, 'DE', 'ROT'),
      );
      expect(registered.body.status_code).toBe(1000);
      const token_c = (registered.body.data as { token: string }).token;
      const rotate = (partner_id: string, token = test_operator_token) =>
        fetch(`${stack.api_url}/v1/partners/${partner_id}/rotate-token`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}` },
        });

      // Only the operator rotates; unknown and unregistered partners are named.
      expect((await rotate('emsp-rot', 'not-the-operator')).status).toBe(401);
      const unknown = await rotate('nobody');
      expect(unknown.status).toBe(404);
      expect(await unknown.json()).toMatchObject({ field: 'partner_id' });
      await create_partner('emsp-pending', [{ country_code: 'DE', party_id: 'PEN' }]);
      expect((await rotate('emsp-pending')).status).toBe(409);

      // The partner is down: 502, nothing changes, the old token C still works.
      partner.broken = true;
      const refused = await rotate('emsp-rot');
      expect(refused.status).toBe(502);
      expect(((await refused.json()) as { error: string }).error).toMatch(/old one stays/);
      partner.broken = false;
      expect(partner.put_credentials).toHaveLength(0);
      expect((await ocpi('GET', '/ocpi/2.2.1/cdrs', token_c)).status).toBe(200);

      const old_b = partner.token_b;
      const rotated = await rotate('emsp-rot');
      expect(rotated.status).toBe(200);
      const view = (await rotated.json()) as Record<string, unknown>;
      expect(view).toMatchObject({ partner_id: 'emsp-rot', status: 'registered', partner_token_set: true });
      expect(typeof view.rotated_at_ms).toBe('number');
      expect(JSON.stringify(view)).not.toMatch(/token_sha256|rotating-emsp-token-b/);

      // The partner received a new token C, could use it while answering, and it works now;
      // the old C is refused.
      expect(partner.put_credentials).toHaveLength(1);
      const sent = partner.put_credentials[0]!;
      expect(sent.url).toBe(`${stack.api_url}/ocpi/versions`);
      expect(sent.token).not.toBe(token_c);
      expect(sent.versions_status).toBe(200);
      expect((await ocpi('GET', '/ocpi/2.2.1/cdrs', sent.token)).status).toBe(200);
      expect((await ocpi('GET', '/ocpi/2.2.1/cdrs', token_c)).status).toBe(401);

      // We call the partner with the new token B it answered: a second rotation is sent with it.
      expect(partner.token_b).not.toBe(old_b);
      const seen = partner.authorizations.length;
      expect((await rotate('emsp-rot')).status).toBe(200);
      expect(partner.authorizations[seen]).toBe(`Token ${b64(`${old_b}-1`)}`);
      expect((await ocpi('GET', '/ocpi/2.2.1/cdrs', sent.token)).status).toBe(401);
      expect((await ocpi('GET', '/ocpi/2.2.1/cdrs', partner.put_credentials[1]!.token)).status).toBe(200);
    } finally {
      await partner.close();
    }
  });

  it('limits the request rate per partner with 429 and Retry-After in the envelope', async () => {
    const token_a = (await create_partner('emsp-rate', [{ country_code: 'FR', party_id: 'RTE' }])).body
      .token_a!;
    const statuses: number[] = [];
    let limited: Awaited<ReturnType<typeof ocpi>> | undefined;
    for (let i = 0; i < 100 && limited === undefined; i++) {
      const res = await ocpi('GET', '/ocpi/versions', token_a);
      statuses.push(res.status);
      if (res.status === 429) limited = res;
    }
    expect(statuses.slice(0, 45).every((s) => s === 200)).toBe(true);
    expect(limited).toBeDefined();
    expect(limited!.body.status_code).toBe(2000);
    expect(Number(limited!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  });
});

describe('OCPI 2.2.1 credentials: partner URLs on private addresses', () => {
  let stack: Awaited<ReturnType<typeof start_test_stack>>;
  let emsp: FakeEmsp;
  const token_b = 'emsp-token-b-private-0123';

  beforeAll(async () => {
    // The default: OCPI_ALLOW_PRIVATE_ADDRESSES unset in the config and the environment.
    delete process.env.OCPI_ALLOW_PRIVATE_ADDRESSES;
    stack = await start_test_stack({ OCPI_CDR_PUSH_INTERVAL_MS: '0', OCPI_RATE_LIMIT_BURST: '1000' });
    emsp = await start_fake_emsp(token_b);
  });

  afterAll(async () => {
    await emsp?.close();
    await stack?.dispose();
  });

  it('refuses to register a partner whose versions URL is on loopback, and sends it nothing', async () => {
    const created = await fetch(`${stack.api_url}/v1/partners`, {
      method: 'POST',
      headers: { authorization: `Bearer ${test_operator_token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ partner_id: 'emsp-local', parties: [{ country_code: 'DE', party_id: 'LOC' }] }),
    });
    const token_a = ((await created.json()) as { token_a: string }).token_a;
    const port = new URL(emsp.url).port;
    // The address itself, and a name that resolves to loopback.
    for (const url of [emsp.url, `http://localhost:${port}/ocpi/versions`]) {
      const res = await fetch(`${stack.api_url}/ocpi/2.2.1/credentials`, {
        method: 'POST',
        headers: { authorization: `Token ${b64(token_a)}`, 'content-type': 'application/json' },
        body: JSON.stringify(emsp_credentials(token_b, url, 'DE', 'LOC')),
      });
      const body = (await res.json()) as Envelope;
      // An OCPI-level error: HTTP 200 with status 2001 (status_codes.asciidoc), as for any bad field.
      expect(res.status).toBe(200);
      expect(body.status_code).toBe(2001);
      expect(body.status_message).toContain(`url: ${url}`);
      expect(body.status_message).toMatch(/loopback/);
    }
    // Nothing reached the partner's server, and the partner is still waiting for its handshake.
    expect(emsp.authorizations).toEqual([]);
    const partners = await fetch(`${stack.api_url}/v1/partners`, {
      headers: { authorization: `Bearer ${test_operator_token}` },
    });
    const listed = ((await partners.json()) as { partners: { partner_id: string; status: string }[] })
      .partners;
    expect(listed.find((p) => p.partner_id === 'emsp-local')?.status).not.toBe('registered');
  });
});
