import { minor_of, text_of_minor } from '../amounts.js';
import type { Queryable } from '../ledger.js';

/**
 * The terminal captures confirmed on a day (UTC), each set against the rated total of the session
 * its authorization reference started (the newest final version the rated feed gave billing):
 *   matched     a successful capture equal to the rated total incl. VAT, in its currency
 *   mismatched  a successful capture of another amount or currency than the rated total
 *   no_session  no final rated session carries the reference (yet)
 *   failed      the provider reports the capture failed (nothing was booked)
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

export interface TerminalReconciliation {
  captures_total: number;
  captures_matched: number;
  items: TerminalCaptureItem[];
}

/** Captures read per report at most. */
export const terminal_items_max = 10_000;

export async function terminal_reconciliation(db: Queryable, day: string): Promise<TerminalReconciliation> {
  const from_ms = Date.parse(`${day}T00:00:00Z`);
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
       SELECT session_id, total_incl_vat, currency FROM session_versions
       WHERE id_tag = c.authorization_reference AND final ORDER BY recorded_at_ms DESC, version DESC LIMIT 1
     ) v ON true
     WHERE c.received_at_ms >= $1 AND c.received_at_ms < $2
     ORDER BY c.received_at_ms, c.id LIMIT $3`,
    [from_ms, from_ms + 86_400_000, terminal_items_max + 1],
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
  return {
    captures_total: items.length,
    captures_matched: items.filter((i) => i.status === 'matched').length,
    items: items.slice(0, terminal_items_max),
  };
}
