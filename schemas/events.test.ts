import { describe, expect, it } from 'vitest';
import { decode_event_batch, type EventBatch, encode_event_batch, type OcppEvent } from './events.js';

const base = { chargePointId: 'CP-1', receivedAtMs: 1_764_000_000_123, ocppVersion: '1.6', messageId: 'm-1' };
const meter_value = {
  timestampMs: 1_764_000_000_000,
  sampledValues: [
    {
      value: '12345.678',
      context: 'Sample.Periodic',
      format: 'SignedData',
      measurand: 'Energy.Active.Import.Register',
      phase: 'L1-N',
      location: 'Outlet',
      unit: 'Wh',
      signedData: 'AP;0;3;ALCV3ABBBISHMA2RYEGAZE3HV5YQBQRQAEHAR2MN;BIHEIWSHAAA6Y5CXDJ7AHKRF4',
    },
  ],
};

/** One event of every kind, every field set to a value other than its default. */
const events: OcppEvent[] = [
  { ...base, body: 'boot', boot: { vendor: 'V', model: 'M', serialNumber: 'S', firmwareVersion: 'F' } },
  {
    ...base,
    body: 'status',
    status: {
      connectorId: 2,
      status: 'Charging',
      errorCode: 'NoError',
      timestampMs: 1_764_000_000_001,
      info: 'i',
      evseId: 1,
    },
  },
  {
    ...base,
    body: 'started',
    started: {
      transactionId: '2147483647',
      connectorId: 1,
      idTag: 'TAG',
      meterStartWh: 9_007_199_254,
      timestampMs: 1_764_000_000_002,
      reservationId: 7,
      evseId: 1,
      tokenType: 'APP_USER',
      tokenCountryCode: 'NL',
      tokenPartyId: 'EMS',
      contractId: 'NL-EMS-C12345678-X',
      groupId: 'FLEET-7',
      planId: 'plan-gold',
      tokenSource: 'ocpi',
      authMethod: 'COMMAND',
      authStatus: 'Accepted',
      idTokenType: 'eMAID',
      chargingState: 'EVConnected',
    },
  },
  {
    ...base,
    body: 'meterValues',
    meterValues: {
      transactionId: 'tx-1',
      connectorId: 1,
      meterValues: [meter_value],
      chargingState: 'SuspendedEV',
      chargingStateAtMs: 1_764_000_000_004,
    },
  },
  {
    ...base,
    body: 'stopped',
    stopped: {
      transactionId: 'tx-1',
      idTag: 'TAG',
      meterStopWh: 9_007_199_999,
      timestampMs: 1_764_000_000_003,
      reason: 'EVDisconnected',
      transactionData: [meter_value],
      chargingState: 'Idle',
    },
  },
  { ...base, body: 'connection', connection: { connected: true, protocol: 'ocpp2.0.1', nodeId: 'node-1' } },
  {
    ...base,
    body: 'rejected',
    rejected: { action: 'MeterValues', errorCode: 'FormationViolation', nodeId: 'n' },
  },
];

describe('event batch encoding', () => {
  it('every kind of event comes back from the wire as it was built', () => {
    const batch: EventBatch = { nodeId: 'node-1', sequence: 4_294_967_297, events };
    expect(decode_event_batch(encode_event_batch(batch))).toEqual(batch);
  });

  it('fills the token and charging-state fields of an event built without them with empty defaults', () => {
    const started: OcppEvent = {
      ...base,
      body: 'started',
      started: {
        transactionId: '1',
        connectorId: 1,
        idTag: 'TAG',
        meterStartWh: 0,
        timestampMs: 1_764_000_000_002,
        reservationId: 0,
        evseId: 0,
      },
    };
    const meter_values: OcppEvent = {
      ...base,
      body: 'meterValues',
      meterValues: { transactionId: '1', connectorId: 1, meterValues: [] },
    };
    const stopped: OcppEvent = {
      ...base,
      body: 'stopped',
      stopped: {
        transactionId: '1',
        idTag: 'TAG',
        meterStopWh: 10,
        timestampMs: 1_764_000_000_003,
        reason: 'Local',
        transactionData: [],
      },
    };
    const [s, m, t] = decode_event_batch(
      encode_event_batch({ nodeId: 'n', sequence: 1, events: [started, meter_values, stopped] }),
    ).events;
    if (s?.body !== 'started' || m?.body !== 'meterValues' || t?.body !== 'stopped') throw new Error('kinds');
    expect(s.started).toEqual({
      ...started.started,
      tokenType: '',
      tokenCountryCode: '',
      tokenPartyId: '',
      contractId: '',
      groupId: '',
      planId: '',
      tokenSource: '',
      authMethod: '',
      authStatus: '',
      idTokenType: '',
      chargingState: '',
    });
    expect(m.meterValues).toEqual({ ...meter_values.meterValues, chargingState: '', chargingStateAtMs: 0 });
    expect(t.stopped).toEqual({ ...stopped.stopped, chargingState: '' });
  });
});
