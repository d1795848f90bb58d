import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { built_module } from '../core/paths.js';
import { TestCharger } from './helpers/charger.js';
import { api_put, eventually, start_test_stack, test_operator_token } from './helpers/stack.js';

const run = promisify(execFile);

/** 0.30/kWh charging at 1.20/h, idle at 6.00/h, no VAT: the version sessions were priced with. */
const tariff = (energy_price: number, parking_price: number) => ({
  country_code: 'NL',
  party_id: 'EVR',
  id: 'rr',
  currency: 'EUR',
  elements: [
    {
      price_components: [
        { type: 'ENERGY', price: energy_price, step_size: 1 },
        { type: 'TIME', price: 1.2, step_size: 1 },
        { type: 'PARKING_TIME', price: parking_price, step_size: 1 },
      ],
    },
  ],
  last_updated: '2026-11-01T00:00:00Z',
});

async function post(stack: { api_url: string }, body: unknown) {
  const res = await fetch(`${stack.api_url}/v1/sessions/rerate`, {
    method: 'POST',
    headers: { authorization: `Bearer ${test_operator_token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('re-rating', () => {
  let stack: Awaited<ReturnType<typeof start_test_stack>>;
  beforeAll(async () => {
    stack = await start_test_stack({ DEFAULT_TARIFF_ID: 'rr' });
    expect((await api_put(stack, '/v1/tariffs/rr', JSON.stringify(tariff(0.3, 6)))).body.version).toBe(2);
  });
  afterAll(async () => stack?.dispose());

  it('re-prices a session with a new tariff version, keeps the old version and shows the difference', async () => {
    const charger = await TestCharger.connect(stack.ocpp_url.replace('{chargePointId}', 'CP-RR-1'));
    const t0 = Date.parse('2026-11-10T08:00:00Z');
    const at = (min: number) => new Date(t0 + min * 60_000).toISOString();
    const started = await charger.call('StartTransaction', {
      connectorId: 1,
      idTag: 'TAG-RR',
      meterStart: 1000,
      timestamp: at(0),
    });
    const tx = started.transactionId as number;
    await charger.call('MeterValues', {
      connectorId: 1,
      transactionId: tx,
      meterValue: [
        {
          timestamp: at(30),
          sampledValue: [{ value: '8.5', unit: 'kWh', measurand: 'Energy.Active.Import.Register' }],
        },
      ],
    });
    await charger.call('StatusNotification', {
      connectorId: 1,
      errorCode: 'NoError',
      status: 'SuspendedEV',
      timestamp: at(30),
    });
    await charger.call('StopTransaction', {
      transactionId: tx,
      meterStop: 8500,
      timestamp: at(60),
      reason: 'EVDisconnected',
    });
    charger.close();
    const session_id = `CP-RR-1/${tx}`;
    // Priced live with version 2: 7.5 kWh x 0.30 + 0.5 h x 1.20 + 0.5 h x 6.00 = 5.85.
    const live = await eventually(async () => {
      const rows = await stack.store!.query<{ v: string; t: string }>(
        `SELECT toString(version) AS v, toString(total_excl_vat) AS t FROM evrate.rated_sessions FINAL WHERE session_id = '${session_id}'`,
      );
      return rows[0];
    });
    expect(live).toEqual({ v: '1', t: '5.85' });

    expect((await api_put(stack, '/v1/tariffs/rr', JSON.stringify(tariff(0.4, 9)))).body.version).toBe(3);
    const answer = await post(stack, { session_id, tariff_id: 'rr', tariff_version: 3 });
    expect(answer.status).toBe(200);
    // 7.5 x 0.40 + 0.5 x 1.20 + 0.5 x 9.00 = 8.10
    expect(answer.body.sessions).toEqual([
      {
        session_id,
        previous_version: 1,
        version: 2,
        tariff_id: 'rr',
        tariff_version: 3,
        currency: 'EUR',
        previous_total: { excl_vat: '5.85', incl_vat: '5.85' },
        total: { excl_vat: '8.10', incl_vat: '8.10' },
        difference: { excl_vat: '2.25', incl_vat: '2.25' },
      },
    ]);
    const latest = await stack.store!.query<{ v: string; tv: string; t: string }>(
      `SELECT toString(version) AS v, toString(tariff_version) AS tv, toString(total_excl_vat) AS t
       FROM evrate.rated_sessions FINAL WHERE session_id = '${session_id}'`,
    );
    expect(latest).toEqual([{ v: '2', tv: '3', t: '8.1' }]);
    const history = await stack.store!.query<{ v: string; r: string; t: string; p: string }>(
      `SELECT toString(version) AS v, rated_reason AS r, toString(total_excl_vat) AS t,
         toString(previous_total_excl_vat) AS p
       FROM evrate.rated_session_versions FINAL WHERE session_id = '${session_id}' ORDER BY version`,
    );
    expect(history).toEqual([
      { v: '1', r: 'live', t: '5.85', p: '0' },
      { v: '2', r: 'rerate', t: '8.1', p: '5.85' },
    ]);

    // The CLI goes through the same API.
    const cli = await run(
      process.execPath,
      [
        built_module('app/cli.js'),
        'rerate',
        '--tariff',
        'rr',
        '--tariff-version',
        '2',
        '--charge-point',
        'CP-RR-1',
        '--api',
        stack.api_url,
      ],
      { env: { ...process.env, OPERATOR_TOKEN: test_operator_token } },
    );
    const printed = JSON.parse(cli.stdout) as {
      count: number;
      sessions: { version: number; total: unknown; difference: unknown }[];
    };
    expect(printed.count).toBe(1);
    expect(printed.sessions[0]).toMatchObject({
      version: 3,
      total: { excl_vat: '5.85' },
      difference: { excl_vat: '-2.25' },
    });
  });

  it('refuses a bad request naming the field, and changes nothing', async () => {
    expect(await post(stack, { session_id: 'x' })).toEqual({
      status: 400,
      body: { error: 'tariff_id: required', field: 'tariff_id' },
    });
    expect((await post(stack, { tariff_id: 'rr' })).body.field).toBe('selection');
    expect((await post(stack, { tariff_id: 'nope', session_id: 'x' })).body).toMatchObject({
      field: 'tariff_id',
    });
    expect((await post(stack, { tariff_id: 'rr', from: 'yesterday' })).body.field).toBe('from');
    expect((await post(stack, { tariff_id: 'rr', tariff_version: 0, session_id: 'x' })).body.field).toBe(
      'tariff_version',
    );
    const cli = run(
      process.execPath,
      [built_module('app/cli.js'), 'rerate', '--tariff', 'rr', '--api', stack.api_url],
      {
        env: { ...process.env, OPERATOR_TOKEN: test_operator_token },
      },
    );
    await expect(cli).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining('selection: choose a session'),
    });
  });
});
