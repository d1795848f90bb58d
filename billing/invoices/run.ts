import { FieldError } from '../../core/field-error.js';
import { prorated_fee_minor, text_of_minor } from '../amounts.js';
import type { Ledger, Queryable } from '../ledger.js';
import type { MembershipBenefits } from '../memberships.js';
import { days_between, parse_period, period_bounds } from '../period.js';
import { create_drafts, type DocumentLine, type DraftDocument, issue_drafts } from './issue.js';
import { membership_lines_of_account } from './membership-lines.js';
import { per_session_draft } from './per-session.js';
import {
  accounts_for_billing,
  type BillableSession,
  billable_sessions,
  mark_billed,
  parties_of,
  session_lines,
} from './sources.js';

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
 *
 * A run holds a lease (billing_runs.lease_expires_at_ms) that every chunk's transaction renews. A
 * run whose process died keeps status `running` in the table but shows as `stale` once its lease
 * has run out; the next run of the same period and accounts takes it over: the dead run becomes
 * `abandoned` with `resumed_by_run_id`, and the new run closes what it had left. The renewal only
 * succeeds while the run is still `running`, so a run that was taken over while merely slow stops
 * at its next chunk (which rolls back) instead of racing on: either way, each account is closed once.
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
  /** `stale`: stored as running, but its lease ran out (its process is gone); the next run of the period resumes it. */
  status: 'running' | 'stale' | 'finished' | 'failed' | 'abandoned';
  accounts_total: number;
  accounts_done: number;
  invoices_created: number;
  error: string;
  started_at_ms: number;
  finished_at_ms: number | null;
  lease_expires_at_ms: number | null;
  /** The run that took this one over after its lease ran out. */
  resumed_by_run_id: number | null;
}

/** How long a run's lease lasts from its last renewal (the start, then every chunk) by default. */
export const billing_run_lease_ms_default = 120_000;
/** Bounds of a lease given by the caller: long enough for a chunk, short enough to resume soon. */
export const billing_run_lease_ms_min = 100;
export const billing_run_lease_ms_max = 3_600_000;

/** The run was taken over by another after its lease ran out: this process stops. */
export class BillingRunTakenOver extends Error {}

/** Lines one invoice may have; a larger one is refused loudly rather than built. */
export const invoice_lines_max = 500_000;
/**
 * Accounts closed per transaction: each is still closed whole or not at all, and a crash loses at
 * most one chunk's work (rolled back, redone by the next run).
 */
export const accounts_per_transaction = 50;
/** Bounds of a chunk size given by the caller (`ExecuteOptions.accounts_per_transaction`). */
export const accounts_per_transaction_max = 5000;
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

const run_columns = `id, period, account_ids,
  CASE WHEN status = 'running' AND coalesce(lease_expires_at_ms, 0) < $2 THEN 'stale' ELSE status END AS status,
  accounts_total, accounts_done, invoices_created, error, started_at_ms, finished_at_ms, lease_expires_at_ms,
  resumed_by_run_id`;

export async function get_billing_run(
  db: Queryable,
  id: number,
  now_ms = Date.now(),
): Promise<BillingRunStatus | undefined> {
  const [row] = await db.query<BillingRunStatus>(`SELECT ${run_columns} FROM billing_runs WHERE id = $1`, [
    id,
    now_ms,
  ]);
  return row;
}

export async function list_billing_runs(
  db: Queryable,
  limit: number,
  now_ms = Date.now(),
): Promise<BillingRunStatus[]> {
  return await db.query<BillingRunStatus>(
    `SELECT ${run_columns} FROM billing_runs ORDER BY id DESC LIMIT $1`,
    [limit, now_ms],
  );
}

function check_lease_ms(lease_ms: number): number {
  if (
    !Number.isSafeInteger(lease_ms) ||
    lease_ms < billing_run_lease_ms_min ||
    lease_ms > billing_run_lease_ms_max
  ) {
    throw new BillingRunError(
      'lease_ms',
      `must be an integer from ${billing_run_lease_ms_min} to ${billing_run_lease_ms_max}`,
    );
  }
  return lease_ms;
}

/** Records the run; `execute_billing_run` does the work (the API answers in between). */
export async function create_billing_run(
  ledger: Ledger,
  request: BillingRunRequest,
  now_ms = Date.now(),
  lease_ms = billing_run_lease_ms_default,
): Promise<number> {
  check_lease_ms(lease_ms);
  await validate_run_request(ledger, request, now_ms);
  const [row] = await ledger.query<{ id: number }>(
    `INSERT INTO billing_runs (period, account_ids, status, started_at_ms, lease_expires_at_ms)
     VALUES ($1, $2, 'running', $3, $4) RETURNING id`,
    [
      request.period,
      request.account_ids === undefined ? null : JSON.stringify(request.account_ids),
      now_ms,
      now_ms + lease_ms,
    ],
  );
  return row!.id;
}

/** Renews the run's lease and counts a chunk's work, in the chunk's transaction; throws if taken over. */
async function renew_lease(
  tx: Queryable,
  run_id: number,
  accounts_done: number,
  invoices_created: number,
  now_ms: number,
  lease_ms: number,
): Promise<void> {
  const rows = await tx.query<{ id: number }>(
    `UPDATE billing_runs SET accounts_done = accounts_done + $2, invoices_created = invoices_created + $3,
       lease_expires_at_ms = $4 WHERE id = $1 AND status = 'running' RETURNING id`,
    [run_id, accounts_done, invoices_created, now_ms + lease_ms],
  );
  if (rows.length === 0) throw new BillingRunTakenOver(`billing run ${run_id} was taken over by another run`);
}

/**
 * Marks the runs of the same period and accounts whose lease ran out as abandoned, resumed by
 * `run_id`. Returns their ids.
 */
async function take_over_stale_runs(
  ledger: Ledger,
  run: BillingRunStatus,
  now_ms: number,
): Promise<number[]> {
  const rows = await ledger.query<{ id: number }>(
    `UPDATE billing_runs SET status = 'abandoned', resumed_by_run_id = $1, finished_at_ms = $4,
       error = 'its lease ran out (the process stopped); resumed by run ' || $1::text
     WHERE period = $2 AND status = 'running' AND id <> $1 AND coalesce(lease_expires_at_ms, 0) < $4
       AND ($3::jsonb IS NULL OR account_ids = $3::jsonb)
     RETURNING id`,
    [run.id, run.period, run.account_ids === null ? null : JSON.stringify(run.account_ids), now_ms],
  );
  return rows.map((r) => r.id).sort((a, b) => a - b);
}

export interface ExecuteOptions {
  issue?: boolean;
  now_ms?: () => number;
  on_chunk?: (account_ids: string[]) => Promise<void>;
  /** The run's lease from each renewal; default billing_run_lease_ms_default. */
  lease_ms?: number;
  /**
   * Accounts closed per transaction (default accounts_per_transaction): larger chunks pay the fixed
   * cost of a chunk's statements less often; a crash loses (rolls back) at most one chunk.
   */
  accounts_per_transaction?: number;
}

export async function execute_billing_run(
  ledger: Ledger,
  run_id: number,
  options: ExecuteOptions = {},
): Promise<BillingRunStatus> {
  const now = options.now_ms ?? Date.now;
  const lease_ms = check_lease_ms(options.lease_ms ?? billing_run_lease_ms_default);
  const chunk_n = options.accounts_per_transaction ?? accounts_per_transaction;
  if (!Number.isSafeInteger(chunk_n) || chunk_n < 1 || chunk_n > accounts_per_transaction_max) {
    throw new BillingRunError(
      'accounts_per_transaction',
      `must be an integer from 1 to ${accounts_per_transaction_max}`,
    );
  }
  const run = await get_billing_run(ledger, run_id, now());
  if (run === undefined) throw new Error(`no billing run ${run_id}`);
  try {
    await take_over_stale_runs(ledger, run, now());
    const accounts = await ledger.query<{ id: string }>(
      `SELECT id FROM accounts WHERE NOT closed AND ($1::jsonb IS NULL OR $1::jsonb ? id) ORDER BY id`,
      [run.account_ids === null ? null : JSON.stringify(run.account_ids)],
    );
    await ledger.transaction(async (tx) => {
      await tx.query('UPDATE billing_runs SET accounts_total = $2 WHERE id = $1', [run_id, accounts.length]);
      await renew_lease(tx, run_id, 0, 0, now(), lease_ms);
    });
    for (let first = 0; first < accounts.length; first += chunk_n) {
      const chunk = accounts.slice(first, first + chunk_n).map((a) => a.id);
      for (let attempt = 1; ; attempt++) {
        try {
          await ledger.transaction((tx) =>
            close_accounts_period(tx, run, chunk, options.issue ?? true, now(), lease_ms),
          );
          break;
        } catch (error) {
          if (!is_retryable(error) || attempt >= account_attempts_max) throw error;
        }
      }
      await options.on_chunk?.(chunk);
    }
    await ledger.query(
      `UPDATE billing_runs SET status = 'finished', finished_at_ms = $2 WHERE id = $1 AND status = 'running'`,
      [run_id, now()],
    );
  } catch (error) {
    // A run taken over stays abandoned; any other failure is recorded.
    await ledger
      .query(
        `UPDATE billing_runs SET status = 'failed', error = $2, finished_at_ms = $3 WHERE id = $1 AND status = 'running'`,
        [run_id, error instanceof Error ? error.message : String(error), now()],
      )
      .catch(() => {});
    throw error;
  }
  return (await get_billing_run(ledger, run_id, now()))!;
}

/** Creates and runs a billing run in this process. */
export async function run_billing(
  ledger: Ledger,
  request: BillingRunRequest,
  options: Omit<ExecuteOptions, 'issue'> = {},
): Promise<BillingRunStatus> {
  const now = options.now_ms ?? Date.now;
  const id = await create_billing_run(ledger, request, now(), options.lease_ms);
  return await execute_billing_run(ledger, id, { ...options, issue: request.issue ?? true });
}

/**
 * A chunk of accounts' period, in the caller's transaction, with a few statements for the whole
 * chunk (PGlite pays about a millisecond per statement). Accounts billed per session get one
 * invoice per session not invoiced yet (invoices/per-session.ts) and their fees on the period's
 * invoice. Returns the invoices created.
 */
async function close_accounts_period(
  tx: Queryable,
  run: BillingRunStatus,
  account_ids: readonly string[],
  issue: boolean,
  now_ms: number,
  lease_ms: number,
): Promise<number[]> {
  // Locked in id order; an account already closed for the period (by an earlier or a concurrent
  // run, which held these locks until it committed) is left out.
  const accounts = await accounts_for_billing(tx, account_ids, true);
  const closed = await tx.query<{ account_id: string }>(
    'SELECT account_id FROM period_closures WHERE account_id = ANY($1::text[]) AND period = $2',
    [account_ids, run.period],
  );
  const closed_ids = new Set(closed.map((c) => c.account_id));
  const open = accounts.filter((a) => !closed_ids.has(a.id));
  if (open.length === 0) {
    await renew_lease(tx, run.id, 0, 0, now_ms, lease_ms);
    return [];
  }
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
  const sessions = await billable_sessions(tx, { account_ids: open_ids, stopped_before_ms: end_ms_max });
  const memberships = await tx.query<{
    account_id: string;
    plan_id: string;
    currency: string;
    monthly_fee_minor: number;
    starts_on: string;
    ends_on: string | null;
    benefits: MembershipBenefits;
  }>(
    `SELECT account_id, plan_id, currency, monthly_fee_minor, to_char(starts_on, 'YYYY-MM-DD') AS starts_on,
       to_char(ends_on, 'YYYY-MM-DD') AS ends_on, benefits
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
      if (account.billing_period === 'per_session') {
        billed.push({ session_id: s.session_id, draft: drafts.length });
        drafts.push(per_session_draft(account, s, now_ms, run.id));
        continue;
      }
      const g = group(s.currency);
      g.lines.push(
        ...session_lines(s, account.time_zone, s.stopped_at_ms < bounds.start_ms ? ' (adjustment)' : ''),
      );
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
    if (account.billing_period === 'monthly') {
      for (const { currency, lines } of membership_lines_of_account(
        memberships_of.get(account.id) ?? [],
        own_sessions,
        bounds,
        account.time_zone,
      )) {
        group(currency).lines.push(...lines);
      }
    }
    for (const [currency, g] of [...by_currency.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      for (const session_id of g.session_ids) billed.push({ session_id, draft: drafts.length });
      drafts.push({
        kind: 'invoice',
        parties: parties_of(account),
        currency,
        period: run.period,
        billing_run_id: run.id,
        lines: g.lines,
        now_ms,
      });
    }
  }
  const ids = await create_drafts(tx, drafts);
  await mark_billed(tx, billed, ids);
  if (issue) await issue_drafts(tx, ids, now_ms);
  await tx.query(
    `INSERT INTO period_closures (account_id, period, billing_run_id, closed_at_ms)
     SELECT x, $2, $3, $4 FROM unnest($1::text[]) AS x`,
    [open_ids, run.period, run.id, now_ms],
  );
  await renew_lease(tx, run.id, open.length, ids.length, now_ms, lease_ms);
  return ids;
}
