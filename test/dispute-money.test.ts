import { generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from '../analytics/sql.js';
import { type Bundle, verify_bundle } from '../billing/disputes/bundle.js';
import { connect_rpc_charger, type RpcCharger } from './helpers/ocpp-rpc.js';
import { start_test_postgres } from './helpers/postgres.js';
import { api_put, eventually, start_test_stack, test_operator_token } from './helpers/stack.js';
import { type StripeEmulator, start_stripe_emulator } from './helpers/stripe-emulator.js';

type Stack = Awaited<ReturnType<typeof start_test_stack>>;
type Json = Record<string, unknown>;

/**
 * Disputes down to the money, on the embedded ledger (PGlite) and on a PostgreSQL server. A driver
 * billed per session with a saved card charges at a real OCPP 2.0.1 charger that signs its readings
 * (OCMF, brainpoolP256r1, a key made here; one reading altered after signing); each session's
 * invoice is issued on arrival and collected off-session by the payments sweep at the
 * Stripe-compatible emulator. Then every resolution, each checked by value:
 * - accepted with a re-rating: the session is billed in two VAT parts (energy at 19 %, time at
 *   7 %), both parts' differences are credited at their own rates, and the credit note's total is
 *   refunded at the emulator once, to the cent, the refund intent written with the resolution;
 * - accepted with a goodwill amount; partly accepted (part of the amount disputed);
 * - rejected with the evidence bundle and a written reason in the claimant's message log;
 * - escalated to a named outside party, then resolved;
 * - card chargebacks sent by the emulator as signed webhooks: a case opens with source chargeback,
 *   its evidence bundle is submitted at the emulator's dispute evidence endpoint, and the close
 *   (lost, won) resolves the case while the ledger payment stays charged back or is restored;
 * - the dispute figures in ClickHouse by reason, station, outcome, amounts and time to resolve.
 */
const tariff = (energy: number, hour: number) => ({
  country_code: 'DE',
  party_id: 'EVR',
  id: 'money',
  currency: 'EUR',
  elements: [
    {
      price_components: [
        { type: 'ENERGY', price: energy, vat: 19, step_size: 1 },
        { type: 'TIME', price: hour, vat: 7, step_size: 1 },
      ],
    },
  ],
  last_updated: '2026-11-01T00:00:00Z',
});
const address = { line1: 'Hauptstr. 1', postal_code: '10115', city: 'Berlin', country_code: 'DE' };
const algorithm = 'ECDSA-brainpoolP256r1-SHA256';

function ocmf(key: KeyObject, at: string, kwh: string, tx: string): string {
  const tm = `${at.slice(0, 19)},${at.slice(20, 23)}+0000 S`;
  const payload = `{"FV":"1.0","GI":"Acme Wallbox","GS":"GW-88","PG":"T1","MV":"Acme","MM":"AM-1","MS":"METER-88","IS":true,"IT":"ISO14443","ID":"TAG-M1","RD":[{"TM":"${tm}","TX":"${tx}","RV":${kwh},"RI":"1-b:1.8.0","RU":"kWh","RT":"AC","EF":"","ST":"G"}]}`;
  const sd = sign('sha256', Buffer.from(payload), { key, dsaEncoding: 'der' }).toString('hex');
  return `OCMF|${payload}|{"SA":"${algorithm}","SD":"${sd}"}`;
}

const backends = [
  { name: 'PGlite', server: false },
  { name: 'a PostgreSQL server', server: true },
] as const;

describe.each(backends)('dispute resolutions reach the money, on $name', ({ server }) => {
  let stack: Stack;
  let emulator: StripeEmulator;
  let postgres: Awaited<ReturnType<typeof start_test_postgres>> | undefined;
  const chargers = new Map<string, RpcCharger>();
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'brainpoolP256r1' });
  const spki = publicKey.export({ format: 'der', type: 'spki' });

  beforeAll(async () => {
    emulator = await start_stripe_emulator({ webhook_retry_ms: 50 });
    if (server) postgres = await start_test_postgres();
    stack = await start_test_stack({
      ROLES: 'ingest,rating,api,billing',
      DEFAULT_TARIFF_ID: 'money',
      OCPP_ACCEPT_UNKNOWN_TOKENS: 'true',
      OCPI_CDR_PUSH_INTERVAL_MS: '0',
      STRIPE_SECRET_KEY: emulator.secret_key,
      STRIPE_WEBHOOK_SECRET: emulator.webhook_secret,
      STRIPE_API_BASE: emulator.api_base,
      PAYMENTS_SWEEP_INTERVAL_MS: '200',
      ...(postgres === undefined ? {} : { DATABASE_URL: postgres.url }),
    });
    emulator.webhook_url = `${stack.api_url}/v1/payments/webhooks/stripe`;
  }, 180_000);
  afterAll(async () => {
    for (const charger of chargers.values()) charger.close();
    await stack?.dispose();
    await emulator?.stop();
    await postgres?.dispose();
  });

  async function api(method: string, pathname: string, body?: unknown, token?: string) {
    const res = await fetch(`${stack.api_url}${pathname}`, {
      method,
      headers: {
        ...(token === undefined
          ? { authorization: `Bearer ${test_operator_token}` }
          : { 'x-dispute-token': token }),
        'content-type': 'application/json',
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    const type = res.headers.get('content-type') ?? '';
    return {
      status: res.status,
      body: (type.startsWith('application/json') ? JSON.parse(text) : {}) as Json,
    };
  }

  async function charger_of(id: string): Promise<RpcCharger> {
    let charger = chargers.get(id);
    if (charger === undefined) {
      charger = await connect_rpc_charger(stack.ocpp_url, id, 'ocpp2.0.1');
      await charger.call('BootNotification', {
        chargingStation: { vendorName: 'Acme', model: 'AM-1' },
        reason: 'PowerUp',
      });
      chargers.set(id, charger);
    }
    return charger;
  }

  /**
   * One hour of charging from 10 to 25 kWh, readings every 20 minutes signed by the meter's key
   * (one altered after signing when `tamper`), then the per-session invoice and its card payment.
   */
  async function charge(
    station: string,
    tx: string,
    t0: number,
    tamper = false,
  ): Promise<{ session_id: string; invoice: Json; payment: Json }> {
    const charger = await charger_of(station);
    const reading = (at_ms: number, kwh: string, ctx: string, tamper_to?: string) => {
      const at = new Date(at_ms).toISOString();
      let data = ocmf(
        privateKey,
        at,
        kwh,
        ctx === 'Transaction.Begin' ? 'B' : ctx === 'Transaction.End' ? 'E' : 'C',
      );
      if (tamper_to !== undefined) data = data.replace(`"RV":${kwh}`, `"RV":${tamper_to}`);
      return [
        {
          timestamp: at,
          sampledValue: [
            {
              value: Number(tamper_to ?? kwh),
              context: ctx,
              measurand: 'Energy.Active.Import.Register',
              unitOfMeasure: { unit: 'kWh' },
              signedMeterValue: {
                signedMeterData: Buffer.from(data).toString('base64'),
                signingMethod: algorithm,
                encodingMethod: 'OCMF',
                publicKey: spki.toString('base64'),
              },
            },
          ],
        },
      ];
    };
    const event = (type: string, seq: number, at_ms: number, meter: unknown[]) =>
      charger.call('TransactionEvent', {
        eventType: type,
        timestamp: new Date(at_ms).toISOString(),
        triggerReason:
          type === 'Started' ? 'Authorized' : type === 'Ended' ? 'StopAuthorized' : 'MeterValuePeriodic',
        seqNo: seq,
        transactionInfo: { transactionId: tx, ...(type === 'Ended' ? { stoppedReason: 'Local' } : {}) },
        evse: { id: 1, connectorId: 1 },
        ...(type === 'Started' ? { idToken: { idToken: 'TAG-M1', type: 'ISO14443' } } : {}),
        meterValue: meter,
      });
    const m = 60_000;
    await event('Started', 0, t0, reading(t0, '10.00', 'Transaction.Begin'));
    await event('Updated', 1, t0 + 20 * m, reading(t0 + 20 * m, '15.00', 'Sample.Periodic'));
    await event(
      'Updated',
      2,
      t0 + 40 * m,
      reading(t0 + 40 * m, '19.00', 'Sample.Periodic', tamper ? '20.00' : undefined),
    );
    await event('Ended', 3, t0 + 60 * m, reading(t0 + 60 * m, '25.00', 'Transaction.End'));
    const session_id = `${station}/${tx}`;
    // Per-session billing: the invoice is issued as the final version arrives; the sweep collects
    // it with the saved card, off-session, at the emulator.
    const invoice = await eventually(async () => {
      const { body } = await api('GET', '/v1/invoices?account_id=dana');
      const found = (body.invoices as Json[] | undefined)?.find((i) => i.session_id === session_id);
      return found?.status === 'paid' ? found : undefined;
    }, 60_000);
    const full = (await api('GET', `/v1/invoices/${invoice.id}`)).body;
    const payments = (await api('GET', `/v1/invoices/${invoice.id}/payments`)).body.payments as Json[];
    expect(payments.map((p) => [p.state, p.method, p.captured])).toEqual([
      ['captured', 'card', invoice.total],
    ]);
    return { session_id, invoice: full, payment: payments[0]! };
  }

  async function open_by_driver(session_id: string, reason: string, amount: number, message: string) {
    const res = await fetch(`${stack.api_url}/v1/claimant/disputes`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ session_id, id_tag: 'TAG-M1', reason, amount_disputed_minor: amount, message }),
    });
    expect(res.status).toBe(201);
    const body = (await res.json()) as { case: Json; access_token: string };
    return { id: body.case.id as number, token: body.access_token, view: body.case };
  }

  const refunds_at_emulator = (pi: string) =>
    [...emulator.refunds.values()].filter((r) => r.payment_intent === pi);

  const cases: Record<string, number> = {};

  it('accepts a re-rating of a two-VAT session paid by card: credit note per VAT part, refunded once at the provider', async () => {
    expect((await api_put(stack, '/v1/tariffs/money', JSON.stringify(tariff(0.5, 1.2)))).status).toBe(200);
    expect(
      (
        await api('PUT', '/v1/legal-entities/de', {
          name: 'evrate GmbH',
          vat_id: 'DE123456789',
          address,
          country_code: 'DE',
          time_zone: 'Europe/Berlin',
          fee_vat_percent: '19',
        })
      ).status,
    ).toBe(200);
    expect(
      (
        await api('PUT', '/v1/accounts/dana', {
          kind: 'driver',
          name: 'Dana',
          legal_entity_id: 'de',
          currency: 'EUR',
          billing_period: 'per_session',
          address,
          tokens: [{ uid: 'TAG-M1' }],
        })
      ).status,
    ).toBe(201);
    expect(
      await api('PUT', '/v1/accounts/dana/payment-method', {
        payment_method_id: 'pm_card_visa',
        credit_notes: 'refund',
      }),
    ).toMatchObject({ status: 200, body: { payment_method: { last4: '4242' }, credit_notes: 'refund' } });
    for (const station of ['CP-MONEY-1', 'CP-MONEY-2'])
      expect(
        (
          await api('PUT', `/v1/meter-keys/${station}/1`, {
            public_key: spki.toString('base64'),
            meter_serial: 'METER-88',
          })
        ).status,
      ).toBe(200);

    const { session_id, invoice, payment } = await charge(
      'CP-MONEY-1',
      'TX-M1',
      Date.parse('2026-11-20T10:00:00Z'),
      true,
    );
    // 15 kWh x 0.50 = 7.50 at 19 % (VAT 1.425 -> 1.43) and 1 h x 1.20 = 1.20 at 7 % (VAT 0.084 -> 0.08).
    expect(invoice).toMatchObject({ net: '8.70', vat: '1.51', total: '10.21' });
    expect((invoice.lines as Json[]).map((l) => [l.vat_percent, l.net])).toEqual([
      ['7', '1.20'],
      ['19', '7.50'],
    ]);

    const opened = await open_by_driver(session_id, 'energy', 250, 'The reading at 10:40 says 20 kWh');
    cases.rerate = opened.id;
    const findings = Object.fromEntries((opened.view.findings as Json[]).map((f) => [f.check, f]));
    expect(findings.signatures).toMatchObject({
      status: 'failed',
      figures: { signed: 4, verified: 3, failed: 1 },
    });

    const bundle = (
      await api('GET', `/v1/claimant/disputes/${opened.id}/bundle.json`, undefined, opened.token)
    ).body as unknown as Bundle;
    expect(verify_bundle(bundle)).toEqual({ ok: true, problems: [] });
    const values = JSON.parse(bundle.parts['meter_values.json']!) as { verification: { status: string } }[];
    expect(values.map((v) => v.verification.status)).toEqual(['verified', 'verified', 'failed', 'verified']);
    const part = bundle.parts['meter_values.json']!;
    const tampered: Bundle = {
      ...bundle,
      parts: { ...bundle.parts, 'meter_values.json': part.replace('failed', 'verified') },
    };
    expect(verify_bundle(tampered)).toEqual({
      ok: false,
      problems: ['meter_values.json: SHA-256 does not match'],
    });

    expect((await api_put(stack, '/v1/tariffs/money', JSON.stringify(tariff(0.4, 0.6)))).status).toBe(200);
    const resolved = await api('POST', `/v1/disputes/${opened.id}/resolution`, {
      outcome: 'accepted',
      reason: 'The tariff in force was 0.40 per kWh and 0.60 per hour',
      rerate: { tariff_id: 'money' },
    });
    expect(resolved.status).toBe(200);
    // Both VAT parts fell: 7.50 -> 6.00 at 19 % and 1.20 -> 0.60 at 7 %; 2.10 net credited in two
    // lines, VAT 0.285 -> 0.29 and 0.042 -> 0.04: 2.43 in all. (Reading one line per session would
    // have credited only one part.)
    expect(resolved.body.rerate).toMatchObject({
      previous_version: 1,
      version: 2,
      previous_total: { excl_vat: '8.70' },
      total: { excl_vat: '6.60' },
      difference: { excl_vat: '-2.10' },
    });
    expect(resolved.body).toMatchObject({ credited_net_minor: 210 });
    expect(resolved.body.case).toMatchObject({ state: 'resolved', outcome: 'accepted', credited_minor: 243 });
    const note = (await api('GET', `/v1/credit-notes/${resolved.body.credit_note_id}`)).body;
    expect(note).toMatchObject({ net: '2.10', vat: '0.33', total: '2.43', credited_invoice_id: invoice.id });
    expect((note.lines as Json[]).map((l) => [l.vat_percent, l.net])).toEqual([
      ['7', '0.60'],
      ['19', '1.50'],
    ]);

    // The re-rated version went the way of rating's re-rate: stored once in ClickHouse (counted
    // without FINAL), recorded once in the ledger, then carried by the rated feed to billing, which
    // found it recorded and neither credited nor invoiced it again.
    const where = sql`session_id = ${session_id}`.text;
    const db = stack.store!.database;
    const ch = await stack.store!.query<{ version: number; n: number }>(
      `SELECT toUInt32(version) AS version, toUInt32(count()) AS n FROM ${db}.rated_session_versions WHERE ${where} GROUP BY version ORDER BY version`,
    );
    expect(ch.map((r) => [Number(r.version), Number(r.n)])).toEqual([
      [1, 1],
      [2, 1],
    ]);
    const [latest] = await stack.store!.query<{ version: number; total: string }>(
      `SELECT toUInt32(version) AS version, toString(total_excl_vat) AS total FROM ${db}.rated_sessions FINAL WHERE ${where}`,
    );
    expect([Number(latest!.version), latest!.total]).toEqual([2, '6.6']);
    await eventually(async () => ((await stack.billing_feed!.caught_up()) ? true : undefined));
    const ledger_versions = await stack.ledger!.query<{ version: number }>(
      'SELECT version FROM session_versions WHERE session_id = $1 ORDER BY version',
      [session_id],
    );
    expect(ledger_versions.map((v) => v.version)).toEqual([1, 2]);
    const documents = await stack.ledger!.query<{ kind: string; total_minor: number }>(
      "SELECT kind, total_minor FROM invoices WHERE (session_id = $1 AND kind = 'invoice') OR credited_invoice_id = $2 ORDER BY id",
      [session_id, invoice.id],
    );
    expect(documents.map((d) => [d.kind, Number(d.total_minor)])).toEqual([
      ['invoice', 1021],
      ['credit_note', 243],
    ]);

    // The refund intent was written in the resolution's transaction: the refund row names the
    // credit note, and its operation was created at the same instant as the case was resolved.
    const [intent] = await stack.ledger!.query<{
      amount_minor: number;
      credit_note_id: number;
      created_at_ms: number;
    }>('SELECT amount_minor, credit_note_id, created_at_ms FROM payment_refunds WHERE payment_id = $1', [
      payment.id,
    ]);
    expect(intent).toEqual({
      amount_minor: 243,
      credit_note_id: resolved.body.credit_note_id,
      created_at_ms: (resolved.body.case as Json).resolved_at_ms,
    });
    // At the provider: one refund of exactly the credit note's total, and the ledger books it once
    // when its webhook arrives.
    const pi = payment.provider_payment_id as string;
    await eventually(async () => {
      const p = (await api('GET', `/v1/payments/${payment.id}`)).body;
      return p.state === 'partly_refunded' ? p : undefined;
    });
    await emulator.deliveries_idle();
    expect(refunds_at_emulator(pi).map((r) => [r.amount, r.currency, r.status])).toEqual([
      [243, 'eur', 'succeeded'],
    ]);
    expect(emulator.net_received(pi)).toBe(1021 - 243);
    const p = (await api('GET', `/v1/payments/${payment.id}`)).body;
    expect(p).toMatchObject({ captured: '10.21', refunded: '2.43' });
    expect((p.refunds as Json[]).map((r) => [r.amount, r.status, r.credit_note_id])).toEqual([
      ['2.43', 'succeeded', resolved.body.credit_note_id],
    ]);
    // The sweep (every 200 ms) finds nothing more to pay out for the credit note.
    await new Promise((r) => setTimeout(r, 800));
    expect(refunds_at_emulator(pi).length).toBe(1);
    expect(emulator.executed_count(/^POST \/v1\/refunds$/)).toBe(1);
    const read = (await api('GET', `/v1/claimant/disputes/${opened.id}`, undefined, opened.token)).body;
    expect((read.messages as Json[]).at(-1)!.body).toMatch(/accepted: 2\.43 EUR credited/);
  });

  it('credits a goodwill amount and a partial acceptance, each refunded to the card', async () => {
    // The tariff now: 15 kWh x 0.40 = 6.00 at 19 % (VAT 1.14), 1 h x 0.60 at 7 % (VAT 0.042 -> 0.04): 7.78.
    const goodwill = await charge('CP-MONEY-1', 'TX-M2', Date.parse('2026-11-21T10:00:00Z'));
    expect(goodwill.invoice).toMatchObject({ total: '7.78' });
    const g = await open_by_driver(
      goodwill.session_id,
      'time_idle_fee',
      200,
      'I was charged for time I was not there',
    );
    cases.goodwill = g.id;
    const g_done = await api('POST', `/v1/disputes/${g.id}/resolution`, {
      outcome: 'accepted',
      reason: 'A gesture of goodwill for the trouble',
      goodwill_minor: 100,
    });
    expect(g_done.status).toBe(200);
    // 1.00 net at the invoice's largest VAT rate (19 %): 1.19.
    expect(g_done.body.case).toMatchObject({ outcome: 'accepted', credited_minor: 119 });
    expect((await api('GET', `/v1/credit-notes/${g_done.body.credit_note_id}`)).body).toMatchObject({
      net: '1.00',
      vat: '0.19',
      total: '1.19',
    });

    const partial = await charge('CP-MONEY-1', 'TX-M3', Date.parse('2026-11-22T10:00:00Z'));
    const q = await open_by_driver(partial.session_id, 'tariff', 300, 'The tariff shown was lower');
    cases.partial = q.id;
    // Crediting all of the 3.00 disputed (2.60 net + 0.49 VAT = 3.09) is not a partial acceptance.
    const too_much = await api('POST', `/v1/disputes/${q.id}/resolution`, {
      outcome: 'partly_accepted',
      reason: 'x',
      goodwill_minor: 260,
    });
    expect(too_much).toMatchObject({ status: 400, body: { field: 'outcome' } });
    expect((await api('GET', `/v1/disputes/${q.id}`)).body.case).toMatchObject({
      state: 'open',
      credited_minor: 0,
    });
    expect((await api('GET', `/v1/invoices/${partial.invoice.id}`)).body).toMatchObject({ credited: '0.00' });
    const q_done = await api('POST', `/v1/disputes/${q.id}/resolution`, {
      outcome: 'partly_accepted',
      reason: 'Half of the difference: the old tariff was shown until 10:30',
      goodwill_minor: 150,
    });
    expect(q_done.status).toBe(200);
    // 1.50 net + 0.285 -> 0.29 VAT = 1.79 of the 3.00 disputed.
    expect(q_done.body.case).toMatchObject({
      outcome: 'partly_accepted',
      credited_minor: 179,
      amount_disputed_minor: 300,
    });

    for (const [{ payment }, amount] of [
      [goodwill, 119],
      [partial, 179],
    ] as const) {
      await eventually(async () => {
        const p = (await api('GET', `/v1/payments/${payment.id}`)).body;
        return p.state === 'partly_refunded' ? p : undefined;
      });
      expect(
        refunds_at_emulator(payment.provider_payment_id as string).map((r) => [r.amount, r.status]),
      ).toEqual([[amount, 'succeeded']]);
    }
  });

  it('rejects with the evidence bundle and a written reason sent to the claimant', async () => {
    const { session_id, payment } = await charge('CP-MONEY-1', 'TX-M4', Date.parse('2026-11-23T10:00:00Z'));
    const r = await open_by_driver(session_id, 'other', 778, 'I did not charge that much');
    cases.rejected = r.id;
    const done = await api('POST', `/v1/disputes/${r.id}/resolution`, {
      outcome: 'rejected',
      reason: 'The meter signed every reading and all of them verify',
    });
    expect(done.status).toBe(200);
    expect(done.body.case).toMatchObject({ outcome: 'rejected', credited_minor: 0, credit_note_id: null });
    const digest = done.body.bundle_manifest_sha256 as string;
    const read = (await api('GET', `/v1/claimant/disputes/${r.id}`, undefined, r.token)).body;
    const last = (read.messages as Json[]).at(-1)!;
    expect(last.author_kind).toBe('support');
    expect(last.body).toBe(
      `Your dispute is rejected. The meter signed every reading and all of them verify Evidence bundle SHA-256 ${digest}.`,
    );
    // The bundle the message names is the claimant's to download, and it verifies.
    const bundle = (await api('GET', `/v1/claimant/disputes/${r.id}/bundle.json`, undefined, r.token))
      .body as unknown as Bundle;
    expect(bundle.manifest_sha256).toBe(digest);
    expect(verify_bundle(bundle).ok).toBe(true);
    expect(
      JSON.parse(bundle.parts['meter_values.json']!).map((v: Json) => (v.verification as Json).status),
    ).toEqual(['verified', 'verified', 'verified', 'verified']);
    expect(refunds_at_emulator(payment.provider_payment_id as string)).toEqual([]);
  });

  it('escalates to a named outside party, records it, and resolves after mediation', async () => {
    const { session_id } = await charge('CP-MONEY-1', 'TX-M5', Date.parse('2026-11-24T10:00:00Z'));
    const e = await open_by_driver(session_id, 'failed_session', 500, 'The car did not charge properly');
    cases.escalated = e.id;
    const party = 'Schlichtungsstelle Energie e.V.';
    const moved = await api('POST', `/v1/disputes/${e.id}/transitions`, {
      to: 'escalated',
      outside_party: party,
      note: 'The driver asked for mediation',
    });
    expect(moved.status).toBe(200);
    expect(moved.body.case).toMatchObject({ state: 'escalated', outside_party: party });
    const mid = (await api('GET', '/v1/analytics/disputes?from=2026-01-01T00:00:00Z&to=2100-01-01T00:00:00Z'))
      .body;
    expect((mid.by_outcome as Json[]).find((r) => r.key === 'escalated')).toMatchObject({
      cases: 1,
      resolved: 0,
    });
    const done = await api('POST', `/v1/disputes/${e.id}/resolution`, {
      outcome: 'rejected',
      reason: `${party} found the session billed correctly`,
    });
    expect(done.status).toBe(200);
    expect(done.body.case).toMatchObject({ state: 'resolved', outcome: 'rejected', outside_party: party });
    const audit = (await api('GET', `/v1/disputes/${e.id}/audit`)).body.audit as Json[];
    expect(audit.map((a) => a.action)).toEqual(['opened', 'state_changed', 'bundle_generated', 'resolved']);
    expect(audit[1]!.changes).toMatchObject({ from: 'open', to: 'escalated', outside_party: party });
  });

  it('opens a case from a card chargeback webhook, submits the evidence bundle, and records a lost and a won outcome', async () => {
    const lost = await charge('CP-MONEY-2', 'TX-C1', Date.parse('2026-11-25T10:00:00Z'));
    const won = await charge('CP-MONEY-2', 'TX-C2', Date.parse('2026-11-26T10:00:00Z'));
    const dispute_of = async (payment: Json, reason: string) => {
      const dp = emulator.open_dispute(payment.provider_payment_id as string, { reason });
      const found = await eventually(async () => {
        const rows = await stack.ledger!.query<{ id: number }>(
          "SELECT id FROM dispute_cases WHERE source = 'chargeback' AND payment_reference = $1",
          [dp],
        );
        return rows[0]?.id;
      });
      return { dp, id: found };
    };
    const a = await dispute_of(lost.payment, 'fraudulent');
    const b = await dispute_of(won.payment, 'duplicate');
    cases.chargeback_lost = a.id;
    cases.chargeback_won = b.id;
    // A duplicate delivery opens no second case.
    const created = emulator.events.find(
      (e) => e.type === 'charge.dispute.created' && e.data.object.id === a.dp,
    )!;
    emulator.redeliver(created.id);
    await emulator.deliveries_idle();
    const [n] = await stack.ledger!.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM dispute_cases WHERE source = 'chargeback'",
    );
    expect(n!.n).toBe(2);

    const view = (await api('GET', `/v1/disputes/${a.id}`)).body.case as Json;
    expect(view).toMatchObject({
      source: 'chargeback',
      subject_kind: 'payment',
      reason: 'not_my_session',
      state: 'open',
      session_id: lost.session_id,
      invoice_id: lost.invoice.id,
      payment_reference: a.dp,
      amount_disputed_minor: 778,
      station_id: 'CP-MONEY-2',
    });
    expect((await api('GET', `/v1/disputes/${b.id}`)).body.case).toMatchObject({
      reason: 'duplicate_charge',
    });
    // The money was charged back in the ledger when the webhook was applied.
    expect((await api('GET', `/v1/payments/${lost.payment.id}`)).body).toMatchObject({
      state: 'charged_back',
      charged_back: '7.78',
    });

    // Support answers with the evidence bundle, submitted at the provider's dispute endpoint.
    const not_cb = await api('POST', `/v1/disputes/${cases.rejected}/chargeback-evidence`);
    expect(not_cb).toMatchObject({ status: 400, body: { field: 'id' } });
    const submitted = await api('POST', `/v1/disputes/${a.id}/chargeback-evidence`);
    expect(submitted.status).toBe(200);
    expect(submitted.body).toMatchObject({ provider_status: 'under_review' });
    const digest = submitted.body.manifest_sha256 as string;
    const at_provider = emulator.disputes.get(a.dp)!;
    expect(at_provider).toMatchObject({
      status: 'under_review',
      submission_count: 1,
      metadata: { case_id: String(a.id), manifest_sha256: digest },
    });
    expect(at_provider.evidence.uncategorized_text).toContain(`manifest SHA-256 ${digest}`);
    expect(at_provider.evidence.uncategorized_text).toContain('- signatures: ok');
    expect(at_provider.evidence.product_description).toContain(
      `EV charging session ${lost.session_id} at station CP-MONEY-2, 15 kWh`,
    );
    expect(at_provider.evidence.service_date).toBe('2026-11-25');
    const bundles = (await api('GET', `/v1/disputes/${a.id}/bundle.json`)).body as unknown as Bundle;
    expect(bundles.manifest_sha256).toBe(digest);
    // Submitting again sends the same request with the same key: the provider replays its answer.
    const again = await api('POST', `/v1/disputes/${a.id}/chargeback-evidence`);
    expect(again.body).toMatchObject({ provider_status: 'under_review', manifest_sha256: digest });
    expect(emulator.executed_count(/^POST \/v1\/disputes\//)).toBe(1);

    emulator.close_dispute(a.dp, 'lost');
    emulator.close_dispute(b.dp, 'won');
    const closed_a = await eventually(async () => {
      const c = (await api('GET', `/v1/disputes/${a.id}`)).body.case as Json;
      return c.state === 'resolved' ? c : undefined;
    });
    const closed_b = await eventually(async () => {
      const c = (await api('GET', `/v1/disputes/${b.id}`)).body.case as Json;
      return c.state === 'resolved' ? c : undefined;
    });
    expect(closed_a).toMatchObject({ outcome: 'chargeback_lost', credited_minor: 0 });
    expect(closed_b).toMatchObject({ outcome: 'chargeback_won', credited_minor: 0 });
    // Lost: the payment stays charged back. Won: the money is restored.
    expect((await api('GET', `/v1/payments/${lost.payment.id}`)).body).toMatchObject({
      state: 'charged_back',
      charged_back: '7.78',
    });
    expect((await api('GET', `/v1/payments/${won.payment.id}`)).body).toMatchObject({
      state: 'captured',
      charged_back: '0.00',
    });
    const events = await stack.ledger!.query<{ amount_minor: number; attributes: Json }>(
      `SELECT amount_minor, attributes FROM billing_events WHERE kind = 'dispute_resolved' AND (attributes->>'case_id')::int8 IN ($1, $2) ORDER BY id`,
      [a.id, b.id],
    );
    expect(events.map((e) => [e.attributes.outcome, e.amount_minor]).sort()).toEqual([
      ['chargeback_lost', 0],
      ['chargeback_won', 0],
    ]);
    const audit = (await api('GET', `/v1/disputes/${a.id}/audit`)).body.audit as Json[];
    expect(audit.map((x) => [x.actor_kind, x.action])).toEqual([
      ['provider', 'opened'],
      ['support', 'bundle_generated'],
      ['support', 'evidence_submission'],
      ['support', 'evidence_submitted'],
      ['support', 'evidence_submitted'],
      ['provider', 'bundle_generated'],
      ['provider', 'resolved'],
    ]);
  });

  it('counts every case in ClickHouse by reason, station and outcome, with amounts and time to resolve', async () => {
    const views = await Promise.all(
      Object.values(cases).map(async (id) => (await api('GET', `/v1/disputes/${id}`)).body.case as Json),
    );
    const seconds = views
      .map((c) => Math.floor(((c.resolved_at_ms as number) - (c.opened_at_ms as number)) / 1000))
      .sort((x, y) => x - y);
    const figures = (
      await api('GET', '/v1/analytics/disputes?from=2026-01-01T00:00:00Z&to=2100-01-01T00:00:00Z')
    ).body;
    const row = (key: string, n: number, disputed: number, credited: number) => ({
      key,
      currency: 'EUR',
      cases: n,
      resolved: n,
      disputed_minor: disputed,
      credited_minor: credited,
    });
    expect(figures.by_reason).toEqual([
      row('duplicate_charge', 1, 778, 0),
      row('energy', 1, 250, 243),
      row('failed_session', 1, 500, 0),
      row('not_my_session', 1, 778, 0),
      row('other', 1, 778, 0),
      row('tariff', 1, 300, 179),
      row('time_idle_fee', 1, 200, 119),
    ]);
    expect(figures.by_outcome).toEqual([
      row('accepted', 2, 450, 362),
      row('chargeback_lost', 1, 778, 0),
      row('chargeback_won', 1, 778, 0),
      row('partly_accepted', 1, 300, 179),
      row('rejected', 2, 1278, 0),
    ]);
    expect(figures.by_station).toEqual([row('CP-MONEY-1', 5, 2028, 541), row('CP-MONEY-2', 2, 1556, 0)]);
    expect(figures.time_to_resolve).toEqual({
      resolved: 7,
      mean_s: Math.floor(seconds.reduce((x, y) => x + y, 0) / 7),
      median_s: seconds[3],
      max_s: seconds[6],
    });
  });
  it('credits only what the dispute left when rating re-rates the session again later', async () => {
    const session_id = 'CP-MONEY-1/TX-M1';
    const [billed] = await stack.ledger!.query<{ billed_invoice_id: number }>(
      'SELECT billed_invoice_id FROM sessions WHERE session_id = $1',
      [session_id],
    );
    const invoice_id = Number(billed!.billed_invoice_id);
    const res = await api('POST', '/v1/sessions/rerate', { tariff_id: 'money', session_id });
    expect(res.status).toBe(200);
    expect((res.body.sessions as Json[])[0]).toMatchObject({
      previous_version: 2,
      version: 3,
      total: { excl_vat: '6.60' },
    });
    const notes = await eventually(async () => {
      const rows = await stack.ledger!.query<{ id: number }>(
        "SELECT id FROM invoices WHERE credited_invoice_id = $1 AND kind = 'credit_note' ORDER BY id",
        [invoice_id],
      );
      return rows.length === 2 ? rows : undefined;
    });
    // Billed: 7.50 at 19 % and 1.20 at 7 %. The dispute gave back 1.50 and 0.60; the feed's credit
    // of the re-rated session gives back the rest, 6.00 (VAT 1.14) and 0.60 (VAT 0.042 -> 0.04):
    // 7.78, exactly what remained of the invoice, and never the whole of it again.
    const feed_note = (await api('GET', `/v1/credit-notes/${notes[1]!.id}`)).body;
    expect(feed_note).toMatchObject({ net: '6.60', vat: '1.18', total: '7.78' });
    expect((feed_note.lines as Json[]).map((l) => [l.vat_percent, l.net])).toEqual([
      ['7', '0.60'],
      ['19', '6.00'],
    ]);
    expect((await api('GET', `/v1/invoices/${invoice_id}`)).body).toMatchObject({
      total: '10.21',
      credited: '10.21',
    });
    // Version 3 is invoiced on its own (per-session billing): 6.00 + 1.14 + 0.60 + 0.04 = 7.78.
    const invoices = await stack.ledger!.query<{ total_minor: number }>(
      "SELECT total_minor FROM invoices WHERE session_id = $1 AND kind = 'invoice' ORDER BY id",
      [session_id],
    );
    expect(invoices.map((i) => Number(i.total_minor))).toEqual([1021, 778]);
    await eventually(async () => ((await stack.billing_feed!.caught_up()) ? true : undefined));
  });
});
