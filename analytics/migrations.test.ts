import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { store_transports, type TestStore } from '../test/helpers/stores.js';
import { migrate, migrations } from './migrations.js';
import type { Store } from './store.js';

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
  it('upgrades a v33 store: the v34 columns read their defaults on old rows, which reach the CDR feed', async () => {
    // A second database on the same server, migrated to v33 only, holding rows of that time.
    await env.store.exec('CREATE DATABASE IF NOT EXISTS upgrade');
    const upgrade: Store = { ...env.store, database: 'upgrade' };
    const insert = (table: string, row: Record<string, unknown>) =>
      env.store.exec(`INSERT INTO upgrade.${table} FORMAT JSONEachRow ${JSON.stringify(row)}`);
    await migrate(upgrade, { versions_max: 33 });
    const stop_ms = Date.UTC(2026, 10, 2, 10, 0, 0);
    await insert('rated_sessions', {
      session_id: 'S-V33',
      version: 1,
      charge_point_id: 'CP-V33',
      connector_id: 1,
      id_tag: 'TAG-V33',
      started_at: stop_ms / 1000 - 3600,
      stopped_at: stop_ms / 1000,
      started_at_ms: stop_ms - 3_600_000,
      stopped_at_ms: stop_ms,
      currency: 'EUR',
      total_excl_vat: 1.5,
      total_incl_vat: 1.79,
      rated_at_ms: stop_ms,
      party: 'DE*OLD',
      payment_method: 'ROAMING',
    });
    // The same rejected frame twice: written again when its batch was redelivered.
    const rejection = {
      charge_point_id: 'CP-V33',
      node_id: 'n1',
      action: 'MeterValues',
      error_code: 'FormatViolation',
      at: stop_ms / 1000,
      at_ms: stop_ms,
    };
    await insert('ocpp_rejections', rejection);
    await insert('ocpp_rejections', rejection);

    expect(await migrate(upgrade)).toEqual(migrations.map((m) => m.version).filter((v) => v >= 34));
    const [row] = await env.store.query<Record<string, unknown>>(
      `SELECT token_type, contract_id, auth_method, group_id, anomalies, review, last_updated_ms
       FROM upgrade.rated_sessions WHERE session_id = 'S-V33'`,
    );
    // Int64 comes back quoted in JSON on both servers.
    expect({ ...row, review: Number(row?.review), last_updated_ms: Number(row?.last_updated_ms) }).toEqual({
      token_type: '',
      contract_id: '',
      auth_method: '',
      group_id: '',
      anomalies: '{}',
      review: 0,
      last_updated_ms: 0,
    });
    // The old CDR is in the new feed, its last_updated the rated_at_ms it had (0 means unknown).
    const feed = await env.store.query<{ session_id: string; cdr_last_updated_ms: string | number }>(
      'SELECT session_id, cdr_last_updated_ms FROM upgrade.cdr_feed_by_update FINAL',
    );
    expect(feed.map((f) => [f.session_id, Number(f.cdr_last_updated_ms)])).toEqual([['S-V33', stop_ms]]);
    // The rejections table was rebuilt with its new key; both copies came along and merge into one.
    const [table] = await env.store.query<{ engine: string; sorting_key: string }>(
      "SELECT engine, sorting_key FROM system.tables WHERE database = 'upgrade' AND name = 'ocpp_rejections'",
    );
    expect(table?.engine).toBe('ReplacingMergeTree');
    expect(table?.sorting_key.replaceAll(' ', '')).toBe('charge_point_id,at_ms,node_id,action,error_code');
    await env.store.exec('OPTIMIZE TABLE upgrade.ocpp_rejections FINAL');
    const [n] = await env.store.query<{ n: string | number }>(
      'SELECT count() AS n FROM upgrade.ocpp_rejections',
    );
    expect(Number(n?.n)).toBe(1);
    for (const table of ['rated_session_versions', 'cdr_feed_by_update']) {
      const columns = await env.store.query<{ name: string; type: string }>(
        `SELECT name, type FROM system.columns WHERE database = 'upgrade' AND table = '${table}'
         AND name IN ('token_type', 'contract_id', 'auth_method', 'group_id', 'anomalies', 'review', 'last_updated_ms')
         ORDER BY name`,
      );
      expect(columns.map((c) => `${c.name} ${c.type}`)).toEqual([
        'anomalies String',
        'auth_method String',
        'contract_id String',
        'group_id String',
        'last_updated_ms Int64',
        'review UInt8',
        'token_type String',
      ]);
    }
  });
});
