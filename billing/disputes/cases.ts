import { createHash, randomBytes } from 'node:crypto';
import { write_dispute_fact } from '../../analytics/disputes.js';
import type { Store } from '../../analytics/store.js';
import { FieldError } from '../../core/field-error.js';
import type { Nats } from '../../core/nats.js';
import type { TariffStore } from '../../rating/tariff-store.js';
import { record_billing_event } from '../events.js';
import type { Ledger, Queryable } from '../ledger.js';
import type { PaymentProvider } from '../payments/provider.js';
import { type Finding, investigate } from './investigate.js';
import { keys_for } from './meter-keys.js';
import { load_session_facts, type SessionFacts } from './session-facts.js';
import {
  check_move,
  type DeadlineRules,
  type DisputeOutcome,
  type DisputeReason,
  type DisputeSource,
  type DisputeState,
  deadline_of,
  dispute_reasons,
  dispute_sources,
} from './workflow.js';

/**
 * Dispute cases in the ledger: opening (with the automatic investigation), moves between states
 * with their deadlines, the message log and the audit trail. Every change writes its audit row
 * and its billing event (billing/events.ts) in the same transaction as the change itself.
 *
 * The claimant's access is a capability: a random token (256 bits) handed out once at opening,
 * kept only as its SHA-256, presented in a header or cookie (never in a URL, which logs keep).
 */
export interface DisputeDeps {
  ledger: Ledger;
  store?: Store;
  tariffs?: TariffStore;
  /** The connector's maximum power (ChargePointProfile.max_power_w), when the operator set one. */
  max_power_w_of?: (charge_point_id: string) => Promise<number | undefined>;
  /** Bound used when a connector's power is not known (RATING_POWER_MAX_W). */
  power_w_max: number;
  rules: DeadlineRules;
  default_time_zone: string;
  /** The rated feed: a dispute's re-rated version is announced on it after the ledger records it. */
  nats?: Nats | undefined;
  /** The card gateway: a credit note of a resolution is refunded through it (billing/payments). */
  payment_provider?: PaymentProvider | undefined;
  /** Reports a failure that must not undo a committed change (the analytics copy). */
  on_error?: (error: unknown, what: string) => void;
}

export interface Actor {
  kind: 'claimant' | 'support' | 'partner' | 'provider' | 'system';
  id: string;
}

export type Subject =
  | { kind: 'session'; session_id: string }
  | { kind: 'invoice_line'; invoice_id: number; line_no: number }
  | { kind: 'payment'; invoice_id: number; reference: string; session_id?: string };

export interface OpenRequest {
  subject: Subject;
  source: DisputeSource;
  reason: DisputeReason;
  amount_disputed_minor: number;
  message: string;
}

export interface CaseView {
  id: number;
  subject_kind: Subject['kind'];
  session_id: string;
  invoice_id: number | null;
  line_no: number | null;
  payment_reference: string;
  charge_point_id: string;
  evse_id: number | null;
  station_id: string;
  account_id: string | null;
  legal_entity_id: string | null;
  time_zone: string;
  source: DisputeSource;
  opened_by: string;
  reason: DisputeReason;
  currency: string;
  amount_disputed_minor: number;
  state: DisputeState;
  state_entered_at_ms: number;
  deadline_at_ms: number | null;
  proposal: unknown;
  outside_party: string;
  outcome: DisputeOutcome | null;
  outcome_reason: string;
  credited_minor: number;
  credit_note_id: number | null;
  rerate: unknown;
  findings: Finding[];
  opened_at_ms: number;
  resolved_at_ms: number | null;
  updated_at_ms: number;
}

export class NotFoundError extends FieldError {}

const case_columns = `id, subject_kind, session_id, invoice_id, line_no, payment_reference, charge_point_id, evse_id,
  station_id, account_id, legal_entity_id, time_zone, source, opened_by, reason, currency, amount_disputed_minor, state,
  state_entered_at_ms, deadline_at_ms, proposal, outside_party, outcome, outcome_reason, credited_minor, credit_note_id,
  rerate, findings, opened_at_ms, resolved_at_ms, updated_at_ms`;

export const message_chars_max = 4000;
export const messages_per_case_max = 500;

export function token_digest(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function validate_open_request(body: unknown, source: DisputeSource): OpenRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new FieldError('(body)', 'must be a JSON object');
  const b = body as Record<string, unknown>;
  if (!dispute_sources.includes(source))
    throw new FieldError('source', `must be one of ${dispute_sources.join(', ')}`);
  if (typeof b.reason !== 'string' || !dispute_reasons.includes(b.reason as DisputeReason))
    throw new FieldError('reason', `must be one of ${dispute_reasons.join(', ')}`);
  if (!Number.isSafeInteger(b.amount_disputed_minor) || (b.amount_disputed_minor as number) < 0)
    throw new FieldError('amount_disputed_minor', 'must be a non-negative integer of minor units');
  if (typeof b.message !== 'string' || b.message.length === 0 || b.message.length > message_chars_max)
    throw new FieldError('message', `must be 1 to ${message_chars_max} characters`);
  const id = (v: unknown) => typeof v === 'string' && /^[\x21-\x7e]{1,255}$/.test(v);
  const int = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 1;
  let subject: Subject;
  if (b.session_id !== undefined && b.invoice_id === undefined) {
    if (!id(b.session_id)) throw new FieldError('session_id', 'must be 1 to 255 printable characters');
    subject = { kind: 'session', session_id: b.session_id as string };
  } else if (b.invoice_id !== undefined && b.line_no !== undefined) {
    if (!int(b.invoice_id)) throw new FieldError('invoice_id', 'must be a positive integer');
    if (!int(b.line_no)) throw new FieldError('line_no', 'must be a positive integer');
    subject = { kind: 'invoice_line', invoice_id: b.invoice_id as number, line_no: b.line_no as number };
  } else if (b.invoice_id !== undefined && b.payment_reference !== undefined) {
    if (!int(b.invoice_id)) throw new FieldError('invoice_id', 'must be a positive integer');
    if (!id(b.payment_reference))
      throw new FieldError('payment_reference', 'must be 1 to 255 printable characters');
    if (b.session_id !== undefined && !id(b.session_id))
      throw new FieldError('session_id', 'must be 1 to 255 printable characters');
    subject = {
      kind: 'payment',
      invoice_id: b.invoice_id as number,
      reference: b.payment_reference as string,
      ...(b.session_id === undefined ? {} : { session_id: b.session_id as string }),
    };
  } else {
    throw new FieldError(
      'session_id',
      'name a session (session_id), an invoice line (invoice_id, line_no) or a payment (invoice_id, payment_reference)',
    );
  }
  return {
    subject,
    source,
    reason: b.reason as DisputeReason,
    amount_disputed_minor: b.amount_disputed_minor as number,
    message: b.message,
  };
}

interface SubjectFacts {
  session_id: string;
  invoice_id: number | null;
  line_no: number | null;
  payment_reference: string;
  account_id: string | null;
  currency: string | null;
  charge_point_id: string;
  evse_id: number | null;
  station_id: string;
  id_tag: string;
}

async function subject_facts(tx: Queryable, subject: Subject): Promise<SubjectFacts> {
  let session_id = '';
  let invoice_id: number | null = null;
  let line_no: number | null = null;
  let payment_reference = '';
  let account_id: string | null = null;
  let currency: string | null = null;
  if (subject.kind === 'session') session_id = subject.session_id;
  else {
    const [invoice] = await tx.query<{ account_id: string; currency: string; kind: string }>(
      'SELECT account_id, currency, kind FROM invoices WHERE id = $1',
      [subject.invoice_id],
    );
    if (invoice === undefined || invoice.kind !== 'invoice')
      throw new NotFoundError('invoice_id', 'is not a known invoice');
    invoice_id = subject.invoice_id;
    account_id = invoice.account_id;
    currency = invoice.currency;
    if (subject.kind === 'invoice_line') {
      const [line] = await tx.query<{ session_id: string | null }>(
        'SELECT session_id FROM invoice_lines WHERE invoice_id = $1 AND line_no = $2',
        [subject.invoice_id, subject.line_no],
      );
      if (line === undefined)
        throw new NotFoundError('line_no', `invoice ${subject.invoice_id} has no line ${subject.line_no}`);
      line_no = subject.line_no;
      session_id = line.session_id ?? '';
    } else {
      payment_reference = subject.reference;
      const sessions = await tx.query<{ session_id: string }>(
        // Distinct: a session billed in several VAT parts has one line per part.
        `SELECT DISTINCT session_id FROM invoice_lines WHERE invoice_id = $1 AND kind = 'session' AND session_id IS NOT NULL
         ORDER BY session_id LIMIT 2`,
        [subject.invoice_id],
      );
      session_id = subject.session_id ?? (sessions.length === 1 ? sessions[0]!.session_id : '');
    }
  }
  const [version] =
    session_id === ''
      ? []
      : await tx.query<{
          charge_point_id: string;
          evse_id: number | null;
          station_id: string;
          currency: string;
          id_tag: string;
        }>(
          `SELECT charge_point_id, evse_id, station_id, currency, id_tag FROM session_versions
           WHERE session_id = $1 ORDER BY version DESC LIMIT 1`,
          [session_id],
        );
  const [session] =
    session_id === ''
      ? []
      : await tx.query<{ account_id: string | null; billed_invoice_id: number | null }>(
          'SELECT account_id, billed_invoice_id FROM sessions WHERE session_id = $1',
          [session_id],
        );
  if (invoice_id === null && session?.billed_invoice_id != null) invoice_id = session.billed_invoice_id;
  return {
    session_id,
    invoice_id,
    line_no,
    payment_reference,
    account_id: account_id ?? session?.account_id ?? null,
    currency: currency ?? version?.currency ?? null,
    charge_point_id: version?.charge_point_id ?? '',
    evse_id: version?.evse_id ?? null,
    station_id: version?.station_id ?? '',
    id_tag: version?.id_tag ?? '',
  };
}

/** The session's token as the ledger (or else ClickHouse) knows it: what a claimant proves they hold. */
export async function session_token_of(deps: DisputeDeps, session_id: string): Promise<string | undefined> {
  const [row] = await deps.ledger.query<{ id_tag: string }>(
    'SELECT id_tag FROM session_versions WHERE session_id = $1 ORDER BY version DESC LIMIT 1',
    [session_id],
  );
  if (row !== undefined) return row.id_tag;
  if (deps.store === undefined) return undefined;
  return (await load_session_facts(deps.store, session_id))?.latest.id_tag;
}

async function time_zone_of(
  tx: Queryable,
  account_id: string | null,
  fallback: string,
): Promise<{ legal_entity_id: string | null; time_zone: string }> {
  if (account_id === null) return { legal_entity_id: null, time_zone: fallback };
  const [row] = await tx.query<{ legal_entity_id: string; time_zone: string }>(
    'SELECT e.id AS legal_entity_id, e.time_zone FROM accounts a JOIN legal_entities e ON e.id = a.legal_entity_id WHERE a.id = $1',
    [account_id],
  );
  return row ?? { legal_entity_id: null, time_zone: fallback };
}

export async function append_audit(
  tx: Queryable,
  case_id: number,
  actor: Actor,
  action: string,
  changes: Record<string, unknown>,
  at_ms: number,
): Promise<void> {
  await tx.query(
    'INSERT INTO dispute_audit (case_id, at_ms, actor_kind, actor, action, changes) VALUES ($1, $2, $3, $4, $5, $6)',
    [case_id, at_ms, actor.kind, actor.id, action, JSON.stringify(changes)],
  );
}

async function append_message(
  tx: Queryable,
  case_id: number,
  author_kind: 'claimant' | 'support' | 'system',
  author: string,
  body: string,
  at_ms: number,
): Promise<number> {
  const [row] = await tx.query<{ seq: number }>(
    `INSERT INTO dispute_messages (case_id, seq, at_ms, author_kind, author, body)
     SELECT $1, coalesce(max(seq), 0) + 1, $2, $3, $4, $5 FROM dispute_messages WHERE case_id = $1
     RETURNING seq`,
    [case_id, at_ms, author_kind, author, body],
  );
  return row!.seq;
}

/** Findings of the automatic investigation, or one finding saying why there are none. */
async function investigation(
  deps: DisputeDeps,
  session_id: string,
): Promise<{ findings: Finding[]; facts?: SessionFacts }> {
  if (session_id === '' || deps.store === undefined) return { findings: [] };
  const facts = await load_session_facts(deps.store, session_id);
  if (facts === undefined) return { findings: [] };
  const keys = await keys_for(deps.ledger, facts.latest.charge_point_id, facts.latest.evse_id);
  const own = await deps.max_power_w_of?.(facts.latest.charge_point_id);
  const findings = investigate(facts, {
    keys,
    max_power_w: own ?? deps.power_w_max,
    power_source:
      own === undefined
        ? 'no connector power registered: the rating bound'
        : "the connector's registered power",
  });
  return { findings, facts };
}

export async function open_case(
  deps: DisputeDeps,
  request: OpenRequest,
  actor: Actor,
  now_ms = Date.now(),
): Promise<{ case: CaseView; access_token: string }> {
  const probe = await subject_facts(deps.ledger, request.subject);
  const { findings, facts } = await investigation(deps, probe.session_id);
  if (probe.session_id !== '' && probe.currency === null && facts === undefined)
    throw new NotFoundError('session_id', 'is not a known session');
  const access_token = randomBytes(32).toString('base64url');
  const id = await deps.ledger.transaction(async (tx) => {
    const subject = await subject_facts(tx, request.subject);
    const { legal_entity_id, time_zone } = await time_zone_of(tx, subject.account_id, deps.default_time_zone);
    const currency = subject.currency ?? facts?.latest.currency ?? '';
    if (!/^[A-Z]{3}$/.test(currency)) throw new NotFoundError('session_id', 'is not a known session');
    const state: DisputeState = 'open';
    const [row] = await tx.query<{ id: number }>(
      `INSERT INTO dispute_cases (subject_kind, session_id, invoice_id, line_no, payment_reference, charge_point_id, evse_id,
         station_id, account_id, legal_entity_id, time_zone, source, opened_by, reason, currency, amount_disputed_minor,
         state, state_entered_at_ms, deadline_at_ms, findings, access_token_sha256, opened_at_ms, updated_at_ms)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $18, $18)
       RETURNING id`,
      [
        request.subject.kind,
        subject.session_id,
        subject.invoice_id,
        subject.line_no,
        subject.payment_reference,
        subject.charge_point_id || (facts?.latest.charge_point_id ?? ''),
        subject.evse_id ?? facts?.latest.evse_id ?? null,
        subject.station_id || (facts?.latest.station_id ?? ''),
        subject.account_id,
        legal_entity_id,
        time_zone,
        request.source,
        actor.id,
        request.reason,
        currency,
        request.amount_disputed_minor,
        state,
        now_ms,
        deadline_of(state, now_ms, deps.rules, time_zone),
        JSON.stringify(findings),
        token_digest(access_token),
      ],
    );
    const case_id = row!.id;
    await append_message(
      tx,
      case_id,
      actor.kind === 'claimant' ? 'claimant' : 'support',
      actor.id,
      request.message,
      now_ms,
    );
    await append_audit(
      tx,
      case_id,
      actor,
      'opened',
      {
        subject: request.subject,
        reason: request.reason,
        amount_disputed_minor: request.amount_disputed_minor,
        source: request.source,
        findings: findings.map((f) => `${f.check}:${f.status}`),
      },
      now_ms,
    );
    await record_billing_event(tx, {
      kind: 'dispute_opened',
      occurred_at_ms: now_ms,
      ...(legal_entity_id === null ? {} : { legal_entity_id }),
      ...(subject.account_id === null ? {} : { account_id: subject.account_id }),
      ...(subject.invoice_id === null ? {} : { invoice_id: subject.invoice_id }),
      amount_minor: request.amount_disputed_minor,
      currency,
      attributes: {
        case_id,
        reason: request.reason,
        source: request.source,
        station_id: subject.station_id || (facts?.latest.station_id ?? ''),
      },
    });
    return case_id;
  });
  const view = (await get_case(deps.ledger, id))!;
  await publish_fact(deps, view);
  return { case: view, access_token };
}

/** The ClickHouse copy for dispute analytics; the ledger stays the truth, a failure is reported. */
export async function publish_fact(deps: DisputeDeps, view: CaseView): Promise<void> {
  if (deps.store === undefined) return;
  try {
    await write_dispute_fact(deps.store, view);
  } catch (error) {
    deps.on_error?.(error, `dispute analytics of case ${view.id}`);
  }
}

export async function get_case(q: Queryable, id: number): Promise<CaseView | undefined> {
  const [row] = await q.query<CaseView>(`SELECT ${case_columns} FROM dispute_cases WHERE id = $1`, [id]);
  return row;
}

/** The case the token opens, and only that one: a wrong or missing token finds nothing. */
export async function case_by_token(
  q: Queryable,
  id: number,
  token: string | undefined,
): Promise<CaseView | undefined> {
  if (token === undefined || token.length < 20 || token.length > 100) return undefined;
  const [row] = await q.query<CaseView>(
    `SELECT ${case_columns} FROM dispute_cases WHERE id = $1 AND access_token_sha256 = $2`,
    [id, token_digest(token)],
  );
  return row;
}

export interface CaseFilter {
  state?: DisputeState;
  /** Only cases whose deadline is before now + this (0: past their deadline). */
  due_within_ms?: number;
  limit: number;
  offset: number;
}

export async function list_cases(
  q: Queryable,
  filter: CaseFilter,
  now_ms = Date.now(),
): Promise<(CaseView & { deadline: 'past' | 'near' | 'ok' | null })[]> {
  const rows = await q.query<CaseView>(
    `SELECT ${case_columns} FROM dispute_cases
     WHERE ($1::text IS NULL OR state = $1) AND ($2::int8 IS NULL OR deadline_at_ms < $2)
     ORDER BY CASE WHEN $2::int8 IS NULL THEN id END DESC, deadline_at_ms, id LIMIT $3 OFFSET $4`,
    [
      filter.state ?? null,
      filter.due_within_ms === undefined ? null : now_ms + filter.due_within_ms,
      filter.limit,
      filter.offset,
    ],
  );
  return rows.map((r) => ({
    ...r,
    deadline:
      r.deadline_at_ms === null
        ? null
        : r.deadline_at_ms <= now_ms
          ? 'past'
          : r.deadline_at_ms - now_ms <= (filter.due_within_ms ?? 86_400_000)
            ? 'near'
            : 'ok',
  }));
}

export async function lock_case(tx: Queryable, id: number): Promise<CaseView> {
  const [row] = await tx.query<CaseView>(
    `SELECT ${case_columns} FROM dispute_cases WHERE id = $1 FOR UPDATE`,
    [id],
  );
  if (row === undefined) throw new NotFoundError('id', 'no such dispute case');
  return row;
}

export interface MoveRequest {
  to: DisputeState;
  note: string;
  proposal?: Record<string, unknown>;
  outside_party?: string;
}

/** Writes a change of state with its deadline, audit row and dispute_state_changed event. */
export async function write_move(
  tx: Queryable,
  deps: DisputeDeps,
  current: CaseView,
  to: DisputeState,
  actor: Actor,
  changes: Record<string, unknown>,
  now_ms: number,
): Promise<void> {
  check_move(current.id, current.state, to);
  const deadline = deadline_of(to, now_ms, deps.rules, current.time_zone);
  await tx.query(
    `UPDATE dispute_cases SET state = $2, state_entered_at_ms = $3, deadline_at_ms = $4, updated_at_ms = $3 WHERE id = $1`,
    [current.id, to, now_ms, deadline],
  );
  await append_audit(
    tx,
    current.id,
    actor,
    'state_changed',
    { from: current.state, to, deadline_at_ms: deadline, ...changes },
    now_ms,
  );
  await record_billing_event(tx, {
    kind: 'dispute_state_changed',
    occurred_at_ms: now_ms,
    ...(current.legal_entity_id === null ? {} : { legal_entity_id: current.legal_entity_id }),
    ...(current.account_id === null ? {} : { account_id: current.account_id }),
    ...(current.invoice_id === null ? {} : { invoice_id: current.invoice_id }),
    currency: current.currency,
    attributes: { case_id: current.id, from: current.state, to },
  });
}

export async function move_case(
  deps: DisputeDeps,
  id: number,
  request: MoveRequest,
  actor: Actor,
  now_ms = Date.now(),
): Promise<CaseView> {
  if (request.to === 'resolved')
    throw new FieldError(
      'to',
      'a case is resolved by a resolution (POST .../resolution), which carries the outcome',
    );
  if (request.to === 'escalated' && (request.outside_party ?? '') === '')
    throw new FieldError('outside_party', 'is required to escalate: name the mediator or arbitration body');
  if (request.to === 'proposed_resolution' && request.proposal === undefined)
    throw new FieldError('proposal', 'is required: what support proposes to the claimant');
  await deps.ledger.transaction(async (tx) => {
    const current = await lock_case(tx, id);
    await write_move(
      tx,
      deps,
      current,
      request.to,
      actor,
      {
        note: request.note,
        ...(request.outside_party === undefined ? {} : { outside_party: request.outside_party }),
        ...(request.proposal === undefined ? {} : { proposal: request.proposal }),
      },
      now_ms,
    );
    if (request.to === 'escalated')
      await tx.query('UPDATE dispute_cases SET outside_party = $2 WHERE id = $1', [
        id,
        request.outside_party,
      ]);
    if (request.to === 'proposed_resolution') {
      await tx.query('UPDATE dispute_cases SET proposal = $2 WHERE id = $1', [
        id,
        JSON.stringify(request.proposal),
      ]);
      await append_message(
        tx,
        id,
        'support',
        actor.id,
        `Proposed resolution: ${JSON.stringify(request.proposal)}${request.note === '' ? '' : `\n${request.note}`}`,
        now_ms,
      );
    }
  });
  const view = (await get_case(deps.ledger, id))!;
  await publish_fact(deps, view);
  return view;
}

export async function add_message(
  ledger: Ledger,
  id: number,
  author_kind: 'claimant' | 'support',
  author: string,
  body: string,
  now_ms = Date.now(),
): Promise<number> {
  if (typeof body !== 'string' || body.length === 0 || body.length > message_chars_max)
    throw new FieldError('body', `must be 1 to ${message_chars_max} characters`);
  return await ledger.transaction(async (tx) => {
    const current = await lock_case(tx, id);
    const [count] = await tx.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM dispute_messages WHERE case_id = $1',
      [id],
    );
    if ((count?.n ?? 0) >= messages_per_case_max)
      throw new FieldError('body', `a case holds at most ${messages_per_case_max} messages`);
    const seq = await append_message(tx, id, author_kind, author, body, now_ms);
    await append_audit(
      tx,
      id,
      { kind: author_kind, id: author },
      'message',
      { seq, chars: body.length, state: current.state },
      now_ms,
    );
    await tx.query('UPDATE dispute_cases SET updated_at_ms = $2 WHERE id = $1', [id, now_ms]);
    return seq;
  });
}

export async function case_messages(
  q: Queryable,
  id: number,
): Promise<{ seq: number; at_ms: number; author_kind: string; author: string; body: string }[]> {
  return await q.query(
    'SELECT seq, at_ms, author_kind, author, body FROM dispute_messages WHERE case_id = $1 ORDER BY seq',
    [id],
  );
}

export async function case_audit(
  q: Queryable,
  id: number,
): Promise<
  { id: number; at_ms: number; actor_kind: string; actor: string; action: string; changes: unknown }[]
> {
  return await q.query(
    'SELECT id, at_ms, actor_kind, actor, action, changes FROM dispute_audit WHERE case_id = $1 ORDER BY id',
    [id],
  );
}

/** What a claimant sees of their case: no internal ids of support staff beyond their role. */
export function claimant_view(view: CaseView) {
  const { opened_by: _o, account_id: _a, legal_entity_id: _l, ...rest } = view;
  return rest;
}
