import { Decimal } from 'decimal.js';
import type { MeterValue, OcppEvent } from '../schemas/events.js';
import { session_time } from './clock.js';
import {
  type ContinuityState,
  finish_readings,
  new_continuity,
  type RegisterPoint,
  take_reading,
} from './continuity.js';
import {
  type CdrPrice,
  type MeterSample,
  type RatedSession,
  type RaterState,
  SessionRater,
} from './engine.js';
import type { Plan } from './plans.js';
import { type Reading, reading_of } from './readings.js';
import type { Tariff } from './tariff.js';

/**
 * One charging session as the rating service sees it: the pure reducer from a session's events to
 * its facts and prices. The same state and events always give the same new state and outputs, so a
 * redelivered batch rewrites identical rows, and live rating and re-rating (which replays the
 * facts live rating used, rating/rerate.ts) agree to the cent.
 *
 * The rules, each with tests in session.test.ts and session-rules.test.ts:
 * 1. Duplicates: an event batch already applied (stream sequence <= last_seq) changes nothing.
 * 2. Order: samples are applied in timestamp order; a sample older than the latest priced one
 *    (a late or out-of-order reading) is kept as evidence in meter_values but not priced again.
 *    Energy is never lost by this: the register is cumulative, so the next reading carries it.
 * 3. What a reading is: units, signed values, one location and the phases (rating/readings.ts).
 *    The first reading with a register fixes the session's location.
 * 4. Register continuity (rating/continuity.ts): glitches, spikes, confirmed resets and replaced
 *    meters, a start register that disagrees with the charger's readings, and energy no plausible
 *    power could deliver (bounded by the connector's maximum power, else `power_w_max`; the
 *    session is flagged for review).
 * 5. The charger's clock (rating/clock.ts): one window for the start, the samples and the stop;
 *    the start's correction is the session's clock offset.
 * 6. Charging vs parking: an interval is charging when energy flowed at an average power of at
 *    least `idle_power_w`. Otherwise the OCPP 2.0.1 chargingState in force decides when the
 *    charger sends one (Charging: charging; SuspendedEV, SuspendedEVSE, EVConnected, Idle:
 *    parking); else the connector status (SuspendedEV, SuspendedEVSE, Finishing, Available,
 *    Preparing: parking; Charging: charging); else a measured power of at least `idle_power_w`
 *    at the interval's start (meters with a coarse resolution).
 * 7. A stop without meter values is priced from the start and stop registers; a stop without a
 *    register ends at the last accepted reading.
 * 8. A missing stop: a session silent for `silence_ms` is closed provisionally (a rated version
 *    with provisional = 1); a stop arriving later writes the next version, final.
 */

export interface SessionMeta {
  session_id: string;
  charge_point_id: string;
  transaction_id: string;
  connector_id: number;
  evse_id: number;
  id_tag: string;
  payment_method: string;
  /** "CC*PID" of the token's issuing party when it is a roaming partner's token; '' otherwise. */
  party: string;
  /** The session's start on the server's clock (rule 5). */
  started_at_ms: number;
  /** As the charger sent it; -1 when it sent none. */
  meter_start_wh: number;
  tariff_id: string;
  tariff_version: number;
  time_zone: string;
  /** The driver's plan in force at the start; a later change of the plan never reprices it. */
  plan?: Plan;
  /** The station the charge point belongs to (operator assignment); the charge point id when unset. */
  station_id?: string;
  /** Added to every charger timestamp of the session (rule 5); 0 or absent when the clock is right. */
  clock_offset_ms?: number;
  /** The start timestamp as the charger sent it. */
  started_at_ms_charger?: number;
  /** The connector's maximum power (operator profile), the bound of rule 4. */
  power_w_max?: number;
  /** The token decision at the start (ingest), for the CDR's cdr_token and auth_method. */
  token_type?: string;
  contract_id?: string;
  group_id?: string;
  auth_method?: string;
  /** The connector status in force when the session started (for a re-rating to replay). */
  status_at_start?: string;
  /** OCPP 2.0.1 chargingState of the Started event; '' when none. */
  charging_state_at_start?: string;
  /** Rules the start needed (a wrong clock, a tariff not in force), counted into the anomalies. */
  start_anomalies?: string[];
}

export interface SessionState {
  meta: SessionMeta;
  /** Highest stream sequence applied. */
  last_seq: number;
  first: MeterSample;
  /** false until a register is known (OCPP 2.0.1 Started events may carry none). */
  baseline_known: boolean;
  rater: RaterState | null;
  /** Latest connector status (OCPP ChargePointStatus / ConnectorStatus). */
  status: string;
  /** Latest OCPP 2.0.1 chargingState of the transaction; '' when the charger sends none. */
  charging_state: string;
  /** Location of the session's register series (rule 3); '' until the first register. */
  series_location: string;
  continuity: ContinuityState;
  /** Raw register of the last accepted reading. */
  last_register_wh: number;
  /** Server time of the latest event of the session. */
  last_activity_ms: number;
  /** Rated versions written so far. */
  version: number;
  closed: 'open' | 'stopped' | 'provisional';
  stop_reason: string;
  /** Energy and cost so far, for the APIs (mirrors the last running cost). */
  energy_wh: number;
  running_cost: CdrPrice | null;
  /** Total of the latest rated version, for the difference the next version makes. */
  last_rated_total: CdrPrice | null;
  anomalies: Record<string, number>;
}

export interface SessionRules {
  idle_power_w: number;
  clock_skew_ms_max: number;
  /** How far behind the server a charger timestamp may be (offline queues) before it is wrong. */
  clock_behind_ms_max: number;
  silence_ms: number;
  /** Rule 4's bound when the connector's own maximum power is not known. */
  power_w_max: number;
}

export const default_session_rules: SessionRules = {
  idle_power_w: 50,
  clock_skew_ms_max: 5 * 60_000,
  clock_behind_ms_max: 31 * 24 * 3600_000,
  silence_ms: 24 * 3600_000,
  power_w_max: 500_000,
};

/** An event routed to a session, with the stream sequence of the message that carried it. */
export interface SessionEvent {
  seq: number;
  event: OcppEvent;
}

export interface RatedVersion {
  version: number;
  provisional: boolean;
  /** Total of the version this one replaces; null for the first. */
  previous_total: CdrPrice | null;
  stopped_at_ms: number;
  /** The registers the session is billed from, raw (as the meter shows them). */
  meter_start_wh: number;
  meter_stop_wh: number;
  stop_reason: string;
  /** Flagged for review (rule 4): some energy could not be billed as the meter reported it. */
  review: boolean;
  /**
   * Server time the version was rated at, from the facts (the stop's receipt, the sweep's clock),
   * so a redelivered batch rates it at the same instant: the CDR's last_updated.
   */
  last_updated_ms: number;
  anomalies: Record<string, number>;
  rated: RatedSession;
}

export interface SessionOutcome {
  state: SessionState;
  rated: RatedVersion[];
  /** The running cost after this batch, when the session is open and it changed. */
  running_cost: CdrPrice | null;
}

/** Statuses under which an interval without energy is parking (rule 6). */
const not_charging_statuses: ReadonlySet<string> = new Set([
  'SuspendedEV',
  'SuspendedEVSE',
  'Finishing',
  'Available',
  'Preparing',
]);

export { type Reading, reading_of };

export function new_session_state(meta: SessionMeta, seq: number, received_at_ms: number): SessionState {
  const known = meta.meter_start_wh >= 0;
  const start_wh = known ? meta.meter_start_wh : 0;
  const charging_state = meta.charging_state_at_start ?? '';
  return {
    meta,
    // The batch that started the session may carry its first readings too: they apply.
    last_seq: seq - 1,
    baseline_known: known,
    first: { at_ms: meta.started_at_ms, energy_wh: start_wh, charging: true },
    rater: null,
    status:
      meta.status_at_start === undefined || meta.status_at_start === '' ? 'Charging' : meta.status_at_start,
    charging_state,
    series_location: '',
    continuity: new_continuity(known ? { at_ms: meta.started_at_ms, raw_wh: start_wh } : null),
    last_register_wh: start_wh,
    last_activity_ms: received_at_ms,
    version: 0,
    closed: 'open',
    stop_reason: '',
    energy_wh: 0,
    running_cost: null,
    last_rated_total: null,
    anomalies: Object.fromEntries((meta.start_anomalies ?? []).map((a) => [a, 1])),
  };
}

/**
 * A state checkpointed by an earlier release (before rules 3-5 had their own state) resumes
 * with the register it had reached as its last accepted reading.
 */
export function upgraded_state(state: SessionState): SessionState {
  if (state.continuity !== undefined) return state;
  const legacy = state as SessionState & { register_offset_wh?: number };
  const at_ms = state.rater?.last.at_ms ?? state.first.at_ms;
  const continuity = new_continuity(state.baseline_known ? { at_ms, raw_wh: state.last_register_wh } : null);
  continuity.offset_wh = legacy.register_offset_wh ?? 0;
  continuity.accepted = state.rater === null ? 0 : 1;
  continuity.start_raw_wh = state.baseline_known ? state.first.energy_wh : null;
  return {
    ...state,
    continuity,
    charging_state: state.charging_state ?? '',
    series_location: state.series_location ?? '',
  };
}

function count(state: SessionState, anomaly: string, n = 1): void {
  state.anomalies[anomaly] = new Decimal(state.anomalies[anomaly] ?? 0).plus(n).toNumber();
}

/**
 * Applies a session's events of one batch to its state and returns the new state, the rated
 * versions to write and the running cost. `tariff` is the session's tariff version.
 */
export function apply_session_events(
  previous: SessionState,
  events: readonly SessionEvent[],
  tariff: Tariff,
  rules: SessionRules = default_session_rules,
): SessionOutcome {
  const state: SessionState = upgraded_state(structuredClone(previous));
  let rater = rater_of(state, tariff);
  const rated: RatedVersion[] = [];
  let changed = false;
  const power_w_max = state.meta.power_w_max ?? rules.power_w_max;
  const offset_ms = state.meta.clock_offset_ms ?? 0;
  const counter = (anomaly: string, n?: number) => count(state, anomaly, n);

  const price = (point: RegisterPoint, energy_wh: number): void => {
    const last = rater.last_sample;
    const sample: MeterSample = {
      at_ms: point.at_ms,
      energy_wh: Math.max(energy_wh, last.energy_wh),
      charging: true,
      ...(point.power_w === undefined ? {} : { power_w: point.power_w }),
      ...(point.current_a === undefined ? {} : { current_a: point.current_a }),
    };
    rater.add(sample, {
      charging: interval_charging(last, sample, state.status, state.charging_state, rules),
    });
    state.last_register_wh = point.raw_wh;
    changed = true;
  };

  /** Rules 2 and 4 for a reading on the server's clock. */
  const take_point = (point: RegisterPoint): void => {
    if (!state.baseline_known) {
      // No register at start: the first reading is the baseline (energy before it is unknown).
      count(state, 'missing_start_register');
      state.baseline_known = true;
      take_reading(state.continuity, point, power_w_max, counter);
      state.first = { at_ms: state.first.at_ms, energy_wh: point.raw_wh, charging: true };
      rater = new SessionRater(tariff, state.meta.time_zone, state.first, state.meta.plan);
      price(point, point.raw_wh);
      return;
    }
    if (point.at_ms < rater.last_sample.at_ms) {
      count(state, 'late_sample'); // rule 2
      return;
    }
    for (const accepted of take_reading(state.continuity, point, power_w_max, counter)) {
      price(accepted.point, accepted.energy_wh);
    }
  };

  const take = (reading: Reading, received_at_ms: number): void => {
    const time = session_time(reading.at_ms, received_at_ms, offset_ms, rules);
    if (time.corrected) count(state, 'clock_corrected');
    if (reading.energy_wh === undefined) return; // power-only readings inform nothing to price
    if (state.series_location === '') state.series_location = reading.location;
    take_point({
      at_ms: time.at_ms,
      raw_wh: reading.energy_wh,
      resolution_wh: reading.energy_resolution_wh ?? 1,
      ...(reading.power_w === undefined ? {} : { power_w: reading.power_w }),
      ...(reading.current_a === undefined ? {} : { current_a: reading.current_a }),
    });
  };

  /** The readings of an event's meter values in time order; the first register fixes the location. */
  const take_all = (meter_values: readonly MeterValue[], received_at_ms: number): void => {
    const ordered = [...meter_values].sort((a, b) => a.timestampMs - b.timestampMs);
    for (const mv of ordered) {
      take(reading_of(mv, state.series_location === '' ? undefined : state.series_location), received_at_ms);
    }
  };

  for (const { seq, event } of events) {
    if (seq <= previous.last_seq) continue; // rule 1
    state.last_seq = Math.max(state.last_seq, seq);
    state.last_activity_ms = Math.max(state.last_activity_ms, event.receivedAtMs);
    if (event.body === 'status') {
      state.status = event.status.status;
    } else if (event.body === 'meterValues') {
      // Readings first: the interval up to them was in the state in force before this event.
      take_all(event.meterValues.meterValues, event.receivedAtMs);
      const charging_state = event.meterValues.chargingState ?? '';
      if (charging_state !== '') state.charging_state = charging_state;
    } else if (event.body === 'stopped') {
      if (state.closed === 'stopped') continue;
      const stop = event.stopped;
      take_all(stop.transactionData, event.receivedAtMs);
      const stop_time = session_time(stop.timestampMs, event.receivedAtMs, offset_ms, rules);
      if (stop_time.corrected) count(state, 'clock_corrected');
      // A stop before the last reading (or the start) ends there.
      const stopped_at_ms = Math.max(stop_time.at_ms, rater.last_sample.at_ms);
      // OCPP 1.6 meterStop is an integer Wh register (resolution 1 Wh).
      if (stop.meterStopWh >= 0)
        take_point({ at_ms: stopped_at_ms, raw_wh: stop.meterStopWh, resolution_wh: 1 });
      for (const accepted of finish_readings(state.continuity, power_w_max, counter)) {
        price(accepted.point, accepted.energy_wh);
      }
      if (rater.last_sample.at_ms < stopped_at_ms) {
        rater.add({ ...rater.last_sample, at_ms: stopped_at_ms }, { charging: false });
      }
      state.closed = 'stopped';
      state.stop_reason = stop.reason;
      state.version += 1;
      const result = rater.result();
      rated.push(version_of(state, rater, result, false, stop.reason, event.receivedAtMs));
      state.last_rated_total = result.total_cost;
      changed = true;
    }
  }
  state.rater = rater.state();
  state.energy_wh = rater.last_sample.energy_wh - state.first.energy_wh;
  const running_cost = changed && state.closed === 'open' ? rater.running_cost() : null;
  if (running_cost !== null) state.running_cost = running_cost;
  return { state, rated, running_cost };
}

function version_of(
  state: SessionState,
  rater: SessionRater,
  result: RatedSession,
  provisional: boolean,
  stop_reason: string,
  last_updated_ms: number,
): RatedVersion {
  return {
    version: state.version,
    provisional,
    previous_total: state.last_rated_total,
    stopped_at_ms: rater.last_sample.at_ms,
    meter_start_wh: state.continuity.start_raw_wh ?? 0,
    meter_stop_wh: state.last_register_wh,
    stop_reason,
    review: state.continuity.review,
    last_updated_ms,
    anomalies: { ...state.anomalies },
    rated: result,
  };
}

/**
 * Rule 8: closes a session that has been silent too long, provisionally. Returns undefined when
 * the session is not due.
 */
export function close_if_silent(
  previous: SessionState,
  now_ms: number,
  tariff: Tariff,
  rules: SessionRules = default_session_rules,
): SessionOutcome | undefined {
  if (previous.closed !== 'open' || now_ms - previous.last_activity_ms < rules.silence_ms) return undefined;
  const state: SessionState = upgraded_state(structuredClone(previous));
  const rater = rater_of(state, tariff);
  state.closed = 'provisional';
  state.version += 1;
  const result = rater.result();
  const version = version_of(state, rater, result, true, 'Provisional', now_ms);
  state.last_rated_total = result.total_cost;
  return { state, running_cost: null, rated: [version] };
}

function rater_of(state: SessionState, tariff: Tariff): SessionRater {
  return state.rater === null
    ? new SessionRater(tariff, state.meta.time_zone, state.first, state.meta.plan)
    : SessionRater.from_state(tariff, state.meta.time_zone, state.first, state.rater, state.meta.plan);
}

/** Rule 6. */
export function interval_charging(
  a: MeterSample,
  b: MeterSample,
  status: string,
  charging_state: string,
  rules: SessionRules,
): boolean {
  const dt_ms = b.at_ms - a.at_ms;
  const d_wh = b.energy_wh - a.energy_wh;
  if (dt_ms <= 0) return d_wh > 0 || a.charging;
  const average_w = (d_wh * 3_600_000) / dt_ms;
  if (average_w >= rules.idle_power_w) return true;
  // OCPP 2.0.1 ChargingStateEnumType: only Charging is charging (SuspendedEV, SuspendedEVSE,
  // EVConnected and Idle are not).
  if (charging_state !== '') return charging_state === 'Charging';
  if (not_charging_statuses.has(status)) return false;
  if (status === 'Charging') return true;
  return a.power_w !== undefined && a.power_w >= rules.idle_power_w;
}

/** A session's start as the rating service resolved it, and where it sat in the stream. */
export interface SessionStart {
  meta: SessionMeta;
  seq: number;
  received_at_ms: number;
}

/**
 * A whole session from its facts, as a re-rating (or a what-if) prices it: the start, then every
 * event the live reducer applied, in the order it applied them, through the same reducer; a session
 * live rating closed for silence is closed the same way. Versions continue from `version_before`.
 */
export function replay_session(
  start: SessionStart,
  events: readonly SessionEvent[],
  tariff: Tariff,
  rules: SessionRules,
  options: { close_provisionally: boolean; version_before: number; total_before: CdrPrice | null },
): { state: SessionState; version: RatedVersion | undefined } {
  const state = new_session_state(start.meta, start.seq, start.received_at_ms);
  state.version = options.version_before;
  state.last_rated_total = options.total_before;
  let outcome = apply_session_events(state, events, tariff, rules);
  if (outcome.state.closed === 'open' && options.close_provisionally) {
    outcome = close_if_silent(outcome.state, Number.MAX_SAFE_INTEGER, tariff, rules) ?? outcome;
  }
  return { state: outcome.state, version: outcome.rated.at(-1) };
}
