import { Decimal } from 'decimal.js';
import type { MeterValue, SampledValue } from '../schemas/events.js';

/**
 * What one OCPP MeterValue says about a session, in Wh, W and A: the rules that pick one series
 * out of everything a charger may report at one instant.
 *
 * - Units: Energy.Active.Import.Register in Wh or kWh, Power.Active.Import in W or kW,
 *   Current.Import in A, converted exactly (decimal text, no binary rounding of the digits).
 * - Signed values: a 1.6 `SignedData` value is the signature blob itself (1.6 section 7.43, the
 *   `signedData` kept beside it equals the value) and is no reading; an OCPP 2.0.1 sampled value
 *   with `signedMeterValue` carries its reading in `value` (2.0.1 part 2, SampledValueType) and is
 *   a reading like any other (Eichrecht chargers sign every value).
 * - Location: a session is billed from one series. The first reading that carries an energy
 *   register fixes the session's location, by `location_priority` (Outlet, the energy delivered at
 *   the connector and the default of both OCPP versions, first; the vehicle's or the grid side's
 *   own meter only when the charger reports nothing else). Readings of other locations stay
 *   evidence in meter_values and are never mixed into the register.
 * - Phase: a value without phase is the total; when a MeterValue carries no total for a
 *   measurand, its phase values L1, L2, L3 are summed (else L1-N, L2-N, L3-N). The neutral and
 *   line-to-line values are never summed. Current is likewise the sum over the phases, which is
 *   what OCPI tariff restrictions compare (mod_tariffs TariffRestrictions min_current/max_current).
 * - Resolution: the register's resolution is the last digit of its text (12.3 kWh: 100 Wh), the
 *   tolerance of the plausibility checks in rating/continuity.ts.
 */

export const location_priority: readonly string[] = ['Outlet', 'Cable', 'EV', 'Inlet', 'Body'];

export interface Reading {
  /** Charger clock, as sent. */
  at_ms: number;
  /** Location the series comes from ('' when the reading has no energy register). */
  location: string;
  energy_wh?: number;
  /** Smallest step the register's text can show, Wh. */
  energy_resolution_wh?: number;
  power_w?: number;
  /** Sum over the phases, A. */
  current_a?: number;
}

const energy_register = 'Energy.Active.Import.Register';
const power_measurand = 'Power.Active.Import';
const current_measurand = 'Current.Import';
const phases_line: ReadonlySet<string> = new Set(['L1', 'L2', 'L3']);
const phases_line_neutral: ReadonlySet<string> = new Set(['L1-N', 'L2-N', 'L3-N']);
const number_text = /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/;

/** A 1.6 SignedData value is the blob itself; a 2.0.1 signed value keeps its reading in `value`. */
export function is_reading(sv: SampledValue): boolean {
  if (sv.format !== 'SignedData') return true;
  const signed = sv.signedData ?? '';
  return signed !== '' && signed !== sv.value;
}

function scale_of(unit: string, base: string, kilo: string): number | undefined {
  return unit === kilo ? 1000 : unit === base || unit === '' ? 1 : undefined;
}

const powers_of_ten: readonly number[] = Array.from({ length: 19 }, (_, i) => Number(`1e-${i}`));

/**
 * The value of a decimal text times 1 or 1000, as the nearest double of the exact result (what
 * Decimal(text).mul(scale).toNumber() gives) without decimal arithmetic: kWh text has its point
 * moved three places. Undefined for anything but a number.
 */
function scaled(value: string, scale: number): number | undefined {
  if (!number_text.test(value)) return undefined;
  if (scale === 1) return Number(value);
  if (value.includes('e') || value.includes('E')) return new Decimal(value).mul(scale).toNumber();
  const negative = value.startsWith('-');
  const digits = negative ? value.slice(1) : value;
  const dot = digits.indexOf('.');
  const whole = dot < 0 ? digits : digits.slice(0, dot);
  const fraction = dot < 0 ? '' : digits.slice(dot + 1);
  const moved = `${whole}${fraction.slice(0, 3).padEnd(3, '0')}${fraction.length > 3 ? `.${fraction.slice(3)}` : ''}`;
  return Number(negative ? `-${moved}` : moved);
}

/** The last digit's weight of a register's text, Wh: 12.3 kWh gives 100 Wh. */
function resolution_of(value: string, scale: number): number {
  const exponent = value.search(/[eE]/);
  const mantissa = exponent < 0 ? value : value.slice(0, exponent);
  const dot = mantissa.indexOf('.');
  const decimals = dot < 0 ? 0 : mantissa.length - dot - 1;
  const shift = decimals - (scale === 1000 ? 3 : 0);
  return shift <= 0 ? 10 ** -shift : (powers_of_ten[shift] ?? 10 ** -shift);
}

/** Total of one measurand at one location: the unphased value, else the sum over the phases. */
interface Series {
  total?: number;
  line?: number;
  line_neutral?: number;
  total_resolution_wh: number;
  line_resolution_wh: number;
  line_neutral_resolution_wh: number;
}

/** Sum of two readings, exact in decimal (phase values add up as their texts do). */
function plus(a: number | undefined, b: number): number {
  return a === undefined ? b : new Decimal(a).plus(b).toNumber();
}

function add_to(series: Series, phase: string, value: number, resolution_wh: number): void {
  if (phase === '') {
    series.total = value;
    series.total_resolution_wh = resolution_wh;
  } else if (phases_line.has(phase)) {
    series.line = plus(series.line, value);
    series.line_resolution_wh = Math.max(series.line_resolution_wh, resolution_wh);
  } else if (phases_line_neutral.has(phase)) {
    series.line_neutral = plus(series.line_neutral, value);
    series.line_neutral_resolution_wh = Math.max(series.line_neutral_resolution_wh, resolution_wh);
  }
}

function total_of(series: Series | undefined): { value: number; resolution_wh: number } | undefined {
  if (series === undefined) return undefined;
  if (series.total !== undefined) return { value: series.total, resolution_wh: series.total_resolution_wh };
  if (series.line !== undefined) return { value: series.line, resolution_wh: series.line_resolution_wh };
  if (series.line_neutral !== undefined)
    return { value: series.line_neutral, resolution_wh: series.line_neutral_resolution_wh };
  return undefined;
}

function new_series(): Series {
  return { total_resolution_wh: 0, line_resolution_wh: 0, line_neutral_resolution_wh: 0 };
}

/** The series of one location in a MeterValue. */
interface AtLocation {
  location: string;
  energy?: Series;
  power?: Series;
  current?: Series;
}

/** Every series a MeterValue carries, by location (usually one). */
export interface LocatedReadings {
  at_ms: number;
  by_location: AtLocation[];
}

export function located_readings(meter_value: MeterValue): LocatedReadings {
  const by_location: AtLocation[] = [];
  for (const sv of meter_value.sampledValues) {
    if (!is_reading(sv)) continue;
    const measurand = sv.measurand === '' ? energy_register : sv.measurand;
    const kind =
      measurand === energy_register
        ? 'energy'
        : measurand === power_measurand
          ? 'power'
          : measurand === current_measurand
            ? 'current'
            : undefined;
    if (kind === undefined) continue;
    const scale =
      kind === 'energy'
        ? scale_of(sv.unit, 'Wh', 'kWh')
        : kind === 'power'
          ? scale_of(sv.unit, 'W', 'kW')
          : sv.unit === 'A' || sv.unit === ''
            ? 1
            : undefined;
    if (scale === undefined) continue;
    const value = scaled(sv.value, scale);
    if (value === undefined || !Number.isFinite(value)) continue;
    if (kind === 'energy' && value < 0) continue;
    const location = sv.location === '' ? 'Outlet' : sv.location;
    let at = by_location.find((l) => l.location === location);
    if (at === undefined) {
      at = { location };
      by_location.push(at);
    }
    const series = at[kind] ?? new_series();
    at[kind] = series;
    add_to(series, sv.phase, value, kind === 'energy' ? resolution_of(sv.value, scale) : 0);
  }
  return { at_ms: meter_value.timestampMs, by_location };
}

/** The location a session's series comes from: the first in priority order that has a register. */
export function series_location(readings: LocatedReadings): string | undefined {
  let best: string | undefined;
  let best_rank = Number.POSITIVE_INFINITY;
  for (const at of readings.by_location) {
    if (total_of(at.energy) === undefined) continue;
    const rank = location_priority.indexOf(at.location);
    const r = rank < 0 ? location_priority.length : rank;
    if (r < best_rank) {
      best = at.location;
      best_rank = r;
    }
  }
  return best;
}

/**
 * The reading of one location. Without a chosen location yet (`location` undefined) the series
 * is chosen from this MeterValue; power and current are taken from the same location only.
 */
export function reading_of(meter_value: MeterValue, location?: string): Reading {
  const readings = located_readings(meter_value);
  const chosen = location ?? series_location(readings) ?? location_priority[0]!;
  const at = readings.by_location.find((l) => l.location === chosen);
  const reading: Reading = { at_ms: readings.at_ms, location: '' };
  const energy = total_of(at?.energy);
  if (energy !== undefined) {
    reading.location = chosen;
    reading.energy_wh = energy.value;
    reading.energy_resolution_wh = energy.resolution_wh;
  }
  const power = total_of(at?.power);
  if (power !== undefined) reading.power_w = power.value;
  const current = total_of(at?.current);
  if (current !== undefined) reading.current_a = current.value;
  return reading;
}
