/** What the stack scenarios share: options, the simulator settings, the honesty check. */
import type { DriveOptions, DriveOutcome, DriveTarget } from '../drive.js';
import { start_ingest_bench_stack } from '../ingest-stack.js';
import { round } from '../proc-stats.js';
import type { Honesty } from '../result.js';
import type { Pace } from '../sim/charger.js';
import { measurands_max } from '../sim/frames.js';
import { type BenchStack, start_bench_stack } from '../stack.js';

export interface BenchOptions {
  seconds: number;
  chargers: number;
  agents: number;
  samples: number;
  /** latency: offered sampled values per second. */
  rate: number;
  ocpp201_share: number;
  sim_interval_s: number;
  ramp_s: number;
  reconnect_per_session: number;
  offline_per_session: number;
  session_meter_values_max: number;
  settle_s: number;
  drain_s: number;
  tick_ms: number;
  heartbeat_s: number;
  sessions: number;
  seed: number;
  clickhouse_url: string | undefined;
  /** full: charger to ClickHouse row; ingest: charger to JetStream (ingest and NATS alone). */
  stack: 'full' | 'ingest';
  /** Self-test of the honesty check: delete this charger's stored meter values before counting. */
  drop_stored_charger: string | undefined;
}

export function drive_options(o: BenchOptions, pace: Pace, interval_ms: number): DriveOptions {
  if (o.samples < 1 || o.samples > measurands_max) throw new Error(`--samples must be 1..${measurands_max}`);
  const now = Date.now();
  // The simulated clock runs fast; it starts far enough back that no timestamp reaches the
  // present (rating replaces timestamps from the future). Chargers stop at the present.
  const compression = pace === 'interval' ? (o.sim_interval_s * 1000) / interval_ms : 1;
  const sim_span_ms =
    pace === 'closed' ? 60 * 86_400_000 : (o.seconds + o.drain_s) * 1000 * compression * 1.5 + 86_400_000;
  return {
    sim: {
      pace,
      interval_ms,
      sim_interval_s: o.sim_interval_s,
      sampled_values_per_meter_value: o.samples,
      ocpp201_share: o.ocpp201_share,
      reconnect_per_session: o.reconnect_per_session,
      offline_per_session: o.offline_per_session,
      offline_meter_values: 10,
      session_meter_values_max: o.session_meter_values_max,
      sim_start_ms: now - sim_span_ms,
      sim_end_ms: now - 60_000,
      ramp_ms: o.ramp_s * 1000,
      call_timeout_ms: 30_000,
      chargers_per_source_address: 1000,
      charge_point_prefix: 'SIM-',
      seed: o.seed,
    },
    chargers: o.chargers,
    agents: o.agents,
    duration_s: o.seconds,
    tick_ms: o.tick_ms,
    drain_ms: o.drain_s * 1000,
    settle_ms: o.settle_s * 1000,
  };
}

/**
 * The system under test: the whole pipeline to ClickHouse (--stack full), or ingest and NATS
 * alone (--stack ingest), where "stored" means durable in the JetStream events stream.
 */
export function open_stack(o: BenchOptions, env: Record<string, string> = {}): Promise<BenchStack> {
  return o.stack === 'ingest'
    ? start_ingest_bench_stack(env)
    : start_bench_stack({ clickhouse_url: o.clickhouse_url, env });
}

export function stack_target(stack: BenchStack, o: BenchOptions): DriveTarget {
  return {
    name: o.stack === 'ingest' ? 'evrate ingest' : 'evrate',
    // Reading the events stream back costs the harness the cores being measured: after the load.
    count_while_loaded: o.stack !== 'ingest',
    ocpp_url_base: stack.ocpp_url_base,
    processes: () => stack.processes(),
    stored_rough: () => stack.meter_values_rough(),
    stored_exact: () => stack.meter_values_exact(),
  };
}

/**
 * Compares what the chargers were answered for with what the store holds; waits (within the
 * settle time) for the rated sessions, which trail the meter values by a rating batch.
 */
export async function check_honesty(
  stack: BenchStack,
  outcome: DriveOutcome,
  o: BenchOptions,
): Promise<Honesty> {
  const c = outcome.counters;
  if (o.drop_stored_charger !== undefined) {
    await stack.delete_meter_values_of(o.drop_stored_charger);
    outcome.meter_values_stored = await stack.meter_values_exact();
  }
  // Within what is left of the settle time (a few seconds at least): rated sessions trail the
  // meter values by a batch.
  const deadline = Math.max(outcome.stopped_ms + o.settle_s * 1000, Date.now() + 5000);
  let priced = await stack.rated_sessions_final();
  let printed_ms = Date.now();
  while (priced < c.sessions_stopped && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500));
    priced = await stack.rated_sessions_final();
    if (Date.now() - printed_ms >= 5000) {
      process.stdout.write(`[evrate settle] sessions priced ${priced}/${c.sessions_stopped}\n`);
      printed_ms = Date.now();
    }
  }
  const honesty: Honesty = {
    meter_values_sent: c.sampled_values_answered,
    meter_values_stored: outcome.meter_values_stored,
    sessions_finished: c.sessions_stopped,
    sessions_priced: priced,
    sessions_provisional: await stack.provisional_sessions(),
    calls_abandoned: c.calls_abandoned,
    ok: false,
  };
  honesty.ok =
    honesty.meter_values_sent === honesty.meter_values_stored &&
    honesty.sessions_finished === honesty.sessions_priced &&
    c.sessions_started === c.sessions_stopped;
  return honesty;
}

export function honesty_failures(h: Honesty, sessions_started: number): string[] {
  const out: string[] = [];
  if (h.meter_values_sent !== h.meter_values_stored) {
    out.push(`meter values: ${h.meter_values_sent} answered as durable, ${h.meter_values_stored} stored`);
  }
  if (h.sessions_finished !== h.sessions_priced) {
    out.push(`sessions: ${h.sessions_finished} finished, ${h.sessions_priced} priced`);
  }
  if (sessions_started !== h.sessions_finished) {
    out.push(`sessions: ${sessions_started} started, ${h.sessions_finished} finished by the chargers`);
  }
  return out;
}

/** Answer-time and rate figures every charger-driving scenario reports. */
export function load_figures(outcome: DriveOutcome): Record<string, number> {
  const run_s = (outcome.stopped_ms - outcome.started_ms) / 1000;
  const c = outcome.counters;
  const h = outcome.answer_ms;
  return {
    run_s: round(run_s, 1),
    meter_values_answered_per_s: Math.round(c.sampled_values_answered / run_s),
    meter_value_calls_answered_per_s: Math.round(c.meter_value_calls_answered / run_s),
    answer_latency_ms_p50: round(h.percentile_ms(50), 2),
    answer_latency_ms_p90: round(h.percentile_ms(90), 2),
    answer_latency_ms_p99: round(h.percentile_ms(99), 2),
    answer_latency_ms_p999: round(h.percentile_ms(99.9), 2),
    answer_latency_ms_max: round(h.percentile_ms(100), 2),
    // The same once every charger is connected and booted (ramp-up excluded), until the stop.
    steady_s: round(outcome.steady_s, 1),
    steady_answer_latency_ms_p50: round(outcome.steady_answer_ms.percentile_ms(50), 2),
    steady_answer_latency_ms_p99: round(outcome.steady_answer_ms.percentile_ms(99), 2),
    steady_answer_latency_ms_p999: round(outcome.steady_answer_ms.percentile_ms(99.9), 2),
    sessions_finished: c.sessions_stopped,
    reconnects: c.reconnects_planned,
    offline_bursts: c.offline_bursts,
  };
}

/**
 * The warnings and errors the evrate processes logged, grouped by message with a count and an
 * example: a failed run's report should say what the system itself noticed.
 */
export function stack_warnings(stack: BenchStack, groups_max = 8): string[] {
  const groups = new Map<string, { count: number; example: string }>();
  for (const line of stack.output().split('\n')) {
    if (!/^\{"level":(4|5|6)0/.test(line)) continue;
    const entry = JSON.parse(line) as {
      msg?: string;
      component?: string;
      err?: { message?: string };
      session_id?: string;
      partition?: number;
    };
    const key = `${entry.component ?? ''}: ${entry.msg ?? ''}${entry.err?.message === undefined ? '' : ` (${entry.err.message})`}`;
    const example = entry.session_id ?? (entry.partition === undefined ? '' : `partition ${entry.partition}`);
    const group = groups.get(key) ?? { count: 0, example };
    group.count++;
    groups.set(key, group);
  }
  return [...groups]
    .slice(0, groups_max)
    .map(([key, g]) => `evrate logged ${g.count}x ${key}${g.example === '' ? '' : `, e.g. ${g.example}`}`);
}
