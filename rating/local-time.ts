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
 * block, local time is the block's start plus the minutes elapsed: one Intl call per block, and
 * one more for the minutes of a block that lie past local midnight (the next local date).
 */
export const block_ms = 15 * 60_000;
const blocks_cached_max = 100_000;

/** Local time at the start of a block, and the local date of its minutes past local midnight. */
export interface LocalBlock {
  start: LocalTime;
  /** Intl at the first minute past local midnight, when the block has one (filled on first use). */
  next_day: LocalTime | undefined;
}

/** Blocks by their number (start / block_ms, a small integer), one map per zone; the engine holds on to its zone's map. */
export type ZoneBlocks = Map<number, LocalBlock>;
const zones = new Map<string, ZoneBlocks>();
let blocks_cached = 0;

export function zone_blocks(time_zone: string): ZoneBlocks {
  let blocks = zones.get(time_zone);
  if (blocks === undefined) {
    formatter_for(time_zone); // an unknown zone throws here
    if (zones.size >= formatters_max) {
      // Raters may still hold a zone's map: empty it too, so the count of cached blocks holds.
      for (const zone of zones.values()) zone.clear();
      zones.clear();
      blocks_cached = 0;
    }
    blocks = new Map();
    zones.set(time_zone, blocks);
  }
  return blocks;
}

/** The block holding `block_start_ms` (a multiple of block_ms). */
export function local_block(blocks: ZoneBlocks, block_start_ms: number, time_zone: string): LocalBlock {
  const key = block_start_ms / block_ms;
  let block = blocks.get(key);
  if (block === undefined) {
    if (blocks_cached >= blocks_cached_max) {
      for (const zone of zones.values()) zone.clear();
      blocks_cached = 0;
    }
    block = { start: local_time_intl(block_start_ms, time_zone), next_day: undefined };
    blocks.set(key, block);
    blocks_cached++;
  }
  return block;
}

/**
 * The local date of the minutes of `block` past local midnight. Asked at `at_ms`, the first such
 * instant asked for: with the offset constant in the block, every such minute has that date.
 */
export function next_day_of(block: LocalBlock, at_ms: number, time_zone: string): LocalTime {
  block.next_day ??= local_time_intl(at_ms, time_zone);
  return block.next_day;
}

export function local_time(at_ms: number, time_zone: string): LocalTime {
  const block_start_ms = Math.floor(at_ms / block_ms) * block_ms;
  const block = local_block(zone_blocks(time_zone), block_start_ms, time_zone);
  const base = block.start;
  const minute_of_day = base.minute_of_day + Math.floor((at_ms - block_start_ms) / 60_000);
  if (minute_of_day >= 1440) {
    // Past local midnight the date and weekday change too.
    const next = next_day_of(block, at_ms, time_zone);
    return { date: next.date, minute_of_day: minute_of_day - 1440, day_of_week: next.day_of_week };
  }
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
