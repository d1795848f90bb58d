import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CredentialsRole, PartnerRegistry, token_sha256 } from '../api/ocpi/partners.js';
import { create_logger } from '../core/log.js';
import { connect_nats, type Nats } from '../core/nats.js';
import { connect_rpc_charger, type RpcCharger } from './helpers/ocpp-rpc.js';
import { api_put, eventually, start_test_stack, test_operator_token } from './helpers/stack.js';

type Json = Record<string, unknown>;

/**
 * A roaming session end to end, as its users see it: an eMSP pushes its driver's token over OCPI
 * Tokens; an independent charger (ocpp-rpc, strict mode) charges with it; the eMSP pulls the CDR
 * over OCPI CDRs and receives it by push from the stack's own push loop, with the exact totals,
 * its token and party; another eMSP sees none of it. Sessions of other payers (an app user, our
 * own RFID card, a free-vend 2.0.1 charger) come out under their own payment methods in the
 * operator's analytics.
 */

// 0.40 EUR/kWh, 21% VAT: 10 kWh cost 4.00 + 0.84 VAT = 4.84.
const tariff = {
  country_code: 'NL',
  party_id: 'EVR',
  id: 'roaming-e2e',
  currency: 'EUR',
  elements: [{ price_components: [{ type: 'ENERGY', price: 0.4, vat: 21, step_size: 1 }] }],
  last_updated: '2026-11-01T00:00:00Z',
};

const token_c_de = 'token-c-of-de-abc-roaming-0123456789';
const token_c_nl = 'token-c-of-nl-tnm-roaming-0123456789';
const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

function role(country_code: string, party_id: string): CredentialsRole {
  return { role: 'EMSP', business_details: { name: `${country_code}-${party_id}` }, country_code, party_id };
}

describe('a roaming session from charger to partner', () => {
  let stack: Awaited<ReturnType<typeof start_test_stack>>;
  let nats: Nats;
  let receiver: http.Server;
  const pushed: Json[] = [];
  const clients: RpcCharger[] = [];
  const t_start = Date.now() - 1000;

  async function ocpi(method: string, path: string, token: string, body?: unknown) {
    const res = await fetch(`${stack.api_url}${path}`, {
      method,
      headers: {
        authorization: `Token ${b64(token)}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as Json };
  }

  async function charger(identity: string, protocol: 'ocpp1.6' | 'ocpp2.0.1'): Promise<RpcCharger> {
    const client = await connect_rpc_charger(stack.ocpp_url, identity, protocol);
    clients.push(client);
    return client;
  }

  /** A 1.6 session: meterStart 1,000 Wh, 6,000 at 2 min, stop 11,000 at 4 min (150 kW). */
  async function session16(identity: string, id_tag: string): Promise<string> {
    const client = await charger(identity, 'ocpp1.6');
    await client.call('BootNotification', { chargePointVendor: 'Acme', chargePointModel: 'R1' });
    const t0 = Date.now();
    const started = (await client.call('StartTransaction', {
      connectorId: 1,
      idTag: id_tag,
      meterStart: 1000,
      timestamp: new Date(t0).toISOString(),
    })) as { transactionId: number; idTagInfo: { status: string } };
    expect(started.idTagInfo.status).toBe('Accepted');
    await client.call('MeterValues', {
      connectorId: 1,
      transactionId: started.transactionId,
      meterValue: [
        {
          timestamp: new Date(t0 + 120_000).toISOString(),
          sampledValue: [{ value: '6000', measurand: 'Energy.Active.Import.Register', unit: 'Wh' }],
        },
      ],
    });
    await client.call('StopTransaction', {
      transactionId: started.transactionId,
      idTag: id_tag,
      meterStop: 11_000,
      timestamp: new Date(t0 + 240_000).toISOString(),
    });
    return `${identity}/${started.transactionId}`;
  }

  beforeAll(async () => {
    receiver = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        pushed.push({
          ...(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Json),
          _auth: req.headers.authorization,
        });
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ status_code: 1000, timestamp: new Date().toISOString() }));
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const receiver_url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/ocpi/emsp/2.2.1/cdrs`;
    stack = await start_test_stack({
      DEFAULT_TARIFF_ID: tariff.id,
      OCPI_CDR_PUSH_INTERVAL_MS: '300',
      OCPI_CDR_PUSH_SETTLE_S: '0',
      // The partner's receiver runs on loopback in this test.
      OCPI_ALLOW_PRIVATE_ADDRESSES: 'true',
      OCPI_RATE_LIMIT_BURST: '10000',
    });
    expect((await api_put(stack, `/v1/tariffs/${tariff.id}`, JSON.stringify(tariff))).status).toBeLessThan(
      300,
    );
    nats = await connect_nats(
      { nats_stream: 'EVRATE_EVENTS', nats_subject_prefix: 'evrate', node_id: 'roaming-e2e' },
      stack.nats_url,
      create_logger('warn'),
    );
    const partners = await PartnerRegistry.open(nats);
    const partner = (partner_id: string, token: string, r: CredentialsRole, endpoints: Json[]) =>
      partners.save(
        {
          partner_id,
          parties: [{ country_code: r.country_code, party_id: r.party_id }],
          status: 'registered',
          token_sha256: token_sha256(token),
          token_kind: 'C',
          partner_token: `${partner_id}-token-b`,
          versions_url: 'http://127.0.0.1:1/ocpi/versions',
          version: '2.2.1',
          endpoints: endpoints as never,
          roles: [r],
          created_at_ms: t_start,
          updated_at_ms: t_start,
        },
        undefined,
      );
    await partner('emsp-de', token_c_de, role('DE', 'ABC'), [
      { identifier: 'cdrs', role: 'RECEIVER', url: receiver_url },
    ]);
    await partner('emsp-nl', token_c_nl, role('NL', 'TNM'), []);
  });

  afterAll(async () => {
    for (const c of clients) await c.close({ force: true }).catch(() => {});
    await nats?.close();
    await stack?.dispose();
    receiver.closeAllConnections();
    await new Promise<void>((resolve) => receiver.close(() => resolve()));
  });

  it('delivers the CDR of a real session to the token’s eMSP only, by pull and by push, to the cent', async () => {
    const token = {
      country_code: 'DE',
      party_id: 'ABC',
      uid: 'DEABC0001',
      type: 'RFID',
      contract_id: 'DE-ABC-C00000001-X',
      issuer: 'ABC Mobility',
      valid: true,
      whitelist: 'ALLOWED',
      last_updated: new Date().toISOString(),
    };
    const put = await ocpi('PUT', '/ocpi/2.2.1/tokens/DE/ABC/DEABC0001', token_c_de, token);
    expect(put.body.status_code).toBe(1000);

    const session_id = await session16('CP-ROAM-1', 'DEABC0001');

    const cdr = await eventually(async () => {
      const pulled = await ocpi('GET', '/ocpi/2.2.1/cdrs', token_c_de);
      return (pulled.body.data as Json[]).find((c) => c.id === session_id);
    });
    expect(cdr.total_cost).toEqual({ excl_vat: 4, incl_vat: 4.84 });
    expect(cdr.total_energy).toBe(10);
    expect(cdr.cdr_token).toEqual({
      country_code: 'DE',
      party_id: 'ABC',
      uid: 'DEABC0001',
      type: 'RFID',
      contract_id: 'DE-ABC-C00000001-X',
    });
    expect(cdr.auth_method).toBe('WHITELIST');
    expect(cdr.country_code).toBe('NL');
    expect(cdr.party_id).toBe('EVR');

    // The push loop delivers the same CDR to the eMSP's receiver, with our token B.
    const delivered = await eventually(async () => pushed.find((c) => c.id === session_id));
    expect(delivered.total_cost).toEqual({ excl_vat: 4, incl_vat: 4.84 });
    expect(delivered._auth).toBe(`Token ${b64('emsp-de-token-b')}`);
    expect(pushed.filter((c) => c.id === session_id)).toHaveLength(1);

    // Another eMSP sees none of it.
    const foreign = await ocpi('GET', '/ocpi/2.2.1/cdrs', token_c_nl);
    expect(foreign.body.status_code).toBe(1000);
    expect((foreign.body.data as Json[]).map((c) => c.id)).not.toContain(session_id);
  });

  it('shows each payer of real sessions under its own payment method', async () => {
    const operator = (uid: string, type: string) =>
      api_put(
        stack,
        `/v1/tokens/${uid}`,
        JSON.stringify({ type, contract_id: `NL-EVR-${uid}`, valid: true, whitelist: 'ALWAYS' }),
      );
    expect((await operator('APP0001', 'APP_USER')).status).toBeLessThan(300);
    expect((await operator('CARD0001', 'RFID')).status).toBeLessThan(300);
    await session16('CP-ROAM-2', 'APP0001');
    await session16('CP-ROAM-3', 'CARD0001');
    // A 2.0.1 free-vend charger: no token presented (NoAuthorization).
    const free = await charger('CP-ROAM-4', 'ocpp2.0.1');
    await free.call('BootNotification', {
      chargingStation: { vendorName: 'Acme', model: 'F1' },
      reason: 'PowerUp',
    });
    const t0 = Date.now();
    const energy = (at_ms: number, wh: number) => [
      {
        timestamp: new Date(at_ms).toISOString(),
        sampledValue: [
          { value: wh, measurand: 'Energy.Active.Import.Register', unitOfMeasure: { unit: 'Wh' } },
        ],
      },
    ];
    const event = (type: string, seq: number, at_ms: number, wh: number, extra: Json = {}) =>
      free.call('TransactionEvent', {
        eventType: type,
        timestamp: new Date(at_ms).toISOString(),
        triggerReason: type === 'Ended' ? 'StopAuthorized' : 'CablePluggedIn',
        seqNo: seq,
        transactionInfo: { transactionId: 'FREE-1', ...(type === 'Ended' ? { stoppedReason: 'Local' } : {}) },
        evse: { id: 1, connectorId: 1 },
        idToken: { idToken: '', type: 'NoAuthorization' },
        meterValue: energy(at_ms, wh),
        ...extra,
      });
    await event('Started', 0, t0, 1000);
    await event('Ended', 1, t0 + 240_000, 11_000);

    const from = new Date(t_start - 60_000).toISOString();
    const to = new Date(Date.now() + 3_600_000).toISOString();
    const methods = await eventually(async () => {
      const res = await fetch(`${stack.api_url}/v1/analytics/payment-methods?from=${from}&to=${to}`, {
        headers: { authorization: `Bearer ${test_operator_token}` },
      });
      const body = (await res.json()) as { payment_methods?: Json[]; data?: Json[] } | Json[];
      const list = (Array.isArray(body) ? body : (body.payment_methods ?? body.data ?? [])) as Json[];
      return list.length >= 4 ? list : undefined;
    });
    const by = Object.fromEntries(methods.map((m) => [String(m.payment_method), Number(m.sessions)]));
    expect(by).toEqual({ ROAMING: 1, APP: 1, RFID: 1, FREE: 1 });
  });
});
