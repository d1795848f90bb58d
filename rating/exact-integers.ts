/**
 * Integer arithmetic of the pricing engine on JS numbers, exact while values stay below 2^52 and
 * moving to BigInt where a product could exceed that. No result is ever a rounded double.
 */

/** Products below this are exact in a double, with room for one more addition. */
const exact_max = 2 ** 52;
/** Below this a divisor's square (a remainder times a multiplier) stays exact. */
const divisor_small_max = 2 ** 26;

/** floor(p / d) with its remainder, for non-negative safe integers (the double quotient corrected). */
export function floor_div(p: number, d: number): number {
  let q = Math.floor(p / d);
  const r = p - q * d;
  if (r < 0) q--;
  else if (r >= d) q++;
  return q;
}

/** ROUND_HALF_UP of p / d, p and d non-negative safe integers, d > 0. */
export function div_half_up(p: number, d: number): number {
  const q = floor_div(p, d);
  return 2 * (p - q * d) >= d ? q + 1 : q;
}

/** ROUND_HALF_UP of a x k / d for non-negative integers (a < 2^53, k <= d). */
export function mul_div_half_up(a: number, k: number, d: number): number {
  const product = a * k;
  if (product < exact_max) return div_half_up(product, d);
  if (d < divisor_small_max) {
    // a x k / d = k x q + k x r / d with a = q x d + r, and k x r < d^2 stays exact.
    const q = floor_div(a, d);
    return k * q + div_half_up((a - q * d) * k, d);
  }
  const big_d = BigInt(d);
  return Number((2n * BigInt(a) * BigInt(k) + big_d) / (2n * big_d));
}

/** v rounded up to a whole number of steps (non-negative safe integers, result below 2^53). */
export function ceil_to_step(v: number, step: number): number {
  const q = floor_div(v, step);
  return (q * step === v ? q : q + 1) * step;
}

/** The exact product a x b x c of non-negative safe integers: a number when below 2^52, else a BigInt. */
export function exact_product(a: number, b: number, big_b: bigint, c = 1, big_c = 1n): number | bigint {
  const ab = a * b;
  if (ab < exact_max) {
    const abc = ab * c;
    if (abc < exact_max) return abc;
  }
  return BigInt(a) * big_b * big_c;
}

/** decimal.js keeps 60 significant digits (core/money.ts) and prints plain text for exponents in (-30, 40). */
const significant_digits = 60;
const plain_exponent_min = -29;
const plain_exponent_max = 39;

const digit_text = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
/** Each digit 60 times, to cut repeating decimals from. */
const repeated_text = digit_text.map((d) => d.repeat(significant_digits));

/** The digit string plus one, e.g. "199" -> "200"; all nines grow a digit: "99" -> "100". */
function increment(digits: string): string {
  let i = digits.length - 1;
  while (i >= 0 && digits[i] === '9') i--;
  if (i < 0) return `1${'0'.repeat(digits.length)}`;
  return digits.slice(0, i) + String(Number(digits[i]) + 1) + '0'.repeat(digits.length - 1 - i);
}

/**
 * n / 10^exponent for a non-negative safe integer n: at most 16 digits, so never rounded. Trailing
 * zeros go first, in chunks of 8, 4, 2 and 1 (at most 15 of them below 2^53).
 */
function decimal_text(n: number, exponent: number): string | undefined {
  if (n === 0) return '0';
  if (exponent >= 8 && n % 1e8 === 0) {
    n /= 1e8;
    exponent -= 8;
  }
  if (exponent >= 4 && n % 1e4 === 0) {
    n /= 1e4;
    exponent -= 4;
  }
  if (exponent >= 2 && n % 100 === 0) {
    n /= 100;
    exponent -= 2;
  }
  if (exponent >= 1 && n % 10 === 0) {
    n /= 10;
    exponent -= 1;
  }
  const digits = String(n);
  if (exponent === 0) return digits;
  const point = digits.length - exponent;
  if (point - 1 < plain_exponent_min) return undefined;
  if (point <= 0) return `0.${'0'.repeat(-point)}${digits}`;
  return `${digits.slice(0, point)}.${digits.slice(point)}`;
}

/**
 * numerator / (divisor x 10^exponent) as decimal.js prints the same quotient: 60 significant
 * digits, ROUND_HALF_UP, no trailing zeros. undefined when decimal.js would print it with an
 * exponent (below 1e-29 or from 1e40): the caller asks decimal.js.
 */
export function quotient_text(
  numerator: number | bigint,
  divisor: number,
  exponent: number,
): string | undefined {
  if (divisor === 1 && typeof numerator === 'number') return decimal_text(numerator, exponent);
  let integer: string;
  let remainder: number;
  if (typeof numerator === 'number') {
    if (divisor === 1) {
      integer = String(numerator);
      remainder = 0;
    } else {
      const q = floor_div(numerator, divisor);
      integer = String(q);
      remainder = numerator - q * divisor;
    }
  } else {
    const big_divisor = BigInt(divisor);
    const q = numerator / big_divisor;
    integer = q.toString();
    remainder = Number(numerator - q * big_divisor);
  }
  // value = 0.digits x 10^point, digits without leading zeros.
  let digits = integer === '0' ? '' : integer;
  let point = digits.length;
  while (remainder !== 0 && digits.length <= significant_digits) {
    const shifted = remainder * 10;
    const digit = Math.floor(shifted / divisor);
    const next = shifted - digit * divisor;
    if (digits.length === 0 && digit === 0) point--;
    else if (next === remainder && digits.length < significant_digits) {
      // The same remainder again: this digit (1..8) repeats for ever (n / 9, n / 36). The 61st
      // digit is that digit too: from 5 it rounds the 60th up, without a carry.
      const fill = significant_digits - digits.length;
      digits +=
        digit >= 5
          ? repeated_text[digit]!.slice(0, fill - 1) + digit_text[digit + 1]!
          : repeated_text[digit]!.slice(0, fill);
      return plain_text(digits, point - exponent);
    } else digits += digit_text[digit]!;
    remainder = next;
  }
  if (digits.length === 0) return '0';
  if (digits.length > significant_digits) {
    const round_up = digits.charCodeAt(significant_digits) >= 53; // '5'
    const kept = digits.slice(0, significant_digits);
    const rounded = round_up ? increment(kept) : kept;
    if (rounded.length > kept.length) point++;
    digits = rounded.slice(0, significant_digits);
  }
  let end = digits.length;
  while (end > 0 && digits.charCodeAt(end - 1) === 48) end--; // '0'
  return plain_text(digits.slice(0, end), point - exponent);
}

/** 0.digits x 10^point as plain text; undefined where decimal.js prints an exponent. */
function plain_text(digits: string, point: number): string | undefined {
  const e = point - 1;
  if (e < plain_exponent_min || e > plain_exponent_max) return undefined;
  if (point <= 0) return `0.${'0'.repeat(-point)}${digits}`;
  if (point >= digits.length) return digits + '0'.repeat(point - digits.length);
  return `${digits.slice(0, point)}.${digits.slice(point)}`;
}
