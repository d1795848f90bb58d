import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrations } from '../analytics/migrations.js';
import { type RatedSessionRow, rated_session_json } from '../analytics/sessions.js';
import { query_cdr_page } from '../api/ocpi/cdr-query.js';
import { store_transports, type TestStore } from './helpers/stores.js';

/**
 * The CDR feed (migration 32, ordered by last_updated since migration 34: cdr_feed_by_update) is
 * filled from rated_sessions by a materialized view and ordered by (party, last_updated,
 * session_id). A version that moves a session's last_updated lands under another key, so the CDR
 * query must still return each session once, with its latest final version only.
 */

const party = { country_code: 'DE', party_id: 'FED' };
const stop_ms = Date.UTC(2026, 10, 3, 12, 0, 0);

function version_row(
  session_id: string,
  version: number,
  options: { stopped_at_ms: number; provisional?: number; total?: string; last_updated_ms?: number },
): RatedSessionRow {
  return {
    session_id,
    version,
    charge_point_id: 'CP-FEED',
    connector_id: 1,
    transaction_id: session_id,
    id_tag: 'TAG-FEED',
    started_at_ms: stop_ms - 3_600_000,
    stopped_at_ms: options.stopped_at_ms,
    meter_start_wh: 0,
    meter_stop_wh: 10_000,
    energy_wh: 10_000,
    stop_reason: 'Local',
    tariff_id: 'default',
    tariff_version: 1,
    currency: 'EUR',
    total_excl_vat: options.total ?? '3.00',
    total_incl_vat: options.total ?? '3.00',
    breakdown: '{}',
    // As the rating service writes it: last_updated is the version's stop.
    rated_at_ms: options.stopped_at_ms,
    party: 'DE*FED',
    payment_method: 'ROAMING',
    provisional: options.provisional ?? 0,
    ...(options.last_updated_ms === undefined ? {} : { last_updated_ms: options.last_updated_ms }),
  };
}

describe.each(store_transports)('cdr_feed on $name', ({ open }) => {
  let env: TestStore;
  const write = (...rows: RatedSessionRow[]) =>
    env.store.insert_json_rows('rated_sessions', rows.map(rated_session_json));
  const cdrs = async () => {
    const page = await query_cdr_page(env.store, { parties: [party] }, { offset: 0, limit: 100 }, true);
    return {
      total: page.total,
      rows: page.rows.map((r) => ({
        id: r.session_id,
        version: Number(r.version),
        last_updated_ms: Number(r.cdr_last_updated_ms),
        total_excl_vat: Number(r.total_excl_vat),
      })),
    };
  };

  beforeAll(async () => {
    env = await open();
  });
  afterAll(async () => env?.dispose());

  it('returns a late-stopped and then re-rated session once, with its latest final version', async () => {
    // Closed after a silence (provisional), then the real stop five minutes later.
    await write(version_row('S-LATE', 1, { stopped_at_ms: stop_ms, provisional: 1 }));
    expect((await cdrs()).rows).toEqual([]);
    await write(version_row('S-LATE', 2, { stopped_at_ms: stop_ms + 300_000, total: '4.00' }));
    expect(await cdrs()).toEqual({
      total: 1,
      rows: [{ id: 'S-LATE', version: 2, last_updated_ms: stop_ms + 300_000, total_excl_vat: 4 }],
    });
    // A re-rating that corrected the stop once more.
    await write(version_row('S-LATE', 3, { stopped_at_ms: stop_ms + 240_000, total: '3.50' }));
    expect(await cdrs()).toEqual({
      total: 1,
      rows: [{ id: 'S-LATE', version: 3, last_updated_ms: stop_ms + 240_000, total_excl_vat: 3.5 }],
    });
    // A redelivered older version changes nothing, before or after merges.
    await write(version_row('S-LATE', 2, { stopped_at_ms: stop_ms + 300_000, total: '4.00' }));
    expect((await cdrs()).rows.map((r) => r.version)).toEqual([3]);
    await env.store.exec('OPTIMIZE TABLE evrate.cdr_feed_by_update FINAL');
    expect(await cdrs()).toEqual({
      total: 1,
      rows: [{ id: 'S-LATE', version: 3, last_updated_ms: stop_ms + 240_000, total_excl_vat: 3.5 }],
    });
  });

  it('replaces a version re-rated at the same stop, and leaves out a session still provisional', async () => {
    await write(version_row('S-SAME', 1, { stopped_at_ms: stop_ms + 600_000 }));
    await write(version_row('S-SAME', 2, { stopped_at_ms: stop_ms + 600_000, total: '9.00' }));
    await write(version_row('S-OPEN', 1, { stopped_at_ms: stop_ms + 700_000, provisional: 1 }));
    const { rows, total } = await cdrs();
    expect(rows.map((r) => `${r.id} v${r.version} ${r.total_excl_vat}`)).toEqual([
      'S-LATE v3 3.5',
      'S-SAME v2 9',
    ]);
    expect(total).toBe(2);
  });

  it('backfills sessions stored before it existed, and a repeated backfill doubles nothing', async () => {
    // Rows that reached rated_sessions without the views (as before migrations 32 and 34).
    await env.store.exec('DROP TABLE evrate.cdr_feed_by_update_mv');
    await env.store.exec('DROP TABLE evrate.cdr_feed_superseded_mv');
    await write(
      version_row('S-OLD', 1, { stopped_at_ms: stop_ms - 600_000, provisional: 1 }),
      version_row('S-OLD', 2, { stopped_at_ms: stop_ms - 500_000 }),
    );
    expect((await cdrs()).rows.map((r) => r.id)).not.toContain('S-OLD');
    // The migrations run again, as after a crash before they were recorded, and once more.
    for (let run = 0; run < 2; run++) {
      for (const version of [32, 34]) {
        const migration = migrations.find((m) => m.version === version)!;
        for (const statement of migration.statements('evrate')) {
          if (typeof statement === 'string') await env.store.exec(statement);
        }
      }
    }
    // Migration 34 leaves no copy of the feed in the old order behind.
    const old_tables = await env.store.query<{ name: string }>(
      "SELECT name FROM system.tables WHERE database = 'evrate' AND name IN ('cdr_feed', 'cdr_feed_mv')",
    );
    expect(old_tables).toEqual([]);
    const { rows, total } = await cdrs();
    expect(rows.map((r) => `${r.id} v${r.version}`)).toEqual(['S-OLD v2', 'S-LATE v3', 'S-SAME v2']);
    expect(total).toBe(3);
  });

  it('interleaves the CDRs of several parties by last_updated', async () => {
    await write({ ...version_row('S-NL', 1, { stopped_at_ms: stop_ms }), party: 'NL*TWO' });
    const page = await query_cdr_page(
      env.store,
      { parties: [party, { country_code: 'NL', party_id: 'TWO' }] },
      { offset: 0, limit: 100 },
      true,
    );
    expect(page.rows.map((r) => r.session_id)).toEqual(['S-OLD', 'S-NL', 'S-LATE', 'S-SAME']);
    expect(page.total).toBe(4);
  });
  it('lists a re-rated version in a date_from pull taken after the first version was pulled', async () => {
    // Version 1 rated at 13:00; the partner pulls at 13:30 from 12:30 (after the CDRs of the
    // tests above, last_updated 12:10 at the latest) and remembers 13:30.
    // Version 2 re-rated at 14:00 with the same stop (so the same rated_at_ms): its last_updated
    // is 14:00, inside the next pull from 13:30; before migration 34 it kept last_updated 12:00.
    const rated_1_ms = stop_ms + 3_600_000;
    const pulled_ms = stop_ms + 5_400_000;
    const rated_2_ms = stop_ms + 7_200_000;
    const pull = async (from_ms: number) =>
      (
        await query_cdr_page(
          env.store,
          { parties: [party], updated_from_ms: from_ms },
          { offset: 0, limit: 100 },
          true,
        )
      ).rows.map((r) => `${r.session_id} v${Number(r.version)} ${Number(r.cdr_last_updated_ms)}`);
    await write(version_row('S-RERATED', 1, { stopped_at_ms: stop_ms, last_updated_ms: rated_1_ms }));
    expect(await pull(stop_ms + 1_800_000)).toEqual([`S-RERATED v1 ${rated_1_ms}`]);
    await write(
      version_row('S-RERATED', 2, { stopped_at_ms: stop_ms, last_updated_ms: rated_2_ms, total: '2.50' }),
    );
    expect(await pull(pulled_ms)).toEqual([`S-RERATED v2 ${rated_2_ms}`]);
    // And the whole list has it once, in its new place (after S-SAME, last_updated stop + 10 min).
    const all = (await cdrs()).rows.map((r) => `${r.id} v${r.version}`);
    expect(all.filter((id) => id.startsWith('S-RERATED'))).toEqual(['S-RERATED v2']);
    expect(all[all.length - 1]).toBe('S-RERATED v2');
  });
});
