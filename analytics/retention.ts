import { ident, sql } from './sql.js';
import { type Store, version_at_least } from './store.js';

/**
 * Retention of raw meter values (the largest table by far). Days to keep come from
 * ANALYTICS_RAW_RETENTION_DAYS (0, the default, keeps them forever: they are the evidence of
 * billing disputes). Servers with table TTL (ClickHouse 20.1 and later; chdb) get a TTL on
 * `timestamp`, so merges drop expired rows continuously. Older servers (Debian's 18.16) have no
 * TTL: there, whole monthly partitions that lie entirely before the cutoff are dropped, each time
 * this runs (at start).
 */
export const raw_retention_env = 'ANALYTICS_RAW_RETENTION_DAYS';
export const raw_retention_days_max = 36_500;

export function raw_retention_days_from_env(env: NodeJS.ProcessEnv = process.env): number {
  const text = env[raw_retention_env];
  if (text === undefined || text === '') return 0;
  const days = Number(text);
  if (!/^\d+$/.test(text) || days > raw_retention_days_max) {
    throw new RangeError(
      `${raw_retention_env}: must be an integer from 0 to ${raw_retention_days_max}, got ${text}`,
    );
  }
  return days;
}

export function has_table_ttl(server_version: string): boolean {
  return version_at_least(server_version, 20, 1);
}

export interface RetentionOutcome {
  method: 'none' | 'ttl' | 'drop_partitions';
  dropped_partitions: string[];
}

export async function apply_raw_retention(
  store: Store,
  days: number,
  now_ms: number = Date.now(),
  /** meter_values, or another raw table with a `timestamp` column (ocpp_frames). */
  table: 'meter_values' | 'ocpp_frames' = 'meter_values',
): Promise<RetentionOutcome> {
  const db = ident(store.database);
  const t = ident(table).text;
  if (has_table_ttl(store.server_version)) {
    const ttl = `timestamp + toIntervalDay(${sql`${days}`})`;
    const [found] = await store.query<{ create_table_query: string; engine: string }>(
      sql`SELECT create_table_query, engine FROM system.tables WHERE database = ${store.database} AND name = ${table}`
        .text,
    );
    // On a cluster meter_values is a Distributed table over meter_values_local, whose TTL is set
    // by the cluster DDL (cluster.ts); a Distributed table has none.
    if (found?.engine === 'Distributed') return { method: 'none', dropped_partitions: [] };
    const current = /\bTTL\s+(.+?)(\s+SETTINGS\b|$)/s.exec(found?.create_table_query ?? '')?.[1]?.trim();
    if (days === 0) {
      // Rewriting every part to change a TTL is costly on a big table: touch it only on a change.
      if (current !== undefined) await store.exec(`ALTER TABLE ${db}.${t} REMOVE TTL`);
      return { method: 'none', dropped_partitions: [] };
    }
    if (current?.replace(/\s+/g, '') !== ttl.replace(/\s+/g, '')) {
      await store.exec(`ALTER TABLE ${db}.${t} MODIFY TTL ${ttl}`);
    }
    return { method: 'ttl', dropped_partitions: [] };
  }
  if (days === 0) return { method: 'none', dropped_partitions: [] };
  // toYYYYMM partitions: a month may go when the first day of the next month is at or before
  // the cutoff, i.e. the month is before the cutoff's month.
  const cutoff = new Date(now_ms - days * 86_400_000);
  const cutoff_month = cutoff.getUTCFullYear() * 100 + cutoff.getUTCMonth() + 1;
  const partitions = await store.query<{ partition: string }>(
    sql`SELECT DISTINCT partition FROM system.parts
        WHERE database = ${store.database} AND table = ${table} AND active`.text,
  );
  const expired = partitions
    .map((p) => p.partition)
    .filter((p) => /^\d{6}$/.test(p) && Number(p) < cutoff_month)
    .sort();
  for (const partition of expired) {
    await store.exec(`ALTER TABLE ${db}.${t} DROP PARTITION ${sql`${Number(partition)}`}`);
  }
  return { method: 'drop_partitions', dropped_partitions: expired };
}
