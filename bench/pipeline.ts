/**
 * The streaming rating service alone, end to end from JetStream to ClickHouse: simulated chargers'
 * events are published to the event stream exactly as ingest publishes them (protobuf batches per
 * partition, a few milliseconds of group commit), and one rating process (ROLES=rating,api) prices
 * them into a private ClickHouse server. Prints figures; asserts nothing but honesty.
 *
 *   node dist/bench/pipeline.js [--chargers 2000] [--seconds 30] [--interval-ms 1000] [--samples 10]
 *
 * Each charger runs sessions back to back: a start, `--samples` MeterValues one `--interval-ms`
 * apart (energy and power), a stop. It reports
 * - meter values/s rated and stored (sampled values in meter_values over the run until the last
 *   one is stored), and whether every value sent is stored and every session stopped is rated;
 * - the delay from a meter value's arrival to its running cost being published on NATS;
 * - the delay from a stop's arrival to the rated session being queryable in ClickHouse (polled
 *   every 100 ms, so figures are at that resolution).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { open_http_store } from '../analytics/http-store.js';
import { create_logger } from '../core/log.js';
import { connect_nats } from '../core/nats.js';
import { start_nats_server } from '../core/nats-server.js';
import { group_by_partition, partition_subject } from '../core/partitions.js';
import { encode_event_batch, type OcppEvent } from '../schemas/events.js';
import { start_clickhouse_server } from '../test/helpers/clickhouse-server.js';
import { energy_and_power } from '../test/helpers/events.js';
import { start_evrate } from '../test/helpers/process.js';

const { values } = parseArgs({
  options: {
    chargers: { type: 'string', default: '2000' },
    seconds: { type: 'string', default: '30' },
    'interval-ms': { type: 'string', default: '1000' },
    samples: { type: 'string', default: '10' },
    partitions: { type: 'string', default: '8' },
  },
});
const chargers = Number(values.chargers);
const seconds = Number(values.seconds);
const interval_ms = Number(values['interval-ms']);
const samples_per_session = Number(values.samples);
const partitions = Number(values.partitions);
for (const [name, n] of Object.entries({ chargers, seconds, interval_ms, samples_per_session, partitions })) {
  if (!Number.isInteger(n) || n < 1) {
    process.stderr.write(`--${name.replaceAll('_', '-')}: must be a positive integer\n`);
    process.exit(2);
  }
}

const linger_ms = 5;
const batch_events_max = 1000;
const sampled_values_per_meter_value = 2;

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function summary(delays_ms: number[]): Record<string, number> {
  const sorted = [...delays_ms].sort((a, b) => a - b);
  return {
    count: sorted.length,
    p50_ms: Math.round(percentile(sorted, 50)),
    p90_ms: Math.round(percentile(sorted, 90)),
    p99_ms: Math.round(percentile(sorted, 99)),
    max_ms: Math.round(percentile(sorted, 100)),
  };
}

const dir = mkdtempSync(path.join(tmpdir(), 'evrate-pipeline-'));
const nats_server = await start_nats_server({ store_dir: path.join(dir, 'nats'), port: 0 });
const clickhouse = await start_clickhouse_server();
const rating = await start_evrate({
  ROLES: 'rating,api',
  NODE_ID: 'bench-rating',
  DATA_DIR: path.join(dir, 'rating'),
  NATS_URL: nats_server.url,
  CLICKHOUSE_URL: clickhouse.url,
  RATING_PARTITIONS: String(partitions),
  LOG_LEVEL: 'warn',
});
const nats = await connect_nats(
  { nats_stream: 'EVRATE_EVENTS', nats_subject_prefix: 'evrate', node_id: 'bench-publisher' },
  nats_server.url,
  create_logger('warn'),
);
const store = await open_http_store({
  url: clickhouse.url,
  user: 'default',
  password: '',
  database: 'evrate',
});

const cost_delays_ms: number[] = [];
nats.nc.subscribe('evrate.cost.*', {
  callback: (error, message) => {
    if (error !== null) return;
    const cost = message.json<{ at_ms: number }>();
    cost_delays_ms.push(Date.now() - cost.at_ms);
  },
});

// Group commit as ingest does it: events wait a few ms and share one JetStream message.
let buffer: OcppEvent[] = [];
let sequence = 0;
const in_flight = new Set<Promise<unknown>>();
function flush(): void {
  const by_partition = group_by_partition(buffer, (e) => e.chargePointId, partitions);
  buffer = [];
  for (const [p, events] of by_partition) {
    for (let i = 0; i < events.length; i += batch_events_max) {
      sequence++;
      const sent = nats.js
        .publish(
          partition_subject(nats.events_subject, p),
          encode_event_batch({ nodeId: 'bench', sequence, events: events.slice(i, i + batch_events_max) }),
          { msgID: `bench.${sequence}` },
        )
        .finally(() => in_flight.delete(sent));
      in_flight.add(sent);
    }
  }
}

interface Charger {
  id: string;
  session: number;
  sample: number;
  energy_wh: number;
  next_ms: number;
}
const fleet: Charger[] = Array.from({ length: chargers }, (_, c) => ({
  id: `BENCH-${String(c).padStart(6, '0')}`,
  session: 0,
  sample: -1,
  energy_wh: 0,
  // Spread the chargers over the interval so that the load is even.
  next_ms: 0,
}));
const stopped_at = new Map<string, number>();
let meter_values_sent = 0;
let sessions_stopped = 0;

function event_of(charger: Charger, now: number, body: Record<string, unknown>): OcppEvent {
  return {
    chargePointId: charger.id,
    receivedAtMs: now,
    ocppVersion: '1.6',
    messageId: `${charger.session}-${charger.sample}`,
    ...body,
  } as OcppEvent;
}

function tick(now: number): void {
  for (const charger of fleet) {
    if (now < charger.next_ms) continue;
    const transaction_id = `${charger.id}-${charger.session}`;
    if (charger.sample < 0) {
      buffer.push(
        event_of(charger, now, {
          body: 'started',
          started: {
            transactionId: transaction_id,
            connectorId: 1,
            idTag: 'BENCH',
            meterStartWh: charger.energy_wh,
            timestampMs: now,
            reservationId: 0,
            evseId: 0,
          },
        }),
      );
    } else if (charger.sample < samples_per_session) {
      charger.energy_wh += 3 + (charger.sample % 5);
      meter_values_sent++;
      buffer.push(
        event_of(charger, now, {
          body: 'meterValues',
          meterValues: {
            transactionId: transaction_id,
            connectorId: 1,
            meterValues: [energy_and_power(now, charger.energy_wh, 11000)],
          },
        }),
      );
    } else {
      buffer.push(
        event_of(charger, now, {
          body: 'stopped',
          stopped: {
            transactionId: transaction_id,
            idTag: 'BENCH',
            meterStopWh: charger.energy_wh,
            timestampMs: now,
            reason: 'EVDisconnected',
            transactionData: [],
          },
        }),
      );
      stopped_at.set(`${charger.id}/${transaction_id}`, now);
      sessions_stopped++;
      charger.session++;
      charger.sample = -2;
    }
    charger.sample++;
    charger.next_ms = now + interval_ms;
    if (buffer.length >= batch_events_max) flush();
  }
}

// Rated sessions become queryable: poll ClickHouse for sessions stopped in the run.
const queryable_delays_ms: number[] = [];
let polling = true;
const started_ms = Date.now();
let run_end_ms = started_ms + seconds * 1000;
const poller = (async () => {
  while (polling || stopped_at.size > 0) {
    const rows = await store.query<{ session_id: string }>(
      `SELECT session_id FROM evrate.rated_sessions WHERE stopped_at_ms >= ${started_ms}`,
    );
    const seen_ms = Date.now();
    for (const row of rows) {
      const at = stopped_at.get(row.session_id);
      if (at === undefined) continue;
      queryable_delays_ms.push(seen_ms - at);
      stopped_at.delete(row.session_id);
    }
    if (!polling && Date.now() - run_end_ms > 120_000) break;
    await new Promise((r) => setTimeout(r, 100));
  }
})();

// Chargers start spread over the first interval.
fleet.forEach((charger, i) => {
  charger.next_ms = started_ms + Math.floor((i * interval_ms) / chargers);
});
let last_report_ms = started_ms;
while (Date.now() < run_end_ms) {
  const now = Date.now();
  tick(now);
  flush();
  if (now - last_report_ms >= 5000) {
    last_report_ms = now;
    process.stderr.write(
      `  ${Math.round((now - started_ms) / 1000)} s: ${meter_values_sent} meter values sent, ${cost_delays_ms.length} running costs seen, ${queryable_delays_ms.length} sessions queryable\n`,
    );
  }
  await new Promise((r) => setTimeout(r, linger_ms));
}
flush();
await Promise.all(in_flight);
run_end_ms = Date.now();

// Wait until every sampled value sent is stored (or two minutes pass).
const values_expected = meter_values_sent * sampled_values_per_meter_value;
let values_stored = 0;
let drained_ms = Date.now();
for (const deadline = Date.now() + 120_000; Date.now() < deadline; ) {
  const [row] = await store.query<{ n: string }>('SELECT toString(count()) AS n FROM evrate.meter_values');
  values_stored = Number(row?.n ?? 0);
  drained_ms = Date.now();
  if (values_stored >= values_expected) break;
  await new Promise((r) => setTimeout(r, 200));
}
polling = false;
await poller;
const [exact] = await store.query<{ n: string }>(
  'SELECT toString(count()) AS n FROM evrate.meter_values FINAL',
);
const [rated] = await store.query<{ n: string }>(
  `SELECT toString(count()) AS n FROM evrate.rated_sessions FINAL WHERE stopped_at_ms >= ${started_ms}`,
);

const result = {
  chargers,
  seconds,
  interval_ms,
  samples_per_session,
  partitions,
  meter_values_sent,
  sampled_values_sent: values_expected,
  sampled_values_stored: Number(exact?.n ?? 0),
  sessions_stopped,
  sessions_rated: Number(rated?.n ?? 0),
  lossless: Number(exact?.n ?? 0) === values_expected && Number(rated?.n ?? 0) === sessions_stopped,
  offered_meter_values_per_s: Math.round(
    (chargers * 1000 * samples_per_session) / (interval_ms * (samples_per_session + 2)),
  ),
  meter_values_per_s_stored: Math.round(meter_values_sent / ((drained_ms - started_ms) / 1000)),
  sampled_values_per_s_stored: Math.round(values_expected / ((drained_ms - started_ms) / 1000)),
  drain_after_run_s: Number(((drained_ms - run_end_ms) / 1000).toFixed(1)),
  running_cost_delay: summary(cost_delays_ms),
  stop_to_queryable_delay: { ...summary(queryable_delays_ms), resolution_ms: 100 },
};
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
if (!result.lossless) {
  process.stderr.write(
    `the rating process said (last lines):\n${rating.output().split('\n').slice(-30).join('\n')}\n`,
  );
}

await store.close();
await nats.close();
await rating.kill('SIGTERM');
await clickhouse.dispose();
await nats_server.stop();
rmSync(dir, { recursive: true, force: true });
process.exit(result.lossless ? 0 : 1);
