/**
 * Wall-clock time at a location. OCPI 2.2.1 evaluates time and date restrictions in the local
 * time of the Location's `time_zone` (mod_tariffs 11.4.7, TariffRestrictions), so every instant is
 * converted with Intl, which knows the DST rules of the IANA zone.
 */
export interface LocalTime {
  /** YYYY-MM-DD in the location's zone. */
  date: string;
  /** Minutes since local midnight, 0..1439. */
  minute_of_day: number;
  /** MONDAY..SUNDAY, as OCPI DayOfWeek. */
  day_of_week: string;
}

const formatters_max = 64;
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter_for(time_zone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(time_zone);
  if (formatter === undefined) {
    // Throws RangeError for an unknown zone: a bad location is an input error, not a default to UTC.
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone: time_zone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      weekday: 'long',
      hourCycle: 'h23',
    });
    if (formatters.size >= formatters_max) formatters.clear();
    formatters.set(time_zone, formatter);
  }
  return formatter;
}

/**
 * UTC offsets of IANA zones are multiples of 15 minutes and change at local wall-clock times on
 * those multiples, so no offset change falls inside a 15-minute block of UTC time. Within a
 * block, local time is the block's start plus the minutes elapsed: one Intl call per block.
 */
const block_ms = 15 * 60_000;
const blocks_cached_max = 100_000;
const blocks = new Map<string, LocalTime>();

export function local_time(at_ms: number, time_zone: string): LocalTime {
  const block_start_ms = Math.floor(at_ms / block_ms) * block_ms;
  const key = `${time_zone}\u0000${block_start_ms}`;
  let base = blocks.get(key);
  if (base === undefined) {
    base = local_time_intl(block_start_ms, time_zone);
    if (blocks.size >= blocks_cached_max) blocks.clear();
    blocks.set(key, base);
  }
  const minute_of_day = base.minute_of_day + Math.floor((at_ms - block_start_ms) / 60_000);
  // Past local midnight the date and weekday change too: ask Intl for that (rare) instant.
  if (minute_of_day >= 1440) return local_time_intl(at_ms, time_zone);
  return { date: base.date, minute_of_day, day_of_week: base.day_of_week };
}

function local_time_intl(at_ms: number, time_zone: string): LocalTime {
  const parts: Record<string, string> = {};
  for (const part of formatter_for(time_zone).formatToParts(new Date(at_ms))) parts[part.type] = part.value;
  const hour = Number(parts.hour);
  const minute = Number(parts.minute);
  return {
    date: `${parts.year}-${parts.month}-${parts.day}`,
    minute_of_day: hour * 60 + minute,
    day_of_week: String(parts.weekday).toUpperCase(),
  };
}
