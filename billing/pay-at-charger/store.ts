import type { Queryable } from '../ledger.js';

/** A pay_sessions row as the pages and the service read it. */
export interface PaySession {
  id: string;
  charge_point_id: string;
  evse_id: number;
  capability_sha256: string;
  id_tag: string;
  currency: string;
  hold_minor: number;
  hold_source: 'site' | 'max_price' | 'estimate';
  tariff_id: string;
  tariff_version: number;
  provider: string;
  provider_payment_id: string | null;
  status: PayStatus;
  reason: string | null;
  session_id: string | null;
  transaction_id: string | null;
  energy_wh: number;
  running_incl_vat_minor: number;
  total_excl_vat_minor: number | null;
  total_incl_vat_minor: number | null;
  vat_percent: string | null;
  captured_minor: number | null;
  rated_version: number | null;
  breakdown: unknown;
  stop_requested_by: string | null;
  created_at_ms: number;
  authorized_at_ms: number | null;
  started_at_ms: number | null;
  stopped_at_ms: number | null;
  settled_at_ms: number | null;
  updated_at_ms: number;
}

export type PayStatus =
  | 'awaiting_payment'
  | 'authorized'
  | 'starting'
  | 'charging'
  | 'stopping'
  | 'settled'
  | 'declined'
  | 'released'
  | 'failed';

/** Statuses in which the hold is still on the card. */
export const active_statuses: readonly PayStatus[] = ['authorized', 'starting', 'charging', 'stopping'];

export async function pay_session(q: Queryable, id: string): Promise<PaySession | undefined> {
  const [row] = await q.query<PaySession>('SELECT * FROM pay_sessions WHERE id = $1', [id]);
  return row;
}

export async function pay_session_by_tag(q: Queryable, id_tag: string): Promise<PaySession | undefined> {
  const [row] = await q.query<PaySession>('SELECT * FROM pay_sessions WHERE id_tag = $1', [id_tag]);
  return row;
}

/** The sessions holding money now, oldest first, at most `max`. */
export async function active_pay_sessions(q: Queryable, max: number): Promise<PaySession[]> {
  return await q.query<PaySession>(
    `SELECT * FROM pay_sessions WHERE status IN ('authorized', 'starting', 'charging', 'stopping')
     ORDER BY created_at_ms LIMIT $1`,
    [max],
  );
}

/** The newest paid session on an EVSE that still holds money (the EVSE is taken by it). */
export async function active_on_evse(
  q: Queryable,
  charge_point_id: string,
  evse_id: number,
): Promise<PaySession | undefined> {
  const [row] = await q.query<PaySession>(
    `SELECT * FROM pay_sessions WHERE charge_point_id = $1 AND evse_id = $2
       AND status IN ('authorized', 'starting', 'charging', 'stopping')
     ORDER BY created_at_ms DESC LIMIT 1`,
    [charge_point_id, evse_id],
  );
  return row;
}

/**
 * Moves a session from one of `from` to `to` with the given column changes; returns the row when
 * this caller made the move (another process or a retry that got there first gets undefined).
 */
export async function transition(
  q: Queryable,
  id: string,
  from: readonly PayStatus[],
  to: PayStatus,
  changes: Record<string, string | number | null>,
  now_ms: number,
): Promise<PaySession | undefined> {
  const names = Object.keys(changes);
  for (const name of names) if (!/^[a-z_0-9]+$/.test(name)) throw new Error(`column ${name}`);
  const sets = names.map((name, i) => `${name} = $${i + 5}`);
  const [row] = await q.query<PaySession>(
    `UPDATE pay_sessions SET status = $3, updated_at_ms = $4${sets.length > 0 ? `, ${sets.join(', ')}` : ''}
     WHERE id = $1 AND status = ANY($2::text[]) RETURNING *`,
    [id, from, to, now_ms, ...names.map((n) => changes[n])],
  );
  return row;
}

export async function site_hold(
  q: Queryable,
  station_id: string,
): Promise<{ currency: string; hold_minor: number } | undefined> {
  const [row] = await q.query<{ currency: string; hold_minor: number }>(
    'SELECT currency, hold_minor FROM pay_site_holds WHERE station_id = $1',
    [station_id],
  );
  return row;
}

export async function put_site_hold(
  q: Queryable,
  station_id: string,
  currency: string,
  hold_minor: number,
  now_ms: number,
): Promise<void> {
  await q.query(
    `INSERT INTO pay_site_holds (station_id, currency, hold_minor, updated_at_ms) VALUES ($1, $2, $3, $4)
     ON CONFLICT (station_id) DO UPDATE SET currency = EXCLUDED.currency, hold_minor = EXCLUDED.hold_minor,
       updated_at_ms = EXCLUDED.updated_at_ms`,
    [station_id, currency, hold_minor, now_ms],
  );
}
