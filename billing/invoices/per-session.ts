import type { Queryable } from '../ledger.js';
import { create_drafts, type DraftDocument, issue_drafts } from './issue.js';
import {
  accounts_for_billing,
  billable_sessions,
  mark_billed,
  parties_of,
  session_lines,
} from './sources.js';

/**
 * Accounts billed `per_session` get one invoice per final session, issued in the transaction that
 * records the session's final version from the rated feed (rated-versions.ts), numbered from the
 * same locked series as every other invoice (issue.ts), so gapless. Idempotent: a session is billed
 * once (sessions.billed_version, and the unique session lines), and a redelivered version changes
 * no session row, so it is not billed again. A session whose token no account owned yet when it
 * arrived is invoiced on its own by the next billing run instead (invoices/run.ts).
 * Returns the invoices issued.
 */
export async function invoice_sessions_on_arrival(
  tx: Queryable,
  session_ids: readonly string[],
  now_ms: number,
): Promise<number[]> {
  if (session_ids.length === 0) return [];
  const sessions = await billable_sessions(tx, { per_session_ids: session_ids });
  if (sessions.length === 0) return [];
  const accounts = await accounts_for_billing(tx, [...new Set(sessions.map((s) => s.account_id))], false);
  const per_session = new Map(
    accounts.filter((a) => a.billing_period === 'per_session').map((a) => [a.id, a]),
  );
  const drafts: DraftDocument[] = [];
  const billed: { session_id: string; draft: number }[] = [];
  for (const s of sessions) {
    const account = per_session.get(s.account_id);
    if (account === undefined) continue;
    billed.push({ session_id: s.session_id, draft: drafts.length });
    drafts.push(per_session_draft(account, s, now_ms));
  }
  const ids = await create_drafts(tx, drafts);
  await mark_billed(tx, billed, ids);
  await issue_drafts(tx, ids, now_ms);
  return ids;
}

export function per_session_draft(
  account: Parameters<typeof parties_of>[0],
  s: Parameters<typeof session_lines>[0],
  now_ms: number,
  billing_run_id?: number,
): DraftDocument {
  return {
    kind: 'invoice',
    parties: parties_of(account),
    currency: s.currency,
    period: null,
    session_id: s.session_id,
    ...(billing_run_id === undefined ? {} : { billing_run_id }),
    lines: session_lines(s, account.time_zone, ''),
    now_ms,
  };
}
