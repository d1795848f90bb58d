import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { doc_of } from '../api/openapi.js';
import { type Bundle, verify_bundle } from '../billing/disputes/bundle.js';
import { connect_rpc_charger, type RpcCharger } from './helpers/ocpp-rpc.js';
import { api_put, eventually, start_test_stack, test_operator_token } from './helpers/stack.js';

type Stack = Awaited<ReturnType<typeof start_test_stack>>;
type Json = Record<string, unknown>;

/**
 * A billing dispute from a real OCPP 2.0.1 charger to money and figures: the charger signs each
 * energy reading (OCMF, brainpoolP256r1, a key made here and registered for its meter), one
 * reading is altered after signing; the session is rated and invoiced; the driver opens a dispute
 * with the session's token and reads only their own case; the findings say which readings verify;
 * the evidence bundle verifies every signature, shows the altered one failed, and its manifest
 * catches a changed byte; support accepts with a re-rating at the corrected tariff, which issues a
 * credit note for the difference; a second case is rejected with a reason; the audit trail cannot
 * be changed; the dispute figures in ClickHouse are checked by value.
 */
const tariff = (price: number) => ({
  country_code: 'DE',
  party_id: 'EVR',
  id: 'disp',
  currency: 'EUR',
  elements: [{ price_components: [{ type: 'ENERGY', price, vat: 19, step_size: 1 }] }],
  last_updated: '2026-11-01T00:00:00Z',
});
const address = { line1: 'Hauptstr. 1', postal_code: '10115', city: 'Berlin', country_code: 'DE' };
const algorithm = 'ECDSA-brainpoolP256r1-SHA256';

function ocmf(key: KeyObject, at: string, kwh: string, tx: string): string {
  const tm = `${at.slice(0, 19)},${at.slice(20, 23)}+0000 S`;
  const payload = `{"FV":"1.0","GI":"Acme Wallbox","GS":"GW-77","PG":"T1","MV":"Acme","MM":"AM-1","MS":"METER-77","IS":true,"IT":"ISO14443","ID":"TAG-D1","RD":[{"TM":"${tm}","TX":"${tx}","RV":${kwh},"RI":"1-b:1.8.0","RU":"kWh","RT":"AC","EF":"","ST":"G"}]}`;
  const sd = sign('sha256', Buffer.from(payload), { key, dsaEncoding: 'der' }).toString('hex');
  return `OCMF|${payload}|{"SA":"${algorithm}","SD":"${sd}"}`;
}

describe('a billing dispute, end to end', () => {
  let stack: Stack;
  let charger: RpcCharger | undefined;
  const dir = mkdtempSync(path.join(tmpdir(), 'evrate-dispute-'));
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'brainpoolP256r1' });
  const spki = publicKey.export({ format: 'der', type: 'spki' });

  beforeAll(async () => {
    stack = await start_test_stack({
      ROLES: 'ingest,rating,api,billing',
      DEFAULT_TARIFF_ID: 'disp',
      OCPP_ACCEPT_UNKNOWN_TOKENS: 'true',
      OCPI_CDR_PUSH_INTERVAL_MS: '0',
      DISPUTE_DEADLINE_WORKING_DAYS: 'open=2,investigating=5',
    });
  });
  afterAll(async () => {
    charger?.close();
    await stack?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  async function api(method: string, pathname: string, body?: unknown, headers: Record<string, string> = {}) {
    const res = await fetch(`${stack.api_url}${pathname}`, {
      method,
      headers: {
        authorization: `Bearer ${test_operator_token}`,
        'content-type': 'application/json',
        ...headers,
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const bytes = Buffer.from(await res.arrayBuffer());
    const type = res.headers.get('content-type') ?? '';
    return {
      status: res.status,
      headers: res.headers,
      bytes,
      body: (type.startsWith('application/json') ? JSON.parse(bytes.toString()) : {}) as Json,
    };
  }
  /** A claimant: no operator token, the case token in the header (or nothing). */
  async function claimant(method: string, pathname: string, token: string | undefined, body?: unknown) {
    const res = await fetch(`${stack.api_url}${pathname}`, {
      method,
      headers: {
        'content-type': 'application/json',
        ...(token === undefined ? {} : { 'x-dispute-token': token }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const bytes = Buffer.from(await res.arrayBuffer());
    const type = res.headers.get('content-type') ?? '';
    return {
      status: res.status,
      headers: res.headers,
      bytes,
      body: (type.startsWith('application/json') ? JSON.parse(bytes.toString()) : {}) as Json,
    };
  }

  let session_id = '';
  let invoice_id = 0;
  let case_id = 0;
  let token = '';
  let other_case = 0;
  let other_token = '';

  it('describes every dispute route in the OpenAPI document', async () => {
    const routes = stack.api_routes.filter((r) => /disputes|meter-keys/.test(r.path.source));
    expect(routes.length).toBeGreaterThanOrEqual(16);
    const { body } = await api('GET', '/v1/openapi.json');
    const paths = (body as { paths: Record<string, Record<string, unknown>> }).paths;
    for (const route of routes) {
      const doc = doc_of(route);
      expect(doc, route.path.source).toBeDefined();
      expect(paths[doc!.path]?.[route.method.toLowerCase()], `${route.method} ${doc!.path}`).toBeDefined();
    }
  });

  it('rates and invoices a session whose charger signs its readings, one altered after signing', async () => {
    expect((await api_put(stack, '/v1/tariffs/disp', JSON.stringify(tariff(0.5)))).status).toBe(200);
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
        await api('PUT', '/v1/accounts/driver-d1', {
          kind: 'company',
          name: 'Dana Driver',
          legal_entity_id: 'de',
          currency: 'EUR',
          address,
          tokens: [{ uid: 'TAG-D1' }],
        })
      ).status,
    ).toBe(201);
    // Meter keys: bad input names the field; the test's key registered for EVSE 1.
    const bad = await api('PUT', '/v1/meter-keys/CP-DISP-1/1', { public_key: 'not a key at all, really' });
    expect(bad).toMatchObject({ status: 400, body: { field: 'public_key' } });
    const registered = await api('PUT', '/v1/meter-keys/CP-DISP-1/1', {
      public_key: spki.toString('base64'),
      meter_serial: 'METER-77',
    });
    expect(registered).toMatchObject({ status: 200, body: { curve: 'brainpoolP256r1', key_no: 1 } });

    charger = await connect_rpc_charger(stack.ocpp_url, 'CP-DISP-1', 'ocpp2.0.1');
    await charger.call('BootNotification', {
      chargingStation: { vendorName: 'Acme', model: 'AM-1' },
      reason: 'PowerUp',
    });
    const t0 = Date.parse('2026-11-20T10:00:00.000Z');
    await charger.call('StatusNotification', {
      timestamp: new Date(t0 - 60_000).toISOString(),
      connectorStatus: 'Occupied',
      evseId: 1,
      connectorId: 1,
    });
    const reading = (at_ms: number, kwh: string, tx: string, context: string, tamper_to?: string) => {
      const at = new Date(at_ms).toISOString();
      let data = ocmf(privateKey, at, kwh, tx);
      // The altered reading: its number changed after the meter signed it.
      if (tamper_to !== undefined) data = data.replace(`"RV":${kwh}`, `"RV":${tamper_to}`);
      return [
        {
          timestamp: at,
          sampledValue: [
            {
              value: Number(tamper_to ?? kwh),
              context,
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
    const event = (type: string, seq: number, at_ms: number, meter: unknown[], extra: Json = {}) =>
      charger!.call('TransactionEvent', {
        eventType: type,
        timestamp: new Date(at_ms).toISOString(),
        triggerReason:
          type === 'Started' ? 'Authorized' : type === 'Ended' ? 'StopAuthorized' : 'MeterValuePeriodic',
        seqNo: seq,
        transactionInfo: { transactionId: 'TX-D1', ...(type === 'Ended' ? { stoppedReason: 'Local' } : {}) },
        evse: { id: 1, connectorId: 1 },
        ...(type === 'Started' ? { idToken: { idToken: 'TAG-D1', type: 'ISO14443' } } : {}),
        meterValue: meter,
        ...extra,
      });
    await event('Started', 0, t0, reading(t0, '10.00', 'B', 'Transaction.Begin'));
    await event('Updated', 1, t0 + 20 * 60_000, reading(t0 + 20 * 60_000, '15.00', 'C', 'Sample.Periodic'));
    await event(
      'Updated',
      2,
      t0 + 40 * 60_000,
      reading(t0 + 40 * 60_000, '19.00', 'C', 'Sample.Periodic', '20.00'),
    );
    await event('Ended', 3, t0 + 60 * 60_000, reading(t0 + 60 * 60_000, '25.00', 'E', 'Transaction.End'));

    session_id = 'CP-DISP-1/TX-D1';
    await eventually(async () => {
      const rows = await stack.ledger!.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM sessions WHERE session_id = $1 AND account_id = 'driver-d1' AND final_version IS NOT NULL`,
        [session_id],
      );
      return rows[0]!.n === 1 ? true : undefined;
    });
    const run = await api('POST', '/v1/billing/runs', { period: '2026-11', account_ids: ['driver-d1'] });
    expect(run.status).toBe(202);
    await eventually(async () => {
      const { body } = await api('GET', `/v1/billing/runs/${run.body.id}`);
      return body.status === 'finished' ? body : undefined;
    });
    const list = await api('GET', '/v1/invoices?account_id=driver-d1&period=2026-11');
    const invoices = list.body.invoices as { id: number }[];
    expect(invoices.length).toBe(1);
    invoice_id = invoices[0]!.id;
    // 15 kWh (10 -> 25) x 0.50 = 7.50 net; VAT 19 % = 1.425 -> 1.43; total 8.93.
    expect((await api('GET', `/v1/invoices/${invoice_id}`)).body).toMatchObject({
      net: '7.50',
      vat: '1.43',
      total: '8.93',
    });
  });

  it('lets the driver open a dispute with the session token, and reach only their own case', async () => {
    const wrong = await claimant('POST', '/v1/claimant/disputes', undefined, {
      session_id,
      id_tag: 'TAG-OTHER',
      reason: 'energy',
      amount_disputed_minor: 250,
      message: 'The meter ran too fast',
    });
    expect(wrong).toMatchObject({ status: 404, body: { field: 'session_id' } });
    const bad_reason = await claimant('POST', '/v1/claimant/disputes', undefined, {
      session_id,
      id_tag: 'TAG-D1',
      reason: 'weather',
      amount_disputed_minor: 250,
      message: 'x',
    });
    expect(bad_reason).toMatchObject({ status: 400, body: { field: 'reason' } });
    expect((await api('GET', '/v1/disputes')).body).toEqual({ cases: [] });

    const opened = await claimant('POST', '/v1/claimant/disputes', undefined, {
      session_id,
      id_tag: 'TAG-D1',
      reason: 'energy',
      amount_disputed_minor: 250,
      message: 'One reading looks wrong: 20 kWh at 10:40',
    });
    expect(opened.status).toBe(201);
    token = opened.body.access_token as string;
    expect(token.length).toBeGreaterThanOrEqual(40);
    const view = opened.body.case as Json;
    case_id = view.id as number;
    expect(view).toMatchObject({
      state: 'open',
      reason: 'energy',
      source: 'driver',
      currency: 'EUR',
      amount_disputed_minor: 250,
      invoice_id,
    });
    expect(view).not.toHaveProperty('access_token_sha256');
    expect(opened.headers.get('set-cookie')).toMatch(
      new RegExp(
        `^evrate_dispute=${token}; Path=/v1/claimant/disputes/${case_id}; HttpOnly; Secure; SameSite=Strict`,
      ),
    );

    // Findings at opening: the altered reading fails, the three others verify.
    const findings = Object.fromEntries((view.findings as Json[]).map((f) => [f.check, f]));
    expect(findings.signatures).toMatchObject({
      status: 'failed',
      figures: { signed: 4, verified: 3, failed: 1, no_key: 0 },
    });
    expect(findings.clock_sync).toMatchObject({
      status: 'ok',
      figures: { signed_readings: 4, unsynchronized: 0 },
    });
    expect(findings.register_continuity).toMatchObject({
      status: 'ok',
      figures: { readings: 4, decreases: 0, meter_start_wh: 10_000, meter_stop_wh: 25_000 },
    });
    expect(findings.readings_after_stop).toMatchObject({ status: 'ok' });
    expect(findings.duplicate_sessions).toMatchObject({ status: 'ok' });
    expect(findings.energy_vs_power).toMatchObject({
      status: 'ok',
      figures: { energy_wh: 15_000, duration_s: 3600 },
    });
    expect(findings.tariff_version).toMatchObject({
      figures: { tariff_id: 'disp', tariff_version: 2, changed_during_session: false },
    });

    // A second case on the same session, opened by support: its token is another claimant's.
    const second = await api('POST', '/v1/disputes', {
      session_id,
      reason: 'tariff',
      amount_disputed_minor: 100,
      message: 'Partner says the tariff was wrong',
      source: 'partner',
      opened_by: 'NL*ABC',
    });
    expect(second.status).toBe(201);
    other_case = (second.body.case as Json).id as number;
    other_token = second.body.access_token as string;

    expect((await claimant('GET', `/v1/claimant/disputes/${case_id}`, token)).status).toBe(200);
    expect((await claimant('GET', `/v1/claimant/disputes/${case_id}`, undefined)).status).toBe(404);
    expect((await claimant('GET', `/v1/claimant/disputes/${case_id}`, other_token)).status).toBe(404);
    expect((await claimant('GET', `/v1/claimant/disputes/${other_case}`, token)).status).toBe(404);
    expect((await claimant('GET', `/v1/claimant/disputes/${case_id}/bundle.json`, other_token)).status).toBe(
      404,
    );
    expect(
      (await claimant('POST', `/v1/claimant/disputes/${case_id}/messages`, other_token, { body: 'hi' }))
        .status,
    ).toBe(404);
    const in_url = await claimant('GET', `/v1/claimant/disputes/${case_id}?token=${token}`, undefined);
    expect(in_url).toMatchObject({ status: 400, body: { field: 'token' } });
    // The cookie works like the header.
    const by_cookie = await fetch(`${stack.api_url}/v1/claimant/disputes/${case_id}`, {
      headers: { cookie: `evrate_dispute=${token}` },
    });
    expect(by_cookie.status).toBe(200);
    // The operator API needs the operator token.
    expect((await fetch(`${stack.api_url}/v1/disputes/${case_id}`)).status).toBe(401);

    const read = (await claimant('GET', `/v1/claimant/disputes/${case_id}`, token)).body;
    expect((read.messages as Json[]).map((m) => [m.author_kind, m.body])).toEqual([
      ['claimant', 'One reading looks wrong: 20 kWh at 10:40'],
    ]);
    expect(
      (
        await claimant('POST', `/v1/claimant/disputes/${case_id}/messages`, token, {
          body: 'Photo of the display attached',
        })
      ).status,
    ).toBe(201);
  });

  it('moves through the workflow and refuses invalid moves naming the state', async () => {
    const no_party = await api('POST', `/v1/disputes/${case_id}/transitions`, { to: 'escalated' });
    expect(no_party).toMatchObject({ status: 400, body: { field: 'outside_party' } });
    const resolved_directly = await api('POST', `/v1/disputes/${case_id}/transitions`, { to: 'resolved' });
    expect(resolved_directly).toMatchObject({ status: 400, body: { field: 'to' } });
    const unknown = await api('POST', `/v1/disputes/${case_id}/transitions`, { to: 'closed' });
    expect(unknown).toMatchObject({ status: 400, body: { field: 'to' } });
    const proposal_needed = await api('POST', `/v1/disputes/${case_id}/transitions`, {
      to: 'proposed_resolution',
    });
    expect(proposal_needed).toMatchObject({ status: 400, body: { field: 'proposal' } });

    const moved = await api('POST', `/v1/disputes/${case_id}/transitions`, {
      to: 'investigating',
      note: 'checking the meter',
    });
    expect(moved.status).toBe(200);
    const view = moved.body.case as Json;
    expect(view.state).toBe('investigating');
    // 5 working days in Europe/Berlin from the move: the local midnight ending the 5th working day.
    const { deadline_ms } = await import('../billing/disputes/workflow.js');
    expect(view.deadline_at_ms).toBe(deadline_ms(view.state_entered_at_ms as number, 5, 'Europe/Berlin'));
    expect(view.time_zone).toBe('Europe/Berlin');
    const again = await api('POST', `/v1/disputes/${other_case}/transitions`, { to: 'investigating' });
    expect(again.status).toBe(200);

    // Listing by deadline: nothing is due within the next hour; both are due within 10 days.
    expect(((await api('GET', '/v1/disputes?due_within_hours=0')).body.cases as Json[]).length).toBe(0);
    const due = (await api('GET', '/v1/disputes?due_within_hours=240')).body.cases as Json[];
    expect(due.map((c) => c.id).sort()).toEqual([case_id, other_case].sort());
    expect(due.every((c) => c.deadline === 'near')).toBe(true);
    expect((await api('GET', '/v1/disputes?state=weird')).body).toMatchObject({ field: 'state' });
  });

  it('delivers a bundle that verifies every signature, shows the altered one failed, and catches a changed byte', async () => {
    const got = await claimant('GET', `/v1/claimant/disputes/${case_id}/bundle.json`, token);
    expect(got.status).toBe(200);
    const bundle = got.body as unknown as Bundle;
    expect(verify_bundle(bundle)).toEqual({ ok: true, problems: [] });
    expect(bundle.manifest.parts.map((p) => p.name).sort()).toEqual(
      [
        'bundle.pdf',
        'case.json',
        'findings.json',
        'meter_values.json',
        'ocpp_messages.json',
        'payments.json',
        'pricing.json',
        'status_timeline.json',
        'tariff.json',
      ].sort(),
    );
    const values = JSON.parse(bundle.parts['meter_values.json']!) as {
      timestamp_ms: number;
      value: string;
      signed_data: string;
      verification: { status: string; readings: { value: string }[] };
    }[];
    expect(
      values.map((v) => [
        new Date(v.timestamp_ms).toISOString().slice(11, 16),
        v.value,
        v.verification.status,
      ]),
    ).toEqual([
      ['10:00', '10', 'verified'],
      ['10:20', '15', 'verified'],
      ['10:40', '20', 'failed'],
      ['11:00', '25', 'verified'],
    ]);
    expect(values[2]!.verification.readings[0]!.value).toBe('20.00');
    expect(JSON.parse(values[0]!.signed_data).encodingMethod).toBe('OCMF');
    const tariff_part = JSON.parse(bundle.parts['tariff.json']!) as Json;
    expect(tariff_part).toMatchObject({
      tariff_id: 'disp',
      version_applied: 2,
      text: { id: 'disp', currency: 'EUR' },
    });
    const pricing = JSON.parse(bundle.parts['pricing.json']!) as { latest: Json; versions: Json[] };
    expect(pricing.latest).toMatchObject({ total_excl_vat: '7.5', energy_wh: 15_000 });
    const payments = JSON.parse(bundle.parts['payments.json']!) as {
      documents: Json[];
      invoice_lines: Json[];
    };
    expect(payments.documents.map((d) => [d.kind, d.total_minor])).toEqual([['invoice', 893]]);
    const messages = JSON.parse(bundle.parts['ocpp_messages.json']!) as {
      frames: { action: string; frame: string }[];
      facts: Json[];
    };
    expect(messages.facts.map((m) => m.kind)).toEqual(
      expect.arrayContaining(['start', 'meterValues', 'stopped']),
    );
    // The four TransactionEvent frames as the charger sent them, the altered reading's included.
    expect(messages.frames.map((f) => f.action)).toEqual([
      'TransactionEvent',
      'TransactionEvent',
      'TransactionEvent',
      'TransactionEvent',
    ]);
    const sent = JSON.parse(messages.frames[2]!.frame) as [number, string, string, Json];
    expect(sent[2]).toBe('TransactionEvent');
    const signed = (
      sent[3].meterValue as { sampledValue: { signedMeterValue: { signedMeterData: string } }[] }[]
    )[0]!.sampledValue[0]!.signedMeterValue;
    expect(Buffer.from(signed.signedMeterData, 'base64').toString()).toContain('"RV":20.00');
    expect(JSON.parse(values[2]!.signed_data).signedMeterData).toBe(signed.signedMeterData);
    const statuses = JSON.parse(bundle.parts['status_timeline.json']!) as Json[];
    expect(statuses.map((s) => s.status)).toContain('Occupied');

    // One byte changed in one part: the manifest check names it.
    const part = bundle.parts['meter_values.json']!;
    const at = part.indexOf('"failed"');
    const changed: Bundle = {
      ...bundle,
      parts: { ...bundle.parts, 'meter_values.json': `${part.slice(0, at + 1)}v${part.slice(at + 2)}` },
    };
    expect(verify_bundle(changed)).toEqual({
      ok: false,
      problems: ['meter_values.json: SHA-256 does not match'],
    });
    const forged: Bundle = { ...bundle, manifest: { ...bundle.manifest, version: 99 } };
    expect(verify_bundle(forged).problems).toContain('manifest: digest does not match');

    // The PDF: the part the manifest names, readable, with the signature counts and the digests.
    const pdf = await claimant('GET', `/v1/claimant/disputes/${case_id}/bundle.pdf`, token);
    expect(pdf.status).toBe(200);
    expect(pdf.headers.get('x-manifest-sha256')).toBe(bundle.manifest_sha256);
    expect(Buffer.from(bundle.parts['bundle.pdf']!, 'base64').equals(pdf.bytes)).toBe(true);
    const file = path.join(dir, 'bundle.pdf');
    writeFileSync(file, pdf.bytes);
    const text = execFileSync('pdftotext', ['-layout', file, '-']).toString();
    expect(text).toContain(`Dispute ${case_id}: evidence bundle 1`);
    expect(text).toContain('verified: 3; failed: 1');
    expect(text).toContain(bundle.manifest.parts.find((p) => p.name === 'meter_values.json')!.sha256);
    // Support downloads the same stored bundle.
    expect((await api('GET', `/v1/disputes/${case_id}/bundle.json`)).body).toEqual(got.body);
  });

  it('accepts with a re-rating at the corrected tariff: a credit note for the difference', async () => {
    expect((await api_put(stack, '/v1/tariffs/disp', JSON.stringify(tariff(0.4)))).status).toBe(200);
    const no_money = await api('POST', `/v1/disputes/${case_id}/resolution`, {
      outcome: 'accepted',
      reason: 'x',
    });
    expect(no_money).toMatchObject({ status: 400, body: { field: 'outcome' } });
    const resolved = await api('POST', `/v1/disputes/${case_id}/resolution`, {
      outcome: 'accepted',
      reason: 'The tariff in force was 0.40 per kWh',
      rerate: { tariff_id: 'disp', tariff_version: 3 },
    });
    expect(resolved.status).toBe(200);
    // 15 kWh x 0.40 = 6.00 instead of 7.50: 1.50 net credited, VAT 0.285 -> 0.29, 1.79 in all.
    expect(resolved.body.rerate).toMatchObject({
      previous_version: 1,
      version: 2,
      tariff_version: 3,
      previous_total: { excl_vat: '7.50' },
      total: { excl_vat: '6.00' },
      difference: { excl_vat: '-1.50' },
    });
    expect(resolved.body).toMatchObject({ credited_net_minor: 150 });
    const view = resolved.body.case as Json;
    expect(view).toMatchObject({
      state: 'resolved',
      outcome: 'accepted',
      credited_minor: 179,
      deadline_at_ms: null,
    });
    const note = await api('GET', `/v1/credit-notes/${resolved.body.credit_note_id}`);
    expect(note.body).toMatchObject({
      status: 'issued',
      net: '1.50',
      vat: '0.29',
      total: '1.79',
      credited_invoice_id: invoice_id,
    });
    const invoice = await api('GET', `/v1/invoices/${invoice_id}`);
    expect(invoice.body).toMatchObject({ total: '8.93' });
    const [ledger_session] = await stack.ledger!.query<{ final_version: number; billed_version: number }>(
      'SELECT final_version, billed_version FROM sessions WHERE session_id = $1',
      [session_id],
    );
    expect(ledger_session).toEqual({ final_version: 2, billed_version: 1 });

    // Resolved is final: every further move is refused naming the state.
    const again = await api('POST', `/v1/disputes/${case_id}/resolution`, {
      outcome: 'rejected',
      reason: 'no',
    });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ field: 'state' });
    expect(String(again.body.error ?? again.body.message ?? JSON.stringify(again.body))).toMatch(
      /is resolved/,
    );
    const move = await api('POST', `/v1/disputes/${case_id}/transitions`, { to: 'investigating' });
    expect(move).toMatchObject({ status: 409, body: { field: 'state' } });

    // The claimant reads the outcome in the message log.
    const read = (await claimant('GET', `/v1/claimant/disputes/${case_id}`, token)).body;
    expect((read.messages as Json[]).at(-1)!.body).toMatch(/accepted: 1\.79 EUR credited/);
  });

  it('rejects the second case with a reason and its bundle, and keeps an audit trail nobody can change', async () => {
    const rejected = await api('POST', `/v1/disputes/${other_case}/resolution`, {
      outcome: 'rejected',
      reason: 'The tariff applied was the one published',
    });
    expect(rejected.status).toBe(200);
    expect(rejected.body.case).toMatchObject({ state: 'resolved', outcome: 'rejected', credited_minor: 0 });
    const digest = rejected.body.bundle_manifest_sha256 as string;
    expect(digest).toMatch(/^[0-9a-f]{64}$/);
    const read = (await claimant('GET', `/v1/claimant/disputes/${other_case}`, other_token)).body;
    expect((read.messages as Json[]).at(-1)!.body).toContain(digest);

    const audit = (await api('GET', `/v1/disputes/${case_id}/audit`)).body.audit as Json[];
    expect(audit.map((a) => [a.actor_kind, a.action])).toEqual([
      ['claimant', 'opened'],
      ['claimant', 'message'],
      ['support', 'state_changed'],
      ['claimant', 'bundle_generated'],
      ['support', 'resolved'],
    ]);
    expect(audit[2]!.changes).toMatchObject({
      from: 'open',
      to: 'investigating',
      note: 'checking the meter',
    });
    expect(audit[4]!.changes).toMatchObject({ outcome: 'accepted', credited_minor: 179 });
    // No route changes it, and the ledger refuses to.
    expect((await api('DELETE', `/v1/disputes/${case_id}/audit`)).status).toBe(405);
    expect((await api('PUT', `/v1/disputes/${case_id}/audit`, { audit: [] })).status).toBe(405);
    await expect(
      stack.ledger!.query('UPDATE dispute_audit SET action = $1 WHERE case_id = $2', ['nothing', case_id]),
    ).rejects.toThrow(/append-only/);
    await expect(
      stack.ledger!.query('DELETE FROM dispute_audit WHERE case_id = $1', [case_id]),
    ).rejects.toThrow(/append-only/);
    await expect(
      stack.ledger!.query('DELETE FROM dispute_messages WHERE case_id = $1', [case_id]),
    ).rejects.toThrow(/append-only/);
    expect(((await api('GET', `/v1/disputes/${case_id}/audit`)).body.audit as Json[]).length).toBe(5);

    // The billing events of the outbox, in the transactions of the changes.
    const events = await stack.ledger!.query<{ kind: string; amount_minor: number; attributes: Json }>(
      `SELECT kind, amount_minor, attributes FROM billing_events WHERE kind LIKE 'dispute%' ORDER BY id`,
    );
    expect(events.map((e) => e.kind)).toEqual([
      'dispute_opened',
      'dispute_opened',
      'dispute_state_changed',
      'dispute_state_changed',
      'dispute_state_changed',
      'dispute_resolved',
      'dispute_state_changed',
      'dispute_resolved',
    ]);
    expect(events[0]).toMatchObject({
      amount_minor: 250,
      attributes: { reason: 'energy', source: 'driver', case_id, station_id: 'CP-DISP-1' },
    });
    expect(events[5]).toMatchObject({ amount_minor: 179, attributes: { outcome: 'accepted', case_id } });
    expect(events[7]).toMatchObject({
      amount_minor: 0,
      attributes: { outcome: 'rejected', case_id: other_case },
    });
  });

  it('counts the cases in ClickHouse by reason, station and outcome, with amounts and time to resolve', async () => {
    const cases = [
      (await api('GET', `/v1/disputes/${case_id}`)).body.case as Json,
      (await api('GET', `/v1/disputes/${other_case}`)).body.case as Json,
    ];
    const seconds = cases
      .map((c) => Math.floor(((c.resolved_at_ms as number) - (c.opened_at_ms as number)) / 1000))
      .sort((a, b) => a - b);
    const figures = (
      await api('GET', '/v1/analytics/disputes?from=2026-01-01T00:00:00Z&to=2100-01-01T00:00:00Z')
    ).body;
    const row = (key: string, cases_n: number, disputed: number, credited: number) => ({
      key,
      currency: 'EUR',
      cases: cases_n,
      resolved: cases_n,
      disputed_minor: disputed,
      credited_minor: credited,
    });
    expect(figures.by_reason).toEqual([row('energy', 1, 250, 179), row('tariff', 1, 100, 0)]);
    expect(figures.by_outcome).toEqual([row('accepted', 1, 250, 179), row('rejected', 1, 100, 0)]);
    expect(figures.by_station).toEqual([row('CP-DISP-1', 2, 350, 179)]);
    expect(figures.time_to_resolve).toEqual({
      resolved: 2,
      mean_s: Math.floor((seconds[0]! + seconds[1]!) / 2),
      median_s: expect.any(Number),
      max_s: seconds[1],
    });
    expect([seconds[0], seconds[1]]).toContain((figures.time_to_resolve as Json).median_s);
    expect((await api('GET', '/v1/analytics/disputes?from=x&to=y')).body).toMatchObject({ field: 'from' });
  });
});
