import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCharger } from './helpers/charger.js';
import { api_get, api_put, eventually, start_test_stack } from './helpers/stack.js';

type Stack = Awaited<ReturnType<typeof start_test_stack>>;
type Json = Record<string, unknown>;

/** 0.20 per kWh from 22:00 to 06:00 local time, 0.40 otherwise; no VAT to keep the figures plain. */
const night_tariff = {
  country_code: 'NL',
  party_id: 'EVR',
  id: 'night',
  currency: 'EUR',
  elements: [
    {
      price_components: [{ type: 'ENERGY', price: 0.2, vat: 0, step_size: 1 }],
      restrictions: { start_time: '22:00', end_time: '06:00' },
    },
    { price_components: [{ type: 'ENERGY', price: 0.4, vat: 0, step_size: 1 }] },
  ],
  last_updated: '2026-11-01T00:00:00Z',
};

/**
 * The operator's view: charge points with their tariff, time zone, station and connection status;
 * sessions searched by charge point, token and time, one session with its history, open sessions
 * with their running cost, and the tariff list.
 */
describe('operator API', () => {
  let stack: Stack;
  const password = 'cp-password-0123456789';

  beforeAll(async () => {
    stack = await start_test_stack({ OCPP_ALLOW_UNKNOWN: 'false', OCPP_ACCEPT_UNKNOWN_TOKENS: 'true' });
  });
  afterAll(async () => {
    await stack?.dispose();
  });

  const connect = (id: string) =>
    TestCharger.connect(stack.ocpp_url.replace('{chargePointId}', id), 'ocpp1.6', { username: id, password });

  it('registers a charge point with its tariff, time zone, station and location, and names bad fields', async () => {
    expect((await api_put(stack, '/v1/tariffs/night', JSON.stringify(night_tariff))).status).toBe(200);
    const put = (id: string, body: Json) => api_put(stack, `/v1/charge-points/${id}`, JSON.stringify(body));
    expect(await put('CP-TOKYO', { tariff_id: 'night' })).toMatchObject({
      status: 400,
      body: { field: 'password' },
    });
    expect(await put('CP-TOKYO', { password, time_zone: 'Mars/Olympus' })).toMatchObject({
      status: 400,
      body: { field: 'time_zone' },
    });
    expect(await put('CP-TOKYO', { password, tariff_id: 'nope' })).toMatchObject({
      status: 400,
      body: { field: 'tariff_id' },
    });
    expect(await put('CP-TOKYO', { password, colour: 'red' })).toMatchObject({
      status: 400,
      body: { field: 'colour' },
    });
    expect(await put('CP-TOKYO', { password, location: { country: 'JP' } })).toMatchObject({
      status: 400,
      body: { field: 'location.country' },
    });
    const ok = await put('CP-TOKYO', {
      password,
      tariff_id: 'night',
      time_zone: 'Asia/Tokyo',
      station_id: 'ST-SHIBUYA',
      location: { name: 'Shibuya', country: 'JPN', latitude: '35.65800', longitude: '139.70160' },
    });
    expect(ok).toMatchObject({
      status: 200,
      body: { tariff_id: 'night', time_zone: 'Asia/Tokyo', password_set: true },
    });
    // A later change without a password keeps the password and the other fields.
    expect(await put('CP-TOKYO', { station_id: 'ST-SHIBUYA-2' })).toMatchObject({
      status: 200,
      body: { tariff_id: 'night', station_id: 'ST-SHIBUYA-2', password_set: false },
    });
    expect((await put('CP-PLAIN', { password })).status).toBe(200);
  });

  it('prices sessions with the assigned tariff in the local time of the charge point', async () => {
    const tokyo = await connect('CP-TOKYO');
    const plain = await connect('CP-PLAIN');
    const status = await eventually(async () => {
      const { body } = await api_get(stack, '/v1/charge-points');
      const list = (body as { charge_points: Json[] }).charge_points;
      const row = list.find((c) => c.charge_point_id === 'CP-TOKYO');
      return (row?.connection as { connected?: boolean } | undefined)?.connected === true ? list : undefined;
    });
    expect(status.map((c) => c.charge_point_id)).toEqual(['CP-PLAIN', 'CP-TOKYO']);
    expect(status[1]).toMatchObject({
      station_id: 'ST-SHIBUYA-2',
      time_zone: 'Asia/Tokyo',
      registered: true,
    });

    // 14:00-15:00 UTC is 23:00-00:00 in Tokyo (night price) and day time at the default zone (UTC).
    for (const [charger, tag] of [
      [tokyo, 'TAG-TOKYO'],
      [plain, 'TAG-PLAIN'],
    ] as const) {
      const started = await charger.call('StartTransaction', {
        connectorId: 1,
        idTag: tag,
        meterStart: 0,
        timestamp: '2026-11-22T14:00:00Z',
      });
      await charger.call('MeterValues', {
        connectorId: 1,
        transactionId: started.transactionId,
        meterValue: [{ timestamp: '2026-11-22T14:30:00Z', sampledValue: [{ value: '5000' }] }],
      });
      if (charger === tokyo) {
        const open = await eventually(async () => {
          const { body } = await api_get(stack, '/v1/sessions/open?charge_point_id=CP-TOKYO');
          const [session] = (body as { sessions: Json[] }).sessions;
          return session?.running_cost === null ? undefined : session;
        });
        // 5 kWh at the night price so far.
        expect(open).toMatchObject({
          id_tag: 'TAG-TOKYO',
          running_cost: { excl_vat: '1.00', incl_vat: '1.00' },
        });
      }
      await charger.call('StopTransaction', {
        transactionId: started.transactionId,
        meterStop: 10_000,
        timestamp: '2026-11-22T15:00:00Z',
      });
    }
    tokyo.close();
    plain.close();

    const tokyo_session = await eventually(async () => {
      const { body } = await api_get(stack, '/v1/sessions?id_tag=TAG-TOKYO');
      return (body as { sessions: Json[] }).sessions[0];
    });
    // 10 kWh x 0.20 (night in Tokyo) = 2.00
    expect(tokyo_session).toMatchObject({
      charge_point_id: 'CP-TOKYO',
      tariff_id: 'night',
      total_excl_vat: '2.00',
    });
    const plain_session = await eventually(async () => {
      const { body } = await api_get(stack, '/v1/sessions?id_tag=TAG-PLAIN');
      return (body as { sessions: Json[] }).sessions[0];
    });
    // The default tariff (0.30 per kWh, 20% VAT) at the unassigned charge point.
    expect(plain_session).toMatchObject({
      tariff_id: 'default',
      total_excl_vat: '3.00',
      total_incl_vat: '3.60',
    });

    const one = await api_get(stack, `/v1/sessions/${encodeURIComponent(String(tokyo_session.session_id))}`);
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({
      session_id: tokyo_session.session_id,
      breakdown: { currency: 'EUR', total_cost: { excl_vat: '2.00' } },
      versions: [{ version: 1, rated_reason: 'live', total_excl_vat: '2.00' }],
    });
    expect((await api_get(stack, `/v1/sessions/${encodeURIComponent('CP-TOKYO/999999')}`)).status).toBe(404);

    // Time range: the sessions started at 14:00Z are inside [14:00, 14:01) and outside [14:01, ...).
    const inside = await api_get(stack, '/v1/sessions?from=2026-11-22T14:00:00Z&to=2026-11-22T14:01:00Z');
    expect((inside.body as { sessions: Json[] }).sessions.map((s) => s.id_tag).sort()).toEqual([
      'TAG-PLAIN',
      'TAG-TOKYO',
    ]);
    const after = await api_get(stack, '/v1/sessions?from=2026-11-22T14:01:00Z');
    expect((after.body as { sessions: Json[] }).sessions).toEqual([]);
    expect(await api_get(stack, '/v1/sessions?from=yesterday')).toMatchObject({
      status: 400,
      body: { field: 'from' },
    });
  });

  it('lists the current version of every tariff', async () => {
    const { body } = await api_get(stack, '/v1/tariffs');
    const tariffs = (body as { tariffs: { tariff_id: string; version: number }[] }).tariffs;
    expect(tariffs.map((t) => [t.tariff_id, t.version])).toEqual([
      ['default', 1],
      ['night', 1],
    ]);
  });
});
