import { rated_session_json } from '../analytics/sessions.js';
import type { Store } from '../analytics/store.js';

/**
 * A deterministic week of a small network, written the way the pipeline writes it, for the
 * dashboard tests and the pictures in the README. It holds what the queries must cope with:
 * re-rated sessions (two versions), redelivered rows, statuses from before the range, an OCPP
 * 1.6 charger with connector 0, a faulted connector, a charger reconnecting to another node
 * before the old node saw the drop, two currencies, roaming parties, and a station id with a
 * quote and a backslash.
 */
export const seed_week = {
  from_ms: Date.UTC(2026, 10, 2),
  to_ms: Date.UTC(2026, 10, 9),
} as const;

/** Data runs from this long before the week to this long after it, to exercise the time filters. */
const margin_ms = 2 * 86_400_000;

export interface SeedStation {
  id: string;
  /** OCPP 2.0.1 EVSE ids (connector 1 each), or OCPP 1.6 connector ids when `ocpp16`. */
  evses: number[];
  ocpp16: boolean;
  currency: string;
  /** Mean gap between sessions on one EVSE, hours. */
  gap_h_mean: number;
}

export const seed_stations: readonly SeedStation[] = [
  { id: 'CP-ALPHA', evses: [1, 2], ocpp16: false, currency: 'EUR', gap_h_mean: 2 },
  { id: 'CP-BRAVO', evses: [1, 2], ocpp16: false, currency: 'EUR', gap_h_mean: 5 },
  { id: 'CP-CHARLIE', evses: [1, 2], ocpp16: true, currency: 'EUR', gap_h_mean: 20 },
  { id: 'CP-DELTA', evses: [1], ocpp16: false, currency: 'CHF', gap_h_mean: 6 },
  { id: "CP-O'REILLY\\", evses: [1], ocpp16: false, currency: 'EUR', gap_h_mean: 12 },
];

export interface SeedSession {
  session_id: string;
  version: number;
  station: string;
  /** OCPP 2.0.1 EVSE id, or the OCPP 1.6 connector id when `ocpp16`. */
  evse: number;
  ocpp16: boolean;
  started_s: number;
  stopped_s: number;
  parking_s: number;
  energy_wh: number;
  currency: string;
  tariff_id: string;
  tariff_version: number;
  payment_method: string;
  party: string;
  /** Totals in ten-thousandths of the currency unit (the Decimal(18, 4) scale). */
  total_excl_vat_e4: number;
  total_incl_vat_e4: number;
}

export interface SeedStatus {
  charge_point_id: string;
  evse_id: number;
  connector_id: number;
  status: string;
  at_s: number;
}

export interface SeedMeterValue {
  charge_point_id: string;
  evse: number;
  transaction_id: string;
  at_ms: number;
  received_at_ms: number;
  wh: number;
}

export interface SeedConnection {
  charge_point_id: string;
  node_id: string;
  connected: 0 | 1;
  at_s: number;
}

export interface SeedRejection {
  charge_point_id: string;
  node_id: string;
  action: string;
  error_code: string;
  at_s: number;
}

export interface SeedData {
  /** Every version written, in write order; a session's latest version is the one that counts. */
  session_versions: SeedSession[];
  /** Rows written twice (a redelivered batch): the same versions again, byte for byte. */
  redelivered_versions: SeedSession[];
  statuses: SeedStatus[];
  meter_values: SeedMeterValue[];
  connections: SeedConnection[];
  rejections: SeedRejection[];
}

/** Park-Miller generator: the same data on every run and machine. */
function generator(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 48_271) % 2_147_483_647;
    return state / 2_147_483_647;
  };
}

function ten_thousandths_text(value: number): string {
  const sign = value < 0 ? '-' : '';
  const abs = Math.abs(value);
  return `${sign}${Math.floor(abs / 10_000)}.${String(abs % 10_000).padStart(4, '0')}`;
}

export function seed_data(): SeedData {
  const random = generator(20_261_102);
  const session_versions: SeedSession[] = [];
  const statuses: SeedStatus[] = [];
  const meter_values: SeedMeterValue[] = [];
  const start_s = (seed_week.from_ms - margin_ms) / 1000;
  const end_s = (seed_week.to_ms + margin_ms) / 1000;
  const payment_methods = ['RFID', 'APP', 'AD_HOC', 'ROAMING'];
  const parties = ['DE*ABC', 'NL*XYZ'];
  let n = 0;
  for (const station of seed_stations) {
    for (const evse of station.evses) {
      const status = (s: string, at_s: number): SeedStatus => ({
        charge_point_id: station.id,
        evse_id: station.ocpp16 ? 0 : evse,
        connector_id: station.ocpp16 ? evse : 1,
        status: s,
        at_s,
      });
      // Booted and available a week before the data starts: the state at the range start
      // comes from before it.
      statuses.push(status('Available', start_s - 7 * 86_400));
      let t = start_s + Math.floor(random() * 3600);
      let faulted = false;
      for (;;) {
        // Busier by day than by night, and on weekdays than at weekends, so the peak-hour grids
        // have peaks to show.
        const hour = Math.floor((t % 86_400) / 3600);
        const weekend = [0, 6].includes(new Date(t * 1000).getUTCDay());
        const busy = (hour >= 6 && hour < 19 ? 0.5 : 2.2) * (weekend ? 1.8 : 1);
        const gap_s = Math.floor((0.2 + 1.6 * random()) * busy * station.gap_h_mean * 3600);
        t += gap_s;
        // One connector is out of order for a while in the middle of the week.
        if (
          station.id === 'CP-CHARLIE' &&
          evse === 2 &&
          !faulted &&
          t > seed_week.from_ms / 1000 + 2 * 86_400
        ) {
          faulted = true;
          statuses.push(status('Faulted', t));
          t += 26 * 3600;
          statuses.push(status('Available', t));
          t += 600;
        }
        const duration_s = 1200 + Math.floor(random() * 4 * 3600);
        if (t + duration_s + 60 > end_s) break;
        const started_s = t;
        const stopped_s = t + duration_s;
        const parking_s = Math.floor(random() * 0.4 * (duration_s - 180));
        const energy_wh = 2000 + Math.floor(random() * 58_000);
        n++;
        const payment_method = payment_methods[n % payment_methods.length]!;
        const party = payment_method === 'ROAMING' ? parties[n % 2]! : '';
        const tariff_id = station.id === 'CP-ALPHA' && evse === 2 ? 'fast' : 'standard';
        const tariff_version = started_s >= seed_week.from_ms / 1000 + 3 * 86_400 ? 2 : 1;
        // 0.30 per kWh and 1.20 per parking hour, in ten-thousandths; VAT 19 %, rounded.
        const excl = energy_wh * 3 + Math.floor((parking_s * 10) / 3);
        const incl = Math.round((excl * 119) / 100);
        session_versions.push({
          session_id: `${station.id}/${n}`,
          version: 1,
          station: station.id,
          evse,
          ocpp16: station.ocpp16,
          started_s,
          stopped_s,
          parking_s,
          energy_wh,
          currency: station.currency,
          tariff_id,
          tariff_version,
          payment_method,
          party,
          total_excl_vat_e4: excl,
          total_incl_vat_e4: incl,
        });
        if (station.ocpp16 && n % 9 === 4) {
          // A 1.6 charger whose StatusNotifications for this session never came with the session's
          // times (sent without a timestamp, stamped elsewhere): none near it. Its time is
          // occupied all the same (analytics/utilization.ts).
        } else if (station.ocpp16) {
          statuses.push(status('Preparing', started_s));
          statuses.push(status('Charging', started_s + 60));
          if (parking_s > 0) statuses.push(status('SuspendedEV', stopped_s - parking_s));
          statuses.push(status('Finishing', stopped_s));
        } else {
          // OCPP 2.0.1 knows only Occupied while a vehicle is there; a reservation is not occupied.
          if (n % 4 === 0) statuses.push(status('Reserved', started_s - 600));
          statuses.push(status('Occupied', started_s));
        }
        if (!(station.ocpp16 && n % 9 === 4)) statuses.push(status('Available', stopped_s + 30));
        for (let at_s = started_s; at_s <= stopped_s; at_s += 900) {
          meter_values.push({
            charge_point_id: station.id,
            evse,
            transaction_id: String(n),
            at_ms: at_s * 1000,
            received_at_ms: at_s * 1000 + 200 + Math.floor(random() * 3000),
            wh: Math.round(((at_s - started_s) / duration_s) * energy_wh),
          });
        }
        t = stopped_s + 60;
      }
    }
  }
  // A charger silent for longer than the 35-day status lookback: it counts as no EVSE at all.
  statuses.push({
    charge_point_id: 'CP-ECHO',
    evse_id: 0,
    connector_id: 1,
    status: 'Charging',
    at_s: seed_week.from_ms / 1000 - 40 * 86_400,
  });
  // OCPP 1.6 connector 0 is the charge point itself; its status must not count as a connector.
  statuses.push({
    charge_point_id: 'CP-CHARLIE',
    evse_id: 0,
    connector_id: 0,
    status: 'Charging',
    at_s: seed_week.from_ms / 1000 + 86_400,
  });
  // Every fifth session re-rated: a second version with a different total replaces the first.
  const rerated = session_versions
    .filter((_, i) => i % 5 === 0)
    .map((s) => ({
      ...s,
      version: 2,
      total_excl_vat_e4: s.total_excl_vat_e4 + 12_345,
      total_incl_vat_e4: Math.round(((s.total_excl_vat_e4 + 12_345) * 119) / 100),
    }));
  session_versions.push(...rerated);
  const redelivered_versions = session_versions.filter((_, i) => i % 7 === 3);

  const week_s = seed_week.from_ms / 1000;
  const connections: SeedConnection[] = seed_stations.map((s) => ({
    charge_point_id: s.id,
    node_id: 'node-a',
    connected: 1,
    at_s: start_s - 3600,
  }));
  connections.push(
    // Offline for fourteen hours, then back on another node.
    { charge_point_id: 'CP-BRAVO', node_id: 'node-a', connected: 0, at_s: week_s + 86_400 + 43_200 },
    { charge_point_id: 'CP-BRAVO', node_id: 'node-b', connected: 1, at_s: week_s + 2 * 86_400 + 7200 },
    // Reconnected to node-b before node-a noticed the old socket was gone.
    { charge_point_id: 'CP-CHARLIE', node_id: 'node-b', connected: 1, at_s: week_s + 4 * 86_400 + 28_800 },
    { charge_point_id: 'CP-CHARLIE', node_id: 'node-a', connected: 0, at_s: week_s + 4 * 86_400 + 28_920 },
    // Gone for good on the last evening of the week.
    { charge_point_id: 'CP-DELTA', node_id: 'node-a', connected: 0, at_s: week_s + 6 * 86_400 + 72_000 },
  );

  const rejections: SeedRejection[] = [];
  const codes = ['FormationViolation', 'ProtocolError', 'SecurityError', 'TypeConstraintViolation'];
  const actions = ['MeterValues', 'StartTransaction', 'StatusNotification'];
  for (let i = 0; i < 60; i++) {
    const station = seed_stations[i % seed_stations.length]!;
    rejections.push({
      charge_point_id: station.id,
      node_id: i % 2 === 0 ? 'node-a' : 'node-b',
      action: actions[Math.floor(random() * actions.length)]!,
      error_code: codes[Math.floor(random() * random() * codes.length)]!,
      at_s: start_s + Math.floor(random() * (end_s - start_s)),
    });
  }
  return { session_versions, redelivered_versions, statuses, meter_values, connections, rejections };
}

function session_json(s: SeedSession): string {
  return rated_session_json({
    session_id: s.session_id,
    version: s.version,
    charge_point_id: s.station,
    connector_id: s.ocpp16 ? s.evse : 1,
    transaction_id: s.session_id.split('/')[1]!,
    id_tag: 'TAG',
    started_at_ms: s.started_s * 1000,
    stopped_at_ms: s.stopped_s * 1000,
    meter_start_wh: 0,
    meter_stop_wh: s.energy_wh,
    energy_wh: s.energy_wh,
    stop_reason: 'Local',
    tariff_id: s.tariff_id,
    tariff_version: s.tariff_version,
    currency: s.currency,
    total_excl_vat: ten_thousandths_text(s.total_excl_vat_e4),
    total_incl_vat: ten_thousandths_text(s.total_incl_vat_e4),
    breakdown: '{}',
    rated_at_ms: s.stopped_s * 1000,
    evse_id: s.ocpp16 ? 0 : s.evse,
    station_id: s.station,
    payment_method: s.payment_method,
    party: s.party,
    time_zone: 'Europe/Berlin',
    duration_s: s.stopped_s - s.started_s,
    parking_s: s.parking_s,
    provisional: 0,
  });
}

/** Inserts rows per kind in several batches, so ClickHouse holds several parts and FINAL matters. */
export async function seed_store(store: Store, data: SeedData): Promise<void> {
  const first = data.session_versions.filter((s) => s.version === 1);
  const later = data.session_versions.filter((s) => s.version > 1);
  await store.insert_json_rows('rated_sessions', first.map(session_json));
  await store.insert_json_rows('rated_sessions', later.map(session_json));
  await store.insert_json_rows('rated_sessions', data.redelivered_versions.map(session_json));
  const status_rows = data.statuses.map((s) =>
    JSON.stringify({
      charge_point_id: s.charge_point_id,
      evse_id: s.evse_id,
      connector_id: s.connector_id,
      status: s.status,
      error_code: 'NoError',
      timestamp: s.at_s,
      timestamp_ms: s.at_s * 1000,
      received_at_ms: s.at_s * 1000 + 150,
    }),
  );
  await store.insert_json_rows('connector_status', status_rows);
  // A redelivered batch of statuses: FINAL folds the copies.
  await store.insert_json_rows(
    'connector_status',
    status_rows.filter((_, i) => i % 9 === 0),
  );
  await store.insert_json_rows(
    'meter_values',
    data.meter_values.map((m) =>
      JSON.stringify({
        charge_point_id: m.charge_point_id,
        connector_id: 1,
        transaction_id: m.transaction_id,
        timestamp: Math.floor(m.at_ms / 1000),
        timestamp_ms: m.at_ms,
        received_at_ms: m.received_at_ms,
        measurand: 'Energy.Active.Import.Register',
        phase: '',
        location: 'Outlet',
        unit: 'Wh',
        context: 'Sample.Periodic',
        format: 'Raw',
        value: String(m.wh),
        evse_id: m.evse,
      }),
    ),
  );
  await store.insert_json_rows(
    'charger_connections',
    data.connections.map((c) =>
      JSON.stringify({
        charge_point_id: c.charge_point_id,
        node_id: c.node_id,
        connected: c.connected,
        protocol: 'ocpp2.0.1',
        at: c.at_s,
        at_ms: c.at_s * 1000,
      }),
    ),
  );
  const rejection_rows = data.rejections.map((r) =>
    JSON.stringify({
      charge_point_id: r.charge_point_id,
      node_id: r.node_id,
      action: r.action,
      error_code: r.error_code,
      at: r.at_s,
      at_ms: r.at_s * 1000,
    }),
  );
  await store.insert_json_rows('ocpp_rejections', rejection_rows);
  // A redelivered batch writes a third of them again: still one rejection each.
  await store.insert_json_rows(
    'ocpp_rejections',
    rejection_rows.filter((_, i) => i % 3 === 0),
  );
}
