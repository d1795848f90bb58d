/**
 * Pricing what-if benchmark (rating/what-if.ts). Prints figures; asserts nothing.
 *
 *   node dist/bench/what-if.js [--sessions 1000000] [--threads 2] [--url http://127.0.0.1:8123] [--data-dir DIR] [--phases]
 *
 * Seeds `--sessions` sessions inside ClickHouse with numbers() (so seeding is not what is timed):
 * each a start, four meter values 15 minutes apart (5 kWh each) and a stop, in the session event
 * log exactly as live rating writes it (the JSON of rating/outputs.ts start_fact / event_fact), and
 * the session's row in session_facts; 2,000 stations, 30 days, Europe/Amsterdam. Then re-prices
 * them all under two candidate tariffs (a time-of-use one with a min_price, a flat one) and prints
 * sessions/s: reading the facts from ClickHouse in chunks, replaying them on `--threads` worker
 * threads, merging the figures. Also the engine alone on one thread, on one chunk, for comparison,
 * and with --phases the reading alone (every chunk's bytes, nothing priced). Prints elapsed,
 * sessions/s, threads, process CPU, peak RSS and the load average; a digest of the results tells
 * whether two builds answered the same.
 * Default store: the embedded engine (chdb) in a temporary directory; `--url` uses a server.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { open_chdb_store } from '../analytics/chdb-store.js';
import { open_http_store } from '../analytics/http-store.js';
import { migrate } from '../analytics/migrations.js';
import { ident, sql_string } from '../analytics/sql.js';
import type { Store } from '../analytics/store.js';
import { default_session_rules, type SessionMeta } from '../rating/session.js';
import type { Tariff } from '../rating/tariff.js';
import { price_what_if, read_packed_chunk, WhatIfPool, type WhatIfSelection } from '../rating/what-if.js';
import { run_packed_task } from '../rating/what-if-worker.js';
import type { OcppEvent } from '../schemas/events.js';

const { values } = parseArgs({
  options: {
    sessions: { type: 'string', default: '1000000' },
    threads: { type: 'string', default: '2' },
    url: { type: 'string' },
    'data-dir': { type: 'string' },
    phases: { type: 'boolean', default: false },
  },
});
const sessions_total = Number(values.sessions);
const threads = Number(values.threads);
const stations = 2000;
const range_s = 30 * 86_400;
const base_ms = Date.UTC(2026, 9, 1);

function load(): string {
  return `load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')} on ${cpus().length} cores`;
}

/**
 * A JSON template as a SQL concat(): `@s:NAME@` inside a string and `"@n:NAME@"` (a number) are
 * replaced by the SQL expression `exprs[NAME]`; everything else is a quoted constant.
 */
function template_sql(template: string, exprs: Record<string, string>): string {
  const parts: string[] = [];
  let last = 0;
  for (const m of template.matchAll(/"@n:(\w+)@"|@s:(\w+)@/g)) {
    parts.push(sql_string(template.slice(last, m.index)));
    parts.push(`toString(${exprs[(m[1] ?? m[2])!]!})`);
    last = m.index + m[0].length;
  }
  parts.push(sql_string(template.slice(last)));
  return `concat(${parts.join(', ')})`;
}

async function seed(store: Store): Promise<void> {
  const db = ident(store.database).text;
  const meta: SessionMeta = {
    session_id: '@s:session_id@',
    charge_point_id: '@s:cp@',
    transaction_id: '@s:tx@',
    connector_id: 1,
    evse_id: 1,
    id_tag: 'TAG',
    payment_method: 'RFID',
    party: '',
    started_at_ms: '@n:t0@' as unknown as number,
    meter_start_wh: 1000,
    tariff_id: 'live',
    tariff_version: 1,
    time_zone: 'Europe/Amsterdam',
  };
  const base = {
    chargePointId: '@s:cp@',
    receivedAtMs: '@n:at@' as unknown as number,
    ocppVersion: '1.6',
    messageId: '@s:mid@',
  };
  const meter_values: OcppEvent = {
    ...base,
    body: 'meterValues',
    meterValues: {
      transactionId: '@s:tx@',
      connectorId: 1,
      meterValues: [
        {
          timestampMs: '@n:at@' as unknown as number,
          sampledValues: [
            {
              value: '@s:wh@',
              context: 'Sample.Periodic',
              format: 'Raw',
              measurand: 'Energy.Active.Import.Register',
              phase: '',
              location: 'Outlet',
              unit: 'Wh',
            },
          ],
        },
      ],
    },
  };
  const stopped: OcppEvent = {
    ...base,
    body: 'stopped',
    stopped: {
      transactionId: '@s:tx@',
      idTag: 'TAG',
      meterStopWh: '@n:wh@' as unknown as number,
      timestampMs: '@n:at@' as unknown as number,
      reason: 'EVDisconnected',
      transactionData: [],
    },
  };
  const exprs = {
    session_id: 'session_id',
    cp: 'cp',
    tx: 'k',
    t0: 't0',
    at: 'at_ms',
    wh: 'wh',
    mid: "concat(toString(k), '-', toString(j))",
  };
  const slice = 250_000;
  for (let from = 0; from < sessions_total; from += slice) {
    const n = Math.min(slice, sessions_total - from);
    const rows = `SELECT number + ${from} AS k, concat('ST-', toString(k % ${stations})) AS cp,
        concat(cp, '/', toString(k)) AS session_id,
        toInt64(${base_ms} + (k * 7919 % ${range_s}) * 1000) AS t0`;
    await store.exec(
      `INSERT INTO ${db}.session_events (session_id, charge_point_id, seq, idx, received_at, received_at_ms, kind, fact)
       SELECT session_id, cp, toUInt64(j + 1), toUInt32(0), toDate(intDiv(at_ms, 1000)), at_ms,
         multiIf(j = 0, 'start', j = 5, 'stopped', 'meterValues'),
         multiIf(j = 0, ${template_sql(JSON.stringify(meta), exprs)},
                 j = 5, ${template_sql(JSON.stringify(stopped), exprs)},
                 ${template_sql(JSON.stringify(meter_values), exprs)})
       FROM (SELECT k, cp, session_id, t0, j, toInt64(t0 + least(j, 4) * 900000) AS at_ms,
               toInt64(1000 + least(j, 4) * 5000) AS wh
             FROM (${rows} FROM numbers(${n})) ARRAY JOIN range(6) AS j)`,
    );
    await store.exec(
      `INSERT INTO ${db}.session_facts (session_id, version, station_id, charge_point_id, evse_id, connector_id,
         started_at, started_at_ms, stopped_at_ms, tariff_id, tariff_version, payment_method, party, currency,
         energy_wh, duration_s, parking_s, total_excl_vat, total_incl_vat, provisional)
       SELECT session_id, toUInt32(1), cp, cp, toUInt32(1), toUInt32(1), toDateTime(intDiv(t0, 1000), 'UTC'), t0,
         t0 + 3600000, 'live', toUInt32(1), if(k % 3 = 0, 'APP', 'RFID'), '', 'EUR', toInt64(20000), toUInt32(3600),
         toUInt32(0), toDecimal64(6, 4), toDecimal64(7.26, 4), toUInt8(0)
       FROM (${rows} FROM numbers(${n}))`,
    );
  }
}

const time_of_use: Tariff = {
  country_code: 'NL',
  party_id: 'EVR',
  id: 'tou',
  currency: 'EUR',
  min_price: { excl_vat: 7, incl_vat: 8.47 },
  elements: [
    {
      price_components: [{ type: 'ENERGY', price: 0.45, vat: 21, step_size: 1 }],
      restrictions: { start_time: '17:00', end_time: '21:00' },
    },
    {
      price_components: [
        { type: 'FLAT', price: 0.35, vat: 21, step_size: 1 },
        { type: 'ENERGY', price: 0.29, vat: 21, step_size: 1 },
        { type: 'TIME', price: 0.6, vat: 21, step_size: 60 },
      ],
    },
  ],
  last_updated: '2026-12-01T00:00:00Z',
};
const flat: Tariff = {
  country_code: 'NL',
  party_id: 'EVR',
  id: 'flat',
  currency: 'EUR',
  elements: [{ price_components: [{ type: 'ENERGY', price: 0.35, vat: 21, step_size: 1 }] }],
  last_updated: '2026-12-01T00:00:00Z',
};

async function main(): Promise<void> {
  const keep = values['data-dir'];
  const dir = keep ?? mkdtempSync(path.join(tmpdir(), 'evrate-bench-what-if-'));
  const store =
    values.url === undefined
      ? await open_chdb_store(dir, 'evrate_bench')
      : await open_http_store({ url: values.url, user: 'default', password: '', database: 'evrate_bench' });
  try {
    await migrate(store);
    const db = ident(store.database).text;
    const [have] = await store.query<{ n: number | string }>(`SELECT count() AS n FROM ${db}.session_facts`);
    if (Number(have?.n ?? 0) !== sessions_total) {
      await store.exec(`TRUNCATE TABLE ${db}.session_facts`);
      await store.exec(`TRUNCATE TABLE ${db}.session_events`);
      const t = performance.now();
      await seed(store);
      console.log(
        `seeded ${sessions_total.toLocaleString('en')} sessions (6 facts each) in ${((performance.now() - t) / 1000).toFixed(1)} s`,
      );
    }
    const selection: WhatIfSelection = { from_ms: base_ms, to_ms: base_ms + range_s * 1000 };
    const request = { name: 'bench', selection, tariffs: [time_of_use, flat] };

    // The engine alone, one thread, one chunk of about 5,000 sessions already read (second pass, warm).
    const engine_stations = Math.max(1, Math.min(stations, Math.round((5000 * stations) / sessions_total)));
    const names = Array.from({ length: engine_stations }, (_, i) => `ST-${i}`);
    let engine_line = '';
    for (let pass = 0; pass < 2; pass++) {
      const bytes = await read_packed_chunk(store, selection, names);
      const t_engine = performance.now();
      const cpu_engine = process.cpuUsage();
      const { sessions } = run_packed_task({
        candidates: request.tariffs,
        rules: default_session_rules,
        changes_max: 50,
        ...bytes,
      });
      const engine_s = (performance.now() - t_engine) / 1000;
      const used = process.cpuUsage(cpu_engine);
      engine_line =
        `engine alone (1 thread, 2 candidates, decoding included): ${sessions} sessions in ${engine_s.toFixed(3)} s = ` +
        `${Math.round(sessions / engine_s).toLocaleString('en')} sessions/s, ` +
        `${((used.user + used.system) / sessions).toFixed(0)} us CPU a session`;
    }
    console.log(engine_line);
    if (values.phases) {
      // Reading alone: every chunk's bytes from ClickHouse, nothing priced.
      const t_read = performance.now();
      const cpu_read = process.cpuUsage();
      let bytes_read = 0;
      for (let i = 0; i < stations; i += 10) {
        const part = Array.from({ length: Math.min(10, stations - i) }, (_, k) => `ST-${i + k}`);
        const b = await read_packed_chunk(store, selection, part);
        bytes_read += b.sessions_bytes.byteLength + b.events_bytes.byteLength;
      }
      const used = process.cpuUsage(cpu_read);
      console.log(
        `reading alone: ${(bytes_read / 1e6).toFixed(0)} MB RowBinary in ${((performance.now() - t_read) / 1000).toFixed(2)} s, ` +
          `process CPU ${((used.user + used.system) / 1e6).toFixed(1)} s`,
      );
    }

    const pool = new WhatIfPool(threads);
    try {
      console.log(`  /proc/loadavg before: ${readFileSync('/proc/loadavg', 'utf8').trim()}`);
      const t0 = performance.now();
      const cpu0 = process.cpuUsage();
      const { sessions_total: priced, totals } = await price_what_if(
        { store, pool, rules: default_session_rules },
        request,
      );
      const elapsed_s = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      const total = totals[0]?.figures.get(JSON.stringify(['total', '', 'EUR']));
      console.log(
        `what-if: ${priced.toLocaleString('en')} sessions x 2 candidates in ${elapsed_s.toFixed(2)} s = ` +
          `${Math.round(priced / elapsed_s).toLocaleString('en')} sessions/s (threads ${threads}; ` +
          `process CPU ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s, all threads and the embedded engine; ` +
          `peak RSS ${Math.round(process.resourceUsage().maxRSS / 1024)} MB; ${load()})`,
      );
      console.log(`  /proc/loadavg after: ${readFileSync('/proc/loadavg', 'utf8').trim()}`);
      console.log(
        `  candidate tou: ${total?.sessions ?? 0} sessions, ${total?.min_price_sessions ?? 0} at min_price, failed ${totals[0]?.failed ?? 0}`,
      );
      // Every figure and change of every candidate, for comparing two builds' answers.
      const digest = createHash('sha256');
      for (const t of totals) {
        for (const key of [...t.figures.keys()].sort())
          digest.update(
            `${key}=${JSON.stringify(t.figures.get(key), (_, v) => (typeof v === 'bigint' ? `${v}` : v))}\n`,
          );
        digest.update(JSON.stringify(t.changes, (_, v) => (typeof v === 'bigint' ? `${v}` : v)));
        digest.update(`${t.other_currency}/${t.failed}\n`);
      }
      console.log(`  results digest ${digest.digest('hex').slice(0, 16)}`);
    } finally {
      await pool.close();
    }
  } finally {
    await store.close();
    if (keep === undefined) rmSync(dir, { recursive: true, force: true });
  }
}

await main();
