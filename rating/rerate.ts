import { insert_or_quarantine } from '../analytics/quarantine.js';
import { rated_session_json } from '../analytics/sessions.js';
import { ident, type SqlFragment, sql } from '../analytics/sql.js';
import type { Store } from '../analytics/store.js';
import { Money, money_text } from '../core/money.js';
import type { MeterValue, OcppEvent } from '../schemas/events.js';
import type { CdrPrice } from './engine.js';
import type { Plan } from './plans.js';
import { type RatedVersionRow, rated_row, rated_version_json } from './service.js';
import {
  apply_session_events,
  close_if_silent,
  default_session_rules,
  new_session_state,
  type SessionEvent,
  type SessionRules,
} from './session.js';
import type { TariffStore, TariffVersion } from './tariff-store.js';

/**
 * Re-rating: prices finished sessions again, on purpose, with a given tariff version, from the
 * facts kept in ClickHouse (the raw meter values and connector statuses of the session, its start
 * and stop). Each re-rated session gets a new version in rated_sessions; every version stays in
 * rated_session_versions with the total it replaced, for audit.
 */
export interface RerateSelection {
  session_id?: string;
  charge_point_id?: string;
  /** Sessions that started in [from_ms, to_ms). */
  from_ms?: number;
  to_ms?: number;
}

export interface RerateOutcome {
  session_id: string;
  previous_version: number;
  version: number;
  tariff_id: string;
  tariff_version: number;
  currency: string;
  previous_total: CdrPrice;
  total: CdrPrice;
  difference: CdrPrice;
}

export class RerateError extends Error {
  constructor(
    message: string,
    readonly field: string,
  ) {
    super(message);
    this.name = 'RerateError';
  }
}

interface StoredRow {
  session_id: string;
  version: number | string;
  charge_point_id: string;
  connector_id: number | string;
  evse_id: number | string;
  transaction_id: string;
  id_tag: string;
  payment_method: string;
  party: string;
  time_zone: string;
  started_at_ms: number | string;
  stopped_at_ms: number | string;
  meter_start_wh: number | string;
  meter_stop_wh: number | string;
  stop_reason: string;
  provisional: number | string;
  currency: string;
  total_excl_vat: string;
  total_incl_vat: string;
  breakdown: string;
  station_id: string;
}

/** The plan a session was priced with, kept in its breakdown: a re-rating keeps the driver's plan. */
function plan_of(breakdown: string): { plan?: Plan } {
  try {
    const plan = (JSON.parse(breakdown) as { plan?: Plan | null }).plan;
    return plan === null || plan === undefined ? {} : { plan };
  } catch {
    return {};
  }
}

interface StoredValue {
  timestamp_ms: number | string;
  received_at_ms: number | string;
  value: string;
  context: string;
  format: string;
  measurand: string;
  phase: string;
  location: string;
  unit: string;
}

interface StoredStatus {
  timestamp_ms: number | string;
  received_at_ms: number | string;
  status: string;
}

export const rerate_sessions_max = 10_000;

function where_of(selection: RerateSelection): SqlFragment {
  const parts: SqlFragment[] = [];
  if (selection.session_id !== undefined) parts.push(sql`session_id = ${selection.session_id}`);
  if (selection.charge_point_id !== undefined)
    parts.push(sql`charge_point_id = ${selection.charge_point_id}`);
  if (selection.from_ms !== undefined) parts.push(sql`started_at_ms >= ${selection.from_ms}`);
  if (selection.to_ms !== undefined) parts.push(sql`started_at_ms < ${selection.to_ms}`);
  if (parts.length === 0)
    throw new RerateError('choose a session, a charge point or a time range', 'selection');
  return { text: parts.map((p) => p.text).join(' AND ') };
}

function difference(a: CdrPrice, b: CdrPrice, currency: string): CdrPrice {
  return {
    excl_vat: money_text(new Money(b.excl_vat).minus(a.excl_vat), currency),
    incl_vat: money_text(new Money(b.incl_vat).minus(a.incl_vat), currency),
  };
}

export async function rerate(
  deps: { store: Store; tariffs: TariffStore },
  selection: RerateSelection,
  tariff_ref: { tariff_id: string; version?: number },
  rules: SessionRules = default_session_rules,
): Promise<RerateOutcome[]> {
  const tariff: TariffVersion | undefined =
    tariff_ref.version === undefined
      ? await deps.tariffs.current(tariff_ref.tariff_id)
      : await deps.tariffs.version(tariff_ref.tariff_id, tariff_ref.version);
  if (tariff === undefined) {
    throw new RerateError(
      `tariff ${tariff_ref.tariff_id}${tariff_ref.version === undefined ? '' : ` version ${tariff_ref.version}`} not found`,
      'tariff_id',
    );
  }
  const { store } = deps;
  const db = ident(store.database).text;
  const rows = await store.query<StoredRow>(
    `SELECT session_id, version, charge_point_id, connector_id, evse_id, transaction_id, id_tag,
       payment_method, party, time_zone, station_id, started_at_ms, stopped_at_ms, meter_start_wh, meter_stop_wh,
       stop_reason, provisional, currency, toString(total_excl_vat) AS total_excl_vat,
       toString(total_incl_vat) AS total_incl_vat, breakdown
     FROM ${db}.rated_sessions FINAL WHERE ${where_of(selection).text}
     ORDER BY started_at_ms, session_id LIMIT ${rerate_sessions_max + 1}`,
  );
  if (rows.length > rerate_sessions_max) {
    throw new RerateError(
      `more than ${rerate_sessions_max} sessions selected; narrow the selection`,
      'selection',
    );
  }

  const outcomes: RerateOutcome[] = [];
  const written: RatedVersionRow[] = [];
  for (const row of rows) {
    const charge_point_id = row.charge_point_id;
    const connector_id = Number(row.connector_id);
    const evse_id = Number(row.evse_id);
    const started_at_ms = Number(row.started_at_ms);
    const stopped_at_ms = Number(row.stopped_at_ms);
    const values = await store.query<StoredValue>(
      `SELECT timestamp_ms, received_at_ms, value, context, format, measurand, phase, location, unit
       FROM ${db}.meter_values FINAL
       WHERE ${sql`charge_point_id = ${charge_point_id} AND transaction_id = ${row.transaction_id}`.text}
       ORDER BY timestamp_ms, received_at_ms`,
    );
    const statuses = await store.query<StoredStatus>(
      `SELECT timestamp_ms, received_at_ms, status FROM ${db}.connector_status FINAL
       WHERE ${
         sql`charge_point_id = ${charge_point_id} AND connector_id = ${connector_id} AND evse_id = ${evse_id}
         AND timestamp_ms >= ${started_at_ms} AND timestamp_ms < ${stopped_at_ms}`.text
       }
       ORDER BY timestamp_ms`,
    );
    const base = (received_at_ms: number) => ({
      chargePointId: charge_point_id,
      receivedAtMs: received_at_ms,
      ocppVersion: '',
      messageId: '',
    });
    const timed: { at_ms: number; event: OcppEvent }[] = [];
    const groups = new Map<string, { received_at_ms: number; meter_value: MeterValue }>();
    for (const v of values) {
      const key = `${v.timestamp_ms}/${v.received_at_ms}`;
      let group = groups.get(key);
      if (group === undefined) {
        group = {
          received_at_ms: Number(v.received_at_ms),
          meter_value: { timestampMs: Number(v.timestamp_ms), sampledValues: [] },
        };
        groups.set(key, group);
      }
      group.meter_value.sampledValues.push({
        value: v.value,
        context: v.context,
        format: v.format,
        measurand: v.measurand,
        phase: v.phase,
        location: v.location,
        unit: v.unit,
      });
    }
    for (const group of groups.values()) {
      timed.push({
        at_ms: group.received_at_ms,
        event: {
          ...base(group.received_at_ms),
          body: 'meterValues',
          meterValues: {
            transactionId: row.transaction_id,
            connectorId: connector_id,
            meterValues: [group.meter_value],
          },
        },
      });
    }
    for (const s of statuses) {
      timed.push({
        at_ms: Number(s.received_at_ms),
        event: {
          ...base(Number(s.received_at_ms)),
          body: 'status',
          status: {
            connectorId: connector_id,
            status: s.status,
            errorCode: '',
            timestampMs: Number(s.timestamp_ms),
            info: '',
            evseId: evse_id,
          },
        },
      });
    }
    timed.sort((a, b) => a.at_ms - b.at_ms);
    const provisional = Number(row.provisional) === 1;
    if (!provisional) {
      timed.push({
        at_ms: Number.MAX_SAFE_INTEGER,
        event: {
          ...base(stopped_at_ms),
          body: 'stopped',
          stopped: {
            transactionId: row.transaction_id,
            idTag: row.id_tag,
            meterStopWh: Number(row.meter_stop_wh),
            timestampMs: stopped_at_ms,
            reason: row.stop_reason,
            transactionData: [],
          },
        },
      });
    }
    const state = new_session_state(
      {
        session_id: row.session_id,
        charge_point_id,
        transaction_id: row.transaction_id,
        connector_id,
        evse_id,
        id_tag: row.id_tag,
        payment_method: row.payment_method,
        party: row.party,
        started_at_ms,
        meter_start_wh: Number(row.meter_start_wh),
        tariff_id: tariff.tariff_id,
        tariff_version: tariff.version,
        time_zone: row.time_zone === '' ? 'UTC' : row.time_zone,
        ...(row.station_id === '' || row.station_id === charge_point_id
          ? {}
          : { station_id: row.station_id }),
        ...plan_of(row.breakdown),
      },
      1,
      started_at_ms,
    );
    const previous_version = Number(row.version);
    const previous_total = { excl_vat: row.total_excl_vat, incl_vat: row.total_incl_vat };
    state.version = previous_version;
    state.last_rated_total = previous_total;
    const events: SessionEvent[] = timed.map((t, i) => ({ seq: 2 + i, event: t.event }));
    let outcome = apply_session_events(state, events, tariff.tariff, rules);
    if (provisional) outcome = close_if_silent(outcome.state, Number.MAX_SAFE_INTEGER, tariff.tariff, rules)!;
    const version = outcome.rated.at(-1)!;
    const new_row = rated_row(outcome.state, version);
    written.push({ row: new_row, reason: 'rerate', previous_total: version.previous_total });
    const currency = tariff.tariff.currency;
    outcomes.push({
      session_id: row.session_id,
      previous_version,
      version: version.version,
      tariff_id: tariff.tariff_id,
      tariff_version: tariff.version,
      currency,
      previous_total: {
        excl_vat: money_text(new Money(previous_total.excl_vat), row.currency),
        incl_vat: money_text(new Money(previous_total.incl_vat), row.currency),
      },
      total: version.rated.total_cost,
      difference: difference(previous_total, version.rated.total_cost, currency),
    });
  }
  await insert_or_quarantine(
    store,
    'rated_sessions',
    written.map((w) => rated_session_json(w.row)),
  );
  await insert_or_quarantine(store, 'rated_session_versions', written.map(rated_version_json));
  return outcomes;
}
