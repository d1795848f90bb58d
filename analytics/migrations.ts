import { billing_event_statements, billing_view_statements } from './billing-events.js';
import { dispute_statements } from './disputes.js';
import { occupancy_rollup_statements } from './occupancy-rollup.js';
import { ocpp_frame_statements } from './ocpp-frames.js';
import { apply_raw_retention, raw_retention_days_from_env } from './retention.js';
import { session_events_statements } from './session-events.js';
import { session_facts_statements } from './session-facts.js';
import { ident, sql } from './sql.js';
import type { Store } from './store.js';
import { what_if_statements } from './what-if-tables.js';

/**
 * Versioned schema. Every statement is idempotent (IF NOT EXISTS) and runs on ClickHouse 18.16
 * and on current servers alike: DateTime('UTC') rather than DateTime64, ReplacingMergeTree for
 * idempotent writes, no TTL, no Map. Applied in order at start; applied versions are recorded.
 */
/**
 * A column added to an existing table. ClickHouse 18.16 has no `ADD COLUMN IF NOT EXISTS`, so
 * the migrator looks the column up in system.columns and adds it only when it is missing.
 */
interface AddColumn {
  table: string;
  column: string;
  /** Type and default, e.g. `UInt32 DEFAULT 0`. */
  definition: string;
}

/**
 * A table given another sorting key. ClickHouse cannot add existing columns to a sorting key, so
 * the migrator compares system.tables.sorting_key with `order_by` and, when they differ, copies the
 * table into `<table>_rebuilt` (same columns) and swaps the two by RENAME; see rebuild_table.
 */
export interface RebuildTable {
  rebuild: string;
  engine: string;
  partition_by: string;
  /** The sorting key columns, in order. */
  order_by: readonly string[];
}

export type MigrationStatement = string | AddColumn | RebuildTable;

interface Migration {
  version: number;
  name: string;
  statements: (db: string) => MigrationStatement[];
}

function add_columns(table: string, columns: Record<string, string>): AddColumn[] {
  return Object.entries(columns).map(([column, definition]) => ({ table, column, definition }));
}

/**
 * Columns of schema v34 in rated_sessions and everything built like it. Written by the rating
 * service (see RatedSessionRow in sessions.ts); rows from before read the defaults, which the CDR
 * mapping treats as unknown.
 */
const rated_session_columns_v34: Record<string, string> = {
  // OCPI 2.2.1 TokenType (RFID, APP_USER, AD_HOC_USER, OTHER); '' when not known.
  token_type: "String DEFAULT ''",
  // OCPI CdrToken.contract_id (the eMAID of an eMSP's token); '' when not known.
  contract_id: "String DEFAULT ''",
  // OCPI 2.2.1 AuthMethod (AUTH_REQUEST, COMMAND, WHITELIST); '' when not known.
  auth_method: "String DEFAULT ''",
  // OCPP groupIdToken / OCPI Token.group_id; '' when none.
  group_id: "String DEFAULT ''",
  // JSON object of anomaly rule name to count; '{}' when none.
  anomalies: "String DEFAULT '{}'",
  // 1: flagged for a person to review (e.g. implausible energy).
  review: 'UInt8 DEFAULT 0',
  // Server time at which this version was rated, epoch ms; 0 on rows from before v34.
  last_updated_ms: 'Int64 DEFAULT 0',
};

/** The sorting key of ocpp_rejections from v35: what tells two rejected frames apart. */
export const ocpp_rejection_key = ['charge_point_id', 'at_ms', 'node_id', 'action', 'error_code'] as const;

/**
 * cdr_feed_by_update: the CDR feed of migration 32 ordered by the CDR's last_updated instead of
 * rated_at_ms. mod_cdrs GET filters date_from/date_to on last_updated, and a re-rated version
 * that keeps its stop kept rated_at_ms too, so a partner pulling from its last pull (or the push
 * cursor) never saw the correction. `cdr_last_updated_ms` is the row's last_updated_ms where set,
 * else rated_at_ms (rows from before v34), computed once by the view so that the feed is read in
 * key order. Versions under different keys stay side by side and the older ones are left out by
 * cdr_feed_superseded, as before. Replaces cdr_feed and its view, which are dropped once the new
 * feed is filled: API processes of an older release read cdr_feed and must be restarted. A
 * column added to rated_sessions later needs a migration that adds it here and recreates the view.
 */
export const cdr_feed_columns = `session_id, version, charge_point_id, connector_id, transaction_id, id_tag,
        started_at, stopped_at, started_at_ms, stopped_at_ms, meter_start_wh, meter_stop_wh, energy_wh,
        stop_reason, tariff_id, tariff_version, currency, total_excl_vat, total_incl_vat, breakdown,
        rated_at_ms, evse_id, station_id, payment_method, party, time_zone, energy_cost_excl_vat,
        time_cost_excl_vat, parking_cost_excl_vat, fixed_cost_excl_vat, duration_s, parking_s, provisional,
        token_type, contract_id, auth_method, group_id, anomalies, review, last_updated_ms`;

function cdr_feed_by_update_statements(db: string): string[] {
  const select = `SELECT ${cdr_feed_columns},
        if(last_updated_ms > 0, last_updated_ms, rated_at_ms) AS cdr_last_updated_ms
      FROM ${db}.rated_sessions`;
  return [
    `CREATE TABLE IF NOT EXISTS ${db}.cdr_feed_by_update (
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
        rated_at_ms Int64,
        evse_id UInt32,
        station_id String,
        payment_method String,
        party String,
        time_zone String,
        energy_cost_excl_vat Decimal(18, 4),
        time_cost_excl_vat Decimal(18, 4),
        parking_cost_excl_vat Decimal(18, 4),
        fixed_cost_excl_vat Decimal(18, 4),
        duration_s UInt32,
        parking_s UInt32,
        provisional UInt8,
        token_type String,
        contract_id String,
        auth_method String,
        group_id String,
        anomalies String,
        review UInt8,
        last_updated_ms Int64,
        cdr_last_updated_ms Int64
      ) ENGINE = ReplacingMergeTree(version)
      PARTITION BY toYYYYMM(toDateTime(intDiv(cdr_last_updated_ms, 1000), 'UTC'))
      ORDER BY (party, cdr_last_updated_ms, session_id)`,
    `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.cdr_feed_by_update_mv TO ${db}.cdr_feed_by_update AS ${select}`,
    // Sessions stored before the view existed (and those written meanwhile, twice: the copies have
    // the same key and version and collapse under FINAL, also when the migration is run again).
    `INSERT INTO ${db}.cdr_feed_by_update (${cdr_feed_columns}, cdr_last_updated_ms) ${select}`,
    `DROP TABLE IF EXISTS ${db}.cdr_feed_mv`,
    `DROP TABLE IF EXISTS ${db}.cdr_feed`,
  ];
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
  {
    version: 2,
    name: 'session dimensions, connector status, connections, rejected frames',
    statements: (db) => [
      ...add_columns('rated_sessions', {
        evse_id: 'UInt32 DEFAULT 0',
        station_id: "String DEFAULT ''",
        // RFID, APP, QR, AD_HOC, ROAMING, FREE or UNKNOWN: how the driver paid (payment-methods.ts).
        payment_method: "String DEFAULT ''",
        // The token issuer as "CC*PID" (OCPI country code and party id); '' for our own tokens.
        party: "String DEFAULT ''",
        time_zone: "String DEFAULT ''",
        energy_cost_excl_vat: 'Decimal(18, 4) DEFAULT 0',
        time_cost_excl_vat: 'Decimal(18, 4) DEFAULT 0',
        parking_cost_excl_vat: 'Decimal(18, 4) DEFAULT 0',
        fixed_cost_excl_vat: 'Decimal(18, 4) DEFAULT 0',
        // Whole session (plug-in to stop) and the idle part of it (plugged, not charging).
        duration_s: 'UInt32 DEFAULT 0',
        parking_s: 'UInt32 DEFAULT 0',
        // 1 when closed after a silence without a stop; a later stop writes a higher version.
        provisional: 'UInt8 DEFAULT 0',
      }),
      ...add_columns('meter_values', {
        evse_id: 'UInt32 DEFAULT 0',
        // 2.0.1 signedMeterValue as JSON, verbatim; 1.6 keeps signed data in value (format SignedData).
        signed_data: "String DEFAULT ''",
      }),
      // Every StatusNotification, for occupancy: a connector is occupied from a status other than
      // Available/Unavailable/Faulted until the next Available, and charging while Charging.
      `CREATE TABLE IF NOT EXISTS ${db}.connector_status (
        charge_point_id String,
        evse_id UInt32,
        connector_id UInt32,
        status String,
        error_code String,
        timestamp DateTime('UTC'),
        timestamp_ms Int64,
        received_at_ms Int64
      ) ENGINE = ReplacingMergeTree
      PARTITION BY toYYYYMM(timestamp)
      ORDER BY (charge_point_id, evse_id, connector_id, timestamp_ms, status)`,
      `CREATE TABLE IF NOT EXISTS ${db}.charger_connections (
        charge_point_id String,
        node_id String,
        connected UInt8,
        protocol String,
        at DateTime('UTC'),
        at_ms Int64
      ) ENGINE = ReplacingMergeTree
      PARTITION BY toYYYYMM(at)
      ORDER BY (charge_point_id, at_ms, connected, node_id)`,
      `CREATE TABLE IF NOT EXISTS ${db}.ocpp_rejections (
        charge_point_id String,
        node_id String,
        action String,
        error_code String,
        at DateTime('UTC'),
        at_ms Int64
      ) ENGINE = MergeTree
      PARTITION BY toYYYYMM(at)
      ORDER BY (at, error_code, charge_point_id)`,
    ],
  },
  {
    version: 20,
    name: 'every rated version kept for audit; rows refused by the store kept aside',
    statements: (db) => [
      // rated_sessions keeps the latest version of a session; this keeps all of them, with the
      // difference a re-rating made, so a billing dispute can see what was charged when.
      `CREATE TABLE IF NOT EXISTS ${db}.rated_session_versions AS ${db}.rated_sessions
      ENGINE = ReplacingMergeTree
      PARTITION BY toYYYYMM(stopped_at)
      ORDER BY (session_id, version)`,
      ...add_columns('rated_session_versions', {
        // live, provisional, late_stop or rerate
        rated_reason: "String DEFAULT ''",
        previous_total_excl_vat: 'Decimal(18, 4) DEFAULT 0',
        previous_total_incl_vat: 'Decimal(18, 4) DEFAULT 0',
      }),
      // A row the store refused for its content (not for being unreachable): kept verbatim with
      // the error so that the stream moves on and nothing is lost; see rating/service.ts.
      `CREATE TABLE IF NOT EXISTS ${db}.quarantined_rows (
        table_name String,
        row_json String,
        error String,
        at DateTime('UTC'),
        at_ms Int64
      ) ENGINE = MergeTree
      PARTITION BY toYYYYMM(at)
      ORDER BY (table_name, at_ms)`,
    ],
  },
  {
    version: 30,
    name: 'analytics rollups: session facts kept by session and version, filled by a materialized view',
    statements: (db) => session_facts_statements(db),
  },
  {
    version: 31,
    name: 'analytics rollups: connector status changes grouped per connector and month, for occupancy',
    statements: (db) => occupancy_rollup_statements(db),
  },
  {
    version: 32,
    name: 'CDR feed: rated sessions ordered by party and last_updated for OCPI paging, filled by a materialized view',
    statements: (db) => {
      // Every rated_sessions column, named: a column added to rated_sessions later needs a
      // migration that adds it to cdr_feed and recreates cdr_feed_mv.
      const columns = `session_id, version, charge_point_id, connector_id, transaction_id, id_tag,
        started_at, stopped_at, started_at_ms, stopped_at_ms, meter_start_wh, meter_stop_wh, energy_wh,
        stop_reason, tariff_id, tariff_version, currency, total_excl_vat, total_incl_vat, breakdown,
        rated_at_ms, evse_id, station_id, payment_method, party, time_zone, energy_cost_excl_vat,
        time_cost_excl_vat, parking_cost_excl_vat, fixed_cost_excl_vat, duration_s, parking_s, provisional`;
      // A new version of a session replaces the older one only where its whole key is the same: a
      // version that moved the stop (a late stop after a provisional close, a re-rating) has another
      // rated_at_ms and stays next to the older rows. Every version V > 1 therefore writes the
      // versions 1..V-1 of its session here, and the CDR query leaves those out (see cdr-query.ts).
      // Few sessions ever get a second version, so the set the query builds from it stays small.
      const superseded = `SELECT session_id,
        arrayJoin(arrayMap(v -> toUInt32(v + 1), range(toUInt32(version - 1)))) AS superseded_version
      FROM ${db}.rated_sessions WHERE version > 1`;
      return [
        // OCPI pages run by party, then last_updated (rated_at_ms), then id: here a page is one
        // range of the key instead of a merge of the whole of rated_sessions. The partition is the
        // month of rated_at_ms, a key column, so rows that must collapse share a partition and
        // FINAL need not merge across partitions.
        `CREATE TABLE IF NOT EXISTS ${db}.cdr_feed AS ${db}.rated_sessions
      ENGINE = ReplacingMergeTree(version)
      PARTITION BY toYYYYMM(toDateTime(intDiv(rated_at_ms, 1000), 'UTC'))
      ORDER BY (party, rated_at_ms, session_id)`,
        `CREATE TABLE IF NOT EXISTS ${db}.cdr_feed_superseded (
        session_id String,
        superseded_version UInt32
      ) ENGINE = ReplacingMergeTree
      ORDER BY (session_id, superseded_version)`,
        `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.cdr_feed_mv TO ${db}.cdr_feed AS SELECT ${columns} FROM ${db}.rated_sessions`,
        `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.cdr_feed_superseded_mv TO ${db}.cdr_feed_superseded AS ${superseded}`,
        // Sessions stored before the views existed (and those written meanwhile, twice). Run again
        // after a crash, the copies have the same key and version and collapse under FINAL; a second
        // superseded row changes no NOT IN.
        `INSERT INTO ${db}.cdr_feed (${columns}) SELECT ${columns} FROM ${db}.rated_sessions`,
        `INSERT INTO ${db}.cdr_feed_superseded ${superseded}`,
      ];
    },
  },
  {
    version: 33,
    name: 'meter values keyed by format and unit too, so a raw and a signed reading of one instant are both kept',
    statements: () => [
      // Eichrecht chargers send each reading twice at the same instant: Raw and SignedData (OCPP
      // 1.6 SampledValue.format), same measurand, phase, location and context. Without format in
      // the key ReplacingMergeTree kept one of them; unit too, as a charger may report a
      // measurand in Wh and kWh alike.
      {
        rebuild: 'meter_values',
        engine: 'ReplacingMergeTree',
        partition_by: 'toYYYYMM(timestamp)',
        order_by: [
          'charge_point_id',
          'transaction_id',
          'timestamp_ms',
          'measurand',
          'phase',
          'location',
          'context',
          'format',
          'unit',
        ],
      },
    ],
  },
  {
    version: 34,
    name: 'rated sessions carry their token, its authorization, anomalies and when each version was rated; the CDR feed ordered by that time',
    statements: (db) => [
      ...add_columns('rated_sessions', rated_session_columns_v34),
      ...add_columns('rated_session_versions', rated_session_columns_v34),
      ...cdr_feed_by_update_statements(db),
    ],
  },
  {
    version: 35,
    name: 'rejected frames keyed by what they are, so that a redelivered batch writes no second copy',
    statements: () => [
      // The rating service writes a batch's rejections again when JetStream redelivers the batch;
      // a ReplacingMergeTree keyed by every field that tells two rejections apart collapses the
      // copies on merge, and the queries count distinct keys so that unmerged copies never count.
      {
        rebuild: 'ocpp_rejections',
        engine: 'ReplacingMergeTree',
        partition_by: 'toYYYYMM(at)',
        order_by: [...ocpp_rejection_key],
      },
    ],
  },
  {
    version: 36,
    name: 'session event log: the facts each session was rated from, replayed by re-rating',
    statements: (db) => session_events_statements(db),
  },
  {
    version: 37,
    name: 'pricing what-if scenarios: candidate tariffs replayed on past sessions, figures and largest changes',
    statements: (db) => what_if_statements(db),
  },
  {
    version: 45,
    name: 'dispute cases for analytics: by reason, station, outcome, amounts, time to resolve',
    statements: (db) => dispute_statements(db),
  },
  {
    version: 46,
    name: 'transaction messages as received (raw OCPP frames), bounded by the raw retention',
    statements: (db) => ocpp_frame_statements(db),
  },
  {
    version: 50,
    name: "billing ledger events, shipped exactly once from the ledger's outbox",
    statements: (db) => billing_event_statements(db),
  },
  {
    version: 51,
    name: 'billing views: invoices with what was received and credited, revenue per VAT rate, dispute cases',
    statements: (db) => billing_view_statements(db),
  },
];

async function column_exists(store: Store, table: string, column: string): Promise<boolean> {
  const rows = await store.query<{ n: number | string }>(
    sql`SELECT count() AS n FROM system.columns WHERE database = ${store.database} AND table = ${table} AND name = ${column}`
      .text,
  );
  return Number(rows[0]?.n ?? 0) > 0;
}

async function table_of(
  store: Store,
  table: string,
): Promise<{ engine: string; sorting_key: string } | undefined> {
  const [row] = await store.query<{ engine: string; sorting_key: string }>(
    sql`SELECT engine, sorting_key FROM system.tables WHERE database = ${store.database} AND name = ${table}`
      .text,
  );
  return row;
}

/**
 * Gives a table its new sorting key: copy into `<table>_rebuilt`, then
 * `RENAME TABLE t TO t_old, t_rebuilt TO t`, then copy `t_old` once more and drop it. The second
 * copy takes in what other writers (a node not yet restarted) inserted into the old table while
 * the first ran; rows copied twice have the same key and collapse like any redelivery. Each
 * step can be interrupted: a rerun finds where it stopped (`t` missing, or `t_old` left). Rows
 * written in the instant between the two renames (not atomic on 18.16) fail and are retried by
 * the sink. On a cluster `t` is a Distributed table whose local tables cluster.ts creates with the
 * final key: nothing to do here.
 */
async function rebuild_table(store: Store, db: string, step: RebuildTable): Promise<void> {
  const table = `${db}.${ident(step.rebuild).text}`;
  const rebuilt = `${db}.${ident(`${step.rebuild}_rebuilt`).text}`;
  const old = `${db}.${ident(`${step.rebuild}_old`).text}`;
  let current = await table_of(store, step.rebuild);
  if (current === undefined) {
    // Interrupted between the two renames.
    if ((await table_of(store, `${step.rebuild}_rebuilt`)) === undefined)
      throw new Error(`rebuild of ${step.rebuild}: neither the table nor ${step.rebuild}_rebuilt exists`);
    await store.exec(`RENAME TABLE ${rebuilt} TO ${table}`);
    current = await table_of(store, step.rebuild);
  }
  if (current?.engine === 'Distributed') return;
  const wanted = step.order_by.map((c) => ident(c).text);
  const key = (current?.sorting_key ?? '').split(',').map((c) => c.trim());
  if (key.join(',') !== wanted.join(',')) {
    await store.exec(`DROP TABLE IF EXISTS ${rebuilt}`);
    await store.exec(
      `CREATE TABLE ${rebuilt} AS ${table}
      ENGINE = ${step.engine}
      PARTITION BY ${step.partition_by}
      ORDER BY (${wanted.join(', ')})`,
    );
    await store.exec(`INSERT INTO ${rebuilt} SELECT * FROM ${table}`);
    await store.exec(`RENAME TABLE ${table} TO ${old}, ${rebuilt} TO ${table}`);
  }
  if ((await table_of(store, `${step.rebuild}_old`)) !== undefined) {
    await store.exec(`INSERT INTO ${table} SELECT * FROM ${old}`);
    await store.exec(`DROP TABLE ${old}`);
  }
}

/**
 * Applies the missing migrations in order, then the raw-value retention (see retention.ts), which
 * is a setting rather than a schema version: it follows ANALYTICS_RAW_RETENTION_DAYS at each start.
 */
export async function migrate(
  store: Store,
  options: {
    raw_retention_days?: number;
    /** Applies the versions up to this one only (tests of an upgrade from an older schema). */
    versions_max?: number;
  } = {},
): Promise<number[]> {
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
    if (options.versions_max !== undefined && migration.version > options.versions_max) break;
    for (const statement of migration.statements(db)) {
      if (typeof statement === 'string') {
        await store.exec(statement);
      } else if ('rebuild' in statement) {
        await rebuild_table(store, db, statement);
      } else if (!(await column_exists(store, statement.table, statement.column))) {
        await store.exec(
          `ALTER TABLE ${db}.${ident(statement.table).text} ADD COLUMN ${ident(statement.column).text} ${statement.definition}`,
        );
      }
    }
    await store.exec(
      sql`INSERT INTO ${ident(store.database)}.schema_migrations VALUES (${migration.version}, ${migration.name}, ${Date.now()})`
        .text,
    );
    applied.push(migration.version);
  }
  const days = options.raw_retention_days ?? raw_retention_days_from_env();
  await apply_raw_retention(store, days);
  if (await table_of(store, 'ocpp_frames')) await apply_raw_retention(store, days, Date.now(), 'ocpp_frames');
  return applied;
}
