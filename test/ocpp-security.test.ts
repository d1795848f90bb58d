import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCharger } from './helpers/charger.js';
import { api_put, start_test_stack } from './helpers/stack.js';

type Stack = Awaited<ReturnType<typeof start_test_stack>>;

describe('charge point authentication (security profile 1/2) and retried CALLs', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await start_test_stack({ OCPP_ALLOW_UNKNOWN: 'false' });
  });
  afterAll(async () => {
    await stack?.dispose();
  });
  const ocpp = (id: string) => stack.ocpp_url.replace('{chargePointId}', encodeURIComponent(id));
  const password = 'a1b2c3d4e5f60718293a';

  it('refuses unknown charge points and wrong passwords, accepts the registered one', async () => {
    await expect(TestCharger.connect(ocpp('CP-SEC-1'))).rejects.toThrow(/401/);
    const set = await api_put(stack, '/v1/charge-points/CP-SEC-1', JSON.stringify({ password }));
    expect(set.status).toBe(200);
    await expect(TestCharger.connect(ocpp('CP-SEC-1'))).rejects.toThrow(/401/);
    await expect(
      TestCharger.connect(ocpp('CP-SEC-1'), 'ocpp1.6', { username: 'CP-SEC-1', password: `${password}x` }),
    ).rejects.toThrow(/401/);
    // A00.FR.204: the username must be the charge point's own id.
    await expect(
      TestCharger.connect(ocpp('CP-SEC-1'), 'ocpp1.6', { username: 'CP-OTHER', password }),
    ).rejects.toThrow(/401/);
    const charger = await TestCharger.connect(ocpp('CP-SEC-1'), 'ocpp1.6', {
      username: 'CP-SEC-1',
      password,
    });
    const boot = await charger.call('BootNotification', { chargePointVendor: 'Acme', chargePointModel: 'X' });
    expect(boot.status).toBe('Accepted');
    charger.close();
  });

  it('rejects a password outside 16 to 40 characters with HTTP 400 naming the field', async () => {
    const res = await api_put(stack, '/v1/charge-points/CP-SEC-2', JSON.stringify({ password: 'short' }));
    expect(res.status).toBe(400);
    expect(res.body.field).toBe('password');
    await expect(
      TestCharger.connect(ocpp('CP-SEC-2'), 'ocpp1.6', { username: 'CP-SEC-2', password: 'short' }),
    ).rejects.toThrow(/401/);
  });

  it('answers a retried CALL with the same message id again without processing it twice', async () => {
    await api_put(stack, '/v1/charge-points/CP-SEC-3', JSON.stringify({ password }));
    const charger = await TestCharger.connect(ocpp('CP-SEC-3'), 'ocpp1.6', {
      username: 'CP-SEC-3',
      password,
    });
    const frame = JSON.stringify([
      2,
      'start-1',
      'StartTransaction',
      { connectorId: 1, idTag: 'T', meterStart: 0, timestamp: '2026-11-21T08:00:00Z' },
    ]);
    const first = await charger.raw(frame, 'start-1');
    const second = await charger.raw(frame, 'start-1');
    expect(first[0]).toBe(3);
    // Processed twice, the retry would have been given a new transaction id.
    expect(second).toEqual(first);
    const other = await charger.raw(frame.replace('start-1', 'start-2'), 'start-2');
    expect((other[2] as { transactionId: number }).transactionId).not.toBe(
      (first[2] as { transactionId: number }).transactionId,
    );
    // The same id with other content is not a retry (the sender broke id uniqueness): processed.
    const reused = await charger.raw(frame.replace('08:00:00Z', '09:00:00Z'), 'start-1');
    expect(reused[0]).toBe(3);
    expect((reused[2] as { transactionId: number }).transactionId).not.toBe(
      (first[2] as { transactionId: number }).transactionId,
    );
    charger.close();
  });
});
