/**
 * The ingest tier alone: a private nats-server and one `evrate start` with ROLES=ingest. What
 * the chargers were answered for is counted back from the JetStream events stream (the durable
 * point ingest answers after), not from ClickHouse: this stack measures accepted-and-durable,
 * with no rating or storage sharing the cores.
 */
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { connect_nats, type Nats } from '../core/nats.js';
import { start_nats_server } from '../core/nats-server.js';
import { start_evrate } from '../test/helpers/process.js';
import { type BenchStack, bench_ingest_env, ocpp_url_of, stack_dir } from './stack.js';
import { StreamCounter } from './stream-count.js';

const stream = 'EVRATE_EVENTS';

export async function start_ingest_bench_stack(env: Record<string, string> = {}): Promise<BenchStack> {
  const { dir, stops, stop } = stack_dir('evrate-bench-ingest-');
  try {
    const nats_server = await start_nats_server({ store_dir: path.join(dir, 'nats'), port: 0 });
    stops.push(() => nats_server.stop());
    const ingest = await start_evrate(
      {
        NATS_URL: nats_server.url,
        NATS_STREAM: stream,
        LOG_LEVEL: 'warn',
        ROLES: 'ingest',
        NODE_ID: 'bench-ingest',
        DATA_DIR: path.join(dir, 'ingest'),
        ...bench_ingest_env,
        ...env,
      },
      undefined,
      // e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to see where ingest spends its time.
      (process.env.BENCH_INGEST_NODE_ARGS ?? '').split(' ').filter((a) => a !== ''),
    );
    stops.push(async () => {
      await ingest.kill('SIGTERM');
      // What ingest printed (e.g. with BENCH_INGEST_NODE_ARGS=--trace-gc), kept for a look.
      const keep = process.env.BENCH_INGEST_OUTPUT;
      if (keep !== undefined && keep !== '') writeFileSync(keep, ingest.output());
    });
    const kill_child = () => {
      if (ingest.child.exitCode === null) ingest.child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    };
    process.once('exit', kill_child);
    stops.push(async () => {
      process.removeListener('exit', kill_child);
    });
    const silent = { child: () => silent, info() {}, warn() {}, error() {}, debug() {} };
    const nats: Nats = await connect_nats(
      { nats_stream: stream, nats_subject_prefix: 'evrate', node_id: 'bench-counter' },
      nats_server.url,
      silent as unknown as Parameters<typeof connect_nats>[2],
    );
    stops.push(() => nats.close());
    const counter = new StreamCounter(nats, stream);
    return {
      ocpp_url_base: ocpp_url_of(ingest),
      api_url: '',
      operator_token: '',
      database: '',
      output: () => `--- ingest ---\n${ingest.output()}`,
      processes: () => [
        { name: 'ingest', pids: [ingest.child.pid ?? -1] },
        { name: 'nats', pids: [nats_server.pid] },
      ],
      meter_values_rough: async () => (await counter.count()).meter_values,
      meter_values_exact: async () => (await counter.count()).meter_values,
      rated_sessions_final: async () => (await counter.count()).sessions_stopped,
      provisional_sessions: async () => 0,
      async delete_meter_values_of(charge_point_id) {
        counter.excluded.add(charge_point_id);
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
