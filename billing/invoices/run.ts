import { FieldError } from '../../core/field-error.js';
import { prorated_fee_minor, text_of_minor } from '../amounts.js';
import type { Ledger, Queryable } from '../ledger.js';
import { days_between, local_date, parse_period, period_bounds } from '../period.js';
import { create_drafts, type DocumentLine, type DraftDocument, issue_drafts } from './issue.js';

/**
 * A billing run closes a period (YYYY-MM in each account's legal entity's time zone) for all
 * accounts or some: per account and currency one invoice with a line per final rated session not
 * yet invoiced that stopped before the period's end (late arrivals and re-rated sessions of earlier
 * periods land here as adjustments), and a line per membership fee, pro-rated by days.
 *
 * Each account is closed in its own transaction: its row is locked (FOR UPDATE), its closure for the
 * period is checked and written with its invoices. So a rerun creates nothing new, a run killed
 * at any point is resumed by running again (closed accounts are skipped, the one in flight had
 * rolled back), and two runs at once, in two processes, close each account once: the second waits
 * for the lock, then finds the closure. Numbers come from the series row locked in the same
 * transaction (invoices/issue.ts), so they stay gapless.
 */
export interface BillingRunRequest {
  period: string;
  /** Unset: every open account. */
  account_ids?: string[];
  /** false leaves the invoices as drafts (issued later, one by one). */
  issue?: boolean;
}

export interface BillingRunStatus {
  id: number;
  period: string;
  account_ids: string[] | null;
  status: 'running' | 'finished' | 'failed';
  accounts_total: number;
  accounts_done: number;
  invoices_created: number;
  error: string;
  started_at_ms: number;
  finished_at_ms: number | null;
}

/** Lines one invoice may have; a larger one is refused loudly rather than built. */
export const invoice_lines_max = 500_000;
/**
 * Accounts closed per transaction: each is still closed whole or not at all, and a crash loses at
 * most one chunk's work (rolled back, redone by the next run).
 */
export const accounts_per_transaction = 50;
/** Attempts of one chunk's transaction after a deadlock or serialization failure. */
const account_attempts_max = 5;

export class BillingRunError extends FieldError {}

export async function validate_run_request(
  db: Queryable,
  request: BillingRunRequest,
  now_ms: number,
): Promise<void> {
  parse_period(request.period);
  if (request.account_ids !== undefined) {
    if (!Array.isArray(request.account_ids) || request.account_ids.length > 100_000) {
      throw new BillingRunError('account_ids', 'must be an array of at most 100000 account ids');
    }
    const known = await db.query<{ id: string }>(
      'SELECT id FROM accounts WHERE id = ANY($1::text[]) AND NOT closed',
      [request.account_ids],
    );
    const ids = new Set(known.map((k) => k.id));
    const index = request.account_ids.findIndex((id) => !ids.has(id));
    if (index >= 0) throw new BillingRunError(`account_ids[${index}]`, 'is not a known account');
  }
  const zones = await db.query<{ time_zone: string }>('SELECT DISTINCT time_zone FROM legal_entities');
  for (const { time_zone } of zones) {
    if (period_bounds(request.period, time_zone).start_ms > now_ms) {
      throw new BillingRunError('period', 'is in the future');
    }
  }
}

function is_retryable(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return code === '40P01' || code === '40001';
}

async function run_row(db: Queryable, id: number): Promise<BillingRunStatus | undefined> {
  const [row] = await db.query<BillingRunStatus>('SELECT * FROM billing_runs WHERE id = $1', [id]);
  return row;
}

export async function get_billing_run(db: Queryable, id: number): Promise<BillingRunStatus | undefined> {
  return await run_row(db, id);
}

export async function list_billing_runs(db: Queryable, limit: number): Promise<BillingRunStatus[]> {
  return await db.query<BillingRunStatus>('SELECT * FROM billing_runs ORDER BY id DESC LIMIT $1', [limit]);
}

/** Records the run; `execute_billing_run` does the work (the API answers in between). */
export async function create_billing_run(
  ledger: Ledger,
  request: BillingRunRequest,
  now_ms = Date.now(),
): Promise<number> {
  await validate_run_request(ledger, request, now_ms);
  const [row] = await ledger.query<{ id: number }>(
    `INSERT INTO billing_runs (period, account_ids, status, started_at_ms) VALUES ($1, $2, 'running', $3) RETURNING id`,
    [request.period, request.account_ids === undefined ? null : JSON.stringify(request.account_ids), now_ms],
  );
  return row!.id;
}

export async function execute_billing_run(
  ledger: Ledger,
  run_id: number,
  options: {
    issue?: boolean;
    now_ms?: () => number;
    on_chunk?: (account_ids: string[]) => Promise<void>;
  } = {},
): Promise<BillingRunStatus> {
  const run = await run_row(ledger, run_id);
  if (run === undefined) throw new Error(`no billing run ${run_id}`);
  const now = options.now_ms ?? Date.now;
  try {
    const accounts = await ledger.query<{ id: string }>(
      `SELECT id FROM accounts WHERE NOT closed AND ($1::jsonb IS NULL OR $1::jsonb ? id) ORDER BY id`,
      [run.account_ids === null ? null : JSON.stringify(run.account_ids)],
    );
    await ledger.query('UPDATE billing_runs SET accounts_total = $2 WHERE id = $1', [
      run_id,
      accounts.length,
    ]);
    for (let first = 0; first < accounts.length; first += accounts_per_transaction) {
      const chunk = accounts.slice(first, first + accounts_per_transaction).map((a) => a.id);
      for (let attempt = 1; ; attempt++) {
        try {
          await ledger.transaction((tx) =>
            close_accounts_period(tx, run, chunk, options.issue ?? true, now()),
          );
          break;
        } catch (error) {
          if (!is_retryable(error) || attempt >= account_attempts_max) throw error;
        }
      }
      await options.on_chunk?.(chunk);
    }
    await ledger.query(`UPDATE billing_runs SET status = 'finished', finished_at_ms = $2 WHERE id = $1`, [
      run_id,
      now(),
    ]);
  } catch (error) {
    await ledger
      .query(`UPDATE billing_runs SET status = 'failed', error = $2, finished_at_ms = $3 WHERE id = $1`, [
        run_id,
        error instanceof Error ? error.message : String(error),
        now(),
      ])
      .catch(() => {});
    throw error;
  }
  return (await run_row(ledger, run_id))!;
}

/** Creates and runs a billing run in this process. */
export async function run_billing(
  ledger: Ledger,
  request: BillingRunRequest,
  options: { now_ms?: () => number; on_chunk?: (account_ids: string[]) => Promise<void> } = {},
): Promise<BillingRunStatus> {
  const now = options.now_ms ?? Date.now;
  const id = await create_billing_run(ledger, request, now());
  return await execute_billing_run(ledger, id, { ...options, issue: request.issue ?? true });
}

interface AccountForRun {
  id: string;
  name: string;
  kind: string;
  currency: string;
  vat_id: string;
  email: string;
  address: unknown;
  payment_terms_days: number;
  legal_entity_id: string;
  entity_name: string;
  entity_vat_id: string;
  entity_address: unknown;
  entity_country_code: string;
  time_zone: string;
  fee_vat_percent: string;
}

interface BillableSession {
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
  cost_centre_id: string | null;
}

/**
 * A chunk of accounts' period, in the caller's transaction, with a few statements for the whole
 * chunk (PGlite pays about a millisecond per statement). Returns the invoices created.
 */
async function close_accounts_period(
  tx: Queryable,
  run: BillingRunStatus,
  account_ids: readonly string[],
  issue: boolean,
  now_ms: number,
): Promise<number[]> {
  // Locked in id order; an account already closed for the period (by an earlier or a concurrent
  // run, which held these locks until it committed) is left out.
  const accounts = await tx.query<AccountForRun>(
    `SELECT a.id, a.name, a.kind, a.currency, a.vat_id, a.email, a.address, a.payment_terms_days, a.legal_entity_id,
       e.name AS entity_name, e.vat_id AS entity_vat_id, e.address AS entity_address,
       e.country_code AS entity_country_code, e.time_zone, trim_scale(e.fee_vat_percent)::text AS fee_vat_percent
     FROM accounts a JOIN legal_entities e ON e.id = a.legal_entity_id
     WHERE a.id = ANY($1::text[]) AND NOT a.closed ORDER BY a.id FOR UPDATE OF a`,
    [account_ids],
  );
  const closed = await tx.query<{ account_id: string }>(
    'SELECT account_id FROM period_closures WHERE account_id = ANY($1::text[]) AND period = $2',
    [account_ids, run.period],
  );
  const closed_ids = new Set(closed.map((c) => c.account_id));
  const open = accounts.filter((a) => !closed_ids.has(a.id));
  if (open.length === 0) return [];
  const open_ids = open.map((a) => a.id);
  // Period ends differ by legal entity time zone: the latest bounds the query, each account's own
  // end filters its sessions below.
  const bounds_of = new Map(open.map((a) => [a.id, period_bounds(run.period, a.time_zone)]));
  const end_ms_max = Math.max(...[...bounds_of.values()].map((b) => b.end_ms));
  await tx.query(
    `UPDATE sessions s SET account_id = t.account_id FROM account_tokens t
     WHERE s.account_id IS NULL AND t.account_id = ANY($1::text[]) AND s.id_tag = t.uid`,
    [open_ids],
  );
  const sessions = await tx.query<BillableSession & { account_id: string }>(
    `SELECT s.account_id, v.session_id, v.version, v.id_tag, v.charge_point_id, v.evse_id, v.station_id, v.started_at_ms,
       v.stopped_at_ms, v.energy_wh, v.duration_s, v.tariff_id, v.tariff_version, v.currency, v.net_minor,
       trim_scale(v.vat_percent)::text AS vat_percent, t.cost_centre_id
     FROM sessions s JOIN session_versions v ON v.session_id = s.session_id AND v.version = s.final_version
     LEFT JOIN account_tokens t ON t.uid = s.id_tag
     WHERE s.account_id = ANY($1::text[]) AND s.final_version IS NOT NULL AND s.billed_version IS NULL
       AND s.stopped_at_ms < $2
     ORDER BY s.account_id, s.stopped_at_ms, s.session_id
     FOR UPDATE OF s`,
    [open_ids, end_ms_max],
  );
  const memberships = await tx.query<{
    account_id: string;
    plan_id: string;
    currency: string;
    monthly_fee_minor: number;
    starts_on: string;
    ends_on: string | null;
  }>(
    `SELECT account_id, plan_id, currency, monthly_fee_minor, to_char(starts_on, 'YYYY-MM-DD') AS starts_on,
       to_char(ends_on, 'YYYY-MM-DD') AS ends_on
     FROM memberships WHERE account_id = ANY($1::text[]) AND starts_on <= $3::date AND (ends_on IS NULL OR ends_on >= $2::date)
     ORDER BY account_id, starts_on, plan_id`,
    [open_ids, period_bounds(run.period, 'UTC').first_day, period_bounds(run.period, 'UTC').last_day],
  );
  const sessions_of = new Map<string, BillableSession[]>();
  for (const s of sessions) {
    if (s.stopped_at_ms >= bounds_of.get(s.account_id)!.end_ms) continue;
    const list = sessions_of.get(s.account_id) ?? [];
    list.push(s);
    sessions_of.set(s.account_id, list);
  }
  const memberships_of = new Map<string, typeof memberships>();
  for (const m of memberships)
    memberships_of.set(m.account_id, [...(memberships_of.get(m.account_id) ?? []), m]);

  const drafts: DraftDocument[] = [];
  const billed: { session_id: string; draft: number }[] = [];
  for (const account of open) {
    const bounds = bounds_of.get(account.id)!;
    const own_sessions = sessions_of.get(account.id) ?? [];
    if (own_sessions.length > invoice_lines_max) {
      throw new Error(
        `account ${account.id}: ${own_sessions.length} sessions exceed invoice_lines_max ${invoice_lines_max}`,
      );
    }
    const by_currency = new Map<string, { lines: DocumentLine[]; session_ids: string[] }>();
    const group = (currency: string) => {
      let g = by_currency.get(currency);
      if (g === undefined) {
        g = { lines: [], session_ids: [] };
        by_currency.set(currency, g);
      }
      return g;
    };
    for (const s of own_sessions) {
      const g = group(s.currency);
      const day = local_date(s.stopped_at_ms, account.time_zone);
      const late = s.stopped_at_ms < bounds.start_ms ? ' (adjustment)' : '';
      g.lines.push({
        kind: 'session',
        description: `Charging ${day} ${s.station_id}${s.evse_id === null ? '' : `/${s.evse_id}`}${late}`,
        net_minor: s.net_minor,
        vat_percent: s.vat_percent,
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
      });
      g.session_ids.push(s.session_id);
    }
    for (const m of memberships_of.get(account.id) ?? []) {
      if (m.starts_on > bounds.last_day) continue;
      // Days as YYYY-MM-DD compare as text.
      const from = [m.starts_on, bounds.first_day].sort()[1]!;
      const to = m.ends_on !== null && m.ends_on < bounds.last_day ? m.ends_on : bounds.last_day;
      const days = days_between(from, to) + 1;
      const fee_minor = prorated_fee_minor(m.monthly_fee_minor, days, bounds.days, m.currency);
      group(m.currency).lines.push({
        kind: 'fee',
        description:
          `Membership ${m.plan_id} ${from} to ${to}` +
          (days < bounds.days
            ? ` (${days}/${bounds.days} days of ${text_of_minor(m.monthly_fee_minor, m.currency)})`
            : ''),
        net_minor: fee_minor,
        vat_percent: account.fee_vat_percent,
      });
    }
    const parties = {
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
    for (const [currency, g] of [...by_currency.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      for (const session_id of g.session_ids) billed.push({ session_id, draft: drafts.length });
      drafts.push({
        kind: 'invoice',
        parties,
        currency,
        period: run.period,
        billing_run_id: run.id,
        lines: g.lines,
        now_ms,
      });
    }
  }
  const ids = await create_drafts(tx, drafts);
  if (billed.length > 0) {
    const updated = await tx.query<{ n: number }>(
      `WITH b AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(session_id text, invoice_id int8)),
       u AS (UPDATE sessions s SET billed_version = s.final_version, billed_invoice_id = b.invoice_id FROM b
             WHERE s.session_id = b.session_id AND s.billed_version IS NULL RETURNING 1)
       SELECT count(*)::int8 AS n FROM u`,
      [JSON.stringify(billed.map((b) => ({ session_id: b.session_id, invoice_id: ids[b.draft] })))],
    );
    if (updated[0]!.n !== billed.length) throw new Error('sessions changed under the billing run');
  }
  if (issue) await issue_drafts(tx, ids, now_ms);
  await tx.query(
    `INSERT INTO period_closures (account_id, period, billing_run_id, closed_at_ms)
     SELECT x, $2, $3, $4 FROM unnest($1::text[]) AS x`,
    [open_ids, run.period, run.id, now_ms],
  );
  await tx.query(
    'UPDATE billing_runs SET accounts_done = accounts_done + $2, invoices_created = invoices_created + $3 WHERE id = $1',
    [run.id, open.length, ids.length],
  );
  return ids;
}
