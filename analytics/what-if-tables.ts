/**
 * Pricing what-if scenarios (rating/what-if.ts): a named re-pricing of past sessions under
 * candidate tariffs, kept for Grafana and the API. Nothing here is a rated session: the rated
 * tables are never written by a what-if.
 *
 * - what_if_scenarios: one row per progress report, the latest (by updated_at_ms) wins.
 * - what_if_figures: revenue before/after per candidate and per dimension (total, station,
 *   weekday_hour in the station's zone, payment_method, plan) and currency. Written once when the
 *   scenario is done; a retried write collapses on the key.
 * - what_if_changes: the sessions whose price changes most, per candidate, ranked.
 */
export function what_if_statements(db: string): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS ${db}.what_if_scenarios (
      scenario_id String,
      name String,
      state String,
      created_at DateTime('UTC'),
      created_at_ms Int64,
      updated_at_ms Int64,
      from_ms Int64,
      to_ms Int64,
      selection String,
      tariffs String,
      sessions_total UInt64,
      sessions_done UInt64,
      error String
    ) ENGINE = ReplacingMergeTree(updated_at_ms)
    ORDER BY scenario_id`,
    `CREATE TABLE IF NOT EXISTS ${db}.what_if_figures (
      scenario_id String,
      name String,
      created_at DateTime('UTC'),
      candidate UInt32,
      tariff_id String,
      dimension String,
      key String,
      weekday UInt8,
      hour UInt8,
      currency String,
      sessions UInt64,
      energy_wh Int64,
      before_excl_vat Decimal(18, 4),
      before_incl_vat Decimal(18, 4),
      after_excl_vat Decimal(18, 4),
      after_incl_vat Decimal(18, 4),
      min_price_sessions UInt64,
      max_price_sessions UInt64
    ) ENGINE = ReplacingMergeTree
    ORDER BY (scenario_id, candidate, dimension, key, currency)`,
    `CREATE TABLE IF NOT EXISTS ${db}.what_if_changes (
      scenario_id String,
      name String,
      candidate UInt32,
      tariff_id String,
      rank UInt32,
      session_id String,
      station_id String,
      started_at DateTime('UTC'),
      currency String,
      before_excl_vat Decimal(18, 4),
      after_excl_vat Decimal(18, 4),
      before_incl_vat Decimal(18, 4),
      after_incl_vat Decimal(18, 4),
      price_limit_applied String
    ) ENGINE = ReplacingMergeTree
    ORDER BY (scenario_id, candidate, rank)`,
  ];
}
