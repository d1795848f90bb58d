import { Money, round_money } from '../core/money.js';
import { type RatedLine, rate_session } from './engine.js';
import type { Tariff } from './tariff.js';

/** What the pricing needs to know of a finished session. */
export interface SessionFacts {
  energy_wh: number;
  started_at_ms: number;
  stopped_at_ms: number;
}

/** One line of the explanation: how one dimension's cost came about (the engine's line, without periods). */
export type BreakdownLine = Omit<RatedLine, 'period_index'>;

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
 * This entry point prices with unrestricted elements only: the session facts carry no wall-clock
 * zone, power or current, so an element with restrictions cannot be shown to match and is left out.
 * The rest is the OCPI engine (rating/engine.ts) over one charging interval.
 */
function unrestricted(tariff: Tariff): { tariff: Tariff; element_indices: number[] } {
  const element_indices: number[] = [];
  const elements = tariff.elements.filter((element, e) => {
    const open = element.restrictions === undefined || Object.keys(element.restrictions).length === 0;
    if (open) element_indices.push(e);
    return open;
  });
  return { tariff: { ...tariff, elements }, element_indices };
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
  const open = unrestricted(tariff);
  const rated = rate_session({
    tariff: open.tariff,
    time_zone: 'UTC',
    samples: [
      { at_ms: facts.started_at_ms, energy_wh: 0, charging: true },
      // TIME is billed on whole seconds.
      { at_ms: facts.started_at_ms + duration_s * 1000, energy_wh: facts.energy_wh, charging: true },
    ],
  });
  const lines: BreakdownLine[] = rated.lines.map((line) => ({
    dimension: line.dimension,
    element_index: open.element_indices[line.element_index]!,
    volume: line.volume,
    billed_volume: line.billed_volume,
    step_size: line.step_size,
    unit_price: line.unit_price,
    vat_percent: line.vat_percent,
    cost_excl_vat: line.cost_excl_vat,
    cost_incl_vat: line.cost_incl_vat,
  }));
  const price_limit_applied = rated.price_limit_applied;
  const currency = tariff.currency;
  const result: PricedSession = {
    currency,
    energy_wh: facts.energy_wh,
    duration_s,
    total_excl_vat: rated.total_cost.excl_vat,
    total_incl_vat: rated.total_cost.incl_vat,
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
