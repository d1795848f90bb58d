import type { Queryable } from '../ledger.js';
import { local_date } from '../period.js';
import type { DocumentLine, DocumentParties } from './issue.js';

/**
 * What invoices are built from, shared by the billing run (invoices/run.ts) and the per-session
 * invoices the rated feed issues (invoices/per-session.ts): the billed account with its legal
 * entity, its final unbilled sessions, and a session's invoice lines.
 */
export interface AccountForBilling {
  id: string;
  name: string;
  kind: string;
  currency: string;
  vat_id: string;
  email: string;
  address: unknown;
  payment_terms_days: number;
  billing_period: 'monthly' | 'per_session';
  legal_entity_id: string;
  entity_name: string;
  entity_vat_id: string;
  entity_address: unknown;
  entity_country_code: string;
  time_zone: string;
  fee_vat_percent: string;
}

/** Open accounts by id, in id order; `lock` takes their rows FOR UPDATE (the run's order). */
export async function accounts_for_billing(
  tx: Queryable,
  account_ids: readonly string[],
  lock: boolean,
): Promise<AccountForBilling[]> {
  return await tx.query<AccountForBilling>(
    `SELECT a.id, a.name, a.kind, a.currency, a.vat_id, a.email, a.address, a.payment_terms_days, a.billing_period,
       a.legal_entity_id, e.name AS entity_name, e.vat_id AS entity_vat_id, e.address AS entity_address,
       e.country_code AS entity_country_code, e.time_zone, trim_scale(e.fee_vat_percent)::text AS fee_vat_percent
     FROM accounts a JOIN legal_entities e ON e.id = a.legal_entity_id
     WHERE a.id = ANY($1::text[]) AND NOT a.closed ORDER BY a.id ${lock ? 'FOR UPDATE OF a' : ''}`,
    [account_ids],
  );
}

export function parties_of(account: AccountForBilling): DocumentParties {
  return {
    account_id: account.id,
    legal_entity_id: account.legal_entity_id,
    time_zone: account.time_zone,
    payment_terms_days: account.payment_terms_days,
    seller: {
      legal_entity_id: account.legal_entity_id,
      name: account.entity_name,
      vat_id: account.entity_vat_id,
      address: account.entity_address,
      country_code: account.entity_country_code,
    },
    buyer: {
      account_id: account.id,
      name: account.name,
      kind: account.kind,
      vat_id: account.vat_id,
      email: account.email,
      address: account.address,
    },
  };
}

export interface BillableSession {
  account_id: string;
  session_id: string;
  version: number;
  id_tag: string;
  charge_point_id: string;
  evse_id: number | null;
  station_id: string;
  started_at_ms: number;
  stopped_at_ms: number;
  energy_wh: number;
  duration_s: number;
  tariff_id: string;
  tariff_version: number;
  currency: string;
  net_minor: number;
  vat_percent: string;
  /** The session's net per VAT rate (rated-versions.ts session_vat_parts); null on versions recorded before it. */
  vat_parts: { vat_percent: string; net_minor: number }[] | null;
  cost_centre_id: string | null;
}

/**
 * Final, not yet invoiced sessions, locked FOR UPDATE (a concurrent biller waits, then sees them
 * billed and leaves them out), in account, stop and id order. `where` narrows them: by accounts
 * and a stop bound for the run, by session ids of accounts billed per session for the feed.
 */
export async function billable_sessions(
  tx: Queryable,
  where:
    | { account_ids: readonly string[]; stopped_before_ms: number }
    | { per_session_ids: readonly string[] },
): Promise<BillableSession[]> {
  const by_accounts = 'account_ids' in where;
  return await tx.query<BillableSession>(
    `SELECT s.account_id, v.session_id, v.version, v.id_tag, v.charge_point_id, v.evse_id, v.station_id, v.started_at_ms,
       v.stopped_at_ms, v.energy_wh, v.duration_s, v.tariff_id, v.tariff_version, v.currency, v.net_minor,
       trim_scale(v.vat_percent)::text AS vat_percent, v.vat_parts, t.cost_centre_id
     FROM sessions s JOIN session_versions v ON v.session_id = s.session_id AND v.version = s.final_version
     LEFT JOIN account_tokens t ON t.uid = s.id_tag
     WHERE ${by_accounts ? 's.account_id = ANY($1::text[]) AND s.stopped_at_ms < $2' : "s.session_id = ANY($1::text[]) AND s.account_id IN (SELECT id FROM accounts WHERE billing_period = 'per_session' AND NOT closed)"}
       AND s.final_version IS NOT NULL AND s.billed_version IS NULL
     ORDER BY s.account_id, s.stopped_at_ms, s.session_id
     FOR UPDATE OF s`,
    by_accounts ? [where.account_ids, where.stopped_before_ms] : [where.per_session_ids],
  );
}

/**
 * A session's invoice lines: one per VAT rate of its net (one line for a session of one rate), each
 * with the session's facts; the lines' nets add up to the session's rated net excl. VAT.
 */
export function session_lines(s: BillableSession, time_zone: string, note: string): DocumentLine[] {
  const parts = s.vat_parts ?? [{ vat_percent: s.vat_percent, net_minor: s.net_minor }];
  const day = local_date(s.stopped_at_ms, time_zone);
  const base = `Charging ${day} ${s.station_id}${s.evse_id === null ? '' : `/${s.evse_id}`}`;
  return parts.map((part) => ({
    kind: 'session',
    description: `${base}${parts.length > 1 ? ` (part at ${part.vat_percent}% VAT)` : ''}${note}`,
    net_minor: part.net_minor,
    vat_percent: part.vat_percent,
    session_id: s.session_id,
    session_version: s.version,
    started_at_ms: s.started_at_ms,
    stopped_at_ms: s.stopped_at_ms,
    charge_point_id: s.charge_point_id,
    evse_id: s.evse_id,
    station_id: s.station_id,
    energy_wh: s.energy_wh,
    duration_s: s.duration_s,
    tariff_id: s.tariff_id,
    tariff_version: s.tariff_version,
    id_tag: s.id_tag,
    cost_centre_id: s.cost_centre_id,
  }));
}

/** Marks the sessions billed by the drafts `invoice_ids[draft]`; all of them or it throws. */
export async function mark_billed(
  tx: Queryable,
  billed: readonly { session_id: string; draft: number }[],
  invoice_ids: readonly number[],
): Promise<void> {
  if (billed.length === 0) return;
  const updated = await tx.query<{ n: number }>(
    `WITH b AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(session_id text, invoice_id int8)),
     u AS (UPDATE sessions s SET billed_version = s.final_version, billed_invoice_id = b.invoice_id FROM b
           WHERE s.session_id = b.session_id AND s.billed_version IS NULL RETURNING 1)
     SELECT count(*)::int8 AS n FROM u`,
    [JSON.stringify(billed.map((b) => ({ session_id: b.session_id, invoice_id: invoice_ids[b.draft] })))],
  );
  if (updated[0]!.n !== billed.length) throw new Error('sessions changed under the billing');
}
