import { describe, expect, it } from 'vitest';
import type { TokenDecision, TokenRecord } from '../core/tokens.js';
import { handle_ocpp16_call } from './ocpp16.js';
import { OcppError, parse_frame } from './ocppj.js';

/** Token decisions as the token store gives them: BLOCKED is blocked, UNKNOWN unknown, the rest known. */
async function authorize(id_tag: string): Promise<TokenDecision> {
  if (id_tag === 'UNKNOWN') return { status: 'Invalid' };
  const token = { uid: id_tag, group_id: id_tag === 'FLEET1' ? 'FLEET' : undefined } as TokenRecord;
  return { status: id_tag === 'BLOCKED' ? 'Blocked' : 'Accepted', token };
}

const context = {
  heartbeat_interval_s: 60,
  now_ms: () => 0,
  allocate_transaction_id: async () => 7,
  authorize,
  remote_start_taken: () => false,
};

function code_of(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    return `${(error as OcppError).code}/${(error as OcppError).frame_id}`;
  }
  return 'no error';
}

describe('OCPP-J framing', () => {
  it('parses a CALL and reports malformed frames with the id to answer under', () => {
    expect(parse_frame('[2,"a","Heartbeat",{}]')).toEqual({
      type: 2,
      id: 'a',
      action: 'Heartbeat',
      payload: {},
    });
    expect(code_of(() => parse_frame('{'))).toBe('FormationViolation/-1');
    expect(code_of(() => parse_frame('[2,"a","Heartbeat",[]]'))).toBe('FormationViolation/a');
    expect(code_of(() => parse_frame('[9,"a","x",{}]'))).toBe('ProtocolError/a');
    expect(code_of(() => parse_frame(`[2,"${'x'.repeat(37)}","Heartbeat",{}]`))).toBe(
      'FormationViolation/-1',
    );
  });
});

describe('OCPP 1.6 calls', () => {
  it('turns StartTransaction into a durable event and an answer with the allocated id', async () => {
    const outcome = await handle_ocpp16_call(
      'StartTransaction',
      { connectorId: 1, idTag: 'T', meterStart: 10, timestamp: '2026-01-01T00:00:00Z' },
      context,
    );
    expect(outcome).toMatchObject({
      events: [
        {
          body: 'started',
          started: { transactionId: '7', meterStartWh: 10, timestampMs: Date.UTC(2026, 0, 1) },
        },
      ],
      payload: { transactionId: 7, idTagInfo: { status: 'Accepted' } },
    });
  });

  it('answers Authorize, StartTransaction and StopTransaction with the token store decision', async () => {
    expect((await handle_ocpp16_call('Authorize', { idTag: 'BLOCKED' }, context)).payload).toEqual({
      idTagInfo: { status: 'Blocked' },
    });
    expect((await handle_ocpp16_call('Authorize', { idTag: 'FLEET1' }, context)).payload).toEqual({
      idTagInfo: { status: 'Accepted', parentIdTag: 'FLEET' },
    });
    // An unknown card's transaction is still recorded: the charger has started it and stops it.
    const started = await handle_ocpp16_call(
      'StartTransaction',
      { connectorId: 1, idTag: 'UNKNOWN', meterStart: 0, timestamp: '2026-01-01T00:00:00Z' },
      context,
    );
    expect(started.payload).toEqual({ transactionId: 7, idTagInfo: { status: 'Invalid' } });
    expect(started.events).toHaveLength(1);
    const stopped = await handle_ocpp16_call(
      'StopTransaction',
      { transactionId: 7, idTag: 'BLOCKED', meterStop: 10, timestamp: '2026-01-01T01:00:00Z' },
      context,
    );
    expect(stopped.payload).toEqual({ idTagInfo: { status: 'Blocked' } });
  });

  it('fills OCPP 1.6 SampledValue defaults', async () => {
    const outcome = await handle_ocpp16_call(
      'MeterValues',
      { connectorId: 1, meterValue: [{ timestamp: '2026-01-01T00:00:00Z', sampledValue: [{ value: '5' }] }] },
      context,
    );
    expect(outcome.events[0]).toMatchObject({
      meterValues: {
        meterValues: [
          {
            sampledValues: [
              { measurand: 'Energy.Active.Import.Register', unit: 'Wh', context: 'Sample.Periodic' },
            ],
          },
        ],
      },
    });
  });

  it.each([
    ['Nonsense', {}, 'NotImplemented'],
    ['ReserveNow', {}, 'NotSupported'],
    ['Heartbeat', { extra: 1 }, 'FormationViolation'],
    [
      'StatusNotification',
      { connectorId: 1, errorCode: 'NoError', status: 'Dancing' },
      'PropertyConstraintViolation',
    ],
    [
      'StatusNotification',
      { connectorId: '1', errorCode: 'NoError', status: 'Available' },
      'TypeConstraintViolation',
    ],
    ['Authorize', {}, 'OccurenceConstraintViolation'],
  ])('answers %s with a bad payload with the OCPP-J error code', async (action, payload, code) => {
    await expect(handle_ocpp16_call(action, payload, context)).rejects.toMatchObject({ code });
    await expect(handle_ocpp16_call(action, payload, context)).rejects.toBeInstanceOf(OcppError);
  });
});
