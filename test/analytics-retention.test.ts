import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../analytics/migrations.js';
import { apply_raw_retention, has_table_ttl, raw_retention_days_from_env } from '../analytics/retention.js';
import { store_transports, type TestStore } from './helpers/stores.js';

function meter_row(cp: string, ms: number): string {
  return JSON.stringify({
    charge_point_id: cp,
    connector_id: 1,
    transaction_id: 'T',
    timestamp: Math.floor(ms / 1000),
    timestamp_ms: ms,
    received_at_ms: ms,
    measurand: 'Energy.Active.Import.Register',
    phase: '',
    location: '',
    unit: 'Wh',
    context: '',
    format: '',
    value: '1',
  });
}

describe('ANALYTICS_RAW_RETENTION_DAYS', () => {
  it('defaults to 0 (keep forever) and refuses what is not a day count', () => {
    expect(raw_retention_days_from_env({})).toBe(0);
    expect(raw_retention_days_from_env({ ANALYTICS_RAW_RETENTION_DAYS: '400' })).toBe(400);
    expect(() => raw_retention_days_from_env({ ANALYTICS_RAW_RETENTION_DAYS: '-1' })).toThrow(
      'ANALYTICS_RAW_RETENTION_DAYS',
    );
    expect(() => raw_retention_days_from_env({ ANALYTICS_RAW_RETENTION_DAYS: '1.5' })).toThrow(
      'ANALYTICS_RAW_RETENTION_DAYS',
    );
  });
});

describe.each(store_transports)('raw value retention on $name', ({ open }) => {
  let env: TestStore;
  beforeAll(async () => {
    env = await open();
  });
  afterAll(async () => env?.dispose());

  it('removes raw values older than the retention and keeps the recent ones', async () => {
    const now = Date.UTC(2026, 5, 15); // 15 June 2026; cutoff 60 days before: 16 April
    const rows = [
      meter_row('CP-OLD', Date.UTC(2026, 0, 10)), // January: expired
      meter_row('CP-OLD', Date.UTC(2026, 1, 10)), // February: expired
      meter_row('CP-NEW', Date.UTC(2026, 5, 1)), // June: kept
      // Far in the future so that the TTL (relative to the real clock) keeps it too.
      meter_row('CP-NEW', Date.UTC(2100, 0, 1)),
    ];
    await env.store.insert_json_rows('meter_values', rows);
    const outcome = await apply_raw_retention(env.store, 60, now);
    if (has_table_ttl(env.store.server_version)) {
      expect(outcome.method).toBe('ttl');
      await env.store.exec('OPTIMIZE TABLE evrate.meter_values FINAL');
      // A second start with the same setting leaves the TTL as it is (no rewrite of every part).
      const statements: string[] = [];
      const exec = env.store.exec.bind(env.store);
      const spied = {
        ...env.store,
        exec: async (q: string) => {
          statements.push(q);
          return exec(q);
        },
      };
      await migrate(spied, { raw_retention_days: 60 });
      expect(statements.filter((q) => q.includes('TTL') && q.includes('meter_values'))).toEqual([]);
    } else {
      expect(outcome).toEqual({ method: 'drop_partitions', dropped_partitions: ['202601', '202602'] });
    }
    const left = await env.store.query<{ cp: string; n: string }>(
      'SELECT charge_point_id AS cp, count() AS n FROM evrate.meter_values GROUP BY cp ORDER BY cp',
    );
    expect(left.find((r) => r.cp === 'CP-OLD')).toBeUndefined();
    // The TTL counts from the real clock (past August 2026), so it also expires the June row; the
    // partition drop counts from `now` and keeps it.
    const new_rows = has_table_ttl(env.store.server_version) ? 1 : 2;
    expect(left).toEqual([{ cp: 'CP-NEW', n: expect.anything() }]);
    expect(Number(left[0]!.n)).toBe(new_rows);
    const far = await env.store.query<{ n: string }>(
      'SELECT count() AS n FROM evrate.meter_values WHERE toYear(timestamp) = 2100',
    );
    expect(Number(far[0]!.n)).toBe(1);
  });
});
