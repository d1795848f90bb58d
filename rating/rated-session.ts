import { FieldError } from '../core/field-error.js';
import type { Plan, PlanLine } from './plans.js';
import type { Tariff, TariffDimensionType } from './tariff.js';

// The shapes going into and out of the pricing engine (rating/engine.ts).

/**
 * A meter sample of a session. The state it gives (charging, power, current) holds until the next
 * sample; the last sample marks the end of the session. Energy is the cumulative register in Wh.
 */
export interface MeterSample {
  at_ms: number;
  energy_wh: number;
  /** Measured power, W. Absent: power restrictions use the power the interval's energy implies. */
  power_w?: number;
  /**
   * Current, A, as the SUM over the phases (OCPI mod_tariffs TariffRestrictions min_current /
   * max_current: "Sum of the ... current (in Amperes) over all phases"): three phases at 16 A are 48.
   * Absent: a current restriction does not match (no voltage is known to derive it from power).
   */
  current_a?: number;
  /** false: the EV is connected but not charging, which OCPI prices as PARKING_TIME. */
  charging: boolean;
}

export interface RatingInput {
  tariff: Tariff;
  /** The driver's membership plan, if any (rating/plans.ts). */
  plan?: Plan;
  /** IANA zone of the Location (OCPI Location.time_zone), e.g. 'Europe/Amsterdam'. */
  time_zone: string;
  samples: MeterSample[];
}

export interface CdrPrice {
  excl_vat: string;
  incl_vat: string;
}

/** OCPI 2.2.1 mod_cdrs CdrDimension: ENERGY in kWh, TIME and PARKING_TIME in hours. */
export interface CdrDimension {
  type: 'ENERGY' | 'TIME' | 'PARKING_TIME';
  volume: string;
}

export interface CdrChargingPeriod {
  start_date_time: string;
  dimensions: CdrDimension[];
  tariff_id: string;
}

/** One line of the explanation: one period × element × dimension. */
export interface RatedLine {
  period_index: number;
  element_index: number;
  dimension: TariffDimensionType;
  /** Measured volume: Wh for ENERGY, seconds for TIME and PARKING_TIME, 1 for FLAT. */
  volume: string;
  /** Volume billed after step_size rounding (only the last line of a dimension family moves). */
  billed_volume: string;
  step_size: number;
  /** Price per kWh, per hour, or per session (FLAT), excl. VAT. */
  unit_price: string;
  vat_percent: string;
  /**
   * Exact, unrounded. A dimension's excl. VAT total is its lines' sum, per VAT rate, rounded half
   * up to the minor unit; its incl. VAT total adds its share of the VAT computed once per rate on
   * the rounded nets (invoice_totals in rating/decimal-engine.ts), so cost_incl_vat (cost_excl_vat
   * x (1 + vat_percent / 100)) is the exact figure before those roundings.
   */
  cost_excl_vat: string;
  cost_incl_vat: string;
}

export interface RatedSession {
  currency: string;
  tariff_id: string;
  start_date_time: string;
  end_date_time: string;
  charging_periods: CdrChargingPeriod[];
  total_cost: CdrPrice;
  total_fixed_cost: CdrPrice;
  total_energy_cost: CdrPrice;
  total_time_cost: CdrPrice;
  total_parking_cost: CdrPrice;
  /** kWh */
  total_energy: string;
  /** hours, charging and not charging */
  total_time: string;
  /** hours not charging */
  total_parking_time: string;
  price_limit_applied: 'min_price' | 'max_price' | null;
  lines: RatedLine[];
  /** The driver's plan the session was priced with (copied at session start), or null. */
  plan: Plan | null;
  /** What the driver's plan took off, after the tariff's price limits (empty without a plan). */
  plan_lines: PlanLine[];
}

export class RatingInputError extends FieldError {}

/** A session longer than this is refused: the minute scan of wall-clock restrictions is bounded. */
export const session_duration_ms_max = 62 * 24 * 3600 * 1000;

/** Serializable state of a SessionRater: enough to resume pricing after a restart. */
export interface RaterState {
  start_ms: number;
  energy_wh_start: number;
  last: MeterSample;
  samples_seen: number;
  /** Start of the current run of time not charging (idle grace), or null while charging. */
  idle_since_ms?: number | null;
  flat: { element_index: number; period_index: number } | null;
  periods: {
    start_ms: number;
    end_ms: number;
    charging: boolean;
    energy_wh: string;
    energy: number;
    time: number;
  }[];
}
