import { session_event_json } from '../analytics/session-events.js';
import { type RatedSessionRow, rated_session_json } from '../analytics/sessions.js';
import { Money } from '../core/money.js';
import type { OcppEvent, TransactionStartedEvent } from '../schemas/events.js';
import type { RatedVersion, SessionMeta, SessionState } from './session.js';

/**
 * What the rating service writes, made from the reducer's output: rated versions as ClickHouse
 * rows, the session event log that re-rating replays, running cost messages, and who pays.
 * Pure: the same state and version give byte-identical rows, so a redelivered batch rewrites them.
 */

export function cost_subject(prefix: string, charge_point_id: string): string {
  return `${prefix}.cost.${Buffer.from(charge_point_id, 'utf8').toString('base64url')}`;
}

/** The running cost message published while a session is open. */
export interface RunningCostMessage {
  session_id: string;
  charge_point_id: string;
  transaction_id: string;
  currency: string;
  total_cost: { excl_vat: string; incl_vat: string };
  energy_wh: number;
  at_ms: number;
}

/**
 * Who pays for a session, from the token decision ingest made at its start (OCPI 2.2.1 mod_cdrs
 * CdrToken and AuthMethod; analytics' payment methods):
 * - FREE: an OCPP 2.0.1 NoAuthorization token (free vend);
 * - ROAMING: a token a roaming partner pushed over OCPI, with its party "CC*PID";
 * - TERMINAL: a charger's own payment terminal authorized the card (the token is the terminal's
 *   authorization reference, ingest/payment-terminal.ts), settled by the terminal provider;
 * - APP, AD_HOC, RFID, OTHER: our own tokens by OCPI TokenType;
 * - a token the store does not know (accepted by configuration) by its OCPP 2.0.1 IdTokenEnumType
 *   (ISO14443/ISO15693 cards: RFID; Central: APP), and as RFID in OCPP 1.6 (idTags are cards).
 */
export function attribution_of(started: TransactionStartedEvent): {
  payment_method: string;
  party: string;
  token_type: string;
  contract_id: string;
  group_id: string;
  auth_method: string;
} {
  const f = started;
  const record_type = f.tokenType ?? '';
  const id_token_type = f.idTokenType ?? '';
  const country = f.tokenCountryCode ?? '';
  const party_id = f.tokenPartyId ?? '';
  const roaming = (f.tokenSource ?? '') === 'ocpi' && country !== '' && party_id !== '';
  const token_type =
    record_type !== ''
      ? record_type
      : id_token_type === 'ISO14443' || id_token_type === 'ISO15693' || id_token_type === ''
        ? 'RFID'
        : id_token_type === 'Central'
          ? 'APP_USER'
          : 'OTHER';
  const by_type: Record<string, string> = {
    RFID: 'RFID',
    APP_USER: 'APP',
    AD_HOC_USER: 'AD_HOC',
    OTHER: 'OTHER',
  };
  const payment_method =
    id_token_type === 'NoAuthorization'
      ? 'FREE'
      : roaming
        ? 'ROAMING'
        : f.tokenSource === 'terminal'
          ? 'TERMINAL'
          : (by_type[token_type] ?? 'OTHER');
  return {
    payment_method,
    party: roaming ? `${country}*${party_id}` : '',
    token_type,
    contract_id: f.contractId ?? '',
    group_id: f.groupId ?? '',
    auth_method: f.authMethod === 'COMMAND' || f.authMethod === 'AUTH_REQUEST' ? f.authMethod : 'WHITELIST',
  };
}

/** The session's start as the reducer received it: replayed first by a re-rating. */
export function start_fact(meta: SessionMeta, seq: number, idx: number, received_at_ms: number): string {
  return session_event_json({
    session_id: meta.session_id,
    charge_point_id: meta.charge_point_id,
    seq,
    idx,
    received_at_ms,
    kind: 'start',
    fact: JSON.stringify(meta),
  });
}

export function event_fact(session_id: string, seq: number, idx: number, event: OcppEvent): string {
  return session_event_json({
    session_id,
    charge_point_id: event.chargePointId,
    seq,
    idx,
    received_at_ms: event.receivedAtMs,
    kind: event.body,
    fact: JSON.stringify(event),
  });
}

/** A rated version with why it was rated and the total it replaces. */
export interface RatedVersionRow {
  row: RatedSessionRow;
  reason: 'live' | 'provisional' | 'late_stop' | 'rerate';
  previous_total: { excl_vat: string; incl_vat: string } | null;
}

/** The rated_session_versions row: the rated_sessions row plus the reason and the previous total. */
export function rated_version_json(version: RatedVersionRow): string {
  const base = rated_session_json(version.row);
  const previous = version.previous_total ?? { excl_vat: '0', incl_vat: '0' };
  for (const value of [previous.excl_vat, previous.incl_vat]) {
    if (!/^-?\d+(\.\d+)?$/.test(value)) throw new TypeError(`previous total is not a decimal: ${value}`);
  }
  return `${base.slice(0, -1)},"rated_reason":${JSON.stringify(version.reason)},"previous_total_excl_vat":${previous.excl_vat},"previous_total_incl_vat":${previous.incl_vat}}`;
}

function seconds_text(ms: number): number {
  return Math.max(0, Math.round(ms / 1000));
}

/** A rated version as its rated_sessions row: totals, cost dimensions and the explanation. */
export function rated_row(state: SessionState, version: RatedVersion): RatedSessionRow {
  const m = state.meta;
  const r = version.rated;
  const hours_ms = (hours: string) => new Money(hours).mul(3_600_000).round().toNumber();
  return {
    session_id: m.session_id,
    version: version.version,
    charge_point_id: m.charge_point_id,
    connector_id: m.connector_id,
    transaction_id: m.transaction_id,
    id_tag: m.id_tag,
    started_at_ms: m.started_at_ms,
    stopped_at_ms: version.stopped_at_ms,
    meter_start_wh: Math.round(version.meter_start_wh),
    meter_stop_wh: Math.round(version.meter_stop_wh),
    energy_wh: Math.round(new Money(r.total_energy).mul(1000).toNumber()),
    stop_reason: version.stop_reason,
    tariff_id: m.tariff_id,
    tariff_version: m.tariff_version,
    currency: r.currency,
    total_excl_vat: r.total_cost.excl_vat,
    total_incl_vat: r.total_cost.incl_vat,
    breakdown: JSON.stringify(r),
    // Deterministic so that a redelivered batch writes a byte-identical row.
    rated_at_ms: version.stopped_at_ms,
    evse_id: m.evse_id,
    station_id: m.station_id ?? m.charge_point_id,
    payment_method: m.payment_method,
    party: m.party,
    time_zone: m.time_zone,
    energy_cost_excl_vat: r.total_energy_cost.excl_vat,
    time_cost_excl_vat: r.total_time_cost.excl_vat,
    parking_cost_excl_vat: r.total_parking_cost.excl_vat,
    fixed_cost_excl_vat: r.total_fixed_cost.excl_vat,
    duration_s: seconds_text(hours_ms(r.total_time)),
    parking_s: seconds_text(hours_ms(r.total_parking_time)),
    provisional: version.provisional ? 1 : 0,
    token_type: m.token_type ?? '',
    contract_id: m.contract_id ?? '',
    auth_method: m.auth_method ?? '',
    group_id: m.group_id ?? '',
    anomalies: JSON.stringify(version.anomalies),
    review: version.review ? 1 : 0,
    last_updated_ms: version.last_updated_ms,
  };
}
