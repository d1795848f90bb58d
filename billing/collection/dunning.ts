import type { TokenRecord } from '../../core/tokens.js';
import { record_billing_event } from '../events.js';
import type { Ledger, Queryable } from '../ledger.js';
import { days_between, local_date } from '../period.js';

/**
 * Dunning: an account in arrears moves none → reminder → second_reminder → suspended as its
 * oldest unpaid invoice passes the configured days after its due date; a returned or rejected
 * debit starts it at once (reminder). The state never steps back while the account owes: it goes
 * back to none when nothing is in arrears any more (paid, credited). Every change is one
 * `dunning_state_changed` event in the transaction that makes it. A suspended account's tokens are
 * blocked in the token store, and only those this module blocked are unblocked when it pays.
 */
export type DunningState = 'none' | 'reminder' | 'second_reminder' | 'suspended';
export const dunning_states: readonly DunningState[] = ['none', 'reminder', 'second_reminder', 'suspended'];

export interface DunningPolicy {
  reminder_days: number;
  second_reminder_days: number;
  suspend_days: number;
}

export interface DunningTransition {
  account_id: string;
  from: DunningState;
  to: DunningState;
  overdue_days: number;
}

/** Accounts advanced per run at most: a run over more does the first ones and says so. */
export const dunning_accounts_per_run_max = 100_000;

const rank = (state: DunningState) => dunning_states.indexOf(state);

export function state_for_days(overdue_days: number, policy: DunningPolicy): DunningState {
  if (overdue_days <= 0) return 'none';
  if (overdue_days >= policy.suspend_days) return 'suspended';
  if (overdue_days >= policy.second_reminder_days) return 'second_reminder';
  if (overdue_days >= policy.reminder_days) return 'reminder';
  return 'none';
}

async function change_state(
  tx: Queryable,
  account_id: string,
  from: DunningState,
  to: DunningState,
  now_ms: number,
  attributes: Record<string, string | number>,
): Promise<void> {
  await tx.query(
    `INSERT INTO dunning_states (account_id, state, since_ms) VALUES ($1, $2, $3)
     ON CONFLICT (account_id) DO UPDATE SET state = EXCLUDED.state, since_ms = EXCLUDED.since_ms`,
    [account_id, to, now_ms],
  );
  await record_billing_event(tx, {
    kind: 'dunning_state_changed',
    occurred_at_ms: now_ms,
    account_id,
    attributes: { from, to, ...attributes },
  });
}

async function current_state(tx: Queryable, account_id: string): Promise<DunningState> {
  const [row] = await tx.query<{ state: DunningState }>(
    'SELECT state FROM dunning_states WHERE account_id = $1 FOR UPDATE',
    [account_id],
  );
  return row?.state ?? 'none';
}

/** A failed collection starts dunning now (in the caller's transaction). */
export async function start_dunning(
  tx: Queryable,
  account_id: string,
  now_ms: number,
  reason: string,
): Promise<DunningTransition | undefined> {
  const from = await current_state(tx, account_id);
  if (from !== 'none') return undefined;
  await change_state(tx, account_id, from, 'reminder', now_ms, { reason });
  return { account_id, from, to: 'reminder', overdue_days: 0 };
}

interface OpenInvoice {
  account_id: string;
  due_date: string;
  time_zone: string;
  failed_collections: number;
}

/**
 * Moves every account (or those named) to the state its arrears call for on `now_ms`'s day in its
 * legal entity's time zone. One transaction per account that changes; returns the changes.
 */
export async function run_dunning(
  ledger: Ledger,
  policy: DunningPolicy,
  now_ms = Date.now(),
  account_ids?: readonly string[],
): Promise<{ transitions: DunningTransition[]; accounts_seen: number; truncated: boolean }> {
  const only = account_ids === undefined ? null : [...account_ids];
  const open = await ledger.query<OpenInvoice>(
    `SELECT i.account_id, to_char(i.due_date, 'YYYY-MM-DD') AS due_date, le.time_zone,
       (SELECT count(*)::int FROM collection_attempts a
         WHERE a.invoice_id = i.id AND a.status IN ('rejected', 'returned')) AS failed_collections
     FROM invoices i JOIN legal_entities le ON le.id = i.legal_entity_id
     WHERE i.kind = 'invoice' AND i.status IN ('issued', 'partly_paid') AND i.due_date IS NOT NULL
       AND i.total_minor - i.credited_minor - i.paid_minor > 0
       AND ($1::text[] IS NULL OR i.account_id = ANY($1::text[]))`,
    [only],
  );
  const dunned = await ledger.query<{ account_id: string }>(
    `SELECT account_id FROM dunning_states WHERE state <> 'none' AND ($1::text[] IS NULL OR account_id = ANY($1::text[]))`,
    [only],
  );
  /** Per account: the days its oldest invoice in arrears is overdue, and whether a debit failed. */
  const arrears = new Map<string, { overdue_days: number; failed: boolean }>();
  for (const invoice of open) {
    const today = local_date(now_ms, invoice.time_zone);
    const overdue_days = days_between(invoice.due_date, today);
    const failed = invoice.failed_collections > 0;
    if (overdue_days <= 0 && !failed) continue;
    const seen = arrears.get(invoice.account_id) ?? { overdue_days: Number.NEGATIVE_INFINITY, failed: false };
    arrears.set(invoice.account_id, {
      overdue_days: Math.max(seen.overdue_days, overdue_days),
      failed: seen.failed || failed,
    });
  }
  const accounts = [...new Set([...arrears.keys(), ...dunned.map((d) => d.account_id)])].sort();
  const truncated = accounts.length > dunning_accounts_per_run_max;
  const transitions: DunningTransition[] = [];
  for (const account_id of accounts.slice(0, dunning_accounts_per_run_max)) {
    const owed = arrears.get(account_id);
    const transition = await ledger.transaction(async (tx) => {
      const from = await current_state(tx, account_id);
      let to: DunningState = 'none';
      if (owed !== undefined) {
        const by_days = state_for_days(owed.overdue_days, policy);
        const floor: DunningState = owed.failed ? 'reminder' : 'none';
        to = [from, by_days, floor].reduce((a, b) => (rank(b) > rank(a) ? b : a));
      }
      if (to === from) return undefined;
      const overdue_days = owed === undefined ? 0 : Math.max(0, owed.overdue_days);
      await change_state(tx, account_id, from, to, now_ms, {
        overdue_days,
        reason: to === 'none' ? 'paid' : 'overdue',
      });
      return { account_id, from, to, overdue_days };
    });
    if (transition !== undefined) transitions.push(transition);
  }
  return { transitions, accounts_seen: accounts.length, truncated };
}

export interface DunningView {
  account_id: string;
  state: DunningState;
  since_ms: number | null;
  history: { at_ms: number; from: string; to: string; reason: string }[];
  blocked_tokens: string[];
}

export async function get_dunning(db: Queryable, account_id: string): Promise<DunningView> {
  const [row] = await db.query<{ state: DunningState; since_ms: number }>(
    'SELECT state, since_ms FROM dunning_states WHERE account_id = $1',
    [account_id],
  );
  const history = await db.query<{ at_ms: number; from: string; to: string; reason: string }>(
    `SELECT occurred_at_ms AS at_ms, attributes->>'from' AS "from", attributes->>'to' AS "to",
       coalesce(attributes->>'reason', '') AS reason
     FROM billing_events WHERE kind = 'dunning_state_changed' AND account_id = $1 ORDER BY id LIMIT 1000`,
    [account_id],
  );
  const blocked = await db.query<{ uid: string }>(
    'SELECT uid FROM dunning_token_blocks WHERE account_id = $1 ORDER BY uid',
    [account_id],
  );
  return {
    account_id,
    state: row?.state ?? 'none',
    since_ms: row?.since_ms ?? null,
    history,
    blocked_tokens: blocked.map((b) => b.uid),
  };
}

/** What dunning needs of the token store (core/tokens.ts TokenStore). */
export interface TokenAccess {
  get(uid: string): Promise<TokenRecord | undefined>;
  put(record: TokenRecord): Promise<void>;
}

/**
 * Makes the token store agree with the ledger: every token of a suspended account is not valid
 * (chargers answer Authorize with Blocked, core/tokens.ts), every token this module blocked of an
 * account no longer suspended is valid again. The block row is written before the store is
 * changed and removed after it is restored, so a crash in between is repaired by the next pass.
 * A token unknown to the store is left alone (a charger does not accept it anyway unless the site
 * accepts unknown tokens); one the operator had already blocked is never recorded, so never
 * unblocked by us.
 */
export async function sync_token_blocks(
  ledger: Ledger,
  tokens: TokenAccess,
  now_ms = Date.now(),
): Promise<{ blocked: string[]; unblocked: string[] }> {
  const blocked: string[] = [];
  const unblocked: string[] = [];
  const wanted = await ledger.query<{ uid: string; account_id: string; recorded: boolean }>(
    `SELECT t.uid, t.account_id, (b.uid IS NOT NULL) AS recorded
     FROM account_tokens t JOIN dunning_states d ON d.account_id = t.account_id AND d.state = 'suspended'
     LEFT JOIN dunning_token_blocks b ON b.uid = t.uid ORDER BY t.uid`,
  );
  for (const token of wanted) {
    const record = await tokens.get(token.uid);
    if (record === undefined || (!record.valid && !token.recorded)) continue;
    if (!token.recorded) {
      await ledger.query(
        `INSERT INTO dunning_token_blocks (uid, account_id, blocked_at_ms) VALUES ($1, $2, $3) ON CONFLICT (uid) DO NOTHING`,
        [token.uid, token.account_id, now_ms],
      );
    }
    if (record.valid) {
      await tokens.put({ ...record, valid: false, last_updated: new Date(now_ms).toISOString() });
      blocked.push(token.uid);
    }
  }
  const released = await ledger.query<{ uid: string }>(
    `SELECT b.uid FROM dunning_token_blocks b
     WHERE NOT EXISTS (SELECT 1 FROM account_tokens t JOIN dunning_states d ON d.account_id = t.account_id
       WHERE t.uid = b.uid AND t.account_id = b.account_id AND d.state = 'suspended') ORDER BY b.uid`,
  );
  for (const { uid } of released) {
    const record = await tokens.get(uid);
    if (record !== undefined && !record.valid) {
      await tokens.put({ ...record, valid: true, last_updated: new Date(now_ms).toISOString() });
      unblocked.push(uid);
    }
    await ledger.query('DELETE FROM dunning_token_blocks WHERE uid = $1', [uid]);
  }
  return { blocked, unblocked };
}
