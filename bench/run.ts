/**
 * The benchmark harness: `npm run bench -- --scenario NAME [options]`.
 *
 *   throughput   highest sustained rate of meter values from charger to stored row, no loss
 *   latency      fixed offered rate: charger-observed answer time and end-to-end freshness
 *   connections  concurrent chargers one ingest process holds, memory per connection
 *   rating       the rating engine alone (bench/rating.ts)
 *   baseline     the throughput load against evrate and against a plain ocpp-rpc server
 *   floor        the latency load against a server that only answers: what the load generator,
 *                loopback and machine add to every answer time
 *
 * Writes bench/results/<scenario>-<time>/{result.json,summary.md,chart.svg}; exits 1 when the
 * honesty check fails (what chargers were answered for is not all stored and priced).
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { write_report } from './report.js';
import { type BenchResult, type ScenarioName, scenario_names } from './result.js';
import { baseline } from './scenarios/baseline.js';
import type { BenchOptions } from './scenarios/common.js';
import { floor } from './scenarios/floor.js';
import { rating } from './scenarios/rating.js';
import { connections, latency, type ScenarioOutcome, throughput } from './scenarios/stack-scenarios.js';

const usage = `usage: npm run bench -- --scenario ${scenario_names.join('|')} [options]

  --seconds N                 load duration (default 30)
  --chargers N                simulated charge points (default 500; connections: 5000)
  --agents N                  load generator processes (default 1; more when chargers need them)
  --samples N                 sampled values (measurands) per meter value, 1..5 (default 4)
  --rate N                    latency, floor: offered meter values per second (default 5000)
  --ocpp201-share F           fraction of chargers on OCPP 2.0.1 (default 0.5)
  --sim-interval-s K          simulated seconds between meter values (default 60)
  --ramp-s N                  connection ramp-up (default: a quarter of --seconds, at most 10)
  --reconnect-per-session F   probability of a dropped connection in a session (default 0.05)
  --offline-per-session F     probability of an offline burst in a session (default 0.02)
  --session-meter-values-max N  bound on meter values of one session (default 240)
  --heartbeat-s N             connections: seconds between heartbeats (default 30)
  --sessions N                rating: sessions to price (default 20000)
  --settle-s N                time allowed for the pipeline to store everything (default 120)
  --drain-s N                 time allowed for chargers to finish their sessions (default 20)
  --tick-ms N                 progress and sampling interval (default 1000; latency 250)
  --stack full|ingest         full (default): charger to ClickHouse row, with rating; ingest:
                              ingest and NATS alone, counted back from the JetStream stream
                              (accepted and durable); throughput, latency, connections, baseline
  --clickhouse-url URL        use this ClickHouse server (a fresh database) instead of a private one
  --seed N                    simulator seed (default 1)
  --out DIR                   write the results here instead of bench/results/<scenario>-<time>
  --drop-stored-charger ID    self-test: delete that charger's stored meter values before the
                              honesty check, which must then report FAIL
`;

function number_option(
  values: Record<string, string | boolean | undefined>,
  name: string,
  fallback: number,
): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0)
    throw new Error(`--${name} must be a non-negative number, got ${String(raw)}`);
  return n;
}

function stack_option(raw: string | boolean | undefined): BenchOptions['stack'] {
  if (raw === undefined || raw === 'full') return 'full';
  if (raw === 'ingest') return 'ingest';
  throw new Error(`--stack must be full or ingest, got ${String(raw)}`);
}

function open_files_max(): number {
  try {
    return Number(execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim());
  } catch {
    return Number.NaN;
  }
}

async function main(): Promise<number> {
  const names = [
    'scenario',
    'seconds',
    'chargers',
    'agents',
    'samples',
    'rate',
    'ocpp201-share',
    'sim-interval-s',
    'ramp-s',
    'reconnect-per-session',
    'offline-per-session',
    'session-meter-values-max',
    'heartbeat-s',
    'sessions',
    'settle-s',
    'drain-s',
    'tick-ms',
    'clickhouse-url',
    'stack',
    'seed',
    'out',
    'drop-stored-charger',
  ];
  const { values } = parseArgs({
    options: {
      ...Object.fromEntries(names.map((n) => [n, { type: 'string' as const }])),
      help: { type: 'boolean' },
    },
    strict: true,
  }) as { values: Record<string, string | boolean | undefined> };
  const scenario = values.scenario as ScenarioName | undefined;
  if (values.help === true || scenario === undefined || !scenario_names.includes(scenario)) {
    process.stdout.write(usage);
    return values.help === true ? 0 : 2;
  }
  const seconds = number_option(values, 'seconds', 30);
  const o: BenchOptions = {
    seconds,
    chargers: Math.floor(number_option(values, 'chargers', scenario === 'connections' ? 5000 : 500)),
    agents: Math.max(1, Math.floor(number_option(values, 'agents', 1))),
    samples: Math.floor(number_option(values, 'samples', 4)),
    rate: number_option(values, 'rate', 5000),
    ocpp201_share: number_option(values, 'ocpp201-share', 0.5),
    sim_interval_s: number_option(values, 'sim-interval-s', 60),
    ramp_s: number_option(values, 'ramp-s', Math.min(10, seconds / 4)),
    reconnect_per_session: number_option(values, 'reconnect-per-session', 0.05),
    offline_per_session: number_option(values, 'offline-per-session', 0.02),
    session_meter_values_max: Math.floor(number_option(values, 'session-meter-values-max', 240)),
    heartbeat_s: number_option(values, 'heartbeat-s', 30),
    sessions: Math.floor(number_option(values, 'sessions', 20_000)),
    settle_s: number_option(values, 'settle-s', 120),
    drain_s: number_option(values, 'drain-s', 20),
    tick_ms: number_option(values, 'tick-ms', scenario === 'latency' || scenario === 'floor' ? 250 : 1000),
    seed: Math.floor(number_option(values, 'seed', 1)),
    clickhouse_url: values['clickhouse-url'] as string | undefined,
    stack: stack_option(values.stack),
    drop_stored_charger: values['drop-stored-charger'] as string | undefined,
  };
  const started_at = new Date().toISOString();
  const load_average_1m_at_start = os.loadavg()[0]!;
  process.stdout.write(`evrate bench: ${scenario} (${JSON.stringify(o)})\n`);
  const run: Record<ScenarioName, (o: BenchOptions) => Promise<ScenarioOutcome>> = {
    throughput,
    latency,
    connections,
    rating,
    baseline,
    floor,
  };
  const outcome = await run[scenario](o);
  const cpus = os.cpus();
  const result: BenchResult = {
    scenario,
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`,
    started_at,
    finished_at: new Date().toISOString(),
    machine: {
      cpus: cpus.length,
      cpu_model: cpus[0]?.model.trim() ?? 'unknown',
      memory_gb: Math.round(os.totalmem() / 2 ** 30),
      node: process.version,
      open_files_max: open_files_max(),
      load_average_1m_at_start: Math.round(load_average_1m_at_start * 100) / 100,
    },
    options: Object.fromEntries(
      Object.entries(o).filter((e): e is [string, number | string] => e[1] !== undefined),
    ),
    ...outcome,
  };
  const dir = write_report(result, values.out as string | undefined);
  process.stdout.write(
    `\n${JSON.stringify({ ok: result.ok, figures: result.figures, honesty: result.honesty }, null, 2)}\n`,
  );
  for (const f of result.failures) process.stdout.write(`FAILURE: ${f}\n`);
  process.stdout.write(`${result.ok ? 'PASS' : 'FAIL'}: results in ${dir}\n`);
  return result.ok ? 0 : 1;
}

// Ctrl-C or a timeout's SIGTERM: exiting runs the 'exit' hooks that kill the servers and
// evrate processes this run started, so nothing is left behind.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`\nbench: ${signal}, stopping\n`);
    process.exit(130);
  });
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`bench: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
