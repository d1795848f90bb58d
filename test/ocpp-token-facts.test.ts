import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request_command } from '../core/commands.js';
import { type TokenRecord, TokenStore } from '../core/tokens.js';
import {
  decode_event_batch,
  type MeterValuesEvent,
  type OcppEvent,
  type TransactionStartedEvent,
  type TransactionStoppedEvent,
} from '../schemas/events.js';
import { start_test_nats } from './helpers/nats.js';
import { connect_rpc_charger, type RpcCharger } from './helpers/ocpp-rpc.js';
import { eventually, start_test_stack } from './helpers/stack.js';

type Json = Record<string, unknown>;

/**
 * What a started event tells rating of the token, by value, for every kind of token and start:
 * an ingest node (the ingest role only) on a real nats-server, chargers played by ocpp-rpc in
 * strict mode (every CALL and answer checked against the official schemas), and the events read
 * back from the JetStream stream as rating would read them.
 */

const stream = 'EVRATE_EVENTS';
const subject_prefix = 'evrate';
const last_updated = '2026-11-01T00:00:00Z';

/** The token store's records (core/tokens.ts), as the operator API and OCPI Tokens would write them. */
const tokens: TokenRecord[] = [
  {
    uid: 'TF-RFID',
    type: 'RFID',
    contract_id: 'NL-EVR-C00000001-1',
    country_code: 'NL',
    party_id: 'EVR',
    valid: true,
    whitelist: 'ALWAYS',
    plan_id: 'plan-fleet',
    group_id: 'FLEET-1',
    source: 'operator',
    last_updated,
  },
  {
    uid: 'TF-APP',
    type: 'APP_USER',
    contract_id: 'NL-EVR-C00000002-2',
    country_code: 'NL',
    party_id: 'EVR',
    valid: true,
    whitelist: 'ALWAYS',
    source: 'operator',
    last_updated,
  },
  {
    uid: 'TF-OCPI',
    type: 'RFID',
    contract_id: 'DE-ABC-C12345678-9',
    country_code: 'DE',
    party_id: 'ABC',
    valid: true,
    whitelist: 'ALLOWED',
    source: 'ocpi',
    ocpi: { country_code: 'DE', party_id: 'ABC', uid: 'TF-OCPI', type: 'RFID' },
    last_updated,
  },
];

/** The started event's token fields for a record and a decision (what every case below expects). */
const rfid_fields = {
  tokenType: 'RFID',
  tokenCountryCode: 'NL',
  tokenPartyId: 'EVR',
  contractId: 'NL-EVR-C00000001-1',
  groupId: 'FLEET-1',
  planId: 'plan-fleet',
  tokenSource: 'operator',
  authStatus: 'Accepted',
};
const app_fields = {
  tokenType: 'APP_USER',
  tokenCountryCode: 'NL',
  tokenPartyId: 'EVR',
  contractId: 'NL-EVR-C00000002-2',
  groupId: '',
  planId: '',
  tokenSource: 'operator',
  authStatus: 'Accepted',
};
const ocpi_fields = {
  tokenType: 'RFID',
  tokenCountryCode: 'DE',
  tokenPartyId: 'ABC',
  contractId: 'DE-ABC-C12345678-9',
  groupId: '',
  planId: '',
  tokenSource: 'ocpi',
  authStatus: 'Accepted',
};
/** Unknown to the store, and the node does not accept unknown tokens: Invalid, no record. */
const unknown_fields = {
  tokenType: '',
  tokenCountryCode: '',
  tokenPartyId: '',
  contractId: '',
  groupId: '',
  planId: '',
  tokenSource: '',
  authStatus: 'Invalid',
};

describe('started events carry the token decision and the OCPP 2.0.1 charging state', () => {
  let nats: Awaited<ReturnType<typeof start_test_nats>>;
  let stack: Awaited<ReturnType<typeof start_test_stack>>;
  const clients: RpcCharger[] = [];
  /** Every event of the stream so far, in stream order (filled by an ordered consumer). */
  const events: OcppEvent[] = [];
  let messages: { stop(): void } | undefined;

  beforeAll(async () => {
    nats = await start_test_nats();
    const store = await TokenStore.open(nats.nats);
    for (const record of tokens) await store.put(record);
    stack = await start_test_stack({
      ROLES: 'ingest',
      NATS_URL: nats.url,
      NATS_STREAM: stream,
      NATS_SUBJECT_PREFIX: subject_prefix,
      OCPP_ALLOW_UNKNOWN: 'true',
      OCPP_ACCEPT_UNKNOWN_TOKENS: 'false',
    });
    const consumer = await nats.nats.js.consumers.get(stream);
    const consumed = await consumer.consume();
    messages = consumed;
    void (async () => {
      for await (const message of consumed) events.push(...decode_event_batch(message.data).events);
    })();
  });
  afterAll(async () => {
    messages?.stop();
    for (const client of clients) await client.close({ force: true });
    await stack?.dispose();
    await nats?.dispose();
  });

  async function connect(identity: string, protocol: 'ocpp1.6' | 'ocpp2.0.1'): Promise<RpcCharger> {
    const client = await connect_rpc_charger(stack.ocpp_url, identity, protocol);
    clients.push(client);
    return client;
  }

  const event_of = <T extends OcppEvent['body']>(
    charge_point_id: string,
    message_id: string,
    body: T,
  ): Promise<Extract<OcppEvent, { body: T }>> =>
    eventually(async () =>
      events.find(
        (e): e is Extract<OcppEvent, { body: T }> =>
          e.chargePointId === charge_point_id && e.messageId === message_id && e.body === body,
      ),
    );

  /** Sends a CALL and returns its message id (the event's messageId) and the answer. */
  async function call(
    client: RpcCharger,
    method: string,
    params: Json,
  ): Promise<{ id: string; answer: Json }> {
    let id = '';
    const on_call = ({ payload, outbound }: { payload: unknown[]; outbound: boolean }) => {
      if (outbound && payload[2] === method) id = String(payload[1]);
    };
    client.on('call', on_call);
    try {
      const answer = (await client.call(method, params)) as Json;
      return { id, answer };
    } finally {
      client.off('call', on_call);
    }
  }

  async function started_of(charge_point_id: string, id: string): Promise<TransactionStartedEvent> {
    return (await event_of(charge_point_id, id, 'started')).started;
  }

  it('OCPP 1.6: the store record, the status and WHITELIST or COMMAND for each kind of token', async () => {
    const cp = 'TF-CP-16';
    const client = await connect(cp, 'ocpp1.6');
    const remote_answers: Record<string, string> = { 'TF-RFID': 'Rejected', 'TF-OCPI': 'Accepted' };
    client.handle('RemoteStartTransaction', async ({ params }) => ({
      status: remote_answers[String(params?.idTag)] ?? 'Rejected',
    }));
    const start = async (id_tag: string, connector_id: number, meter_start_wh: number) => {
      const { id, answer } = await call(client, 'StartTransaction', {
        connectorId: connector_id,
        idTag: id_tag,
        meterStart: meter_start_wh,
        timestamp: '2026-11-20T10:00:00.000Z',
      });
      return { started: await started_of(cp, id), transaction_id: String(answer.transactionId) };
    };
    const base = (transaction_id: string, connector_id: number, id_tag: string, meter_start_wh: number) => ({
      transactionId: transaction_id,
      connectorId: connector_id,
      idTag: id_tag,
      meterStartWh: meter_start_wh,
      // 2026-11-20T10:00:00Z
      timestampMs: 1_795_168_800_000,
      reservationId: 0,
      evseId: 0,
      // OCPP 1.6 has neither an idToken type nor a charging state.
      idTokenType: '',
      chargingState: '',
    });

    // The charger refused the remote start of the RFID card; the driver then taps it: WHITELIST.
    expect(
      await request_command(nats.nats, subject_prefix, cp, { command: 'start', id_tag: 'TF-RFID' }, 5000),
    ).toMatchObject({ status: 'answered', response: { status: 'Rejected' } });
    const rfid = await start('TF-RFID', 1, 1000);
    expect(rfid.started).toEqual({
      ...base(rfid.transaction_id, 1, 'TF-RFID', 1000),
      ...rfid_fields,
      authMethod: 'WHITELIST',
    });

    const app = await start('TF-APP', 2, 2000);
    expect(app.started).toEqual({
      ...base(app.transaction_id, 2, 'TF-APP', 2000),
      ...app_fields,
      authMethod: 'WHITELIST',
    });

    // A partner's token, remote-started on connector 3 and accepted: COMMAND, with the partner's
    // party and contract. A start of that token on connector 4 does not answer that command.
    expect(
      await request_command(
        nats.nats,
        subject_prefix,
        cp,
        { command: 'start', id_tag: 'TF-OCPI', connector_id: 3 },
        5000,
      ),
    ).toMatchObject({ status: 'answered', response: { status: 'Accepted' } });
    const other_connector = await start('TF-OCPI', 4, 4000);
    expect(other_connector.started).toEqual({
      ...base(other_connector.transaction_id, 4, 'TF-OCPI', 4000),
      ...ocpi_fields,
      authMethod: 'WHITELIST',
    });
    const remote = await start('TF-OCPI', 3, 3000);
    expect(remote.started).toEqual({
      ...base(remote.transaction_id, 3, 'TF-OCPI', 3000),
      ...ocpi_fields,
      authMethod: 'COMMAND',
    });
    // The remote start is used up: the next start of that token on connector 3 is the driver's.
    const again = await start('TF-OCPI', 3, 3500);
    expect(again.started.authMethod).toBe('WHITELIST');

    const unknown = await start('TF-NOBODY', 5, 5000);
    expect(unknown.started).toEqual({
      ...base(unknown.transaction_id, 5, 'TF-NOBODY', 5000),
      ...unknown_fields,
      authMethod: 'WHITELIST',
    });
  });

  it('OCPP 2.0.1: the store record, the idToken type, COMMAND for RemoteStart and the charging state', async () => {
    const cp = 'TF-CP-201';
    const client = await connect(cp, 'ocpp2.0.1');
    const at = '2026-11-20T10:00:00.000Z';
    // 2026-11-20T10:00:00Z
    const at_ms = 1_795_168_800_000;
    const started = async (
      transaction_id: string,
      id_token: { idToken: string; type: string },
      extra: { triggerReason?: string; remoteStartId?: number; chargingState?: string } = {},
    ) => {
      const { id } = await call(client, 'TransactionEvent', {
        eventType: 'Started',
        timestamp: at,
        triggerReason: extra.triggerReason ?? 'Authorized',
        seqNo: 0,
        transactionInfo: {
          transactionId: transaction_id,
          ...(extra.chargingState === undefined ? {} : { chargingState: extra.chargingState }),
          ...(extra.remoteStartId === undefined ? {} : { remoteStartId: extra.remoteStartId }),
        },
        evse: { id: 1, connectorId: 1 },
        idToken: id_token,
      });
      return started_of(cp, id);
    };
    const base = (transaction_id: string, id_tag: string) => ({
      transactionId: transaction_id,
      connectorId: 1,
      evseId: 1,
      idTag: id_tag,
      // No meter values in these Started events.
      meterStartWh: -1,
      timestampMs: at_ms,
      reservationId: 0,
    });

    expect(
      await started('TX-RFID', { idToken: 'TF-RFID', type: 'ISO14443' }, { chargingState: 'EVConnected' }),
    ).toEqual({
      ...base('TX-RFID', 'TF-RFID'),
      ...rfid_fields,
      authMethod: 'WHITELIST',
      idTokenType: 'ISO14443',
      chargingState: 'EVConnected',
    });
    expect(await started('TX-APP', { idToken: 'TF-APP', type: 'Central' })).toEqual({
      ...base('TX-APP', 'TF-APP'),
      ...app_fields,
      authMethod: 'WHITELIST',
      idTokenType: 'Central',
      chargingState: '',
    });
    expect(
      await started('TX-OCPI', { idToken: 'TF-OCPI', type: 'eMAID' }, { chargingState: 'Charging' }),
    ).toEqual({
      ...base('TX-OCPI', 'TF-OCPI'),
      ...ocpi_fields,
      authMethod: 'WHITELIST',
      idTokenType: 'eMAID',
      chargingState: 'Charging',
    });
    expect(await started('TX-UNKNOWN', { idToken: 'TF-NOBODY', type: 'ISO15693' })).toEqual({
      ...base('TX-UNKNOWN', 'TF-NOBODY'),
      ...unknown_fields,
      authMethod: 'WHITELIST',
      idTokenType: 'ISO15693',
      chargingState: '',
    });
    // Part 2 F01/F02: a transaction our RequestStartTransaction started says RemoteStart and
    // echoes the remoteStartId; either one makes it COMMAND.
    client.handle('RequestStartTransaction', async () => ({ status: 'Accepted' }));
    expect(
      await request_command(
        nats.nats,
        subject_prefix,
        cp,
        { command: 'start', id_tag: 'TF-OCPI', connector_id: 1, remote_start_id: 41 },
        5000,
      ),
    ).toMatchObject({ status: 'answered', response: { status: 'Accepted' } });
    expect(
      await started(
        'TX-REMOTE',
        { idToken: 'TF-OCPI', type: 'Central' },
        { triggerReason: 'RemoteStart', remoteStartId: 41, chargingState: 'EVConnected' },
      ),
    ).toEqual({
      ...base('TX-REMOTE', 'TF-OCPI'),
      ...ocpi_fields,
      authMethod: 'COMMAND',
      idTokenType: 'Central',
      chargingState: 'EVConnected',
    });
    expect(
      (await started('TX-REMOTE-ID', { idToken: 'TF-APP', type: 'Central' }, { remoteStartId: 42 }))
        .authMethod,
    ).toBe('COMMAND');
    // Free vend: an empty idToken of type NoAuthorization asks for no decision.
    expect(await started('TX-FREE', { idToken: '', type: 'NoAuthorization' })).toEqual({
      ...base('TX-FREE', ''),
      ...unknown_fields,
      authStatus: '',
      authMethod: 'WHITELIST',
      idTokenType: 'NoAuthorization',
      chargingState: '',
    });
  });

  it('OCPP 2.0.1: an Updated with only a charging state is published with its timestamp, Ended carries its state', async () => {
    const cp = 'TF-CP-201-STATE';
    const client = await connect(cp, 'ocpp2.0.1');
    await call(client, 'TransactionEvent', {
      eventType: 'Started',
      timestamp: '2026-11-20T10:00:00.000Z',
      triggerReason: 'Authorized',
      seqNo: 0,
      transactionInfo: { transactionId: 'TX-STATE', chargingState: 'Charging' },
      evse: { id: 1, connectorId: 1 },
      idToken: { idToken: 'TF-APP', type: 'Central' },
    });
    const suspended = await call(client, 'TransactionEvent', {
      eventType: 'Updated',
      timestamp: '2026-11-20T11:15:30.000Z',
      triggerReason: 'ChargingStateChanged',
      seqNo: 1,
      transactionInfo: { transactionId: 'TX-STATE', chargingState: 'SuspendedEV' },
      evse: { id: 1, connectorId: 1 },
    });
    const expected_suspended: MeterValuesEvent = {
      transactionId: 'TX-STATE',
      connectorId: 1,
      meterValues: [],
      chargingState: 'SuspendedEV',
      // 2026-11-20T10:00:00Z is 1_795_168_800_000; 1 h 15 min 30 s later adds 4_530_000 ms.
      chargingStateAtMs: 1_795_173_330_000,
    };
    expect((await event_of(cp, suspended.id, 'meterValues')).meterValues).toEqual(expected_suspended);

    // A 2.0.1 signed sampled value: the number stays the value, the signature is its evidence.
    const signed = {
      signedMeterData: 'T0NNRnx7IkZWIjoiMS4wIn0=',
      signingMethod: 'ECDSA-secp256r1-SHA256',
      encodingMethod: 'OCMF',
      publicKey: 'MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE',
    };
    const periodic = await call(client, 'TransactionEvent', {
      eventType: 'Updated',
      timestamp: '2026-11-20T11:20:00.000Z',
      triggerReason: 'MeterValuePeriodic',
      seqNo: 2,
      transactionInfo: { transactionId: 'TX-STATE' },
      evse: { id: 1, connectorId: 1 },
      meterValue: [
        {
          timestamp: '2026-11-20T11:20:00.000Z',
          sampledValue: [
            {
              value: 12.5,
              measurand: 'Energy.Active.Import.Register',
              unitOfMeasure: { unit: 'kWh' },
              signedMeterValue: signed,
            },
          ],
        },
      ],
    });
    const with_signature = (await event_of(cp, periodic.id, 'meterValues')).meterValues;
    // No chargingState in that Updated: no state change to report.
    expect(with_signature.chargingState).toBe('');
    expect(with_signature.chargingStateAtMs).toBe(0);
    const value = with_signature.meterValues[0]!.sampledValues[0]!;
    expect(value.value).toBe('12.5');
    expect(value.unit).toBe('kWh');
    expect(value.format).toBe('SignedData');
    expect(JSON.parse(value.signedData ?? '')).toEqual(signed);

    const ended = await call(client, 'TransactionEvent', {
      eventType: 'Ended',
      timestamp: '2026-11-20T11:30:00.000Z',
      triggerReason: 'EVDeparted',
      seqNo: 3,
      transactionInfo: { transactionId: 'TX-STATE', chargingState: 'Idle', stoppedReason: 'EVDisconnected' },
      evse: { id: 1, connectorId: 1 },
    });
    const expected_stopped: TransactionStoppedEvent = {
      transactionId: 'TX-STATE',
      idTag: '',
      meterStopWh: -1,
      // 2026-11-20T11:30:00Z = 1_795_168_800_000 + 5_400_000.
      timestampMs: 1_795_174_200_000,
      reason: 'EVDisconnected',
      transactionData: [],
      chargingState: 'Idle',
    };
    expect((await event_of(cp, ended.id, 'stopped')).stopped).toEqual(expected_stopped);
  });
});
