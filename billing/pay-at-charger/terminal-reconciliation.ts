import { minor_of, text_of_minor } from '../amounts.js';
import type { Queryable } from '../ledger.js';

/**
 * The payment terminal side of a day's reconciliation (UTC).
 *
 * Captures: the confirmations received that day, each set against the rated total of the
 * terminal session its authorization reference started (the newest final version the rated feed
 * gave billing of a session ingest accepted as a terminal session, payment method TERMINAL):
 *   matched     a successful capture equal to the rated total incl. VAT, in its currency
 *   mismatched  a successful capture of another amount or currency than the rated total
 *   no_session  no final rated terminal session carries the reference (yet)
 *   failed      the provider reports the capture failed (nothing was booked)
 *
 * Unconfirmed: the terminal sessions finished and rated (final) that no confirmation has named by
 * the end of the day, once the grace period has passed since they stopped (providers confirm in
 * batches, often the next day): the money the terminal took that the ledger has not seen. Like
 * unconfirmed collections, the list is cumulative: a session stays on it until it is confirmed.
 */
export type TerminalCaptureStatus = 'matched' | 'mismatched' | 'no_session' | 'failed';

export interface TerminalCaptureItem {
  confirmation_id: string;
  authorization_reference: string;
  terminal_provider_id: string | null;
  capture_status_code: string;
  session_id: string | null;
  currency: string;
  captured: string;
  rated_total: string | null;
  rated_currency: string | null;
  difference: string | null;
  status: TerminalCaptureStatus;
}

export interface TerminalSessionUnconfirmed {
  session_id: string;
  authorization_reference: string;
  charge_point_id: string;
  stopped_at: string;
  rated_total: string;
  currency: string;
}

export interface TerminalReconciliation {
  captures_total: number;
  captures_matched: number;
  captures_mismatched: number;
  captures_no_session: number;
  captures_failed: number;
  items: TerminalCaptureItem[];
  /** The grace period after a session's stop before it counts as unconfirmed, minutes. */
  grace_min: number;
  sessions_unconfirmed_total: number;
  sessions_unconfirmed: TerminalSessionUnconfirmed[];
}

/** Captures (and unconfirmed sessions) listed per report at most; the counts cover all. */
export const terminal_items_max = 10_000;
/** Providers settle terminal captures daily: two days before a session counts as unconfirmed. */
export const terminal_grace_min_default = 48 * 60;

export interface TerminalReconciliationOptions {
  grace_min?: number;
  /** The clock: a session stopped within the grace period before now is not due yet. */
  now_ms?: number;
}

const day_ms = 86_400_000;

export async function terminal_reconciliation(
  db: Queryable,
  day: string,
  options: TerminalReconciliationOptions = {},
): Promise<TerminalReconciliation> {
  const grace_min = options.grace_min ?? terminal_grace_min_default;
  const from_ms = Date.parse(`${day}T00:00:00Z`);
  const to_ms = from_ms + day_ms;
  const rows = await db.query<{
    id: string;
    authorization_reference: string;
    terminal_provider_id: string | null;
    capture_status_code: string;
    currency: string;
    total_incl_vat_minor: number;
    session_id: string | null;
    rated_incl: string | null;
    rated_currency: string | null;
  }>(
    `SELECT c.id, c.authorization_reference, c.terminal_provider_id, c.capture_status_code, c.currency,
       c.total_incl_vat_minor, v.session_id, v.total_incl_vat::text AS rated_incl, v.currency AS rated_currency
     FROM pay_terminal_confirmations c
     LEFT JOIN LATERAL (
       SELECT x.session_id, x.total_incl_vat, x.currency FROM session_versions x
       WHERE x.final AND x.session_id = (SELECT t.session_id FROM session_versions t
         WHERE t.id_tag = c.authorization_reference AND t.payment_method = 'TERMINAL'
         ORDER BY t.recorded_at_ms DESC, t.version DESC LIMIT 1)
       ORDER BY x.version DESC LIMIT 1
     ) v ON true
     WHERE c.received_at_ms >= $1 AND c.received_at_ms < $2
     ORDER BY c.received_at_ms, c.id LIMIT $3`,
    [from_ms, to_ms, terminal_items_max + 1],
  );
  const items = rows.map((r): TerminalCaptureItem => {
    const rated_minor =
      r.rated_incl === null || r.rated_currency === null ? null : minor_of(r.rated_incl, r.rated_currency);
    const status: TerminalCaptureStatus =
      r.capture_status_code === 'FAILED'
        ? 'failed'
        : rated_minor === null
          ? 'no_session'
          : rated_minor === r.total_incl_vat_minor && r.rated_currency === r.currency
            ? 'matched'
            : 'mismatched';
    return {
      confirmation_id: r.id,
      authorization_reference: r.authorization_reference,
      terminal_provider_id: r.terminal_provider_id,
      capture_status_code: r.capture_status_code,
      session_id: r.session_id,
      currency: r.currency,
      captured: text_of_minor(r.total_incl_vat_minor, r.currency),
      rated_total: rated_minor === null ? null : text_of_minor(rated_minor, r.rated_currency!),
      rated_currency: r.rated_currency,
      difference:
        rated_minor === null || r.rated_currency !== r.currency
          ? null
          : text_of_minor(r.total_incl_vat_minor - rated_minor, r.currency),
      status,
    };
  });
  const count = (status: TerminalCaptureStatus) => items.filter((i) => i.status === status).length;

  // Due: stopped before the end of the day (or now, for today) less the grace period.
  const due_before_ms = Math.min(to_ms, options.now_ms ?? Date.now()) - grace_min * 60_000;
  const unconfirmed = await db.query<{
    session_id: string;
    id_tag: string;
    charge_point_id: string;
    stopped_at_ms: number;
    total_incl_vat: string;
    currency: string;
    listed: number;
  }>(
    `WITH terminal AS (
       SELECT DISTINCT session_id FROM session_versions
       WHERE payment_method = 'TERMINAL' AND final AND stopped_at_ms < $1
     )
     SELECT v.session_id, v.id_tag, v.charge_point_id, v.stopped_at_ms, v.total_incl_vat::text AS total_incl_vat,
       v.currency, count(*) OVER ()::int AS listed
     FROM terminal t
     JOIN LATERAL (
       SELECT x.session_id, x.id_tag, x.charge_point_id, x.stopped_at_ms, x.total_incl_vat, x.currency
       FROM session_versions x WHERE x.session_id = t.session_id AND x.final ORDER BY x.version DESC LIMIT 1
     ) v ON true
     WHERE v.stopped_at_ms < $1 AND NOT EXISTS (
       SELECT 1 FROM pay_terminal_confirmations c WHERE c.authorization_reference = v.id_tag AND c.received_at_ms < $2
     )
     ORDER BY v.stopped_at_ms, v.session_id LIMIT $3`,
    [due_before_ms, to_ms, terminal_items_max],
  );
  return {
    captures_total: items.length,
    captures_matched: count('matched'),
    captures_mismatched: count('mismatched'),
    captures_no_session: count('no_session'),
    captures_failed: count('failed'),
    items: items.slice(0, terminal_items_max),
    grace_min,
    sessions_unconfirmed_total: unconfirmed[0]?.listed ?? 0,
    sessions_unconfirmed: unconfirmed.map((u) => ({
      session_id: u.session_id,
      authorization_reference: u.id_tag,
      charge_point_id: u.charge_point_id,
      stopped_at: new Date(Number(u.stopped_at_ms)).toISOString(),
      rated_total: text_of_minor(minor_of(u.total_incl_vat, u.currency), u.currency),
      currency: u.currency,
    })),
  };
}
