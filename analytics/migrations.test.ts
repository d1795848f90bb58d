import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { store_transports, type TestStore } from '../test/helpers/stores.js';
import { migrate, migrations } from './migrations.js';

describe.each(store_transports)('migrations on $name', ({ open }) => {
  let env: TestStore;
  beforeAll(async () => {
    env = await open();
  });
  afterAll(async () => env?.dispose());

  it('applied every version once, and a second run applies nothing', async () => {
    const rows = await env.store.query<{ version: number }>(
      'SELECT version FROM evrate.schema_migrations FINAL ORDER BY version',
    );
    expect(rows.map((r) => Number(r.version))).toEqual(migrations.map((m) => m.version));
    expect(await migrate(env.store)).toEqual([]);
  });

  it('added the session dimensions to rated_sessions with their defaults', async () => {
    const columns = await env.store.query<{ name: string; type: string }>(
      "SELECT name, type FROM system.columns WHERE database = 'evrate' AND table = 'rated_sessions'",
    );
    const types = new Map(columns.map((c) => [c.name, c.type]));
    expect(types.get('payment_method')).toBe('String');
    expect(types.get('provisional')).toBe('UInt8');
    expect(types.get('energy_cost_excl_vat')).toBe('Decimal(18, 4)');
    const tables = await env.store.query<{ name: string }>(
      "SELECT name FROM system.tables WHERE database = 'evrate' ORDER BY name",
    );
    expect(tables.map((t) => t.name)).toEqual(
      expect.arrayContaining(['charger_connections', 'connector_status', 'ocpp_rejections']),
    );
  });
});
