import { mkdirSync } from 'node:fs';
import { Session } from 'chdb';
import { ident } from './sql.js';
import { owned_bytes, parse_json_compact, parse_json_rows, type Store, StoreError } from './store.js';

/**
 * The embedded ClickHouse engine. One process owns one data directory; queries run off the event
 * loop (chdb's async API).
 */
export async function open_chdb_store(data_dir: string, database: string): Promise<Store> {
  mkdirSync(data_dir, { recursive: true });
  const session = new Session(data_dir);
  const answer = async (sql: string, format?: string) => {
    try {
      return await session.queryAsync(sql, format === undefined ? {} : { format });
    } catch (error) {
      throw new StoreError(`chdb: ${(error as Error).message}`, sql.slice(0, 200), { cause: error });
    }
  };
  const run = async (sql: string, format?: string) => (await answer(sql, format)).text();
  await run(`CREATE DATABASE IF NOT EXISTS ${ident(database)}`);
  const [row] = parse_json_rows<{ v: string }>(await run('SELECT version() AS v', 'JSONEachRow'));
  const store: Store = {
    transport: 'chdb',
    database,
    server_version: row?.v ?? 'unknown',
    async exec(sql) {
      await run(sql);
    },
    async query<T>(sql: string) {
      return parse_json_rows<T>(await run(sql, 'JSONEachRow'));
    },
    async query_arrays<T extends readonly unknown[]>(sql: string) {
      return parse_json_compact<T>(await run(sql, 'JSONCompact'));
    },
    async query_bytes(sql, format) {
      return owned_bytes((await answer(sql, format)).bytes());
    },
    async insert_json_rows(table, rows) {
      if (rows.length === 0) return;
      try {
        await session.insert({
          table: `${ident(database)}.${ident(table)}`,
          values: Buffer.from(`${rows.join('\n')}\n`),
          format: 'JSONEachRow',
        });
      } catch (error) {
        throw new StoreError(`chdb insert into ${table}: ${(error as Error).message}`, table, {
          cause: error,
        });
      }
    },
    async close() {
      session.close();
    },
  };
  return store;
}
