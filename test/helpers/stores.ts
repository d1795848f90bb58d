import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { open_chdb_store } from '../../analytics/chdb-store.js';
import { open_http_store } from '../../analytics/http-store.js';
import { migrate } from '../../analytics/migrations.js';
import type { Store } from '../../analytics/store.js';
import { start_clickhouse_server } from './clickhouse-server.js';

export interface TestStore {
  store: Store;
  dispose(): Promise<void>;
}

/**
 * The two transports every store test runs against: the embedded engine (chdb, current ClickHouse)
 * and Debian's clickhouse-server 18.16 over HTTP, each fresh, private and migrated.
 * Use with `describe.each(store_transports)`.
 */
export const store_transports: { name: string; open(): Promise<TestStore> }[] = [
  {
    name: 'chdb',
    async open() {
      const dir = mkdtempSync(path.join(tmpdir(), 'evrate-chdb-'));
      const store = await open_chdb_store(dir, 'evrate');
      await migrate(store);
      return {
        store,
        async dispose() {
          await store.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    name: 'clickhouse-server',
    async open() {
      const server = await start_clickhouse_server();
      const store = await open_http_store({
        url: server.url,
        user: 'default',
        password: '',
        database: 'evrate',
      });
      await migrate(store);
      return {
        store,
        async dispose() {
          await store.close();
          await server.dispose();
        },
      };
    },
  },
];
