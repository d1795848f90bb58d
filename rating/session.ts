import { Decimal } from 'decimal.js';
import type { MeterValue, OcppEvent } from '../schemas/events.js';
import {
  type CdrPrice,
  type MeterSample,
  type RatedSession,
  type RaterState,
  SessionRater,
} from './engine.js';
import type { Plan } from './plans.js';
import type { Tariff } from './tariff.js';

/**
 * One charging session as the rating service sees it, and the rules that turn the messy facts
 * chargers send into meter samples for the engine. Pure: the same state and events always give
 * the same new state and outputs, so a redelivered batch after a crash rewrites identical rows.
 *
 * The rules, each with a test in session.test.ts:
 * 1. Duplicates: an event batch already applied (stream sequence <= last_seq) changes nothing.
 * 2. Order: samples are applied in timestamp order; a sample older than the latest priced one
 *    (a late or out-of-order reading) is kept as evidence in meter_values but not priced again.
 *    Energy is never lost by this: the register is cumulative, so the next reading carries it.
 * 3. Units: Energy.Active.Import.Register in Wh or kWh, Power.Active.Import in W or kW, converted
 *    exactly; a register without phase is the session's register (per-phase registers ignored).
 * 4. Register resets and replaced meters: a register lower than the previous one continues the
 *    session from the previous energy (offset = previous - new); the gap is not priced twice.
 * 5. Clock skew: a charger timestamp more than `clock_skew_ms_max` after the server's receipt
 *    time is replaced by the receipt time; a stop before the start is moved to the start.
 * 6. Charging vs parking: an interval is charging when energy flowed at an average power of at
 *    least `idle_power_w`; otherwise it is parking (idle) unless the charger says Charging or
 *    measured a power of at least `idle_power_w` at its start (meters with coarse resolution).
 *    SuspendedEV, SuspendedEVSE and Finishing intervals without energy are always parking.
 * 7. A StopTransaction without meter values is priced from the start and stop registers; a stop
 *    without a register ends at the last known reading.
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
  party: string;
  started_at_ms: number;
  meter_start_wh: number;
  tariff_id: string;
  tariff_version: number;
  time_zone: string;
  /** The driver's plan in force at the start; a later change of the plan never reprices it. */
  plan?: Plan;
  /** The station the charge point belongs to (operator assignment); the charge point id when unset. */
  station_id?: string;
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
  register_offset_wh: number;
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
  silence_ms: number;
}

export const default_session_rules: SessionRules = {
  idle_power_w: 50,
  clock_skew_ms_max: 5 * 60_000,
  silence_ms: 24 * 3600_000,
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
  meter_stop_wh: number;
  stop_reason: string;
  rated: RatedSession;
}

export interface SessionOutcome {
  state: SessionState;
  rated: RatedVersion[];
  /** The running cost after this batch, when the session is open and it changed. */
  running_cost: CdrPrice | null;
}

const energy_register = 'Energy.Active.Import.Register';
const power_measurand = 'Power.Active.Import';
const current_measurand = 'Current.Import';
const not_charging_statuses = new Set([
  'SuspendedEV',
  'SuspendedEVSE',
  'Finishing',
  'Available',
  'Preparing',
]);

export interface Reading {
  at_ms: number;
  energy_wh?: number;
  power_w?: number;
  current_a?: number;
}

function scaled(value: string, unit: string, base: string, kilo: string): number | undefined {
  if (!/^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(value)) return undefined;
  const scale = unit === kilo ? 1000 : unit === base || unit === '' ? 1 : undefined;
  if (scale === undefined) return undefined;
  return new Decimal(value).mul(scale).toNumber();
}

/** Rule 3: the readings in one MeterValue, in Wh, W and A. */
export function reading_of(meter_value: MeterValue): Reading {
  const reading: Reading = { at_ms: meter_value.timestampMs };
  let current_sum = 0;
  let current_seen = false;
  for (const sv of meter_value.sampledValues) {
    if (sv.format === 'SignedData') continue;
    const measurand = sv.measurand === '' ? energy_register : sv.measurand;
    if (measurand === energy_register && sv.phase === '') {
      const wh = scaled(sv.value, sv.unit, 'Wh', 'kWh');
      if (wh !== undefined && wh >= 0) reading.energy_wh = wh;
    } else if (measurand === power_measurand && sv.phase === '') {
      const w = scaled(sv.value, sv.unit, 'W', 'kW');
      if (w !== undefined) reading.power_w = w;
    } else if (measurand === current_measurand) {
      const a = scaled(sv.value, sv.unit, 'A', 'A');
      if (a !== undefined) {
        // The highest phase current is what current restrictions look at.
        current_sum = current_seen ? Math.max(current_sum, a) : a;
        current_seen = true;
      }
    }
  }
  if (current_seen) reading.current_a = current_sum;
  return reading;
}

export function new_session_state(meta: SessionMeta, seq: number, received_at_ms: number): SessionState {
  const start_wh = Math.max(meta.meter_start_wh, 0);
  return {
    meta,
    // The batch that started the session may carry its first readings too: they apply.
    last_seq: seq - 1,
    baseline_known: meta.meter_start_wh >= 0,
    first: { at_ms: meta.started_at_ms, energy_wh: start_wh, charging: true },
    rater: null,
    status: 'Charging',
    register_offset_wh: 0,
    last_register_wh: start_wh,
    last_activity_ms: received_at_ms,
    version: 0,
    closed: 'open',
    stop_reason: '',
    energy_wh: 0,
    running_cost: null,
    last_rated_total: null,
    anomalies: {},
  };
}

function count(state: SessionState, anomaly: string): void {
  state.anomalies[anomaly] = (state.anomalies[anomaly] ?? 0) + 1;
}

/**
 * Applies a session's events of one batch to its state (rules 1-7) and returns the new state, the
 * rated versions to write and the running cost. `tariff` is the session's tariff version.
 */
export function apply_session_events(
  previous: SessionState,
  events: readonly SessionEvent[],
  tariff: Tariff,
  rules: SessionRules = default_session_rules,
): SessionOutcome {
  const state: SessionState = structuredClone(previous);
  let rater = rater_of(state, tariff);
  const rated: RatedVersion[] = [];
  let changed = false;

  const take = (reading: Reading, received_at_ms: number): void => {
    let at_ms = reading.at_ms;
    if (at_ms > received_at_ms + rules.clock_skew_ms_max) {
      count(state, 'clock_skew');
      at_ms = received_at_ms; // rule 5
    }
    if (reading.energy_wh === undefined) return; // power-only readings inform nothing to price
    if (!state.baseline_known) {
      // No register at start: the first reading is the baseline (energy before it is unknown).
      count(state, 'missing_start_register');
      state.baseline_known = true;
      state.first = { at_ms: state.first.at_ms, energy_wh: reading.energy_wh, charging: true };
      state.last_register_wh = reading.energy_wh;
      rater = new SessionRater(tariff, state.meta.time_zone, state.first, state.meta.plan);
    }
    const last = rater.last_sample;
    if (at_ms < last.at_ms) {
      count(state, 'late_sample'); // rule 2
      return;
    }
    let register = reading.energy_wh;
    if (register < state.last_register_wh) {
      // Rule 4: continue from the previous energy.
      count(state, 'register_reset');
      state.register_offset_wh += state.last_register_wh - register;
    }
    state.last_register_wh = register;
    register += state.register_offset_wh;
    const energy_wh = Math.max(register, last.energy_wh);
    const sample: MeterSample = {
      at_ms,
      energy_wh,
      charging: true,
      ...(reading.power_w === undefined ? {} : { power_w: reading.power_w }),
      ...(reading.current_a === undefined ? {} : { current_a: reading.current_a }),
    };
    rater.add(sample, { charging: interval_charging(last, sample, state.status, rules) });
    changed = true;
  };

  for (const { seq, event } of events) {
    if (seq <= previous.last_seq) continue; // rule 1
    state.last_seq = Math.max(state.last_seq, seq);
    state.last_activity_ms = Math.max(state.last_activity_ms, event.receivedAtMs);
    if (event.body === 'status') {
      state.status = event.status.status;
    } else if (event.body === 'meterValues') {
      const readings = event.meterValues.meterValues.map(reading_of).sort((a, b) => a.at_ms - b.at_ms);
      for (const reading of readings) take(reading, event.receivedAtMs);
    } else if (event.body === 'stopped') {
      if (state.closed === 'stopped') continue;
      const stop = event.stopped;
      const readings = stop.transactionData.map(reading_of).sort((a, b) => a.at_ms - b.at_ms);
      for (const reading of readings) take(reading, event.receivedAtMs);
      const last = rater.last_sample;
      // Rule 5: a stop before the last reading (or the start) ends there.
      const stopped_at_ms = Math.max(
        Math.min(stop.timestampMs, event.receivedAtMs + rules.clock_skew_ms_max),
        last.at_ms,
      );
      // Rule 7: no register at stop: the session ends at the last known reading.
      take(
        {
          at_ms: stopped_at_ms,
          energy_wh: stop.meterStopWh >= 0 ? stop.meterStopWh : state.last_register_wh,
        },
        event.receivedAtMs,
      );
      if (rater.last_sample.at_ms < stopped_at_ms) {
        rater.add({ ...rater.last_sample, at_ms: stopped_at_ms }, { charging: false });
      }
      state.closed = 'stopped';
      state.stop_reason = stop.reason;
      state.version += 1;
      const result = rater.result();
      rated.push({
        version: state.version,
        provisional: false,
        previous_total: state.last_rated_total,
        stopped_at_ms: rater.last_sample.at_ms,
        meter_stop_wh: state.last_register_wh,
        stop_reason: stop.reason,
        rated: result,
      });
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
  const state: SessionState = structuredClone(previous);
  const rater = rater_of(state, tariff);
  state.closed = 'provisional';
  state.version += 1;
  const last = rater.last_sample;
  const result = rater.result();
  const previous_total = state.last_rated_total;
  state.last_rated_total = result.total_cost;
  return {
    state,
    running_cost: null,
    rated: [
      {
        version: state.version,
        provisional: true,
        previous_total,
        stopped_at_ms: last.at_ms,
        meter_stop_wh: state.last_register_wh,
        stop_reason: 'Provisional',
        rated: result,
      },
    ],
  };
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
  rules: SessionRules,
): boolean {
  const dt_ms = b.at_ms - a.at_ms;
  const d_wh = b.energy_wh - a.energy_wh;
  if (dt_ms <= 0) return d_wh > 0 || a.charging;
  const average_w = (d_wh * 3_600_000) / dt_ms;
  if (average_w >= rules.idle_power_w) return true;
  if (not_charging_statuses.has(status)) return false;
  if (status === 'Charging') return true;
  return a.power_w !== undefined && a.power_w >= rules.idle_power_w;
}
