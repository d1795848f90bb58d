/** Writes a run's result.json, summary.md and chart.svg under bench/results/. */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { project_root } from '../core/paths.js';
import { render_chart } from './chart.js';
import type { BenchResult } from './result.js';

function cell(v: unknown): string {
  if (typeof v === 'number')
    return Number.isFinite(v) ? v.toLocaleString('en-US', { maximumFractionDigits: 2 }) : '-';
  return String(v);
}

/** What was measured: the whole pipeline, or ingest and NATS alone (--stack ingest). */
export function stack_of(r: BenchResult): 'full' | 'ingest' {
  return r.options.stack === 'ingest' ? 'ingest' : 'full';
}

export function render_summary(r: BenchResult): string {
  const ingest_only = stack_of(r) === 'ingest';
  const lines: string[] = [
    `# evrate benchmark: ${r.scenario}${ingest_only ? ' (ingest and NATS alone)' : ''}`,
    '',
    `**${r.ok ? 'PASS' : 'FAIL'}** — ${r.started_at} to ${r.finished_at}`,
    '',
    '```sh',
    r.command,
    '```',
    '',
    `Machine: ${r.machine.cpus} cores (${r.machine.cpu_model}), ${r.machine.memory_gb} GB, Node ${r.machine.node}, ` +
      `open files max ${r.machine.open_files_max}, load average ${r.machine.load_average_1m_at_start} at the start. ` +
      'The load generator runs on the same cores as the system under test.',
    '',
    '## Figures',
    '',
    '| figure | value |',
    '| --- | --- |',
    ...Object.entries(r.figures).map(([k, v]) => `| ${k} | ${cell(v)} |`),
    '',
  ];
  if (r.honesty !== undefined) {
    const h = r.honesty;
    lines.push(
      '## Honesty check',
      '',
      '| check | sent / finished | stored / priced | equal |',
      '| --- | --- | --- | --- |',
      `| meter values (sampled values answered vs ${ingest_only ? 'distinct values in the JetStream stream' : 'rows in meter_values'}) | ${cell(h.meter_values_sent)} | ${cell(h.meter_values_stored)} | ${h.meter_values_sent === h.meter_values_stored ? 'yes' : '**no**'} |`,
      `| sessions (stops answered vs ${ingest_only ? 'stop events in the stream' : 'final rated sessions'}) | ${cell(h.sessions_finished)} | ${cell(h.sessions_priced)} | ${h.sessions_finished === h.sessions_priced ? 'yes' : '**no**'} |`,
      '',
      `Provisional sessions: ${h.sessions_provisional}; CALLs abandoned by chargers: ${h.calls_abandoned}.`,
      '',
    );
  }
  if (r.failures.length > 0) lines.push('## Failures', '', ...r.failures.map((f) => `- ${f}`), '');
  if ((r.notes ?? []).length > 0) lines.push('## Notes', '', ...(r.notes ?? []).map((f) => `- ${f}`), '');
  lines.push(
    '## Processes',
    '',
    'CPU while the chargers ran (mean and peak cores over the load window), CPU to the end of the run',
    '(pipeline catching up included), resident memory at the end and at its peak.',
    '',
    '| process | CPU s (load) | mean cores | max cores | CPU s (total) | RSS MB (end) | max RSS MB |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...r.processes.map(
      (p) =>
        `| ${p.name} | ${cell(p.cpu_s)} | ${cell(p.cpu_cores_mean)} | ${cell(p.cpu_cores_max)} | ${cell(p.cpu_s_total)} | ${cell(p.rss_mb)} | ${cell(p.rss_mb_max)} |`,
    ),
    '',
  );
  if (r.load !== undefined) {
    lines.push(
      '## Load generator counters',
      '',
      '| counter | value |',
      '| --- | --- |',
      ...Object.entries(r.load).map(([k, v]) => `| ${k} | ${cell(v)} |`),
      '',
    );
  }
  if (r.series.length > 0) lines.push('![throughput and latency over time](chart.svg)', '');
  return lines.join('\n');
}

/** Returns the directory written. */
export function write_report(r: BenchResult, out_dir?: string): string {
  const dir =
    out_dir ??
    path.join(
      project_root,
      'bench',
      'results',
      `${r.scenario}${stack_of(r) === 'ingest' ? '-ingest' : ''}-${r.started_at.replace(/[:.]/g, '-')}`,
    );
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'result.json'), `${JSON.stringify(r, null, 2)}\n`);
  writeFileSync(path.join(dir, 'summary.md'), render_summary(r));
  if (r.series.length > 0) {
    writeFileSync(
      path.join(dir, 'chart.svg'),
      render_chart(`evrate ${r.scenario} (${r.started_at})`, r.series),
    );
  }
  return dir;
}
