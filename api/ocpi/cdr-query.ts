import { ident, SqlFragment, sql } from '../../analytics/sql.js';
import { type Store, version_at_least } from '../../analytics/store.js';
import type { CdrRow } from './cdr-object.js';
import { type Party, party_key } from './partners.js';

/** Which CDRs: the parties of the tokens (never empty), an optional last_updated window. */
export interface CdrFilter {
  parties: readonly Party[];
  /** Inclusive. */
  updated_from_ms?: number;
  /** Exclusive. */
  updated_to_ms?: number;
  /** Keyset: only CDRs after this (last_updated, session_id), for the push cursor and Link. */
  after?: { last_updated_ms: number; session_id: string };
}

const cdr_columns = `session_id, version, charge_point_id, connector_id, evse_id, id_tag, started_at_ms,
  stopped_at_ms, energy_wh, currency, tariff_id, toString(total_excl_vat) AS total_excl_vat,
  toString(total_incl_vat) AS total_incl_vat, toString(energy_cost_excl_vat) AS energy_cost_excl_vat,
  toString(time_cost_excl_vat) AS time_cost_excl_vat, toString(parking_cost_excl_vat) AS parking_cost_excl_vat,
  toString(fixed_cost_excl_vat) AS fixed_cost_excl_vat, duration_s, parking_s, payment_method, party,
  breakdown, rated_at_ms, token_type, contract_id, auth_method, cdr_last_updated_ms`;

function where_clause(db: string, filter: CdrFilter, with_after: boolean): SqlFragment {
  if (filter.parties.length === 0) throw new RangeError('a CDR query needs at least one party');
  const parties = [...new Set(filter.parties.map(party_key))];
  const parts: SqlFragment[] = [
    // One party (the usual partner) as an equality: see the ORDER BY in query_cdr_page.
    parties.length === 1 ? sql`party = ${parties[0]!}` : sql`party IN ${parties}`,
    // A provisional version (closed after a silence, no stop yet) is not a final CDR.
    sql`provisional = 0`,
    // A version of a session that a later version replaced under another key (the feed keeps
    // both when the key moved; see migrations 32 and 34). GLOBAL: on a cluster the set is read once,
    // from every shard, by the node that asks.
    new SqlFragment(
      `(session_id, version) GLOBAL NOT IN (SELECT session_id, superseded_version FROM ${db}.cdr_feed_superseded)`,
    ),
  ];
  // mod_cdrs GET: date_from and date_to are on last_updated, the time the version was rated.
  if (filter.updated_from_ms !== undefined) parts.push(sql`cdr_last_updated_ms >= ${filter.updated_from_ms}`);
  if (filter.updated_to_ms !== undefined) parts.push(sql`cdr_last_updated_ms < ${filter.updated_to_ms}`);
  if (with_after && filter.after !== undefined) {
    const at = filter.after.last_updated_ms;
    parts.push(
      sql`(cdr_last_updated_ms > ${at} OR (cdr_last_updated_ms = ${at} AND session_id > ${filter.after.session_id}))`,
    );
  }
  return new SqlFragment(parts.map((p) => p.text).join(' AND '));
}

/**
 * cdr_feed_by_update holds every rated session ordered by (party, cdr_last_updated_ms,
 * session_id), the order of a page, so a page reads one range of the key from the cursor on
 * (migration 34). FINAL collapses redelivered copies and versions with the same key; its
 * partitions are months of cdr_last_updated_ms, a key column,
 * so on servers that have the setting (21.1 and later) FINAL is told not to merge across them.
 */
function settings_for(store: Store): string {
  return version_at_least(store.server_version, 21, 1)
    ? ' SETTINGS do_not_merge_across_partitions_select_final = 1'
    : '';
}

/**
 * The CDRs of a page, ordered stably by last_updated then id so that the same request gives the
 * same page (transport_and_format "Paginated Response"), and the number matching the filter
 * (without `after`, which only says where the page starts).
 */
export async function query_cdr_page(
  store: Store,
  filter: CdrFilter,
  page: { offset: number; limit: number },
  /** false: no count query (total is then the rows returned); a number: a count already known. */
  with_total: boolean | number,
): Promise<{ rows: CdrRow[]; total: number }> {
  const db = ident(store.database).text;
  const table = `${db}.cdr_feed_by_update`;
  const where = where_clause(db, filter, true);
  // For one party, (party, cdr_last_updated_ms, session_id) is the same order as
  // (cdr_last_updated_ms, session_id) and is the feed's key: the page is read in key order and the read stops after `limit` rows
  // (about 2x faster than sorting the range at a million CDRs). Several parties are interleaved
  // by last_updated, which needs the sort.
  const order_by =
    new Set(filter.parties.map(party_key)).size === 1
      ? 'party, cdr_last_updated_ms, session_id'
      : 'cdr_last_updated_ms, session_id';

  const [rows, count] = await Promise.all([
    store.query<CdrRow>(
      `SELECT ${cdr_columns} FROM ${table} FINAL WHERE ${where} ORDER BY ${order_by}
       LIMIT ${sql`${page.limit}`} OFFSET ${sql`${page.offset}`}${settings_for(store)}`,
    ),
    with_total === true
      ? store.query<{ n: string | number }>(
          `SELECT count() AS n FROM ${table} FINAL WHERE ${where_clause(db, filter, false)}${settings_for(store)}`,
        )
      : Promise.resolve([]),
  ]);
  if (typeof with_total === 'number') return { rows, total: with_total };
  return { rows, total: with_total ? Number(count[0]?.n ?? 0) : rows.length };
}
