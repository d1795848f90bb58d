/**
 * A load generator process: runs a slice of the simulated chargers and reports counters and
 * answer-time histograms to the harness over IPC. Separate processes (not threads) because the
 * limit on open files is per process: spreading chargers over agents is what lets the harness
 * open more connections than one process may hold.
 */
import { type ChargerCounters, new_counters, SimCharger, type SimOptions } from './charger.js';
import { LatencyHistogram } from './histogram.js';

export type AgentCommand =
  | { type: 'start'; options: SimOptions; first: number; count: number }
  | { type: 'stop'; drain_ms: number };

export type AgentReport =
  | { type: 'stats'; counters: ChargerCounters; answer_ms: [number, number][] }
  | { type: 'done'; counters: ChargerCounters; answer_ms: [number, number][]; failures: string[] };

const report_interval_ms = 250;
const failures_kept_max = 5;

const counters = new_counters();
const answer_ms = new LatencyHistogram();
const chargers: SimCharger[] = [];
const failures: string[] = [];
let runs: Promise<void>[] = [];

function send(report: AgentReport): void {
  process.send?.(report);
}

/** Histograms travel as deltas so that the harness can chart answer times per interval. */
function take_histogram(): [number, number][] {
  const pairs = answer_ms.sparse();
  answer_ms.clear();
  return pairs;
}

const ticker = setInterval(() => {
  send({ type: 'stats', counters, answer_ms: take_histogram() });
}, report_interval_ms);

async function stop(drain_ms: number): Promise<void> {
  for (const charger of chargers) charger.stop();
  const drained = Promise.allSettled(runs);
  const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), drain_ms));
  if ((await Promise.race([drained, timer])) === 'timeout') {
    for (const charger of chargers) charger.kill();
    await drained;
  }
  clearInterval(ticker);
  send({ type: 'done', counters, answer_ms: take_histogram(), failures });
  // Let the IPC message leave before exiting.
  setTimeout(() => process.exit(0), 200);
}

process.on('message', (command: AgentCommand) => {
  if (command.type === 'start') {
    for (let i = command.first; i < command.first + command.count; i++) {
      chargers.push(new SimCharger(i, command.options, counters, answer_ms));
    }
    runs = chargers.map((charger) =>
      charger.run().catch((error: unknown) => {
        if (failures.length < failures_kept_max) failures.push(`${charger.id}: ${(error as Error).message}`);
      }),
    );
  } else {
    void stop(command.drain_ms);
  }
});

// The harness going away (crash, Ctrl-C) ends the agent too: no orphaned load.
process.on('disconnect', () => process.exit(1));
