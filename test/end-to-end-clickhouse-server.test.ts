import { afterAll } from 'vitest';
import { describe_end_to_end } from './end-to-end.js';
import { type PrivateClickHouse, start_clickhouse_server } from './helpers/clickhouse-server.js';

let server: PrivateClickHouse | undefined;
afterAll(async () => {
  await server?.dispose();
});

describe_end_to_end('a ClickHouse server over HTTP (Debian clickhouse-server)', async () => {
  server = await start_clickhouse_server();
  return { CLICKHOUSE_URL: server.url };
});
