import { describe, expect, it } from 'vitest';
import type { TokenDecision } from '../core/tokens.js';
import { handle_ocpp201_call, register_wh } from './ocpp201.js';
import { call_error, type OcppError, parse_frame } from './ocppj.js';

const context = {
  heartbeat_interval_s: 60,
  now_ms: () => 0,
  allocate_transaction_id: async () => 1,
  authorize: async (id_token: string): Promise<TokenDecision> => ({
    status: id_token === 'BLOCKED' ? 'Blocked' : 'Accepted',
  }),
  remote_start_taken: () => false,
};
const at = '2026-03-29T00:30:00Z';

function sample(value: number, unit: string, multiplier = 0, context_name = 'Transaction.Begin') {
  return {
    timestamp: at,
    sampledValue: [
      {
        value,
        context: context_name,
        measurand: 'Energy.Active.Import.Register',
        unitOfMeasure: { unit, multiplier },
      },
    ],
  };
}

describe('OCPP 2.0.1 TransactionEvent', () => {
  it('turns Started into a started event with the register in Wh, and keeps the samples', async () => {
    const outcome = await handle_ocpp201_call(
      'TransactionEvent',
      {
        eventType: 'Started',
        timestamp: at,
        triggerReason: 'Authorized',
        seqNo: 0,
        transactionInfo: { transactionId: 'tx-abc' },
        evse: { id: 2, connectorId: 1 },
        idToken: { idToken: 'RFID1', type: 'ISO14443' },
        meterValue: [sample(12.3456, 'kWh')],
      },
      context,
    );
    expect(outcome.payload).toEqual({ idTokenInfo: { status: 'Accepted' } });
    expect(outcome.events[0]).toMatchObject({
      body: 'started',
      started: { transactionId: 'tx-abc', evseId: 2, connectorId: 1, idTag: 'RFID1', meterStartWh: 12346 },
    });
    expect(outcome.events[1]).toMatchObject({ body: 'meterValues' });
  });

  it('turns Ended into a stopped event; an omitted stoppedReason is Local', async () => {
    const outcome = await handle_ocpp201_call(
      'TransactionEvent',
      {
        eventType: 'Ended',
        timestamp: at,
        triggerReason: 'EVCommunicationLost',
        seqNo: 3,
        transactionInfo: { transactionId: 'tx-abc' },
        meterValue: [sample(2, 'Wh', 3, 'Transaction.End')],
      },
      context,
    );
    expect(outcome.events).toEqual([
      expect.objectContaining({
        body: 'stopped',
        stopped: expect.objectContaining({ transactionId: 'tx-abc', meterStopWh: 2000, reason: 'Local' }),
      }),
    ]);
  });

  it('publishes an Updated that carries only a chargingState, and nothing for an Updated with neither', async () => {
    const updated = (transaction_info: Record<string, unknown>) =>
      handle_ocpp201_call(
        'TransactionEvent',
        {
          eventType: 'Updated',
          timestamp: at,
          triggerReason: 'ChargingStateChanged',
          seqNo: 1,
          transactionInfo: transaction_info,
          evse: { id: 2, connectorId: 1 },
        },
        context,
      );
    expect((await updated({ transactionId: 'tx-abc', chargingState: 'SuspendedEVSE' })).events).toEqual([
      {
        body: 'meterValues',
        meterValues: {
          transactionId: 'tx-abc',
          connectorId: 1,
          meterValues: [],
          chargingState: 'SuspendedEVSE',
          // 2026-03-29T00:30:00Z
          chargingStateAtMs: 1_774_744_200_000,
        },
      },
    ]);
    expect((await updated({ transactionId: 'tx-abc' })).events).toEqual([]);
  });

  it('reports a missing register as -1 rather than guessing', () => {
    expect(register_wh([])).toBe(-1);
  });

  it('uses the OCPP 2.0.1 spelling of error codes on the wire', async () => {
    const error = await handle_ocpp201_call('Authorize', {}, context).catch((e: unknown) => e as OcppError);
    expect(call_error('x', error as OcppError, 'ocpp2.0.1')).toContain('"OccurrenceConstraintViolation"');
    expect(call_error('x', error as OcppError, 'ocpp1.6')).toContain('"OccurenceConstraintViolation"');
    try {
      parse_frame('not json');
    } catch (unreadable) {
      expect(call_error('-1', unreadable as OcppError, 'ocpp2.0.1')).toContain('"RpcFrameworkError"');
    }
    try {
      parse_frame('[7,"a",{}]');
    } catch (unknown_type) {
      expect(call_error('a', unknown_type as OcppError, 'ocpp2.0.1')).toContain('"MessageTypeNotSupported"');
    }
    expect.assertions(4);
  });

  it.each([
    ['StartTransaction', 'NotImplemented'],
    ['SignCertificate', 'NotSupported'],
  ])('answers %s with %s', async (action, code) => {
    await expect(handle_ocpp201_call(action, {}, context)).rejects.toMatchObject({ code });
  });
});
