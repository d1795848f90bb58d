/**
 * The charger's clock, one rule for the start, every sample and the stop of a session.
 *
 * A charger timestamp is trusted when it lies in [receipt - clock_behind_ms_max,
 * receipt + clock_skew_ms_max]: a little ahead of the server (clock skew), or behind it by as long
 * as a charger may queue messages while offline. Outside that window the clock is wrong (an RTC
 * reset to 2000, a clock set a year ahead).
 *
 * - At the start: an untrusted start timestamp is replaced by the receipt time, and the difference
 *   (receipt - charger time) becomes the session's clock offset, added to every later charger
 *   timestamp of the session: a charger whose clock is wrong is usually wrong by the same amount
 *   all session long, so its intervals keep their lengths.
 * - Every later timestamp (samples, the stop), once shifted by the offset, is checked by the same
 *   window and replaced by its receipt time when it still falls outside.
 * No reading is dropped and no session is skipped because of the clock: each such correction is
 * counted as the anomaly `clock_corrected`.
 */
export interface ClockRules {
  clock_skew_ms_max: number;
  clock_behind_ms_max: number;
}

export function trusted(at_ms: number, received_at_ms: number, rules: ClockRules): boolean {
  return (
    at_ms <= received_at_ms + rules.clock_skew_ms_max && at_ms >= received_at_ms - rules.clock_behind_ms_max
  );
}

/** The session's start instant and clock offset from the charger's start timestamp. */
export function session_clock(
  started_at_ms_charger: number,
  received_at_ms: number,
  rules: ClockRules,
): { started_at_ms: number; clock_offset_ms: number; corrected: boolean } {
  if (trusted(started_at_ms_charger, received_at_ms, rules)) {
    return { started_at_ms: started_at_ms_charger, clock_offset_ms: 0, corrected: false };
  }
  return {
    started_at_ms: received_at_ms,
    clock_offset_ms: received_at_ms - started_at_ms_charger,
    corrected: true,
  };
}

/** A later charger timestamp of the session on the server's clock. */
export function session_time(
  at_ms_charger: number,
  received_at_ms: number,
  clock_offset_ms: number,
  rules: ClockRules,
): { at_ms: number; corrected: boolean } {
  const shifted = at_ms_charger + clock_offset_ms;
  return trusted(shifted, received_at_ms, rules)
    ? { at_ms: shifted, corrected: false }
    : { at_ms: received_at_ms, corrected: true };
}
