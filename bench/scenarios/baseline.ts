/**
 * The same closed-loop load, first against evrate (answers only once events are durable, and
 * rates and stores them), then against a plain ocpp-rpc server that only answers. Run one after
 * the other, not at once: on a shared machine they would take each other's cores.
 */
import { drive } from '../drive.js';
import { round } from '../proc-stats.js';
import type { BenchResult } from '../result.js';
import { answering_server_failures, start_answering_server } from './answering-server.js';
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
import type { ScenarioOutcome } from './stack-scenarios.js';

export async function baseline(o: BenchOptions): Promise<ScenarioOutcome> {
  const series: BenchResult['series'] = [];
  const t0_ms = Date.now();
  const stack = await open_stack(o);
  let ours: Awaited<ReturnType<typeof drive>>;
  let honesty: Awaited<ReturnType<typeof check_honesty>>;
  let warnings: string[] = [];
  try {
    ours = await drive(stack_target(stack, o), drive_options(o, 'closed', 0), series, t0_ms);
    honesty = await check_honesty(stack, ours, o);
    if (!honesty.ok) warnings = stack_warnings(stack);
  } finally {
    await stack.stop();
  }
  const server = await start_answering_server('bench/baseline-server.js', 'baseline');
  let theirs: Awaited<ReturnType<typeof drive>>;
  try {
    theirs = await drive(
      {
        name: 'baseline',
        ocpp_url_base: server.url_base,
        processes: () => [{ name: 'baseline server', pids: [server.child.pid ?? -1] }],
      },
      drive_options(o, 'closed', 0),
      series,
      t0_ms,
    );
  } finally {
    await server.stop();
  }
  const ours_figures = load_figures(ours);
  const theirs_figures = load_figures(theirs);
  const figures: Record<string, number> = {
    ratio_meter_values_answered: round(
      ours_figures.meter_values_answered_per_s! / theirs_figures.meter_values_answered_per_s!,
      3,
    ),
    ratio_answer_latency_p99: round(
      ours_figures.answer_latency_ms_p99! / theirs_figures.answer_latency_ms_p99!,
      3,
    ),
  };
  for (const [k, v] of Object.entries(ours_figures)) figures[`evrate_${k}`] = v;
  for (const [k, v] of Object.entries(theirs_figures)) figures[`baseline_${k}`] = v;
  const failures = [
    ...honesty_failures(honesty, ours.counters.sessions_started),
    ...ours.failures,
    ...theirs.failures,
    ...answering_server_failures('baseline', theirs.counters),
    ...warnings,
  ];
  return {
    ok: honesty.ok && failures.length === 0,
    failures,
    honesty,
    figures,
    load: ours.counters,
    processes: [
      ...ours.processes.map((p) => ({ ...p, name: `evrate run: ${p.name}` })),
      ...theirs.processes.map((p) => ({ ...p, name: `baseline run: ${p.name}` })),
    ],
    series,
  };
}
