import { ocpp_rejection_key } from './migrations.js';
import { and, count_of } from './query-filter.js';
import { ident, type SqlFragment, sql } from './sql.js';
import type { Store } from './store.js';

/**
 * Frames refused with a CALLERROR, by error code and action. The rating service writes a batch's
 * rejections again when JetStream redelivers the batch, and ocpp_rejections (a ReplacingMergeTree
 * since migration 35) folds the copies only when it merges: every count here is of distinct
 * rejections (charge point, time, node, action, error code), merged or not.
 */
export interface RejectionCount {
  error_code: string;
  action: string;
  frames: number;
  chargers: number;
}

export interface Rejections {
  rejected_frames: number;
  by_error_code_and_action: RejectionCount[];
}

export interface RejectionFilter {
  from_ms: number;
  to_ms: number;
  station_id?: string;
}

export async function rejections(store: Store, filter: RejectionFilter): Promise<Rejections> {
  const db = ident(store.database);
  const parts: SqlFragment[] = [
    // `at` (whole seconds, the partition key) narrows the months read; at_ms decides.
    sql`at >= toDateTime(${Math.floor(filter.from_ms / 1000)})`,
    sql`at <= toDateTime(${Math.ceil(filter.to_ms / 1000)})`,
    sql`at_ms >= ${filter.from_ms}`,
    sql`at_ms < ${filter.to_ms}`,
  ];
  if (filter.station_id !== undefined) parts.push(sql`charge_point_id = ${filter.station_id}`);
  const rows = await store.query<{ error_code: string; action: string; frames: unknown; chargers: unknown }>(
    `SELECT error_code, action, count() AS frames, uniqExact(charge_point_id) AS chargers
     FROM (
       SELECT DISTINCT ${ocpp_rejection_key.join(', ')}
       FROM ${sql`${db}.ocpp_rejections`.text}
       WHERE ${and(parts)}
     )
     GROUP BY error_code, action
     ORDER BY frames DESC, error_code, action`,
  );
  const by = rows.map((r) => ({
    error_code: r.error_code,
    action: r.action,
    frames: count_of(r.frames),
    chargers: count_of(r.chargers),
  }));
  return { rejected_frames: by.reduce((n, r) => n + r.frames, 0), by_error_code_and_action: by };
}
