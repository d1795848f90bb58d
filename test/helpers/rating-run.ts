import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Store } from '../../analytics/store.js';
import { Money, money_text } from '../../core/money.js';
import type { Nats } from '../../core/nats.js';
import { apply_session_events, new_session_state, type SessionEvent } from '../../rating/session.js';
import type { Tariff } from '../../rating/tariff.js';
import { TariffStore } from '../../rating/tariff-store.js';
import type { SyntheticSession } from './events.js';

/** Time of use with an idle fee: every dimension the engine prices. */
export const crash_test_tariff: Tariff = {
  country_code: 'NL',
  party_id: 'EVR',
  id: 'default',
  currency: 'EUR',
  elements: [
    {
      price_components: [{ type: 'ENERGY', price: 0.45, vat: 21, step_size: 1 }],
      restrictions: { start_time: '17:00', end_time: '21:00' },
    },
    {
      price_components: [
        { type: 'FLAT', price: 0.35, vat: 21, step_size: 1 },
        { type: 'ENERGY', price: 0.29, vat: 21, step_size: 1 },
        { type: 'TIME', price: 0.6, vat: 21, step_size: 60 },
        { type: 'PARKING_TIME', price: 6, vat: 21, step_size: 300 },
      ],
    },
  ],
  last_updated: '2026-01-01T00:00:00Z',
};

export async function seed_tariff(nats: Nats): Promise<void> {
  const tariffs = await TariffStore.open(nats);
  await tariffs.put(crash_test_tariff);
}

export interface ExpectedSession {
  session_id: string;
  energy_wh: number;
  total_excl_vat: string;
  total_incl_vat: string;
}

/** The undisturbed result: each session's events applied in one go by the pure session rules. */
export function expected_sessions(sessions: SyntheticSession[]): Map<string, ExpectedSession> {
  const expected = new Map<string, ExpectedSession>();
  for (const s of sessions) {
    const started = s.events[0]!;
    if (started.body !== 'started') throw new Error('a session starts with its start');
    const session_id = `${s.charge_point_id}/${s.transaction_id}`;
    const state = new_session_state(
      {
        session_id,
        charge_point_id: s.charge_point_id,
        transaction_id: s.transaction_id,
        connector_id: 1,
        evse_id: 0,
        id_tag: started.started.idTag,
        payment_method: 'RFID',
        party: '',
        started_at_ms: started.started.timestampMs,
        meter_start_wh: started.started.meterStartWh,
        tariff_id: 'default',
        tariff_version: 1,
        time_zone: 'UTC',
      },
      1,
      started.receivedAtMs,
    );
    const events: SessionEvent[] = s.events.slice(1).map((event, i) => ({ seq: 2 + i, event }));
    // The Available after the stop belongs to the connector, not the session.
    const outcome = apply_session_events(
      state,
      events.filter((e) => !(e.event.body === 'status' && e.event.status.status === 'Available')),
      crash_test_tariff,
    );
    const rated = outcome.rated.at(-1)!;
    expected.set(session_id, {
      session_id,
      energy_wh: Math.round(Number(rated.rated.total_energy) * 1000),
      total_excl_vat: rated.rated.total_cost.excl_vat,
      total_incl_vat: rated.rated.total_cost.incl_vat,
    });
  }
  return expected;
}

export async function stored_sessions(store: Store): Promise<Map<string, ExpectedSession>> {
  const rows = await store.query<{
    session_id: string;
    energy_wh: number | string;
    excl: string;
    incl: string;
  }>(
    `SELECT session_id, energy_wh, toString(total_excl_vat) AS excl, toString(total_incl_vat) AS incl
     FROM ${store.database}.rated_sessions FINAL`,
  );
  const money = (text: string) => money_text(new Money(text), 'EUR');
  return new Map(
    rows.map((r) => [
      r.session_id,
      {
        session_id: r.session_id,
        energy_wh: Number(r.energy_wh),
        total_excl_vat: money(r.excl),
        total_incl_vat: money(r.incl),
      },
    ]),
  );
}

export function temp_dir(prefix: string): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}
