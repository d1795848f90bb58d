import type { Decimal } from 'decimal.js';
import { Money, money_text } from '../core/money.js';
import { local_time } from './local-time.js';
import { clock_restrictions_match, kwh_in_wh, restrictions_match, type SliceState } from './restrictions.js';
import type { Price, PriceComponent, Tariff, TariffDimensionType } from './tariff.js';

/**
 * A meter sample of a session. The state it gives (charging, power, current) holds until the next
 * sample; the last sample marks the end of the session. Energy is the cumulative register in Wh.
 */
export interface MeterSample {
  at_ms: number;
  energy_wh: number;
  power_w?: number;
  current_a?: number;
  /** false: the EV is connected but not charging, which OCPI prices as PARKING_TIME. */
  charging: boolean;
}

export interface RatingInput {
  tariff: Tariff;
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
  /** Unrounded; totals are rounded once, in core/money.ts. */
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
}

export class RatingInputError extends Error {
  constructor(
    readonly field: string,
    readonly rule: string,
  ) {
    super(`${field}: ${rule}`);
    this.name = 'RatingInputError';
  }
}

/** A session longer than this is refused: the minute scan of wall-clock restrictions is bounded. */
export const session_duration_ms_max = 62 * 24 * 3600 * 1000;
const minute_ms = 60_000;

interface Slice {
  start_ms: number;
  end_ms: number;
  energy_wh_start: Decimal;
  energy_wh_end: Decimal;
  sample: MeterSample;
}

interface Match {
  element_index: number;
  component: PriceComponent;
}

function fail(field: string, rule: string): never {
  throw new RatingInputError(field, rule);
}

function check_samples(samples: MeterSample[]): void {
  if (samples.length < 2) fail('samples', 'needs at least 2 samples (start and end)');
  samples.forEach((s, i) => {
    if (!Number.isInteger(s.at_ms)) fail(`samples[${i}].at_ms`, 'must be an integer epoch in ms');
    if (!Number.isFinite(s.energy_wh) || s.energy_wh < 0) {
      fail(`samples[${i}].energy_wh`, 'must be a non-negative number');
    }
    if (i === 0) return;
    const prev = samples[i - 1]!;
    if (s.at_ms < prev.at_ms) fail(`samples[${i}].at_ms`, 'must not be before the previous sample');
    if (s.energy_wh < prev.energy_wh) fail(`samples[${i}].energy_wh`, 'energy must never decrease');
  });
  const duration_ms = samples[samples.length - 1]!.at_ms - samples[0]!.at_ms;
  if (duration_ms > session_duration_ms_max)
    fail('samples', `session longer than ${session_duration_ms_max} ms`);
}

/**
 * Interpolated energy is kept to the nano-Wh: every value then has few enough digits that the
 * slices' differences add up exactly (they telescope) to the energy between the samples.
 */
const interpolated_wh_decimals = 9;

/** Energy at `at_ms` inside a sample interval, interpolated linearly. */
function energy_at(a: MeterSample, b: MeterSample, at_ms: number): Decimal {
  const e0 = new Money(String(a.energy_wh));
  if (b.at_ms === a.at_ms) return e0;
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
 * Cuts the session into slices within which no restriction can change its answer: at samples,
 * at min/max_duration, where the energy crosses min/max_kwh, and at the minute where a wall-clock
 * restriction (time of day, date, weekday) changes in the location's zone.
 */
function slice_session(input: RatingInput): Slice[] {
  const { samples, tariff, time_zone } = input;
  const start_ms = samples[0]!.at_ms;
  const energy_wh_start = new Money(String(samples[0]!.energy_wh));
  const cuts = new Set<number>();
  for (const element of tariff.elements) {
    const r = element.restrictions;
    if (r === undefined) continue;
    for (const d of [r.min_duration, r.max_duration]) if (d !== undefined) cuts.add(start_ms + d * 1000);
    for (const kwh of [r.min_kwh, r.max_kwh]) {
      if (kwh === undefined) continue;
      const target_wh = energy_wh_start.plus(kwh_in_wh(kwh));
      for (let i = 0; i + 1 < samples.length; i++) {
        const a = samples[i]!;
        const b = samples[i + 1]!;
        if (target_wh.gt(String(a.energy_wh)) && target_wh.lte(String(b.energy_wh))) {
          // The first whole ms at which the register has reached the threshold.
          const at = target_wh
            .minus(String(a.energy_wh))
            .div(new Money(String(b.energy_wh)).minus(String(a.energy_wh)))
            .mul(b.at_ms - a.at_ms)
            .ceil()
            .toNumber();
          cuts.add(a.at_ms + at);
          break;
        }
      }
    }
  }
  const clock_signature = (at_ms: number): string => {
    const local = local_time(at_ms, time_zone);
    return tariff.elements
      .map((e) =>
        e.restrictions === undefined || clock_restrictions_match(e.restrictions, local) ? '1' : '0',
      )
      .join('');
  };
  const has_clock = tariff.elements.some(
    (e) =>
      e.restrictions !== undefined &&
      (e.restrictions.start_time !== undefined ||
        e.restrictions.end_time !== undefined ||
        e.restrictions.start_date !== undefined ||
        e.restrictions.end_date !== undefined ||
        e.restrictions.day_of_week !== undefined),
  );

  const cuts_sorted = [...cuts].sort((x, y) => x - y);
  const slices: Slice[] = [];
  for (let i = 0; i + 1 < samples.length; i++) {
    const a = samples[i]!;
    const b = samples[i + 1]!;
    if (a.at_ms === b.at_ms) {
      // Energy registered without time passing still belongs to the session.
      if (a.energy_wh !== b.energy_wh) {
        slices.push({
          start_ms: a.at_ms,
          end_ms: a.at_ms,
          energy_wh_start: new Money(String(a.energy_wh)).minus(energy_wh_start),
          energy_wh_end: new Money(String(b.energy_wh)).minus(energy_wh_start),
          sample: a,
        });
      }
      continue;
    }
    const points = [a.at_ms];
    for (const cut of cuts_sorted) if (cut > a.at_ms && cut < b.at_ms) points.push(cut);
    points.push(b.at_ms);
    for (let p = 0; p + 1 < points.length; p++) {
      const from = points[p]!;
      const to = points[p + 1]!;
      const clock_points = [from];
      if (has_clock) {
        // Local HH:MM boundaries fall on whole UTC minutes in every zone with whole-minute offsets.
        let signature = clock_signature(from);
        for (let m = Math.floor(from / minute_ms) * minute_ms + minute_ms; m < to; m += minute_ms) {
          const next = clock_signature(m);
          if (next !== signature) {
            clock_points.push(m);
            signature = next;
          }
        }
      }
      clock_points.push(to);
      for (let c = 0; c + 1 < clock_points.length; c++) {
        const s = clock_points[c]!;
        const e = clock_points[c + 1]!;
        slices.push({
          start_ms: s,
          end_ms: e,
          energy_wh_start: energy_at(a, b, s).minus(energy_wh_start),
          energy_wh_end: energy_at(a, b, e).minus(energy_wh_start),
          sample: a,
        });
      }
    }
  }
  // A session of no duration and no energy still happened: one empty slice lets FLAT apply.
  if (slices.length === 0) {
    const zero = new Money(0);
    slices.push({
      start_ms,
      end_ms: start_ms,
      energy_wh_start: zero,
      energy_wh_end: zero,
      sample: samples[0]!,
    });
  }
  return slices;
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

function iso(at_ms: number): string {
  return new Date(at_ms).toISOString().replace('.000Z', 'Z');
}

/** Hours from seconds for display in the CDR; six decimals (3.6 ms) are below any meter's resolution. */
function hours_text(seconds: Decimal): string {
  return seconds.div(3600).toDecimalPlaces(6).toString();
}

/**
 * step_size "SHALL only be taken into account once per session for ENERGY and once for
 * PARKING_TIME and TIME combined" (mod_cdrs 10.4.5 step_size, and the mod_tariffs 11.4.6 examples):
 * the last line of the family rounds the session total of its dimension up to its own step, and
 * the extra volume is billed on that last line.
 */
function apply_step_size(lines: WorkLine[], family: readonly TariffDimensionType[]): void {
  let last: WorkLine | undefined;
  for (const line of lines) if (family.includes(line.dimension)) last = line;
  if (last === undefined) return;
  const total = lines
    .filter((l) => l.dimension === last.dimension)
    .reduce((sum, l) => sum.plus(l.volume), new Money(0));
  const step = last.match.component.step_size;
  const rounded = total.div(step).ceil().mul(step);
  last.billed_volume = last.volume.plus(rounded.minus(total));
}

/** Prices a session with an OCPI 2.2.1 tariff. Pure: same inputs, same output. */
export function rate_session(input: RatingInput): RatedSession {
  const { tariff, samples, time_zone } = input;
  check_samples(samples);
  local_time(samples[0]!.at_ms, time_zone); // an unknown zone throws here, before any work
  const session_start_ms = samples[0]!.at_ms;
  const slices = slice_session(input);

  const periods: Period[] = [];
  let flat: { match: Match; period_index: number } | undefined;
  for (const slice of slices) {
    const state: SliceState = {
      local: local_time(slice.start_ms, time_zone),
      energy_wh_before: slice.energy_wh_start,
      duration_s_before: (slice.start_ms - session_start_ms) / 1000,
      power_w: slice.sample.power_w,
      current_a: slice.sample.current_a,
    };
    const charging = slice.sample.charging;
    const energy = match_component(tariff, 'ENERGY', state);
    const time = match_component(tariff, charging ? 'TIME' : 'PARKING_TIME', state);
    const last = periods[periods.length - 1];
    if (
      last !== undefined &&
      last.charging === charging &&
      last.energy?.element_index === energy?.element_index &&
      last.time?.element_index === time?.element_index
    ) {
      last.end_ms = slice.end_ms;
      last.energy_wh = last.energy_wh.plus(slice.energy_wh_end.minus(slice.energy_wh_start));
    } else {
      periods.push({
        start_ms: slice.start_ms,
        end_ms: slice.end_ms,
        charging,
        energy_wh: slice.energy_wh_end.minus(slice.energy_wh_start),
        energy,
        time,
      });
    }
    // FLAT is billed once per session, by the first element that prices it while it matches.
    if (flat === undefined) {
      const match = match_component(tariff, 'FLAT', state);
      if (match !== undefined) flat = { match, period_index: periods.length - 1 };
    }
  }

  const lines: WorkLine[] = [];
  if (flat !== undefined) {
    const one = new Money(1);
    lines.push({ ...flat, dimension: 'FLAT', volume: one, billed_volume: one });
  }
  periods.forEach((period, period_index) => {
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
  });
  apply_step_size(lines, ['ENERGY']);
  apply_step_size(lines, ['TIME', 'PARKING_TIME']);

  const currency = tariff.currency;
  const zero = () => ({ excl: new Money(0), incl: new Money(0) });
  const sums: Record<TariffDimensionType, { excl: Decimal; incl: Decimal }> = {
    FLAT: zero(),
    ENERGY: zero(),
    TIME: zero(),
    PARKING_TIME: zero(),
  };
  const rated_lines: RatedLine[] = lines.map((line) => {
    const { component } = line.match;
    const unit_price = new Money(String(component.price));
    const vat = new Money(String(component.vat ?? 0));
    const per_unit = line.dimension === 'ENERGY' ? 1000 : line.dimension === 'FLAT' ? 1 : 3600;
    const cost_excl = line.billed_volume.div(per_unit).mul(unit_price);
    const cost_incl = cost_excl.mul(vat.div(100).plus(1));
    const sum = sums[line.dimension];
    sum.excl = sum.excl.plus(cost_excl);
    sum.incl = sum.incl.plus(cost_incl);
    return {
      period_index: line.period_index,
      element_index: line.match.element_index,
      dimension: line.dimension,
      volume: line.volume.toString(),
      billed_volume: line.billed_volume.toString(),
      step_size: component.step_size,
      unit_price: unit_price.toString(),
      vat_percent: vat.toString(),
      cost_excl_vat: cost_excl.toString(),
      cost_incl_vat: cost_incl.toString(),
    };
  });

  let total_excl = Object.values(sums).reduce((s, v) => s.plus(v.excl), new Money(0));
  let total_incl = Object.values(sums).reduce((s, v) => s.plus(v.incl), new Money(0));
  let price_limit_applied: RatedSession['price_limit_applied'] = null;
  // "The total cost excluding VAT can never be higher than the max_price excluding VAT", and the
  // same incl. VAT, each on its own (mod_tariffs 11.3.1, note on max_price); min_price mirrors it.
  // Without incl_vat the limit incl. VAT is the limit excl. VAT scaled by the session's VAT ratio.
  const limit_incl = (price: Price): Decimal =>
    price.incl_vat !== undefined
      ? new Money(String(price.incl_vat))
      : total_excl.isZero()
        ? new Money(String(price.excl_vat))
        : new Money(String(price.excl_vat)).mul(total_incl).div(total_excl);
  const min = tariff.min_price;
  const max = tariff.max_price;
  if (min !== undefined && total_excl.lt(String(min.excl_vat))) {
    total_incl = Money.max(total_incl, limit_incl(min));
    total_excl = new Money(String(min.excl_vat));
    price_limit_applied = 'min_price';
  } else if (max !== undefined) {
    const max_incl = limit_incl(max);
    if (total_excl.gt(String(max.excl_vat)) || total_incl.gt(max_incl)) {
      total_excl = Money.min(total_excl, String(max.excl_vat));
      total_incl = Money.min(total_incl, max_incl);
      price_limit_applied = 'max_price';
    }
  }

  const price = (excl: Decimal, incl: Decimal): CdrPrice => ({
    excl_vat: money_text(excl, currency),
    incl_vat: money_text(incl, currency),
  });

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
  const first = samples[0]!;
  const end = samples[samples.length - 1]!;
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
    total_cost: price(total_excl, total_incl),
    total_fixed_cost: price(sums.FLAT.excl, sums.FLAT.incl),
    total_energy_cost: price(sums.ENERGY.excl, sums.ENERGY.incl),
    total_time_cost: price(sums.TIME.excl, sums.TIME.incl),
    total_parking_cost: price(sums.PARKING_TIME.excl, sums.PARKING_TIME.incl),
    total_energy: energy_wh_total.div(1000).toString(),
    total_time: hours_text(new Money(end.at_ms - first.at_ms).div(1000)),
    total_parking_time: hours_text(new Money(parking_ms).div(1000)),
    price_limit_applied,
    lines: rated_lines,
  };
}
