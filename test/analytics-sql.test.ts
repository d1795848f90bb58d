import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from '../analytics/sql.js';
import { store_transports, type TestStore } from './helpers/stores.js';

/** Strings that would end, bend or smuggle a literal if any byte escaped the formatter. */
const hostile: string[] = [
  "'",
  '\\',
  "\\'",
  "'\\",
  "\\\\''",
  "' OR 1=1 --",
  "'); DROP TABLE evrate.meter_values; --",
  '\u0000',
  'a\u0000b\u0000',
  '\n\r\t\b\f\v',
  '\u0001\u001b[31m\u007f',
  '\\x27',
  '\\N',
  '"',
  '`',
  '$$',
  '{0}',
  '日本語 Ünïcødé ⚡',
  '😀🚗🔌',
  '\u2028\u2029\ufeff\u200b',
  `${"'\\".repeat(2000)}end`,
];

describe.each(store_transports)('sql literals round-trip through $name', ({ open }) => {
  let env: TestStore;
  beforeAll(async () => {
    env = await open();
    await env.store.exec(
      'CREATE TABLE IF NOT EXISTS evrate.literal_probe (i UInt32, s String) ENGINE = MergeTree ORDER BY i',
    );
  });
  afterAll(async () => env?.dispose());

  it('selects every hostile string back exactly', async () => {
    for (const value of hostile) {
      const rows = await env.store.query<{ v: string; n: number | string }>(
        sql`SELECT ${value} AS v, length(${value}) AS n`.text,
      );
      expect(rows).toHaveLength(1);
      expect(rows[0]!.v).toBe(value);
      expect(Number(rows[0]!.n)).toBe(Buffer.byteLength(value));
    }
  });

  it('stores every hostile string through INSERT VALUES and finds each by equality', async () => {
    const values = hostile.map((s, i) => sql`(${i}, ${s})`.text).join(', ');
    await env.store.exec(`INSERT INTO evrate.literal_probe (i, s) VALUES ${values}`);
    const rows = await env.store.query<{ i: number; s: string }>(
      'SELECT i, s FROM evrate.literal_probe ORDER BY i',
    );
    expect(rows.map((r) => r.s)).toEqual(hostile);
    for (const [i, value] of hostile.entries()) {
      const found = await env.store.query<{ i: number }>(
        sql`SELECT i FROM evrate.literal_probe WHERE s = ${value} AND s IN ${[value]}`.text,
      );
      expect(found.map((r) => Number(r.i))).toEqual([i]);
    }
    // The table and its neighbours are still there.
    const [tables] = await env.store.query<{ n: string }>(
      "SELECT count() AS n FROM system.tables WHERE database = 'evrate' AND name IN ('meter_values', 'literal_probe')",
    );
    expect(Number(tables!.n)).toBe(2);
  });
});
