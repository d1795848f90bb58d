import { FieldError } from '../core/field-error.js';

/** A billing period: a calendar month in the invoicing legal entity's time zone, `YYYY-MM`. */
export interface PeriodBounds {
  period: string;
  /** First instant of the month, local midnight, epoch ms (inclusive). */
  start_ms: number;
  /** First instant of the next month (exclusive). */
  end_ms: number;
  days: number;
  /** First and last day as YYYY-MM-DD. */
  first_day: string;
  last_day: string;
}

const period_pattern = /^(\d{4})-(0[1-9]|1[0-2])$/;

export function parse_period(value: unknown, field = 'period'): { year: number; month: number } {
  if (typeof value !== 'string' || !period_pattern.test(value))
    throw new FieldError(field, 'must be YYYY-MM');
  const [, year, month] = period_pattern.exec(value)!;
  return { year: Number(year), month: Number(month) };
}

/** Formatters per zone (making one costs far more than using it); zones are few. */
const formatters_max = 1000;
const offset_formatters = new Map<string, Intl.DateTimeFormat>();
const day_formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(
  cache: Map<string, Intl.DateTimeFormat>,
  time_zone: string,
  make: () => Intl.DateTimeFormat,
) {
  let f = cache.get(time_zone);
  if (f === undefined) {
    if (cache.size >= formatters_max) cache.clear();
    f = make();
    cache.set(time_zone, f);
  }
  return f;
}

/** Offset of `time_zone` from UTC at instant `at_ms`, in ms. */
function zone_offset_ms(at_ms: number, time_zone: string): number {
  const parts = formatter(
    offset_formatters,
    time_zone,
    () =>
      new Intl.DateTimeFormat('en-US', {
        timeZone: time_zone,
        hourCycle: 'h23',
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
        hour: '2-digit',
        minute: '2-digit',
        second: '2-digit',
      }),
  ).formatToParts(new Date(at_ms));
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value);
  const local = Date.UTC(
    get('year'),
    get('month') - 1,
    get('day'),
    get('hour'),
    get('minute'),
    get('second'),
  );
  return local - Math.floor(at_ms / 1000) * 1000;
}

/** The instant of local midnight starting the given day (months may overflow: Date.UTC normalizes). */
export function local_midnight_ms(year: number, month: number, day: number, time_zone: string): number {
  const guess = Date.UTC(year, month - 1, day);
  let at = guess - zone_offset_ms(guess, time_zone);
  // Around a DST change the offset at the guess differs from the offset at the answer: one more step.
  at = guess - zone_offset_ms(at, time_zone);
  return at;
}

export function period_bounds(period: string, time_zone: string): PeriodBounds {
  const { year, month } = parse_period(period);
  const days = new Date(Date.UTC(year, month, 0)).getUTCDate();
  const mm = String(month).padStart(2, '0');
  return {
    period,
    start_ms: local_midnight_ms(year, month, 1, time_zone),
    end_ms: local_midnight_ms(year, month + 1, 1, time_zone),
    days,
    first_day: `${year}-${mm}-01`,
    last_day: `${year}-${mm}-${String(days).padStart(2, '0')}`,
  };
}

/** The local calendar day of an instant, YYYY-MM-DD. */
export function local_date(at_ms: number, time_zone: string): string {
  return formatter(
    day_formatters,
    time_zone,
    () =>
      new Intl.DateTimeFormat('en-CA', {
        timeZone: time_zone,
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
      }),
  ).format(new Date(at_ms));
}

/** Whole days from `from` to `to` (YYYY-MM-DD, `to` exclusive). */
export function days_between(from: string, to: string): number {
  return Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000);
}

export function add_days(day: string, days: number): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);
}
