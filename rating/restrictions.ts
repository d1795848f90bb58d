import type { Decimal } from 'decimal.js';
import { Money } from '../core/money.js';
import type { LocalTime } from './local-time.js';
import type { TariffRestrictions } from './tariff.js';

/** The state of a session during a slice of time in which no restriction can change its answer. */
export interface SliceState {
  local: LocalTime;
  /** Energy consumed in the session before the slice starts, Wh (exact; interpolated at cuts). */
  energy_wh_before: Decimal;
  /** Seconds since the session started, at the slice start. */
  duration_s_before: number;
  power_w: number | undefined;
  current_a: number | undefined;
}

/**
 * The average power of a sample interval from the energy it registered, W: energy_wh x 3_600_000 /
 * duration_ms, the exact quotient taken to a double (both engines compute it from the same exact
 * energy, so they compare the same number). Undefined for an interval of no duration.
 *
 * Rule: an interval without a measured power (the first interval, before any power sample, or a
 * charger that sends none) is matched against min_power/max_power with this average, the power its
 * energy implies (mod_tariffs 11.4.7 TariffRestrictions min_power/max_power). Current is not
 * implied: without the voltage (1 or 3 phases, AC or DC) power says nothing exact about amperes, so
 * a min_current/max_current restriction does not match an interval without a measured current.
 */
export function implied_power_w(energy_wh: Decimal, duration_ms: number): number | undefined {
  if (duration_ms <= 0) return undefined;
  return energy_wh.mul(3_600_000).div(duration_ms).toNumber();
}

/** kWh from the tariff JSON as exact Wh: the decimal text of the number, not its binary value. */
export function kwh_in_wh(kwh: number): Decimal {
  return new Money(String(kwh)).mul(1000);
}

const minutes_by_text = new Map<string, number>();

function minutes(hhmm: string): number {
  let value = minutes_by_text.get(hhmm);
  if (value === undefined) {
    value = Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));
    if (minutes_by_text.size > 10_000) minutes_by_text.clear();
    minutes_by_text.set(hhmm, value);
  }
  return value;
}

/**
 * start_time inclusive, end_time exclusive; "If end_time < start_time then the period wraps around
 * to the next day" and "To stop at end of the day use: 00:00" (mod_tariffs 11.4.7).
 */
export function time_of_day_matches(r: TariffRestrictions, minute_of_day: number): boolean {
  if (r.start_time === undefined && r.end_time === undefined) return true;
  const start = r.start_time === undefined ? 0 : minutes(r.start_time);
  const end = r.end_time === undefined ? 24 * 60 : minutes(r.end_time);
  if (start === end) return true;
  if (start < end) return minute_of_day >= start && minute_of_day < end;
  return minute_of_day >= start || minute_of_day < end;
}

/**
 * The restrictions that depend only on the wall clock (time, date, weekday). The engine splits a
 * session where their answer changes, so they are evaluated once per slice.
 */
export function clock_restrictions_match(r: TariffRestrictions, local: LocalTime): boolean {
  if (!time_of_day_matches(r, local.minute_of_day)) return false;
  // start_date inclusive, end_date exclusive (mod_tariffs 11.4.7); YYYY-MM-DD compares as text.
  if (r.start_date !== undefined && local.date < r.start_date) return false;
  if (r.end_date !== undefined && local.date >= r.end_date) return false;
  if (r.day_of_week !== undefined && !r.day_of_week.includes(local.day_of_week)) return false;
  return true;
}

/**
 * All restrictions of an element against a slice. min_* are inclusive and max_* exclusive
 * (mod_tariffs 11.4.7). Power is the measured one, else the average the interval's energy implies
 * (implied_power_w); current is the sum over the phases (mod_tariffs TariffRestrictions: "Sum of
 * the minimum current (in Amperes) over all phases"), and a current restriction does not match a
 * slice without a measured current: the condition cannot be shown to hold. Reservation restrictions never match a
 * charging session (no reservation facts are modelled).
 */
export function restrictions_match(r: TariffRestrictions | undefined, s: SliceState): boolean {
  if (r === undefined) return true;
  if (r.reservation !== undefined) return false;
  if (!clock_restrictions_match(r, s.local)) return false;
  if (r.min_kwh !== undefined && s.energy_wh_before.lt(kwh_in_wh(r.min_kwh))) return false;
  if (r.max_kwh !== undefined && s.energy_wh_before.gte(kwh_in_wh(r.max_kwh))) return false;
  if (r.min_duration !== undefined && !(s.duration_s_before >= r.min_duration)) return false;
  if (r.max_duration !== undefined && !(s.duration_s_before < r.max_duration)) return false;
  if (r.min_power !== undefined && !(s.power_w !== undefined && s.power_w / 1000 >= r.min_power))
    return false;
  if (r.max_power !== undefined && !(s.power_w !== undefined && s.power_w / 1000 < r.max_power)) return false;
  if (r.min_current !== undefined && !(s.current_a !== undefined && s.current_a >= r.min_current))
    return false;
  if (r.max_current !== undefined && !(s.current_a !== undefined && s.current_a < r.max_current))
    return false;
  return true;
}
