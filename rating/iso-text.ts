/** CDR instants as text (OCPI DateTime, RFC 3339 in UTC), without going through Date for each one. */

const two_digits = Array.from({ length: 100 }, (_, n) => String(n).padStart(2, '0'));
const day_ms = 86_400_000;

/**
 * RFC 3339 text of an instant in UTC, as Date.toISOString() without a ".000" of whole seconds,
 * e.g. 2026-06-01T12:01:30.001Z. The civil date comes from the day number by arithmetic
 * (H. Hinnant, "chrono-Compatible Low-Level Date Algorithms", civil_from_days), so every call
 * runs the same code; years outside 1000..9999 are left to Date.
 */
export function iso(at_ms: number): string {
  const days = Math.floor(at_ms / day_ms);
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  if (year < 1000 || year > 9999) return new Date(at_ms).toISOString().replace('.000Z', 'Z');
  const ms_of_day = at_ms - days * day_ms;
  const seconds = Math.floor(ms_of_day / 1000);
  const ms = ms_of_day - seconds * 1000;
  const text = `${year}-${two_digits[month]}-${two_digits[day]}T${two_digits[Math.floor(seconds / 3600)]}:${two_digits[Math.floor(seconds / 60) % 60]}:${two_digits[seconds % 60]}`;
  if (ms === 0) return `${text}Z`;
  return `${text}.${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z`;
}
