import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RatedSessionRow } from '../analytics/sessions.js';
import { Money } from '../core/money.js';
import { run_ocpp16_session, TestCharger } from './helpers/charger.js';
import { api_get, api_put, eventually, start_test_stack } from './helpers/stack.js';

type Stack = Awaited<ReturnType<typeof start_test_stack>>;

const tariff_v2 = {
  country_code: 'DE',
  party_id: 'EVR',
  id: 'e2e',
  currency: 'EUR',
  elements: [
    {
      price_components: [
        { type: 'ENERGY', price: 0.35, vat: 19, step_size: 1 },
        { type: 'FLAT', price: 1.0, vat: 19, step_size: 1 },
      ],
    },
  ],
  last_updated: '2026-11-01T00:00:00Z',
};

/**
 * The foundation's promise, run against one ClickHouse transport: a charger runs a full OCPP 1.6
 * session and the priced session appears in ClickHouse and in the API, exact to the cent.
 */
export function describe_end_to_end(transport: string, env: () => Promise<Record<string, string>>): void {
  describe(`end to end with ${transport}`, () => {
    let stack: Stack;

    beforeAll(async () => {
      stack = await start_test_stack({
        DEFAULT_TARIFF_ID: 'e2e',
        // Free vend for the chargers of these tests; the token test below blocks a known token.
        OCPP_ACCEPT_UNKNOWN_TOKENS: 'true',
        ...(await env()),
      });
    });
    afterAll(async () => {
      await stack?.dispose();
    });

    const ocpp = (id: string) => stack.ocpp_url.replace('{chargePointId}', encodeURIComponent(id));

    it('prices a full OCPP 1.6 session and serves it from ClickHouse with exact energy and price', async () => {
      const put = await api_put(stack, '/v1/tariffs/e2e', JSON.stringify(tariff_v2));
      expect(put.status).toBe(200);
      // Version 1 is the seeded default tariff; this PUT is version 2.
      expect(put.body.version).toBe(2);

      const charger = await TestCharger.connect(ocpp('CP-E2E-1'));
      const boot = await charger.call('BootNotification', {
        chargePointVendor: 'Acme',
        chargePointModel: 'X1',
      });
      expect(boot.status).toBe('Accepted');
      expect(typeof (await charger.call('Heartbeat', {})).currentTime).toBe('string');
      await charger.call('StatusNotification', { connectorId: 1, errorCode: 'NoError', status: 'Preparing' });
      const start = new Date('2026-11-20T17:00:00.000Z');
      const stop = new Date('2026-11-20T18:30:00.000Z');
      const transaction_id = await run_ocpp16_session(charger, {
        id_tag: 'TAG-0001',
        connector_id: 1,
        meter_start_wh: 1_000_000,
        meter_stop_wh: 1_012_345,
        start,
        stop,
      });
      charger.close();

      const session = await eventually(async () => {
        const { body } = await api_get(stack, '/v1/sessions?charge_point_id=CP-E2E-1');
        return (body as { sessions: RatedSessionRow[] }).sessions[0];
      });
      // 12.345 kWh x 0.35 = 4.32075, plus 1.00 flat = 5.32075 -> 5.32 excl. VAT;
      // with 19% VAT: 5.1416925 + 1.19 = 6.3316925 -> 6.33.
      expect(session).toMatchObject({
        charge_point_id: 'CP-E2E-1',
        transaction_id: String(transaction_id),
        connector_id: 1,
        id_tag: 'TAG-0001',
        energy_wh: 12_345,
        meter_start_wh: 1_000_000,
        meter_stop_wh: 1_012_345,
        started_at_ms: start.getTime(),
        stopped_at_ms: stop.getTime(),
        stop_reason: 'EVDisconnected',
        tariff_id: 'e2e',
        tariff_version: 2,
        currency: 'EUR',
        total_excl_vat: '5.32',
        total_incl_vat: '6.33',
      });

      const [row] = await stack.store!.query<{ n: string; wh: string; excl: string; incl: string }>(
        `SELECT toString(count()) AS n, toString(sum(energy_wh)) AS wh, toString(sum(total_excl_vat)) AS excl,
                toString(sum(total_incl_vat)) AS incl
         FROM ${stack.store!.database}.rated_sessions FINAL WHERE charge_point_id = 'CP-E2E-1'`,
      );
      // Servers print decimals with or without trailing zeros; compare the exact values.
      expect({
        ...row,
        excl: new Money(row!.excl).toFixed(4),
        incl: new Money(row!.incl).toFixed(4),
      }).toEqual({
        n: '1',
        wh: '12345',
        excl: '5.3200',
        incl: '6.3300',
      });
      const [samples] = await stack.store!.query<{ n: string }>(
        `SELECT toString(count()) AS n FROM ${stack.store!.database}.meter_values FINAL
         WHERE charge_point_id = 'CP-E2E-1' AND transaction_id = '${transaction_id}'`,
      );
      expect(samples?.n).toBe('2');
    });

    it('prices an OCPP 2.0.1 session from the energy registers of its TransactionEvents', async () => {
      const charger = await TestCharger.connect(ocpp('CP-E2E-201'), 'ocpp2.0.1');
      const boot = await charger.call('BootNotification', {
        chargingStation: { vendorName: 'Acme', model: 'Z2' },
        reason: 'PowerUp',
      });
      expect(boot.status).toBe('Accepted');
      const signed_end = {
        signedMeterData: 'T0NNRnx7IkZWIjoiMS4wIn18',
        signingMethod: 'ECDSA-secp256r1-SHA256',
        encodingMethod: 'OCMF',
        publicKey: 'MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE',
      };
      const register = (kwh: number, context: string, at: string) => [
        {
          timestamp: at,
          sampledValue: [
            {
              value: kwh,
              context,
              measurand: 'Energy.Active.Import.Register',
              unitOfMeasure: { unit: 'kWh' },
              ...(context === 'Transaction.End' ? { signedMeterValue: signed_end } : {}),
            },
          ],
        },
      ];
      const event = (eventType: string, seqNo: number, at: string, kwh: number, context: string) =>
        charger.call('TransactionEvent', {
          eventType,
          timestamp: at,
          triggerReason:
            eventType === 'Started'
              ? 'Authorized'
              : eventType === 'Ended'
                ? 'EVDeparted'
                : 'MeterValuePeriodic',
          seqNo,
          transactionInfo: {
            transactionId: 'TX-201-A',
            ...(eventType === 'Ended' ? { stoppedReason: 'EVDisconnected' } : {}),
          },
          evse: { id: 1, connectorId: 1 },
          idToken: { idToken: 'TOKEN-201', type: 'ISO14443' },
          meterValue: register(kwh, context, at),
        });
      expect(await event('Started', 0, '2026-11-20T10:00:00Z', 5, 'Transaction.Begin')).toEqual({
        idTokenInfo: { status: 'Accepted' },
      });
      await event('Updated', 1, '2026-11-20T10:30:00Z', 11.2, 'Sample.Periodic');
      await event('Ended', 2, '2026-11-20T11:00:00Z', 17.5, 'Transaction.End');
      const bad = await charger.raw('{"not": "an array"}', '-1');
      expect(bad.slice(0, 3)).toEqual([4, '-1', 'RpcFrameworkError']);
      charger.close();

      const session = await eventually(async () => {
        const { body } = await api_get(stack, '/v1/sessions?charge_point_id=CP-E2E-201');
        return (body as { sessions: RatedSessionRow[] }).sessions[0];
      });
      // 12.5 kWh x 0.35 = 4.375, plus 1.00 flat = 5.375 -> 5.38 excl. VAT;
      // with 19% VAT: 5.20625 + 1.19 = 6.39625 -> 6.40.
      expect(session).toMatchObject({
        transaction_id: 'TX-201-A',
        id_tag: 'TOKEN-201',
        energy_wh: 12_500,
        stop_reason: 'EVDisconnected',
        total_excl_vat: '5.38',
        total_incl_vat: '6.40',
      });
      // The signed reading is kept verbatim as evidence.
      const signed = await stack.store!.query<{ format: string; signed_data: string }>(
        `SELECT format, signed_data FROM ${stack.store!.database}.meter_values
         WHERE charge_point_id = 'CP-E2E-201' AND context = 'Transaction.End'`,
      );
      expect(signed.map((r) => [r.format, JSON.parse(r.signed_data)])).toEqual([['SignedData', signed_end]]);
    });

    it('rates a retried StopTransaction once', async () => {
      const charger = await TestCharger.connect(ocpp('CP-E2E-2'));
      const started = await charger.call('StartTransaction', {
        connectorId: 2,
        idTag: 'TAG-0002',
        meterStart: 500,
        timestamp: '2026-11-21T08:00:00Z',
      });
      const stop = {
        transactionId: started.transactionId,
        meterStop: 10_500,
        timestamp: '2026-11-21T09:00:00Z',
      };
      await charger.call('StopTransaction', stop);
      await charger.call('StopTransaction', stop);
      charger.close();
      const sessions = await eventually(async () => {
        const { body } = await api_get(stack, '/v1/sessions?charge_point_id=CP-E2E-2');
        const list = (body as { sessions: RatedSessionRow[] }).sessions;
        return list.length > 0 ? list : undefined;
      });
      // Give a second (duplicate) row time to appear if the pipeline were to write one.
      // Both stops were durable before their answers, so both have been consumed by now or soon.
      await new Promise((r) => setTimeout(r, 1500));
      const { body } = await api_get(stack, '/v1/sessions?charge_point_id=CP-E2E-2');
      expect((body as { sessions: RatedSessionRow[] }).sessions).toHaveLength(1);
      // 10 kWh x 0.35 = 3.50 + 1.00 flat = 4.50; incl. 19% VAT = 5.355 -> 5.36 (half up).
      expect(sessions[0]).toMatchObject({
        energy_wh: 10_000,
        total_excl_vat: '4.50',
        total_incl_vat: '5.36',
      });
    });

    it('gives a StartTransaction retried after a reconnect its first id, and rates one session', async () => {
      const start = JSON.stringify([
        2,
        'start-1',
        'StartTransaction',
        { connectorId: 1, idTag: 'TAG-RETRY', meterStart: 0, timestamp: '2026-11-21T12:00:00Z' },
      ]);
      const first = await TestCharger.connect(ocpp('CP-E2E-RETRY'));
      const answered = await first.raw(start, 'start-1');
      first.close();
      // The charger never saw that answer (say the connection dropped): it reconnects and retries.
      const second = await TestCharger.connect(ocpp('CP-E2E-RETRY'));
      const again = await second.raw(start, 'start-1');
      expect(again[2]).toEqual(answered[2]);
      const transaction_id = (again[2] as { transactionId: number }).transactionId;
      await second.call('StopTransaction', {
        transactionId: transaction_id,
        meterStop: 2_000,
        timestamp: '2026-11-21T13:00:00Z',
      });
      second.close();
      await eventually(async () => {
        const { body } = await api_get(stack, '/v1/sessions?charge_point_id=CP-E2E-RETRY');
        return (body as { sessions: RatedSessionRow[] }).sessions[0];
      });
      // No second session left open (the checkpoint follows the rated row by a moment).
      await eventually(async () => {
        const { body } = await api_get(stack, '/v1/sessions/open?charge_point_id=CP-E2E-RETRY');
        return (body as { sessions: unknown[] }).sessions.length === 0 ? true : undefined;
      });
      const rated = await api_get(stack, '/v1/sessions?charge_point_id=CP-E2E-RETRY');
      expect((rated.body as { sessions: RatedSessionRow[] }).sessions).toMatchObject([
        { transaction_id: String(transaction_id), energy_wh: 2_000 },
      ]);
    });

    it('answers with the token store and prices a member with the plan of the token', async () => {
      const plan = { id: 'gold', name: 'Gold members', currency: 'EUR', discount_percent: 20 };
      expect((await api_put(stack, '/v1/plans/gold', JSON.stringify(plan))).status).toBe(200);
      const bad_plan = await api_put(
        stack,
        '/v1/plans/bad',
        JSON.stringify({ ...plan, id: 'bad', discount_percent: 150 }),
      );
      expect(bad_plan).toMatchObject({ status: 400, body: { field: 'discount_percent' } });
      expect((await api_put(stack, '/v1/tokens/MEMBER-1', JSON.stringify({ plan_id: 'gold' }))).status).toBe(
        200,
      );
      const no_plan = await api_put(stack, '/v1/tokens/MEMBER-2', JSON.stringify({ plan_id: 'silver' }));
      expect(no_plan).toMatchObject({ status: 400, body: { field: 'plan_id' } });
      expect((await api_put(stack, '/v1/tokens/STOLEN-1', JSON.stringify({ valid: false }))).status).toBe(
        200,
      );
      expect((await api_get(stack, '/v1/tokens/MEMBER-1')).body).toMatchObject({
        uid: 'MEMBER-1',
        plan_id: 'gold',
      });

      const charger = await TestCharger.connect(ocpp('CP-E2E-PLAN'));
      expect(await charger.call('Authorize', { idTag: 'STOLEN-1' })).toEqual({
        idTagInfo: { status: 'Blocked' },
      });
      expect(await charger.call('Authorize', { idTag: 'MEMBER-1' })).toEqual({
        idTagInfo: { status: 'Accepted' },
      });
      const started = await charger.call('StartTransaction', {
        connectorId: 1,
        idTag: 'MEMBER-1',
        meterStart: 0,
        timestamp: '2026-11-21T10:00:00Z',
      });
      expect(started.idTagInfo).toEqual({ status: 'Accepted' });
      await charger.call('StopTransaction', {
        transactionId: started.transactionId,
        meterStop: 10_000,
        timestamp: '2026-11-21T11:00:00Z',
      });
      charger.close();
      const session = await eventually(async () => {
        const { body } = await api_get(stack, '/v1/sessions?charge_point_id=CP-E2E-PLAN');
        return (body as { sessions: (RatedSessionRow & { breakdown: { plan_lines: unknown[] } })[] })
          .sessions[0];
      });
      // 10 kWh x 0.35 + 1.00 = 4.50; VAT 19% on the rounded net 0.855 -> 0.86: 5.36 (README
      // "Rating", totals). The plan applies to those totals: 20% off 4.50 = 0.90, its VAT in the
      // totals' proportion 0.90 x 5.36 / 4.50 = 1.072; 3.60 and 5.36 - 1.072 = 4.288 -> 4.29.
      expect(session).toMatchObject({ id_tag: 'MEMBER-1', total_excl_vat: '3.60', total_incl_vat: '4.29' });
      expect(session.breakdown.plan_lines).toEqual([
        { plan_id: 'gold', rule: 'discount_percent', amount_excl_vat: '0.9', amount_incl_vat: '1.072' },
      ]);
    });

    it('answers a malformed frame with a CALLERROR and keeps the connection usable', async () => {
      const charger = await TestCharger.connect(ocpp('CP-E2E-3'));
      const broken = await charger.raw('[2, "abc", "Heartbeat"', '-1');
      expect(broken.slice(0, 3)).toEqual([4, '-1', 'FormationViolation']);
      const unknown = await charger.raw('[2, "u1", "FooBar", {}]', 'u1');
      expect(unknown.slice(0, 3)).toEqual([4, 'u1', 'NotImplemented']);
      const missing = await charger.raw(
        JSON.stringify([
          2,
          's1',
          'StartTransaction',
          { connectorId: 1, idTag: 'T', timestamp: '2026-11-21T08:00:00Z' },
        ]),
        's1',
      );
      expect(missing.slice(0, 3)).toEqual([4, 's1', 'OccurenceConstraintViolation']);
      expect(String(missing[3])).toContain('meterStart');
      const wrong_type = await charger.raw(
        JSON.stringify([2, 's2', 'MeterValues', { connectorId: 'one', meterValue: [] }]),
        's2',
      );
      expect(wrong_type.slice(0, 3)).toEqual([4, 's2', 'TypeConstraintViolation']);
      expect(typeof (await charger.call('Heartbeat', {})).currentTime).toBe('string');
      charger.close();

      // Every CALLERROR and the connection's open and close are recorded for the dashboards.
      const db = stack.store!.database;
      const rejections = await eventually(async () => {
        const rows = await stack.store!.query<{ action: string; error_code: string }>(
          `SELECT action, error_code FROM ${db}.ocpp_rejections WHERE charge_point_id = 'CP-E2E-3'
           ORDER BY at_ms, error_code`,
        );
        return rows.length >= 4 ? rows : undefined;
      });
      expect(rejections.map((r) => `${r.action}:${r.error_code}`).sort()).toEqual([
        ':FormationViolation',
        'FooBar:NotImplemented',
        'MeterValues:TypeConstraintViolation',
        'StartTransaction:OccurenceConstraintViolation',
      ]);
      const connections = await eventually(async () => {
        const rows = await stack.store!.query<{ connected: number | string; protocol: string }>(
          `SELECT connected, protocol FROM ${db}.charger_connections FINAL WHERE charge_point_id = 'CP-E2E-3'
           ORDER BY at_ms, connected DESC`,
        );
        return rows.length >= 2 ? rows : undefined;
      });
      expect(connections.map((r) => [Number(r.connected), r.protocol])).toEqual([
        [1, 'ocpp1.6'],
        [0, 'ocpp1.6'],
      ]);
    });

    it('refuses a handshake without the ocpp1.6 subprotocol', async () => {
      await expect(TestCharger.connect(ocpp('CP-E2E-4'), 'ocpp9.9')).rejects.toThrow(/400/);
    });

    it('rejects a bad tariff with HTTP 400 naming the field, and operator calls without the token', async () => {
      const bad = structuredClone(tariff_v2) as { elements: { price_components: { price: unknown }[] }[] };
      bad.elements[0]!.price_components[0]!.price = 'cheap';
      const res = await api_put(stack, '/v1/tariffs/e2e', JSON.stringify(bad));
      expect(res.status).toBe(400);
      expect(res.body.field).toBe('elements[0].price_components[0].price');
      expect(String(res.body.error)).toContain('must be a number');
      const not_json = await api_put(stack, '/v1/tariffs/e2e', '{');
      expect(not_json.status).toBe(400);
      const current = await api_get(stack, '/v1/tariffs/e2e');
      expect((current.body as { version: number }).version).toBe(2);
      const anonymous = await fetch(`${stack.api_url}/v1/sessions`);
      expect(anonymous.status).toBe(401);
    });
  });
}
