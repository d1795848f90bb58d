import type { RatedSessionRow } from '../analytics/sessions.js';
import { Money } from '../core/money.js';
import { minor_of, split_minor, vat_key } from './amounts.js';
import { credit_sessions } from './credit-notes/create.js';
import { invoice_sessions_on_arrival } from './invoices/per-session.js';
import type { Ledger } from './ledger.js';

/**
 * Rated versions from the feed into the ledger. Every version is recorded (session_versions,
 * unique (session_id, version): a redelivered one adds nothing); a FINAL version becomes the
 * session's billable version when it is newer than the one held. A session is attributed to the
 * account owning its id_tag when it is first seen (or, if no account owns it yet, at the billing
 * run). A higher final version of a session already invoiced credits the invoiced line (a credit
 * note, never an edit of the issued invoice) and leaves the new version unbilled: the next billing
 * run invoices it as an adjustment; an account billed per session gets the new version's invoice at
 * once, like every final session of such an account. All of it in one transaction per batch.
 */

/** A session's net at one VAT rate: the session is one invoice line per part. */
export interface VatPart {
  vat_percent: string;
  net_minor: number;
}

/**
 * A session's net in minor units split by VAT rate, adding up to `net_minor` (its rated total excl.
 * VAT). The rated lines are grouped as rating/decimal-engine.ts invoice_totals groups them (per
 * dimension and rate, each group rounded half up to the minor unit) and summed per rate. When the
 * session's total differs from that sum (a tariff's min/max price, or the driver's plan discount,
 * rating/plans.ts apply_plan, applied after the per-rate totals) the difference is split over the
 * rates in proportion to their nets (amounts.ts split_minor), as the plan takes VAT off in the
 * session's own VAT mix. Without rated lines: one part at the rate the totals imply.
 */
export function session_vat_parts(row: RatedSessionRow, net_minor: number): VatPart[] {
  const groups = new Map<string, { vat_percent: string; excl: Money }>();
  try {
    const breakdown = JSON.parse(row.breakdown) as {
      lines?: { dimension?: string; vat_percent?: string; cost_excl_vat?: string }[];
    };
    for (const line of breakdown.lines ?? []) {
      if (line.vat_percent === undefined) continue;
      const vat_percent = vat_key(line.vat_percent);
      const key = `${line.dimension ?? ''}|${vat_percent}`;
      const group = groups.get(key) ?? { vat_percent, excl: new Money(0) };
      group.excl = group.excl.add(line.cost_excl_vat ?? '0');
      groups.set(key, group);
    }
  } catch {
    groups.clear();
  }
  const by_rate = new Map<string, number>();
  for (const group of groups.values()) {
    const net = minor_of(group.excl.toString(), row.currency);
    by_rate.set(group.vat_percent, (by_rate.get(group.vat_percent) ?? 0) + net);
  }
  if (by_rate.size === 0) {
    const excl = new Money(row.total_excl_vat);
    const implied = excl.isZero()
      ? '0'
      : vat_key(new Money(row.total_incl_vat).div(excl).sub(1).mul(100).toDecimalPlaces(4).toString());
    return [{ vat_percent: implied, net_minor }];
  }
  // Rates in ascending order: one order for the split's ties and for the lines.
  const rates = [...by_rate.entries()].sort((a, b) => new Money(a[0]).cmp(new Money(b[0])));
  const base_minor = rates.reduce((sum, [, net]) => sum + net, 0);
  const difference = split_minor(
    net_minor - base_minor,
    rates.map(([, net]) => net),
  );
  const parts = rates.map(([vat_percent, net], i) => ({ vat_percent, net_minor: net + difference[i]! }));
  // Pair assertion: the parts are the session's net.
  if (parts.reduce((sum, p) => sum + p.net_minor, 0) !== net_minor) {
    throw new Error(`session ${row.session_id}: VAT parts do not add up to its net`);
  }
  const priced = parts.filter((p) => p.net_minor !== 0);
  return priced.length > 0 ? priced : [parts[0]!];
}

export function is_final(row: RatedSessionRow): boolean {
  return row.provisional !== 1;
}

export interface RecordOutcome {
  versions_recorded: number;
  /** Credit notes issued for sessions re-rated after they were invoiced. */
  credit_notes: number[];
  /** Invoices issued for final sessions of accounts billed per session (invoices/per-session.ts). */
  invoices: number[];
}

export async function record_rated_versions(
  ledger: Ledger,
  rows: readonly RatedSessionRow[],
  now_ms: number = Date.now(),
): Promise<RecordOutcome> {
  if (rows.length === 0) return { versions_recorded: 0, credit_notes: [], invoices: [] };
  const versions = rows.map((row) => {
    const net_minor = minor_of(row.total_excl_vat, row.currency);
    const vat_parts = session_vat_parts(row, net_minor);
    return {
      session_id: row.session_id,
      version: row.version,
      final: is_final(row),
      id_tag: row.id_tag,
      charge_point_id: row.charge_point_id,
      evse_id: row.evse_id ?? null,
      station_id: row.station_id ?? row.charge_point_id,
      started_at_ms: row.started_at_ms,
      stopped_at_ms: row.stopped_at_ms,
      energy_wh: row.energy_wh,
      duration_s: row.duration_s ?? Math.max(0, Math.round((row.stopped_at_ms - row.started_at_ms) / 1000)),
      tariff_id: row.tariff_id,
      tariff_version: row.tariff_version,
      currency: row.currency,
      // Who pays (rating/outputs.ts attribution_of): TERMINAL sessions are settled by their terminal provider.
      payment_method: row.payment_method ?? null,
      total_excl_vat: row.total_excl_vat,
      total_incl_vat: row.total_incl_vat,
      net_minor,
      // The rate of the largest part (the session's rate when it has one); vat_parts has them all.
      vat_percent: [...vat_parts].sort((a, b) => b.net_minor - a.net_minor)[0]!.vat_percent,
      vat_parts,
    };
  });
  return await ledger.transaction(async (tx) => {
    const inserted = await tx.query<{ session_id: string; version: number }>(
      `INSERT INTO session_versions (session_id, version, final, id_tag, charge_point_id, evse_id, station_id,
         started_at_ms, stopped_at_ms, energy_wh, duration_s, tariff_id, tariff_version, currency,
         total_excl_vat, total_incl_vat, net_minor, vat_percent, vat_parts, payment_method, recorded_at_ms)
       SELECT x.session_id, x.version, x.final, x.id_tag, x.charge_point_id, x.evse_id, x.station_id,
         x.started_at_ms, x.stopped_at_ms, x.energy_wh, x.duration_s, x.tariff_id, x.tariff_version, x.currency,
         x.total_excl_vat, x.total_incl_vat, x.net_minor, x.vat_percent, x.vat_parts, x.payment_method, $2
       FROM jsonb_to_recordset($1::jsonb) AS x(session_id text, version int, final boolean, id_tag text,
         charge_point_id text, evse_id int, station_id text, started_at_ms int8, stopped_at_ms int8, energy_wh int8,
         duration_s int8, tariff_id text, tariff_version int, currency text, total_excl_vat numeric,
         total_incl_vat numeric, net_minor int8, vat_percent numeric, vat_parts jsonb, payment_method text)
       ON CONFLICT (session_id, version) DO NOTHING
       RETURNING session_id, version`,
      [JSON.stringify(versions), now_ms],
    );
    const fresh = new Set(inserted.map((r) => `${r.session_id}#${r.version}`));
    // Per session: the newest final version of the batch (or a provisional one, to know the session).
    const newest = new Map<string, (typeof versions)[number]>();
    for (const v of versions) {
      if (!fresh.has(`${v.session_id}#${v.version}`)) continue;
      const held = newest.get(v.session_id);
      if (held === undefined || (v.final && (!held.final || v.version > held.version)))
        newest.set(v.session_id, v);
    }
    if (newest.size === 0) return { versions_recorded: 0, credit_notes: [], invoices: [] };
    const sessions = [...newest.values()].sort((a, b) => (a.session_id < b.session_id ? -1 : 1));
    // Sorted by id so that two writers lock rows in one order (no deadlock).
    const changed = await tx.query<{
      session_id: string;
      billed_version: number | null;
      billed_invoice_id: number | null;
    }>(
      `INSERT INTO sessions AS s (session_id, id_tag, account_id, final_version, stopped_at_ms, currency)
       SELECT x.session_id, x.id_tag, t.account_id, CASE WHEN x.final THEN x.version END,
         CASE WHEN x.final THEN x.stopped_at_ms END, CASE WHEN x.final THEN x.currency END
       FROM jsonb_to_recordset($1::jsonb) AS x(session_id text, id_tag text, version int, final boolean,
         stopped_at_ms int8, currency text)
       LEFT JOIN account_tokens t ON t.uid = x.id_tag
       ORDER BY x.session_id
       ON CONFLICT (session_id) DO UPDATE SET final_version = EXCLUDED.final_version,
         stopped_at_ms = EXCLUDED.stopped_at_ms, currency = EXCLUDED.currency,
         account_id = coalesce(s.account_id, EXCLUDED.account_id)
       WHERE EXCLUDED.final_version IS NOT NULL AND (s.final_version IS NULL OR s.final_version < EXCLUDED.final_version)
       RETURNING session_id, billed_version, billed_invoice_id`,
      [
        JSON.stringify(
          sessions.map((v) => ({
            session_id: v.session_id,
            id_tag: v.id_tag,
            version: v.version,
            final: v.final,
            stopped_at_ms: v.stopped_at_ms,
            currency: v.currency,
          })),
        ),
      ],
    );
    const rerated = changed.filter((c) => c.billed_version !== null && c.billed_invoice_id !== null);
    const credit_notes =
      rerated.length === 0
        ? []
        : await credit_sessions(
            tx,
            rerated.map((c) => ({
              session_id: c.session_id,
              version: c.billed_version!,
              invoice_id: c.billed_invoice_id!,
            })),
            now_ms,
          );
    const invoices = await invoice_sessions_on_arrival(
      tx,
      changed.map((c) => c.session_id),
      now_ms,
    );
    return { versions_recorded: inserted.length, credit_notes, invoices };
  });
}
