import type { Decimal } from 'decimal.js';
import { Money, money_text, round_money } from '../core/money.js';
import type { PriceComponent, Tariff, TariffDimensionType } from './tariff.js';

/** What the pricing needs to know of a finished session. */
export interface SessionFacts {
  energy_wh: number;
  started_at_ms: number;
  stopped_at_ms: number;
}

/** One line of the explanation: how one dimension's cost came about. */
export interface BreakdownLine {
  dimension: TariffDimensionType;
  element_index: number;
  /** Volume measured: Wh for ENERGY, seconds for TIME, 1 for FLAT. */
  volume: string;
  /** Volume billed after step_size rounding (OCPI 2.2.1 mod_tariffs 11.4.6: rounded up). */
  billed_volume: string;
  step_size: number;
  /** Price per kWh, per hour, or per session (FLAT), excl. VAT. */
  unit_price: string;
  vat_percent: string;
  cost_excl_vat: string;
  cost_incl_vat: string;
}

export interface PricedSession {
  currency: string;
  energy_wh: number;
  duration_s: number;
  total_excl_vat: string;
  total_incl_vat: string;
  /** Set when min_price or max_price replaced the computed total. */
  price_limit_applied: 'min_price' | 'max_price' | null;
  breakdown: BreakdownLine[];
}

/**
 * For each dimension, the first element that prices it applies (OCPI 2.2.1 mod_tariffs 11.3.2:
 * "the first TariffElement ... that is valid is used"). Elements with restrictions are not
 * evaluated by this engine yet, so only unrestricted elements are candidates.
 */
function component_for(
  tariff: Tariff,
  dimension: TariffDimensionType,
): { component: PriceComponent; element_index: number } | undefined {
  for (let e = 0; e < tariff.elements.length; e++) {
    const element = tariff.elements[e]!;
    if (element.restrictions !== undefined && Object.keys(element.restrictions).length > 0) continue;
    const component = element.price_components.find((c) => c.type === dimension);
    if (component !== undefined) return { component, element_index: e };
  }
  return undefined;
}

/** Rounds volume up to a whole number of steps (OCPI step_size). */
function billed(volume: Decimal, step: number): Decimal {
  if (volume.isZero()) return volume;
  return volume.div(step).ceil().mul(step);
}

/** Prices a finished session with an OCPI tariff. Pure: same inputs, same output. */
export function price_session(tariff: Tariff, facts: SessionFacts): PricedSession {
  if (!Number.isInteger(facts.energy_wh) || facts.energy_wh < 0) {
    throw new RangeError(`energy_wh must be a non-negative integer, got ${facts.energy_wh}`);
  }
  if (facts.stopped_at_ms < facts.started_at_ms) {
    throw new RangeError('a session cannot stop before it starts');
  }
  const duration_s = Math.floor((facts.stopped_at_ms - facts.started_at_ms) / 1000);
  const lines: BreakdownLine[] = [];
  let excl = new Money(0);
  let incl = new Money(0);
  const add = (dimension: TariffDimensionType, volume: Decimal, per_unit_divisor: number) => {
    const found = component_for(tariff, dimension);
    if (found === undefined) return;
    const { component, element_index } = found;
    const billed_volume = dimension === 'FLAT' ? volume : billed(volume, component.step_size);
    const unit_price = new Money(String(component.price));
    const vat = new Money(String(component.vat ?? 0));
    const cost_excl = billed_volume.div(per_unit_divisor).mul(unit_price);
    const cost_incl = cost_excl.mul(vat.div(100).plus(1));
    excl = excl.plus(cost_excl);
    incl = incl.plus(cost_incl);
    lines.push({
      dimension,
      element_index,
      volume: volume.toString(),
      billed_volume: billed_volume.toString(),
      step_size: component.step_size,
      unit_price: unit_price.toString(),
      vat_percent: vat.toString(),
      cost_excl_vat: cost_excl.toString(),
      cost_incl_vat: cost_incl.toString(),
    });
  };
  add('FLAT', new Money(1), 1);
  add('ENERGY', new Money(facts.energy_wh), 1000);
  add('TIME', new Money(duration_s), 3600);

  const currency = tariff.currency;
  let price_limit_applied: PricedSession['price_limit_applied'] = null;
  const limit = (price: Tariff['min_price'], below: boolean) => {
    if (price === undefined) return false;
    const limit_excl = new Money(String(price.excl_vat));
    if (below ? excl.gte(limit_excl) : excl.lte(limit_excl)) return false;
    // The limit replaces the total; VAT on it is the given incl_vat, else scaled from the total.
    const limit_incl =
      price.incl_vat !== undefined
        ? new Money(String(price.incl_vat))
        : excl.isZero()
          ? limit_excl
          : limit_excl.mul(incl).div(excl);
    excl = limit_excl;
    incl = limit_incl;
    return true;
  };
  if (limit(tariff.min_price, true)) price_limit_applied = 'min_price';
  else if (limit(tariff.max_price, false)) price_limit_applied = 'max_price';

  const result: PricedSession = {
    currency,
    energy_wh: facts.energy_wh,
    duration_s,
    total_excl_vat: money_text(excl, currency),
    total_incl_vat: money_text(incl, currency),
    price_limit_applied,
    breakdown: lines,
  };
  // Pair assertion: the totals are the rounded sum of the lines unless a price limit replaced them.
  if (price_limit_applied === null) {
    const sum = lines.reduce((s, l) => s.plus(l.cost_excl_vat), new Money(0));
    if (!round_money(sum, currency).eq(result.total_excl_vat))
      throw new Error('breakdown does not sum to total');
  }
  return result;
}
