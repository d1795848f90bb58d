import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { RatedSessionRow } from '../../analytics/sessions.js';
import { type Ledger, open_pglite, open_server } from '../../billing/ledger.js';
import { migrate_ledger } from '../../billing/migrations.js';
import { type Tariff, validate_tariff } from '../../rating/tariff.js';
import { start_test_postgres } from './postgres.js';

/** The two ledgers every billing integration test runs on: embedded PGlite and a PostgreSQL 15 server. */
export const ledger_backends = ['pglite', 'server'] as const;
export type LedgerBackend = (typeof ledger_backends)[number];

export async function open_test_ledger(
  backend: LedgerBackend,
): Promise<{ ledger: Ledger; url: string | undefined; dispose(): Promise<void> }> {
  if (backend === 'pglite') {
    const dir = mkdtempSync(path.join(tmpdir(), 'evrate-pglite-'));
    const ledger = await open_pglite(dir);
    await migrate_ledger(ledger);
    return {
      ledger,
      url: undefined,
      async dispose() {
        await ledger.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const server = await start_test_postgres();
  const ledger = open_server(server.url, { connections_max: 8 });
  await migrate_ledger(ledger);
  return {
    ledger,
    url: server.url,
    async dispose() {
      await ledger.close();
      await server.dispose();
    },
  };
}

/** A rated version as the rating service writes it, with one VAT rate in its breakdown. */
export function rated_row(
  fields: Pick<RatedSessionRow, 'session_id' | 'id_tag' | 'stopped_at_ms' | 'total_excl_vat'> &
    Partial<RatedSessionRow> & { vat_percent?: string },
): RatedSessionRow {
  const vat_percent = fields.vat_percent ?? '21';
  const { vat_percent: _, ...rest } = fields;
  return {
    version: 1,
    charge_point_id: 'CP-1',
    connector_id: 1,
    transaction_id: `tx-${fields.session_id}`,
    started_at_ms: fields.stopped_at_ms - 3_600_000,
    meter_start_wh: 0,
    meter_stop_wh: 10_000,
    energy_wh: 10_000,
    stop_reason: 'Local',
    tariff_id: 'default',
    tariff_version: 1,
    currency: 'EUR',
    total_incl_vat: fields.total_excl_vat,
    breakdown: JSON.stringify({ lines: [{ vat_percent, cost_excl_vat: fields.total_excl_vat }] }),
    rated_at_ms: fields.stopped_at_ms,
    evse_id: 1,
    station_id: 'ST-1',
    duration_s: 3600,
    provisional: 0,
    ...rest,
  };
}

export const test_legal_entity = {
  name: 'evrate Charging B.V.',
  vat_id: 'NL123456789B01',
  address: { line1: 'Stationsplein 1', postal_code: '1012 AB', city: 'Amsterdam', country_code: 'NL' },
  country_code: 'NL',
  time_zone: 'Europe/Amsterdam',
  fee_vat_percent: '21',
};

/** A tariff with two VAT rates: energy at 0.30/kWh (21 %), parking at 2.00 a quarter hour (9 %). */
export function two_vat_rates_tariff(id: string): Tariff {
  return validate_tariff({
    country_code: 'NL',
    party_id: 'EVR',
    id,
    currency: 'EUR',
    elements: [
      {
        price_components: [
          { type: 'ENERGY', price: 0.3, vat: 21, step_size: 1 },
          { type: 'PARKING_TIME', price: 2, vat: 9, step_size: 900 },
        ],
      },
    ],
    last_updated: '2026-01-01T00:00:00Z',
  });
}
