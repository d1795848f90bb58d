import type { Decimal } from 'decimal.js';
import { has_benefits, type MembershipBenefits, membership_discount_lines } from '../memberships.js';
import { days_between, local_date, type PeriodBounds } from '../period.js';
import type { DocumentLine } from './issue.js';
import type { BillableSession } from './sources.js';

/**
 * The discount lines of an account's memberships on its period invoice (rules in memberships.ts):
 * which sessions each membership covers (the period's own sessions, not adjustments, in its
 * currency, stopped on a local day it is active), in stop order as the run reads them.
 */
export interface MembershipRow {
  plan_id: string;
  currency: string;
  starts_on: string;
  ends_on: string | null;
  benefits: MembershipBenefits;
}

export function membership_lines_of_account(
  memberships: readonly MembershipRow[],
  sessions: readonly BillableSession[],
  bounds: PeriodBounds,
  time_zone: string,
): { currency: string; lines: DocumentLine[] }[] {
  const with_benefits = memberships.filter((m) => has_benefits(m.benefits) && m.starts_on <= bounds.last_day);
  if (with_benefits.length === 0) return [];
  const of_period = sessions
    .filter((s) => s.stopped_at_ms >= bounds.start_ms && s.stopped_at_ms < bounds.end_ms)
    .map((s) => ({ s, day: local_date(s.stopped_at_ms, time_zone) }));
  const remaining = new Map<string, Decimal>();
  const out: { currency: string; lines: DocumentLine[] }[] = [];
  for (const m of with_benefits) {
    // Days as YYYY-MM-DD compare as text.
    const from = [m.starts_on, bounds.first_day].sort()[1]!;
    const to = m.ends_on !== null && m.ends_on < bounds.last_day ? m.ends_on : bounds.last_day;
    if (to < from) continue;
    const covered = of_period
      .filter(({ s, day }) => s.currency === m.currency && day >= from && day <= to)
      .map(({ s }) => ({
        session_id: s.session_id,
        energy_wh: s.energy_wh,
        net_minor: s.net_minor,
        parts: s.vat_parts ?? [{ vat_percent: s.vat_percent, net_minor: s.net_minor }],
      }));
    const days_active = days_between(from, to) + 1;
    const lines = membership_discount_lines(
      {
        plan_id: m.plan_id,
        currency: m.currency,
        benefits: m.benefits,
        days_active,
        days_in_period: bounds.days,
      },
      covered,
      remaining,
    );
    if (lines.length > 0) out.push({ currency: m.currency, lines });
  }
  return out;
}
