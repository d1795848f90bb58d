import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type ChildServer, require_binary, spawn_server } from '../../core/child.js';
import { free_port } from '../../core/ports.js';

export const clickhouse_server_binary = '/usr/sbin/clickhouse-server';

export interface PrivateClickHouse extends ChildServer {
  readonly url: string;
  readonly http_port: number;
  readonly dir: string;
  /** Starts it again on the same ports and data after stop() or kill(). */
  restart(): Promise<void>;
  /** Stops it and removes its data directory. */
  dispose(): Promise<void>;
}

function write_config(dir: string, http_port: number, tcp_port: number): string {
  const users = path.join(dir, 'users.xml');
  writeFileSync(
    users,
    `<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
`,
  );
  const config = path.join(dir, 'config.xml');
  writeFileSync(
    config,
    `<?xml version="1.0"?>
<yandex>
  <logger>
    <level>warning</level>
    <log>${dir}/log/server.log</log>
    <errorlog>${dir}/log/error.log</errorlog>
    <size>10M</size>
    <count>2</count>
  </logger>
  <http_port>${http_port}</http_port>
  <tcp_port>${tcp_port}</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>${dir}/data/</path>
  <tmp_path>${dir}/tmp/</tmp_path>
  <user_files_path>${dir}/user_files/</user_files_path>
  <format_schema_path>${dir}/format_schemas/</format_schema_path>
  <users_config>${users}</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
</yandex>
`,
  );
  for (const sub of ['log', 'data', 'tmp', 'user_files', 'format_schemas']) {
    mkdirSync(path.join(dir, sub), { recursive: true });
  }
  return config;
}

async function wait_ready(url: string, exited: () => string | undefined, timeout_ms: number): Promise<void> {
  const deadline = Date.now() + timeout_ms;
  for (;;) {
    const why = exited();
    if (why !== undefined) throw new Error(`clickhouse-server exited: ${why}`);
    try {
      const response = await fetch(`${url}/ping`);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline)
      throw new Error(`clickhouse-server not ready at ${url} after ${timeout_ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A private Debian clickhouse-server (18.16 here) on free loopback ports with its data in a
 * temporary directory. For integration tests only.
 */
export async function start_clickhouse_server(): Promise<PrivateClickHouse> {
  require_binary(clickhouse_server_binary, 'clickhouse-server');
  const dir = mkdtempSync(path.join(tmpdir(), 'evrate-ch-'));
  const http_port = await free_port();
  const tcp_port = await free_port();
  const config = write_config(dir, http_port, tcp_port);
  const url = `http://127.0.0.1:${http_port}`;
  let current: ChildServer;
  const launch = async () => {
    const { child, server, output } = spawn_server(
      clickhouse_server_binary,
      [`--config-file=${config}`],
      undefined,
    );
    current = server;
    let exit_reason: string | undefined;
    child.once('exit', (code, signal) => {
      exit_reason = `code ${code} signal ${signal}: ${output()}`;
    });
    await wait_ready(url, () => exit_reason, 60_000);
  };
  await launch();
  return {
    url,
    http_port,
    dir,
    get pid() {
      return current.pid;
    },
    stop: () => current.stop(),
    kill: () => current.kill(),
    restart: launch,
    async dispose() {
      await current.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
