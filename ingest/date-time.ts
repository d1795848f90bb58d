/**
 * The JSON Schema "date-time" format (RFC 3339 section 5.6), exactly as ajv-formats' full mode
 * decides it, without its allocations: ajv-formats splits the text and runs two regex matches
 * whose match arrays are garbage for every timestamp of every meter value. This one runs one
 * regex test (no match array) and reads the digits in place.
 *
 * Rules kept from ajv-formats: the date and the time may be separated by "T", "t" or any white
 * space; the time zone is required ("Z", "z", "+HH", "+HHMM" or "+HH:MM"); a leap second is
 * allowed only when it falls at 23:59:60 UTC.
 */
const shape = /^\d{4}-\d\d-\d\d[t\s]\d\d:\d\d:\d\d(?:\.\d+)?(?:z|[+-]\d\d(?::?\d\d)?)$/i;
const days_in_month = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function digits(s: string, at: number, n: number): number {
  let v = 0;
  for (let i = at; i < at + n; i++) v = v * 10 + s.charCodeAt(i) - 48;
  return v;
}

function is_digit(code: number): boolean {
  return code >= 48 && code <= 57;
}

function is_leap_year(year: number): boolean {
  return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
}

export function is_date_time(s: string): boolean {
  if (!shape.test(s)) return false;
  const year = digits(s, 0, 4);
  const month = digits(s, 5, 2);
  const day = digits(s, 8, 2);
  if (month < 1 || month > 12 || day < 1) return false;
  if (day > (month === 2 && is_leap_year(year) ? 29 : days_in_month[month]!)) return false;
  const hour = digits(s, 11, 2);
  const minute = digits(s, 14, 2);
  // Whole seconds decide: a fraction never moves 59.x to 60 or 60.x to 61.
  const second = digits(s, 17, 2);
  // The zone follows the fraction's digits.
  let at = 19;
  if (s.charCodeAt(at) === 46 /* . */) {
    at++;
    while (is_digit(s.charCodeAt(at))) at++;
  }
  let sign = 1;
  let tz_hour = 0;
  let tz_minute = 0;
  const zone = s.charCodeAt(at);
  if (zone === 43 /* + */ || zone === 45 /* - */) {
    sign = zone === 45 ? -1 : 1;
    tz_hour = digits(s, at + 1, 2);
    const rest = s.length - (at + 3);
    if (rest === 2) tz_minute = digits(s, at + 3, 2);
    else if (rest === 3) tz_minute = digits(s, at + 4, 2);
  }
  if (tz_hour > 23 || tz_minute > 59) return false;
  if (hour <= 23 && minute <= 59 && second <= 59) return true;
  // A leap second: 23:59:60 once the offset is taken off.
  const utc_minute = minute - tz_minute * sign;
  const utc_hour = hour - tz_hour * sign - (utc_minute < 0 ? 1 : 0);
  return (utc_hour === 23 || utc_hour === -1) && (utc_minute === 59 || utc_minute === -1) && second <= 60;
}
