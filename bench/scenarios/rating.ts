/** The rating engine alone: bench/rating.js in its own process, its CPU and memory sampled. */
import { spawn } from 'node:child_process';
import { built_module } from '../../core/paths.js';
import { ProcessMonitor } from '../proc-stats.js';
import type { BenchOptions } from './common.js';
import type { ScenarioOutcome } from './stack-scenarios.js';

interface RatingOutput {
  sessions: number;
  sessions_priced: number;
  samples_per_session: number;
  seconds: number;
  sessions_per_s: number;
  samples_per_s: number;
  lines_total: number;
  incremental_samples_per_s: number;
}

export async function rating(o: BenchOptions): Promise<ScenarioOutcome> {
  const child = spawn(process.execPath, [built_module('bench/rating.js'), '--sessions', String(o.sessions)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const monitor = new ProcessMonitor(() => [{ name: 'rating engine', pids: [child.pid ?? -1] }]);
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  monitor.tick(Date.now());
  const ticker = setInterval(() => monitor.tick(Date.now()), 200);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  clearInterval(ticker);
  if (code !== 0) throw new Error(`bench/rating.js exited with code ${code}:\n${output}`);
  const r = JSON.parse(output) as RatingOutput;
  const failures =
    r.sessions_priced === r.sessions
      ? []
      : [`rating: ${r.sessions} sessions given, ${r.sessions_priced} priced`];
  return {
    ok: failures.length === 0,
    failures,
    figures: {
      sessions: r.sessions,
      sessions_priced: r.sessions_priced,
      samples_per_session: r.samples_per_session,
      seconds: r.seconds,
      sessions_per_s: r.sessions_per_s,
      samples_per_s: r.samples_per_s,
      incremental_samples_per_s: r.incremental_samples_per_s,
    },
    processes: monitor.summary(),
    series: [],
  };
}
