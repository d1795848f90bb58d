import { migrations } from './migrations.js';
import { ident } from './sql.js';

/**
 * The schema for a ClickHouse cluster, derived from the same migrations the single-node store
 * runs (so the two never drift): every MergeTree table becomes a Replicated*MergeTree table
 * `<name>_local` on each node plus a Distributed table `<name>` over the cluster, which is what the
 * application reads and writes; materialized views run on each shard over the local tables.
 * See CLUSTER.md. Print it with `node dist/analytics/cluster-ddl.js --cluster NAME`.
 */
export interface ClusterDdlOptions {
  cluster: string;
  database: string;
  /** ZooKeeper/Keeper path of the replicated tables; {shard} and {replica} are server macros. */
  zookeeper_prefix?: string;
  /** Days of raw meter values kept (TTL on meter_values_local); 0 keeps them forever. */
  raw_retention_days?: number;
}

/**
 * Sharding keys. Every version of a session must land on one shard, because ReplacingMergeTree
 * (and FINAL) collapse rows only within one table on one node: rated_sessions, their versions,
 * session_facts, cdr_feed_by_update (cdr_feed before v34) and cdr_feed_superseded are sharded by session id, and the view that fills session_facts from
 * rated_sessions then runs where both live. A charge point's raw values and statuses stay together
 * so that its occupancy intervals are computed from one shard's rows.
 */
const sharding_keys: Record<string, string> = {
  meter_values: 'cityHash64(charge_point_id)',
  connector_status: 'cityHash64(charge_point_id)',
  charger_connections: 'cityHash64(charge_point_id)',
  ocpp_rejections: 'cityHash64(charge_point_id)',
  rated_sessions: 'cityHash64(session_id)',
  rated_session_versions: 'cityHash64(session_id)',
  session_facts: 'cityHash64(session_id)',
  session_events: 'cityHash64(session_id)',
  cdr_feed: 'cityHash64(session_id)',
  cdr_feed_by_update: 'cityHash64(session_id)',
  cdr_feed_superseded: 'cityHash64(session_id)',
  connector_changes_monthly: 'cityHash64(station_id)',
  tariffs: 'cityHash64(tariff_id)',
};

const create_table =
  /^\s*CREATE TABLE IF NOT EXISTS (\w+)\.(\w+)\s*(\(([\s\S]*?)\)|AS (\w+)\.(\w+))\s*ENGINE = (\w*MergeTree)(\(([^)]*)\))?([\s\S]*)$/;
const create_plain_view = /^\s*CREATE VIEW IF NOT EXISTS (\w+)\.(\w+) AS\s+([\s\S]*)$/;
const create_view = /^\s*CREATE MATERIALIZED VIEW IF NOT EXISTS (\w+)\.(\w+) TO (\w+)\.(\w+) AS ([\s\S]*)$/;

export function cluster_ddl(options: ClusterDdlOptions): string[] {
  const db = ident(options.database).text;
  const cluster = ident(options.cluster).text;
  const prefix = options.zookeeper_prefix ?? '/clickhouse/tables/{shard}';
  if (!/^\/[A-Za-z0-9_{}/.-]*$/.test(prefix))
    throw new TypeError(`zookeeper_prefix is not a plain path: ${prefix}`);
  const days = options.raw_retention_days ?? 0;
  if (!Number.isSafeInteger(days) || days < 0)
    throw new TypeError('raw_retention_days must be a whole number');
  const out: string[] = [`CREATE DATABASE IF NOT EXISTS ${db} ON CLUSTER ${cluster}`];
  const local_tables = new Set<string>();
  // A table that a later migration rebuilds with another sorting key is created with that key
  // from the start: a fresh cluster never holds the old one (an existing one: see CLUSTER.md).
  const final_keys = new Map<string, { order_by: string; engine: string }>();
  for (const migration of migrations) {
    for (const statement of migration.statements(db)) {
      if (typeof statement !== 'string' && 'rebuild' in statement)
        final_keys.set(statement.rebuild, {
          order_by: `ORDER BY (${statement.order_by.map((c) => ident(c).text).join(', ')})`,
          engine: statement.engine,
        });
    }
  }
  for (const migration of migrations) {
    out.push(`-- migration ${migration.version}: ${migration.name}`);
    for (const statement of migration.statements(db)) {
      if (typeof statement !== 'string' && 'rebuild' in statement) {
        out.push(`-- ${statement.rebuild}_local was created above with this sorting key`);
        continue;
      }
      if (typeof statement !== 'string') {
        for (const table of [`${statement.table}_local`, statement.table]) {
          out.push(
            `ALTER TABLE ${db}.${table} ON CLUSTER ${cluster} ADD COLUMN IF NOT EXISTS ${statement.column} ${statement.definition}`,
          );
        }
        continue;
      }
      const table = create_table.exec(statement);
      if (table !== null) {
        const [, , name, , columns, , like, engine, , args, rest] = table;
        const local = `${name}_local`;
        local_tables.add(name!);
        const zk = `'${prefix}/${options.database}/${local}', '{replica}'`;
        const final_key = final_keys.get(name!);
        // A rebuild that changes the engine (ocpp_rejections, migration 35) takes no engine
        // arguments: its table is created with the final engine, plain.
        const final_engine = final_key === undefined ? engine! : final_key.engine;
        const final_args = final_key === undefined || final_key.engine === engine ? args : undefined;
        const engine_args =
          final_args !== undefined && final_args.trim() !== '' ? `${zk}, ${final_args}` : zk;
        const ttl =
          name === 'meter_values' && days > 0 ? `\n      TTL timestamp + toIntervalDay(${days})` : '';
        const body = columns !== undefined ? `(${columns})` : `AS ${db}.${like}_local`;
        const storage =
          final_key === undefined ? rest! : rest!.replace(/ORDER BY \([^)]*\)/, final_key.order_by);
        out.push(
          `CREATE TABLE IF NOT EXISTS ${db}.${local} ON CLUSTER ${cluster} ${body}\n      ENGINE = Replicated${final_engine}(${engine_args})${storage.trimEnd()}${ttl}`,
        );
        out.push(
          `CREATE TABLE IF NOT EXISTS ${db}.${name} ON CLUSTER ${cluster} AS ${db}.${local}\n      ENGINE = Distributed(${cluster}, ${db}, ${local}, ${sharding_keys[name!] ?? 'rand()'})`,
        );
        continue;
      }
      const view = create_view.exec(statement);
      if (view !== null) {
        const [, , name, , target, select] = view;
        // The view reads the shard's local source table and writes the shard's local target.
        let local_select = select!;
        for (const source of local_tables) {
          local_select = local_select.replaceAll(
            new RegExp(`\\b${db}\\.${source}\\b(?!_local)`, 'g'),
            `${db}.${source}_local`,
          );
        }
        out.push(
          `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.${name} ON CLUSTER ${cluster} TO ${db}.${target}_local AS ${local_select}`,
        );
        continue;
      }
      const plain_view = create_plain_view.exec(statement);
      if (plain_view !== null) {
        // A plain view reads the Distributed tables of its name, so every shard's rows: one per node.
        out.push(
          `CREATE VIEW IF NOT EXISTS ${db}.${plain_view[2]} ON CLUSTER ${cluster} AS ${plain_view[3]}`,
        );
        continue;
      }
      const drop = /^\s*DROP TABLE IF EXISTS (\w+)\.(\w+)\s*$/.exec(statement);
      if (drop !== null) {
        // A table the cluster holds as local tables under a Distributed one goes with both.
        const name = drop[2]!;
        const tables = local_tables.has(name) ? [name, `${name}_local`] : [name];
        for (const table of tables) out.push(`DROP TABLE IF EXISTS ${db}.${table} ON CLUSTER ${cluster}`);
        continue;
      }
      if (/^\s*INSERT INTO /.test(statement)) {
        // Backfills run once, through the Distributed tables (rows go to their shards).
        out.push(statement);
        continue;
      }
      throw new Error(
        `no cluster form for migration ${migration.version} statement: ${statement.slice(0, 80)}`,
      );
    }
  }
  return out;
}

/** The DDL as one script for clickhouse-client --multiquery. */
export function cluster_ddl_script(options: ClusterDdlOptions): string {
  return `${cluster_ddl(options)
    .map((s) => (s.startsWith('--') ? s : `${s};`))
    .join('\n\n')}\n`;
}
