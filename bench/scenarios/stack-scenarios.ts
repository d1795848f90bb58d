/**
 * The scenarios that drive chargers against the whole stack: throughput, latency, connections.
 * Each starts its own stack, so that one run's data never mixes with another's.
 */
import { drive, freshness_ms, percentile_of } from '../drive.js';
import { round, sample_process } from '../proc-stats.js';
import type { BenchResult } from '../result.js';
import {
  type BenchOptions,
  check_honesty,
  drive_options,
  honesty_failures,
  load_figures,
  open_stack,
  stack_target,
  stack_warnings,
} from './common.js';

export type ScenarioOutcome = Pick<
  BenchResult,
  'notes' | 'ok' | 'failures' | 'honesty' | 'figures' | 'load' | 'processes' | 'series'
>;

/**
 * Closed loop: every charger sends its next CALL as soon as the previous one is answered, so the
 * stack runs at the highest rate it sustains. The end-to-end figure counts from the first CALL
 * until the last meter value is in ClickHouse, ramp and drain included.
 */
export async function throughput(o: BenchOptions): Promise<ScenarioOutcome> {
  const stack = await open_stack(o);
  try {
    const series: BenchResult['series'] = [];
    const outcome = await drive(stack_target(stack, o), drive_options(o, 'closed', 0), series, Date.now());
    const honesty = await check_honesty(stack, outcome, o);
    const stored_s = ((outcome.all_stored_ms ?? Date.now()) - outcome.started_ms) / 1000;
    // Ingest alone: an answered value is a durable one (the honesty check reads them back), and
    // the time to read the stream afterwards is the harness's, not the pipeline's.
    const figures =
      o.stack === 'ingest'
        ? load_figures(outcome)
        : {
            end_to_end_meter_values_per_s: Math.round(outcome.meter_values_stored / stored_s),
            ...load_figures(outcome),
            end_to_end_s: round(stored_s, 1),
            pipeline_lag_after_stop_s:
              outcome.all_stored_ms === undefined
                ? Number.NaN
                : round((outcome.all_stored_ms - outcome.stopped_ms) / 1000, 1),
          };
    return scenario_outcome(stack, outcome, honesty, figures, series);
  } finally {
    await stack.stop();
  }
}

/** A run's verdict: its honesty, the failures seen (with what the stack logged when it lost data). */
function scenario_outcome(
  stack: Parameters<typeof stack_warnings>[0],
  outcome: Awaited<ReturnType<typeof drive>>,
  honesty: Awaited<ReturnType<typeof check_honesty>>,
  figures: ScenarioOutcome['figures'],
  series: BenchResult['series'],
): ScenarioOutcome {
  const failures = [
    ...honesty_failures(honesty, outcome.counters.sessions_started),
    ...outcome.failures,
    ...(honesty.ok ? [] : stack_warnings(stack)),
  ];
  return {
    ok: honesty.ok && failures.length === 0,
    failures,
    honesty,
    figures,
    load: outcome.counters,
    processes: outcome.processes,
    series,
  };
}

/**
 * The latency load's pace: each charger sends one meter value per interval, the interval chosen
 * so that all chargers together offer --rate sampled values per second while charging.
 */
export function latency_interval_ms(o: BenchOptions): number {
  return Math.max(10, Math.round((o.chargers * o.samples * 1000) / o.rate));
}

/** A fixed offered rate (latency_interval_ms): answer times at a load the stack keeps up with. */
export async function latency(o: BenchOptions): Promise<ScenarioOutcome> {
  const interval_ms = latency_interval_ms(o);
  const stack = await open_stack(o);
  try {
    const series: BenchResult['series'] = [];
    const outcome = await drive(
      stack_target(stack, o),
      drive_options(o, 'interval', interval_ms),
      series,
      Date.now(),
    );
    const honesty = await check_honesty(stack, outcome, o);
    const fresh = freshness_ms(outcome.answered_track, outcome.stored_track).sort((a, b) => a - b);
    const figures = {
      offered_meter_values_per_s_while_charging: o.rate,
      meter_value_interval_ms: interval_ms,
      time_compression: round((o.sim_interval_s * 1000) / interval_ms, 1),
      ...load_figures(outcome),
      freshness_ms_p50: percentile_of(fresh, 50),
      freshness_ms_p90: percentile_of(fresh, 90),
      freshness_ms_p99: percentile_of(fresh, 99),
      freshness_ms_max: percentile_of(fresh, 100),
      freshness_resolution_ms: o.tick_ms,
    };
    return scenario_outcome(stack, outcome, honesty, figures, series);
  } finally {
    await stack.stop();
  }
}

/**
 * Chargers connect over the ramp, boot and then only send heartbeats: how many one ingest
 * process holds and what each costs it in memory.
 */
export async function connections(o: BenchOptions): Promise<ScenarioOutcome> {
  // Heartbeats far apart must not let the server's idle timeout close connections.
  const stack = await open_stack(o, { HEARTBEAT_INTERVAL_S: String(Math.max(60, o.heartbeat_s)) });
  try {
    const ingest_pid = stack.processes().find((p) => p.name === 'ingest')!.pids[0]!;
    const rss_mb_idle = (sample_process(ingest_pid)?.rss_bytes ?? 0) / 2 ** 20;
    const series: BenchResult['series'] = [];
    const outcome = await drive(
      stack_target(stack, o),
      drive_options(o, 'hold', o.heartbeat_s * 1000),
      series,
      Date.now(),
    );
    const peak = series.reduce((best, p) => (p.connections > best.connections ? p : best), series[0]!);
    const held = peak?.connections ?? 0;
    const rss_mb_peak = peak?.rss_mb.ingest ?? Number.NaN;
    const load_rss_mb = peak?.rss_mb['load generator'] ?? Number.NaN;
    const figures = {
      chargers_requested: o.chargers,
      connections_held: held,
      connect_failures: outcome.counters.connect_failures,
      ingest_rss_mb_idle: round(rss_mb_idle, 1),
      ingest_rss_mb_at_peak: round(rss_mb_peak, 1),
      ingest_kb_per_connection: held > 0 ? round(((rss_mb_peak - rss_mb_idle) * 1024) / held, 2) : Number.NaN,
      load_generator_kb_per_connection: held > 0 ? round((load_rss_mb * 1024) / held, 2) : Number.NaN,
      run_s: load_figures(outcome).run_s!,
    };
    const honesty = await check_honesty(stack, outcome, o);
    const failures = [
      ...honesty_failures(honesty, outcome.counters.sessions_started),
      ...outcome.failures,
      ...(honesty.ok ? [] : stack_warnings(stack)),
    ];
    // Holding fewer than asked is the finding this scenario looks for (ask for more than the
    // limit to find it), not a failure; holding none is.
    if (held === 0) failures.push('no connection held');
    const notes =
      held < o.chargers ? [`held ${held} of ${o.chargers} chargers at once`, ...stack_warnings(stack)] : [];
    return {
      ok: honesty.ok && failures.length === 0,
      failures,
      notes,
      honesty,
      figures,
      load: outcome.counters,
      processes: outcome.processes,
      series,
    };
  } finally {
    await stack.stop();
  }
}
