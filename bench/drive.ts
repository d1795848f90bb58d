/**
 * Drives one load against one target and watches it: a progress line per tick, a point of the
 * time series per tick, and afterwards (for a target that stores) waits until everything the
 * chargers were answered for is in ClickHouse, or the settle time runs out.
 */
import { LoadGenerator } from './load.js';
import { ProcessMonitor, type ProcessUsage, round } from './proc-stats.js';
import type { SeriesPoint } from './result.js';
import type { ChargerCounters, SimOptions } from './sim/charger.js';
import { LatencyHistogram } from './sim/histogram.js';

export interface DriveTarget {
  name: string;
  ocpp_url_base: string;
  processes(): { name: string; pids: number[] }[];
  /** Rows in meter_values now (cheap, for progress); absent for a target that stores nothing. */
  stored_rough?: () => Promise<number>;
  /** Rows in meter_values, duplicates collapsed. */
  stored_exact?: () => Promise<number>;
  /** false: count stored values only once the load is over (counting costs the cores measured). */
  count_while_loaded?: boolean;
}

export interface DriveOptions {
  sim: Omit<SimOptions, 'url_base'>;
  chargers: number;
  agents: number;
  duration_s: number;
  tick_ms: number;
  /** Time the chargers get to finish their sessions after the run. */
  drain_ms: number;
  /** Time the pipeline gets to store everything after the chargers stopped. */
  settle_ms: number;
}

export interface DriveOutcome {
  counters: ChargerCounters;
  failures: string[];
  answer_ms: LatencyHistogram;
  /** Answer times once every charger had connected and booted, until the load was stopped. */
  steady_answer_ms: LatencyHistogram;
  steady_s: number;
  started_ms: number;
  /** When the chargers were told to stop, and when they had finished. */
  stop_ms: number;
  stopped_ms: number;
  /** Cumulative sampled values answered / stored, one pair per tick: [time ms, count]. */
  answered_track: [number, number][];
  stored_track: [number, number][];
  /** First tick at which every answered value was stored (exact count); undefined if never. */
  all_stored_ms: number | undefined;
  meter_values_stored: number;
  processes: ProcessUsage[];
}

/** After the ramp, chargers still boot and start sessions: the steady window starts this much later. */
const steady_after_ramp_ms = 3000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function fmt(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-';
}

export async function drive(
  target: DriveTarget,
  options: DriveOptions,
  series: SeriesPoint[],
  t0_ms: number,
): Promise<DriveOutcome> {
  const load = LoadGenerator.start(
    { ...options.sim, url_base: target.ocpp_url_base },
    options.chargers,
    options.agents,
  );
  const monitor = new ProcessMonitor(() => [
    ...target.processes(),
    { name: 'load generator', pids: load.pids() },
    { name: 'harness', pids: [process.pid] },
  ]);
  const started_ms = Date.now();
  monitor.tick(started_ms);
  const answered_track: [number, number][] = [[started_ms, 0]];
  const stored_track: [number, number][] = [];
  const stored_before = target.stored_rough === undefined ? 0 : await target.stored_rough();
  stored_track.push([started_ms, 0]);
  let previous = { at_ms: started_ms, answered: 0, stored: 0 };
  const interactive = process.stdout.isTTY === true;
  let last_printed_ms = 0;
  const steady_from_ms = started_ms + options.sim.ramp_ms + steady_after_ramp_ms;
  const steady_answer_ms = new LatencyHistogram();
  let steady_ms = 0;

  const tick = async (phase: string) => {
    const now = Date.now();
    const counters = load.counters();
    // A tick right after the previous one (the drain ending) would turn a handful of values
    // into a huge rate: fold it into the next one.
    if (now - previous.at_ms < options.tick_ms / 4) {
      return { counters, stored: previous.stored };
    }
    const interval = load.take_interval();
    if (phase === 'run' && previous.at_ms >= steady_from_ms) {
      steady_answer_ms.add(interval);
      steady_ms += now - previous.at_ms;
    }
    const count_now = phase === 'settle' || target.count_while_loaded !== false;
    const stored =
      target.stored_rough === undefined || !count_now
        ? Number.NaN
        : (await target.stored_rough()) - stored_before;
    const usage = monitor.tick(now);
    const dt_s = Math.max(0.001, (now - previous.at_ms) / 1000);
    const point: SeriesPoint = {
      t_s: round((now - t0_ms) / 1000, 2),
      target: target.name,
      answered_per_s: round((counters.sampled_values_answered - previous.answered) / dt_s, 1),
      stored_per_s: Number.isNaN(stored) ? Number.NaN : round((stored - previous.stored) / dt_s, 1),
      answer_ms_p50: round(interval.percentile_ms(50), 3),
      answer_ms_p99: round(interval.percentile_ms(99), 3),
      connections: counters.connections_open,
      cpu_cores: Object.fromEntries(Object.entries(usage).map(([k, v]) => [k, round(v.cpu_cores, 2)])),
      rss_mb: Object.fromEntries(Object.entries(usage).map(([k, v]) => [k, round(v.rss_mb, 1)])),
    };
    series.push(point);
    answered_track.push([now, counters.sampled_values_answered]);
    if (!Number.isNaN(stored)) stored_track.push([now, stored]);
    previous = {
      at_ms: now,
      answered: counters.sampled_values_answered,
      stored: Number.isNaN(stored) ? 0 : stored,
    };
    const cpu = Object.entries(usage)
      .map(([k, v]) => `${k.split(' ')[0]} ${v.cpu_cores.toFixed(2)}`)
      .join(' ');
    const line =
      `[${target.name} ${phase}] ${point.t_s.toFixed(0)} s  chargers ${fmt(counters.connections_open)}` +
      `  answered ${fmt(point.answered_per_s)}/s` +
      (Number.isNaN(stored)
        ? ''
        : `  stored ${fmt(point.stored_per_s)}/s (${fmt(stored)}/${fmt(counters.sampled_values_answered)})`) +
      `  p99 ${Number.isFinite(point.answer_ms_p99) ? point.answer_ms_p99.toFixed(1) : '-'} ms  cpu ${cpu}`;
    if (interactive) process.stdout.write(`\r\x1b[K${line}`);
    else if (now - last_printed_ms >= 5000) {
      process.stdout.write(`${line}\n`);
      last_printed_ms = now;
    }
    return { counters, stored };
  };

  const end_ms = started_ms + options.duration_s * 1000;
  while (Date.now() < end_ms) {
    await sleep(Math.min(options.tick_ms, Math.max(0, end_ms - Date.now())));
    await tick('run');
  }
  const stop_ms = Date.now();
  const stopping = load.stop(options.drain_ms);
  let stopped: Awaited<typeof stopping> | undefined;
  stopping.then(
    (s) => {
      stopped = s;
    },
    () => {},
  );
  while (stopped === undefined) {
    const failed = await Promise.race([
      stopping.then(
        () => false,
        () => true,
      ),
      sleep(options.tick_ms).then(() => false),
    ]);
    if (failed) await stopping; // rethrows the agents' failure
    await tick('drain');
  }
  const stopped_ms = Date.now();
  monitor.end_window(stopped_ms);

  let all_stored_ms: number | undefined;
  let meter_values_stored = 0;
  if (target.stored_exact !== undefined) {
    const settle_end_ms = stopped_ms + options.settle_ms;
    for (;;) {
      const { stored } = await tick('settle');
      if (stored >= stopped.counters.sampled_values_answered) {
        meter_values_stored = (await target.stored_exact()) - stored_before;
        if (meter_values_stored === stopped.counters.sampled_values_answered) {
          all_stored_ms = Date.now();
          break;
        }
      }
      if (Date.now() > settle_end_ms) {
        meter_values_stored = (await target.stored_exact()) - stored_before;
        break;
      }
      await sleep(options.tick_ms);
    }
  }
  if (interactive) process.stdout.write('\n');
  return {
    counters: stopped.counters,
    failures: stopped.failures,
    answer_ms: load.answer_ms,
    steady_answer_ms,
    steady_s: steady_ms / 1000,
    started_ms,
    stop_ms,
    stopped_ms,
    answered_track,
    stored_track,
    all_stored_ms,
    meter_values_stored,
    processes: monitor.summary(),
  };
}

/**
 * Freshness from the two cumulative counts: the k-th value stored at time T was answered at the
 * first tick t where the answered count reached k; T - t, once per tick at which the stored count
 * grew. Its resolution is the tick (values are not stamped individually).
 */
export function freshness_ms(answered: [number, number][], stored: [number, number][]): number[] {
  const out: number[] = [];
  let a = 0;
  let last_stored = 0;
  for (const [at_ms, count] of stored) {
    if (count <= last_stored) continue;
    last_stored = count;
    while (a < answered.length && answered[a]![1] < count) a++;
    if (a === answered.length) break;
    out.push(Math.max(0, at_ms - answered[a]![0]));
  }
  return out;
}

export function percentile_of(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
