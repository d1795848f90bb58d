import { Decimal } from 'decimal.js';

/**
 * Money arithmetic. Decimal.js with enough precision that no intermediate result is ever rounded;
 * amounts are rounded once, to the currency's minor units, half away from zero (ROUND_HALF_UP),
 * when a total is formed. This file is the only place that rounds money.
 */
export const Money = Decimal.clone({
  precision: 60,
  rounding: Decimal.ROUND_HALF_UP,
  toExpNeg: -30,
  toExpPos: 40,
});
export type Money = Decimal;

/** ISO 4217 minor units of currencies that differ from the usual 2. */
const minor_units_by_currency: Record<string, number> = {
  BHD: 3,
  BIF: 0,
  CLP: 0,
  DJF: 0,
  GNF: 0,
  IQD: 3,
  ISK: 0,
  JOD: 3,
  JPY: 0,
  KMF: 0,
  KRW: 0,
  KWD: 3,
  LYD: 3,
  OMR: 3,
  PYG: 0,
  RWF: 0,
  TND: 3,
  UGX: 0,
  VND: 0,
  VUV: 0,
  XAF: 0,
  XOF: 0,
  XPF: 0,
};

export function minor_units(currency: string): number {
  return minor_units_by_currency[currency] ?? 2;
}

export function round_money(amount: Decimal, currency: string): Decimal {
  return amount.toDecimalPlaces(minor_units(currency), Decimal.ROUND_HALF_UP);
}

/** Fixed-point text with exactly the currency's minor digits, e.g. "12.30". */
export function money_text(amount: Decimal, currency: string): string {
  return round_money(amount, currency).toFixed(minor_units(currency));
}

/*
 * The same rounding on amounts held as exact integers, for the rating engine's hot path: an amount
 * is numerator / denominator currency units. ROUND_HALF_UP of a non-negative amount to n minor
 * digits is floor(amount x 10^n + 1/2).
 */

/** Relative error allowed in an estimate given to minor_units_estimate (far above what a few sums of
 * double products make, far below the distance from a half that decides the rounding). */
const estimate_error_max = 2 ** -30;

/**
 * The amount in minor units, ROUND_HALF_UP, from an estimate `amount_minor` (amount x 10^n, n the
 * currency's minor digits) within a relative 2^-30 of the exact value; -1 when the estimate lies
 * too close to a half (or is too large) to round with certainty: then round the exact value.
 */
export function minor_units_estimate(amount_minor: number): number {
  if (!(amount_minor >= 0 && amount_minor < 2 ** 40)) return -1;
  const shifted = amount_minor + 0.5;
  const minor = Math.floor(shifted);
  const error = amount_minor * estimate_error_max + estimate_error_max;
  const above = shifted - minor;
  if (above < error || above > 1 - error) return -1;
  return minor;
}

/**
 * The amount numerator / denominator (currency units, non-negative) in minor units, ROUND_HALF_UP;
 * `minor_digits` is minor_units(currency).
 */
export function minor_units_exact(numerator: bigint, denominator: bigint, minor_digits: number): bigint {
  const scaled = numerator * 10n ** BigInt(minor_digits);
  return (2n * scaled + denominator) / (2n * denominator);
}

/** Fixed-point text of an amount in minor units, as money_text prints it, e.g. 1230 -> "12.30". */
export function minor_units_text(minor: number | bigint, minor_digits: number): string {
  if (minor_digits === 2 && typeof minor === 'number') {
    const cents = minor % 100;
    return `${(minor - cents) / 100}.${cents < 10 ? '0' : ''}${cents}`;
  }
  const text = String(minor);
  if (minor_digits === 0) return text;
  const padded = text.length > minor_digits ? text : text.padStart(minor_digits + 1, '0');
  return `${padded.slice(0, padded.length - minor_digits)}.${padded.slice(padded.length - minor_digits)}`;
}
