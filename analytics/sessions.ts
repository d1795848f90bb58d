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
  /** OCPI 2.2.1 TokenType of the token: RFID, APP_USER, AD_HOC_USER or OTHER; '' unknown. */
  token_type?: string;
  /** OCPI CdrToken.contract_id (eMAID) of the token; '' unknown. */
  contract_id?: string;
  /** OCPI 2.2.1 AuthMethod: AUTH_REQUEST, COMMAND or WHITELIST; '' unknown. */
  auth_method?: string;
  /** The token's group id (OCPP groupIdToken, OCPI Token.group_id); '' none. */
  group_id?: string;
  /** JSON object of anomaly rule name to count, e.g. {"energy_decrease":2}; '{}' none. */
  anomalies?: string;
  /** 1: flagged for review (e.g. implausible energy); 0 otherwise. */
  review?: number;
  /**
   * When this version was rated, server time in epoch ms: the CDR's last_updated (mod_cdrs). It
   * must be the same on a redelivered write of the same version (take it from the event or the
   * re-rating request, not from the clock at write time): the CDR feed is keyed by it, and two
   * values for one version would list that version twice. 0: unknown (rated_at_ms stands in).
   */
  last_updated_ms?: number;
}

/** The tokens' types of OCPI 2.2.1 (mod_tokens TokenType). */
export const token_types = ['AD_HOC_USER', 'APP_USER', 'OTHER', 'RFID'] as const;

/** The authorization methods of OCPI 2.2.1 (mod_cdrs AuthMethod). */
export const auth_methods = ['AUTH_REQUEST', 'COMMAND', 'WHITELIST'] as const;

/** Written where a row leaves a column out: the column defaults of schema v34. */
const v34_defaults = {
  token_type: '',
  contract_id: '',
  auth_method: '',
  group_id: '',
  anomalies: '{}',
  review: 0,
  last_updated_ms: 0,
} as const;

/** Refuses what the CDR mapping and the feed key could not read back, naming the field. */
function check_v34_fields(row: RatedSessionRow): void {
  const t = row.token_type;
  if (t !== undefined && t !== '' && !(token_types as readonly string[]).includes(t))
    throw new TypeError(`token_type is not an OCPI TokenType: ${t}`);
  const a = row.auth_method;
  if (a !== undefined && a !== '' && !(auth_methods as readonly string[]).includes(a))
    throw new TypeError(`auth_method is not an OCPI AuthMethod: ${a}`);
  if (row.anomalies !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(row.anomalies);
    } catch {
      parsed = undefined;
    }
    const counts = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed);
    if (!counts || !Object.values(parsed as object).every((n) => Number.isSafeInteger(n) && n >= 0))
      throw new TypeError(`anomalies is not a JSON object of counts: ${row.anomalies}`);
  }
  if (row.review !== undefined && row.review !== 0 && row.review !== 1)
    throw new TypeError(`review is not 0 or 1: ${row.review}`);
  const u = row.last_updated_ms;
  if (u !== undefined && !(Number.isSafeInteger(u) && u >= 0))
    throw new TypeError(`last_updated_ms is not a time in ms: ${u}`);
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
  check_v34_fields(row);
  const rest: Record<string, unknown> = { ...row };
  // Written even when left out: ClickHouse 18.16 fills an omitted JSONEachRow field with the
  // type's default ('' rather than the column's '{}').
  for (const [field, value] of Object.entries(v34_defaults)) rest[field] ??= value;
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

export interface SessionFilter {
  charge_point_id?: string;
  id_tag?: string;
  /** Sessions started at or after, epoch ms. */
  from_ms?: number;
  /** Sessions started before, epoch ms. */
  to_ms?: number;
  limit: number;
  offset: number;
}

export async function list_rated_sessions(store: Store, filter: SessionFilter): Promise<RatedSessionRow[]> {
  const table = sql`${ident(store.database)}.rated_sessions`;
  const parts = [sql`1 = 1`];
  if (filter.charge_point_id !== undefined) parts.push(sql`charge_point_id = ${filter.charge_point_id}`);
  if (filter.id_tag !== undefined) parts.push(sql`id_tag = ${filter.id_tag}`);
  if (filter.from_ms !== undefined) parts.push(sql`started_at_ms >= ${filter.from_ms}`);
  if (filter.to_ms !== undefined) parts.push(sql`started_at_ms < ${filter.to_ms}`);
  const rows = await store.query<RatedSessionRow>(
    `SELECT ${session_columns} FROM ${table} FINAL WHERE ${parts.map((p) => p.text).join(' AND ')}
     ORDER BY stopped_at_ms, session_id LIMIT ${sql`${filter.limit}`} OFFSET ${sql`${filter.offset}`}`,
  );
  return rows.map(normalize);
}

/** One session's latest version and every version rated before, oldest first (for disputes). */
export async function rated_session_history(
  store: Store,
  session_id: string,
): Promise<
  { latest: RatedSessionRow; versions: (RatedSessionRow & { rated_reason: string })[] } | undefined
> {
  const db = ident(store.database);
  const [latest] = await store.query<RatedSessionRow>(
    `SELECT ${session_columns} FROM ${sql`${db}.rated_sessions`} FINAL WHERE ${sql`session_id = ${session_id}`}`,
  );
  if (latest === undefined) return undefined;
  const versions = await store.query<RatedSessionRow & { rated_reason: string }>(
    `SELECT ${session_columns}, rated_reason FROM ${sql`${db}.rated_session_versions`} FINAL
     WHERE ${sql`session_id = ${session_id}`} ORDER BY version`,
  );
  return {
    latest: normalize(latest),
    versions: versions.map((v) => ({ ...normalize(v), rated_reason: v.rated_reason })),
  };
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
