import { ident, sql } from './sql.js';
import type { Store } from './store.js';

/**
 * Dispute analytics: one row per dispute case and change (ReplacingMergeTree keyed by case,
 * the latest change wins under FINAL), written by billing/disputes after each committed change.
 * The ledger is the truth; this is its copy for figures by reason, station, outcome, amounts and
 * time to resolve. Runs on 18.16 and current servers alike (no Map, no DateTime64).
 */
export function dispute_statements(db: string): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS ${db}.dispute_cases (
      case_id UInt64,
      updated_at_ms UInt64,
      opened_at DateTime('UTC'),
      opened_at_ms Int64,
      resolved_at_ms Int64,
      reason String,
      source String,
      station_id String,
      charge_point_id String,
      state String,
      outcome String,
      currency String,
      amount_disputed_minor Int64,
      credited_minor Int64,
      time_to_resolve_s Int64
    ) ENGINE = ReplacingMergeTree(updated_at_ms)
    PARTITION BY toYYYYMM(opened_at)
    ORDER BY case_id`,
  ];
}

export interface DisputeCaseFact {
  id: number;
  updated_at_ms: number;
  opened_at_ms: number;
  resolved_at_ms: number | null;
  reason: string;
  source: string;
  station_id: string;
  charge_point_id: string;
  state: string;
  outcome: string | null;
  currency: string;
  amount_disputed_minor: number;
  credited_minor: number;
}

export async function write_dispute_fact(store: Store, fact: DisputeCaseFact): Promise<void> {
  await store.insert_json_rows('dispute_cases', [
    JSON.stringify({
      case_id: fact.id,
      updated_at_ms: fact.updated_at_ms,
      opened_at: Math.floor(fact.opened_at_ms / 1000),
      opened_at_ms: fact.opened_at_ms,
      resolved_at_ms: fact.resolved_at_ms ?? 0,
      reason: fact.reason,
      source: fact.source,
      station_id: fact.station_id,
      charge_point_id: fact.charge_point_id,
      state: fact.state,
      outcome: fact.outcome ?? '',
      currency: fact.currency,
      amount_disputed_minor: fact.amount_disputed_minor,
      credited_minor: fact.credited_minor,
      time_to_resolve_s:
        fact.resolved_at_ms === null ? 0 : Math.floor((fact.resolved_at_ms - fact.opened_at_ms) / 1000),
    }),
  ]);
}

export interface DisputeFigureRow {
  key: string;
  currency: string;
  cases: number;
  resolved: number;
  disputed_minor: number;
  credited_minor: number;
}

export interface DisputeFigures {
  by_reason: DisputeFigureRow[];
  by_station: DisputeFigureRow[];
  by_outcome: DisputeFigureRow[];
  time_to_resolve: { resolved: number; mean_s: number; median_s: number; max_s: number };
}

/** Figures of the cases opened in [from_ms, to_ms). */
export async function dispute_figures(store: Store, from_ms: number, to_ms: number): Promise<DisputeFigures> {
  const db = ident(store.database).text;
  const where = sql`opened_at_ms >= ${from_ms} AND opened_at_ms < ${to_ms}`.text;
  const grouped = async (column: string): Promise<DisputeFigureRow[]> =>
    (
      await store.query<Record<string, string | number>>(
        `SELECT ${column} AS key, currency, count() AS cases, countIf(state = 'resolved') AS resolved,
           sum(amount_disputed_minor) AS disputed_minor, sum(credited_minor) AS credited_minor
         FROM ${db}.dispute_cases FINAL WHERE ${where}
         GROUP BY key, currency ORDER BY key, currency`,
      )
    ).map((r) => ({
      key: String(r.key),
      currency: String(r.currency),
      cases: Number(r.cases),
      resolved: Number(r.resolved),
      disputed_minor: Number(r.disputed_minor),
      credited_minor: Number(r.credited_minor),
    }));
  const [t] = await store.query<Record<string, string | number>>(
    `SELECT count() AS resolved, sum(time_to_resolve_s) AS total_s, quantileExact(0.5)(time_to_resolve_s) AS median_s,
       max(time_to_resolve_s) AS max_s
     FROM ${db}.dispute_cases FINAL WHERE ${where} AND state = 'resolved'`,
  );
  const resolved = Number(t?.resolved ?? 0);
  return {
    by_reason: await grouped('reason'),
    by_station: await grouped('station_id'),
    by_outcome: await grouped(`if(outcome = '', state, outcome)`),
    time_to_resolve: {
      resolved,
      mean_s: resolved === 0 ? 0 : Math.floor(Number(t?.total_s ?? 0) / resolved),
      median_s: resolved === 0 ? 0 : Number(t?.median_s ?? 0),
      max_s: resolved === 0 ? 0 : Number(t?.max_s ?? 0),
    },
  };
}
