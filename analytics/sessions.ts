import { Money, money_text } from '../core/money.js';
import { ident, sql } from './sql.js';
import type { Store } from './store.js';

/** A rated session as written to rated_sessions. Money as decimal text, never a float. */
export interface RatedSessionRow {
  session_id: string;
  version: number;
  charge_point_id: string;
  connector_id: number;
  transaction_id: string;
  id_tag: string;
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
  rated_at_ms: number;
  evse_id?: number;
  station_id?: string;
  payment_method?: string;
  party?: string;
  time_zone?: string;
  energy_cost_excl_vat?: string;
  time_cost_excl_vat?: string;
  parking_cost_excl_vat?: string;
  fixed_cost_excl_vat?: string;
  duration_s?: number;
  parking_s?: number;
  provisional?: number;
}

const decimal_text = /^-?\d+(\.\d+)?$/;

function seconds(ms: number): number {
  return Math.floor(ms / 1000);
}

/**
 * JSONEachRow line of a rated session. Decimals are written as bare JSON numbers from their exact
 * digits (ClickHouse 18.16 reads decimals only as numbers), after checking they are plain digits.
 */
const decimal_fields = [
  'total_excl_vat',
  'total_incl_vat',
  'energy_cost_excl_vat',
  'time_cost_excl_vat',
  'parking_cost_excl_vat',
  'fixed_cost_excl_vat',
] as const;

export function rated_session_json(row: RatedSessionRow): string {
  const rest: Record<string, unknown> = { ...row };
  let decimals = '';
  for (const field of decimal_fields) {
    const value = row[field];
    delete rest[field];
    if (value === undefined) continue;
    if (!decimal_text.test(value)) throw new TypeError(`${field} is not a decimal: ${value}`);
    decimals += `,"${field}":${value}`;
  }
  const base = JSON.stringify({
    ...rest,
    started_at: seconds(row.started_at_ms),
    stopped_at: seconds(row.stopped_at_ms),
  });
  return `${base.slice(0, -1)}${decimals}}`;
}

/** Columns read back; decimals as strings so that no float ever touches money. */
const session_columns = `session_id, version, charge_point_id, connector_id, transaction_id, id_tag,
  started_at_ms, stopped_at_ms, meter_start_wh, meter_stop_wh, energy_wh, stop_reason, tariff_id,
  tariff_version, currency, toString(total_excl_vat) AS total_excl_vat,
  toString(total_incl_vat) AS total_incl_vat, breakdown, rated_at_ms`;

function normalize(row: RatedSessionRow): RatedSessionRow {
  // JSONEachRow quotes 64-bit integers; give callers numbers (all well inside 2^53).
  for (const key of [
    'version',
    'connector_id',
    'started_at_ms',
    'stopped_at_ms',
    'meter_start_wh',
    'meter_stop_wh',
    'energy_wh',
    'tariff_version',
    'rated_at_ms',
  ] as const) {
    row[key] = Number(row[key]);
  }
  // ClickHouse prints decimals without trailing zeros; money is shown in the currency's minor units.
  row.total_excl_vat = money_text(new Money(row.total_excl_vat), row.currency);
  row.total_incl_vat = money_text(new Money(row.total_incl_vat), row.currency);
  return row;
}

export async function list_rated_sessions(
  store: Store,
  filter: { charge_point_id?: string; limit: number; offset: number },
): Promise<RatedSessionRow[]> {
  const table = sql`${ident(store.database)}.rated_sessions`;
  const where =
    filter.charge_point_id === undefined ? sql`1 = 1` : sql`charge_point_id = ${filter.charge_point_id}`;
  const rows = await store.query<RatedSessionRow>(
    `SELECT ${session_columns} FROM ${table} FINAL WHERE ${where}
     ORDER BY stopped_at_ms, session_id LIMIT ${sql`${filter.limit}`} OFFSET ${sql`${filter.offset}`}`,
  );
  return rows.map(normalize);
}

/** Keeps a stored tariff version in ClickHouse for audit (the `tariffs` table). */
export async function insert_tariff_version(
  store: Store,
  version: { tariff_id: string; version: number; tariff: { currency: string }; created_at_ms: number },
): Promise<void> {
  const row = {
    tariff_id: version.tariff_id,
    version: version.version,
    currency: version.tariff.currency,
    tariff_json: JSON.stringify(version.tariff),
    created_at_ms: version.created_at_ms,
  };
  await store.insert_json_rows('tariffs', [JSON.stringify(row)]);
}
