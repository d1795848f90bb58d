import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Money } from '../core/money.js';
import { built_module } from '../core/paths.js';
import { expand_query, type GrafanaQueryContext } from '../dashboards/grafana-macros.js';
import { TestCharger } from './helpers/charger.js';
import { type PrivateClickHouse, start_clickhouse_server } from './helpers/clickhouse-server.js';
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

let server: PrivateClickHouse | undefined;
afterAll(async () => {
  await server?.dispose();
});

const stores: { name: string; env(): Promise<Record<string, string>> }[] = [
  { name: 'chdb', env: async () => ({}) },
  {
    name: 'clickhouse-server',
    async env() {
      server = await start_clickhouse_server();
      return { CLICKHOUSE_URL: server.url };
    },
  },
];

type Row = Record<string, string | number>;

/** What each panel of dashboards/what-if.jsonnet must show, from the sessions' facts above. */
function expected_panels(
  scenarios: { name: string; sessions: number[] }[],
  ids: string[],
  method: string,
): Record<string, Row[]> {
  const label = (name: string) => `${name} / ${candidate.id}`;
  const round = (value: number, places: number) => Math.round(value * 10 ** places) / 10 ** places;
  const sums = (list: number[]) => {
    const before = list.reduce((a, i) => a + cents_live(sessions[i]!), 0);
    const after = list.reduce((a, i) => a + cents_candidate(sessions[i]!), 0);
    const kwh = list.reduce((a, i) => a + sessions[i]!.wh, 0) / 1000;
    return {
      sessions: list.length,
      before_excl_vat: before / 100,
      after_excl_vat: after / 100,
      difference_excl_vat: (after - before) / 100,
      before_per_kwh: round(before / 100 / kwh, 4),
      after_per_kwh: round(after / 100 / kwh, 4),
    };
  };
  const at_min = (i: number) => cents_candidate(sessions[i]!) === 250;
  const pct = (list: number[], test: (i: number) => boolean) =>
    round((list.filter(test).length * 100) / list.length, 2);
  // The test's stations are in UTC (no time zone set): weekday 1 = Monday.
  const weekday_names = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
  const slot = (i: number) => {
    const d = new Date(sessions[i]!.start);
    return { weekday: (d.getUTCDay() + 6) % 7, hour: d.getUTCHours() };
  };
  const hour_columns = (list: number[]) =>
    Object.fromEntries(
      Array.from({ length: 24 }, (_, h) => [
        `${String(h).padStart(2, '0')}:00`,
        sums(list.filter((i) => slot(i).hour === h)).difference_excl_vat,
      ]),
    );
  const per = <K extends string | number>(list: number[], key: (i: number) => K): [K, number[]][] => {
    const groups = new Map<K, number[]>();
    for (const i of list) groups.set(key(i), [...(groups.get(key(i)) ?? []), i]);
    return [...groups.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  };
  const changes = (list: number[]) =>
    [...list].sort((a, b) => {
      const da = Math.abs(cents_candidate(sessions[a]!) - cents_live(sessions[a]!));
      const db = Math.abs(cents_candidate(sessions[b]!) - cents_live(sessions[b]!));
      return db - da || (ids[a]! < ids[b]! ? -1 : 1);
    });
  const totals = scenarios.map((sc) => ({ scenario: label(sc.name), list: sc.sessions }));
  return {
    'Scenarios compared (${currency})': totals.map(({ scenario, list }) => {
      const s = sums(list);
      return {
        scenario,
        ...s,
        energy_kwh: list.reduce((a, i) => a + sessions[i]!.wh, 0) / 1000,
        change_pct: round((s.difference_excl_vat * 100) / s.before_excl_vat, 2),
        // No VAT in either tariff.
        before_incl_vat: s.before_excl_vat,
        after_incl_vat: s.after_excl_vat,
        min_price_pct: pct(list, at_min),
        max_price_pct: 0,
      };
    }),
    'Revenue excl. VAT before and after (${currency})': totals.map(({ scenario, list }) => ({
      scenario,
      before_excl_vat: sums(list).before_excl_vat,
      after_excl_vat: sums(list).after_excl_vat,
    })),
    'Sessions held at min_price / max_price (%)': totals.map(({ scenario, list }) => ({
      scenario,
      min_price_pct: pct(list, at_min),
      max_price_pct: 0,
    })),
    'Revenue change excl. VAT (${currency}): weekday × hour': totals.flatMap(({ scenario, list }) =>
      per(list, (i) => slot(i).weekday).map(([weekday, on]) => ({
        scenario,
        weekday: weekday_names[weekday]!,
        ...hour_columns(on),
      })),
    ),
    'By station, excl. VAT (${currency})': totals.flatMap(({ scenario, list }) =>
      per(list, (i) => sessions[i]!.cp).map(([station, on]) => ({ scenario, station, ...sums(on) })),
    ),
    'By weekday and hour, excl. VAT (${currency})': totals.flatMap(({ scenario, list }) =>
      per(list, (i) => slot(i).weekday * 100 + slot(i).hour).map(([key, on]) => ({
        scenario,
        weekday: weekday_names[Math.floor(key / 100)]!,
        hour: key % 100,
        ...sums(on),
      })),
    ),
    'By payment method, excl. VAT (${currency})': totals.map(({ scenario, list }) => ({
      scenario,
      method,
      ...sums(list),
    })),
    'By plan, excl. VAT (${currency})': totals.map(({ scenario, list }) => ({
      scenario,
      plan: '(none)',
      ...sums(list),
    })),
    // Rank 1 of every scenario first, then rank 2, ...
    'Sessions whose price changes most (${currency})': totals
      .flatMap(({ scenario, list }) =>
        changes(list).map((i, rank) => ({
          scenario,
          rank: rank + 1,
          session_id: ids[i]!,
          station: sessions[i]!.cp,
          before_excl_vat: cents_live(sessions[i]!) / 100,
          after_excl_vat: cents_candidate(sessions[i]!) / 100,
          difference_excl_vat: (cents_candidate(sessions[i]!) - cents_live(sessions[i]!)) / 100,
          price_limit_applied: at_min(i) ? 'min_price' : '',
        })),
      )
      .sort((a, b) => a.rank - b.rank || (a.scenario < b.scenario ? -1 : 1)),
  };
}

function compare_rows(actual: Row[], expected: Row[]): string[] {
  const problems: string[] = [];
  if (actual.length !== expected.length) problems.push(`${actual.length} rows, expected ${expected.length}`);
  expected.forEach((e, i) => {
    const a = actual[i] ?? {};
    if (Object.keys(a).sort().join() !== Object.keys(e).sort().join())
      problems.push(`row ${i}: columns ${Object.keys(a).join()} expected ${Object.keys(e).join()}`);
    for (const [key, want] of Object.entries(e)) {
      const got = a[key];
      if (typeof want === 'number' ? !(Math.abs(Number(got) - want) < 1e-9) : String(got) !== want)
        problems.push(`row ${i} ${key}: ${got}, expected ${want}`);
    }
  });
  return problems;
}

describe.each(stores)('pricing what-if on history ($name)', (transport) => {
  let stack: Awaited<ReturnType<typeof start_test_stack>>;
  const ids: string[] = [];
  beforeAll(async () => {
    stack = await start_test_stack({ DEFAULT_TARIFF_ID: 'wi', ...(await transport.env()) });
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
    // Compared as a decimal: toString of a Decimal keeps its trailing zeros on 18.16 ('18.0000')
    // and drops them on current servers ('18').
    expect({ n: stored?.n, t: new Money(stored?.t ?? 'NaN').toFixed(2) }).toEqual({
      n: 'energy 0.40 with a minimum',
      t: '18.00',
    });
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

  it('the Grafana dashboard lists the scenarios and shows each by value, on this store', async () => {
    const dashboard = JSON.parse(
      readFileSync(path.join(import.meta.dirname, '..', 'dashboards', 'build', 'what-if.json'), 'utf8'),
    ) as {
      panels: { title: string; targets: { rawSql: string }[] }[];
      templating: { list: { name: string; type: string; query: string }[] };
    };
    const [facts] = await stack.store!.query<{ m: string }>(
      'SELECT any(payment_method) AS m FROM evrate.session_facts',
    );
    const context = (scenario: string[] | 'all', options: Record<string, string[]>): GrafanaQueryContext => ({
      from_ms: Date.parse('2026-11-01T00:00:00Z'),
      to_ms: Date.parse('2026-12-01T00:00:00Z'),
      interval_s: 3600,
      variables: {
        database: { kind: 'identifier', value: stack.store!.database },
        scenario: { kind: 'values', selected: scenario, options: options.scenario ?? [] },
        currency: { kind: 'values', selected: ['EUR'], options: options.currency ?? [] },
      },
    });
    // The variables' options as Grafana gets them: from their own queries.
    const options: Record<string, string[]> = {};
    for (const variable of dashboard.templating.list.filter((v) => v.type === 'query')) {
      const rows = await stack.store!.query<Row>(expand_query(variable.query, context('all', {})));
      options[variable.name] = rows.map((r) => String(Object.values(r)[0]));
    }
    expect(options).toEqual({ scenario: ['energy 0.40 with a minimum', 'one station'], currency: ['EUR'] });
    const everything = { name: 'energy 0.40 with a minimum', sessions: [0, 1, 2] };
    const one_station = { name: 'one station', sessions: [2] };
    const states = [
      { selected: 'all' as const, scenarios: [everything, one_station] },
      { selected: ['one station'], scenarios: [one_station] },
    ];
    const problems: string[] = [];
    for (const state of states) {
      const expected = expected_panels(state.scenarios, ids, facts!.m);
      expect(dashboard.panels.map((p) => p.title).sort()).toEqual(Object.keys(expected).sort());
      for (const panel of dashboard.panels) {
        for (const target of panel.targets) {
          const rows = await stack.store!.query<Row>(
            expand_query(target.rawSql, context(state.selected, options)),
          );
          for (const problem of compare_rows(rows, expected[panel.title]!))
            problems.push(`${String(state.selected)}: ${panel.title}: ${problem}`);
        }
      }
    }
    expect(problems).toEqual([]);
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
