import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { meter_value_json_rows } from '../analytics/meter-values.js';
import { migrate, migrations } from '../analytics/migrations.js';
import type { SampledValue } from '../schemas/events.js';
import { store_transports, type TestStore } from './helpers/stores.js';

/**
 * meter_values is keyed by format and unit as well (migration 33): an Eichrecht charger's Raw and
 * SignedData samples of one instant are two rows, and a table with the old key is rebuilt with
 * every row it held.
 */

const at_ms = Date.UTC(2026, 10, 3, 12, 0, 0);
const context = { charge_point_id: 'CP-EICH', connector_id: 1, transaction_id: 'T-1', received_at_ms: at_ms };
const full_key =
  'charge_point_id, transaction_id, timestamp_ms, measurand, phase, location, context, format, unit';

function sample(format: string, value: string): SampledValue {
  return {
    value,
    context: 'Sample.Periodic',
    format,
    measurand: 'Energy.Active.Import.Register',
    phase: '',
    location: 'Outlet',
    unit: 'Wh',
  };
}

describe.each(store_transports)('meter_values key on $name', ({ open }) => {
  let env: TestStore;
  const sorting_key = async () =>
    (
      await env.store.query<{ sorting_key: string }>(
        "SELECT sorting_key FROM system.tables WHERE database = 'evrate' AND name = 'meter_values'",
      )
    )[0]?.sorting_key;
  const tables = async () =>
    (
      await env.store.query<{ name: string }>(
        "SELECT name FROM system.tables WHERE database = 'evrate' AND name LIKE 'meter_values%' ORDER BY name",
      )
    ).map((t) => t.name);

  beforeAll(async () => {
    env = await open();
  });
  afterAll(async () => env?.dispose());

  it('keeps a Raw and a SignedData sample of the same instant after OPTIMIZE FINAL', async () => {
    expect(await sorting_key()).toBe(full_key);
    await env.store.insert_json_rows(
      'meter_values',
      meter_value_json_rows(context, [
        {
          timestampMs: at_ms,
          sampledValues: [sample('Raw', '12345'), sample('SignedData', 'OCMF|{"RD":[]}')],
        },
      ]),
    );
    await env.store.exec('OPTIMIZE TABLE evrate.meter_values FINAL');
    const rows = await env.store.query<{ format: string; value: string }>(
      "SELECT format, value FROM evrate.meter_values FINAL WHERE charge_point_id = 'CP-EICH' ORDER BY format",
    );
    expect(rows).toEqual([
      { format: 'Raw', value: '12345' },
      { format: 'SignedData', value: 'OCMF|{"RD":[]}' },
    ]);
  });

  it('rebuilds a populated table with the old key, keeping every row', async () => {
    // meter_values as an install before migration 33 has it: migrations 1 and 2, old key.
    await env.store.exec('DROP TABLE evrate.meter_values');
    await env.store.exec(migrations[0]!.statements('evrate')[0] as string);
    await env.store.exec('ALTER TABLE evrate.meter_values ADD COLUMN evse_id UInt32 DEFAULT 0');
    await env.store.exec("ALTER TABLE evrate.meter_values ADD COLUMN signed_data String DEFAULT ''");
    expect(await sorting_key()).toBe(
      'charge_point_id, transaction_id, timestamp_ms, measurand, phase, location, context',
    );
    // 5,000 rows over three months, each with its own old key.
    await env.store.exec(
      `INSERT INTO evrate.meter_values (charge_point_id, connector_id, transaction_id, timestamp, timestamp_ms,
        received_at_ms, measurand, phase, location, unit, context, format, value, evse_id, signed_data)
      SELECT concat('CP', toString(number % 7)), 1, toString(number % 50),
        toDateTime(${at_ms / 1000} - number * 1800, 'UTC'), (${at_ms / 1000} - number * 1800) * 1000,
        ${at_ms}, 'Energy.Active.Import.Register', '', 'Outlet', 'Wh', 'Sample.Periodic',
        if(number % 2 = 0, 'Raw', 'SignedData'), toString(number), 1, if(number % 2 = 0, '', 'sig')
      FROM numbers(5000)`,
    );
    const fingerprint = async () =>
      (
        await env.store.query<{ n: string | number; h: string | number }>(
          `SELECT count() AS n, toString(sum(cityHash64(charge_point_id, transaction_id, timestamp_ms, format, value,
            signed_data, evse_id))) AS h FROM evrate.meter_values FINAL`,
        )
      ).map((r) => ({ n: Number(r.n), h: String(r.h) }))[0];
    const before = await fingerprint();
    expect(before?.n).toBe(5000);
    // Every version recorded but 33, as on a server that ran the previous release.
    await env.store.exec('DROP TABLE evrate.schema_migrations');
    await env.store.exec(
      `CREATE TABLE evrate.schema_migrations (version UInt32, name String, applied_at_ms Int64)
       ENGINE = ReplacingMergeTree ORDER BY version`,
    );
    await env.store.exec(
      `INSERT INTO evrate.schema_migrations VALUES ${migrations
        .filter((m) => m.version !== 33)
        .map((m) => `(${m.version}, 'earlier', 0)`)
        .join(', ')}`,
    );

    expect(await migrate(env.store)).toEqual([33]);
    expect(await sorting_key()).toBe(full_key);
    expect(await tables()).toEqual(['meter_values']);
    expect(await fingerprint()).toEqual(before);
    await env.store.exec('OPTIMIZE TABLE evrate.meter_values FINAL');
    expect(await fingerprint()).toEqual(before);
    // Run again: nothing to rebuild, nothing changes.
    expect(await migrate(env.store)).toEqual([]);
    expect(await fingerprint()).toEqual(before);
  });
});
