import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { create_logger } from '../../core/log.js';
import { connect_nats, type Nats } from '../../core/nats.js';
import { type LocalNatsServer, start_nats_server } from '../../core/nats-server.js';
import { free_port } from '../../core/ports.js';

interface Node {
  name: string;
  port: number;
  route_port: number;
  dir: string;
  server: LocalNatsServer | undefined;
}

export interface NatsCluster {
  /** Every node's client URL, comma-separated, as NATS_URL takes them. */
  url: string;
  size: number;
  /** A connection for the test itself (streams created with `replicas`). */
  nats: Nats;
  /** SIGKILL node i (its store stays). */
  kill(i: number): Promise<void>;
  /** Starts node i again on its ports with its store; it catches up from the others. */
  restart(i: number): Promise<void>;
  /**
   * Resolves once every stream (KV buckets included) has a leader and all its other replicas are
   * current: only then may another node go without losing the quorum.
   */
  healthy(timeout_ms?: number): Promise<void>;
  dispose(): Promise<void>;
}

/**
 * A JetStream cluster of `size` nats-servers routed on loopback, each on free ports with its own
 * store. Resolves once the cluster has a meta leader (streams with `replicas` can be created).
 */
export async function start_nats_cluster(size = 3, replicas = 3): Promise<NatsCluster> {
  const nodes: Node[] = [];
  for (let i = 0; i < size; i++) {
    nodes.push({
      name: `n${i + 1}`,
      port: await free_port(),
      route_port: await free_port(),
      dir: mkdtempSync(path.join(tmpdir(), `evrate-nats-cluster-n${i + 1}-`)),
      server: undefined,
    });
  }
  const routes = nodes.map((n) => `nats://127.0.0.1:${n.route_port}`);
  const start = async (node: Node) => {
    node.server = await start_nats_server({
      store_dir: node.dir,
      port: node.port,
      cluster: { name: 'evrate-test', server_name: node.name, route_port: node.route_port, routes },
    });
  };
  await Promise.all(nodes.map(start));
  const url = nodes.map((n) => `nats://127.0.0.1:${n.port}`).join(',');
  // The meta leader is elected a moment after the routes connect: until then JetStream answers
  // "temporarily unavailable" and the stream cannot be created.
  let nats: Nats | undefined;
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      nats = await connect_nats(
        {
          nats_stream: 'EVRATE_EVENTS',
          nats_subject_prefix: 'evrate',
          node_id: 'cluster-test',
          nats_replicas: replicas,
        },
        url,
        create_logger('warn'),
      );
      break;
    } catch (error) {
      await nats?.close().catch(() => {});
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  return {
    url,
    size,
    nats,
    async kill(i) {
      await nodes[i]!.server?.kill();
      nodes[i]!.server = undefined;
    },
    async restart(i) {
      await start(nodes[i]!);
    },
    async healthy(timeout_ms = 120_000) {
      const until = Date.now() + timeout_ms;
      for (;;) {
        let lagging = '';
        try {
          for await (const info of nats.jsm.streams.list()) {
            const c = info.cluster;
            const replicas = c?.replicas ?? [];
            if (c?.leader === undefined || replicas.length !== size - 1 || replicas.some((r) => !r.current)) {
              lagging = `${info.config.name}: leader ${c?.leader}, replicas ${JSON.stringify(replicas)}`;
              break;
            }
          }
        } catch (error) {
          lagging = (error as Error).message;
        }
        if (lagging === '') return;
        if (Date.now() > until) throw new Error(`the cluster is not healthy: ${lagging}`);
        await new Promise((r) => setTimeout(r, 500));
      }
    },
    async dispose() {
      await nats.close().catch(() => {});
      await Promise.all(nodes.map((n) => n.server?.stop()));
      for (const n of nodes) rmSync(n.dir, { recursive: true, force: true });
    },
  };
}
