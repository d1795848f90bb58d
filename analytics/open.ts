import path from 'node:path';
import type { Config } from '../core/config.js';
import { open_chdb_store } from './chdb-store.js';
import { open_http_store } from './http-store.js';
import type { Store } from './store.js';

/** CLICKHOUSE_URL set: that server over HTTP. Unset: the embedded engine under DATA_DIR. */
export async function open_store(
  config: Pick<
    Config,
    'clickhouse_url' | 'clickhouse_user' | 'clickhouse_password' | 'clickhouse_database' | 'data_dir'
  >,
): Promise<Store> {
  if (config.clickhouse_url !== undefined) {
    return await open_http_store({
      url: config.clickhouse_url,
      user: config.clickhouse_user,
      password: config.clickhouse_password,
      database: config.clickhouse_database,
    });
  }
  return await open_chdb_store(path.join(config.data_dir, 'chdb'), config.clickhouse_database);
}
