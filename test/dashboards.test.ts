import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expand_query, type GrafanaQueryContext, MacroError } from '../dashboards/grafana-macros.js';
import { seed_data, seed_stations, seed_store, seed_week } from '../dashboards/seed.js';
import {
  expected_figures,
  expected_variable_values,
  type FigureContext,
  type Row,
  tolerance,
} from './helpers/dashboard-figures.js';
import { store_transports, type TestStore } from './helpers/stores.js';

const root = path.resolve(import.meta.dirname, '..');
const committed_dir = path.join(root, 'dashboards', 'build');

interface Target {
  refId: string;
  datasource: { type: string; uid: string };
  rawSql: string;
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource: { type: string; uid: string };
  gridPos: { x: number; y: number; w: number; h: number };
  targets: Target[];
}
interface Variable {
  name: string;
  type: string;
  query: string;
  datasource?: { type: string; uid: string };
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: Variable[] };
}

/** Builds the dashboards afresh with `npm run dashboards`' script into a temporary folder. */
function build_fresh(): { dir: string; files: string[] } {
  const dir = mkdtempSync(path.join(tmpdir(), 'evrate-dashboards-'));
  execFileSync(process.execPath, [path.join(root, 'dashboards', 'build.mjs'), '--out', dir], {
    stdio: 'pipe',
  });
  return { dir, files: readdirSync(dir).sort() };
}

const fresh = build_fresh();
const all_dashboards: Dashboard[] = fresh.files.map(
  (file) => JSON.parse(readFileSync(path.join(fresh.dir, file), 'utf8')) as Dashboard,
);
/**
 * Dashboards over data this seed does not make (what-if scenarios, billing events): their figures
 * are checked by their own tests (test/what-if.test.ts, test/billing-dashboard.test.ts) on data
 * made by the real path; the structure checks below apply to them too.
 */
const figures_checked_elsewhere = new Set(['evrate-what-if', 'evrate-billing']);
const dashboards = all_dashboards;
const seeded_dashboards = all_dashboards.filter((d) => !figures_checked_elsewhere.has(d.uid));
afterAll(() => rmSync(fresh.dir, { recursive: true, force: true }));

/** The Billing dashboard's picture is drawn by test/billing-dashboard.test.ts, not from the seed. */
const seeded_files = fresh.files.filter((f) => f !== 'billing.json');

/** Every variable reference in a text: ${name}, ${name:format}, $name, [[name]]; not $__macros. */
function variable_references(text: string): string[] {
  const names: string[] = [];
  for (const m of text.matchAll(/\$\{(\w+)(?::\w+)?\}|\[\[(\w+)(?::\w+)?\]\]|\$(\w+)/g)) {
    const name = m[1] ?? m[2] ?? m[3]!;
    if (!name.startsWith('__')) names.push(name);
  }
  return names;
}

function strings_in(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(strings_in);
  if (value !== null && typeof value === 'object') return Object.values(value).flatMap(strings_in);
  return [];
}

describe('dashboard build', () => {
  it('builds one dashboard per jsonnet source, identical to the committed dashboards/build', () => {
    const sources = readdirSync(path.join(root, 'dashboards')).filter((f) => f.endsWith('.jsonnet'));
    expect(fresh.files).toEqual(sources.map((f) => f.replace(/\.jsonnet$/, '.json')).sort());
    expect(readdirSync(committed_dir).sort()).toEqual(fresh.files);
    for (const file of fresh.files) {
      // A stale committed build would give Grafana users other queries than the sources say.
      expect(readFileSync(path.join(committed_dir, file), 'utf8'), `${file}: run npm run dashboards`).toBe(
        readFileSync(path.join(fresh.dir, file), 'utf8'),
      );
    }
  });

  it('the committed pictures are what dashboards:render draws from the built dashboards', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'evrate-dashboard-images-'));
    try {
      // Its own process: chdb allows one data directory per process, and this file has one.
      execFileSync(
        path.join(root, 'node_modules', '.bin', 'tsx'),
        [path.join(root, 'dashboards', 'render.ts'), '--out', dir],
        {
          stdio: 'pipe',
          timeout: 90_000,
        },
      );
      const images = seeded_files.map((f) => f.replace(/\.json$/, '.svg'));
      expect(readdirSync(dir).sort()).toEqual(images);
      for (const image of images) {
        expect(
          readFileSync(path.join(root, 'dashboards', 'images', image), 'utf8'),
          `${image}: run npm run dashboards:render`,
        ).toBe(readFileSync(path.join(dir, image), 'utf8'));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each(fresh.files)('%s: unique uid and panel ids, panels on the grid without overlap', (file) => {
    const dashboard = dashboards[fresh.files.indexOf(file)]!;
    expect(new Set(dashboards.map((d) => d.uid)).size).toBe(dashboards.length);
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(dashboard.panels.length).toBeGreaterThanOrEqual(4);
    for (const [i, a] of dashboard.panels.entries()) {
      expect(a.gridPos.x).toBeGreaterThanOrEqual(0);
      expect(a.gridPos.x + a.gridPos.w, a.title).toBeLessThanOrEqual(24);
      expect(a.gridPos.w * a.gridPos.h).toBeGreaterThan(0);
      for (const b of dashboard.panels.slice(i + 1)) {
        const apart =
          a.gridPos.x + a.gridPos.w <= b.gridPos.x ||
          b.gridPos.x + b.gridPos.w <= a.gridPos.x ||
          a.gridPos.y + a.gridPos.h <= b.gridPos.y ||
          b.gridPos.y + b.gridPos.h <= a.gridPos.y;
        expect(apart, `${a.title} overlaps ${b.title}`).toBe(true);
      }
    }
  });

  it.each(fresh.files)(
    '%s: every panel, target and query variable uses the ClickHouse data source',
    (file) => {
      const dashboard = dashboards[fresh.files.indexOf(file)]!;
      const clickhouse = { type: 'grafana-clickhouse-datasource', uid: 'evrate-clickhouse' };
      for (const panel of dashboard.panels) {
        expect(panel.datasource, panel.title).toEqual(clickhouse);
        expect(panel.targets.length, panel.title).toBeGreaterThan(0);
        for (const target of panel.targets) {
          expect(target.datasource, panel.title).toEqual(clickhouse);
          expect(target.rawSql.trim().startsWith('SELECT'), panel.title).toBe(true);
        }
      }
      for (const variable of dashboard.templating.list.filter((v) => v.type === 'query')) {
        expect(variable.datasource, variable.name).toEqual(clickhouse);
      }
      // The provisioned data source carries the uid the panels point at.
      const provisioning = readFileSync(
        path.join(root, 'dashboards', 'provisioning', 'datasources', 'clickhouse.yaml'),
        'utf8',
      );
      expect(provisioning).toContain(`uid: ${clickhouse.uid}`);
      expect(provisioning).toContain(`type: ${clickhouse.type}`);
    },
  );

  it.each(fresh.files)(
    '%s: every variable used exists, and the SQL avoids what ClickHouse 18.16 lacks',
    (file) => {
      const dashboard = dashboards[fresh.files.indexOf(file)]!;
      const defined = new Set(dashboard.templating.list.map((v) => v.name));
      const used = new Set(
        strings_in({ panels: dashboard.panels, templating: dashboard.templating }).flatMap(
          variable_references,
        ),
      );
      for (const name of used) expect(defined.has(name), `$${name} used but not defined`).toBe(true);
      // And nothing defined goes unused: a variable that filters nothing misleads the viewer.
      for (const name of defined) expect(used.has(name), `$${name} defined but not used`).toBe(true);
      for (const sql of dashboard.panels.flatMap((p) => p.targets.map((t) => t.rawSql))) {
        expect(sql).not.toMatch(/\$__timeInterval|toStartOfInterval|DateTime64|OVER\s*\(|(?<!\$)\{\w+:\w+\}/);
      }
    },
  );
});

describe('macro expansion', () => {
  const context: GrafanaQueryContext = {
    from_ms: seed_week.from_ms,
    to_ms: seed_week.to_ms,
    interval_s: 3600,
    variables: {
      database: { kind: 'identifier', value: 'evrate' },
      station: { kind: 'values', selected: ["x') OR 1=1 --", 'a\\'], options: [] },
      party: { kind: 'values', selected: 'all', options: ['own', 'DE*ABC'] },
    },
  };

  it('expands the plugin macros as its backend does', () => {
    const from_s = seed_week.from_ms / 1000;
    const to_s = seed_week.to_ms / 1000;
    expect(expand_query('SELECT 1 WHERE $__timeFilter(at) AND x < $__toTime', context)).toBe(
      `SELECT 1 WHERE at >= toDateTime(${from_s}) AND at <= toDateTime(${to_s}) AND x < toDateTime(${to_s})`,
    );
    expect(expand_query('$__fromTime $__interval_s $__dateFilter(d)', context)).toBe(
      `toDateTime(${from_s}) 3600 d >= toDate('2026-11-02') AND d <= toDate('2026-11-09')`,
    );
  });

  it('quotes every value of a multi-value variable through the literal formatter', () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana variable syntax, not a template
    expect(expand_query('SELECT 1 FROM ${database}.t WHERE s IN (${station:singlequote})', context)).toBe(
      "SELECT 1 FROM evrate.t WHERE s IN ('x\\') OR 1=1 --','a\\\\')",
    );
  });

  it('applies $__conditionalAll: 1=1 for All, the condition otherwise', () => {
    expect(
      expand_query(
        // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana variable syntax, not a template
        'WHERE $__conditionalAll(p IN (${party:singlequote}), $party) AND $__conditionalAll(s IN (${station:singlequote}), $station)',
        context,
      ),
    ).toBe("WHERE 1=1 AND s IN ('x\\') OR 1=1 --','a\\\\')");
  });

  it('refuses unquoted values, unknown variables and unknown macros', () => {
    expect(() => expand_query('WHERE s = $station', context)).toThrow(MacroError);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana variable syntax, not a template
    expect(() => expand_query('WHERE s = ${nope:singlequote}', context)).toThrow(MacroError);
    expect(() => expand_query('WHERE $__timeFilterMs(at)', context)).toThrow(MacroError);
    const bad_database = {
      ...context,
      variables: { ...context.variables, database: { kind: 'identifier' as const, value: 'a; DROP' } },
    };
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana variable syntax, not a template
    expect(() => expand_query('SELECT 1 FROM ${database}.t', bad_database)).toThrow(TypeError);
  });
});

const data = seed_data();
const week_from_s = seed_week.from_ms / 1000;

/** The states the figures are checked in: the whole week, and a narrow selection off the grid. */
const contexts: { name: string; ctx: FigureContext }[] = [
  {
    name: 'whole week, all stations and parties, EUR, Berlin time, 6 h interval',
    ctx: {
      from_s: week_from_s,
      to_s: seed_week.to_ms / 1000,
      interval_s: 21_600,
      stations: 'all',
      parties: 'all',
      currency: 'EUR',
      tz: 'Europe/Berlin',
    },
  },
  {
    name: 'four and a half days off the hour, two stations (one with a quote and a backslash), two parties, UTC, 3 h interval',
    ctx: {
      from_s: week_from_s + 86_400 + 6 * 3600 + 1800,
      to_s: week_from_s + 5 * 86_400 + 18 * 3600 + 900,
      interval_s: 10_800,
      stations: ['CP-ALPHA', seed_stations[4]!.id],
      parties: ['own', 'DE*ABC'],
      currency: 'EUR',
      tz: 'UTC',
    },
  },
];

function compare_rows(actual: Row[], expected: Row[]): string[] {
  const problems: string[] = [];
  if (actual.length !== expected.length) problems.push(`${actual.length} rows, expected ${expected.length}`);
  for (let i = 0; i < Math.min(actual.length, expected.length); i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    const keys = Object.keys(e);
    if (Object.keys(a).sort().join() !== [...keys].sort().join())
      problems.push(`row ${i}: columns ${Object.keys(a).join()} expected ${keys.join()}`);
    for (const key of keys) {
      const want = e[key]!;
      const got = a[key];
      if (typeof want === 'number') {
        if (!(Math.abs(Number(got) - want) <= tolerance(key)))
          problems.push(`row ${i} ${key}: ${got}, expected ${want}`);
      } else if (String(got) !== want) problems.push(`row ${i} ${key}: ${got}, expected ${want}`);
    }
  }
  return problems;
}

describe.each(store_transports)('dashboard queries on seeded data ($name)', (transport) => {
  let test_store: TestStore;
  beforeAll(async () => {
    test_store = await transport.open();
    await seed_store(test_store.store, data);
  });
  afterAll(async () => {
    await test_store?.dispose();
  });

  function grafana_context(ctx: FigureContext, options: Record<string, string[]>): GrafanaQueryContext {
    return {
      from_ms: ctx.from_s * 1000,
      to_ms: ctx.to_s * 1000,
      interval_s: ctx.interval_s,
      variables: {
        database: { kind: 'identifier', value: test_store.store.database },
        station: { kind: 'values', selected: ctx.stations, options: options.station ?? [] },
        party: { kind: 'values', selected: ctx.parties, options: options.party ?? [] },
        currency: { kind: 'values', selected: [ctx.currency], options: options.currency ?? [] },
        tz: { kind: 'values', selected: [ctx.tz], options: [ctx.tz] },
      },
    };
  }

  /** Variable options as Grafana gets them: by running each query variable's SQL. */
  async function variable_options(ctx: FigureContext): Promise<Record<string, string[]>> {
    const options: Record<string, string[]> = {};
    const context = grafana_context(ctx, {});
    for (const variable of seeded_dashboards
      .flatMap((d) => d.templating.list)
      .filter((v) => v.type === 'query')) {
      const rows = await test_store.store.query<Record<string, string>>(
        expand_query(variable.query, context),
      );
      options[variable.name] = rows.map((r) => String(Object.values(r)[0]));
    }
    return options;
  }

  it('query variables list the stations, parties and currencies in the data', async () => {
    const options = await variable_options(contexts[0]!.ctx);
    expect(options).toEqual(expected_variable_values(data));
  });

  it.each(contexts)('every panel shows the figures computed from the seeded rows: $name', async ({ ctx }) => {
    const options = await variable_options(ctx);
    const expected = expected_figures(data, ctx);
    const checked = new Set<string>();
    const problems: string[] = [];
    for (const dashboard of seeded_dashboards) {
      for (const panel of dashboard.panels) {
        const key = `${dashboard.uid}/${panel.title}`;
        const figures = expected[key];
        expect(figures, `no expected figures for panel ${key}`).toBeDefined();
        checked.add(key);
        for (const target of panel.targets) {
          const sql = expand_query(target.rawSql, grafana_context(ctx, options));
          const rows = await test_store.store.query<Row>(sql);
          const want = figures!();
          expect(want.length, `${key}: the seed must give this panel something to show`).toBeGreaterThan(0);
          for (const problem of compare_rows(rows, want)) problems.push(`${key}: ${problem}`);
        }
      }
    }
    expect(problems).toEqual([]);
    expect([...checked].sort()).toEqual(Object.keys(expected).sort());
  });

  it('a station value crafted to break out of its literal selects nothing', async () => {
    const ctx = { ...contexts[0]!.ctx, stations: ["CP-ALPHA') OR ('1'='1", 'CP-ALPHA\\'] };
    const sessions = dashboards
      .find((d) => d.uid === 'evrate-utilization')!
      .panels.find((p) => p.title === 'Sessions')!.targets[0]!.rawSql;
    const rows = await test_store.store.query<{ sessions: string }>(
      expand_query(sessions, grafana_context(ctx, await variable_options(ctx))),
    );
    expect(rows.map((r) => Number(r.sessions))).toEqual([0]);
  });
});
