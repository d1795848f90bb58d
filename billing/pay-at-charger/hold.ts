import { Money, minor_units } from '../../core/money.js';
import { rate_session } from '../../rating/engine.js';
import type { Tariff } from '../../rating/tariff.js';
import { minor_of, text_of_minor } from '../amounts.js';

/**
 * What a driver agrees to before paying, computed with the rating engine itself (so the page and
 * the final bill can never disagree on the rules): the hold placed on the card and a worked
 * example. Pure.
 */

export type HoldSource = 'site' | 'max_price' | 'estimate';

export interface Hold {
  currency: string;
  hold_minor: number;
  source: HoldSource;
}

export interface HoldInputs {
  tariff: Tariff;
  /** The operator's hold for the EVSE's site, if set (in the tariff's currency to apply). */
  site_hold?: { currency: string; hold_minor: number } | undefined;
  /** The EVSE's power, W. */
  power_w: number;
  duration_max_min: number;
  time_zone: string;
  now_ms: number;
}

/** The price of `energy_wh` delivered evenly over `duration_ms` from `now_ms`, incl. and excl. VAT. */
export function price_of(
  tariff: Tariff,
  time_zone: string,
  now_ms: number,
  energy_wh: number,
  duration_ms: number,
): { excl_vat_minor: number; incl_vat_minor: number } {
  const rated = rate_session({
    tariff,
    time_zone,
    samples: [
      { at_ms: now_ms, energy_wh: 0, charging: true },
      { at_ms: now_ms + duration_ms, energy_wh, charging: true },
    ],
  });
  return {
    excl_vat_minor: minor_of(rated.total_cost.excl_vat, tariff.currency),
    incl_vat_minor: minor_of(rated.total_cost.incl_vat, tariff.currency),
  };
}

/**
 * The hold, in order of precedence: the site's configured hold; the tariff's max_price (OCPI
 * 2.2.1 mod_tariffs 11.3.1: "the maximum cost of a session" - nothing above it is ever charged);
 * else the price of the EVSE's full power over the maximum duration, rounded up to a whole unit.
 */
export function hold_of(inputs: HoldInputs): Hold {
  const currency = inputs.tariff.currency;
  if (inputs.site_hold !== undefined && inputs.site_hold.currency === currency) {
    return { currency, hold_minor: inputs.site_hold.hold_minor, source: 'site' };
  }
  const max = inputs.tariff.max_price;
  if (max?.incl_vat !== undefined && max.incl_vat > 0) {
    return { currency, hold_minor: minor_of(String(max.incl_vat), currency), source: 'max_price' };
  }
  const duration_ms = inputs.duration_max_min * 60_000;
  const energy_wh = Math.round((inputs.power_w * duration_ms) / 3_600_000);
  const price = price_of(inputs.tariff, inputs.time_zone, inputs.now_ms, energy_wh, duration_ms);
  const unit = 10 ** minor_units(currency);
  const whole = Math.max(unit, Math.ceil(price.incl_vat_minor / unit) * unit);
  return { currency, hold_minor: whole, source: 'estimate' };
}

/** The worked example of the pages: 30 kWh in 45 minutes, starting now. */
export const example_energy_wh = 30_000;
export const example_duration_ms = 45 * 60_000;

export function worked_example(
  tariff: Tariff,
  time_zone: string,
  now_ms: number,
): { energy_wh: number; duration_ms: number; incl_vat: string; excl_vat: string } {
  const price = price_of(tariff, time_zone, now_ms, example_energy_wh, example_duration_ms);
  return {
    energy_wh: example_energy_wh,
    duration_ms: example_duration_ms,
    incl_vat: text_of_minor(price.incl_vat_minor, tariff.currency),
    excl_vat: text_of_minor(price.excl_vat_minor, tariff.currency),
  };
}

/** One price component in words' parts: the kind and its price incl. VAT, exact. */
export interface PricePart {
  type: 'ENERGY' | 'TIME' | 'PARKING_TIME' | 'FLAT';
  incl_vat: string;
  vat_percent: string;
  restricted: boolean;
}

/** The price components of the tariff, each with its price incl. VAT (for the page's words). */
export function price_parts(tariff: Tariff): PricePart[] {
  const parts: PricePart[] = [];
  const seen = new Set<string>();
  for (const element of tariff.elements) {
    const restricted = element.restrictions !== undefined && Object.keys(element.restrictions).length > 0;
    for (const c of element.price_components) {
      const vat = new Money(c.vat ?? 0);
      const incl = new Money(c.price).mul(vat.div(100).add(1)).toDecimalPlaces(4, Money.ROUND_HALF_UP);
      const key = `${c.type}:${incl.toString()}:${restricted}`;
      if (seen.has(key)) continue;
      seen.add(key);
      parts.push({ type: c.type, incl_vat: incl.toFixed(), vat_percent: vat.toString(), restricted });
    }
  }
  return parts;
}

/** The tariff's own words (OCPI tariff_alt_text) in the language asked for, else in any. */
export function tariff_alt_text(tariff: Tariff, language: string): string | undefined {
  const texts = tariff.tariff_alt_text ?? [];
  return (texts.find((t) => t.language.toLowerCase().startsWith(language)) ?? texts[0])?.text;
}
