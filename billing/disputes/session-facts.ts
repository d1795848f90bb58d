import { frames_of_transaction, type StoredFrame } from '../../analytics/ocpp-frames.js';
import { ident, sql } from '../../analytics/sql.js';
import type { Store } from '../../analytics/store.js';
import type { StoredMeterValue } from './signed-values.js';

/**
 * What ClickHouse knows of a disputed session, read once for the investigation and the evidence
 * bundle: its rated versions (rated_sessions, rated_session_versions), its raw meter values as
 * received (meter_values, signed data included), the connector statuses during it
 * (connector_status), the facts rating applied (session_events), the versions of its tariff
 * (tariffs) and the other sessions of the same token that overlap it.
 */
export interface RatedVersionFacts {
  session_id: string;
  version: number;
  charge_point_id: string;
  connector_id: number;
  evse_id: number;
  transaction_id: string;
  id_tag: string;
  station_id: string;
  started_at_ms: number;
  stopped_at_ms: number;
  meter_start_wh: number;
  meter_stop_wh: number;
  energy_wh: number;
  stop_reason: string;
  tariff_id: string;
  tariff_version: number;
  currency: string;
  total_excl_vat: string;
  total_incl_vat: string;
  breakdown: string;
  anomalies: string;
  provisional: number;
  rated_at_ms: number;
  rated_reason: string;
  previous_total_excl_vat: string;
  previous_total_incl_vat: string;
}

export interface SessionFacts {
  latest: RatedVersionFacts;
  versions: RatedVersionFacts[];
  meter_values: (StoredMeterValue & {
    received_at_ms: number;
    context: string;
    phase: string;
    location: string;
    evse_id: number;
  })[];
  statuses: { timestamp_ms: number; received_at_ms: number; status: string; error_code: string }[];
  events: { seq: number; idx: number; received_at_ms: number; kind: string; fact: string }[];
  tariff_versions: { version: number; created_at_ms: number; tariff_json: string }[];
  overlapping: {
    session_id: string;
    charge_point_id: string;
    started_at_ms: number;
    stopped_at_ms: number;
  }[];
  /** The transaction's OCPP frames as received (analytics/ocpp-frames.ts), within retention. */
  frames: StoredFrame[];
}

/** Bounds on what one session's evidence may hold (a session has a few thousand readings). */
export const session_rows_max = 20_000;

const version_columns = `session_id, version, charge_point_id, connector_id, evse_id, transaction_id, id_tag,
  station_id, started_at_ms, stopped_at_ms, meter_start_wh, meter_stop_wh, energy_wh, stop_reason, tariff_id,
  tariff_version, currency, toString(total_excl_vat) AS total_excl_vat, toString(total_incl_vat) AS total_incl_vat,
  breakdown, anomalies, provisional, rated_at_ms`;

const numeric_fields = [
  'version',
  'connector_id',
  'evse_id',
  'started_at_ms',
  'stopped_at_ms',
  'meter_start_wh',
  'meter_stop_wh',
  'energy_wh',
  'tariff_version',
  'provisional',
  'rated_at_ms',
  'timestamp_ms',
  'received_at_ms',
  'seq',
  'idx',
  'created_at_ms',
] as const;

/** JSONEachRow quotes 64-bit integers: numbers back (all well inside 2^53). */
function numbers<T>(row: T): T {
  const r = row as Record<string, unknown>;
  for (const f of numeric_fields) if (r[f] !== undefined) r[f] = Number(r[f]);
  return row;
}

export async function load_session_facts(
  store: Store,
  session_id: string,
): Promise<SessionFacts | undefined> {
  const db = ident(store.database).text;
  const [latest] = await store.query<RatedVersionFacts>(
    `SELECT ${version_columns}, '' AS rated_reason, '0' AS previous_total_excl_vat, '0' AS previous_total_incl_vat
     FROM ${db}.rated_sessions FINAL WHERE ${sql`session_id = ${session_id}`.text}`,
  );
  if (latest === undefined) return undefined;
  numbers(latest);
  const limit = sql`${session_rows_max}`.text;
  const versions = (
    await store.query<RatedVersionFacts>(
      `SELECT ${version_columns}, rated_reason, toString(previous_total_excl_vat) AS previous_total_excl_vat,
         toString(previous_total_incl_vat) AS previous_total_incl_vat
       FROM ${db}.rated_session_versions FINAL WHERE ${sql`session_id = ${session_id}`.text} ORDER BY version LIMIT ${limit}`,
    )
  ).map(numbers);
  const meter_values = (
    await store.query<SessionFacts['meter_values'][number]>(
      `SELECT timestamp_ms, received_at_ms, measurand, unit, value, format, signed_data, context, phase, location, evse_id
       FROM ${db}.meter_values FINAL
       WHERE ${sql`charge_point_id = ${latest.charge_point_id} AND transaction_id = ${latest.transaction_id}`.text}
       ORDER BY timestamp_ms, received_at_ms, measurand, format LIMIT ${limit}`,
    )
  ).map(numbers);
  const statuses = (
    await store.query<SessionFacts['statuses'][number]>(
      `SELECT timestamp_ms, received_at_ms, status, error_code FROM ${db}.connector_status FINAL
       WHERE ${
         sql`charge_point_id = ${latest.charge_point_id} AND evse_id = ${latest.evse_id}
         AND timestamp_ms >= ${latest.started_at_ms - 3_600_000} AND timestamp_ms <= ${latest.stopped_at_ms + 3_600_000}`
           .text
       }
       ORDER BY timestamp_ms LIMIT ${limit}`,
    )
  ).map(numbers);
  const events = (
    await store.query<SessionFacts['events'][number]>(
      `SELECT seq, idx, received_at_ms, kind, fact FROM ${db}.session_events
       WHERE ${sql`session_id = ${session_id}`.text} ORDER BY seq, idx LIMIT 1 BY seq, idx LIMIT ${limit}`,
    )
  ).map(numbers);
  const tariff_versions = (
    await store.query<SessionFacts['tariff_versions'][number]>(
      `SELECT version, created_at_ms, tariff_json FROM ${db}.tariffs FINAL
       WHERE ${sql`tariff_id = ${latest.tariff_id}`.text} ORDER BY version LIMIT 1000`,
    )
  ).map(numbers);
  const overlapping = (
    latest.id_tag === ''
      ? []
      : await store.query<SessionFacts['overlapping'][number]>(
          `SELECT session_id, charge_point_id, started_at_ms, stopped_at_ms FROM ${db}.rated_sessions FINAL
           WHERE ${
             sql`id_tag = ${latest.id_tag} AND session_id != ${session_id}
             AND started_at_ms < ${latest.stopped_at_ms} AND stopped_at_ms > ${latest.started_at_ms}`.text
           }
           ORDER BY started_at_ms LIMIT 100`,
        )
  ).map(numbers);
  const frames = await frames_of_transaction(
    store,
    latest.charge_point_id,
    latest.transaction_id,
    [],
    session_rows_max,
  );
  return { latest, versions, meter_values, statuses, events, tariff_versions, overlapping, frames };
}
