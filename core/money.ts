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
