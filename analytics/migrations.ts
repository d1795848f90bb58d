import { ident, sql } from './sql.js';
import type { Store } from './store.js';

/**
 * Versioned schema. Every statement is idempotent (IF NOT EXISTS) and runs on ClickHouse 18.16
 * and on current servers alike: DateTime('UTC') rather than DateTime64, ReplacingMergeTree for
 * idempotent writes, no TTL, no Map. Applied in order at start; applied versions are recorded.
 */
interface Migration {
  version: number;
  name: string;
  statements: (db: string) => string[];
}

export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'meter values, rated sessions, tariffs',
    statements: (db) => [
      `CREATE TABLE IF NOT EXISTS ${db}.meter_values (
        charge_point_id String,
        connector_id UInt32,
        transaction_id String,
        timestamp DateTime('UTC'),
        timestamp_ms Int64,
        received_at_ms Int64,
        measurand String,
        phase String,
        location String,
        unit String,
        context String,
        format String,
        value String
      ) ENGINE = ReplacingMergeTree
      PARTITION BY toYYYYMM(timestamp)
      ORDER BY (charge_point_id, transaction_id, timestamp_ms, measurand, phase, location, context)`,
      // One row per session version; ReplacingMergeTree keeps the highest version of a session,
      // and a redelivered write of the same version collapses into one row (query with FINAL).
      `CREATE TABLE IF NOT EXISTS ${db}.rated_sessions (
        session_id String,
        version UInt32,
        charge_point_id String,
        connector_id UInt32,
        transaction_id String,
        id_tag String,
        started_at DateTime('UTC'),
        stopped_at DateTime('UTC'),
        started_at_ms Int64,
        stopped_at_ms Int64,
        meter_start_wh Int64,
        meter_stop_wh Int64,
        energy_wh Int64,
        stop_reason String,
        tariff_id String,
        tariff_version UInt32,
        currency String,
        total_excl_vat Decimal(18, 4),
        total_incl_vat Decimal(18, 4),
        breakdown String,
        rated_at_ms Int64
      ) ENGINE = ReplacingMergeTree(version)
      PARTITION BY toYYYYMM(stopped_at)
      ORDER BY (charge_point_id, session_id)`,
      `CREATE TABLE IF NOT EXISTS ${db}.tariffs (
        tariff_id String,
        version UInt32,
        currency String,
        tariff_json String,
        created_at_ms Int64
      ) ENGINE = ReplacingMergeTree
      ORDER BY (tariff_id, version)`,
    ],
  },
];

export async function migrate(store: Store): Promise<number[]> {
  const db = ident(store.database).text;
  await store.exec(
    `CREATE TABLE IF NOT EXISTS ${db}.schema_migrations (version UInt32, name String, applied_at_ms Int64)
     ENGINE = ReplacingMergeTree ORDER BY version`,
  );
  const done = new Set(
    (await store.query<{ version: number }>(`SELECT version FROM ${db}.schema_migrations`)).map((r) =>
      Number(r.version),
    ),
  );
  const applied: number[] = [];
  for (const migration of migrations) {
    if (done.has(migration.version)) continue;
    for (const statement of migration.statements(db)) await store.exec(statement);
    await store.exec(
      sql`INSERT INTO ${ident(store.database)}.schema_migrations VALUES (${migration.version}, ${migration.name}, ${Date.now()})`
        .text,
    );
    applied.push(migration.version);
  }
  return applied;
}
