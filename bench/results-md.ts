/**
 * Writes bench/RESULTS.md from the newest result.json of each scenario under bench/results/, so
 * that the committed figures are exactly what the harness measured, with the commands that
 * measured them.
 *
 *   node dist/bench/results-md.js
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { project_root } from '../core/paths.js';
import { stack_of } from './report.js';
import type { BenchResult, ScenarioName } from './result.js';
import { scenario_names } from './result.js';

const results_dir = path.join(project_root, 'bench', 'results');

type Stack = ReturnType<typeof stack_of>;

function newest(scenario: ScenarioName, stack: Stack): BenchResult | undefined {
  if (!existsSync(results_dir)) return undefined;
  const runs = readdirSync(results_dir)
    .filter((d) => d.startsWith(`${scenario}-`) && existsSync(path.join(results_dir, d, 'result.json')))
    .map((d) => JSON.parse(readFileSync(path.join(results_dir, d, 'result.json'), 'utf8')) as BenchResult)
    .filter((r) => stack_of(r) === stack)
    .sort((a, b) => a.started_at.localeCompare(b.started_at));
  return runs.at(-1);
}

function n(v: number | string | undefined | null, digits = 0): string {
  if (typeof v !== 'number' || !Number.isFinite(v)) return '-';
  return v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

function processes(r: BenchResult): string[] {
  return [
    '| process | mean cores (load) | max cores | CPU s (total) | max RSS MB |',
    '| --- | --- | --- | --- | --- |',
    ...r.processes.map(
      (p) =>
        `| ${p.name} | ${n(p.cpu_cores_mean, 2)} | ${n(p.cpu_cores_max, 2)} | ${n(p.cpu_s_total, 1)} | ${n(p.rss_mb_max, 0)} |`,
    ),
  ];
}

function honesty(r: BenchResult): string {
  const h = r.honesty;
  if (h === undefined) return '';
  return (
    `Honesty check: ${n(h.meter_values_sent)} meter values answered, ${n(h.meter_values_stored)} stored; ` +
    `${n(h.sessions_finished)} sessions finished, ${n(h.sessions_priced)} priced — **${r.ok ? 'PASS' : 'FAIL'}**.`
  );
}

function section(r: BenchResult): string[] {
  const f = r.figures;
  const ingest_only = stack_of(r) === 'ingest';
  const steady =
    `Once every charger had connected and booted (${n(f.steady_s as number, 1)} s): ` +
    `answer time p50 ${n(f.steady_answer_latency_ms_p50 as number, 1)} ms, p99 ${n(f.steady_answer_latency_ms_p99 as number, 1)} ms, ` +
    `p99.9 ${n(f.steady_answer_latency_ms_p999 as number, 1)} ms.`;
  const head = [
    `## ${r.scenario}${ingest_only ? ', ingest and NATS alone' : ''}`,
    '',
    '```sh',
    r.command,
    '```',
    '',
    `Run ${r.started_at} (load average ${r.machine.load_average_1m_at_start} at the start).`,
    '',
  ];
  let body: string[] = [];
  if (r.scenario === 'throughput' && ingest_only) {
    body = [
      `Accepted and durable: **${n(f.meter_values_answered_per_s as number)} meter values/s** ` +
        `(${n(f.meter_value_calls_answered_per_s as number)} MeterValues CALLs/s), each answered only after its JetStream ack; ` +
        'every answered value read back from the stream afterwards. ' +
        `Answer time p50 ${n(f.answer_latency_ms_p50 as number, 1)} ms, p99 ${n(f.answer_latency_ms_p99 as number, 1)} ms.`,
      '',
      steady,
    ];
  } else if (r.scenario === 'latency' && ingest_only) {
    body = [
      `Offered ${n(f.offered_meter_values_per_s_while_charging as number)} meter values/s while every charger charges; the chargers sent ${n(f.meter_values_answered_per_s as number)}/s on average, all answered and durable in JetStream.`,
      '',
      '| answer time seen by chargers, ms | p50 | p90 | p99 | p99.9 | max |',
      '| --- | --- | --- | --- | --- | --- |',
      `| whole run, ramp-up included | ${n(f.answer_latency_ms_p50 as number, 1)} | ${n(f.answer_latency_ms_p90 as number, 1)} | ${n(f.answer_latency_ms_p99 as number, 1)} | ${n(f.answer_latency_ms_p999 as number, 1)} | ${n(f.answer_latency_ms_max as number, 1)} |`,
      `| steady (${n(f.steady_s as number, 1)} s after the ramp) | ${n(f.steady_answer_latency_ms_p50 as number, 1)} | - | ${n(f.steady_answer_latency_ms_p99 as number, 1)} | ${n(f.steady_answer_latency_ms_p999 as number, 1)} | - |`,
    ];
  } else if (r.scenario === 'throughput') {
    body = [
      `End to end: **${n(f.end_to_end_meter_values_per_s as number)} meter values/s** (first CALL to the last row stored, ${n(f.end_to_end_s as number, 1)} s).`,
      `Answered by ingest (durable in JetStream): ${n(f.meter_values_answered_per_s as number)} meter values/s ` +
        `(${n(f.meter_value_calls_answered_per_s as number)} MeterValues CALLs/s); answer time p50 ${n(f.answer_latency_ms_p50 as number, 1)} ms, ` +
        `p99 ${n(f.answer_latency_ms_p99 as number, 1)} ms. Pipeline lag after the load stopped: ${n(f.pipeline_lag_after_stop_s as number, 1)} s.`,
    ];
  } else if (r.scenario === 'latency') {
    body = [
      `Offered ${n(f.offered_meter_values_per_s_while_charging as number)} meter values/s while every charger charges (one meter value per charger every ${n(f.meter_value_interval_ms as number)} ms, time ${n(f.time_compression as number)}x faster); with ramp-up, session starts and idle periods the chargers sent ${n(f.meter_values_answered_per_s as number)}/s on average, all answered.`,
      '',
      '| | p50 | p90 | p99 | p99.9 | max |',
      '| --- | --- | --- | --- | --- | --- |',
      `| answer time seen by chargers, ms | ${n(f.answer_latency_ms_p50 as number, 1)} | ${n(f.answer_latency_ms_p90 as number, 1)} | ${n(f.answer_latency_ms_p99 as number, 1)} | ${n(f.answer_latency_ms_p999 as number, 1)} | ${n(f.answer_latency_ms_max as number, 1)} |`,
      `| freshness (answered → stored), ms, ±${n(f.freshness_resolution_ms as number)} | ${n(f.freshness_ms_p50 as number)} | ${n(f.freshness_ms_p90 as number)} | ${n(f.freshness_ms_p99 as number)} | - | ${n(f.freshness_ms_max as number)} |`,
    ];
  } else if (r.scenario === 'connections') {
    body = [
      `${n(f.connections_held as number)} of ${n(f.chargers_requested as number)} chargers connected at once to one ingest process; ` +
        `ingest memory ${n(f.ingest_kb_per_connection as number, 1)} KB per connection (RSS ${n(f.ingest_rss_mb_idle as number)} MB idle, ` +
        `${n(f.ingest_rss_mb_at_peak as number)} MB at the peak); load generator ${n(f.load_generator_kb_per_connection as number, 1)} KB per connection.`,
      '',
      `Open files are limited to ${n(r.machine.open_files_max)} per process on this machine, which bounds what one ingest ` +
        'process can hold here; the load generator spreads chargers over agent processes and loopback source ' +
        'addresses, so it is not the bound. Raise `ulimit -n` and `--chargers` to look for the real limit.',
    ];
  } else if (r.scenario === 'floor') {
    body = [
      `The latency load (${n(f.offered_meter_values_per_s_while_charging as number)} meter values/s offered while charging) against a server that answers every CALL at once and does nothing else: ` +
        `${n(f.meter_values_answered_per_s as number)} meter values/s answered. What the load generator, the loopback and the machine add to every answer time:`,
      '',
      '| answer time, ms | p50 | p90 | p99 | p99.9 | max |',
      '| --- | --- | --- | --- | --- | --- |',
      `| whole run | ${n(f.answer_latency_ms_p50 as number, 1)} | ${n(f.answer_latency_ms_p90 as number, 1)} | ${n(f.answer_latency_ms_p99 as number, 1)} | ${n(f.answer_latency_ms_p999 as number, 1)} | ${n(f.answer_latency_ms_max as number, 1)} |`,
      `| steady (${n(f.steady_s as number, 1)} s after the ramp) | ${n(f.steady_answer_latency_ms_p50 as number, 1)} | - | ${n(f.steady_answer_latency_ms_p99 as number, 1)} | ${n(f.steady_answer_latency_ms_p999 as number, 1)} | - |`,
    ];
  } else if (r.scenario === 'rating') {
    body = [
      `${n(f.sessions_per_s as number)} sessions/s (${n(f.samples_per_s as number)} meter samples/s) on one thread; ${n(f.sessions_priced as number)} of ${n(f.sessions as number)} sessions priced.` +
        (f.incremental_samples_per_s === undefined
          ? ''
          : ` Incrementally (add a sample, read the running cost): ${n(f.incremental_samples_per_s as number)} samples/s.`),
    ];
  } else {
    body = [
      `evrate: ${n(f.evrate_meter_values_answered_per_s as number)} meter values/s answered (each durable, then rated and stored), p99 ${n(f.evrate_answer_latency_ms_p99 as number, 1)} ms.`,
      `Baseline (ocpp-rpc, strict validation, answers only, writes nothing): ${n(f.baseline_meter_values_answered_per_s as number)} meter values/s, p99 ${n(f.baseline_answer_latency_ms_p99 as number, 1)} ms.`,
      `Ratio evrate / baseline: **${n(f.ratio_meter_values_answered as number, 2)}** for rate, ${n(f.ratio_answer_latency_p99 as number, 2)} for p99 answer time.`,
    ];
  }
  const failures =
    r.failures.length === 0
      ? []
      : ['', 'Failures reported by the run:', '', ...r.failures.map((x) => `- ${x}`)];
  const notes =
    (r.notes ?? []).length === 0 ? [] : ['', 'Notes:', '', ...(r.notes ?? []).map((x) => `- ${x}`)];
  const checked = honesty(r);
  return [
    ...head,
    ...body,
    ...(checked === '' ? [] : ['', checked]),
    ...failures,
    ...notes,
    '',
    ...processes(r),
    '',
  ];
}

/** The figures people quote, one line each, before the details. */
function headline(runs: readonly BenchResult[]): string[] {
  const by = (s: ScenarioName, stack: Stack = 'full') =>
    runs.find((r) => r.scenario === s && stack_of(r) === stack)?.figures;
  const lines: string[] = [];
  const ti = by('throughput', 'ingest');
  if (ti !== undefined)
    lines.push(
      `- Ingest alone, accepted and durable in JetStream: **${n(ti.meter_values_answered_per_s as number)} meter values/s**, steady answer p99 ${n(ti.steady_answer_latency_ms_p99 as number, 1)} ms`,
    );
  const li = by('latency', 'ingest');
  if (li !== undefined)
    lines.push(
      `- Ingest alone at ${n(li.meter_values_answered_per_s as number)} meter values/s answered (${n(li.offered_meter_values_per_s_while_charging as number)}/s offered while charging): steady answer p99 ${n(li.steady_answer_latency_ms_p99 as number, 1)} ms (whole run ${n(li.answer_latency_ms_p99 as number, 1)} ms)`,
    );
  const fl = by('floor');
  if (fl !== undefined)
    lines.push(
      `- Floor, the same load against a server that only answers: steady answer p99 ${n(fl.steady_answer_latency_ms_p99 as number, 1)} ms at ${n(fl.meter_values_answered_per_s as number)} meter values/s (what the load generator and the machine add)`,
    );
  const t = by('throughput');
  if (t !== undefined)
    lines.push(
      `- Throughput, charger to stored row, nothing lost: **${n(t.end_to_end_meter_values_per_s as number)} meter values/s**`,
    );
  const l = by('latency');
  if (l !== undefined) {
    lines.push(
      `- At ${n(l.offered_meter_values_per_s_while_charging as number)} meter values/s offered: answer p99 ${n(l.answer_latency_ms_p99 as number, 1)} ms, freshness p99 ${n(l.freshness_ms_p99 as number)} ms`,
    );
  }
  // Connections: the newer of the two stacks (ingest holds the sockets either way).
  const c = runs
    .filter((x) => x.scenario === 'connections')
    .sort((a, b) => a.started_at.localeCompare(b.started_at))
    .at(-1)?.figures;
  if (c !== undefined) {
    lines.push(
      `- ${n(c.connections_held as number)} chargers on one ingest process, ${n(c.ingest_kb_per_connection as number, 1)} KB each`,
    );
  }
  const r = by('rating');
  if (r !== undefined)
    lines.push(
      `- Rating engine: ${n(r.sessions_per_s as number)} sessions/s on one thread, ${n(r.incremental_samples_per_s as number)} samples/s incrementally`,
    );
  for (const stack of ['ingest', 'full'] as const) {
    const b = by('baseline', stack);
    if (b === undefined) continue;
    lines.push(
      `- ${stack === 'ingest' ? 'evrate ingest alone' : 'evrate, rating and storing'} / plain ocpp-rpc server (answers only, stores nothing): ` +
        `${n(b.ratio_meter_values_answered as number, 2)} of its answer rate ` +
        `(${n(b.evrate_meter_values_answered_per_s as number)} vs ${n(b.baseline_meter_values_answered_per_s as number)} meter values/s)`,
    );
  }
  return lines.length === 0 ? [] : [...lines, ''];
}

const runs = scenario_names
  .flatMap((s) => (['full', 'ingest'] as const).map((stack) => newest(s, stack)))
  .filter((r): r is BenchResult => r !== undefined);
const machine = runs[0]?.machine;
const text = [
  '# Benchmark results',
  '',
  'Written by `node dist/bench/results-md.js` from the newest `bench/results/*/result.json` of each scenario.',
  '',
  machine === undefined
    ? ''
    : `Machine: ${machine.cpus} cores (${machine.cpu_model}), ${machine.memory_gb} GB, Node ${machine.node}, open files max ${machine.open_files_max}. ` +
      'The load generator (simulated chargers) and the harness share these 2 cores with the system under test ' +
      '(ingest and nats-server, and with the full stack also rating and clickhouse-server 18.16). ' +
      'Each run gives the load average at its start: anything else running then took cores from it.',
  '',
  ...headline(runs),
  ...runs.flatMap(section),
].join('\n');
writeFileSync(path.join(project_root, 'bench', 'RESULTS.md'), text);
process.stdout.write(`bench/RESULTS.md written from ${runs.length} runs\n`);
