/**
 * Analytics benchmark. Prints figures; asserts nothing.
 *
 *   node dist/bench/analytics.js [--raw 10000000] [--sessions 1000000] [--sink-rows 1000000]
 *                                [--runs 5] [--url http://127.0.0.1:8123] [--sink-only] [--data-dir DIR]
 *
 * 1. Sink: meter value rows (JSONEachRow, as the rating service writes them) through the batched
 *    sink, several writers at once; rows/s until every writer was answered.
 * 2. Seed inside ClickHouse with numbers(): `--raw` meter values, `--sessions` rated sessions
 *    (10 % of them re-rated into a second version) over 90 days and 20,000 stations of 2 EVSEs,
 *    and 4 connector status changes per session. Sessions go through rated_sessions, so the
 *    session_facts rollup is filled by its materialized view as in production.
 * 3. Times each analytics query over the whole 90 days and for one station: the fastest and the
 *    median of `--runs` runs after one warm-up, and the median CPU time of this process (with
 *    chdb, the engine's too: a figure that other work on the machine stretches less). Three states of the rollups: as inserted (or as
 *    found in `--data-dir`), merged by OPTIMIZE, and merged plus 100 small live inserts (the
 *    state a running store is in between background merges).
 * Default store: the embedded engine (chdb) in a temporary directory; `--url` uses a server.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { open_chdb_store } from '../analytics/chdb-store.js';
import { session_distributions } from '../analytics/distributions.js';
import { open_http_store } from '../analytics/http-store.js';
import { migrate } from '../analytics/migrations.js';
import { payment_methods } from '../analytics/payment-methods.js';
import { peak_hours } from '../analytics/peak-hours.js';
import type { ZonedFilter } from '../analytics/query-filter.js';
import { revenue } from '../analytics/revenue.js';
import { Sink } from '../analytics/sink.js';
import type { Store } from '../analytics/store.js';
import { underutilized_stations } from '../analytics/underutilized.js';
import { utilization } from '../analytics/utilization.js';

const { values } = parseArgs({
  options: {
    raw: { type: 'string', default: '10000000' },
    sessions: { type: 'string', default: '1000000' },
    'sink-rows': { type: 'string', default: '1000000' },
    runs: { type: 'string', default: '5' },
    url: { type: 'string' },
    /** Only the sink figure (e.g. against a server with --url). */
    'sink-only': { type: 'boolean', default: false },
    /** Keep the embedded store here, and reuse its seeded data on the next run. */
    'data-dir': { type: 'string' },
  },
});
const raw_total = Number(values.raw);
const sessions_total = Number(values.sessions);
const sink_rows_total = Number(values['sink-rows']);
const runs = Number(values.runs);
const stations = 20_000;
/** Raw meter values per seeding INSERT: about 30 s on ClickHouse 18.16 here. */
const raw_slice_rows = 5_000_000;
const range_s = 90 * 86_400;
const base_s = Date.UTC(2026, 0, 1) / 1000;

/** Other work on the machine skews every figure: print what it was. */
function load(): string {
  return `load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')} on ${cpus().length} cores`;
}

function ms_since(t0: number): number {
  return performance.now() - t0;
}

async function open(): Promise<{ store: Store; dispose(): Promise<void> }> {
  if (values.url !== undefined) {
    const store = await open_http_store({
      url: values.url,
      user: 'default',
      password: '',
      database: 'evrate_bench',
    });
    return { store, dispose: () => store.close() };
  }
  const keep = values['data-dir'];
  const dir = keep ?? mkdtempSync(path.join(tmpdir(), 'evrate-bench-analytics-'));
  const store = await open_chdb_store(dir, 'evrate_bench');
  return {
    store,
    async dispose() {
      await store.close();
      if (keep === undefined) rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function bench_sink(store: Store): Promise<void> {
  const rows: string[] = [];
  for (let i = 0; i < sink_rows_total; i++) {
    const ms = base_s * 1000 + i * 1000;
    rows.push(
      JSON.stringify({
        charge_point_id: `SINK${i % 1000}`,
        connector_id: 1,
        transaction_id: String(Math.floor(i / 1000)),
        timestamp: Math.floor(ms / 1000),
        timestamp_ms: ms,
        received_at_ms: ms + 150,
        measurand: 'Energy.Active.Import.Register',
        phase: '',
        location: 'Outlet',
        unit: 'Wh',
        context: 'Sample.Periodic',
        format: 'Raw',
        value: String(1000 + i),
      }),
    );
  }
  const sink = new Sink(store, { flush_rows_max: 10_000, flush_interval_ms: 50 });
  const writers = 32;
  const per_write = 1000; // a rating batch's worth of sampled values
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      for (let start = w * per_write; start < rows.length; start += writers * per_write) {
        await sink.write('meter_values', rows.slice(start, start + per_write));
      }
    }),
  );
  const elapsed_ms = ms_since(t0);
  await sink.close();
  const bytes = rows.reduce((n, r) => n + r.length + 1, 0);
  console.log(
    `sink: ${sink_rows_total.toLocaleString('en')} meter value rows in ${(elapsed_ms / 1000).toFixed(2)} s = ` +
      `${Math.round(sink_rows_total / (elapsed_ms / 1000)).toLocaleString('en')} rows/s ` +
      `(${(bytes / 1e6 / (elapsed_ms / 1000)).toFixed(1)} MB/s of JSON, ${sink.stats.inserts} inserts, ` +
      `${writers} writers of ${per_write} rows, flush_rows_max 10000)`,
  );
}

/** Expressions shared by the three seed statements so that they agree on each session. */
function session_expressions(i: string): Record<string, string> {
  return {
    station: `concat('CP', toString(${i} % ${stations}))`,
    evse: `toUInt32(1 + intDiv(${i}, ${stations}) % 2)`,
    start_s: `toUInt32(${base_s} + intDiv(${i} * ${range_s}, ${sessions_total}))`,
    duration_s: `toUInt32(600 + (${i} * 7919) % 10800)`,
    parking_s: `toUInt32(((${i} * 7919) % 10800) % 900)`,
    energy_wh: `toInt64(1000 + (${i} * 104729) % 60000)`,
  };
}

async function seed(store: Store): Promise<void> {
  const db = store.database;
  const s = session_expressions('i');
  let t0 = performance.now();
  // Ten sampled values a minute apart per session, the remaining ones spread the same way. In
  // slices, so that each statement ends within the HTTP client's timeout on a slow server.
  for (let start = 0; start < raw_total; start += raw_slice_rows) {
    const n = Math.min(raw_slice_rows, raw_total - start);
    await store.exec(
      `INSERT INTO ${db}.meter_values (charge_point_id, connector_id, evse_id, transaction_id, timestamp,
       timestamp_ms, received_at_ms, measurand, phase, location, unit, context, format, value, signed_data)
     SELECT ${s.station}, ${s.evse}, ${s.evse}, toString(i),
       toDateTime(${s.start_s} + k * 60, 'UTC'), toInt64(${s.start_s} + k * 60) * 1000,
       toInt64(${s.start_s} + k * 60) * 1000 + 150, 'Energy.Active.Import.Register', '', 'Outlet', 'Wh',
       'Sample.Periodic', 'Raw', toString(k * 1000), ''
     FROM (SELECT number % ${sessions_total} AS i, intDiv(number, ${sessions_total}) AS k
       FROM (SELECT number + ${start} AS number FROM numbers(${n})))`,
    );
  }
  console.log(
    `seed: ${raw_total.toLocaleString('en')} raw meter values in ${(ms_since(t0) / 1000).toFixed(1)} s`,
  );
  t0 = performance.now();
  const session_select = (version: string, n: number, every: number) =>
    `SELECT concat(${s.station}, '/', toString(i)) AS session_id, ${version} AS version, ${s.station},
       ${s.evse}, toString(i), 'TAG', toDateTime(${s.start_s}, 'UTC'),
       toDateTime(${s.start_s} + ${s.duration_s}, 'UTC'), toInt64(${s.start_s}) * 1000,
       toInt64(${s.start_s} + ${s.duration_s}) * 1000, 0, ${s.energy_wh}, ${s.energy_wh}, 'Local',
       concat('T', toString(i % 5)), 1, if(i % 50 = 0, 'CHF', 'EUR'),
       toDecimal64(intDiv(${s.energy_wh} * (30 + ${version}), 1000), 4) / 100,
       toDecimal64(intDiv(${s.energy_wh} * (36 + ${version}), 1000), 4) / 100, '{}',
       toInt64(${s.start_s} + ${s.duration_s}) * 1000, ${s.evse}, ${s.station},
       ['RFID', 'APP', 'QR', 'AD_HOC', 'ROAMING'][i % 5 + 1], if(i % 3 = 0, 'DE*ABC', ''), 'UTC',
       ${s.duration_s}, ${s.parking_s}, 0
     FROM (SELECT number * ${every} AS i FROM numbers(${n}))`;
  const session_columns = `(session_id, version, charge_point_id, connector_id, transaction_id, id_tag,
     started_at, stopped_at, started_at_ms, stopped_at_ms, meter_start_wh, meter_stop_wh, energy_wh,
     stop_reason, tariff_id, tariff_version, currency, total_excl_vat, total_incl_vat, breakdown,
     rated_at_ms, evse_id, station_id, payment_method, party, time_zone, duration_s, parking_s, provisional)`;
  await store.exec(
    `INSERT INTO ${db}.rated_sessions ${session_columns} ${session_select('1', sessions_total, 1)}`,
  );
  await store.exec(
    `INSERT INTO ${db}.rated_sessions ${session_columns} ${session_select('2', Math.floor(sessions_total / 10), 10)}`,
  );
  console.log(
    `seed: ${sessions_total.toLocaleString('en')} sessions (+${Math.floor(sessions_total / 10).toLocaleString('en')} re-rated versions) in ${(ms_since(t0) / 1000).toFixed(1)} s`,
  );
  t0 = performance.now();
  await store.exec(
    `INSERT INTO ${db}.connector_status (charge_point_id, evse_id, connector_id, status, error_code, timestamp,
       timestamp_ms, received_at_ms)
     SELECT ${s.station}, ${s.evse}, 1, ['Preparing', 'Charging', 'SuspendedEV', 'Available'][k + 1], 'NoError',
       toDateTime(t, 'UTC'), toInt64(t) * 1000, toInt64(t) * 1000
     FROM (
       SELECT i, k, [toInt64(${s.start_s}), toInt64(${s.start_s} + 60),
         toInt64(${s.start_s} + ${s.duration_s} - ${s.parking_s}), toInt64(${s.start_s} + ${s.duration_s})][k + 1] AS t
       FROM (SELECT intDiv(number, 4) AS i, number % 4 AS k FROM numbers(${sessions_total * 4}))
     )`,
  );
  console.log(
    `seed: ${(sessions_total * 4).toLocaleString('en')} connector status changes in ${(ms_since(t0) / 1000).toFixed(1)} s`,
  );
}

/** Every rollup the analytics queries read; OPTIMIZE merges these. */
const rollup_tables = ['session_facts', 'connector_changes_monthly'];

/** Small inserts as a live system makes them between two background merges. */
const live_inserts = 100;

/**
 * The state a live store is in most of the time: merged history plus a hundred small parts
 * written since the last merge. Each insert redelivers a slice of the last day's sessions and
 * statuses (copies, so every figure stays what it was) as the rating service's batches would.
 */
async function live_writes(store: Store): Promise<void> {
  const db = store.database;
  const day_start = datetime_sql(base_s + range_s - 86_400);
  for (let k = 0; k < live_inserts; k++) {
    await store.exec(
      `INSERT INTO ${db}.rated_sessions SELECT * FROM ${db}.rated_sessions
       WHERE stopped_at >= ${day_start} AND cityHash64(session_id) % ${live_inserts} = ${k}`,
    );
    await store.exec(
      `INSERT INTO ${db}.connector_status SELECT * FROM ${db}.connector_status
       WHERE timestamp >= ${day_start} AND cityHash64(charge_point_id) % ${live_inserts} = ${k}`,
    );
  }
}

function datetime_sql(s: number): string {
  return `toDateTime(${s}, 'UTC')`;
}

/**
 * Wall time, and the CPU time of this process (on chdb the engine's threads too, so it shows the
 * work a query takes when other work on the machine stretches its wall time).
 */
async function time_query(name: string, run: () => Promise<unknown>): Promise<void> {
  await run();
  const times: number[] = [];
  const cpu_times: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    await run();
    const cpu = process.cpuUsage(cpu0);
    times.push(ms_since(t0));
    cpu_times.push((cpu.user + cpu.system) / 1000);
  }
  const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const wall_median = median(times);
  console.log(
    `query ${name.padEnd(40)} min ${times[0]!.toFixed(0).padStart(6)} ms   median ${wall_median.toFixed(0).padStart(6)} ms` +
      `   cpu median ${median(cpu_times).toFixed(0).padStart(6)} ms`,
  );
}

async function main(): Promise<void> {
  const { store, dispose } = await open();
  try {
    await migrate(store);
    console.log(`store: ${store.transport} ${store.server_version}; ${load()}`);
    const [seeded] = await store.query<{ n: string }>(
      `SELECT count() AS n FROM ${store.database}.session_facts`,
    );
    if (values['sink-only']) {
      await bench_sink(store);
      return;
    }
    if (Number(seeded?.n ?? 0) === 0) {
      await bench_sink(store);
      await store.exec(`TRUNCATE TABLE ${store.database}.meter_values`);
      await seed(store);
    } else {
      console.log('reusing the seeded data (no sink run, no seeding)');
    }
    const [counts] = await store.query<{ raw: string; facts: string; statuses: string }>(
      `SELECT (SELECT count() FROM ${store.database}.meter_values) AS raw,
         (SELECT count() FROM ${store.database}.session_facts) AS facts,
         (SELECT count() FROM ${store.database}.connector_status) AS statuses`,
    );
    console.log(
      `rows: meter_values ${counts?.raw}, session_facts ${counts?.facts}, connector_status ${counts?.statuses}`,
    );
    const all: ZonedFilter = {
      from_ms: base_s * 1000,
      to_ms: (base_s + range_s) * 1000,
      time_zone: 'Europe/Berlin',
    };
    const one: ZonedFilter = { ...all, station_id: 'CP4242' };
    const cases = [
      ['90 days, all stations', all],
      ['90 days, one station', one],
    ] as const;
    const time_all = async (when: string) => {
      for (const [label, filter] of cases) {
        console.log(`-- ${label}, ${when}; ${load()}`);
        await time_query('utilization', () => utilization(store, filter));
        await time_query('underutilized (threshold 10 %)', () =>
          underutilized_stations(store, { ...filter, threshold_percent: 10, limit: 100 }),
        );
        await time_query('peak-hours', () => peak_hours(store, filter));
        await time_query('revenue', () => revenue(store, filter));
        await time_query('payment-methods', () => payment_methods(store, filter));
        await time_query('session-distributions', () => session_distributions(store, filter));
      }
    };
    await time_all(Number(seeded?.n ?? 0) === 0 ? 'parts as inserted' : 'parts as found');
    // What background merges reach in a while anyway; FINAL then has little left to collapse.
    let t0 = performance.now();
    for (const table of rollup_tables) {
      await store.exec(`OPTIMIZE TABLE ${store.database}.${table} FINAL`);
    }
    console.log(`optimize: rollups merged in ${(ms_since(t0) / 1000).toFixed(1)} s`);
    await time_all('rollups merged');
    t0 = performance.now();
    await live_writes(store);
    console.log(
      `live: ${live_inserts} redelivered batches of the last day's sessions and statuses in ${(ms_since(t0) / 1000).toFixed(1)} s`,
    );
    await time_all(`rollups merged + ${live_inserts} small live inserts`);
  } finally {
    await dispose();
  }
}

await main();
