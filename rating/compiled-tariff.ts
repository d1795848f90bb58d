import { Money, minor_units } from '../core/money.js';
import type { PriceComponent, Tariff, TariffDimensionType, TariffRestrictions } from './tariff.js';

/**
 * A tariff turned into integers once, for the pricing engine's hot path (rating/engine.ts):
 * prices as exact integer costs per nWh, per ms and per session, restrictions as minute ranges,
 * bit masks and nWh thresholds. A tariff the integer engine cannot price exactly (a price or
 * threshold with too many decimals, more than 31 elements) compiles to undefined, and the
 * decimal engine prices it.
 *
 * Costs are exact integers in units of 1 / (36 x 10^cost_excl_exponent) of the currency excl.
 * VAT, and 1 / (36 x 10^cost_incl_exponent) incl. VAT: an ENERGY price P / 10^d per kWh costs
 * P x 36 x 10^(exponent - 12 - d) units per nWh, a TIME price P / 10^d per hour costs
 * P x 10^(exponent - 5 - d) units per ms (an hour is 36 x 10^5 ms), and VAT multiplies by
 * (100 + vat) / 100. Every line's cost is then volume x coefficient, without a division.
 */

/** Volume units of the integer engine: nWh for ENERGY, ms for TIME and PARKING_TIME, 1 for FLAT. */
export const nwh_per_wh = 1_000_000_000;

/** An exact non-negative decimal: digits / 10^decimals. */
export interface ExactDecimal {
  digits: bigint;
  decimals: number;
}

const decimal_text = /^(\d+)(?:\.(\d+))?(?:e([+-]\d+))?$/;

/** The decimal text of a JSON number (what Money(String(x)) reads) as an exact decimal. */
export function exact_decimal(value: number): ExactDecimal | undefined {
  if (!Number.isFinite(value) || value < 0) return undefined;
  const match = decimal_text.exec(String(value));
  if (match === null) return undefined;
  const fraction = match[2] ?? '';
  let digits = match[1]! + fraction;
  let decimals = fraction.length - Number(match[3] ?? 0);
  if (decimals < 0) {
    digits += '0'.repeat(-decimals);
    decimals = 0;
  }
  return { digits: BigInt(digits), decimals };
}

export interface CompiledComponent {
  /** Slot of this component in per-component volume arrays. */
  slot: number;
  element_index: number;
  dimension: TariffDimensionType;
  source: PriceComponent;
  step_size: number;
  /** step_size in volume units (nWh, ms); 1 for FLAT. */
  step_units: number;
  /** Cost per volume unit, excl. and incl. VAT: exact, and the nearest double for estimates. */
  cost_excl_exact: bigint;
  cost_incl_exact: bigint;
  cost_excl: number;
  cost_incl: number;
  /** The whole unit of volume (Wh in nWh, s in ms; 1 for FLAT) and its number of zeros. */
  whole_unit: number;
  whole_unit_digits: number;
  /** A line's cost is volume x price_digits [x vat_factor] / (line_divisor x 10^exponent). */
  price_digits: bigint;
  price_digits_number: number;
  vat_factor: bigint;
  vat_factor_number: number;
  line_divisor: number;
  line_excl_exponent: number;
  line_incl_exponent: number;
  unit_price_text: string;
  vat_percent_text: string;
  /** Index in CompiledTariff.groups of this component's (dimension, VAT rate): the unit rounded on its own. */
  group: number;
}

/**
 * The amounts rounded on their own (rule in rating/decimal-engine.ts, invoice_totals): the lines
 * of one dimension at one VAT rate. `rate` indexes CompiledTariff.vat_rates.
 */
export interface CompiledGroup {
  dimension: TariffDimensionType;
  rate: number;
}

/** A VAT rate as an exact fraction: VAT of a net amount n is n x digits / divisor. */
export interface CompiledVatRate {
  digits: bigint;
  divisor: bigint;
  /** The same as numbers, for amounts small enough that the products stay exact. */
  digits_number: number;
  divisor_number: number;
}

/** The order of dimensions in the totals, which also breaks ties when VAT cents are shared out. */
export const dimension_order: readonly TariffDimensionType[] = ['ENERGY', 'TIME', 'PARKING_TIME', 'FLAT'];

export interface CompiledElement {
  index: number;
  bit: number;
  unrestricted: boolean;
  reservation: boolean;
  /** Time of day: [start_minute, end_minute) as time_of_day_matches reads it. */
  has_time_of_day: boolean;
  start_minute: number;
  end_minute: number;
  start_date: string | undefined;
  end_date: string | undefined;
  /** Bits of OCPI weekdays (MONDAY = 1); 127 without day_of_week. */
  weekdays: number;
  /** Session energy thresholds in nWh; -1 and Infinity when absent. */
  min_nwh: number;
  max_nwh: number;
  restrictions: TariffRestrictions | undefined;
  energy: CompiledComponent | undefined;
  time: CompiledComponent | undefined;
  parking_time: CompiledComponent | undefined;
  flat: CompiledComponent | undefined;
}

/** The component each dimension's first matching element gives, for one set of clock answers. */
export interface ClockMatches {
  energy: CompiledComponent | undefined;
  time: CompiledComponent | undefined;
  parking_time: CompiledComponent | undefined;
  flat: CompiledComponent | undefined;
}

export interface CompiledTariff {
  elements: CompiledElement[];
  /**
   * No element restricts energy, duration, power or current: which element matches depends on the
   * clock answers alone, and is looked up per mask in matches_by_clock.
   */
  clock_only: boolean;
  matches_by_clock: Map<number, ClockMatches>;
  components: CompiledComponent[];
  /** (dimension, VAT rate) pairs in dimension_order, then in order of first appearance. */
  groups: CompiledGroup[];
  vat_rates: CompiledVatRate[];
  has_clock: boolean;
  /** Some element restricts power: an interval without a measured one needs its implied power. */
  has_power: boolean;
  has_price_limits: boolean;
  /** minor_units(currency), and 10 to that power. */
  minor_digits: number;
  to_minor: number;
  /**
   * For a local minute of day m (0..1453: the minutes of a block may run past midnight), the next
   * minute after m at which a time-of-day restriction or the date can change its answer.
   */
  next_clock_minute: Int16Array;
  /** Offsets from the session start (ms) of min/max_duration, sorted, distinct. */
  duration_offsets_ms: number[];
  /** min/max_kwh as session energy in nWh, in element order. */
  kwh_targets_nwh: number[];
  cost_excl_exponent: number;
  cost_incl_exponent: number;
  /** 36 x 10^exponent as an exact BigInt, and its reciprocal as a double for estimates. */
  cost_excl_denominator: bigint;
  cost_incl_denominator: bigint;
  cost_excl_reciprocal: number;
  cost_incl_reciprocal: number;
}

export const weekday_bits: Record<string, number> = {
  MONDAY: 1,
  TUESDAY: 2,
  WEDNESDAY: 4,
  THURSDAY: 8,
  FRIDAY: 16,
  SATURDAY: 32,
  SUNDAY: 64,
};

/** Elements are bits of a 32-bit mask of clock answers. */
const elements_max = 31;
/** Bounds that keep every volume a safe integer: session energy up to 8 MWh plus one step. */
export const energy_nwh_max = 8e15;
const energy_step_wh_max = 1e6;
const time_step_s_max = 1e9;
/** Prices and VAT to 20 decimals: the cost units stay within a double's exponent for estimates. */
const decimals_max = 20;
/** kWh thresholds to the nWh: 12 decimals. */
const kwh_decimals_max = 12;

const compiled = new WeakMap<Tariff, CompiledTariff | null>();

/** The tariff compiled (cached per tariff object: tariffs are not changed after they are stored). */
export function compile_tariff(tariff: Tariff): CompiledTariff | undefined {
  let entry = compiled.get(tariff);
  if (entry === undefined) {
    entry = compile(tariff) ?? null;
    compiled.set(tariff, entry);
  }
  return entry ?? undefined;
}

function minutes(hhmm: string): number {
  return Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));
}

function threshold_nwh(kwh: number | undefined, absent: number): number | null {
  if (kwh === undefined) return absent;
  const exact = exact_decimal(kwh);
  if (exact === undefined || exact.decimals > kwh_decimals_max) return null;
  const nwh = exact.digits * 10n ** BigInt(kwh_decimals_max - exact.decimals);
  // Above every session energy the engine holds: compares the same as the exact threshold.
  return nwh > BigInt(energy_nwh_max) ? 2 ** 53 : Number(nwh);
}

function decimal_string(value: number): string {
  return new Money(String(value)).toString();
}

function compile(tariff: Tariff): CompiledTariff | undefined {
  if (tariff.elements.length > elements_max) return undefined;
  const prices: { element_index: number; source: PriceComponent; price: ExactDecimal; vat: ExactDecimal }[] =
    [];
  let price_decimals_max = 0;
  let vat_decimals_max = 0;
  for (let e = 0; e < tariff.elements.length; e++) {
    for (const source of tariff.elements[e]!.price_components) {
      const price = exact_decimal(source.price);
      const vat = exact_decimal(source.vat ?? 0);
      if (price === undefined || vat === undefined) return undefined;
      const step_max = source.type === 'ENERGY' ? energy_step_wh_max : time_step_s_max;
      // step_size 0: no step rounding (rating/tariff.ts); it is billed as a step of one volume unit.
      if (!Number.isInteger(source.step_size) || source.step_size < 0 || source.step_size > step_max)
        return undefined;
      if (price.decimals > decimals_max || vat.decimals > decimals_max) return undefined;
      price_decimals_max = Math.max(price_decimals_max, price.decimals);
      vat_decimals_max = Math.max(vat_decimals_max, vat.decimals);
      prices.push({ element_index: e, source, price, vat });
    }
  }
  const excl_exponent = 12 + price_decimals_max;
  const incl_exponent = excl_exponent + 2 + vat_decimals_max;
  const excl_denominator = 36n * 10n ** BigInt(excl_exponent);
  const incl_denominator = 36n * 10n ** BigInt(incl_exponent);
  const minor_digits = minor_units(tariff.currency);
  const components = new Map<PriceComponent, CompiledComponent>();
  const list: CompiledComponent[] = [];
  const vat_rates: CompiledVatRate[] = [];
  const rate_by_text = new Map<string, number>();
  const group_by_key = new Map<string, number>();
  const groups: CompiledGroup[] = [];
  for (const dimension of dimension_order) {
    for (const { source, vat } of prices) {
      if (source.type !== dimension) continue;
      const vat_text = decimal_string(source.vat ?? 0);
      let rate = rate_by_text.get(vat_text);
      if (rate === undefined) {
        rate = vat_rates.length;
        rate_by_text.set(vat_text, rate);
        const divisor = 100n * 10n ** BigInt(vat.decimals);
        vat_rates.push({
          digits: vat.digits,
          divisor,
          digits_number: Number(vat.digits),
          divisor_number: Number(divisor),
        });
      }
      const key = `${dimension}|${vat_text}`;
      if (!group_by_key.has(key)) {
        group_by_key.set(key, groups.length);
        groups.push({ dimension, rate });
      }
    }
  }
  for (const { element_index, source, price, vat } of prices) {
    const dimension = source.type;
    // Per volume unit: ENERGY per nWh (10^-12 kWh), TIME per ms (1 / (36 x 10^5) h), FLAT per session.
    const [divisor, exponent] = dimension === 'ENERGY' ? [1, 12] : dimension === 'FLAT' ? [1, 0] : [36, 5];
    const per_unit =
      price.digits * BigInt(36 / divisor) * 10n ** BigInt(excl_exponent - exponent - price.decimals);
    const vat_factor = 100n * 10n ** BigInt(vat.decimals) + vat.digits;
    const cost_incl_exact = per_unit * vat_factor * 10n ** BigInt(vat_decimals_max - vat.decimals);
    const component: CompiledComponent = {
      slot: list.length,
      element_index,
      dimension,
      source,
      step_size: source.step_size,
      step_units:
        dimension === 'FLAT' || source.step_size === 0
          ? 1
          : dimension === 'ENERGY'
            ? source.step_size * nwh_per_wh
            : source.step_size * 1000,
      whole_unit: dimension === 'ENERGY' ? nwh_per_wh : dimension === 'FLAT' ? 1 : 1000,
      whole_unit_digits: dimension === 'ENERGY' ? 9 : dimension === 'FLAT' ? 0 : 3,
      cost_excl_exact: per_unit,
      cost_incl_exact,
      cost_excl: Number(per_unit),
      cost_incl: Number(cost_incl_exact),
      price_digits: price.digits,
      price_digits_number: Number(price.digits),
      vat_factor,
      vat_factor_number: Number(vat_factor),
      line_divisor: divisor,
      line_excl_exponent: exponent + price.decimals,
      line_incl_exponent: exponent + price.decimals + 2 + vat.decimals,
      unit_price_text: decimal_string(source.price),
      vat_percent_text: decimal_string(source.vat ?? 0),
      group: group_by_key.get(`${dimension}|${decimal_string(source.vat ?? 0)}`)!,
    };
    components.set(source, component);
    list.push(component);
  }

  const boundaries = new Set<number>([1440]);
  const duration_offsets = new Set<number>();
  const kwh_targets_nwh: number[] = [];
  const elements: CompiledElement[] = [];
  let has_clock = false;
  let clock_only = true;
  for (let e = 0; e < tariff.elements.length; e++) {
    const element = tariff.elements[e]!;
    const r = element.restrictions;
    // "the first" component of each type in the element prices that dimension, as find() reads it.
    const first_of = (type: TariffDimensionType) => {
      const source = element.price_components.find((c) => c.type === type);
      return source === undefined ? undefined : components.get(source);
    };
    const start_minute = r?.start_time === undefined ? 0 : minutes(r.start_time);
    const end_minute = r?.end_time === undefined ? 24 * 60 : minutes(r.end_time);
    if (!Number.isFinite(start_minute) || !Number.isFinite(end_minute)) return undefined;
    const min_nwh = threshold_nwh(r?.min_kwh, -1);
    const max_nwh = threshold_nwh(r?.max_kwh, Number.POSITIVE_INFINITY);
    if (min_nwh === null || max_nwh === null) return undefined;
    let weekdays = 127;
    if (r?.day_of_week !== undefined) {
      weekdays = 0;
      for (const day of r.day_of_week) weekdays |= weekday_bits[day] ?? 0;
    }
    const has_time_of_day = r !== undefined && (r.start_time !== undefined || r.end_time !== undefined);
    if (has_time_of_day) {
      boundaries.add(start_minute);
      boundaries.add(end_minute);
    }
    if (
      r !== undefined &&
      (has_time_of_day ||
        r.start_date !== undefined ||
        r.end_date !== undefined ||
        r.day_of_week !== undefined)
    )
      has_clock = true;
    if (
      r !== undefined &&
      (r.min_kwh !== undefined ||
        r.max_kwh !== undefined ||
        r.min_duration !== undefined ||
        r.max_duration !== undefined ||
        r.min_power !== undefined ||
        r.max_power !== undefined ||
        r.min_current !== undefined ||
        r.max_current !== undefined)
    )
      clock_only = false;
    if (r !== undefined) {
      for (const d of [r.min_duration, r.max_duration]) if (d !== undefined) duration_offsets.add(d * 1000);
      for (const t of [min_nwh, max_nwh])
        if (t >= 0 && t !== Number.POSITIVE_INFINITY) kwh_targets_nwh.push(t);
    }
    elements.push({
      index: e,
      bit: 2 ** e,
      unrestricted: r === undefined,
      reservation: r?.reservation !== undefined,
      has_time_of_day,
      start_minute,
      end_minute,
      start_date: r?.start_date,
      end_date: r?.end_date,
      weekdays,
      min_nwh,
      max_nwh,
      restrictions: r,
      energy: first_of('ENERGY'),
      time: first_of('TIME'),
      parking_time: first_of('PARKING_TIME'),
      flat: first_of('FLAT'),
    });
  }
  // Minutes of a block run up to 1439 + 14; past midnight the boundaries repeat, shifted a day.
  const next_clock_minute = new Int16Array(1440 + 15);
  const sorted = [...boundaries].flatMap((b) => [b, b + 1440]).sort((x, y) => x - y);
  for (let m = 0; m < next_clock_minute.length; m++) next_clock_minute[m] = sorted.find((b) => b > m) ?? 2880;
  return {
    elements,
    clock_only,
    matches_by_clock: new Map(),
    components: list,
    groups,
    vat_rates,
    has_clock,
    has_power: tariff.elements.some(
      (e) => e.restrictions?.min_power !== undefined || e.restrictions?.max_power !== undefined,
    ),
    has_price_limits: tariff.min_price !== undefined || tariff.max_price !== undefined,
    minor_digits,
    to_minor: 10 ** minor_digits,
    next_clock_minute,
    duration_offsets_ms: [...duration_offsets].sort((x, y) => x - y),
    kwh_targets_nwh,
    cost_excl_exponent: excl_exponent,
    cost_incl_exponent: incl_exponent,
    cost_excl_denominator: excl_denominator,
    cost_incl_denominator: incl_denominator,
    cost_excl_reciprocal: 1 / (36 * 10 ** excl_exponent),
    cost_incl_reciprocal: 1 / (36 * 10 ** incl_exponent),
  };
}

/**
 * Clock restrictions (time of day, date, weekday) against a local time, as
 * clock_restrictions_match reads them: start inclusive, end exclusive, a time range wraps past
 * midnight when end < start (mod_tariffs 11.4.7).
 */
export function clock_mask(
  tariff: CompiledTariff,
  minute_of_day: number,
  date: string,
  weekday_bit: number,
): number {
  let mask = 0;
  for (const e of tariff.elements) {
    if (e.unrestricted) {
      mask |= e.bit;
      continue;
    }
    if (e.has_time_of_day) {
      const start = e.start_minute;
      const end = e.end_minute;
      if (start < end) {
        if (minute_of_day < start || minute_of_day >= end) continue;
      } else if (start > end && minute_of_day < start && minute_of_day >= end) continue;
    }
    if (e.start_date !== undefined && date < e.start_date) continue;
    if (e.end_date !== undefined && date >= e.end_date) continue;
    if ((e.weekdays & weekday_bit) === 0) continue;
    mask |= e.bit;
  }
  return mask;
}
