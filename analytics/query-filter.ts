import { Money, minor_units } from '../core/money.js';
import { ident, type SqlFragment, sql } from './sql.js';
import { type Store, version_at_least } from './store.js';

/**
 * What every analytics question is asked about: a half-open time range [from, to) in epoch
 * milliseconds and optional dimension filters. A session belongs to the range when it started in
 * it (revenue, peak hours, payment methods, distributions); occupancy is cut to the range.
 */
export interface AnalyticsFilter {
  from_ms: number;
  to_ms: number;
  station_id?: string;
  evse_id?: number;
  tariff_id?: string;
  currency?: string;
  party?: string;
}

/** IANA zone for day, weekday and hour buckets; UTC unless asked. */
export interface ZonedFilter extends AnalyticsFilter {
  time_zone: string;
}

/**
 * The collapsed sessions of the filter as a FROM clause. The range, station and EVSE are in the
 * sorting key and fixed per session, so they prune before FINAL. Tariff, currency and party may
 * change with a new version: they are applied outside, after FINAL has chosen the latest version,
 * so a superseded version can never be selected by them.
 */
export function facts_from(store: Store, filter: AnalyticsFilter): string {
  const db = ident(store.database);
  const collapsed = (from_ms: number, to_ms: number) => {
    const inner: SqlFragment[] = [
      sql`started_at >= toDateTime(${Math.floor(from_ms / 1000)}, 'UTC')`,
      sql`started_at <= toDateTime(${Math.ceil(to_ms / 1000)}, 'UTC')`,
      sql`started_at_ms >= ${from_ms}`,
      sql`started_at_ms < ${to_ms}`,
    ];
    if (filter.station_id !== undefined) inner.push(sql`station_id = ${filter.station_id}`);
    if (filter.evse_id !== undefined) inner.push(sql`evse_id = ${filter.evse_id}`);
    return `SELECT * FROM ${db}.session_facts FINAL WHERE ${and(inner)}`;
  };
  const outer: SqlFragment[] = [sql`1 = 1`];
  if (filter.tariff_id !== undefined) outer.push(sql`tariff_id = ${filter.tariff_id}`);
  if (filter.currency !== undefined) outer.push(sql`currency = ${filter.currency}`);
  if (filter.party !== undefined) outer.push(sql`party = ${filter.party}`);
  const settings = final_settings(store);
  const slices = month_slices(filter.from_ms, filter.to_ms);
  // A server without the per-partition FINAL (18.16) merges all parts in one thread: one FINAL
  // per month, joined by UNION ALL, lets it use every core. A session's rows share the partition
  // of the month it started (UTC), so each slice collapses all of them.
  const sessions =
    settings === '' && slices.length > 1 && slices.length <= month_slices_max
      ? slices.map(([f, t]) => collapsed(f, t)).join(' UNION ALL ')
      : `${collapsed(filter.from_ms, filter.to_ms)}${settings}`;
  return `(SELECT * FROM (${sessions}) WHERE ${and(outer)})`;
}

/** Beyond this many months a range is read by one FINAL: a statement of bounded size. */
export const month_slices_max = 36;

/** [from, to) cut at the starts of UTC months. */
export function month_slices(from_ms: number, to_ms: number): [number, number][] {
  const slices: [number, number][] = [];
  let start = from_ms;
  while (start < to_ms && slices.length <= month_slices_max) {
    const d = new Date(start);
    const next = Math.min(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1), to_ms);
    slices.push([start, next]);
    start = next;
  }
  return slices;
}

/**
 * For a FINAL read of a table whose rows that collapse always share a partition: modern servers
 * (21.1 and later; chdb) may then collapse each partition on its own. 18.16 lacks the setting.
 */
export function final_settings(store: Store): string {
  return version_at_least(store.server_version, 21, 1)
    ? ' SETTINGS do_not_merge_across_partitions_select_final = 1'
    : '';
}

export function and(parts: readonly SqlFragment[]): string {
  return parts.map((p) => `(${p.text})`).join(' AND ');
}

/** Figures that JSONEachRow may quote (64-bit integers) as plain numbers; all stay below 2^53. */
export function count_of(value: unknown): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new TypeError(`not a safe integer count: ${String(value)}`);
  return n;
}

/**
 * A sum of money as exact text: padded to the currency's minor units, and never rounded (session
 * totals are already in minor units, so their sums are too; if one were not, its digits show).
 */
export function money_sum_text(value: string, currency: string): string {
  const exact = plain_decimal(value);
  if (exact !== undefined && exact.units !== 0n) {
    // The same text as below without a Decimal: thousands of rows (revenue by station) at once.
    const places = Math.max(minor_units(currency), exact.scale);
    return fixed_text(exact.units * 10n ** BigInt(places - exact.scale), places);
  }
  const amount = new Money(value);
  return amount.toFixed(Math.max(minor_units(currency), amount.decimalPlaces()));
}

const plain_decimal_text = /^(-?)(\d+)(?:\.(\d*?)0*)?$/;

/** "-12.3400" as -1234n at scale 2 (trailing zeros dropped); undefined for any other form. */
function plain_decimal(text: string): { units: bigint; scale: number } | undefined {
  const m = plain_decimal_text.exec(text);
  if (m === null) return undefined;
  const fraction = m[3] ?? '';
  const units = BigInt(`${m[2]}${fraction}`);
  return { units: m[1] === '-' ? -units : units, scale: fraction.length };
}

/** An integer count of 10^-places as fixed-point text, e.g. (-5n, 2) as "-0.05". */
function fixed_text(units: bigint, places: number): string {
  const digits = (units < 0n ? -units : units).toString().padStart(places + 1, '0');
  const sign = units < 0n ? '-' : '';
  if (places === 0) return `${sign}${digits}`;
  return `${sign}${digits.slice(0, -places)}.${digits.slice(-places)}`;
}

/**
 * amount / (numerator / denominator) to ratio_decimals places, half away from zero, as money_per
 * gives it; exact in integers. undefined when the amount is not plain decimal text.
 */
function ratio_text(amount_text: string, numerator: bigint, denominator: bigint): string | null | undefined {
  const exact = plain_decimal(amount_text);
  if (exact === undefined) return undefined;
  if (numerator === 0n) return null;
  let n = exact.units * denominator * 10n ** BigInt(ratio_decimals);
  let d = numerator * 10n ** BigInt(exact.scale);
  if (d < 0n) {
    n = -n;
    d = -d;
  }
  const q = n < 0n ? -((-2n * n + d) / (2n * d)) : (2n * n + d) / (2n * d);
  // A negative ratio that rounds to zero keeps its sign, as Decimal's toFixed writes it.
  if (q === 0n && n < 0n) return undefined;
  return fixed_text(q, ratio_decimals);
}

/** Ratios of money (per session, per kWh) to 4 decimals, half up: they are averages, not amounts. */
export const ratio_decimals = 4;

export function money_per(amount_text: string, divisor: Money | number): string | null {
  const d = new Money(divisor);
  if (d.isZero()) return null;
  return new Money(amount_text).div(d).toFixed(ratio_decimals);
}

/** A money figure set for one currency, as every analytics answer shows it. */
export interface MoneyFigures {
  currency: string;
  sessions: number;
  energy_wh: number;
  revenue_excl_vat: string;
  revenue_incl_vat: string;
  revenue_per_session_excl_vat: string | null;
  revenue_per_kwh_excl_vat: string | null;
}

export interface MoneyRow {
  currency: string;
  sessions: unknown;
  energy_wh: unknown;
  revenue_excl_vat: string;
  revenue_incl_vat: string;
}

/** The columns behind MoneyFigures, summed over collapsed sessions. */
export const money_columns = `count() AS sessions, sum(energy_wh) AS energy_wh,
  toString(sum(total_excl_vat)) AS revenue_excl_vat, toString(sum(total_incl_vat)) AS revenue_incl_vat`;

export function money_figures(row: MoneyRow): MoneyFigures {
  const sessions = count_of(row.sessions);
  const energy_wh = count_of(row.energy_wh);
  return {
    currency: row.currency,
    sessions,
    energy_wh,
    revenue_excl_vat: money_sum_text(row.revenue_excl_vat, row.currency),
    revenue_incl_vat: money_sum_text(row.revenue_incl_vat, row.currency),
    revenue_per_session_excl_vat:
      ratio_text(row.revenue_excl_vat, BigInt(sessions), 1n) ?? money_per(row.revenue_excl_vat, sessions),
    revenue_per_kwh_excl_vat:
      ratio_text(row.revenue_excl_vat, BigInt(energy_wh), 1000n) ??
      money_per(row.revenue_excl_vat, new Money(energy_wh).div(1000)),
  };
}
