/**
 * The load generator as the harness sees it: agent processes each running a slice of the
 * chargers, their counters summed and their answer-time histograms merged.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { built_module } from '../core/paths.js';
import type { AgentCommand, AgentReport } from './sim/agent.js';
import { type ChargerCounters, new_counters, type SimOptions } from './sim/charger.js';
import { LatencyHistogram } from './sim/histogram.js';

/** An agent holds at most this many chargers: below the open-files limit of 20,000 seen here. */
export const chargers_per_agent_max = 18_000;

export function sum_counters(list: readonly ChargerCounters[]): ChargerCounters {
  const total = new_counters();
  for (const c of list)
    for (const key of Object.keys(total) as (keyof ChargerCounters)[]) total[key] += c[key];
  return total;
}

export class LoadGenerator {
  private readonly latest: ChargerCounters[];
  /** Answer times since the last take_interval(), and over the whole run. */
  private readonly interval_answer_ms = new LatencyHistogram();
  readonly answer_ms = new LatencyHistogram();
  private readonly done: Promise<{ counters: ChargerCounters; failures: string[] }>[];
  private readonly failures: string[] = [];

  private constructor(private readonly agents: ChildProcess[]) {
    this.latest = agents.map(() => new_counters());
    this.done = agents.map(
      (agent, a) =>
        new Promise((resolve, reject) => {
          agent.on('message', (report: AgentReport) => {
            this.latest[a] = report.counters;
            this.interval_answer_ms.add_sparse(report.answer_ms);
            this.answer_ms.add_sparse(report.answer_ms);
            if (report.type === 'done') {
              this.failures.push(...report.failures);
              resolve({ counters: report.counters, failures: report.failures });
            }
          });
          agent.once('exit', (code) =>
            reject(new Error(`load agent exited with code ${code} before reporting`)),
          );
        }),
    );
    for (const d of this.done) d.catch(() => {});
  }

  static start(options: SimOptions, chargers_total: number, agents_total: number): LoadGenerator {
    const agents_needed = Math.max(agents_total, Math.ceil(chargers_total / chargers_per_agent_max));
    const agents: ChildProcess[] = [];
    const per_agent = Math.ceil(chargers_total / agents_needed);
    for (let a = 0; a < agents_needed; a++) {
      const first = a * per_agent;
      const count = Math.min(per_agent, chargers_total - first);
      if (count <= 0) break;
      const agent = fork(built_module('bench/sim/agent.js'), [], {
        // e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to see where the load generator spends its time.
        execArgv: (process.env.BENCH_AGENT_NODE_ARGS ?? '').split(' ').filter((a) => a !== ''),
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      const command: AgentCommand = { type: 'start', options, first, count };
      agent.send(command);
      agents.push(agent);
    }
    return new LoadGenerator(agents);
  }

  pids(): number[] {
    return this.agents.map((a) => a.pid ?? -1);
  }

  counters(): ChargerCounters {
    return sum_counters(this.latest);
  }

  /** Answer times reported since the previous call. */
  take_interval(): LatencyHistogram {
    const copy = new LatencyHistogram();
    copy.add(this.interval_answer_ms);
    this.interval_answer_ms.clear();
    return copy;
  }

  /** Tells every charger to finish its session and waits for the agents' final reports. */
  async stop(drain_ms: number): Promise<{ counters: ChargerCounters; failures: string[] }> {
    const command: AgentCommand = { type: 'stop', drain_ms };
    for (const agent of this.agents) if (agent.connected) agent.send(command);
    const deadline = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error('load agents did not finish')), drain_ms + 15_000).unref(),
    );
    try {
      await Promise.race([Promise.all(this.done), deadline]);
    } catch (error) {
      for (const agent of this.agents) if (agent.exitCode === null) agent.kill('SIGKILL');
      throw error;
    }
    return { counters: this.counters(), failures: this.failures };
  }
}
