import { Money, minor_units_estimate, minor_units_exact, minor_units_text } from '../core/money.js';
import {
  type ClockMatches,
  type CompiledComponent,
  type CompiledElement,
  type CompiledTariff,
  clock_mask,
  compile_tariff,
  energy_nwh_max,
  nwh_per_wh,
  weekday_bits,
} from './compiled-tariff.js';
import { apply_price_limits, DecimalSessionRater, price_text } from './decimal-engine.js';
import {
  ceil_to_step,
  div_half_up,
  exact_product,
  floor_div,
  mul_div_half_up,
  quotient_text,
} from './exact-integers.js';
import { iso } from './iso-text.js';
import { block_ms, local_block, next_day_of, type ZoneBlocks, zone_blocks } from './local-time.js';
import { apply_plan, type Plan } from './plans.js';
import {
  type CdrChargingPeriod,
  type CdrDimension,
  type CdrPrice,
  type MeterSample,
  type RatedLine,
  type RatedSession,
  type RaterState,
  type RatingInput,
  RatingInputError,
  session_duration_ms_max,
} from './rated-session.js';
import { implied_power_w } from './restrictions.js';
import type { Tariff, TariffDimensionType } from './tariff.js';

export {
  type CdrChargingPeriod,
  type CdrDimension,
  type CdrPrice,
  type MeterSample,
  type RatedLine,
  type RatedSession,
  type RaterState,
  type RatingInput,
  RatingInputError,
  session_duration_ms_max,
};

/*
 * The pricing engine in exact integers. Energy is held in nWh relative to the session start and
 * time in ms, both plain numbers kept below 2^53; a line's cost is volume x an integer cost per
 * unit (rating/compiled-tariff.ts), summed as BigInt only when a rounding is too close to call
 * from doubles. Its results are those of the decimal engine (rating/decimal-engine.ts), which
 * defines them and is what the property tests compare against; a session with a value outside
 * the integer ranges is handed over to it.
 */

const minute_ms = 60_000;

function fail(field: string, rule: string): never {
  throw new RatingInputError(field, rule);
}

/** The whole Wh and the nWh of a register's decimal text (at most 9 decimals). */
interface RegisterParts {
  whole_wh: number;
  nano_wh: number;
}

const register_text = /^(\d+)(?:\.(\d{1,9}))?$/;
const nano_pad = '000000000';

/**
 * A register (Wh) as the decimal text of the number, which is what the decimal engine reads
 * (Money(String(x))); false beyond nWh resolution or safe integers.
 */
function register_parts(energy_wh: number, into: RegisterParts): boolean {
  if (Number.isSafeInteger(energy_wh)) {
    into.whole_wh = energy_wh;
    into.nano_wh = 0;
    return true;
  }
  const match = register_text.exec(String(energy_wh));
  if (match === null) return false;
  const whole_wh = Number(match[1]);
  if (!Number.isSafeInteger(whole_wh)) return false;
  into.whole_wh = whole_wh;
  into.nano_wh = Number((match[2]! + nano_pad).slice(0, 9));
  return true;
}

/**
 * invoice_totals in minor units, per dimension (indexed by dimension_index) and their sum before
 * limits and plan: numbers when every figure stayed below 2^53, else BigInts.
 */
interface MinorTotals {
  excl: (number | bigint)[];
  incl: (number | bigint)[];
  total_excl: number | bigint;
  total_incl: number | bigint;
}

/** Products below this are exact in a double. */
const exact_max = 2 ** 53;
const groups_in_mask_max = 30;

const dimension_index: Record<TariffDimensionType, number> = { ENERGY: 0, TIME: 1, PARKING_TIME: 2, FLAT: 3 };

/** A run of time with one charging state and the same ENERGY and TIME/PARKING_TIME components. */
interface Period {
  start_ms: number;
  end_ms: number;
  charging: boolean;
  energy_nwh: number;
  energy: CompiledComponent | undefined;
  time: CompiledComponent | undefined;
}

/** The fields of a CompiledElement holding its component of each dimension. */
type DimensionSlot = 'energy' | 'time' | 'parking_time' | 'flat';

/** min_* inclusive, max_* exclusive (mod_tariffs 11.4.7), as restrictions_match reads them. */
function element_matches(
  e: CompiledElement,
  clock: number,
  energy_nwh: number,
  duration_s: number,
  power_w: number | undefined,
  current_a: number | undefined,
): boolean {
  if (e.unrestricted) return true;
  if (e.reservation) return false;
  if ((clock & e.bit) === 0) return false;
  if (energy_nwh < e.min_nwh || energy_nwh >= e.max_nwh) return false;
  const r = e.restrictions!;
  if (r.min_duration !== undefined && !(duration_s >= r.min_duration)) return false;
  if (r.max_duration !== undefined && !(duration_s < r.max_duration)) return false;
  if (r.min_power !== undefined && !(power_w !== undefined && power_w / 1000 >= r.min_power)) return false;
  if (r.max_power !== undefined && !(power_w !== undefined && power_w / 1000 < r.max_power)) return false;
  if (r.min_current !== undefined && !(current_a !== undefined && current_a >= r.min_current)) return false;
  if (r.max_current !== undefined && !(current_a !== undefined && current_a < r.max_current)) return false;
  return true;
}

/**
 * For each dimension the first element whose restrictions match and that has a component of that
 * dimension applies (mod_tariffs 11.3.2, TariffElement: "the first TariffElement ... that matches
 * is used"; an element without the dimension passes it on to the next).
 */
function match_component(
  tariff: CompiledTariff,
  slot: DimensionSlot,
  clock: number,
  energy_nwh: number,
  duration_s: number,
  power_w: number | undefined,
  current_a: number | undefined,
): CompiledComponent | undefined {
  for (const e of tariff.elements) {
    const component = e[slot];
    if (component !== undefined && element_matches(e, clock, energy_nwh, duration_s, power_w, current_a))
      return component;
  }
  return undefined;
}

const clock_matches_max = 4096;

/** The matches of a clock-only tariff for a set of clock answers, computed once per tariff and mask. */
function clock_matches(tariff: CompiledTariff, clock: number): ClockMatches {
  let matches = tariff.matches_by_clock.get(clock);
  if (matches === undefined) {
    const match = (slot: DimensionSlot) => match_component(tariff, slot, clock, 0, 0, undefined, undefined);
    matches = {
      energy: match('energy'),
      time: match('time'),
      parking_time: match('parking_time'),
      flat: match('flat'),
    };
    if (tariff.matches_by_clock.size >= clock_matches_max) tariff.matches_by_clock.clear();
    tariff.matches_by_clock.set(clock, matches);
  }
  return matches;
}

function component_of(tariff: CompiledTariff, element_index: number, dimension: TariffDimensionType) {
  const e = tariff.elements[element_index];
  const component =
    e === undefined
      ? undefined
      : dimension === 'ENERGY'
        ? e.energy
        : dimension === 'TIME'
          ? e.time
          : dimension === 'PARKING_TIME'
            ? e.parking_time
            : e.flat;
  if (component === undefined)
    throw new Error(`tariff element ${element_index} has no ${dimension} component`);
  return component;
}

/** Text of an exact quotient, through decimal.js when it prints with an exponent. */
function quotient_string(numerator: number | bigint, divisor: number, exponent: number): string {
  return (
    quotient_text(numerator, divisor, exponent) ??
    new Money(String(numerator)).div(new Money(`${divisor}e${exponent}`)).toString()
  );
}

/** nWh as Wh text, ms as s text, as the decimal engine prints them. */
function volume_text(component: CompiledComponent, volume: number): string {
  if (component.dimension === 'ENERGY') return quotient_string(volume, 1, 9);
  if (component.dimension === 'FLAT') return String(volume);
  return quotient_string(volume, 1, 3);
}

/** OCPI CdrChargingPeriods of the periods: ENERGY in kWh when energy flowed, TIME or PARKING_TIME in hours. */
function charging_periods_of(periods: Period[], tariff_id: string): CdrChargingPeriod[] {
  const charging_periods: CdrChargingPeriod[] = [];
  for (const period of periods) {
    const dimensions: CdrDimension[] = [];
    if (period.energy_nwh > 0)
      dimensions.push({ type: 'ENERGY', volume: quotient_string(period.energy_nwh, 1, 12) });
    dimensions.push({
      type: period.charging ? 'TIME' : 'PARKING_TIME',
      volume: hours_text(period.end_ms - period.start_ms),
    });
    charging_periods.push({ start_date_time: iso(period.start_ms), dimensions, tariff_id });
  }
  return charging_periods;
}

/** Hours from ms for display in the CDR: six decimals (3.6 ms), ROUND_HALF_UP, as hours_text. */
function hours_text(ms: number): string {
  return quotient_string(Math.floor((ms * 10 + 18) / 36), 1, 6);
}

const no_cuts: number[] = [];

/** The clock answers of a tariff without clock restrictions: every element's bit set. */
const clock_any = -1;

/**
 * Prices one session sample by sample. Each sample cuts its interval into slices within which no
 * restriction can change its answer (at min/max_duration, where the energy crosses min/max_kwh,
 * and at the minute where a wall-clock restriction changes in the location's zone) and folds them
 * into periods. `running_cost()` is O(components) per call: closed periods' volumes are summed
 * per price component when they close. `result()` explains the whole session; `rate_session` is
 * this class fed all samples at once, so the live running cost, the final price and a
 * from-scratch re-rating share one code path.
 */
export class SessionRater {
  /** Set when the session is priced by the decimal engine (a value beyond the integer ranges). */
  private decimal: DecimalSessionRater | undefined;
  private readonly compiled: CompiledTariff;
  private last: MeterSample;
  /** Session energy at the last sample, nWh. */
  private last_nwh = 0;
  private samples_seen = 1;
  private readonly periods: Period[] = [];
  private flat: { component: CompiledComponent; period_index: number } | undefined;
  /** Volume of closed periods' lines per component (before step rounding). */
  private readonly closed_volume: number[];
  private closed_energy_nwh = 0;
  private closed_time_ms = 0;
  private closed_parking_ms = 0;
  private closed_energy_last: CompiledComponent | undefined;
  private closed_time_last: CompiledComponent | undefined;
  private readonly start: RegisterParts = { whole_wh: 0, nano_wh: 0 };
  private readonly register: RegisterParts = { whole_wh: 0, nano_wh: 0 };
  private readonly duration_cuts_ms: number[];
  private readonly idle_grace_ms: number;
  /** Start of the current run of time not charging; undefined while charging. */
  private idle_since_ms: number | undefined;
  private readonly blocks: ZoneBlocks;
  /** The sample interval being priced: its samples (a with the interval's state) and energies. */
  private a: MeterSample;
  private b: MeterSample;
  private a_nwh = 0;
  private b_nwh = 0;
  /** Power of the interval a..b: measured, else implied by its energy when a restriction needs it. */
  private interval_power_w: number | undefined;
  /** Cut points of the sample interval being priced (reused). */
  private readonly points: number[] = [];
  /** The clock answers last computed and the instants they hold for, [from, until). */
  private clock = clock_any;
  private clock_from_ms = 0;
  private clock_until_ms = 0;
  /** The matches of a clock-only tariff for the clock answers last seen. */
  private matches: ClockMatches | undefined;
  private matches_clock = 0;
  /** Volumes per component for a running cost (reused). */
  private readonly volume_scratch: number[];
  /** Per (dimension, VAT rate) group: net estimate then minor units, VAT share floor and remainder (reused). */
  private readonly group_scratch: number[];
  private readonly floor_scratch: number[];
  private readonly remainder_scratch: number[];
  private readonly minor_scratch: MinorTotals = {
    excl: [0, 0, 0, 0],
    incl: [0, 0, 0, 0],
    total_excl: 0,
    total_incl: 0,
  };

  constructor(
    readonly tariff: Tariff,
    readonly time_zone: string,
    readonly first: MeterSample,
    readonly plan?: Plan,
  ) {
    this.blocks = zone_blocks(time_zone); // an unknown zone throws here, before any work
    this.check(first, undefined, 0);
    this.last = first;
    this.a = first;
    this.b = first;
    this.idle_grace_ms = (tariff.evrate_idle_grace_minutes ?? 0) * 60_000;
    const compiled = compile_tariff(tariff);
    const components = compiled?.components.length ?? 0;
    this.closed_volume = [];
    this.volume_scratch = [];
    this.group_scratch = (compiled?.groups ?? []).map(() => 0);
    this.floor_scratch = (compiled?.groups ?? []).map(() => 0);
    this.remainder_scratch = (compiled?.groups ?? []).map(() => 0);
    for (let c = 0; c < components; c++) {
      this.closed_volume.push(0);
      this.volume_scratch.push(0);
    }
    this.duration_cuts_ms =
      compiled === undefined || compiled.duration_offsets_ms.length === 0
        ? no_cuts
        : compiled.duration_offsets_ms.map((d) => first.at_ms + d);
    if (compiled === undefined || !register_parts(first.energy_wh, this.start)) {
      this.decimal = new DecimalSessionRater(tariff, time_zone, first, plan);
    }
    this.compiled = compiled!;
  }

  static from_state(
    tariff: Tariff,
    time_zone: string,
    first: MeterSample,
    state: RaterState,
    plan?: Plan,
  ): SessionRater {
    const rater = new SessionRater(tariff, time_zone, first, plan);
    if (rater.decimal !== undefined || !rater.restore(state)) {
      rater.decimal = DecimalSessionRater.from_state(tariff, time_zone, first, state, plan);
    }
    return rater;
  }

  /** Takes over a saved state; false when a value in it is beyond the integer ranges. */
  private restore(state: RaterState): boolean {
    const last_nwh = this.session_nwh(state.last.energy_wh);
    if (last_nwh < 0) return false;
    const periods: Period[] = [];
    for (const p of state.periods) {
      const energy_nwh = wh_text_nwh(p.energy_wh);
      if (energy_nwh < 0) return false;
      periods.push({
        start_ms: p.start_ms,
        end_ms: p.end_ms,
        charging: p.charging,
        energy_nwh,
        energy: p.energy < 0 ? undefined : component_of(this.compiled, p.energy, 'ENERGY'),
        time:
          p.time < 0 ? undefined : component_of(this.compiled, p.time, p.charging ? 'TIME' : 'PARKING_TIME'),
      });
    }
    const flat =
      state.flat === null
        ? undefined
        : {
            component: component_of(this.compiled, state.flat.element_index, 'FLAT'),
            period_index: state.flat.period_index,
          };
    this.last = state.last;
    this.last_nwh = last_nwh;
    this.samples_seen = state.samples_seen;
    this.idle_since_ms = state.idle_since_ms ?? undefined;
    for (const period of periods) {
      if (this.periods.length > 0) this.close_current();
      this.periods.push(period);
    }
    this.flat = flat;
    return true;
  }

  state(): RaterState {
    if (this.decimal !== undefined) return this.decimal.state();
    return {
      start_ms: this.first.at_ms,
      energy_wh_start: this.first.energy_wh,
      last: this.last,
      samples_seen: this.samples_seen,
      idle_since_ms: this.idle_since_ms ?? null,
      flat:
        this.flat === undefined
          ? null
          : { element_index: this.flat.component.element_index, period_index: this.flat.period_index },
      periods: this.periods.map((p) => ({
        start_ms: p.start_ms,
        end_ms: p.end_ms,
        charging: p.charging,
        energy_wh: quotient_string(p.energy_nwh, 1, 9),
        energy: p.energy?.element_index ?? -1,
        time: p.time?.element_index ?? -1,
      })),
    };
  }

  /** The latest sample taken in. */
  get last_sample(): MeterSample {
    return this.decimal === undefined ? this.last : this.decimal.last_sample;
  }

  private check(sample: MeterSample, prev: MeterSample | undefined, index: number): void {
    if (!Number.isInteger(sample.at_ms)) fail(`samples[${index}].at_ms`, 'must be an integer epoch in ms');
    if (!Number.isFinite(sample.energy_wh) || sample.energy_wh < 0) {
      fail(`samples[${index}].energy_wh`, 'must be a non-negative number');
    }
    if (prev === undefined) return;
    if (sample.at_ms < prev.at_ms) fail(`samples[${index}].at_ms`, 'must not be before the previous sample');
    if (sample.energy_wh < prev.energy_wh) fail(`samples[${index}].energy_wh`, 'energy must never decrease');
    if (sample.at_ms - this.first.at_ms > session_duration_ms_max)
      fail('samples', `session longer than ${session_duration_ms_max} ms`);
  }

  /** Session energy at a register reading, nWh; -1 beyond the integer ranges. */
  private session_nwh(energy_wh: number): number {
    const r = this.register;
    if (!register_parts(energy_wh, r)) return -1;
    const whole_wh = r.whole_wh - this.start.whole_wh;
    if (whole_wh < 0 || whole_wh >= energy_nwh_max / nwh_per_wh) return -1;
    const nwh = whole_wh * nwh_per_wh + (r.nano_wh - this.start.nano_wh);
    return nwh >= 0 && nwh <= energy_nwh_max ? nwh : -1;
  }

  /**
   * Takes the next sample: the state of the previous sample holds until this one, unless
   * `interval` says otherwise (a caller that learns whether the EV charged only when the interval
   * ends, from the energy that flowed in it).
   */
  add(
    sample: MeterSample,
    interval?: Partial<Pick<MeterSample, 'charging' | 'power_w' | 'current_a'>>,
  ): void {
    if (this.decimal !== undefined) {
      this.decimal.add(sample, interval);
      return;
    }
    const previous = this.last;
    this.check(sample, previous, this.samples_seen);
    const b_nwh = this.session_nwh(sample.energy_wh);
    if (b_nwh < 0) {
      this.hand_over(sample, interval);
      return;
    }
    const a = interval === undefined ? previous : { ...previous, ...interval };
    const a_nwh = this.last_nwh;
    this.samples_seen++;
    this.last = sample;
    this.last_nwh = b_nwh;
    const b = sample;
    this.a = a;
    this.a_nwh = a_nwh;
    this.b = b;
    this.b_nwh = b_nwh;
    // An interval without a measured power is matched by the power its energy implies (restrictions.ts).
    this.interval_power_w =
      a.power_w !== undefined || !this.compiled.has_power
        ? a.power_w
        : implied_power_w(new Money(b_nwh - a_nwh).div(nwh_per_wh), b.at_ms - a.at_ms);
    if (a.at_ms === b.at_ms) {
      // Energy registered without time passing still belongs to the session.
      if (a_nwh !== b_nwh) this.slice(a.at_ms, a.at_ms, this.clock_at(a.at_ms));
      return;
    }
    // Cuts inside the interval, in the order found (rare: most intervals have none).
    const points = this.points;
    let cuts = 0;
    for (const cut of this.duration_cuts_ms) if (cut > a.at_ms && cut < b.at_ms) points[cuts++] = cut;
    if (this.idle_grace_ms > 0 && !a.charging) {
      // The grace of an idle run ends inside this interval: PARKING_TIME is priced from there on.
      const grace_end_ms = (this.idle_since_ms ?? a.at_ms) + this.idle_grace_ms;
      if (grace_end_ms > a.at_ms && grace_end_ms < b.at_ms) points[cuts++] = grace_end_ms;
    }
    for (const target_nwh of this.compiled.kwh_targets_nwh) {
      if (target_nwh > a_nwh && target_nwh <= b_nwh) {
        const at = this.kwh_reached_ms(target_nwh);
        if (at > a.at_ms && at < b.at_ms) points[cuts++] = at;
      }
    }
    if (cuts === 0) {
      this.walk_clock(a.at_ms, b.at_ms);
      return;
    }
    let from = a.at_ms;
    for (const cut of points.slice(0, cuts).sort((x, y) => x - y)) {
      if (cut === from) continue;
      this.walk_clock(from, cut);
      from = cut;
    }
    this.walk_clock(from, b.at_ms);
  }

  /** Beyond nWh resolution or 8 MWh: the decimal engine takes the session over from here. */
  private hand_over(
    sample: MeterSample,
    interval: Partial<Pick<MeterSample, 'charging' | 'power_w' | 'current_a'>> | undefined,
  ): void {
    const decimal = DecimalSessionRater.from_state(
      this.tariff,
      this.time_zone,
      this.first,
      this.state(),
      this.plan,
    );
    this.decimal = decimal;
    decimal.add(sample, interval);
  }

  /**
   * The first whole ms at which the register has reached a threshold inside the interval a..b.
   * The quotient is taken to 60 digits before the ceiling, as the decimal engine does, so that
   * the cut falls on the same ms (a rounded-up quotient times the interval can pass a whole ms).
   */
  private kwh_reached_ms(target_nwh: number): number {
    const a = this.a;
    return (
      a.at_ms +
      new Money(target_nwh - this.a_nwh)
        .div(this.b_nwh - this.a_nwh)
        .mul(this.b.at_ms - a.at_ms)
        .ceil()
        .toNumber()
    );
  }

  /**
   * Slices [from, to) where the answer of a wall-clock restriction changes. It can change only
   * where the local minute of day reaches a start_time or end_time, at local midnight (date,
   * weekday), or where the zone's offset changes, at a block start (rating/local-time.ts); the
   * answers are compared there and nowhere else, which cuts where a minute-by-minute comparison
   * would: local HH:MM boundaries fall on whole UTC minutes in every zone with whole-minute offsets.
   */
  private walk_clock(from: number, to: number) {
    let start = from;
    let clock = this.clock_at(from);
    while (this.clock_until_ms < to) {
      const next = this.clock_until_ms;
      const at = this.clock_at(next);
      if (at !== clock) {
        this.slice(start, next, clock);
        start = next;
        clock = at;
      }
    }
    this.slice(start, to, clock);
  }

  /**
   * The clock restrictions' answers (a bit per element) at `at_ms`. They hold from the start of
   * its minute until clock_until_ms: the next minute where a start_time or end_time is reached,
   * local midnight, or the next block start, where the zone's offset may change.
   */
  private clock_at(at_ms: number): number {
    if (at_ms >= this.clock_from_ms && at_ms < this.clock_until_ms) return this.clock;
    if (!this.compiled.has_clock) {
      this.clock_from_ms = Number.NEGATIVE_INFINITY;
      this.clock_until_ms = Number.POSITIVE_INFINITY;
      this.clock = clock_any;
      return clock_any;
    }
    const block_start_ms = Math.floor(at_ms / block_ms) * block_ms;
    const block = local_block(this.blocks, block_start_ms, this.time_zone);
    const base = block.start;
    const minutes = Math.floor((at_ms - block_start_ms) / minute_ms);
    const minute_of_day = base.minute_of_day + minutes;
    const next_ms =
      block_start_ms + (this.compiled.next_clock_minute[minute_of_day]! - base.minute_of_day) * minute_ms;
    this.clock_from_ms = block_start_ms + minutes * minute_ms;
    this.clock_until_ms = Math.min(next_ms, block_start_ms + block_ms);
    if (minute_of_day >= 1440) {
      const next = next_day_of(block, at_ms, this.time_zone);
      this.clock = clock_mask(
        this.compiled,
        minute_of_day - 1440,
        next.date,
        weekday_bits[next.day_of_week] ?? 0,
      );
    } else {
      this.clock = clock_mask(this.compiled, minute_of_day, base.date, weekday_bits[base.day_of_week] ?? 0);
    }
    return this.clock;
  }

  /**
   * Prices [start_ms, end_ms], inside the interval of samples a..b, in the state of sample `a`
   * (clock: the clock answers at start_ms) and folds it into the current period. Session energy
   * at the slice's ends is interpolated (a slice of no duration carries the interval's energy).
   */
  private slice(start_ms: number, end_ms: number, clock: number): void {
    const a = this.a;
    const energy_nwh_from = start_ms === a.at_ms ? this.a_nwh : this.energy_at(start_ms);
    const energy_nwh_to = end_ms === this.b.at_ms ? this.b_nwh : this.energy_at(end_ms);
    const tariff = this.compiled;
    const duration_s = (start_ms - this.first.at_ms) / 1000;
    const charging = a.charging;
    if (charging) this.idle_since_ms = undefined;
    else this.idle_since_ms ??= start_ms;
    const in_grace = !charging && start_ms < this.idle_since_ms! + this.idle_grace_ms;
    const power_w = this.interval_power_w;
    const { current_a } = a;
    let energy: CompiledComponent | undefined;
    let time: CompiledComponent | undefined;
    if (tariff.clock_only) {
      if (clock !== this.matches_clock || this.matches === undefined) {
        this.matches = clock_matches(tariff, clock);
        this.matches_clock = clock;
      }
      const matches = this.matches;
      energy = matches.energy;
      time = charging ? matches.time : matches.parking_time;
    } else {
      energy = match_component(tariff, 'energy', clock, energy_nwh_from, duration_s, power_w, current_a);
      time = match_component(
        tariff,
        charging ? 'time' : 'parking_time',
        clock,
        energy_nwh_from,
        duration_s,
        power_w,
        current_a,
      );
    }
    // Idle time inside the grace period is not priced: no PARKING_TIME element applies to it.
    if (in_grace) time = undefined;
    const current = this.periods[this.periods.length - 1];
    if (
      current !== undefined &&
      current.charging === charging &&
      current.energy === energy &&
      current.time === time
    ) {
      current.end_ms = end_ms;
      current.energy_nwh += energy_nwh_to - energy_nwh_from;
    } else {
      if (current !== undefined) this.close_current();
      this.periods.push({
        start_ms,
        end_ms,
        charging,
        energy_nwh: energy_nwh_to - energy_nwh_from,
        energy,
        time,
      });
    }
    // FLAT is billed once per session, by the first element that prices it while it matches.
    if (this.flat === undefined) {
      const component = tariff.clock_only
        ? this.matches!.flat
        : match_component(tariff, 'flat', clock, energy_nwh_from, duration_s, power_w, current_a);
      if (component !== undefined) this.flat = { component, period_index: this.periods.length - 1 };
    }
  }

  /**
   * Session energy at `at_ms` inside the sample interval a..b, interpolated linearly and kept to
   * the nWh (ROUND_HALF_UP): every value then has few enough digits that the slices' differences
   * add up exactly (they telescope) to the energy between the samples. The register at the
   * interval's start is a whole number of nWh, so rounding the register and rounding its increase
   * agree.
   */
  private energy_at(at_ms: number): number {
    const a_ms = this.a.at_ms;
    return this.a_nwh + mul_div_half_up(this.b_nwh - this.a_nwh, at_ms - a_ms, this.b.at_ms - a_ms);
  }

  /** Adds the current (last) period's lines to the closed sums before a new period starts. */
  private close_current(): void {
    const period = this.periods[this.periods.length - 1]!;
    if (period.energy !== undefined && period.energy_nwh > 0) {
      this.closed_volume[period.energy.slot]! += period.energy_nwh;
      this.closed_energy_nwh += period.energy_nwh;
      this.closed_energy_last = period.energy;
    }
    if (period.time !== undefined) {
      const ms = period.end_ms - period.start_ms;
      this.closed_volume[period.time.slot]! += ms;
      if (period.charging) this.closed_time_ms += ms;
      else this.closed_parking_ms += ms;
      this.closed_time_last = period.time;
    }
  }

  /**
   * The periods and FLAT match to price. A session of no duration and no energy still happened:
   * one empty period at its start lets FLAT (and zero-volume lines) apply.
   */
  private effective(): {
    periods: Period[];
    flat: { component: CompiledComponent; period_index: number } | undefined;
  } {
    if (this.periods.length > 0) return { periods: this.periods, flat: this.flat };
    const first = this.first;
    const clock = this.clock_at(first.at_ms);
    const tariff = this.compiled;
    const { power_w, current_a } = first;
    const period: Period = {
      start_ms: first.at_ms,
      end_ms: first.at_ms,
      charging: first.charging,
      energy_nwh: 0,
      energy: match_component(tariff, 'energy', clock, 0, 0, power_w, current_a),
      time: match_component(
        tariff,
        first.charging ? 'time' : 'parking_time',
        clock,
        0,
        0,
        power_w,
        current_a,
      ),
    };
    const flat = match_component(tariff, 'flat', clock, 0, 0, power_w, current_a);
    return { periods: [period], flat: flat === undefined ? undefined : { component: flat, period_index: 0 } };
  }

  /** The session's total so far, excl. and incl. VAT, rounded to the currency: O(components). */
  running_cost(): CdrPrice {
    if (this.decimal !== undefined) return this.decimal.running_cost();
    if (this.periods.length === 0) return this.result().total_cost;
    const volume = this.volume_scratch;
    for (let c = 0; c < volume.length; c++) volume[c] = this.closed_volume[c]!;
    if (this.flat !== undefined) volume[this.flat.component.slot]! += 1;
    let energy_nwh = this.closed_energy_nwh;
    let time_ms = this.closed_time_ms;
    let parking_ms = this.closed_parking_ms;
    let energy_last = this.closed_energy_last;
    let time_last = this.closed_time_last;
    const period = this.periods[this.periods.length - 1]!;
    if (period.energy !== undefined && period.energy_nwh > 0) {
      volume[period.energy.slot]! += period.energy_nwh;
      energy_nwh += period.energy_nwh;
      energy_last = period.energy;
    }
    if (period.time !== undefined) {
      const ms = period.end_ms - period.start_ms;
      volume[period.time.slot]! += ms;
      if (period.charging) time_ms += ms;
      else parking_ms += ms;
      time_last = period.time;
    }
    // step_size: the last line of a family bills its dimension's session volume rounded up.
    if (energy_last !== undefined)
      volume[energy_last.slot]! += ceil_to_step(energy_nwh, energy_last.step_units) - energy_nwh;
    if (time_last !== undefined) {
      const ms = time_last.dimension === 'TIME' ? time_ms : parking_ms;
      volume[time_last.slot]! += ceil_to_step(ms, time_last.step_units) - ms;
    }
    const totals = this.totals(volume);
    const total = this.price_text(totals.total_excl, totals.total_incl);
    if (this.plan === undefined && !this.compiled.has_price_limits) return total;
    return this.limited_total(total).total_cost;
  }

  /**
   * invoice_totals (rating/decimal-engine.ts, where the rule is written) of volumes per component,
   * in integer minor units: each (dimension, VAT rate) group's net rounded half up, VAT per rate on
   * the sum of its rounded nets, and each rate's VAT shared out over the dimensions by largest
   * remainder so that the dimensions add up to the total. In doubles holding exact integers when
   * every product stays below 2^53 (the usual case), else in BigInt; both give the same integers.
   */
  private totals(volume: number[]): MinorTotals {
    const t = this.totals_number(volume) ?? this.totals_bigint(volume);
    // Pair assertion: the parts add up to the total, excl. and incl. VAT.
    const { excl, incl } = t;
    const parts_excl =
      typeof t.total_excl === 'number'
        ? (excl[0] as number) + (excl[1] as number) + (excl[2] as number) + (excl[3] as number)
        : (excl[0] as bigint) + (excl[1] as bigint) + (excl[2] as bigint) + (excl[3] as bigint);
    const parts_incl =
      typeof t.total_incl === 'number'
        ? (incl[0] as number) + (incl[1] as number) + (incl[2] as number) + (incl[3] as number)
        : (incl[0] as bigint) + (incl[1] as bigint) + (incl[2] as bigint) + (incl[3] as bigint);
    if (parts_excl !== t.total_excl || parts_incl !== t.total_incl)
      throw new Error('dimension totals do not add up to the total cost');
    return t;
  }

  private totals_number(volume: number[]): MinorTotals | undefined {
    const { components, groups, vat_rates, to_minor } = this.compiled;
    // The cents of a rate are given out with a bit per group.
    if (groups.length > groups_in_mask_max) return undefined;
    const net = this.group_scratch;
    net.fill(0);
    for (let c = 0; c < components.length; c++) {
      const v = volume[c]!;
      if (v !== 0) net[components[c]!.group]! += v * components[c]!.cost_excl;
    }
    for (let g = 0; g < groups.length; g++) {
      const minor = minor_units_estimate(net[g]! * this.compiled.cost_excl_reciprocal * to_minor);
      if (minor < 0) return undefined;
      net[g] = minor;
    }
    const t = this.minor_scratch;
    const excl = t.excl as number[];
    const incl = t.incl as number[];
    excl.fill(0);
    incl.fill(0);
    let total_excl = 0;
    let total_incl = 0;
    const floor = this.floor_scratch;
    const remainder = this.remainder_scratch;
    for (let g = 0; g < groups.length; g++) {
      const d = dimension_index[groups[g]!.dimension];
      excl[d]! += net[g]!;
      incl[d]! += net[g]!;
    }
    for (let r = 0; r < vat_rates.length; r++) {
      const { digits_number: digits, divisor_number: divisor } = vat_rates[r]!;
      let rate_net = 0;
      let floors = 0;
      for (let g = 0; g < groups.length; g++) {
        if (groups[g]!.rate === r) rate_net += net[g]!;
      }
      if (!(rate_net * digits < exact_max && divisor < exact_max)) return undefined;
      for (let g = 0; g < groups.length; g++) {
        if (groups[g]!.rate !== r) continue;
        const share = net[g]! * digits;
        floor[g] = floor_div(share, divisor);
        remainder[g] = share - floor[g]! * divisor;
        floors += floor[g]!;
      }
      const vat = div_half_up(rate_net * digits, divisor);
      total_excl += rate_net;
      total_incl += rate_net + vat;
      // The cents the rounding leaves: one each to the largest remainders, ties in group order.
      let picked = 0;
      for (let left = vat - floors; left > 0; left--) {
        let best = -1;
        for (let g = 0; g < groups.length; g++) {
          if (groups[g]!.rate !== r || (picked & (1 << g)) !== 0 || remainder[g]! <= 0) continue;
          if (best < 0 || remainder[g]! > remainder[best]!) best = g;
        }
        if (best < 0) throw new Error('VAT shares do not add up to the VAT of the rate');
        picked |= 1 << best;
        incl[dimension_index[groups[best]!.dimension]]! += 1;
      }
      for (let g = 0; g < groups.length; g++) {
        if (groups[g]!.rate === r) incl[dimension_index[groups[g]!.dimension]]! += floor[g]!;
      }
    }
    t.total_excl = total_excl;
    t.total_incl = total_incl;
    return t;
  }

  private totals_bigint(volume: number[]): MinorTotals {
    const { components, groups, vat_rates, minor_digits } = this.compiled;
    const net: bigint[] = [];
    for (let g = 0; g < groups.length; g++) {
      let exact = 0n;
      for (let c = 0; c < components.length; c++) {
        const component = components[c]!;
        if (component.group === g && volume[c]! !== 0)
          exact += BigInt(volume[c]!) * component.cost_excl_exact;
      }
      net.push(minor_units_exact(exact, this.compiled.cost_excl_denominator, minor_digits));
    }
    const excl = [0n, 0n, 0n, 0n];
    const incl = [0n, 0n, 0n, 0n];
    let total_excl = 0n;
    let total_incl = 0n;
    for (let g = 0; g < groups.length; g++) {
      const d = dimension_index[groups[g]!.dimension];
      excl[d]! += net[g]!;
      incl[d]! += net[g]!;
    }
    for (let r = 0; r < vat_rates.length; r++) {
      const { digits, divisor } = vat_rates[r]!;
      let rate_net = 0n;
      let floors = 0n;
      const members: { d: number; order: number; remainder: bigint; floor: bigint }[] = [];
      for (let g = 0; g < groups.length; g++) {
        if (groups[g]!.rate !== r) continue;
        rate_net += net[g]!;
        const share = net[g]! * digits;
        const floor = share / divisor;
        floors += floor;
        members.push({
          d: dimension_index[groups[g]!.dimension],
          order: g,
          remainder: share % divisor,
          floor,
        });
      }
      const vat = (2n * rate_net * digits + divisor) / (2n * divisor);
      total_excl += rate_net;
      total_incl += rate_net + vat;
      let left = vat - floors;
      if (left > 0n)
        members.sort((x, y) =>
          x.remainder === y.remainder ? x.order - y.order : x.remainder > y.remainder ? -1 : 1,
        );
      for (const m of members) {
        const cents = left > 0n && m.remainder > 0n ? 1n : 0n;
        left -= cents;
        incl[m.d]! += m.floor + cents;
      }
      if (left !== 0n) throw new Error('VAT shares do not add up to the VAT of the rate');
    }
    return { excl, incl, total_excl, total_incl };
  }

  private price_text(excl: number | bigint, incl: number | bigint): CdrPrice {
    const digits = this.compiled.minor_digits;
    return { excl_vat: minor_units_text(excl, digits), incl_vat: minor_units_text(incl, digits) };
  }

  private dimension_text(t: MinorTotals, dimension: TariffDimensionType): CdrPrice {
    const d = dimension_index[dimension];
    return this.price_text(t.excl[d]!, t.incl[d]!);
  }

  /** One line of the explanation; adds its billed volume to volume_scratch. */
  private rated_line(period_index: number, c: CompiledComponent, volume: number, billed: number): RatedLine {
    this.volume_scratch[c.slot]! += billed;
    // Whole Wh and whole seconds (the usual volumes) keep the products small: no BigInt.
    let units = billed;
    let shift = 0;
    if (c.dimension !== 'FLAT' && billed % c.whole_unit === 0) {
      units = billed / c.whole_unit;
      shift = c.whole_unit_digits;
    }
    const excl = exact_product(units, c.price_digits_number, c.price_digits);
    const incl = exact_product(
      units,
      c.price_digits_number,
      c.price_digits,
      c.vat_factor_number,
      c.vat_factor,
    );
    const volume_string = volume_text(c, volume);
    return {
      period_index,
      element_index: c.element_index,
      dimension: c.dimension,
      volume: volume_string,
      billed_volume: billed === volume ? volume_string : volume_text(c, billed),
      step_size: c.step_size,
      unit_price: c.unit_price_text,
      vat_percent: c.vat_percent_text,
      cost_excl_vat: quotient_string(excl, c.line_divisor, c.line_excl_exponent - shift),
      cost_incl_vat: quotient_string(incl, c.line_divisor, c.line_incl_exponent - shift),
    };
  }

  /** The priced session so far, explained line by line. */
  result(): RatedSession {
    if (this.decimal !== undefined) return this.decimal.result();
    const { tariff } = this;
    const { periods, flat } = this.effective();
    const volume = this.volume_scratch.fill(0);
    const lines = this.rated_lines(periods, flat);
    const totals = this.totals(volume);
    const total = this.price_text(totals.total_excl, totals.total_incl);
    const limited =
      this.plan === undefined && !this.compiled.has_price_limits ? undefined : this.limited_total(total);

    let energy_nwh_periods = 0;
    let parking_ms = 0;
    for (const period of periods) {
      energy_nwh_periods += period.energy_nwh;
      if (!period.charging) parking_ms += period.end_ms - period.start_ms;
    }
    const first = this.first;
    const end = this.last;
    const energy_nwh_total = this.last_nwh;
    // Pair assertion: the periods cover the session and carry all of its energy.
    if (energy_nwh_periods !== energy_nwh_total)
      throw new Error('charging periods do not sum to the session energy');

    return {
      currency: tariff.currency,
      tariff_id: tariff.id,
      start_date_time: iso(first.at_ms),
      end_date_time: iso(end.at_ms),
      charging_periods: charging_periods_of(periods, tariff.id),
      total_cost: limited === undefined ? total : limited.total_cost,
      total_fixed_cost: this.dimension_text(totals, 'FLAT'),
      total_energy_cost: this.dimension_text(totals, 'ENERGY'),
      total_time_cost: this.dimension_text(totals, 'TIME'),
      total_parking_cost: this.dimension_text(totals, 'PARKING_TIME'),
      total_energy: quotient_string(energy_nwh_total, 1, 12),
      total_time: hours_text(end.at_ms - first.at_ms),
      total_parking_time: hours_text(parking_ms),
      price_limit_applied: limited === undefined ? null : limited.applied,
      lines,
      plan: this.plan ?? null,
      plan_lines: limited === undefined ? [] : limited.plan_lines,
    };
  }

  /**
   * The lines of the periods, in CDR order: FLAT, then per period ENERGY (when energy flowed) and
   * TIME or PARKING_TIME. Their billed volumes are added to volume_scratch.
   *
   * step_size "SHALL only be taken into account once per session for ENERGY and once for
   * PARKING_TIME and TIME combined" (mod_cdrs 10.4.5 step_size, and the mod_tariffs 11.4.6
   * examples): the last line of the family rounds the session total of its dimension up to its
   * own step, and the extra volume is billed on that last line.
   */
  private rated_lines(
    periods: Period[],
    flat: { component: CompiledComponent; period_index: number } | undefined,
  ): RatedLine[] {
    let energy_nwh = 0;
    let time_ms = 0;
    let parking_ms = 0;
    let energy_last = -1;
    let time_last = -1;
    for (let p = 0; p < periods.length; p++) {
      const period = periods[p]!;
      if (period.energy !== undefined && period.energy_nwh > 0) {
        energy_nwh += period.energy_nwh;
        energy_last = p;
      }
      if (period.time !== undefined) {
        if (period.charging) time_ms += period.end_ms - period.start_ms;
        else parking_ms += period.end_ms - period.start_ms;
        time_last = p;
      }
    }
    let energy_extra = 0;
    if (energy_last >= 0)
      energy_extra = ceil_to_step(energy_nwh, periods[energy_last]!.energy!.step_units) - energy_nwh;
    let time_extra = 0;
    if (time_last >= 0) {
      const last = periods[time_last]!;
      const ms = last.charging ? time_ms : parking_ms;
      time_extra = ceil_to_step(ms, last.time!.step_units) - ms;
    }
    const lines: RatedLine[] = [];
    if (flat !== undefined) lines.push(this.rated_line(flat.period_index, flat.component, 1, 1));
    for (let p = 0; p < periods.length; p++) {
      const period = periods[p]!;
      if (period.energy !== undefined && period.energy_nwh > 0) {
        const billed = p === energy_last ? period.energy_nwh + energy_extra : period.energy_nwh;
        lines.push(this.rated_line(p, period.energy, period.energy_nwh, billed));
      }
      if (period.time !== undefined) {
        const ms = period.end_ms - period.start_ms;
        lines.push(this.rated_line(p, period.time, ms, p === time_last ? ms + time_extra : ms));
      }
    }
    return lines;
  }

  /** The total after the tariff's price limits and the driver's plan, in decimal arithmetic. */
  private limited_total(total_text: CdrPrice): {
    total_cost: CdrPrice;
    applied: RatedSession['price_limit_applied'];
    plan_lines: RatedSession['plan_lines'];
  } {
    const currency = this.tariff.currency;
    const total = { excl: new Money(total_text.excl_vat), incl: new Money(total_text.incl_vat) };
    const limited = apply_price_limits(this.tariff, total);
    const planned = apply_plan(limited.cost, currency, this.plan);
    return {
      total_cost: price_text(planned.cost, currency),
      applied: limited.applied,
      plan_lines: planned.lines,
    };
  }
}

/** Wh text of a saved period (a Decimal's text) in nWh; -1 beyond nWh resolution or range. */
function wh_text_nwh(text: string): number {
  const match = register_text.exec(text);
  if (match === null) return -1;
  const whole_wh = Number(match[1]);
  if (whole_wh >= energy_nwh_max / nwh_per_wh) return -1;
  return whole_wh * nwh_per_wh + Number(((match[2] ?? '') + nano_pad).slice(0, 9));
}

/** Prices a session with an OCPI 2.2.1 tariff. Pure: same inputs, same output. */
export function rate_session(input: RatingInput): RatedSession {
  const { samples } = input;
  if (samples.length < 2) fail('samples', 'needs at least 2 samples (start and end)');
  const rater = new SessionRater(input.tariff, input.time_zone, samples[0]!, input.plan);
  for (let i = 1; i < samples.length; i++) rater.add(samples[i]!);
  return rater.result();
}
