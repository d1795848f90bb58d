/** The shape of a benchmark result file (bench/results/<run>/result.json). */

import type { ProcessUsage } from './proc-stats.js';
import type { ChargerCounters } from './sim/charger.js';

export type ScenarioName = 'throughput' | 'latency' | 'connections' | 'rating' | 'baseline' | 'floor';
export const scenario_names: readonly ScenarioName[] = [
  'throughput',
  'latency',
  'connections',
  'rating',
  'baseline',
  'floor',
];

/** One point of the time series, one per progress tick. */
export interface SeriesPoint {
  t_s: number;
  /** Which load the point belongs to (baseline runs two: evrate, then the baseline server). */
  target: string;
  /** Sampled values answered (durable) per second over the tick. */
  answered_per_s: number;
  /** Rows appearing in meter_values per second over the tick (NaN when nothing is stored). */
  stored_per_s: number;
  answer_ms_p50: number;
  answer_ms_p99: number;
  connections: number;
  cpu_cores: Record<string, number>;
  rss_mb: Record<string, number>;
}

/** The harness's own honesty: what the chargers were told is durable must all be there. */
export interface Honesty {
  /** Sampled values in CALLs answered with CALLRESULT (each one row of meter_values). */
  meter_values_sent: number;
  meter_values_stored: number;
  sessions_finished: number;
  sessions_priced: number;
  sessions_provisional: number;
  calls_abandoned: number;
  ok: boolean;
}

export interface BenchResult {
  scenario: ScenarioName;
  command: string;
  started_at: string;
  finished_at: string;
  machine: {
    cpus: number;
    cpu_model: string;
    memory_gb: number;
    node: string;
    open_files_max: number;
    /** Load average when the run started: other work on a shared machine shows here. */
    load_average_1m_at_start: number;
  };
  options: Record<string, number | string | boolean>;
  ok: boolean;
  failures: string[];
  /** What a run found that is not a failure (e.g. the connection limit it reached). */
  notes?: string[];
  /** Absent for `rating` (no charger involved). */
  honesty?: Honesty;
  figures: Record<string, number | string>;
  load?: ChargerCounters;
  processes: ProcessUsage[];
  series: SeriesPoint[];
}
