import { type AnalyticsFilter, count_of, facts_from } from './query-filter.js';
import { sql } from './sql.js';
import type { Store } from './store.js';

/** Bucket lower bounds; a bucket runs to the next bound (the last one is open). */
export const duration_bucket_bounds_s = [0, 900, 1800, 3600, 7200, 14_400, 28_800] as const;
export const energy_bucket_bounds_wh = [0, 5000, 10_000, 20_000, 40_000, 80_000] as const;

export interface Bucket {
  from: number;
  /** null for the last, open bucket */
  to: number | null;
  sessions: number;
}

export interface SessionDistributions {
  duration_s: Bucket[];
  energy_wh: Bucket[];
}

function buckets(bounds: readonly number[], counts: Map<number, number>): Bucket[] {
  return bounds.map((from, i) => ({ from, to: bounds[i + 1] ?? null, sessions: counts.get(i) ?? 0 }));
}

/** How long sessions last and how much they charge, over the sessions started in the range. */
export async function session_distributions(
  store: Store,
  filter: AnalyticsFilter,
): Promise<SessionDistributions> {
  // A value's bucket index is the number of bounds above 0 it reaches (no lambda: ClickHouse
  // 18.16 cannot see the row's columns from a lambda inside ARRAY JOIN).
  const index_of = (column: string, bounds: readonly number[]) =>
    bounds
      .slice(1)
      .map((b) => `(${column} >= ${sql`${b}`})`)
      .join(' + ');
  const rows = await store.query<{ measure: string; bucket: number; sessions: unknown }>(
    `SELECT m.1 AS measure, m.2 AS bucket, count() AS sessions
     FROM ${facts_from(store, filter)}
     ARRAY JOIN [
       ('duration', toUInt32(${index_of('duration_s', duration_bucket_bounds_s)})),
       ('energy', toUInt32(${index_of('energy_wh', energy_bucket_bounds_wh)}))
     ] AS m
     GROUP BY measure, bucket`,
  );
  const duration = new Map<number, number>();
  const energy = new Map<number, number>();
  for (const r of rows) {
    (r.measure === 'duration' ? duration : energy).set(Number(r.bucket), count_of(r.sessions));
  }
  return {
    duration_s: buckets(duration_bucket_bounds_s, duration),
    energy_wh: buckets(energy_bucket_bounds_wh, energy),
  };
}
