import type { RatedSessionRow } from '../../analytics/sessions.js';
import { ident, sql } from '../../analytics/sql.js';
import { FieldError } from '../../core/field-error.js';
import { publish_rated_versions } from '../../core/rated-feed.js';
import { RerateError, type RerateOutcome, rerate } from '../../rating/rerate.js';
import { minor_of, text_of_minor, vat_key } from '../amounts.js';
import { create_credit_note_parts_in } from '../credit-notes/create.js';
import { record_billing_events } from '../events.js';
import type { Queryable } from '../ledger.js';
import type { OperationRow } from '../payments/operations.js';
import { session_vat_parts, type VatPart } from '../rated-versions.js';
import { generate_bundle } from './bundle.js';
import {
  type Actor,
  append_audit,
  type CaseView,
  type DisputeDeps,
  get_case,
  lock_case,
  publish_fact,
} from './cases.js';
import { add_credit_note_refunds, send_refunds } from './refund.js';
import { check_move, type DisputeOutcome, dispute_outcomes } from './workflow.js';

/**
 * Resolutions. Accepting (wholly or partly) corrects the money: a re-rating of the session with a
 * tariff version (rating/rerate.ts: a new rated version and its difference) and/or a goodwill
 * amount, credited by one credit note on the invoice that billed the session (one line per VAT
 * part the re-rating lowered), in the same transaction as the case's resolution, its audit row,
 * its events and the refund intent of the credit note (refund.ts; the provider call follows the
 * commit). A session not invoiced yet needs no credit note: the new version is what the next
 * billing run invoices.
 *
 * Rejecting carries a written reason, sent to the claimant in the message log with the digest of
 * the evidence bundle generated for it. A chargeback's outcome (won or lost at the provider) is
 * recorded as such; the money of a chargeback moves in payments, not here (chargeback.ts).
 *
 * The re-rated version is written to ClickHouse by rerate() (rating's own writer), recorded in the
 * ledger by this transaction (crediting only the difference), and then published on the rated
 * feed like rating's re-rate does: billing's feed consumer finds the version already recorded and
 * changes nothing, so the version is billed once.
 */
export interface ResolutionRequest {
  outcome: DisputeOutcome;
  reason: string;
  rerate?: { tariff_id: string; tariff_version?: number };
  /** Net amount excl. VAT, minor units, credited on top of any re-rating difference. */
  goodwill_minor?: number;
}

export interface ResolutionResult {
  case: CaseView;
  rerate: RerateOutcome | null;
  credit_note_id: number | null;
  credited_net_minor: number;
  /** The refunds of the credit note sent to the provider (pending ones are resent by the sweep). */
  refunds: { payment_id: number; operation: string; status: string; error?: string }[];
  bundle_manifest_sha256: string | null;
}

export function validate_resolution(body: unknown): ResolutionRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new FieldError('(body)', 'must be a JSON object');
  const b = body as Record<string, unknown>;
  if (typeof b.outcome !== 'string' || !dispute_outcomes.includes(b.outcome as DisputeOutcome))
    throw new FieldError('outcome', `must be one of ${dispute_outcomes.join(', ')}`);
  if (typeof b.reason !== 'string' || b.reason.length === 0 || b.reason.length > 2000)
    throw new FieldError('reason', 'must be 1 to 2000 characters');
  const request: ResolutionRequest = { outcome: b.outcome as DisputeOutcome, reason: b.reason };
  if (b.rerate !== undefined) {
    const r = b.rerate as Record<string, unknown>;
    if (
      typeof r !== 'object' ||
      r === null ||
      typeof r.tariff_id !== 'string' ||
      r.tariff_id.length === 0 ||
      r.tariff_id.length > 255
    )
      throw new FieldError('rerate.tariff_id', 'must be a tariff id');
    if (
      r.tariff_version !== undefined &&
      (!Number.isInteger(r.tariff_version) || (r.tariff_version as number) < 1)
    )
      throw new FieldError('rerate.tariff_version', 'must be a positive integer');
    request.rerate = {
      tariff_id: r.tariff_id,
      ...(r.tariff_version === undefined ? {} : { tariff_version: r.tariff_version as number }),
    };
  }
  if (b.goodwill_minor !== undefined) {
    if (!Number.isSafeInteger(b.goodwill_minor) || (b.goodwill_minor as number) <= 0)
      throw new FieldError('goodwill_minor', 'must be a positive integer of minor units (net, excl. VAT)');
    request.goodwill_minor = b.goodwill_minor as number;
  }
  const money = request.rerate !== undefined || request.goodwill_minor !== undefined;
  if ((request.outcome === 'accepted' || request.outcome === 'partly_accepted') && !money)
    throw new FieldError(
      'outcome',
      `${request.outcome} needs a re-rating (rerate) or a goodwill amount (goodwill_minor)`,
    );
  if ((request.outcome === 'rejected' || request.outcome.startsWith('chargeback')) && money)
    throw new FieldError(
      request.rerate !== undefined ? 'rerate' : 'goodwill_minor',
      `a ${request.outcome} case credits nothing`,
    );
  return request;
}

async function new_version_row(
  deps: DisputeDeps,
  session_id: string,
  version: number,
): Promise<RatedSessionRow> {
  const store = deps.store!;
  const db = ident(store.database).text;
  const [row] = await store.query<RatedSessionRow>(
    `SELECT session_id, version, charge_point_id, connector_id, transaction_id, id_tag, started_at_ms, stopped_at_ms,
       meter_start_wh, meter_stop_wh, energy_wh, stop_reason, tariff_id, tariff_version, currency,
       toString(total_excl_vat) AS total_excl_vat, toString(total_incl_vat) AS total_incl_vat, breakdown, rated_at_ms,
       evse_id, station_id, duration_s, provisional
     FROM ${db}.rated_session_versions FINAL WHERE ${sql`session_id = ${session_id} AND version = ${version}`.text}`,
  );
  if (row === undefined)
    throw new Error(`re-rated version ${version} of ${session_id} is not in rated_session_versions`);
  for (const f of [
    'version',
    'connector_id',
    'started_at_ms',
    'stopped_at_ms',
    'meter_start_wh',
    'meter_stop_wh',
    'energy_wh',
    'tariff_version',
    'rated_at_ms',
    'evse_id',
    'duration_s',
    'provisional',
  ] as const)
    (row as unknown as Record<string, number>)[f] = Number(row[f]);
  return row;
}

/** The re-rated version into the ledger (as the feed would record it), returning its net. */
async function record_version(
  tx: Queryable,
  row: RatedSessionRow,
  now_ms: number,
): Promise<{ net_minor: number; vat_parts: VatPart[] }> {
  const net_minor = minor_of(row.total_excl_vat, row.currency);
  const vat_parts = session_vat_parts(row, net_minor);
  await tx.query(
    `INSERT INTO session_versions (session_id, version, final, id_tag, charge_point_id, evse_id, station_id, started_at_ms,
       stopped_at_ms, energy_wh, duration_s, tariff_id, tariff_version, currency, total_excl_vat, total_incl_vat, net_minor,
       vat_percent, vat_parts, recorded_at_ms)
     VALUES ($1, $2, true, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
     ON CONFLICT (session_id, version) DO NOTHING`,
    [
      row.session_id,
      row.version,
      row.id_tag,
      row.charge_point_id,
      row.evse_id ?? null,
      row.station_id || row.charge_point_id,
      row.started_at_ms,
      row.stopped_at_ms,
      row.energy_wh,
      row.duration_s ?? Math.max(0, Math.round((row.stopped_at_ms - row.started_at_ms) / 1000)),
      row.tariff_id,
      row.tariff_version,
      row.currency,
      row.total_excl_vat,
      row.total_incl_vat,
      net_minor,
      // The rate of the largest part, and every part, as billing/rated-versions.ts records them.
      [...vat_parts].sort((a, b) => b.net_minor - a.net_minor)[0]!.vat_percent,
      JSON.stringify(vat_parts),
      now_ms,
    ],
  );
  await tx.query(
    `UPDATE sessions SET final_version = $2 WHERE session_id = $1 AND (final_version IS NULL OR final_version < $2)`,
    [row.session_id, row.version],
  );
  return { net_minor, vat_parts };
}

/** Net minor units per VAT rate (vat_key), summed. */
function by_rate(parts: readonly { vat_percent: string; net_minor: number }[]): Map<string, number> {
  const rates = new Map<string, number>();
  for (const p of parts)
    rates.set(vat_key(p.vat_percent), (rates.get(vat_key(p.vat_percent)) ?? 0) + p.net_minor);
  return rates;
}

export async function resolve_case(
  deps: DisputeDeps,
  id: number,
  request: ResolutionRequest,
  actor: Actor,
  now_ms = Date.now(),
): Promise<ResolutionResult> {
  const before = await get_case(deps.ledger, id);
  if (before === undefined) throw new FieldError('id', 'no such dispute case');
  check_move(id, before.state, 'resolved');
  if (request.outcome.startsWith('chargeback') !== (before.source === 'chargeback'))
    throw new FieldError(
      'outcome',
      request.outcome.startsWith('chargeback')
        ? 'only a chargeback case has a chargeback outcome'
        : 'a chargeback case is resolved chargeback_won or chargeback_lost',
    );
  let rerated: RerateOutcome | null = null;
  let stored_rows: readonly RatedSessionRow[] = [];
  let version_row: RatedSessionRow | undefined;
  if (request.rerate !== undefined) {
    if (deps.store === undefined || deps.tariffs === undefined)
      throw new FieldError('rerate', 're-rating needs ClickHouse and the tariffs in this process');
    if (before.session_id === '') throw new FieldError('rerate', 'the case names no session to re-rate');
    try {
      const outcomes = await rerate(
        {
          store: deps.store,
          tariffs: deps.tariffs,
          on_stored: (rows) => {
            stored_rows = rows;
          },
        },
        { session_id: before.session_id },
        {
          tariff_id: request.rerate.tariff_id,
          ...(request.rerate.tariff_version === undefined ? {} : { version: request.rerate.tariff_version }),
        },
      );
      rerated = outcomes[0] ?? null;
    } catch (error) {
      if (error instanceof RerateError) throw new FieldError(`rerate.${error.field}`, error.message);
      throw error;
    }
    if (rerated === null) throw new FieldError('rerate', `session ${before.session_id} is not rated`);
    version_row = await new_version_row(deps, before.session_id, rerated.version);
  }
  let bundle_digest: string | null = null;
  if (request.outcome === 'rejected' || request.outcome.startsWith('chargeback')) {
    bundle_digest = (await generate_bundle(deps, id, actor, now_ms)).manifest_sha256;
  }
  const result = await deps.ledger.transaction(async (tx) => {
    const current = await lock_case(tx, id);
    check_move(id, current.state, 'resolved');
    let invoice_id: number | null = current.invoice_id;
    let rerate_difference = 0;
    // What is credited, net per VAT rate: a session billed in several VAT parts (billing/invoices
    // per-session.ts, session_lines) has one invoice line per part, and each part's difference is
    // credited at its own rate.
    const credit_parts = new Map<string, number>();
    const goodwill_parts = new Map<string, number>();
    if (version_row !== undefined) {
      const recorded = await record_version(tx, version_row, now_ms);
      const billed = await tx.query<{
        billed_invoice_id: number | null;
        net_minor: number | null;
        vat_percent: string | null;
      }>(
        `SELECT s.billed_invoice_id, l.net_minor, trim_scale(l.vat_percent)::text AS vat_percent
         FROM sessions s LEFT JOIN invoice_lines l ON l.invoice_id = s.billed_invoice_id AND l.session_id = s.session_id
           AND l.session_version = s.billed_version AND l.kind = 'session'
         WHERE s.session_id = $1 ORDER BY l.line_no`,
        [current.session_id],
      );
      const lines = billed.filter(
        (b): b is { billed_invoice_id: number; net_minor: number; vat_percent: string } =>
          b.billed_invoice_id !== null && b.net_minor !== null && b.vat_percent !== null,
      );
      if (lines.length > 0) {
        invoice_id = lines[0]!.billed_invoice_id;
        const before_parts = by_rate(lines);
        const after_parts = by_rate(recorded.vat_parts);
        rerate_difference = lines.reduce((sum, l) => sum + l.net_minor, 0) - recorded.net_minor;
        // A part whose price went up is not charged here (a dispute only gives back); a part at a
        // rate the invoice does not carry cannot be credited on it.
        for (const [rate, net] of before_parts) {
          const less = net - (after_parts.get(rate) ?? 0);
          if (less > 0) credit_parts.set(rate, less);
        }
      }
    }
    if (request.goodwill_minor !== undefined) {
      if (invoice_id === null) {
        const [s] = await tx.query<{ billed_invoice_id: number | null }>(
          'SELECT billed_invoice_id FROM sessions WHERE session_id = $1',
          [current.session_id],
        );
        invoice_id = s?.billed_invoice_id ?? null;
      }
      if (invoice_id === null)
        throw new FieldError('goodwill_minor', 'the session is not invoiced yet: there is nothing to credit');
      // Goodwill at the rate of the invoice's largest VAT part (its only one, mostly).
      const [rate] = await tx.query<{ vat_percent: string }>(
        'SELECT trim_scale(vat_percent)::text AS vat_percent FROM invoice_vat WHERE invoice_id = $1 ORDER BY net_minor DESC, vat_percent LIMIT 1',
        [invoice_id],
      );
      if (rate === undefined)
        throw new FieldError('goodwill_minor', 'the invoice has no VAT part to credit at');
      const key = vat_key(rate.vat_percent);
      goodwill_parts.set(key, request.goodwill_minor);
    }
    const credit_net = [...credit_parts.values(), ...goodwill_parts.values()].reduce((a, b) => a + b, 0);
    let credit_note_id: number | null = null;
    let credited_minor = 0;
    let refund_ops: OperationRow[] = [];
    if (credit_net > 0 && invoice_id !== null) {
      credit_note_id = await create_credit_note_parts_in(
        tx,
        {
          invoice_id,
          // The re-rating's parts name the session's new version (a later re-rating by rating
          // credits only what is left of the billed lines: credit_sessions); goodwill names none.
          parts: [
            ...[...credit_parts.entries()]
              .sort((a, b) => Number(a[0]) - Number(b[0]))
              .map(([vat_percent, net_minor]) => ({
                vat_percent,
                net_minor,
                session_id: current.session_id,
                session_version: version_row!.version,
              })),
            ...[...goodwill_parts.entries()].map(([vat_percent, net_minor]) => ({ vat_percent, net_minor })),
          ],
          reason: `Dispute ${id}: ${request.reason}`.slice(0, 500),
        },
        now_ms,
      );
      const [note] = await tx.query<{ total_minor: number }>(
        'SELECT total_minor FROM invoices WHERE id = $1',
        [credit_note_id],
      );
      credited_minor = note!.total_minor;
      // Partial acceptance gives back part of what the claimant disputed (an amount incl. VAT).
      if (
        request.outcome === 'partly_accepted' &&
        current.amount_disputed_minor > 0 &&
        credited_minor >= current.amount_disputed_minor
      )
        throw new FieldError(
          'outcome',
          `partly_accepted credits less than the ${text_of_minor(current.amount_disputed_minor, current.currency)} ${current.currency} disputed; this credits ${text_of_minor(credited_minor, current.currency)}: use accepted`,
        );
      // The refund intent in this same transaction; the provider call follows the commit.
      if (deps.payment_provider !== undefined)
        refund_ops = await add_credit_note_refunds(
          tx,
          { invoice_id, credit_note_id, credit_total_minor: credited_minor, actor: `support:${actor.id}` },
          now_ms,
        );
    }
    const rerate_record = rerated === null ? null : { ...rerated, difference_net_minor: rerate_difference };
    await tx.query(
      `UPDATE dispute_cases SET state = 'resolved', outcome = $2, outcome_reason = $3, credited_minor = $4, credit_note_id = $5,
         rerate = $6, resolved_at_ms = $7, state_entered_at_ms = $7, deadline_at_ms = NULL, updated_at_ms = $7,
         invoice_id = coalesce(invoice_id, $8)
       WHERE id = $1`,
      [
        id,
        request.outcome,
        request.reason,
        credited_minor,
        credit_note_id,
        rerate_record === null ? null : JSON.stringify(rerate_record),
        now_ms,
        invoice_id,
      ],
    );
    const words =
      credited_minor > 0
        ? `Your dispute is ${request.outcome.replace('_', ' ')}: ${text_of_minor(credited_minor, current.currency)} ${current.currency} credited (credit note ${credit_note_id}). ${request.reason}`
        : `Your dispute is ${request.outcome.replace('_', ' ')}. ${request.reason}${bundle_digest === null ? '' : ` Evidence bundle SHA-256 ${bundle_digest}.`}`;
    await tx.query(
      `INSERT INTO dispute_messages (case_id, seq, at_ms, author_kind, author, body)
       SELECT $1, coalesce(max(seq), 0) + 1, $2, 'support', $3, $4 FROM dispute_messages WHERE case_id = $1`,
      [id, now_ms, actor.id, words],
    );
    await append_audit(
      tx,
      id,
      actor,
      'resolved',
      {
        from: current.state,
        to: 'resolved',
        outcome: request.outcome,
        reason: request.reason,
        credited_minor,
        credit_note_id,
        rerate: rerate_record,
        goodwill_minor: request.goodwill_minor ?? 0,
        bundle_manifest_sha256: bundle_digest,
      },
      now_ms,
    );
    const base = {
      occurred_at_ms: now_ms,
      ...(current.legal_entity_id === null ? {} : { legal_entity_id: current.legal_entity_id }),
      ...(current.account_id === null ? {} : { account_id: current.account_id }),
      ...(invoice_id === null ? {} : { invoice_id }),
      currency: current.currency,
    };
    await record_billing_events(tx, [
      {
        ...base,
        kind: 'dispute_state_changed',
        attributes: { case_id: id, from: current.state, to: 'resolved' },
      },
      {
        ...base,
        kind: 'dispute_resolved',
        amount_minor: credited_minor,
        attributes: {
          case_id: id,
          outcome: request.outcome,
          reason: current.reason,
          station_id: current.station_id,
          ...(credit_note_id === null ? {} : { credit_note_id }),
        },
      },
    ]);
    return { credit_note_id, credited_net_minor: credit_net, refund_ops };
  });
  const refunds =
    deps.payment_provider === undefined || result.refund_ops.length === 0
      ? []
      : await send_refunds(
          { ledger: deps.ledger, provider: deps.payment_provider },
          result.refund_ops,
          `support:${actor.id}`,
        );
  // The new version on the rated feed, as rating's re-rate announces it, after the ledger holds
  // it: billing's feed consumer finds the version recorded and changes nothing (no second credit,
  // no second invoice); other readers of the feed see the session's new version.
  if (deps.nats !== undefined && stored_rows.length > 0) {
    try {
      await publish_rated_versions(deps.nats, stored_rows);
    } catch (error) {
      deps.on_error?.(error, `rated feed copy of the re-rated ${before.session_id}`);
    }
  }
  const view = (await get_case(deps.ledger, id))!;
  await publish_fact(deps, view);
  return {
    case: view,
    rerate: rerated,
    credit_note_id: result.credit_note_id,
    credited_net_minor: result.credited_net_minor,
    refunds: refunds.map((r) => ({
      payment_id: r.payment.id,
      operation: r.operation.idempotency_key,
      status: r.operation.status,
      ...(r.error === undefined ? {} : { error: r.error.code }),
    })),
    bundle_manifest_sha256: bundle_digest,
  };
}
