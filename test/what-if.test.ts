import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { built_module } from '../core/paths.js';
import { TestCharger } from './helpers/charger.js';
import { api_put, eventually, start_test_stack, test_operator_token } from './helpers/stack.js';

const run = promisify(execFile);

/** The live tariff: 0.30/kWh, charging 1.20/h, parked 6.00/h, no VAT. */
const live_tariff = {
  country_code: 'NL',
  party_id: 'EVR',
  id: 'wi',
  currency: 'EUR',
  elements: [
    {
      price_components: [
        { type: 'ENERGY', price: 0.3, step_size: 1 },
        { type: 'TIME', price: 1.2, step_size: 1 },
        { type: 'PARKING_TIME', price: 6, step_size: 1 },
      ],
    },
  ],
  last_updated: '2026-11-01T00:00:00Z',
};

/** The candidate: 0.40/kWh, charging free, parked 9.00/h, at least 2.50 a session. */
const candidate = {
  country_code: 'NL',
  party_id: 'EVR',
  id: 'wi-next',
  currency: 'EUR',
  min_price: { excl_vat: 2.5, incl_vat: 2.5 },
  elements: [
    {
      price_components: [
        { type: 'ENERGY', price: 0.4, step_size: 1 },
        { type: 'PARKING_TIME', price: 9, step_size: 1 },
      ],
    },
  ],
  last_updated: '2026-12-01T00:00:00Z',
};

/**
 * What each session is, as the charger reports it below: energy in Wh, minutes charging and
 * minutes parked (SuspendedEV). Prices computed here in integer cents, independently of the engine.
 */
const sessions = [
  { cp: 'CP-WI-1', start: '2026-11-10T08:00:00Z', wh: 7500, charging_min: 30, parked_min: 30 },
  { cp: 'CP-WI-1', start: '2026-11-10T12:00:00Z', wh: 500, charging_min: 10, parked_min: 0 },
  { cp: 'CP-WI-2', start: '2026-11-11T18:00:00Z', wh: 20_000, charging_min: 60, parked_min: 0 },
];

function cents_live(s: (typeof sessions)[number]): number {
  // 0.30/kWh = 0.03 cents/Wh; 1.20/h = 2 cents/min; 6.00/h = 10 cents/min
  return Math.round((s.wh * 3) / 100 + s.charging_min * 2 + s.parked_min * 10);
}

function cents_candidate(s: (typeof sessions)[number]): number {
  // 0.40/kWh = 0.04 cents/Wh; 9.00/h = 15 cents/min; min_price 250 cents
  return Math.max(250, Math.round((s.wh * 4) / 100 + s.parked_min * 15));
}

const text = (cents: number) =>
  `${cents < 0 ? '-' : ''}${Math.floor(Math.abs(cents) / 100)}.${String(Math.abs(cents) % 100).padStart(2, '0')}`;

async function drive(ocpp_url: string, s: (typeof sessions)[number], meter_start: number): Promise<string> {
  const charger = await TestCharger.connect(ocpp_url.replace('{chargePointId}', s.cp));
  const t0 = Date.parse(s.start);
  const at = (min: number) => new Date(t0 + min * 60_000).toISOString();
  const started = await charger.call('StartTransaction', {
    connectorId: 1,
    idTag: 'TAG-WI',
    meterStart: meter_start,
    timestamp: at(0),
  });
  const tx = started.transactionId as number;
  await charger.call('MeterValues', {
    connectorId: 1,
    transactionId: tx,
    meterValue: [
      {
        timestamp: at(s.charging_min),
        sampledValue: [
          {
            value: String((meter_start + s.wh) / 1000),
            unit: 'kWh',
            measurand: 'Energy.Active.Import.Register',
          },
        ],
      },
    ],
  });
  if (s.parked_min > 0) {
    await charger.call('StatusNotification', {
      connectorId: 1,
      errorCode: 'NoError',
      status: 'SuspendedEV',
      timestamp: at(s.charging_min),
    });
  }
  await charger.call('StopTransaction', {
    transactionId: tx,
    meterStop: meter_start + s.wh,
    timestamp: at(s.charging_min + s.parked_min),
    reason: 'EVDisconnected',
  });
  if (s.parked_min > 0) {
    await charger.call('StatusNotification', {
      connectorId: 1,
      errorCode: 'NoError',
      status: 'Available',
      timestamp: at(s.charging_min + s.parked_min),
    });
  }
  charger.close();
  return `${s.cp}/${tx}`;
}

interface Figure {
  key: string;
  sessions: number;
  before: { excl_vat: string };
  after: { excl_vat: string };
}
interface Scenario {
  scenario_id: string;
  state: string;
  field?: string;
  progress: unknown;
  candidates: {
    total: Figure[];
    by_station: Figure[];
    by_weekday_hour: Figure[];
    by_payment_method: Figure[];
    by_plan: Figure[];
    largest_changes: { session_id: string; difference_excl_vat: string; price_limit_applied: unknown }[];
  }[];
}

async function request(stack: { api_url: string }, method: string, pathname: string, body?: unknown) {
  const res = await fetch(`${stack.api_url}${pathname}`, {
    method,
    headers: { authorization: `Bearer ${test_operator_token}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as Scenario };
}

describe('pricing what-if on history', () => {
  let stack: Awaited<ReturnType<typeof start_test_stack>>;
  const ids: string[] = [];
  beforeAll(async () => {
    stack = await start_test_stack({ DEFAULT_TARIFF_ID: 'wi' });
    expect((await api_put(stack, '/v1/tariffs/wi', JSON.stringify(live_tariff))).status).toBeLessThan(300);
    let meter = 1000;
    for (const s of sessions) {
      ids.push(await drive(stack.ocpp_url, s, meter));
      meter += s.wh;
    }
    await eventually(async () => {
      const [row] = await stack.store!.query<{ n: string; e: string }>(
        `SELECT toString(count()) AS n, toString(uniqExact(session_id)) AS e FROM evrate.session_facts FINAL
         WHERE session_id IN ('${ids.join("','")}')`,
      );
      const [events] = await stack.store!.query<{ n: string }>(
        `SELECT toString(uniqExact(session_id)) AS n FROM evrate.session_events WHERE kind = 'stopped'`,
      );
      return row?.n === '3' && events?.n === '3' ? true : undefined;
    });
  }, 120_000);
  afterAll(async () => stack?.dispose());

  it('re-prices the period under a candidate tariff, by value, and leaves the rated sessions as they were', async () => {
    const rated_before = await stack.store!.query<{ n: string; v: string; t: string }>(
      `SELECT toString(count()) AS n, toString(sum(version)) AS v, toString(sum(total_excl_vat)) AS t FROM evrate.rated_sessions`,
    );
    const versions_before = await stack.store!.query<{ n: string }>(
      'SELECT toString(count()) AS n FROM evrate.rated_session_versions',
    );
    // The live prices are what the stack charged.
    const live = await stack.store!.query<{ session_id: string; t: string }>(
      `SELECT session_id, toString(total_excl_vat) AS t FROM evrate.rated_sessions FINAL ORDER BY started_at_ms`,
    );
    expect(live.map((r) => Number(r.t) * 100)).toEqual(sessions.map(cents_live));

    const started = await request(stack, 'POST', '/v1/pricing/what-if', {
      name: 'energy 0.40 with a minimum',
      from: '2026-11-01T00:00:00Z',
      to: '2026-12-01T00:00:00Z',
      tariffs: [candidate],
    });
    expect(started.status).toBe(202);
    const id = started.body.scenario_id as string;
    const done = await eventually(async () => {
      const answer = await request(stack, 'GET', `/v1/pricing/what-if/${id}`);
      return answer.body.state === 'done' ? answer.body : undefined;
    });
    expect(done.progress).toEqual({ sessions_total: 3, sessions_done: 3 });
    const c = done.candidates[0]!;
    const before = sessions.reduce((a, s) => a + cents_live(s), 0);
    const after = sessions.reduce((a, s) => a + cents_candidate(s), 0);
    const kwh = sessions.reduce((a, s) => a + s.wh, 0) / 1000;
    expect(c.total).toEqual([
      {
        key: '',
        currency: 'EUR',
        sessions: 3,
        energy_wh: 28_000,
        before: {
          excl_vat: text(before),
          incl_vat: text(before),
          per_kwh_excl_vat: (before / 100 / kwh).toFixed(4),
        },
        after: {
          excl_vat: text(after),
          incl_vat: text(after),
          per_kwh_excl_vat: (after / 100 / kwh).toFixed(4),
        },
        difference: { excl_vat: text(after - before), incl_vat: text(after - before) },
        min_price_share: '0.3333',
        max_price_share: '0.0000',
      },
    ]);
    expect(text(before)).toBe('13.40');
    expect(text(after)).toBe('18.00');
    const station = (key: string) => c.by_station.find((f) => f.key === key)!;
    const on = (cp: string) => sessions.filter((s) => s.cp === cp);
    for (const cp of ['CP-WI-1', 'CP-WI-2']) {
      expect(station(cp).before.excl_vat).toBe(text(on(cp).reduce((a, s) => a + cents_live(s), 0)));
      expect(station(cp).after.excl_vat).toBe(text(on(cp).reduce((a, s) => a + cents_candidate(s), 0)));
    }
    // 2026-11-10 is a Tuesday (2), 2026-11-11 a Wednesday (3); hours in the station's zone (UTC).
    expect(
      c.by_weekday_hour.map((f: { key: string; after: { excl_vat: string } }) => [f.key, f.after.excl_vat]),
    ).toEqual([
      ['2-8', text(cents_candidate(sessions[0]!))],
      ['2-12', text(cents_candidate(sessions[1]!))],
      ['3-18', text(cents_candidate(sessions[2]!))],
    ]);
    expect(c.by_payment_method.map((f: { sessions: number }) => f.sessions)).toEqual([3]);
    expect(c.by_plan).toMatchObject([{ key: '(none)', sessions: 3 }]);
    // Largest change first: the short session lifted to the minimum, then the parked one.
    expect(
      c.largest_changes.map(
        (x: { session_id: string; difference_excl_vat: string; price_limit_applied: unknown }) => [
          x.session_id,
          x.difference_excl_vat,
          x.price_limit_applied,
        ],
      ),
    ).toEqual([
      [ids[1], text(cents_candidate(sessions[1]!) - cents_live(sessions[1]!)), 'min_price'],
      [ids[0], text(cents_candidate(sessions[0]!) - cents_live(sessions[0]!)), null],
      [ids[2], text(cents_candidate(sessions[2]!) - cents_live(sessions[2]!)), null],
    ]);

    // Nothing was written to the rated sessions: counted without FINAL, every row as it was.
    expect(
      await stack.store!.query(
        `SELECT toString(count()) AS n, toString(sum(version)) AS v, toString(sum(total_excl_vat)) AS t FROM evrate.rated_sessions`,
      ),
    ).toEqual(rated_before);
    expect(
      await stack.store!.query('SELECT toString(count()) AS n FROM evrate.rated_session_versions'),
    ).toEqual(versions_before);
    // The scenario is in ClickHouse under its name, for Grafana.
    const [stored] = await stack.store!.query<{ n: string; t: string }>(
      `SELECT name AS n, toString(after_excl_vat) AS t FROM evrate.what_if_figures FINAL
       WHERE scenario_id = '${id}' AND dimension = 'total'`,
    );
    expect(stored).toEqual({ n: 'energy 0.40 with a minimum', t: '18' });
  });

  it('prices only the stations asked for, and the CLI shows progress and the same figures', async () => {
    const dir = stack.dir;
    const file = path.join(dir, 'candidate.json');
    writeFileSync(file, JSON.stringify(candidate));
    const cli = await run(
      process.execPath,
      [
        built_module('app/cli.js'),
        'what-if',
        '--from',
        '2026-11-01T00:00:00Z',
        '--to',
        '2026-12-01T00:00:00Z',
        '--tariff',
        file,
        '--name',
        'one station',
        '--station',
        'CP-WI-2',
        '--api',
        stack.api_url,
      ],
      { env: { ...process.env, OPERATOR_TOKEN: test_operator_token } },
    );
    expect(cli.stderr).toContain('100% 1/1 sessions');
    const printed = JSON.parse(cli.stdout) as {
      name: string;
      candidates: { total: { before: unknown; after: unknown }[] }[];
    };
    expect(printed.name).toBe('one station');
    expect(printed.candidates[0]!.total[0]).toMatchObject({
      before: { excl_vat: text(cents_live(sessions[2]!)) },
      after: { excl_vat: text(cents_candidate(sessions[2]!)) },
    });
  });

  it('refuses a candidate tariff that does not validate with 422 naming the field, and starts nothing', async () => {
    const { currency: _, ...without_currency } = candidate;
    const bad = await request(stack, 'POST', '/v1/pricing/what-if', {
      from: '2026-11-01T00:00:00Z',
      to: '2026-12-01T00:00:00Z',
      tariffs: [candidate, without_currency],
    });
    expect(bad.status).toBe(422);
    expect(bad.body.field).toBe('tariffs[1].currency');
    const priced = await request(stack, 'POST', '/v1/pricing/what-if', {
      from: '2026-11-01T00:00:00Z',
      to: '2026-10-01T00:00:00Z',
      tariffs: [candidate],
    });
    expect(priced).toMatchObject({ status: 400, body: { field: 'to' } });
    const [n] = await stack.store!.query<{ n: string }>(
      'SELECT toString(uniqExact(scenario_id)) AS n FROM evrate.what_if_scenarios',
    );
    expect(n?.n).toBe('2');
    expect((await request(stack, 'GET', '/v1/pricing/what-if/nope')).status).toBe(404);
  });
});
