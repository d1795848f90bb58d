import { FieldError } from '../../core/field-error.js';
import { minor_of } from '../amounts.js';
import {
  type CaseView,
  type DisputeDeps,
  get_case,
  open_case,
  validate_open_request,
} from '../disputes/index.js';
import type { Queryable } from '../ledger.js';
import type { PaySession } from './store.js';

/**
 * A payer disputes their own charge from the receipt page: a dispute case of the disputes module
 * (the same `open_case` behind POST /v1/claimant/disputes, with its automatic investigation),
 * opened for the pay session's charging session. The payer proved the session is theirs with the
 * capability cookie (not with the ad-hoc token, which they never saw), so the case is bound to the
 * pay session here (`pay_dispute_requests.case_id`), one case per pay session; the case's own
 * access token is handed to the same browser as the claimant API's cookie.
 */
export interface PayDisputeInput {
  reason: string;
  /** Decimal text in the session's currency ("2.50"). */
  amount: string;
  message: string;
}

export interface PayDispute {
  case: CaseView;
  /** The claimant access token of the case, only when this call opened it (shown once). */
  access_token?: string;
}

const amount_pattern = /^\d{1,9}([.,]\d{1,2})?$/;

/** The case opened for a pay session, if any. */
export async function pay_dispute_of(
  q: Queryable,
  pay_session_id: string,
): Promise<{ case_id: number | null } | undefined> {
  const [row] = await q.query<{ case_id: number | null }>(
    'SELECT case_id FROM pay_dispute_requests WHERE pay_session_id = $1',
    [pay_session_id],
  );
  return row;
}

export async function pay_dispute_case(q: Queryable, pay_session_id: string): Promise<CaseView | undefined> {
  const row = await pay_dispute_of(q, pay_session_id);
  return row?.case_id == null ? undefined : await get_case(q, row.case_id);
}

/**
 * Opens the case once: the request row is claimed first (unique per pay session), then the case
 * is opened; a failure to open gives the claim back, so the payer can try again.
 */
export async function open_pay_dispute(
  deps: DisputeDeps,
  session: PaySession,
  input: PayDisputeInput,
  now_ms = Date.now(),
): Promise<PayDispute> {
  if (session.status !== 'settled' || session.session_id === null || session.captured_minor === null)
    throw new FieldError('id', 'only a settled charge can be disputed');
  const amount_text = input.amount.trim();
  if (!amount_pattern.test(amount_text)) throw new FieldError('amount', 'must be an amount like 2.50');
  const amount_minor = minor_of(amount_text.replace(',', '.'), session.currency);
  if (amount_minor <= 0 || amount_minor > session.captured_minor)
    throw new FieldError('amount', 'must be more than 0 and at most the amount charged');
  // The module's own validation (reason codes, message length): its rules, its field names.
  const request = validate_open_request(
    {
      session_id: session.session_id,
      reason: input.reason,
      amount_disputed_minor: amount_minor,
      message: input.message.trim(),
    },
    'driver',
  );
  const ledger = deps.ledger;
  const claimed = await ledger.query<{ id: number }>(
    `INSERT INTO pay_dispute_requests (pay_session_id, reason, message, amount_disputed_minor, created_at_ms)
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (pay_session_id) DO NOTHING RETURNING id`,
    [session.id, request.reason, request.message, amount_minor, now_ms],
  );
  if (claimed.length === 0) {
    const held = await pay_dispute_case(ledger, session.id);
    if (held === undefined) throw new FieldError('id', 'a dispute of this charge is being opened');
    return { case: held };
  }
  let opened: Awaited<ReturnType<typeof open_case>>;
  try {
    opened = await open_case(deps, request, { kind: 'claimant', id: `pay:${session.id}` }, now_ms);
  } catch (error) {
    await ledger.query('DELETE FROM pay_dispute_requests WHERE id = $1 AND case_id IS NULL', [
      claimed[0]!.id,
    ]);
    throw error;
  }
  await ledger.query('UPDATE pay_dispute_requests SET case_id = $2 WHERE id = $1', [
    claimed[0]!.id,
    opened.case.id,
  ]);
  return { case: opened.case, access_token: opened.access_token };
}
