import { Money, minor_units, minor_units_text, round_money } from '../core/money.js';

/**
 * Amounts in billing are integer minor units of their currency (ISO 4217 exponent from
 * core/money.ts), kept as JS numbers that are checked to be safe integers. These two functions are
 * the only conversions to and from decimal text.
 */
export function minor_of(text: string, currency: string): number {
  const rounded = round_money(new Money(text), currency);
  const minor = rounded.mul(new Money(10).pow(minor_units(currency))).toNumber();
  if (!Number.isSafeInteger(minor)) throw new RangeError(`${text} ${currency} is out of range`);
  return minor;
}

export function text_of_minor(minor: number, currency: string): string {
  if (!Number.isSafeInteger(minor)) throw new RangeError(`${minor} is not an integer amount`);
  const digits = minor_units(currency);
  const text = minor_units_text(BigInt(Math.abs(minor)), digits);
  return minor < 0 ? `-${text}` : text;
}

/** A VAT rate as canonical text ("21", "5.5", "0"): the key of a VAT breakdown. */
export function vat_key(percent: string): string {
  return new Money(percent).toString();
}

export interface VatSubtotal {
  vat_percent: string;
  net_minor: number;
  vat_minor: number;
}

export interface DocumentTotals {
  vat: VatSubtotal[];
  net_minor: number;
  vat_minor: number;
  total_minor: number;
}

/**
 * The rounding rule of every invoice and credit note (EN 16931: BT-131 line net amounts are in the
 * document's minor units; BT-117 VAT category tax amount = rate x BT-116, the sum of the line nets
 * of that rate, rounded once; BT-112 total = sum of nets BT-109 + total VAT BT-110). Rounding is
 * ROUND_HALF_UP, as core/money.ts rounds every amount. Written once, here.
 */
export function document_totals(
  lines: readonly { net_minor: number; vat_percent: string }[],
  currency: string,
): DocumentTotals {
  const by_rate = new Map<string, number>();
  for (const line of lines) {
    if (!Number.isSafeInteger(line.net_minor))
      throw new RangeError(`line net ${line.net_minor} is not minor units`);
    const key = vat_key(line.vat_percent);
    by_rate.set(key, (by_rate.get(key) ?? 0) + line.net_minor);
  }
  const scale = new Money(10).pow(minor_units(currency));
  const vat: VatSubtotal[] = [...by_rate.entries()]
    .sort((a, b) => new Money(a[0]).cmp(new Money(b[0])))
    .map(([vat_percent, net_minor]) => {
      const tax = new Money(net_minor).div(scale).mul(vat_percent).div(100);
      return { vat_percent, net_minor, vat_minor: minor_of(tax.toString(), currency) };
    });
  const net_minor = vat.reduce((sum, v) => sum + v.net_minor, 0);
  const vat_minor = vat.reduce((sum, v) => sum + v.vat_minor, 0);
  return { vat, net_minor, vat_minor, total_minor: net_minor + vat_minor };
}

/** The monthly fee for `days_active` of a period of `days_in_period` days, in minor units. */
export function prorated_fee_minor(
  monthly_fee_minor: number,
  days_active: number,
  days_in_period: number,
  currency: string,
): number {
  if (days_active >= days_in_period) return monthly_fee_minor;
  const scale = new Money(10).pow(minor_units(currency));
  const fee = new Money(monthly_fee_minor).mul(days_active).div(days_in_period).div(scale);
  return minor_of(fee.toString(), currency);
}

/**
 * `total_minor` split over parts in proportion to `weights_minor` (largest remainder: each part
 * gets the floor of its exact share, the minor units left go one each to the largest remainders,
 * ties to the earlier part), so the parts always add up to the total exactly. Weights are
 * non-negative; with all weights 0 the whole total goes to the first part.
 */
export function split_minor(total_minor: number, weights_minor: readonly number[]): number[] {
  if (!Number.isSafeInteger(total_minor)) throw new RangeError(`${total_minor} is not minor units`);
  if (weights_minor.length === 0) throw new RangeError('nothing to split over');
  if (weights_minor.some((w) => !Number.isSafeInteger(w) || w < 0))
    throw new RangeError('weights must be non-negative minor units');
  const sign = total_minor < 0 ? -1n : 1n;
  const total = BigInt(Math.abs(total_minor));
  const weights = weights_minor.map((w) => BigInt(w));
  const weight_sum = weights.reduce((a, b) => a + b, 0n);
  if (weight_sum === 0n) return weights_minor.map((_, i) => (i === 0 ? total_minor : 0));
  const shares = weights.map((w, order) => ({
    order,
    floor: (total * w) / weight_sum,
    remainder: (total * w) % weight_sum,
  }));
  let left = total - shares.reduce((sum, s) => sum + s.floor, 0n);
  const by_remainder = [...shares].sort((a, b) =>
    a.remainder === b.remainder ? a.order - b.order : a.remainder > b.remainder ? -1 : 1,
  );
  for (const share of by_remainder) {
    if (left === 0n) break;
    share.floor += 1n;
    left -= 1n;
  }
  return shares.map((s) => Number(sign * s.floor));
}
