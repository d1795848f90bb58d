import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { store_transports, type TestStore } from '../test/helpers/stores.js';
import { cluster_ddl } from './cluster.js';
import { sql } from './sql.js';

const ddl = cluster_ddl({ cluster: 'evrate_cluster', database: 'evrate', raw_retention_days: 400 });
const statements = ddl.filter((s) => !s.startsWith('--'));

describe('cluster DDL', () => {
  it('makes every table a replicated local table with a Distributed table of the same name over it', () => {
    const locals = statements.filter((s) => /^CREATE TABLE IF NOT EXISTS evrate\.\w+_local /.test(s));
    const names = locals.map((s) => /evrate\.(\w+)_local/.exec(s)![1]);
    expect(names).toEqual(
      expect.arrayContaining([
        'meter_values',
        'rated_sessions',
        'session_facts',
        'connector_status',
        'tariffs',
      ]),
    );
    for (const local of locals)
      expect(local).toMatch(
        /ENGINE = Replicated\w*MergeTree\('\/clickhouse\/tables\/\{shard\}\/evrate\/\w+_local', '\{replica\}'/,
      );
    for (const name of names) {
      expect(statements).toContainEqual(
        expect.stringMatching(
          new RegExp(
            `^CREATE TABLE IF NOT EXISTS evrate\\.${name} ON CLUSTER evrate_cluster AS evrate\\.${name}_local\\s+ENGINE = Distributed\\(evrate_cluster, evrate, ${name}_local, `,
          ),
        ),
      );
    }
    // No table is left unreplicated.
    expect(statements.filter((s) => /ENGINE = (Replacing|Summing|Aggregating)?MergeTree/.test(s))).toEqual(
      [],
    );
  });

  it('keeps every version of a session on one shard and runs the rollup view there', () => {
    for (const name of ['rated_sessions', 'rated_session_versions', 'session_facts']) {
      expect(statements).toContainEqual(
        expect.stringContaining(
          `ENGINE = Distributed(evrate_cluster, evrate, ${name}_local, cityHash64(session_id))`,
        ),
      );
    }
    const view = statements.find((s) => s.startsWith('CREATE MATERIALIZED VIEW'))!;
    expect(view).toContain('TO evrate.session_facts_local AS');
    expect(view).toContain('FROM evrate.rated_sessions_local');
    expect(statements.find((s) => s.includes('rated_session_versions_local ON CLUSTER'))).toContain(
      'AS evrate.rated_sessions_local',
    );
    expect(statements.find((s) => s.includes('meter_values_local ON CLUSTER evrate_cluster ('))).toContain(
      'TTL timestamp + toIntervalDay(400)',
    );
    expect(statements).toContain(
      "ALTER TABLE evrate.rated_sessions_local ON CLUSTER evrate_cluster ADD COLUMN IF NOT EXISTS payment_method String DEFAULT ''",
    );
  });
});

describe.each(store_transports.filter((t) => t.name === 'chdb'))(
  'cluster DDL parsed by $name',
  ({ open }) => {
    let env: TestStore;
    beforeAll(async () => {
      env = await open();
    });
    afterAll(async () => env?.dispose());

    it('is valid ClickHouse SQL, statement by statement', async () => {
      for (const statement of statements) {
        const [row] = await env.store.query<{ q: string }>(sql`SELECT formatQuery(${statement}) AS q`.text);
        expect(row!.q.length).toBeGreaterThan(0);
      }
    });
  },
);
