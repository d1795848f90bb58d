import { mkdirSync } from 'node:fs';
import { type ChildServer, require_binary, spawn_server } from './child.js';
import type { Logger } from './log.js';
import { free_port, wait_for_port } from './ports.js';

export const nats_server_binary = '/usr/sbin/nats-server';

export interface LocalNatsServer extends ChildServer {
  readonly url: string;
  readonly port: number;
}

/**
 * Starts a private `nats-server -js` on 127.0.0.1 with its JetStream store in store_dir.
 * port 0 picks a free port.
 */
export async function start_nats_server(options: {
  store_dir: string;
  port: number;
  log?: Logger;
  /** A member of a JetStream cluster on loopback: its name, route port and the other routes. */
  cluster?: { name: string; server_name: string; route_port: number; routes: string[] };
}): Promise<LocalNatsServer> {
  require_binary(nats_server_binary, 'nats-server');
  mkdirSync(options.store_dir, { recursive: true });
  const port = options.port === 0 ? await free_port() : options.port;
  const cluster = options.cluster;
  const { child, server, output } = spawn_server(
    nats_server_binary,
    [
      '-js',
      '-a',
      '127.0.0.1',
      '-p',
      String(port),
      '-sd',
      options.store_dir,
      ...(cluster === undefined
        ? []
        : [
            '-n',
            cluster.server_name,
            '--cluster_name',
            cluster.name,
            '--cluster',
            `nats://127.0.0.1:${cluster.route_port}`,
            '--routes',
            cluster.routes.join(','),
          ]),
    ],
    options.log,
  );
  const failed = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`nats-server exited (code ${code}): ${output()}`))),
  );
  failed.catch(() => {});
  await Promise.race([wait_for_port('127.0.0.1', port, 15_000), failed]);
  const url = `nats://127.0.0.1:${port}`;
  options.log?.info(
    { url, store_dir: options.store_dir, nats_server_pid: server.pid },
    'local nats-server started',
  );
  return { ...server, url, port };
}
