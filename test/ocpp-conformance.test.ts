import ocpp_rpc from 'ocpp-rpc';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RatedSessionRow } from '../analytics/sessions.js';
import { api_get, api_put, eventually, start_test_stack } from './helpers/stack.js';

// ocpp-rpc is CommonJS and spreads its error classes into module.exports: Node cannot see them as
// named exports, so they are read from the default export.
const { RPCClient, RPCError, UnexpectedHttpResponse } = ocpp_rpc;
type RPCClient = InstanceType<typeof RPCClient>;
type RPCError = InstanceType<typeof RPCError>;

type Stack = Awaited<ReturnType<typeof start_test_stack>>;
type Json = Record<string, unknown>;
type ClientOptions = ConstructorParameters<typeof RPCClient>[0];
type Protocol = 'ocpp1.6' | 'ocpp2.0.1';

/**
 * Conformance of the OCPP-J front door, driven by an independent implementation: the charge
 * point is ocpp-rpc's RPCClient (not our test charger), in strict mode wherever a call is meant
 * to be valid, so that every CALL we send and every CALLRESULT the server returns is checked
 * against the official JSON schemas by code we did not write. Error cases go through a
 * non-strict client of the same library.
 */

const heartbeat_interval_s = 120;
/**
 * Bound on waiting for events to be rated and stored (a liveness bound, not a speed check: the
 * test machine is shared, and the rating service and ClickHouse run in this process).
 */
const stored_within_ms = 90_000;

interface Charger {
  client: RPCClient;
  /** Every frame received from the server, parsed, in order. */
  received: unknown[][];
}

describe('OCPP-J conformance against ocpp-rpc as the charge point', () => {
  let stack: Stack;
  const open: RPCClient[] = [];

  beforeAll(async () => {
    stack = await start_test_stack({
      OCPP_ALLOW_UNKNOWN: 'true',
      OCPP_ACCEPT_UNKNOWN_TOKENS: 'false',
      HEARTBEAT_INTERVAL_S: String(heartbeat_interval_s),
    });
    const tokens: [string, Json][] = [
      ['CONF-OK-16', {}],
      ['CONF-BLOCKED-16', { valid: false }],
      ['CONF-OK-201', {}],
      ['CONF-BLOCKED-201', { valid: false }],
      ['CONF-GROUP-16', { group_id: 'FLEET-7' }],
      // Longer than the 20 characters of an OCPP 1.6 IdToken (CiString20Type).
      ['CONF-LONGGROUP-16', { group_id: 'FLEET-WITH-A-VERY-LONG-GROUP-ID-0001' }],
    ];
    for (const [uid, body] of tokens) {
      expect((await api_put(stack, `/v1/tokens/${uid}`, JSON.stringify(body))).status).toBe(200);
    }
  });
  afterEach(async () => {
    for (const client of open.splice(0)) await client.close({ force: true });
  });
  afterAll(async () => {
    await stack?.dispose();
  });

  const endpoint = () => stack.ocpp_url.replace('/{chargePointId}', '');

  function new_client(identity: string, protocol: Protocol, strict: boolean, password?: string): Charger {
    const client = new RPCClient({
      endpoint: endpoint(),
      identity,
      protocols: [protocol],
      strictMode: strict,
      reconnect: false,
      callTimeoutMs: 15_000,
      ...(password === undefined ? {} : { password }),
    } as ClientOptions);
    const received: unknown[][] = [];
    client.on('message', ({ message, outbound }: { message: Buffer | string; outbound: boolean }) => {
      if (!outbound) received.push(JSON.parse(message.toString()) as unknown[]);
    });
    return { client, received };
  }

  async function connect(
    identity: string,
    protocol: Protocol,
    options: { strict?: boolean; password?: string } = {},
  ): Promise<Charger> {
    let charger = new_client(identity, protocol, options.strict ?? true, options.password);
    await charger.client.connect();
    // As in test/helpers/charger.ts: a connection dropped right after opening is opened again.
    for (let attempt = 1; attempt < 3; attempt++) {
      await new Promise((r) => setTimeout(r, 50));
      if (charger.client.state === RPCClient.OPEN) break;
      charger = new_client(identity, protocol, options.strict ?? true, options.password);
      await charger.client.connect();
    }
    open.push(charger.client);
    expect(charger.client.protocol).toBe(protocol);
    return charger;
  }

  /**
   * A connection proven alive by a Heartbeat round trip. Right after the previous test's client is
   * force-closed, a new connection is now and then dropped (1006 on both ends) within milliseconds
   * of opening, before any frame; a charger would reconnect, and so does this, once.
   */
  async function connect_live(identity: string, protocol: Protocol): Promise<Charger> {
    for (let attempt = 1; ; attempt++) {
      const charger = await connect(identity, protocol, { strict: false });
      try {
        await call(charger, 'Heartbeat', {});
        return charger;
      } catch (error) {
        if (attempt >= 2) throw error;
      }
    }
  }

  async function call(charger: Charger, method: string, params: Json): Promise<Json> {
    return (await charger.client.call(method, params)) as Json;
  }

  /**
   * Sends a CALL that must fail; returns the CALLERROR frame as received, after checking its shape
   * (OCPP-J 1.6 section 4.2.3, 2.0.1 part 4 section 4.2.3: five elements, the CALL's own message id,
   * a description string of at most 255 characters, a details object).
   */
  async function call_error(charger: Charger, method: string, params: unknown): Promise<unknown[]> {
    const sent: string[] = [];
    const on_call = ({ payload, outbound }: { payload: unknown[]; outbound: boolean }) => {
      if (outbound) sent.push(String(payload[1]));
    };
    charger.client.on('call', on_call);
    const error = await charger.client.call(method, params).then(
      () => undefined,
      (e: unknown) => e,
    );
    charger.client.off('call', on_call);
    expect(error, `${method} must be answered with a CALLERROR`).toBeInstanceOf(RPCError);
    expect(sent).toHaveLength(1);
    const frame = charger.received.findLast((f) => f[1] === sent[0]);
    expect(frame).toBeDefined();
    expect(frame).toHaveLength(5);
    expect(frame![0]).toBe(4);
    expect(typeof frame![3]).toBe('string');
    expect(String(frame![3]).length).toBeLessThanOrEqual(255);
    expect(frame![4]).toBeTypeOf('object');
    expect(frame![4]).not.toBeNull();
    // The library recognised the code as one of the OCPP-J error codes.
    expect((error as RPCError).rpcErrorCode).toBe(frame![2]);
    return frame!;
  }

  /**
   * Sends a raw frame with the library's sendRaw (for frames its call() cannot produce) and
   * returns the CALLERROR the server answers under `id`.
   */
  async function raw_error(charger: Charger, text: string, id: string): Promise<unknown[]> {
    const before = charger.received.length;
    charger.client.sendRaw(text);
    const frame = await eventually(
      async () => charger.received.slice(before).find((f) => f[0] === 4 && f[1] === id),
      30_000,
    );
    expect(frame).toHaveLength(5);
    expect(frame[4]).toBeTypeOf('object');
    return frame;
  }

  /** The answer's currentTime is an RFC 3339 UTC time taken while the CALL was being handled. */
  async function expect_current_time(answer: Promise<Json>): Promise<Json> {
    const before_ms = Date.now();
    const payload = await answer;
    const after_ms = Date.now();
    const current_time = String(payload.currentTime);
    expect(current_time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    const at_ms = Date.parse(current_time);
    // The server's clock is this process's clock (same stack, same process).
    expect(at_ms).toBeGreaterThanOrEqual(before_ms);
    expect(at_ms).toBeLessThanOrEqual(after_ms);
    return payload;
  }

  async function sessions_of(charge_point_id: string): Promise<RatedSessionRow[]> {
    const { body } = await api_get(
      stack,
      `/v1/sessions?charge_point_id=${encodeURIComponent(charge_point_id)}`,
    );
    return (body as { sessions: RatedSessionRow[] }).sessions;
  }

  interface MeterRow {
    connector_id: string;
    transaction_id: string;
    timestamp_ms: string;
    measurand: string;
    phase: string;
    location: string;
    unit: string;
    context: string;
    format: string;
    value: string;
  }

  async function meter_rows(charge_point_id: string): Promise<MeterRow[]> {
    return await stack.store!.query<MeterRow>(
      `SELECT toString(connector_id) AS connector_id, transaction_id, toString(timestamp_ms) AS timestamp_ms,
              measurand, phase, location, unit, context, format, value
       FROM ${stack.store!.database}.meter_values FINAL
       WHERE charge_point_id = '${charge_point_id}'
       ORDER BY timestamp_ms, measurand, phase, context, format`,
    );
  }

  async function statuses_of(charge_point_id: string): Promise<{ connector_id: string; status: string }[]> {
    return await stack.store!.query<{ connector_id: string; status: string }>(
      `SELECT toString(connector_id) AS connector_id, status
       FROM ${stack.store!.database}.connector_status FINAL
       WHERE charge_point_id = '${charge_point_id}' ORDER BY timestamp_ms`,
    );
  }

  describe('security profile 1 (HTTP Basic)', () => {
    it("accepts a registered charge point with the client's password option and refuses a wrong one", async () => {
      const password = '0f1e2d3c4b5a69788796a5b4';
      const put = await api_put(stack, '/v1/charge-points/CP-CONF-AUTH', JSON.stringify({ password }));
      expect(put.status).toBe(200);

      for (const wrong of [`${password}0`, undefined]) {
        const refused = new_client('CP-CONF-AUTH', 'ocpp1.6', true, wrong);
        const error = await refused.client.connect().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(UnexpectedHttpResponse);
        expect((error as { code: number }).code).toBe(401);
      }

      const charger = await connect('CP-CONF-AUTH', 'ocpp1.6', { password });
      const boot = await call(charger, 'BootNotification', {
        chargePointVendor: 'Conformance',
        chargePointModel: 'RPC-16',
      });
      expect(boot.status).toBe('Accepted');
    });
  });

  describe('OCPP 1.6', () => {
    it('answers BootNotification, Heartbeat, StatusNotification and the notifications per the schemas', async () => {
      const charger = await connect('CP-CONF-16-BASIC', 'ocpp1.6');
      const boot = await expect_current_time(
        call(charger, 'BootNotification', {
          chargePointVendor: 'Conformance',
          chargePointModel: 'RPC-16',
          chargePointSerialNumber: 'SN-0001',
          firmwareVersion: '1.2.3',
        }),
      );
      expect(boot).toMatchObject({ status: 'Accepted', interval: heartbeat_interval_s });
      expect(Object.keys(boot).sort()).toEqual(['currentTime', 'interval', 'status']);
      expect(Object.keys(await expect_current_time(call(charger, 'Heartbeat', {})))).toEqual(['currentTime']);

      expect(
        await call(charger, 'StatusNotification', {
          connectorId: 0,
          errorCode: 'NoError',
          status: 'Available',
          timestamp: '2026-11-20T16:00:00Z',
        }),
      ).toEqual({});
      expect(
        await call(charger, 'StatusNotification', {
          connectorId: 1,
          errorCode: 'NoError',
          status: 'Preparing',
          timestamp: '2026-11-20T16:00:01Z',
        }),
      ).toEqual({});
      expect(
        await call(charger, 'StatusNotification', {
          connectorId: 2,
          errorCode: 'GroundFailure',
          status: 'Faulted',
          info: 'RCD tripped',
          vendorErrorCode: 'E42',
          timestamp: '2026-11-20T16:00:02Z',
        }),
      ).toEqual({});

      // OCPP 1.6 section 4.3: no vendor extension is known, so UnknownVendorId.
      expect(
        await call(charger, 'DataTransfer', { vendorId: 'com.example', messageId: 'hello', data: '{"x":1}' }),
      ).toEqual({ status: 'UnknownVendorId' });
      for (const status of ['Downloading', 'Downloaded', 'Installing', 'Installed', 'Idle']) {
        expect(await call(charger, 'FirmwareStatusNotification', { status })).toEqual({});
      }
      for (const status of ['Uploading', 'Uploaded', 'Idle']) {
        expect(await call(charger, 'DiagnosticsStatusNotification', { status })).toEqual({});
      }

      // The status notifications were made durable and reached the store.
      const statuses = await eventually(async () => {
        const rows = await statuses_of('CP-CONF-16-BASIC');
        return rows.length >= 3 ? rows : undefined;
      }, stored_within_ms);
      expect(statuses).toEqual([
        { connector_id: '0', status: 'Available' },
        { connector_id: '1', status: 'Preparing' },
        { connector_id: '2', status: 'Faulted' },
      ]);
    });

    it('answers Authorize from the token store: Accepted, Blocked, Invalid for an unknown token', async () => {
      const charger = await connect('CP-CONF-16-AUTH', 'ocpp1.6');
      expect(await call(charger, 'Authorize', { idTag: 'CONF-OK-16' })).toEqual({
        idTagInfo: { status: 'Accepted' },
      });
      expect(await call(charger, 'Authorize', { idTag: 'CONF-BLOCKED-16' })).toEqual({
        idTagInfo: { status: 'Blocked' },
      });
      expect(await call(charger, 'Authorize', { idTag: 'CONF-NOBODY-16' })).toEqual({
        idTagInfo: { status: 'Invalid' },
      });
      // OCPP 1.6 section 7.24 IdTagInfo.parentIdTag: the token's group.
      expect(await call(charger, 'Authorize', { idTag: 'CONF-GROUP-16' })).toEqual({
        idTagInfo: { status: 'Accepted', parentIdTag: 'FLEET-7' },
      });
      // A group longer than an OCPP 1.6 IdToken (20 characters) cannot be sent as parentIdTag; the
      // strict client rejects any answer that breaks AuthorizeResponse.
      const long_group = await call(charger, 'Authorize', { idTag: 'CONF-LONGGROUP-16' });
      expect((long_group.idTagInfo as Json).status).toBe('Accepted');
    });

    it('runs a whole session: StartTransaction, MeterValues of every kind, StopTransaction with transactionData, priced exactly', async () => {
      const cp = 'CP-CONF-16-TX';
      const charger = await connect(cp, 'ocpp1.6');
      await call(charger, 'BootNotification', {
        chargePointVendor: 'Conformance',
        chargePointModel: 'RPC-16',
      });
      const started = await call(charger, 'StartTransaction', {
        connectorId: 1,
        idTag: 'CONF-OK-16',
        meterStart: 1_000_000,
        timestamp: '2026-11-20T17:00:00Z',
      });
      expect(Number.isInteger(started.transactionId)).toBe(true);
      expect(started.idTagInfo).toEqual({ status: 'Accepted' });
      const transaction_id = started.transactionId as number;

      // A blocked token still gets its transaction recorded and an integer id, with status Blocked
      // (the charge point stops it itself, OCPP 1.6 section 5.11 / StopTransactionOnInvalidId).
      const blocked = await call(charger, 'StartTransaction', {
        connectorId: 2,
        idTag: 'CONF-BLOCKED-16',
        meterStart: 0,
        timestamp: '2026-11-20T17:00:05Z',
      });
      expect(Number.isInteger(blocked.transactionId)).toBe(true);
      expect(blocked.transactionId).not.toBe(transaction_id);
      expect(blocked.idTagInfo).toEqual({ status: 'Blocked' });

      const signed =
        'OCMF|{"FV":"1.0","GI":"ACME EVSE","GS":"SN-0001","PG":"T12","MV":"Acme","RD":[{"TM":"2026-11-20T17:45:00,000+0000 S","RV":1008.2,"RI":"1-b:1.8.0","RU":"kWh","ST":"G"}]}|{"SA":"ECDSA-secp256r1-SHA256","SD":"3045022100A1B2C3\\u00e9/+=="}';
      expect(
        await call(charger, 'MeterValues', {
          connectorId: 1,
          transactionId: transaction_id,
          meterValue: [
            {
              timestamp: '2026-11-20T17:00:00Z',
              sampledValue: [
                {
                  value: '1000000',
                  context: 'Transaction.Begin',
                  measurand: 'Energy.Active.Import.Register',
                  unit: 'Wh',
                },
              ],
            },
          ],
        }),
      ).toEqual({});
      expect(
        await call(charger, 'MeterValues', {
          connectorId: 1,
          transactionId: transaction_id,
          meterValue: [
            {
              timestamp: '2026-11-20T17:30:00Z',
              sampledValue: [
                {
                  value: '1004.5',
                  context: 'Sample.Periodic',
                  measurand: 'Energy.Active.Import.Register',
                  location: 'Outlet',
                  unit: 'kWh',
                },
                { value: '11.04', context: 'Sample.Periodic', measurand: 'Power.Active.Import', unit: 'kW' },
                { value: '16.1', measurand: 'Current.Import', phase: 'L1', unit: 'A' },
                { value: '16.2', measurand: 'Current.Import', phase: 'L2', unit: 'A' },
                { value: '15.9', measurand: 'Current.Import', phase: 'L3', unit: 'A' },
                { value: '230.4', measurand: 'Voltage', phase: 'L1-N', unit: 'V' },
                { value: '42', measurand: 'SoC', location: 'EV', unit: 'Percent' },
              ],
            },
            {
              timestamp: '2026-11-20T17:45:00Z',
              sampledValue: [
                {
                  value: signed,
                  context: 'Sample.Periodic',
                  format: 'SignedData',
                  measurand: 'Energy.Active.Import.Register',
                  unit: 'kWh',
                },
              ],
            },
          ],
        }),
      ).toEqual({});
      const stopped = await call(charger, 'StopTransaction', {
        transactionId: transaction_id,
        idTag: 'CONF-OK-16',
        meterStop: 1_012_345,
        timestamp: '2026-11-20T18:30:00Z',
        reason: 'EVDisconnected',
        transactionData: [
          {
            timestamp: '2026-11-20T18:30:00Z',
            sampledValue: [
              {
                value: '1012.345',
                context: 'Transaction.End',
                measurand: 'Energy.Active.Import.Register',
                unit: 'kWh',
              },
              { value: '0', context: 'Transaction.End', measurand: 'Power.Active.Import', unit: 'W' },
            ],
          },
        ],
      });
      expect(stopped).toEqual({ idTagInfo: { status: 'Accepted' } });

      const session = await eventually(
        async () => (await sessions_of(cp)).find((s) => s.connector_id === 1),
        stored_within_ms,
      );
      // 12.345 kWh x 0.30 (the seeded default tariff) = 3.7035 -> 3.70; with 20% VAT 4.4442 -> 4.44.
      expect(session).toMatchObject({
        charge_point_id: cp,
        transaction_id: String(transaction_id),
        connector_id: 1,
        id_tag: 'CONF-OK-16',
        meter_start_wh: 1_000_000,
        meter_stop_wh: 1_012_345,
        energy_wh: 12_345,
        started_at_ms: Date.parse('2026-11-20T17:00:00Z'),
        stopped_at_ms: Date.parse('2026-11-20T18:30:00Z'),
        stop_reason: 'EVDisconnected',
        total_excl_vat: '3.70',
        total_incl_vat: '4.44',
      });

      const rows = await eventually(async () => {
        const r = (await meter_rows(cp)).filter((row) => row.transaction_id === String(transaction_id));
        return r.length >= 11 ? r : undefined;
      }, stored_within_ms);
      const t = (iso: string) => String(Date.parse(iso));
      const row = (
        at: string,
        measurand: string,
        phase: string,
        context: string,
        unit: string,
        value: string,
      ) => ({
        connector_id: '1',
        transaction_id: String(transaction_id),
        timestamp_ms: t(at),
        measurand,
        phase,
        location: measurand === 'SoC' ? 'EV' : 'Outlet',
        unit,
        context,
        format: 'Raw',
        value,
      });
      // Every sampled value is one row, with the OCPP 1.6 section 7.43 SampledValue defaults written
      // out and the value verbatim (units as sent, not converted).
      expect(rows).toEqual([
        row(
          '2026-11-20T17:00:00Z',
          'Energy.Active.Import.Register',
          '',
          'Transaction.Begin',
          'Wh',
          '1000000',
        ),
        row('2026-11-20T17:30:00Z', 'Current.Import', 'L1', 'Sample.Periodic', 'A', '16.1'),
        row('2026-11-20T17:30:00Z', 'Current.Import', 'L2', 'Sample.Periodic', 'A', '16.2'),
        row('2026-11-20T17:30:00Z', 'Current.Import', 'L3', 'Sample.Periodic', 'A', '15.9'),
        row('2026-11-20T17:30:00Z', 'Energy.Active.Import.Register', '', 'Sample.Periodic', 'kWh', '1004.5'),
        row('2026-11-20T17:30:00Z', 'Power.Active.Import', '', 'Sample.Periodic', 'kW', '11.04'),
        row('2026-11-20T17:30:00Z', 'SoC', '', 'Sample.Periodic', 'Percent', '42'),
        row('2026-11-20T17:30:00Z', 'Voltage', 'L1-N', 'Sample.Periodic', 'V', '230.4'),
        {
          ...row(
            '2026-11-20T17:45:00Z',
            'Energy.Active.Import.Register',
            '',
            'Sample.Periodic',
            'kWh',
            signed,
          ),
          format: 'SignedData',
        },
        row(
          '2026-11-20T18:30:00Z',
          'Energy.Active.Import.Register',
          '',
          'Transaction.End',
          'kWh',
          '1012.345',
        ),
        row('2026-11-20T18:30:00Z', 'Power.Active.Import', '', 'Transaction.End', 'W', '0'),
      ]);
    });

    it('answers an unknown action with NotImplemented and a known one it does not serve with NotSupported', async () => {
      const charger = await connect('CP-CONF-16-ERR', 'ocpp1.6', { strict: false });
      expect((await call_error(charger, 'FrobnicateConnector', {}))[2]).toBe('NotImplemented');
      // A 2.0.1 action is unknown in 1.6.
      expect((await call_error(charger, 'TransactionEvent', {}))[2]).toBe('NotImplemented');
      // Known to OCPP 1.6 (security whitepaper), not served here.
      expect(
        (
          await call_error(charger, 'SecurityEventNotification', {
            type: 'FirmwareUpdated',
            timestamp: '2026-11-20T10:00:00Z',
          })
        )[2],
      ).toBe('NotSupported');
      expect(typeof (await call(charger, 'Heartbeat', {})).currentTime).toBe('string');
    });

    it('answers schema violations with the OCPP-J 1.6 error codes (1.6 spellings) and stays usable', async () => {
      const charger = await connect('CP-CONF-16-SCHEMA', 'ocpp1.6', { strict: false });
      const at = '2026-11-20T10:00:00Z';
      // OCPP-J 1.6 section 4.2.3, Table 7; the errata sheet (5.1, 5.2) keeps the 1.6 spellings
      // "OccurenceConstraintViolation" and "FormationViolation" on the wire.
      const cases: [string, unknown, string, string | undefined][] = [
        // A required field missing: occurrence constraint.
        [
          'StartTransaction',
          { connectorId: 1, idTag: 'CONF-OK-16', timestamp: at },
          'OccurenceConstraintViolation',
          'meterStart',
        ],
        ['BootNotification', { chargePointVendor: 'A' }, 'OccurenceConstraintViolation', 'chargePointModel'],
        // MeterValues.req meterValue and MeterValue.sampledValue are 1..* (sections 6.31, 7.33).
        ['MeterValues', { connectorId: 1, meterValue: [] }, 'OccurenceConstraintViolation', 'meterValue'],
        [
          'MeterValues',
          { connectorId: 1, meterValue: [{ timestamp: at, sampledValue: [] }] },
          'OccurenceConstraintViolation',
          'sampledValue',
        ],
        // A field of the wrong data type.
        ['MeterValues', { connectorId: 'one', meterValue: [] }, 'TypeConstraintViolation', 'connectorId'],
        [
          'StartTransaction',
          { connectorId: 1, idTag: 7, meterStart: 0, timestamp: at },
          'TypeConstraintViolation',
          'idTag',
        ],
        // Syntactically right, an invalid value: an unknown enum value, too long a string, a bad date.
        [
          'StatusNotification',
          { connectorId: 1, errorCode: 'NoError', status: 'Exploded' },
          'PropertyConstraintViolation',
          'status',
        ],
        ['Authorize', { idTag: 'X'.repeat(21) }, 'PropertyConstraintViolation', 'idTag'],
        [
          'StartTransaction',
          { connectorId: 1, idTag: 'CONF-OK-16', meterStart: 0, timestamp: 'yesterday' },
          'PropertyConstraintViolation',
          'timestamp',
        ],
        // Not the PDU structure of the action: a field the schema does not have, a non-object payload.
        ['Heartbeat', { beat: 1 }, 'FormationViolation', undefined],
        ['Authorize', ['CONF-OK-16'], 'FormationViolation', undefined],
      ];
      for (const [action, payload, code, field] of cases) {
        const frame = await call_error(charger, action, payload);
        expect(frame[2], `${action} ${JSON.stringify(payload)}`).toBe(code);
        if (field !== undefined) expect(String(frame[3]), action).toContain(field);
      }
      expect(typeof (await call(charger, 'Heartbeat', {})).currentTime).toBe('string');
    });

    it('answers frames the RPC layer cannot read with a CALLERROR and keeps the connection', async () => {
      const charger = await connect_live('CP-CONF-16-RAW', 'ocpp1.6');
      // No readable message id: answered under "-1" (1.6 defines no id for this; 2.0.1 part 4 4.2.3 does).
      expect((await raw_error(charger, '[2, "raw-1", "Heartbeat"', '-1'))[2]).toBe('FormationViolation');
      // A CALL without its payload element is not the CALL structure of OCPP-J 1.6 section 4.2.1.
      expect((await raw_error(charger, '[2, "raw-2", "Heartbeat"]', 'raw-2'))[2]).toBe('FormationViolation');
      // Section 4.1.3: a message type number not in Table 2; the payload is ignored.
      expect((await raw_error(charger, '[7, "raw-3", "Heartbeat", {}]', 'raw-3'))[2]).toBe('ProtocolError');
      expect(typeof (await call(charger, 'Heartbeat', {})).currentTime).toBe('string');
    });

    it('accepts a Frequency sample in Hertz, which the official MeterValues schema allows', async () => {
      // ocpp-rpc's own 1.6 schema lacks "Hertz", so its strict mode would refuse to send this.
      const cp = 'CP-CONF-16-HZ';
      const charger = await connect(cp, 'ocpp1.6', { strict: false });
      expect(
        await call(charger, 'MeterValues', {
          connectorId: 0,
          meterValue: [
            {
              timestamp: '2026-11-20T12:00:00Z',
              sampledValue: [{ value: '49.98', measurand: 'Frequency', unit: 'Hertz' }],
            },
          ],
        }),
      ).toEqual({});
      const rows = await eventually(async () => {
        const r = await meter_rows(cp);
        return r.length > 0 ? r : undefined;
      }, stored_within_ms);
      expect(rows.map((r) => [r.connector_id, r.transaction_id, r.measurand, r.unit, r.value])).toEqual([
        ['0', '', 'Frequency', 'Hertz', '49.98'],
      ]);
    });
  });

  describe('OCPP 2.0.1', () => {
    it('answers BootNotification, Heartbeat, StatusNotification, NotifyEvent and FirmwareStatusNotification per the schemas', async () => {
      const cp = 'CP-CONF-201-BASIC';
      const charger = await connect(cp, 'ocpp2.0.1');
      const boot = await expect_current_time(
        call(charger, 'BootNotification', {
          chargingStation: {
            vendorName: 'Conformance',
            model: 'RPC-201',
            serialNumber: 'SN-0201',
            firmwareVersion: '2.0.1-a',
            modem: { iccid: '8931000000000000000', imsi: '262010000000000' },
          },
          reason: 'PowerUp',
        }),
      );
      expect(boot).toMatchObject({ status: 'Accepted', interval: heartbeat_interval_s });
      expect(Object.keys(await expect_current_time(call(charger, 'Heartbeat', {})))).toEqual(['currentTime']);
      expect(
        await call(charger, 'StatusNotification', {
          timestamp: '2026-11-20T09:59:00Z',
          connectorStatus: 'Occupied',
          evseId: 1,
          connectorId: 1,
        }),
      ).toEqual({});
      expect(
        await call(charger, 'StatusNotification', {
          timestamp: '2026-11-20T09:59:01Z',
          connectorStatus: 'Faulted',
          evseId: 2,
          connectorId: 1,
        }),
      ).toEqual({});
      expect(
        await call(charger, 'NotifyEvent', {
          generatedAt: '2026-11-20T09:59:02Z',
          seqNo: 0,
          tbc: false,
          eventData: [
            {
              eventId: 1,
              timestamp: '2026-11-20T09:59:02Z',
              trigger: 'Delta',
              actualValue: 'Occupied',
              eventNotificationType: 'HardWiredNotification',
              component: { name: 'Connector', evse: { id: 1, connectorId: 1 } },
              variable: { name: 'AvailabilityState' },
            },
          ],
        }),
      ).toEqual({});
      for (const status of ['Downloading', 'Downloaded', 'Installing', 'Installed']) {
        expect(await call(charger, 'FirmwareStatusNotification', { status, requestId: 7 })).toEqual({});
      }
      const statuses = await eventually(async () => {
        const rows = await statuses_of(cp);
        return rows.length >= 2 ? rows : undefined;
      }, stored_within_ms);
      expect(statuses.map((s) => s.status)).toEqual(['Occupied', 'Faulted']);
    });

    it('answers Authorize from the token store: Accepted, Blocked, Invalid for an unknown token', async () => {
      const charger = await connect('CP-CONF-201-AUTH', 'ocpp2.0.1');
      const authorize = (idToken: string) =>
        call(charger, 'Authorize', { idToken: { idToken, type: 'ISO14443' } });
      expect(await authorize('CONF-OK-201')).toEqual({ idTokenInfo: { status: 'Accepted' } });
      expect(await authorize('CONF-BLOCKED-201')).toEqual({ idTokenInfo: { status: 'Blocked' } });
      expect(await authorize('CONF-NOBODY-201')).toEqual({ idTokenInfo: { status: 'Invalid' } });
      // 2.0.1 identifiers are 36 characters: the long group fits groupIdToken.
      expect(await authorize('CONF-LONGGROUP-16')).toEqual({
        idTokenInfo: {
          status: 'Accepted',
          groupIdToken: { idToken: 'FLEET-WITH-A-VERY-LONG-GROUP-ID-0001', type: 'Central' },
        },
      });
    });

    it('prices a TransactionEvent Started/Updated/Ended session (offline, seqNo, multipliers) and stores MeterValues', async () => {
      const cp = 'CP-CONF-201-TX';
      const charger = await connect(cp, 'ocpp2.0.1');
      await call(charger, 'BootNotification', {
        chargingStation: { vendorName: 'Conformance', model: 'RPC-201' },
        reason: 'PowerUp',
      });
      const event = (
        eventType: 'Started' | 'Updated' | 'Ended',
        seqNo: number,
        timestamp: string,
        extra: Json,
      ) =>
        call(charger, 'TransactionEvent', {
          eventType,
          timestamp,
          triggerReason:
            eventType === 'Started'
              ? 'Authorized'
              : eventType === 'Ended'
                ? 'EVDeparted'
                : 'MeterValuePeriodic',
          seqNo,
          transactionInfo: {
            transactionId: 'CONF-TX-201',
            ...(eventType === 'Ended' ? { stoppedReason: 'EVDisconnected', chargingState: 'Idle' } : {}),
          },
          evse: { id: 1, connectorId: 1 },
          ...extra,
        });
      const started = await event('Started', 0, '2026-11-20T10:00:00Z', {
        idToken: { idToken: 'CONF-OK-201', type: 'ISO14443' },
        meterValue: [
          {
            timestamp: '2026-11-20T10:00:00Z',
            sampledValue: [
              {
                value: 5,
                context: 'Transaction.Begin',
                measurand: 'Energy.Active.Import.Register',
                unitOfMeasure: { unit: 'kWh' },
              },
            ],
          },
        ],
      });
      expect(started).toEqual({ idTokenInfo: { status: 'Accepted' } });
      // Sent later from the charger's queue (offline), without an idToken: answered without idTokenInfo.
      const updated = await event('Updated', 1, '2026-11-20T10:30:00Z', {
        offline: true,
        meterValue: [
          {
            timestamp: '2026-11-20T10:30:00Z',
            sampledValue: [
              {
                value: 11_200,
                context: 'Sample.Periodic',
                measurand: 'Energy.Active.Import.Register',
                unitOfMeasure: { unit: 'Wh' },
              },
              {
                value: 7.4,
                context: 'Sample.Periodic',
                measurand: 'Power.Active.Import',
                unitOfMeasure: { unit: 'kW' },
              },
              { value: 32, measurand: 'Current.Import', phase: 'L1', unitOfMeasure: { unit: 'A' } },
              { value: 31.5, measurand: 'Current.Import', phase: 'L2', unitOfMeasure: { unit: 'A' } },
            ],
          },
        ],
      });
      expect(updated).toEqual({});
      const ended = await event('Ended', 2, '2026-11-20T11:00:00Z', {
        offline: true,
        idToken: { idToken: 'CONF-OK-201', type: 'ISO14443' },
        meterValue: [
          {
            timestamp: '2026-11-20T11:00:00Z',
            sampledValue: [
              {
                // 17.5 x 10^3 Wh: the multiplier of the unit of measure is applied exactly.
                value: 17.5,
                context: 'Transaction.End',
                measurand: 'Energy.Active.Import.Register',
                unitOfMeasure: { unit: 'Wh', multiplier: 3 },
              },
            ],
          },
        ],
      });
      expect(ended).toEqual({ idTokenInfo: { status: 'Accepted' } });
      expect(
        await call(charger, 'MeterValues', {
          evseId: 1,
          meterValue: [
            {
              timestamp: '2026-11-20T11:05:00Z',
              sampledValue: [
                { value: 229.8, measurand: 'Voltage', phase: 'L1-N', unitOfMeasure: { unit: 'V' } },
                {
                  value: 17.5,
                  context: 'Sample.Clock',
                  measurand: 'Energy.Active.Import.Register',
                  unitOfMeasure: { unit: 'kWh' },
                },
              ],
            },
          ],
        }),
      ).toEqual({});

      const session = await eventually(async () => (await sessions_of(cp))[0], stored_within_ms);
      // 12.5 kWh x 0.30 = 3.75; with 20% VAT 4.50.
      expect(session).toMatchObject({
        charge_point_id: cp,
        transaction_id: 'CONF-TX-201',
        id_tag: 'CONF-OK-201',
        energy_wh: 12_500,
        started_at_ms: Date.parse('2026-11-20T10:00:00Z'),
        stopped_at_ms: Date.parse('2026-11-20T11:00:00Z'),
        stop_reason: 'EVDisconnected',
        total_excl_vat: '3.75',
        total_incl_vat: '4.50',
      });
      const rows = await eventually(async () => {
        const r = await meter_rows(cp);
        return r.length >= 8 ? r : undefined;
      }, stored_within_ms);
      const pick = (r: MeterRow) => [r.transaction_id, r.measurand, r.phase, r.context, r.unit, r.value];
      expect(rows.map(pick)).toEqual([
        ['CONF-TX-201', 'Energy.Active.Import.Register', '', 'Transaction.Begin', 'kWh', '5'],
        ['CONF-TX-201', 'Current.Import', 'L1', 'Sample.Periodic', 'A', '32'],
        ['CONF-TX-201', 'Current.Import', 'L2', 'Sample.Periodic', 'A', '31.5'],
        ['CONF-TX-201', 'Energy.Active.Import.Register', '', 'Sample.Periodic', 'Wh', '11200'],
        ['CONF-TX-201', 'Power.Active.Import', '', 'Sample.Periodic', 'kW', '7.4'],
        ['CONF-TX-201', 'Energy.Active.Import.Register', '', 'Transaction.End', 'Wh', '17500'],
        ['', 'Energy.Active.Import.Register', '', 'Sample.Clock', 'kWh', '17.5'],
        ['', 'Voltage', 'L1-N', 'Sample.Periodic', 'V', '229.8'],
      ]);
    });

    it('answers unreadable frames with RpcFrameworkError under "-1" and unknown message types with MessageTypeNotSupported', async () => {
      const charger = await connect_live('CP-CONF-201-RAW', 'ocpp2.0.1');
      // Part 4 section 4.2.3: when the message id cannot be read, the CALLERROR carries "-1".
      expect((await raw_error(charger, '[2, "raw-1", "Heartbeat"', '-1'))[2]).toBe('RpcFrameworkError');
      expect((await raw_error(charger, '{"not": "an array"}', '-1'))[2]).toBe('RpcFrameworkError');
      // Part 4 section 4.4: an unknown message type number.
      expect((await raw_error(charger, '[7, "raw-2", "Heartbeat", {}]', 'raw-2'))[2]).toBe(
        'MessageTypeNotSupported',
      );
      expect(typeof (await call(charger, 'Heartbeat', {})).currentTime).toBe('string');
    });

    it('answers unknown actions with NotImplemented, unserved ones with NotSupported, schema violations with the 2.0.1 codes', async () => {
      const charger = await connect('CP-CONF-201-ERR', 'ocpp2.0.1', { strict: false });
      expect((await call_error(charger, 'FrobnicateConnector', {}))[2]).toBe('NotImplemented');
      // A 1.6 action is unknown in 2.0.1.
      expect(
        (
          await call_error(charger, 'StartTransaction', {
            connectorId: 1,
            idTag: 'T',
            meterStart: 0,
            timestamp: '2026-11-20T10:00:00Z',
          })
        )[2],
      ).toBe('NotImplemented');
      expect(
        (
          await call_error(charger, 'SecurityEventNotification', {
            type: 'FirmwareUpdated',
            timestamp: '2026-11-20T10:00:00Z',
          })
        )[2],
      ).toBe('NotSupported');
      const at = '2026-11-20T10:00:00Z';
      // OCPP 2.0.1 part 4 section 4.3, Table 8 (corrected spellings: OccurrenceConstraintViolation,
      // FormatViolation).
      const cases: [string, unknown, string, string | undefined][] = [
        ['BootNotification', { reason: 'PowerUp' }, 'OccurrenceConstraintViolation', 'chargingStation'],
        [
          'TransactionEvent',
          {
            eventType: 'Started',
            timestamp: at,
            triggerReason: 'Authorized',
            transactionInfo: { transactionId: 'X' },
          },
          'OccurrenceConstraintViolation',
          'seqNo',
        ],
        ['MeterValues', { evseId: 1, meterValue: [] }, 'OccurrenceConstraintViolation', 'meterValue'],
        [
          'StatusNotification',
          { timestamp: at, connectorStatus: 'Available', evseId: '1', connectorId: 1 },
          'TypeConstraintViolation',
          'evseId',
        ],
        [
          'StatusNotification',
          { timestamp: at, connectorStatus: 'Exploded', evseId: 1, connectorId: 1 },
          'PropertyConstraintViolation',
          'connectorStatus',
        ],
        [
          'Authorize',
          { idToken: { idToken: 'X'.repeat(37), type: 'ISO14443' } },
          'PropertyConstraintViolation',
          'idToken',
        ],
        // A property the schema does not have, a payload that is not an object: FormatViolation, the
        // 2.0.1 name of 1.6's FormationViolation. Table 8 of 2.0.1 words ProtocolError as "not conform
        // the PDU structure" (1.6 had that under FormationViolation), so ProtocolError is a defensible
        // reading too; the server keeps the 1.6 mapping renamed.
        ['Heartbeat', { beat: 1 }, 'FormatViolation', undefined],
        ['Heartbeat', 'beat', 'FormatViolation', undefined],
      ];
      for (const [action, payload, code, field] of cases) {
        const frame = await call_error(charger, action, payload);
        expect(frame[2], `${action} ${JSON.stringify(payload)}`).toBe(code);
        if (field !== undefined) expect(String(frame[3]), action).toContain(field);
      }
      expect(typeof (await call(charger, 'Heartbeat', {})).currentTime).toBe('string');
    });
  });
});
