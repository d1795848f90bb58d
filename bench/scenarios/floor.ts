/**
 * The latency load against the echo server (bench/echo-server.ts), which answers every CALL at
 * once and does nothing else: the answer times the load generator, the loopback and the machine
 * give on their own. Set beside a latency run with the same options, the difference is evrate's.
 */
import { drive } from '../drive.js';
import { round } from '../proc-stats.js';
import type { BenchResult } from '../result.js';
import { answering_server_failures, start_answering_server } from './answering-server.js';
import { type BenchOptions, drive_options, load_figures } from './common.js';
import { latency_interval_ms, type ScenarioOutcome } from './stack-scenarios.js';

export async function floor(o: BenchOptions): Promise<ScenarioOutcome> {
  const interval_ms = latency_interval_ms(o);
  const server = await start_answering_server('bench/echo-server.js', 'echo');
  try {
    const series: BenchResult['series'] = [];
    const outcome = await drive(
      {
        name: 'echo',
        ocpp_url_base: server.url_base,
        processes: () => [{ name: 'echo server', pids: [server.child.pid ?? -1] }],
      },
      drive_options(o, 'interval', interval_ms),
      series,
      Date.now(),
    );
    const failures = [...outcome.failures, ...answering_server_failures('echo server', outcome.counters)];
    return {
      ok: failures.length === 0,
      failures,
      figures: {
        offered_meter_values_per_s_while_charging: o.rate,
        meter_value_interval_ms: interval_ms,
        time_compression: round((o.sim_interval_s * 1000) / interval_ms, 1),
        ...load_figures(outcome),
      },
      load: outcome.counters,
      processes: outcome.processes,
      series,
    };
  } finally {
    await server.stop();
  }
}
