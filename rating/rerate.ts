import { insert_or_quarantine } from '../analytics/quarantine.js';
import { type RatedSessionRow, rated_session_json } from '../analytics/sessions.js';
import { ident, type SqlFragment, sql } from '../analytics/sql.js';
import type { Store } from '../analytics/store.js';
import { Money, money_text } from '../core/money.js';
import type { Nats } from '../core/nats.js';
import { publish_rated_versions } from '../core/rated-feed.js';
import type { MeterValue, OcppEvent } from '../schemas/events.js';
import type { CdrPrice } from './engine.js';
import { type RatedVersionRow, rated_row, rated_version_json } from './outputs.js';
import type { Plan } from './plans.js';
import {
  default_session_rules,
  replay_session,
  type SessionEvent,
  type SessionMeta,
  type SessionRules,
  type SessionStart,
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

export interface StoredRow {
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
  signed_data?: string;
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

/** What a re-rating replays: the session's start and the events the reducer applied. */
export interface SessionFacts {
  start: SessionStart;
  events: SessionEvent[];
}

/** A row of the session event log as read back (analytics/session-events.ts). */
export interface LoggedFactRow {
  seq: number | string;
  idx: number | string;
  received_at_ms: number | string;
  kind: string;
  fact: string;
}

/**
 * A session's facts from its event log rows in (seq, idx) order, one row per key; undefined when
 * the log does not begin with the session's start (a session rated before the log existed).
 * Shared by re-rating and the pricing what-if (rating/what-if.ts).
 */
export function facts_of_logged_rows(rows: readonly LoggedFactRow[]): SessionFacts | undefined {
  const first = rows[0];
  if (first === undefined || first.kind !== 'start') return undefined;
  return {
    start: {
      meta: JSON.parse(first.fact) as SessionMeta,
      seq: Number(first.seq),
      received_at_ms: Number(first.received_at_ms),
    },
    events: rows.slice(1).map((r) => ({ seq: Number(r.seq), event: JSON.parse(r.fact) as OcppEvent })),
  };
}

/**
 * The facts live rating logged for the session (analytics/session-events.ts): exactly what its
 * reducer saw, one row per (seq, idx) whether or not ClickHouse merged the duplicates of a
 * redelivered batch. Undefined for a session rated before the log existed.
 */
async function logged_facts(store: Store, session_id: string): Promise<SessionFacts | undefined> {
  const db = ident(store.database).text;
  const rows = await store.query<LoggedFactRow>(
    `SELECT seq, idx, received_at_ms, kind, fact FROM ${db}.session_events
     WHERE ${sql`session_id = ${session_id}`.text}
     ORDER BY seq, idx LIMIT 1 BY seq, idx`,
  );
  return facts_of_logged_rows(rows);
}

/**
 * For a session rated before the fact log existed: its facts rebuilt from the raw meter values,
 * the connector statuses and the rated row, keyed as live rating keys them (the EVSE of a 2.0.1
 * charger, the connector of a 1.6 one), with the connector status in force at the start. Such a
 * row keeps no start register of its own when the charger sent none, so it is taken as written.
 */
export async function stored_facts(store: Store, row: StoredRow): Promise<SessionFacts> {
  const db = ident(store.database).text;
  const charge_point_id = row.charge_point_id;
  const connector_id = Number(row.connector_id);
  const evse_id = Number(row.evse_id);
  const started_at_ms = Number(row.started_at_ms);
  const stopped_at_ms = Number(row.stopped_at_ms);
  const values = await store.query<StoredValue>(
    `SELECT timestamp_ms, received_at_ms, value, context, format, measurand, phase, location, unit, signed_data
     FROM ${db}.meter_values FINAL
     WHERE ${sql`charge_point_id = ${charge_point_id} AND transaction_id = ${row.transaction_id}`.text}
     ORDER BY received_at_ms, timestamp_ms`,
  );
  const status_key =
    sql`charge_point_id = ${charge_point_id} AND connector_id = ${connector_id} AND evse_id = ${evse_id}`
      .text;
  const statuses = await store.query<StoredStatus>(
    `SELECT timestamp_ms, received_at_ms, status FROM ${db}.connector_status FINAL
     WHERE ${status_key} AND ${sql`timestamp_ms >= ${started_at_ms} AND timestamp_ms < ${stopped_at_ms}`.text}
     ORDER BY received_at_ms, timestamp_ms`,
  );
  const [at_start] = await store.query<StoredStatus>(
    `SELECT timestamp_ms, received_at_ms, status FROM ${db}.connector_status FINAL
     WHERE ${status_key} AND ${sql`timestamp_ms < ${started_at_ms}`.text}
     ORDER BY timestamp_ms DESC LIMIT 1`,
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
      signedData: v.signed_data ?? '',
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
  if (Number(row.provisional) !== 1) {
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
  const meta: SessionMeta = {
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
    tariff_id: '',
    tariff_version: 0,
    time_zone: row.time_zone === '' ? 'UTC' : row.time_zone,
    ...(row.station_id === '' || row.station_id === charge_point_id ? {} : { station_id: row.station_id }),
    ...(at_start === undefined ? {} : { status_at_start: at_start.status }),
    ...plan_of(row.breakdown),
  };
  return {
    start: { meta, seq: 1, received_at_ms: started_at_ms },
    events: timed.map((t, i) => ({ seq: 2 + i, event: t.event })),
  };
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
  /**
   * `nats`: where the new versions are announced to billing (core/rated-feed.ts), once stored.
   * `on_stored`: the versions as stored, for a caller that announces them itself later (a dispute
   * resolution records them in the ledger first, then publishes them on the feed).
   */
  deps: {
    store: Store;
    tariffs: TariffStore;
    nats?: Nats;
    on_stored?: (rows: readonly RatedSessionRow[]) => void;
  },
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
  const rerated_at_ms = Date.now();
  for (const row of rows) {
    const previous_version = Number(row.version);
    const previous_total = { excl_vat: row.total_excl_vat, incl_vat: row.total_incl_vat };
    const facts = (await logged_facts(store, row.session_id)) ?? (await stored_facts(store, row));
    const meta: SessionMeta = {
      ...facts.start.meta,
      tariff_id: tariff.tariff_id,
      tariff_version: tariff.version,
    };
    const { state, version } = replay_session({ ...facts.start, meta }, facts.events, tariff.tariff, rules, {
      close_provisionally: Number(row.provisional) === 1,
      version_before: previous_version,
      total_before: previous_total,
    });
    if (version === undefined) {
      throw new RerateError(
        `session ${row.session_id}: its facts end neither in a stop nor in silence`,
        'session_id',
      );
    }
    // A re-rating is a correction the partners must find by date_from: its time is the request's.
    const new_row = rated_row(state, { ...version, last_updated_ms: rerated_at_ms });
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
  deps.on_stored?.(written.map((w) => w.row));
  if (deps.nats !== undefined)
    await publish_rated_versions(
      deps.nats,
      written.map((w) => w.row),
    );
  return outcomes;
}
