/**
 * The session rollup: one narrow row per (session, version), filled by a materialized view from
 * every insert into rated_sessions, and read with FINAL so that each session counts once.
 *
 * Why not sum sessions into hourly totals straight from the inserts: rated_sessions receives the
 * same row again on every redelivery (at-least-once rating), and a new version of a session on a
 * late stop or a re-rating, which may change its stop, energy, totals, tariff and even currency.
 * A materialized view sees only the inserted block, so a SummingMergeTree fed from it would add a
 * redelivered session twice and a re-rated session once per version. Cancel rows written by the
 * rating service would be doubled in turn by a redelivery of the batch that carries them. The only
 * idempotent answer is to keep the session's identity in the rollup: here a ReplacingMergeTree
 * keyed by values fixed at the session's start (station, EVSE, start time, session id), versioned
 * by `version`, so a duplicate collapses into one row and a new version replaces the old one. The
 * queries read it with FINAL (collapsing parts that are not merged yet), then aggregate.
 * It keeps 20 narrow columns of rated_sessions (no breakdown JSON), partitioned by the month the
 * session started and ordered for the per-station and per-time-range questions.
 *
 * Invariant the key relies on: station, EVSE and start of a session are set by its first event;
 * a late stop or a re-rating changes only stop, energy, tariff, currency and totals.
 */
export function session_facts_statements(db: string): string[] {
  const columns = `session_id, version, station_id, charge_point_id, evse_id, connector_id,
      started_at, started_at_ms, stopped_at_ms, tariff_id, tariff_version, payment_method, party,
      currency, energy_wh, duration_s, parking_s, total_excl_vat, total_incl_vat, provisional`;
  // Rows from before schema v2 have no station or EVSE: the charge point is the station and the
  // connector the EVSE (OCPP 1.6 has no EVSE level). No payment method recorded reads UNKNOWN.
  const select = `SELECT session_id, version,
      if(station_id = '', charge_point_id, station_id) AS station_id, charge_point_id,
      if(evse_id > 0, evse_id, connector_id) AS evse_id, connector_id,
      started_at, started_at_ms, stopped_at_ms, tariff_id, tariff_version,
      if(payment_method = '', 'UNKNOWN', payment_method) AS payment_method, party, currency,
      energy_wh, duration_s, parking_s, total_excl_vat, total_incl_vat, provisional
    FROM ${db}.rated_sessions`;
  return [
    `CREATE TABLE IF NOT EXISTS ${db}.session_facts (
        session_id String,
        version UInt32,
        station_id String,
        charge_point_id String,
        evse_id UInt32,
        connector_id UInt32,
        started_at DateTime('UTC'),
        started_at_ms Int64,
        stopped_at_ms Int64,
        tariff_id String,
        tariff_version UInt32,
        payment_method String,
        party String,
        currency String,
        energy_wh Int64,
        duration_s UInt32,
        parking_s UInt32,
        total_excl_vat Decimal(18, 4),
        total_incl_vat Decimal(18, 4),
        provisional UInt8
      ) ENGINE = ReplacingMergeTree(version)
      PARTITION BY toYYYYMM(started_at)
      ORDER BY (station_id, evse_id, started_at, session_id)`,
    `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.session_facts_mv TO ${db}.session_facts AS ${select}`,
    // Sessions stored before the view existed. Running this twice (a migration interrupted after
    // it) only writes rows that collapse with the ones already there.
    `INSERT INTO ${db}.session_facts (${columns}) ${select}`,
  ];
}
