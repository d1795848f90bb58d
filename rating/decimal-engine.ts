/**
 * The pricing engine in decimal arithmetic (decimal.js, 60 digits): the definition the integer
 * engine (rating/engine.ts) is checked against, and the engine it hands a session to when a value
 * falls outside its integer ranges (a register with more than 9 decimals, more than 8 MWh in one
 * session, a price or VAT with more than 20 decimals, a kWh threshold with more than 12, a tariff
 * of more than 31 elements). Slow but plain: every number is a Decimal, and wall-clock
 * restrictions are compared minute by minute.
 */
import type { Decimal } from 'decimal.js';
import { Money, minor_units, money_text, round_money } from '../core/money.js';
import { local_time } from './local-time.js';
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
import {
  clock_restrictions_match,
  implied_power_w,
  kwh_in_wh,
  restrictions_match,
  type SliceState,
} from './restrictions.js';
import type { Price, PriceComponent, Tariff, TariffDimensionType } from './tariff.js';

const minute_ms = 60_000;

interface Match {
  element_index: number;
  component: PriceComponent;
}

function fail(field: string, rule: string): never {
  throw new RatingInputError(field, rule);
}

/**
 * Interpolated energy is kept to the nano-Wh: every value then has few enough digits that the
 * slices' differences add up exactly (they telescope) to the energy between the samples.
 */
const interpolated_wh_decimals = 9;

/** Energy at `at_ms` inside a sample interval, interpolated linearly. */
function energy_at(a: MeterSample, b: MeterSample, at_ms: number): Decimal {
  const e0 = new Money(String(a.energy_wh));
  if (at_ms === a.at_ms) return e0;
  if (at_ms === b.at_ms) return new Money(String(b.energy_wh));
  return e0
    .plus(
      new Money(String(b.energy_wh))
        .minus(e0)
        .mul(at_ms - a.at_ms)
        .div(b.at_ms - a.at_ms),
    )
    .toDecimalPlaces(interpolated_wh_decimals, Money.ROUND_HALF_UP);
}

/**
 * For each dimension the first element whose restrictions match and that has a component of that
 * dimension applies (mod_tariffs 11.3.2, TariffElement: "the first TariffElement ... that matches
 * is used"; an element without the dimension passes it on to the next).
 */
function match_component(
  tariff: Tariff,
  dimension: TariffDimensionType,
  state: SliceState,
): Match | undefined {
  for (let e = 0; e < tariff.elements.length; e++) {
    const element = tariff.elements[e]!;
    const component = element.price_components.find((c) => c.type === dimension);
    if (component === undefined) continue;
    if (restrictions_match(element.restrictions, state)) return { element_index: e, component };
  }
  return undefined;
}

function component_of(tariff: Tariff, element_index: number, dimension: TariffDimensionType): Match {
  const component = tariff.elements[element_index]?.price_components.find((c) => c.type === dimension);
  if (component === undefined)
    throw new Error(`tariff element ${element_index} has no ${dimension} component`);
  return { element_index, component };
}

/** A run of time with one charging state and the same ENERGY and TIME/PARKING_TIME elements. */
interface Period {
  start_ms: number;
  end_ms: number;
  charging: boolean;
  energy_wh: Decimal;
  energy: Match | undefined;
  time: Match | undefined;
}

interface WorkLine {
  period_index: number;
  match: Match;
  dimension: TariffDimensionType;
  volume: Decimal;
  billed_volume: Decimal;
}

export function iso(at_ms: number): string {
  return new Date(at_ms).toISOString().replace('.000Z', 'Z');
}

/** Hours from seconds for display in the CDR; six decimals (3.6 ms) are below any meter's resolution. */
function hours_text(seconds: Decimal): string {
  return seconds.div(3600).toDecimalPlaces(6).toString();
}

/**
 * Costs are summed in units of 1/18000 of the currency unit (18000 = lcm(1000 Wh per kWh, 3600 s
 * per hour)), where every line's cost is an exact product: Wh x price x 18, s x price x 5. The one
 * division happens on the total, so a running total and a from-scratch total of the same facts
 * are the same number, never two different truncations of a repeating decimal.
 */
const cost_scale = 18_000;
const scale_per_volume: Record<TariffDimensionType, number> = {
  ENERGY: cost_scale / 1000,
  FLAT: cost_scale,
  TIME: cost_scale / 3600,
  PARKING_TIME: cost_scale / 3600,
};

/** Per component: scaled price per unit of volume, and the VAT factor (both exact). */
const component_factors = new WeakMap<PriceComponent, { per_volume: Decimal; vat_factor: Decimal }>();

/** The scaled cost of a line. */
function line_cost(match: Match, dimension: TariffDimensionType, billed_volume: Decimal): Cost {
  let factors = component_factors.get(match.component);
  if (factors === undefined) {
    factors = {
      per_volume: new Money(String(match.component.price)).mul(scale_per_volume[dimension]),
      vat_factor: new Money(String(match.component.vat ?? 0)).div(100).plus(1),
    };
    component_factors.set(match.component, factors);
  }
  const excl = billed_volume.mul(factors.per_volume);
  return { excl, incl: excl.mul(factors.vat_factor) };
}

/** From scaled units to currency units (unrounded). */
function unscale(cost: Cost): Cost {
  return { excl: cost.excl.div(cost_scale), incl: cost.incl.div(cost_scale) };
}

export interface Cost {
  excl: Decimal;
  incl: Decimal;
}

function zero_cost(): Cost {
  return { excl: new Money(0), incl: new Money(0) };
}

function add_cost(a: Cost, b: Cost): Cost {
  return { excl: a.excl.plus(b.excl), incl: a.incl.plus(b.incl) };
}

/** The lines a period produces, in CDR order: ENERGY (when energy flowed), then TIME or PARKING_TIME. */
function period_lines(period: Period, period_index: number): WorkLine[] {
  const lines: WorkLine[] = [];
  if (period.energy !== undefined && period.energy_wh.gt(0)) {
    lines.push({
      period_index,
      match: period.energy,
      dimension: 'ENERGY',
      volume: period.energy_wh,
      billed_volume: period.energy_wh,
    });
  }
  if (period.time !== undefined) {
    const seconds = new Money(period.end_ms - period.start_ms).div(1000);
    lines.push({
      period_index,
      match: period.time,
      dimension: period.charging ? 'TIME' : 'PARKING_TIME',
      volume: seconds,
      billed_volume: seconds,
    });
  }
  return lines;
}

/** The last line of a step_size family so far, and the session volume of its dimension. */
interface StepLast {
  match: Match;
  dimension: TariffDimensionType;
}

/**
 * step_size "SHALL only be taken into account once per session for ENERGY and once for
 * PARKING_TIME and TIME combined" (mod_cdrs 10.4.5 step_size, and the mod_tariffs 11.4.6 examples):
 * the last line of the family rounds the session total of its dimension up to its own step, and
 * the extra volume is billed on that last line.
 */
function step_extra(last: StepLast | undefined, dimension_volume: Decimal): Decimal {
  const step = last?.match.component.step_size ?? 0;
  // step_size 0: no step rounding (rating/tariff.ts).
  if (step === 0) return new Money(0);
  return dimension_volume.div(step).ceil().mul(step).minus(dimension_volume);
}

/**
 * Prices one session sample by sample. Each sample cuts its interval into slices within which no
 * restriction can change its answer (at min/max_duration, where the energy crosses min/max_kwh,
 * and at the minute where a wall-clock restriction changes in the location's zone) and folds them
 * into periods. `running_cost()` is O(1) per call: closed periods are summed when they close.
 * `result()` explains the whole session; `rate_session` is this class fed all samples at once,
 * so the live running cost, the final price and a from-scratch re-rating share one code path.
 */
export class DecimalSessionRater {
  private last: MeterSample;
  private samples_seen = 1;
  private readonly periods: Period[] = [];
  private flat: { match: Match; period_index: number } | undefined;
  /** Cost of closed periods' lines before step rounding, per (dimension, VAT rate). */
  private readonly closed: GroupCosts = new Map();
  /** Volume per dimension of closed periods (Wh, s). */
  private closed_volume: Record<'ENERGY' | 'TIME' | 'PARKING_TIME', Decimal> = {
    ENERGY: new Money(0),
    TIME: new Money(0),
    PARKING_TIME: new Money(0),
  };
  private closed_step_last: { energy?: StepLast; time?: StepLast } = {};
  private readonly duration_cuts_ms: number[];
  private readonly kwh_targets_wh: Decimal[];
  private readonly has_clock: boolean;
  private readonly energy_wh_start: Decimal;
  private readonly idle_grace_ms: number;
  /** Start of the current run of time not charging; undefined while charging. */
  private idle_since_ms: number | undefined;
  /** Power of the sample interval being priced: measured, else implied by its energy (restrictions.ts). */
  private interval_power_w: number | undefined;

  constructor(
    readonly tariff: Tariff,
    readonly time_zone: string,
    readonly first: MeterSample,
    readonly plan?: Plan,
  ) {
    local_time(first.at_ms, time_zone); // an unknown zone throws here, before any work
    this.check(first, undefined, 0);
    this.last = first;
    this.energy_wh_start = new Money(String(first.energy_wh));
    this.idle_grace_ms = (tariff.evrate_idle_grace_minutes ?? 0) * 60_000;
    const duration_cuts = new Set<number>();
    const kwh_targets: Decimal[] = [];
    for (const element of tariff.elements) {
      const r = element.restrictions;
      if (r === undefined) continue;
      for (const d of [r.min_duration, r.max_duration])
        if (d !== undefined) duration_cuts.add(first.at_ms + d * 1000);
      for (const kwh of [r.min_kwh, r.max_kwh]) {
        if (kwh !== undefined) kwh_targets.push(this.energy_wh_start.plus(kwh_in_wh(kwh)));
      }
    }
    this.duration_cuts_ms = [...duration_cuts].sort((x, y) => x - y);
    this.kwh_targets_wh = kwh_targets;
    this.has_clock = tariff.elements.some(
      (e) =>
        e.restrictions !== undefined &&
        (e.restrictions.start_time !== undefined ||
          e.restrictions.end_time !== undefined ||
          e.restrictions.start_date !== undefined ||
          e.restrictions.end_date !== undefined ||
          e.restrictions.day_of_week !== undefined),
    );
  }

  static from_state(
    tariff: Tariff,
    time_zone: string,
    first: MeterSample,
    state: RaterState,
    plan?: Plan,
  ): DecimalSessionRater {
    const rater = new DecimalSessionRater(tariff, time_zone, first, plan);
    rater.last = state.last;
    rater.samples_seen = state.samples_seen;
    rater.idle_since_ms = state.idle_since_ms ?? undefined;
    for (const p of state.periods) {
      const period: Period = {
        start_ms: p.start_ms,
        end_ms: p.end_ms,
        charging: p.charging,
        energy_wh: new Money(p.energy_wh),
        energy: p.energy < 0 ? undefined : component_of(tariff, p.energy, 'ENERGY'),
        time: p.time < 0 ? undefined : component_of(tariff, p.time, p.charging ? 'TIME' : 'PARKING_TIME'),
      };
      if (rater.periods.length > 0) rater.close_current();
      rater.periods.push(period);
    }
    if (state.flat !== null) {
      rater.flat = {
        match: component_of(tariff, state.flat.element_index, 'FLAT'),
        period_index: state.flat.period_index,
      };
    }
    return rater;
  }

  state(): RaterState {
    return {
      start_ms: this.first.at_ms,
      energy_wh_start: this.first.energy_wh,
      last: this.last,
      samples_seen: this.samples_seen,
      idle_since_ms: this.idle_since_ms ?? null,
      flat:
        this.flat === undefined
          ? null
          : { element_index: this.flat.match.element_index, period_index: this.flat.period_index },
      periods: this.periods.map((p) => ({
        start_ms: p.start_ms,
        end_ms: p.end_ms,
        charging: p.charging,
        energy_wh: p.energy_wh.toString(),
        energy: p.energy?.element_index ?? -1,
        time: p.time?.element_index ?? -1,
      })),
    };
  }

  /** The latest sample taken in. */
  get last_sample(): MeterSample {
    return this.last;
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

  /**
   * Takes the next sample: the state of the previous sample holds until this one, unless
   * `interval` says otherwise (a caller that learns whether the EV charged only when the interval
   * ends, from the energy that flowed in it).
   */
  add(
    sample: MeterSample,
    interval?: Partial<Pick<MeterSample, 'charging' | 'power_w' | 'current_a'>>,
  ): void {
    const previous = this.last;
    this.check(sample, previous, this.samples_seen);
    const a = interval === undefined ? previous : { ...previous, ...interval };
    this.samples_seen++;
    this.last = sample;
    const b = sample;
    this.interval_power_w =
      a.power_w ??
      implied_power_w(new Money(String(b.energy_wh)).minus(String(a.energy_wh)), b.at_ms - a.at_ms);
    if (a.at_ms === b.at_ms) {
      // Energy registered without time passing still belongs to the session.
      if (a.energy_wh !== b.energy_wh) {
        const from = new Money(String(a.energy_wh)).minus(this.energy_wh_start);
        this.slice(a, a.at_ms, a.at_ms, from, new Money(String(b.energy_wh)).minus(this.energy_wh_start));
      }
      return;
    }
    const points = [a.at_ms];
    for (const cut of this.duration_cuts_ms) if (cut > a.at_ms && cut < b.at_ms) points.push(cut);
    if (this.idle_grace_ms > 0 && !a.charging) {
      // The grace of an idle run ends inside this interval: PARKING_TIME is priced from there on.
      const grace_end_ms = (this.idle_since_ms ?? a.at_ms) + this.idle_grace_ms;
      if (grace_end_ms > a.at_ms && grace_end_ms < b.at_ms) points.push(grace_end_ms);
    }
    for (const target_wh of this.kwh_targets_wh) {
      if (target_wh.gt(String(a.energy_wh)) && target_wh.lte(String(b.energy_wh))) {
        // The first whole ms at which the register has reached the threshold.
        const at =
          a.at_ms +
          target_wh
            .minus(String(a.energy_wh))
            .div(new Money(String(b.energy_wh)).minus(String(a.energy_wh)))
            .mul(b.at_ms - a.at_ms)
            .ceil()
            .toNumber();
        if (at > a.at_ms && at < b.at_ms) points.push(at);
      }
    }
    points.push(b.at_ms);
    const sorted = [...new Set(points)].sort((x, y) => x - y);
    for (let p = 0; p + 1 < sorted.length; p++) {
      const from = sorted[p]!;
      const to = sorted[p + 1]!;
      if (!this.has_clock) {
        this.slice_between(a, b, from, to);
        continue;
      }
      // Local HH:MM boundaries fall on whole UTC minutes in every zone with whole-minute offsets.
      let s = from;
      let signature = this.clock_signature(from);
      for (let m = Math.floor(from / minute_ms) * minute_ms + minute_ms; m < to; m += minute_ms) {
        const next = this.clock_signature(m);
        if (next !== signature) {
          this.slice_between(a, b, s, m);
          s = m;
          signature = next;
        }
      }
      this.slice_between(a, b, s, to);
    }
  }

  private clock_signature(at_ms: number): string {
    const local = local_time(at_ms, this.time_zone);
    let signature = '';
    for (const e of this.tariff.elements) {
      signature +=
        e.restrictions === undefined || clock_restrictions_match(e.restrictions, local) ? '1' : '0';
    }
    return signature;
  }

  private slice_between(a: MeterSample, b: MeterSample, start_ms: number, end_ms: number): void {
    this.slice(
      a,
      start_ms,
      end_ms,
      energy_at(a, b, start_ms).minus(this.energy_wh_start),
      energy_at(a, b, end_ms).minus(this.energy_wh_start),
    );
  }

  /**
   * Prices [start_ms, end_ms] (session energy from..to, Wh) in the state of sample `a` and folds
   * it into the current period.
   */
  private slice(
    a: MeterSample,
    start_ms: number,
    end_ms: number,
    energy_wh_from: Decimal,
    energy_wh_to: Decimal,
  ): void {
    const state: SliceState = {
      local: local_time(start_ms, this.time_zone),
      energy_wh_before: energy_wh_from,
      duration_s_before: (start_ms - this.first.at_ms) / 1000,
      power_w: this.interval_power_w,
      current_a: a.current_a,
    };
    const charging = a.charging;
    if (charging) this.idle_since_ms = undefined;
    else this.idle_since_ms ??= start_ms;
    const in_grace = !charging && start_ms < this.idle_since_ms! + this.idle_grace_ms;
    const energy = match_component(this.tariff, 'ENERGY', state);
    // Idle time inside the grace period is not priced: no PARKING_TIME element applies to it.
    const time = in_grace
      ? undefined
      : match_component(this.tariff, charging ? 'TIME' : 'PARKING_TIME', state);
    const current = this.periods[this.periods.length - 1];
    if (
      current !== undefined &&
      current.charging === charging &&
      current.energy?.element_index === energy?.element_index &&
      current.time?.element_index === time?.element_index
    ) {
      current.end_ms = end_ms;
      current.energy_wh = current.energy_wh.plus(energy_wh_to.minus(energy_wh_from));
    } else {
      if (current !== undefined) this.close_current();
      this.periods.push({
        start_ms,
        end_ms,
        charging,
        energy_wh: energy_wh_to.minus(energy_wh_from),
        energy,
        time,
      });
    }
    // FLAT is billed once per session, by the first element that prices it while it matches.
    if (this.flat === undefined) {
      const match = match_component(this.tariff, 'FLAT', state);
      if (match !== undefined) this.flat = { match, period_index: this.periods.length - 1 };
    }
  }

  /** Adds the current (last) period's lines to the closed sums before a new period starts. */
  private close_current(): void {
    const index = this.periods.length - 1;
    for (const line of period_lines(this.periods[index]!, index)) {
      add_group_cost(this.closed, line.match, line.dimension, line.volume);
      const dimension = line.dimension as 'ENERGY' | 'TIME' | 'PARKING_TIME';
      this.closed_volume[dimension] = this.closed_volume[dimension].plus(line.volume);
      const last = { match: line.match, dimension: line.dimension };
      if (dimension === 'ENERGY') this.closed_step_last.energy = last;
      else this.closed_step_last.time = last;
    }
  }

  /**
   * The periods and FLAT match to price. A session of no duration and no energy still happened:
   * one empty period at its start lets FLAT (and zero-volume lines) apply.
   */
  private effective(): { periods: Period[]; flat: { match: Match; period_index: number } | undefined } {
    if (this.periods.length > 0) return { periods: this.periods, flat: this.flat };
    const first = this.first;
    const state: SliceState = {
      local: local_time(first.at_ms, this.time_zone),
      energy_wh_before: new Money(0),
      duration_s_before: 0,
      power_w: first.power_w,
      current_a: first.current_a,
    };
    const period: Period = {
      start_ms: first.at_ms,
      end_ms: first.at_ms,
      charging: first.charging,
      energy_wh: new Money(0),
      energy: match_component(this.tariff, 'ENERGY', state),
      time: match_component(this.tariff, first.charging ? 'TIME' : 'PARKING_TIME', state),
    };
    const flat = match_component(this.tariff, 'FLAT', state);
    return { periods: [period], flat: flat === undefined ? undefined : { match: flat, period_index: 0 } };
  }

  /** The session's total so far, excl. and incl. VAT, rounded to the currency: O(1). */
  running_cost(): CdrPrice {
    if (this.periods.length === 0) return this.result().total_cost;
    const cost: GroupCosts = new Map();
    for (const [key, group] of this.closed) cost.set(key, { ...group });
    if (this.flat !== undefined) add_group_cost(cost, this.flat.match, 'FLAT', new Money(1));
    const volume = { ...this.closed_volume };
    let energy_last = this.closed_step_last.energy;
    let time_last = this.closed_step_last.time;
    const index = this.periods.length - 1;
    if (index >= 0) {
      for (const line of period_lines(this.periods[index]!, index)) {
        add_group_cost(cost, line.match, line.dimension, line.volume);
        const dimension = line.dimension as 'ENERGY' | 'TIME' | 'PARKING_TIME';
        volume[dimension] = volume[dimension].plus(line.volume);
        if (dimension === 'ENERGY') energy_last = { match: line.match, dimension };
        else time_last = { match: line.match, dimension };
      }
    }
    for (const last of [energy_last, time_last]) {
      if (last === undefined) continue;
      const extra = step_extra(last, volume[last.dimension as 'ENERGY' | 'TIME' | 'PARKING_TIME']);
      if (!extra.isZero()) add_group_cost(cost, last.match, last.dimension, extra);
    }
    const totals = invoice_totals(cost, this.tariff.currency);
    const limited = apply_price_limits(this.tariff, totals.total);
    return price_text(apply_plan(limited.cost, this.tariff.currency, this.plan).cost, this.tariff.currency);
  }

  /** The priced session so far, explained line by line. */
  result(): RatedSession {
    const { tariff } = this;
    const { periods, flat } = this.effective();

    const lines: WorkLine[] = [];
    if (flat !== undefined) {
      const one = new Money(1);
      lines.push({ ...flat, dimension: 'FLAT', volume: one, billed_volume: one });
    }
    periods.forEach((period, period_index) => {
      lines.push(...period_lines(period, period_index));
    });
    for (const family of [['ENERGY'], ['TIME', 'PARKING_TIME']] as const) {
      let last: WorkLine | undefined;
      for (const line of lines) if ((family as readonly string[]).includes(line.dimension)) last = line;
      if (last === undefined) continue;
      const total = lines
        .filter((l) => l.dimension === last.dimension)
        .reduce((sum, l) => sum.plus(l.volume), new Money(0));
      last.billed_volume = last.volume.plus(step_extra(last, total));
    }

    const currency = tariff.currency;
    const groups: GroupCosts = new Map();
    const rated_lines: RatedLine[] = lines.map((line) => {
      const { component } = line.match;
      const scaled = line_cost(line.match, line.dimension, line.billed_volume);
      add_group_cost(groups, line.match, line.dimension, line.billed_volume);
      const cost = unscale(scaled);
      return {
        period_index: line.period_index,
        element_index: line.match.element_index,
        dimension: line.dimension,
        volume: line.volume.toString(),
        billed_volume: line.billed_volume.toString(),
        step_size: component.step_size,
        unit_price: new Money(String(component.price)).toString(),
        vat_percent: new Money(String(component.vat ?? 0)).toString(),
        cost_excl_vat: cost.excl.toString(),
        cost_incl_vat: cost.incl.toString(),
      };
    });
    const totals = invoice_totals(groups, currency);
    const limited = apply_price_limits(tariff, totals.total);
    const planned = apply_plan(limited.cost, currency, this.plan);

    const charging_periods: CdrChargingPeriod[] = periods.map((period) => {
      const dimensions: CdrDimension[] = [];
      if (period.energy_wh.gt(0))
        dimensions.push({ type: 'ENERGY', volume: period.energy_wh.div(1000).toString() });
      dimensions.push({
        type: period.charging ? 'TIME' : 'PARKING_TIME',
        volume: hours_text(new Money(period.end_ms - period.start_ms).div(1000)),
      });
      return { start_date_time: iso(period.start_ms), dimensions, tariff_id: tariff.id };
    });
    const first = this.first;
    const end = this.last;
    const parking_ms = periods.filter((p) => !p.charging).reduce((s, p) => s + (p.end_ms - p.start_ms), 0);
    const energy_wh_total = new Money(String(end.energy_wh)).minus(String(first.energy_wh));

    // Pair assertion: the periods cover the session and carry all of its energy.
    const energy_wh_periods = periods.reduce((s, p) => s.plus(p.energy_wh), new Money(0));
    if (!energy_wh_periods.eq(energy_wh_total))
      throw new Error('charging periods do not sum to the session energy');

    return {
      currency,
      tariff_id: tariff.id,
      start_date_time: iso(first.at_ms),
      end_date_time: iso(end.at_ms),
      charging_periods,
      total_cost: price_text(planned.cost, currency),
      total_fixed_cost: price_text(totals.dimensions.FLAT, currency),
      total_energy_cost: price_text(totals.dimensions.ENERGY, currency),
      total_time_cost: price_text(totals.dimensions.TIME, currency),
      total_parking_cost: price_text(totals.dimensions.PARKING_TIME, currency),
      total_energy: energy_wh_total.div(1000).toString(),
      total_time: hours_text(new Money(end.at_ms - first.at_ms).div(1000)),
      total_parking_time: hours_text(new Money(parking_ms).div(1000)),
      price_limit_applied: limited.applied,
      lines: rated_lines,
      plan: this.plan ?? null,
      plan_lines: planned.lines,
    };
  }
}

/** Unrounded excl. VAT costs (scaled, as line_cost) per (dimension, VAT rate): the units rounded on their own. */
export type GroupCosts = Map<string, { dimension: TariffDimensionType; vat_percent: Decimal; excl: Decimal }>;

function add_group_cost(
  groups: GroupCosts,
  match: Match,
  dimension: TariffDimensionType,
  billed_volume: Decimal,
): void {
  const vat_percent = new Money(String(match.component.vat ?? 0));
  const key = `${dimension}|${vat_percent.toString()}`;
  const excl = line_cost(match, dimension, billed_volume).excl;
  const group = groups.get(key);
  if (group === undefined) groups.set(key, { dimension, vat_percent, excl });
  else group.excl = group.excl.plus(excl);
}

/** The order of dimensions in the totals, which also breaks ties when VAT cents are shared out. */
const dimension_order: readonly TariffDimensionType[] = ['ENERGY', 'TIME', 'PARKING_TIME', 'FLAT'];

export interface InvoiceTotals {
  /** Per dimension: net rounded, incl. VAT = net + its share of the VAT (currency units, minor digits). */
  dimensions: Record<TariffDimensionType, Cost>;
  /** Before min/max_price and the plan: the sums of the dimensions. */
  total: Cost;
}

/**
 * How a session's totals add up, as an invoice shows them (OCPI leaves the rounding open; this is
 * our rule, also in README "Rating", and rating/engine.ts implements the same in integers):
 *
 * 1. Lines are exact (unrounded). The lines of one dimension at one VAT rate are a group; a
 *    group's net (excl. VAT) is its lines' sum rounded half up to the currency's minor unit. A
 *    dimension's excl_vat (total_energy_cost, total_time_cost, total_parking_cost,
 *    total_fixed_cost) is the sum of its groups' rounded nets: with one VAT rate in the dimension,
 *    the dimension's lines summed and rounded once.
 * 2. total_cost.excl_vat is the sum of the four dimensions' excl_vat.
 * 3. The VAT of a rate is that rate applied to the sum of the rounded nets at the rate, rounded half
 *    up once per rate; total_cost.incl_vat is the sum over rates of net + VAT.
 * 4. A dimension's incl_vat is its net plus its share of each rate's VAT: each group gets its exact
 *    VAT rounded down, and the minor units the rate's rounding leaves over go one each to the
 *    groups with the largest remainders (ties: ENERGY, TIME, PARKING_TIME, FLAT), so the
 *    dimensions' incl_vat add up to total_cost.incl_vat.
 * 5. min_price/max_price (apply_price_limits), then the driver's plan, apply to these totals.
 */
export function invoice_totals(groups: GroupCosts, currency: string): InvoiceTotals {
  const digits = minor_units(currency);
  const minor = new Money(10).pow(digits);
  const dimensions: Record<TariffDimensionType, Cost> = {
    ENERGY: zero_cost(),
    TIME: zero_cost(),
    PARKING_TIME: zero_cost(),
    FLAT: zero_cost(),
  };
  const rates = new Map<
    string,
    { vat_percent: Decimal; members: { dimension: TariffDimensionType; net: Decimal }[] }
  >();
  for (const dimension of dimension_order) {
    for (const group of groups.values()) {
      if (group.dimension !== dimension) continue;
      const net = round_money(group.excl.div(cost_scale), currency);
      const key = group.vat_percent.toString();
      let rate = rates.get(key);
      if (rate === undefined) {
        rate = { vat_percent: group.vat_percent, members: [] };
        rates.set(key, rate);
      }
      rate.members.push({ dimension, net });
      dimensions[dimension].excl = dimensions[dimension].excl.plus(net);
    }
  }
  let total_excl = new Money(0);
  let total_incl = new Money(0);
  for (const rate of rates.values()) {
    const net = rate.members.reduce((sum, m) => sum.plus(m.net), new Money(0));
    const vat = round_money(net.mul(rate.vat_percent).div(100), currency);
    total_excl = total_excl.plus(net);
    total_incl = total_incl.plus(net).plus(vat);
    // Shares in minor units: floor of the exact VAT, then the cents left by remainder.
    const shares = rate.members.map((m, order) => {
      const exact = m.net.mul(rate.vat_percent).div(100).mul(minor);
      const floor = exact.floor();
      return { dimension: m.dimension, order, floor, remainder: exact.minus(floor) };
    });
    let left = vat
      .mul(minor)
      .minus(shares.reduce((sum, s) => sum.plus(s.floor), new Money(0)))
      .toNumber();
    const by_remainder = [...shares].sort((x, y) => y.remainder.comparedTo(x.remainder) || x.order - y.order);
    for (const share of by_remainder) {
      const cents = left > 0 && share.remainder.gt(0) ? 1 : 0;
      left -= cents;
      const d = dimensions[share.dimension];
      d.incl = d.incl.plus(share.floor.plus(cents).div(minor));
    }
    if (left !== 0) throw new Error('VAT shares do not add up to the VAT of the rate');
  }
  for (const dimension of dimension_order) {
    const d = dimensions[dimension];
    d.incl = d.incl.plus(d.excl);
  }
  // Pair assertion: the parts add up to the total, excl. and incl. VAT.
  const parts = Object.values(dimensions).reduce(add_cost, zero_cost());
  if (!parts.excl.eq(total_excl) || !parts.incl.eq(total_incl))
    throw new Error('dimension totals do not add up to the total cost');
  return { dimensions, total: { excl: total_excl, incl: total_incl } };
}

export function price_text(cost: Cost, currency: string): CdrPrice {
  return { excl_vat: money_text(cost.excl, currency), incl_vat: money_text(cost.incl, currency) };
}

/**
 * The VAT percentage that turns a limit given excl. VAT only into its incl. VAT bound: OCPI Price
 * has incl_vat optional, and mod_tariffs 11.3.1 says both bounds apply. Our rule: the tariff's
 * VAT when all its price components carry the same rate; with several rates, the session's own
 * VAT mix (its total incl. over excl. VAT), and for such a session costing nothing, the VAT of the
 * tariff's first price component.
 */
function limit_vat_factor(tariff: Tariff, total: Cost): Decimal {
  const rates = new Set<string>();
  for (const e of tariff.elements)
    for (const c of e.price_components) rates.add(new Money(String(c.vat ?? 0)).toString());
  if (rates.size > 1 && !total.excl.isZero()) return total.incl.div(total.excl);
  const first = tariff.elements[0]?.price_components[0]?.vat ?? 0;
  return new Money(String(rates.size === 1 ? [...rates][0]! : first)).div(100).plus(1);
}

/**
 * min_price and max_price on the totals of invoice_totals, both bounds each (mod_tariffs 11.3.1:
 * "The total cost ... excluding VAT can never be lower than the min_price excluding VAT" and the
 * same incl. VAT; max_price mirrors it). A bound is rounded half up to the currency's minor unit;
 * without incl_vat its incl. VAT bound is excl_vat x (1 + VAT / 100) by limit_vat_factor, rounded
 * the same way. min_price raises whichever of excl./incl. VAT is below its bound, also for a
 * session of no usage at all (it still costs min_price); then max_price lowers whichever is above.
 */
export function apply_price_limits(
  tariff: Tariff,
  total: Cost,
): { cost: Cost; applied: RatedSession['price_limit_applied'] } {
  const currency = tariff.currency;
  const bounds = (price: Price): Cost => {
    const excl = new Money(String(price.excl_vat));
    const incl =
      price.incl_vat !== undefined
        ? new Money(String(price.incl_vat))
        : excl.mul(limit_vat_factor(tariff, total));
    return { excl: round_money(excl, currency), incl: round_money(incl, currency) };
  };
  let cost = total;
  let applied: RatedSession['price_limit_applied'] = null;
  if (tariff.min_price !== undefined) {
    const min = bounds(tariff.min_price);
    if (cost.excl.lt(min.excl) || cost.incl.lt(min.incl)) {
      cost = { excl: Money.max(cost.excl, min.excl), incl: Money.max(cost.incl, min.incl) };
      applied = 'min_price';
    }
  }
  if (tariff.max_price !== undefined) {
    const max = bounds(tariff.max_price);
    if (cost.excl.gt(max.excl) || cost.incl.gt(max.incl)) {
      cost = { excl: Money.min(cost.excl, max.excl), incl: Money.min(cost.incl, max.incl) };
      applied = 'max_price';
    }
  }
  return { cost, applied };
}

/** Prices a session with an OCPI 2.2.1 tariff. Pure: same inputs, same output. */
export function rate_session_decimal(input: RatingInput): RatedSession {
  const { samples } = input;
  if (samples.length < 2) fail('samples', 'needs at least 2 samples (start and end)');
  const rater = new DecimalSessionRater(input.tariff, input.time_zone, samples[0]!, input.plan);
  for (let i = 1; i < samples.length; i++) rater.add(samples[i]!);
  return rater.result();
}
