import { sql_array } from './sql.js';

/**
 * The occupancy rollup: each connector's status changes of a month, pre-grouped by a
 * materialized view into one array per connector and month (AggregatingMergeTree with
 * groupArray states). A change is stored as the number `timestamp_ms * 2 + occupied`, so the
 * query only sorts plain integers per connector and month instead of grouping millions of status
 * rows; the months of a connector are then joined by their first and last changes alone (see
 * utilization.ts). Summing is avoided on purpose: a redelivered status row only adds a copy of a
 * change, which makes an interval of zero length (see utilization.ts), so copies never count.
 *
 * Which statuses mean "occupied" is fixed here and in the stored flags; changing the list needs a
 * new migration that rebuilds the rollup from connector_status.
 */
export const occupied_statuses = [
  'Preparing',
  'Charging',
  'SuspendedEV',
  'SuspendedEVSE',
  'Finishing',
  'Occupied',
] as const;

export function occupancy_rollup_statements(db: string): string[] {
  const select = `SELECT charge_point_id AS station_id, if(evse_id > 0, evse_id, connector_id) AS evse_id,
      connector_id, toYYYYMM(timestamp) AS month,
      groupArrayState(timestamp_ms * 2 + toInt64(has(${sql_array([...occupied_statuses]).text}, status))) AS changes
    FROM ${db}.connector_status
    WHERE NOT (evse_id = 0 AND connector_id = 0)
    GROUP BY station_id, evse_id, connector_id, month`;
  return [
    `CREATE TABLE IF NOT EXISTS ${db}.connector_changes_monthly (
        station_id String,
        evse_id UInt32,
        connector_id UInt32,
        month UInt32,
        changes AggregateFunction(groupArray, Int64)
      ) ENGINE = AggregatingMergeTree
      PARTITION BY month
      ORDER BY (station_id, evse_id, connector_id)`,
    `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.connector_changes_monthly_mv TO ${db}.connector_changes_monthly AS ${select}`,
    // Statuses stored before the view existed; run twice it only adds copies, which are harmless.
    `INSERT INTO ${db}.connector_changes_monthly ${select}`,
  ];
}
