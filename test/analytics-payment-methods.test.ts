import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { payment_methods } from '../analytics/payment-methods.js';
import { type RatedSessionRow, rated_session_json } from '../analytics/sessions.js';
import { store_transports, type TestStore } from './helpers/stores.js';

/**
 * Payment mix: sessions grouped by payment method, the roaming ones also per eMSP party, FREE
 * sessions (OCPP 2.0.1 NoAuthorization) reported as their own method.
 */

const start_ms = Date.UTC(2026, 10, 10, 8, 0, 0);

function session(
  n: number,
  payment_method: string,
  party: string,
  total: string,
  energy_wh: number,
): RatedSessionRow {
  const started = start_ms + n * 3_600_000;
  return {
    session_id: `PM-${n}`,
    version: 1,
    charge_point_id: 'CP-PM',
    connector_id: 1,
    transaction_id: String(n),
    id_tag: `TAG-${n}`,
    started_at_ms: started,
    stopped_at_ms: started + 1_800_000,
    meter_start_wh: 0,
    meter_stop_wh: energy_wh,
    energy_wh,
    stop_reason: 'Local',
    tariff_id: 'T',
    tariff_version: 1,
    currency: 'EUR',
    total_excl_vat: total,
    total_incl_vat: total,
    breakdown: '{}',
    rated_at_ms: started + 1_800_000,
    evse_id: 1,
    station_id: 'CP-PM',
    payment_method,
    party,
    duration_s: 1800,
    parking_s: 0,
    provisional: 0,
  };
}

const rows: RatedSessionRow[] = [
  session(0, 'RFID', '', '3.00', 10_000),
  session(1, 'RFID', '', '1.50', 5_000),
  session(2, 'APP', '', '2.25', 7_500),
  session(3, 'AD_HOC', '', '4.10', 12_000),
  session(4, 'FREE', '', '0', 6_000),
  session(5, 'ROAMING', 'DE*ABC', '2.00', 8_000),
  session(6, 'ROAMING', 'DE*ABC', '1.05', 3_500),
  session(7, 'ROAMING', 'NL*TNM', '5.55', 18_500),
];

describe.each(store_transports)('payment methods on $name', ({ open }) => {
  let env: TestStore;
  beforeAll(async () => {
    env = await open();
    await env.store.insert_json_rows('rated_sessions', rows.map(rated_session_json));
    // A redelivered batch: counted once.
    await env.store.insert_json_rows('rated_sessions', rows.slice(5).map(rated_session_json));
  });
  afterAll(async () => env?.dispose());

  it('groups by payment method, reports FREE on its own and ROAMING per party', async () => {
    const uses = await payment_methods(env.store, { from_ms: start_ms, to_ms: start_ms + 86_400_000 });
    const eur = (sessions: number, total: string) => [
      { currency: 'EUR', sessions, revenue_excl_vat: total, revenue_incl_vat: total },
    ];
    // 8 sessions: ROAMING 3 (37.5 %), RFID 2 (25 %), AD_HOC, APP, FREE 1 each (12.5 %), ties by name.
    expect(uses).toEqual([
      {
        payment_method: 'ROAMING',
        label: "Roaming partner's token (per eMSP party)",
        sessions: 3,
        sessions_percent: 37.5,
        energy_wh: 30_000, // 8000 + 3500 + 18500
        revenue: eur(3, '8.60'), // 2.00 + 1.05 + 5.55
        parties: [
          { party: 'DE*ABC', sessions: 2, energy_wh: 11_500, revenue: eur(2, '3.05') },
          { party: 'NL*TNM', sessions: 1, energy_wh: 18_500, revenue: eur(1, '5.55') },
        ],
      },
      {
        payment_method: 'RFID',
        label: 'RFID card of ours',
        sessions: 2,
        sessions_percent: 25,
        energy_wh: 15_000,
        revenue: eur(2, '4.50'),
      },
      {
        payment_method: 'AD_HOC',
        label: 'Ad hoc payment at the charger (QR code, card terminal)',
        sessions: 1,
        sessions_percent: 12.5,
        energy_wh: 12_000,
        revenue: eur(1, '4.10'),
      },
      {
        payment_method: 'APP',
        label: 'App (remote start)',
        sessions: 1,
        sessions_percent: 12.5,
        energy_wh: 7_500,
        revenue: eur(1, '2.25'),
      },
      {
        payment_method: 'FREE',
        label: 'Free session (no authorization)',
        sessions: 1,
        sessions_percent: 12.5,
        energy_wh: 6_000,
        revenue: eur(1, '0.00'),
      },
    ]);
  });
});
