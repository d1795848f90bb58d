import { Readable } from 'node:stream';
import { createClient } from '@clickhouse/client';
import { ident } from './sql.js';
import { owned_bytes, parse_json_compact, parse_json_rows, type Store, StoreError } from './store.js';

/** A ClickHouse server (or cluster endpoint) over HTTP with @clickhouse/client. */
export async function open_http_store(options: {
  url: string;
  user: string;
  password: string;
  database: string;
}): Promise<Store> {
  const client = createClient({
    url: options.url,
    username: options.user,
    password: options.password,
    request_timeout: 60_000,
    max_open_connections: 16,
  });
  const fail = (error: unknown, sql: string): never => {
    throw new StoreError(`clickhouse ${options.url}: ${(error as Error).message}`, sql.slice(0, 200), {
      cause: error,
    });
  };
  const bytes = async (sql: string): Promise<Buffer> => {
    try {
      const result = await client.exec({ query: sql });
      const chunks: Buffer[] = [];
      for await (const chunk of result.stream) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks);
    } catch (error) {
      return fail(error, sql);
    }
  };
  const text = async (sql: string): Promise<string> => (await bytes(sql)).toString('utf8');
  await text(`CREATE DATABASE IF NOT EXISTS ${ident(options.database)}`);
  const [row] = parse_json_rows<{ v: string }>(await text('SELECT version() AS v FORMAT JSONEachRow'));
  return {
    transport: 'http',
    database: options.database,
    server_version: row?.v ?? 'unknown',
    async exec(sql) {
      await text(sql);
    },
    async query<T>(sql: string) {
      return parse_json_rows<T>(await text(`${sql}\nFORMAT JSONEachRow`));
    },
    async query_arrays<T extends readonly unknown[]>(sql: string) {
      return parse_json_compact<T>(await text(`${sql}\nFORMAT JSONCompact`));
    },
    async query_bytes(sql, format) {
      return owned_bytes(await bytes(`${sql}\nFORMAT ${format}`));
    },
    async insert_json_rows(table, rows) {
      if (rows.length === 0) return;
      const query = `INSERT INTO ${ident(options.database)}.${ident(table)} FORMAT JSONEachRow`;
      try {
        const result = await client.exec({ query, values: Readable.from([`${rows.join('\n')}\n`]) });
        result.stream.resume();
        await new Promise<void>((resolve, reject) => {
          result.stream.once('end', resolve);
          result.stream.once('error', reject);
        });
      } catch (error) {
        fail(error, query);
      }
    },
    async close() {
      await client.close();
    },
  };
}
