import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';

/**
 * The billing ledger's connection: PostgreSQL, embedded (PGlite, PostgreSQL 18 compiled to WASM,
 * one connection in this process) or a server (`pg`, a pool). Both speak the same SQL with `$n`
 * parameters, so one set of migrations and one query layer serve both: the rest of billing sees
 * only `query` and `transaction`. `pg` rather than `postgres` or Kysely because its query API is
 * the same shape as PGlite's (`query(text, params) -> { rows }`) and both let us parse int8 and
 * numeric the same way, which keeps the adapter a dozen lines.
 *
 * Amounts are integer minor units in int8 columns, parsed to JS numbers and checked to be safe
 * integers (far above any invoice); numeric is returned as text, never a float.
 */
export interface Queryable {
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  /** Several statements without parameters (migrations). */
  exec(text: string): Promise<void>;
}

export interface Ledger extends Queryable {
  readonly kind: 'pglite' | 'server';
  /** Runs `work` in one transaction (READ COMMITTED); it commits when `work` resolves. */
  transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

function int8(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new RangeError(`int8 ${text} is beyond 2^53`);
  return value;
}

const int8_oid = 20;
const numeric_oid = 1700;

export async function open_pglite(data_dir: string): Promise<Ledger> {
  mkdirSync(data_dir, { recursive: true });
  const db = new PGlite(data_dir, { parsers: { [int8_oid]: int8, [numeric_oid]: (text: string) => text } });
  await db.waitReady;
  return {
    kind: 'pglite',
    async query<T>(text: string, params: unknown[] = []) {
      return (await db.query<T>(text, params)).rows;
    },
    async exec(text: string) {
      await db.exec(text);
    },
    async transaction<T>(work: (tx: Queryable) => Promise<T>) {
      return await db.transaction(async (tx) =>
        work({
          async query<R>(text: string, params: unknown[] = []) {
            return (await tx.query<R>(text, params)).rows;
          },
          async exec(text: string) {
            await tx.exec(text);
          },
        }),
      );
    },
    async close() {
      await db.close();
    },
  };
}

export function open_server(url: string, options: { connections_max: number }): Ledger {
  const types = {
    getTypeParser(oid: number, format?: 'text' | 'binary') {
      if (oid === int8_oid) return int8;
      if (oid === numeric_oid) return (text: string) => text;
      return pg.types.getTypeParser(oid, format);
    },
  };
  const pool = new pg.Pool({ connectionString: url, max: options.connections_max, types });
  // An idle client losing its server (restart) must not crash the process; the next query reconnects.
  pool.on('error', () => {});
  return {
    kind: 'server',
    async query<T>(text: string, params: unknown[] = []) {
      return (await pool.query(text, params)).rows as T[];
    },
    async exec(text: string) {
      await pool.query(text);
    },
    async transaction<T>(work: (tx: Queryable) => Promise<T>) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await work({
          async query<R>(text: string, params: unknown[] = []) {
            return (await client.query(text, params)).rows as R[];
          },
          async exec(text: string) {
            await client.query(text);
          },
        });
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      } finally {
        client.release();
      }
    },
    async close() {
      await pool.end();
    },
  };
}

export async function open_ledger(options: {
  database_url: string | undefined;
  data_dir: string;
}): Promise<Ledger> {
  if (options.database_url !== undefined) return open_server(options.database_url, { connections_max: 8 });
  return await open_pglite(options.data_dir);
}
