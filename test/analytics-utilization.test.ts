import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RatedSessionRow, rated_session_json } from '../analytics/sessions.js';
import { underutilized_stations } from '../analytics/underutilized.js';
import { assert_utilization, UtilizationInvariantError, utilization } from '../analytics/utilization.js';
import { store_transports, type TestStore } from './helpers/stores.js';

/**
 * Occupied time is the union of the statuses' occupied time and the sessions' time, and charging
 * never exceeds it: a hand-built status timeline and rated sessions of one station, the range
 * 10:00 to 12:00 (7200 s) on 2026-11-12, figures worked out by hand below.
 */

const day = Date.UTC(2026, 10, 12);
const at = (hh: number, mm: number) => day + (hh * 60 + mm) * 60_000;
const from_ms = at(10, 0);
const to_ms = at(12, 0);

function status(evse_id: number, connector_id: number, status: string, ms: number): string {
  return JSON.stringify({
    charge_point_id: 'ST-U',
    evse_id,
    connector_id,
    status,
    error_code: 'NoError',
    timestamp: Math.floor(ms / 1000),
    timestamp_ms: ms,
    received_at_ms: ms,
  });
}

function session(
  n: number,
  evse_id: number,
  started_ms: number,
  stopped_ms: number,
  duration_s: number,
  parking_s: number,
): RatedSessionRow {
  return {
    session_id: `U-${n}`,
    version: 1,
    charge_point_id: 'ST-U',
    connector_id: evse_id,
    transaction_id: String(n),
    id_tag: 'TAG-U',
    started_at_ms: started_ms,
    stopped_at_ms: stopped_ms,
    meter_start_wh: 0,
    meter_stop_wh: 1000,
    energy_wh: 1000,
    stop_reason: 'Local',
    tariff_id: 'T',
    tariff_version: 1,
    currency: 'EUR',
    total_excl_vat: '1.00',
    total_incl_vat: '1.00',
    breakdown: '{}',
    rated_at_ms: stopped_ms,
    evse_id,
    station_id: 'ST-U',
    payment_method: 'RFID',
    party: '',
    duration_s,
    parking_s,
    provisional: 0,
  };
}

const statuses = [
  // EVSE 1, a 1.6 charger whose statuses came stamped apart from its session: Available since
  // 09:00, a Preparing at 11:30 that ends at 11:45. Occupied by statuses 11:30-11:45 only.
  status(1, 1, 'Available', at(9, 0)),
  status(1, 1, 'Preparing', at(11, 30)),
  status(1, 1, 'Available', at(11, 45)),
  // EVSE 2: Charging 10:30, Finishing 11:10, Available 11:20: occupied 10:30-11:20.
  status(2, 2, 'Charging', at(10, 30)),
  status(2, 2, 'Finishing', at(11, 10)),
  status(2, 2, 'Available', at(11, 20)),
  // EVSE 3: Available since 09:00, never anything else.
  status(3, 3, 'Available', at(9, 0)),
  // EVSE 4: SuspendedEV from 09:50 (before the range) until Available at 10:20.
  status(4, 4, 'SuspendedEV', at(9, 50)),
  status(4, 4, 'Available', at(10, 20)),
  // EVSE 5 (2.0.1, two connectors): connector 1 Occupied 10:00-10:40, connector 2 10:20-11:00.
  status(5, 1, 'Occupied', at(10, 0)),
  status(5, 1, 'Available', at(10, 40)),
  status(5, 2, 'Occupied', at(10, 20)),
  status(5, 2, 'Available', at(11, 0)),
];

const sessions = [
  // EVSE 1: 10:00-11:00, 3600 s of which 600 s idle: charging 10:00-10:50.
  session(1, 1, at(10, 0), at(11, 0), 3600, 600),
  // EVSE 2: 10:40-11:15 inside the statuses' 10:30-11:20, 2100 s, 300 idle: charging 10:40-11:10.
  session(2, 2, at(10, 40), at(11, 15), 2100, 300),
  // EVSE 3: 09:30-10:30, no idle time: charging 09:30-10:30, 10:00-10:30 in the range.
  session(3, 3, at(9, 30), at(10, 30), 3600, 0),
];

describe.each(store_transports)('utilization: sessions are occupied time, on $name', ({ open }) => {
  let env: TestStore;
  beforeAll(async () => {
    env = await open();
    await env.store.insert_json_rows('connector_status', statuses);
    await env.store.insert_json_rows('rated_sessions', sessions.map(rated_session_json));
    // A redelivered batch of both: copies count nothing.
    await env.store.insert_json_rows('connector_status', statuses.slice(0, 6));
    await env.store.insert_json_rows('rated_sessions', sessions.map(rated_session_json));
  });
  afterAll(async () => env?.dispose());

  it('counts a session’s time as occupied once, whatever the statuses say, and charging within it', async () => {
    const u = await utilization(env.store, { from_ms, to_ms });
    expect(u.range_s).toBe(7200);
    expect(u.evses).toEqual([
      // Session 10:00-11:00 (3600 s) + statuses 11:30-11:45 (900 s) = 4500 s; before, 900 s
      // occupied against 3000 s charging. Charging 10:00-10:50 = 3000 s.
      {
        station_id: 'ST-U',
        evse_id: 1,
        occupied_s: 4500,
        charging_s: 3000,
        occupied_percent: 62.5,
        charging_percent: 41.67,
      },
      // Statuses 10:30-11:20 (3000 s) already cover the session 10:40-11:15: 3000 s, not 5100.
      // Charging 10:40-11:10 = 1800 s.
      {
        station_id: 'ST-U',
        evse_id: 2,
        occupied_s: 3000,
        charging_s: 1800,
        occupied_percent: 41.67,
        charging_percent: 25,
      },
      // No occupied status; the session gives 10:00-10:30 (1800 s), all of it charging.
      {
        station_id: 'ST-U',
        evse_id: 3,
        occupied_s: 1800,
        charging_s: 1800,
        occupied_percent: 25,
        charging_percent: 25,
      },
      // Statuses alone: 10:00-10:20 (the SuspendedEV from 09:50 counts from `from`) = 1200 s.
      {
        station_id: 'ST-U',
        evse_id: 4,
        occupied_s: 1200,
        charging_s: 0,
        occupied_percent: 16.67,
        charging_percent: 0,
      },
      // Two connectors of one EVSE, 10:00-10:40 and 10:20-11:00: 10:00-11:00 = 3600 s, not 4800.
      {
        station_id: 'ST-U',
        evse_id: 5,
        occupied_s: 3600,
        charging_s: 0,
        occupied_percent: 50,
        charging_percent: 0,
      },
    ]);
    for (const e of u.evses) {
      expect(e.charging_s).toBeLessThanOrEqual(e.occupied_s);
      expect(e.occupied_s).toBeLessThanOrEqual(u.range_s);
    }
    // 4500 + 3000 + 1800 + 1200 + 3600 = 14100 s of 5 x 7200 = 36000 s: 39.17 %;
    // charging 3000 + 1800 + 1800 = 6600 s: 18.33 %.
    expect(u.stations).toEqual([
      {
        station_id: 'ST-U',
        evse_count: 5,
        occupied_s: 14_100,
        charging_s: 6600,
        occupied_percent: 39.17,
        charging_percent: 18.33,
      },
    ]);
    // The underutilized list uses the same figures.
    expect(
      await underutilized_stations(env.store, { from_ms, to_ms, threshold_percent: 50, limit: 10 }),
    ).toEqual(u.stations);
  });

  it('cuts the intervals to the range: 11:00 to 11:40', async () => {
    const u = await utilization(env.store, { from_ms: at(11, 0), to_ms: at(11, 40) });
    // 2400 s. EVSE 1: statuses 11:30-11:40 (600 s), the session ended at 11:00; EVSE 2: statuses
    // 11:00-11:20 (1200 s), charging 11:00-11:10 (600 s); EVSE 3 and 4 nothing; EVSE 5: 11:00
    // is connector 2's Available, so nothing.
    expect(u.evses.map((e) => [e.evse_id, e.occupied_s, e.charging_s])).toEqual([
      [1, 600, 0],
      [2, 1200, 600],
      [3, 0, 0],
      [4, 0, 0],
      [5, 0, 0],
    ]);
  });

  it('refuses a figure that breaks charging <= occupied <= range instead of cutting it to fit', () => {
    const evse = { station_id: 'ST-U', evse_id: 1, occupied_ms: 900_000, charging_ms: 3_000_000 };
    expect(() => assert_utilization([evse], 7_200_000)).toThrow(UtilizationInvariantError);
    expect(() =>
      assert_utilization([{ ...evse, charging_ms: 0, occupied_ms: 7_200_001 }], 7_200_000),
    ).toThrow(/occupied 7200001 ms, range 7200000 ms/);
    expect(() => assert_utilization([{ ...evse, charging_ms: 900_000 }], 7_200_000)).not.toThrow();
  });
});
