import { Decimal } from 'decimal.js';

/**
 * Register continuity: which energy register readings a session is billed from. The meter's
 * register only counts up, and no connector delivers more than its maximum power. A reading that
 * breaks either rule is a suspect: it is held back, unpriced, until the next reading says what it
 * was. Energy the meter did not measure is never billed.
 *
 * With P the last accepted reading, Q the one accepted before it, and S a suspect:
 * - plausible(A, B): B >= A and B - A <= floor(power_w_max x (B.t - A.t)) + B's resolution.
 * - A reading r with plausible(P, r) is accepted. Otherwise it becomes the suspect (low when
 *   r < P, high when it rose faster than any plausible power).
 * - The next reading n decides:
 *   - plausible(P, n): S was a glitch (a single 0, a spike); S is dropped (`register_glitch`).
 *   - plausible(S, n): the meter really goes on from S.
 *     - before any reading of the session was accepted: the start register (OCPP 1.6
 *       meterStart, e.g. 0 after a charger rebooted offline) disagrees with the charger's own
 *       readings; the readings win, the session starts at S and nothing before S is billed
 *       (`meter_start_mismatch`);
 *     - S low and plausible(Q, S): P itself was a spike within the bound; the series goes on from
 *       S, the billed energy stays at P until the register passes it (`register_spike`);
 *     - S low otherwise: a reset or a replaced meter, confirmed; the session continues from the
 *       energy at P, the energy between P and the reset being unmeasured (`register_reset`);
 *     - S high: a jump no plausible power explains, confirmed by what follows; only
 *       floor(power_w_max x (S.t - P.t)) of it is billed, the rest is not, and the session is
 *       flagged for review (`implausible_energy`, and `implausible_energy_wh` the Wh not billed).
 *   - otherwise S is dropped as a glitch and n is judged against P in its place.
 * - At the stop, a suspect nothing confirmed: a high one is bounded as above, a low one is dropped;
 *   either way the session is flagged for review (`unconfirmed_reading`).
 * The effective register is the raw one plus an offset, in exact decimal arithmetic.
 */
export interface RegisterPoint {
  at_ms: number;
  raw_wh: number;
  resolution_wh: number;
  power_w?: number;
  current_a?: number;
}

export interface ContinuityState {
  /** P: the last accepted reading; null until a start register or first reading is known. */
  register: { at_ms: number; raw_wh: number } | null;
  /** Q: the reading accepted before P. */
  before: { at_ms: number; raw_wh: number } | null;
  /** Effective register = raw + offset, Wh. */
  offset_wh: number;
  suspect: (RegisterPoint & { kind: 'low' | 'high' }) | null;
  /** Readings accepted after the start register. */
  accepted: number;
  /** The register the session is billed from at its start (after a meter_start_mismatch, S). */
  start_raw_wh: number | null;
  review: boolean;
}

/** A reading to price, with its effective register. */
export interface AcceptedReading {
  point: RegisterPoint;
  energy_wh: number;
}

export type CountAnomaly = (anomaly: string, n?: number) => void;

export function new_continuity(start: { at_ms: number; raw_wh: number } | null): ContinuityState {
  return {
    register: start,
    before: null,
    offset_wh: 0,
    suspect: null,
    accepted: 0,
    start_raw_wh: start?.raw_wh ?? null,
    review: false,
  };
}

function power_bound_wh(from_ms: number, to_ms: number, power_w_max: number): number {
  return Math.floor((power_w_max * Math.max(0, to_ms - from_ms)) / 3_600_000);
}

function plausible(from: { at_ms: number; raw_wh: number }, to: RegisterPoint, power_w_max: number): boolean {
  if (to.raw_wh < from.raw_wh) return false;
  return to.raw_wh - from.raw_wh <= power_bound_wh(from.at_ms, to.at_ms, power_w_max) + to.resolution_wh;
}

function effective(state: ContinuityState, raw_wh: number): number {
  return state.offset_wh === 0 ? raw_wh : new Decimal(raw_wh).plus(state.offset_wh).toNumber();
}

function shift(state: ContinuityState, by_wh: Decimal.Value): void {
  state.offset_wh = new Decimal(state.offset_wh).plus(by_wh).toNumber();
}

function accept(state: ContinuityState, point: RegisterPoint, out: AcceptedReading[]): void {
  state.before = state.register;
  state.register = { at_ms: point.at_ms, raw_wh: point.raw_wh };
  state.accepted += 1;
  out.push({ point, energy_wh: effective(state, point.raw_wh) });
}

/** The readings to price after one more reading (in time order after the last accepted one). */
export function take_reading(
  state: ContinuityState,
  point: RegisterPoint,
  power_w_max: number,
  count: CountAnomaly,
): AcceptedReading[] {
  const out: AcceptedReading[] = [];
  const p = state.register;
  if (p === null) {
    // No start register: the first reading is the baseline (the energy before it is unknown).
    state.register = { at_ms: point.at_ms, raw_wh: point.raw_wh };
    state.start_raw_wh = point.raw_wh;
    out.push({ point, energy_wh: effective(state, point.raw_wh) });
    return out;
  }
  const s = state.suspect;
  if (s !== null && point.at_ms < s.at_ms) {
    // An earlier reading than the suspect: judge it first, then the suspect again after it.
    state.suspect = null;
    out.push(...take_reading(state, point, power_w_max, count));
    out.push(...take_reading(state, s, power_w_max, count));
    return out;
  }
  if (plausible(p, point, power_w_max)) {
    if (s !== null) count('register_glitch');
    state.suspect = null;
    accept(state, point, out);
    return out;
  }
  if (s !== null && plausible(s, point, power_w_max)) {
    confirm(state, s, power_w_max, count, out);
    accept(state, point, out);
    return out;
  }
  if (s !== null) count('register_glitch');
  state.suspect = { ...point, kind: point.raw_wh < p.raw_wh ? 'low' : 'high' };
  return out;
}

/** The suspect S is confirmed by the reading after it: the meter goes on from S. */
function confirm(
  state: ContinuityState,
  s: RegisterPoint & { kind: 'low' | 'high' },
  power_w_max: number,
  count: CountAnomaly,
  out: AcceptedReading[],
): void {
  const p = state.register!;
  state.suspect = null;
  if (state.accepted === 0) {
    count('meter_start_mismatch');
    shift(state, new Decimal(p.raw_wh).minus(s.raw_wh));
    state.start_raw_wh = s.raw_wh;
  } else if (s.kind === 'low') {
    const q = state.before;
    if (q !== null && plausible(q, s, power_w_max)) {
      count('register_spike');
    } else {
      count('register_reset');
      shift(state, new Decimal(p.raw_wh).minus(s.raw_wh));
    }
  } else {
    bound_jump(state, s, power_w_max, count);
  }
  accept(state, s, out);
}

function bound_jump(
  state: ContinuityState,
  s: RegisterPoint,
  power_w_max: number,
  count: CountAnomaly,
): void {
  const p = state.register!;
  const excess_wh = new Decimal(s.raw_wh)
    .minus(p.raw_wh)
    .minus(power_bound_wh(p.at_ms, s.at_ms, power_w_max));
  if (excess_wh.lte(0)) return;
  count('implausible_energy');
  count('implausible_energy_wh', Math.round(excess_wh.toNumber())); // whole Wh
  shift(state, excess_wh.neg());
  state.review = true;
}

/** At the stop: a suspect that nothing confirmed. */
export function finish_readings(
  state: ContinuityState,
  power_w_max: number,
  count: CountAnomaly,
): AcceptedReading[] {
  const s = state.suspect;
  if (s === null) return [];
  state.suspect = null;
  state.review = true;
  count('unconfirmed_reading');
  if (s.kind === 'low') return [];
  const out: AcceptedReading[] = [];
  bound_jump(state, s, power_w_max, count);
  accept(state, s, out);
  return out;
}
