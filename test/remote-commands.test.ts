import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCharger } from './helpers/charger.js';
import { eventually, start_test_stack, test_operator_token } from './helpers/stack.js';

type Stack = Awaited<ReturnType<typeof start_test_stack>>;

/**
 * Remote management through the whole stack: the API sends a command over NATS, the ingest node
 * holding the charger's socket turns it into the CALL of the charger's OCPP version, and the
 * charger's answer (or its silence) comes back to the API caller. Running costs reach the charger
 * as CostUpdated (2.0.1) or DataTransfer RunningCost (1.6).
 */
describe('remote commands and running costs', () => {
  let stack: Stack;
  const chargers: TestCharger[] = [];

  beforeAll(async () => {
    stack = await start_test_stack({
      OCPP_ACCEPT_UNKNOWN_TOKENS: 'true',
      OCPP_COMMAND_TIMEOUT_S: '1',
      OCPP_CALLS_PER_S_MAX: '5',
    });
  });
  afterAll(async () => {
    for (const charger of chargers) charger.close();
    await stack?.dispose();
  });

  const base = () => stack.ocpp_url.replace('/ocpp/{chargePointId}', '');
  const connect = async (path: string, protocol: string) => {
    const charger = await TestCharger.connect(`${base()}${path}`, protocol);
    chargers.push(charger);
    return charger;
  };
  const command = async (charge_point_id: string, body: unknown) => {
    const res = await fetch(
      `${stack.api_url}/v1/charge-points/${encodeURIComponent(charge_point_id)}/commands`,
      {
        method: 'POST',
        headers: { authorization: `Bearer ${test_operator_token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      },
    );
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it('sends each command as the CALL of the charger version and returns the answer', async () => {
    // A charger configured with a base URL of its own: the id is the last path segment.
    const cp16 = await connect('/some/base/CP-CMD-16', 'ocpp1.6');
    cp16.on_call = (action) =>
      action === 'Reset' ? { error: 'NotSupported' } : { result: { status: 'Accepted' } };
    expect(await command('CP-CMD-16', { command: 'start', id_tag: 'APP-1', connector_id: 2 })).toEqual({
      status: 200,
      body: {
        charge_point_id: 'CP-CMD-16',
        status: 'answered',
        action: 'RemoteStartTransaction',
        response: { status: 'Accepted' },
      },
    });
    expect((await command('CP-CMD-16', { command: 'stop', transaction_id: '42' })).body).toMatchObject({
      action: 'RemoteStopTransaction',
    });
    expect(
      (await command('CP-CMD-16', { command: 'availability', operative: false, connector_id: 1 })).status,
    ).toBe(200);
    const reset = await command('CP-CMD-16', { command: 'reset', type: 'hard' });
    expect(reset).toMatchObject({
      status: 502,
      body: { status: 'rejected', error: { code: 'NotSupported' } },
    });
    expect(cp16.received_calls.map((c) => [c.action, c.payload])).toEqual([
      ['RemoteStartTransaction', { idTag: 'APP-1', connectorId: 2 }],
      ['RemoteStopTransaction', { transactionId: 42 }],
      ['ChangeAvailability', { connectorId: 1, type: 'Inoperative' }],
      ['Reset', { type: 'Hard' }],
    ]);

    const cp201 = await connect('/ocpp/CP-CMD-201', 'ocpp2.0.1');
    cp201.on_call = () => ({ result: { status: 'Accepted' } });
    await command('CP-CMD-201', { command: 'start', id_tag: 'APP-2', connector_id: 1, remote_start_id: 7 });
    await command('CP-CMD-201', { command: 'stop', transaction_id: 'TX-9' });
    await command('CP-CMD-201', { command: 'reset', type: 'soft' });
    await command('CP-CMD-201', {
      command: 'firmware',
      location: 'https://firmware.example/v2.bin',
      retrieve_at: '2026-12-01T02:00:00Z',
      request_id: 3,
    });
    expect(cp201.received_calls.map((c) => [c.action, c.payload])).toEqual([
      [
        'RequestStartTransaction',
        { idToken: { idToken: 'APP-2', type: 'Central' }, remoteStartId: 7, evseId: 1 },
      ],
      ['RequestStopTransaction', { transactionId: 'TX-9' }],
      ['Reset', { type: 'OnIdle' }],
      [
        'UpdateFirmware',
        {
          requestId: 3,
          firmware: {
            location: 'https://firmware.example/v2.bin',
            retrieveDateTime: '2026-12-01T02:00:00.000Z',
          },
        },
      ],
    ]);
  });

  it('reports a silent charger, an unknown one and a bad command distinctly', async () => {
    const silent = await connect('/ocpp/CP-CMD-SILENT', 'ocpp1.6');
    silent.on_call = () => 'silent';
    expect(await command('CP-CMD-SILENT', { command: 'reset', type: 'soft' })).toMatchObject({
      status: 504,
      body: { status: 'timeout', action: 'Reset' },
    });
    expect(await command('CP-NOT-HERE', { command: 'reset', type: 'soft' })).toMatchObject({
      status: 409,
      body: { status: 'not_connected' },
    });
    expect(await command('CP-CMD-SILENT', { command: 'reset', type: 'warm' })).toMatchObject({
      status: 400,
      body: { field: 'type' },
    });
    expect(await command('CP-CMD-SILENT', { command: 'explode' })).toMatchObject({
      status: 400,
      body: { field: 'command' },
    });
    // A 1.6 charger's transaction ids are integers: a string id cannot be sent to it.
    expect(await command('CP-CMD-SILENT', { command: 'stop', transaction_id: 'TX-1' })).toMatchObject({
      status: 400,
      body: { field: 'transaction_id' },
    });
    expect(silent.received_calls.map((c) => c.action)).toEqual(['Reset']);
  });

  it('sends the running cost of an open session to its charger', async () => {
    const cp = await connect('/ocpp/CP-COST-16', 'ocpp1.6');
    const started = await cp.call('StartTransaction', {
      connectorId: 1,
      idTag: 'TAG-COST',
      meterStart: 0,
      timestamp: '2026-11-22T10:00:00Z',
    });
    await cp.call('MeterValues', {
      connectorId: 1,
      transactionId: started.transactionId,
      meterValue: [{ timestamp: '2026-11-22T11:00:00Z', sampledValue: [{ value: '10000' }] }],
    });
    const running = await eventually(async () =>
      cp.received_calls.find((c) => c.action === 'DataTransfer' && c.payload.messageId === 'RunningCost'),
    );
    expect(running.payload.vendorId).toBe('org.openchargealliance.costmsg');
    // The default tariff: 0.30 per kWh excl. 20% VAT: 10 kWh = 3.00 excl., 3.60 incl.
    expect(JSON.parse(String(running.payload.data))).toEqual({
      transactionId: started.transactionId,
      cost: 3.6,
      currency: 'EUR',
    });
  });

  it('refuses calls above the per-connection rate with a CALLERROR, and serves the charger again later', async () => {
    const cp = await connect('/ocpp/CP-RATE', 'ocpp1.6');
    const results = await Promise.allSettled(Array.from({ length: 30 }, () => cp.call('Heartbeat', {})));
    const refused = results.filter((r) => r.status === 'rejected');
    // A burst of twice the rate (10) passes; most of the rest is refused.
    expect(results.filter((r) => r.status === 'fulfilled').length).toBeGreaterThanOrEqual(10);
    expect(refused.length).toBeGreaterThan(0);
    for (const r of refused)
      expect(String((r as PromiseRejectedResult).reason)).toMatch(/CALLERROR GenericError/);
    await new Promise((r) => setTimeout(r, 1100));
    expect(typeof (await cp.call('Heartbeat', {})).currentTime).toBe('string');
  });
});
