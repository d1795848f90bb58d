import type { Decimal } from 'decimal.js';
import { FieldError } from '../core/field-error.js';
import { Money, minor_units } from '../core/money.js';
import { minor_of, text_of_minor, vat_key } from './amounts.js';
import type { DocumentLine } from './invoices/issue.js';

/**
 * What a membership gives beyond its monthly fee, applied by the billing run to the sessions of
 * the period (invoices/membership-lines.ts) and shown as invoice lines of kind `discount`, one per
 * rule and VAT rate, each saying what it counted:
 *
 * - `included_energy` {kwh, price_per_kwh}: the first `kwh` of the period, in stop order, cost
 *   `price_per_kwh` excl. VAT ("0": free) instead of their rated price. A session partly inside
 *   gets the included share of its energy: credit = share x its net - included kWh x price, never
 *   below 0 (a members' price above the rated one is no surcharge). A membership active only part
 *   of the period includes that part of `kwh` by days (as the fee is pro-rated), in whole Wh
 *   rounded down.
 * - `volume_tiers` [{above_kwh, discount_per_kwh}]: marginal bands over the period's energy: each
 *   kWh above `above_kwh` (and below the next tier's) gets `discount_per_kwh` off, up to the
 *   session's net. Thresholds are not pro-rated; kWh already included get no tier discount.
 * - `loyalty` {every_nth_session, discount_percent}: counting the period's sessions in stop order,
 *   every Nth gets `discount_percent` off what it still costs after the two rules above (100: free).
 *   The count starts again each period (no state outside the period's own sessions).
 *
 * The sessions counted are the account's final sessions of the period (not late adjustments of
 * earlier periods) in the membership's currency that stopped on a local day the membership is
 * active. Rules apply in that order, memberships in (starts_on, plan_id) order, each on what the
 * session still costs, so a session's discounts never exceed its net and no rate's net goes
 * negative. A discount's VAT is the rate of the session it discounts: a session of several rates
 * is discounted in proportion to its net per rate. Each line's exact credit is rounded once to the
 * minor unit (EN 16931 BT-131, amounts.ts minor_of); VAT and totals follow document_totals.
 */
export interface IncludedEnergy {
  kwh: string;
  price_per_kwh: string;
}

export interface VolumeTier {
  above_kwh: string;
  discount_per_kwh: string;
}

export interface Loyalty {
  every_nth_session: number;
  discount_percent: string;
}

export interface MembershipBenefits {
  included_energy?: IncludedEnergy;
  volume_tiers?: VolumeTier[];
  loyalty?: Loyalty;
}

export const benefit_fields = ['included_energy', 'volume_tiers', 'loyalty'] as const;
export const volume_tiers_max = 10;
const kwh_max = 1_000_000;
const price_per_kwh_max = 1000;

type Json = Record<string, unknown>;

function object_at(value: unknown, field: string, allowed: readonly string[]): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new FieldError(field, 'must be an object');
  const o = value as Json;
  for (const key of Object.keys(o)) {
    if (!allowed.includes(key)) throw new FieldError(`${field}.${key}`, 'is not a known field');
  }
  return o;
}

/** Decimal text with at most `decimals` decimals, from min (inclusive unless `above`) to max. */
function decimal_text(
  value: unknown,
  field: string,
  decimals: number,
  min: number,
  max: number,
  above = false,
): string {
  const pattern = new RegExp(`^\\d{1,9}(\\.\\d{1,${decimals}})?$`);
  const rule = `must be decimal text with at most ${decimals} decimals, ${above ? 'above' : 'from'} ${min} to ${max}`;
  if (typeof value !== 'string' || !pattern.test(value)) throw new FieldError(field, rule);
  const d = new Money(value);
  if ((above ? d.lte(min) : d.lt(min)) || d.gt(max)) throw new FieldError(field, rule);
  return value;
}

/** The benefits of `memberships[i]` (field names for errors start with `prefix`). */
export function validate_benefits(o: Json, prefix: string): MembershipBenefits {
  const benefits: MembershipBenefits = {};
  if (o.included_energy !== undefined) {
    const field = `${prefix}included_energy`;
    const ie = object_at(o.included_energy, field, ['kwh', 'price_per_kwh']);
    benefits.included_energy = {
      kwh: decimal_text(ie.kwh, `${field}.kwh`, 3, 0, kwh_max, true),
      price_per_kwh: decimal_text(ie.price_per_kwh ?? '0', `${field}.price_per_kwh`, 6, 0, price_per_kwh_max),
    };
  }
  if (o.volume_tiers !== undefined) {
    const field = `${prefix}volume_tiers`;
    if (
      !Array.isArray(o.volume_tiers) ||
      o.volume_tiers.length === 0 ||
      o.volume_tiers.length > volume_tiers_max
    )
      throw new FieldError(field, `must be an array of 1 to ${volume_tiers_max} tiers`);
    benefits.volume_tiers = o.volume_tiers.map((t, i) => {
      const tf = `${field}[${i}]`;
      const to = object_at(t, tf, ['above_kwh', 'discount_per_kwh']);
      return {
        above_kwh: decimal_text(to.above_kwh, `${tf}.above_kwh`, 3, 0, kwh_max),
        discount_per_kwh: decimal_text(
          to.discount_per_kwh,
          `${tf}.discount_per_kwh`,
          6,
          0,
          price_per_kwh_max,
          true,
        ),
      };
    });
    for (let i = 1; i < benefits.volume_tiers.length; i++) {
      if (new Money(benefits.volume_tiers[i]!.above_kwh).lte(benefits.volume_tiers[i - 1]!.above_kwh))
        throw new FieldError(`${field}[${i}].above_kwh`, 'must be above the previous tier');
    }
  }
  if (o.loyalty !== undefined) {
    const field = `${prefix}loyalty`;
    const lo = object_at(o.loyalty, field, ['every_nth_session', 'discount_percent']);
    const n = lo.every_nth_session;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 2 || n > 10_000)
      throw new FieldError(`${field}.every_nth_session`, 'must be an integer from 2 to 10000');
    benefits.loyalty = {
      every_nth_session: n,
      discount_percent: decimal_text(lo.discount_percent, `${field}.discount_percent`, 4, 0, 100, true),
    };
  }
  return benefits;
}

export function has_benefits(b: MembershipBenefits): boolean {
  return benefit_fields.some((f) => b[f] !== undefined);
}

/** A session as the membership rules see it: its energy, its net in minor units and per VAT rate. */
export interface BenefitSession {
  session_id: string;
  energy_wh: number;
  net_minor: number;
  parts: readonly { vat_percent: string; net_minor: number }[];
}

export interface MembershipTerms {
  plan_id: string;
  currency: string;
  benefits: MembershipBenefits;
  /** Days of the period the membership is active, and the period's days (included kWh pro-rating). */
  days_active: number;
  days_in_period: number;
}

type Rule = 'included_energy' | 'volume_tier' | 'loyalty';

interface Accumulated {
  rule: Rule;
  tier: number;
  vat_percent: string;
  /** Credit in minor units, exact (not yet rounded). */
  credit: Decimal;
  energy_wh: number;
  sessions: number;
}

function kwh_text(wh: number): string {
  return (wh / 1000).toFixed(3);
}

/** The included Wh of a membership active `days_active` of `days_in_period`, rounded down. */
export function included_wh(kwh: string, days_active: number, days_in_period: number): number {
  const full = new Money(kwh).mul(1000);
  const wh = days_active >= days_in_period ? full : full.mul(days_active).div(days_in_period);
  return wh.floor().toNumber();
}

/**
 * The discount lines of one membership over `sessions` (the period's sessions it covers, in stop
 * order). `remaining` holds what each session still costs in exact minor units (shared by the
 * account's memberships, consumed here).
 */
export function membership_discount_lines(
  terms: MembershipTerms,
  sessions: readonly BenefitSession[],
  remaining: Map<string, Decimal>,
): DocumentLine[] {
  const { benefits, currency } = terms;
  if (!has_benefits(benefits)) return [];
  const scale = new Money(10).pow(minor_units(currency));
  const acc = new Map<string, Accumulated>();
  const add = (rule: Rule, tier: number, s: BenefitSession, credit: Decimal, wh: number) => {
    if (credit.lte(0) && wh === 0) return;
    const parts = s.parts.length > 0 ? s.parts : [{ vat_percent: '0', net_minor: s.net_minor }];
    const weight_total = parts.reduce((sum, p) => sum + p.net_minor, 0);
    // The kWh and the session are counted on the line of the session's largest part.
    const largest = parts.reduce((best, p, i) => (p.net_minor > parts[best]!.net_minor ? i : best), 0);
    parts.forEach((p, i) => {
      // One rate: all of it; several: in proportion to the session's net per rate .
      const share =
        parts.length === 1
          ? credit
          : weight_total === 0
            ? new Money(0)
            : credit.mul(p.net_minor).div(weight_total);
      const vat_percent = vat_key(p.vat_percent);
      const key = `${rule}|${tier}|${vat_percent}`;
      const a = acc.get(key) ?? { rule, tier, vat_percent, credit: new Money(0), energy_wh: 0, sessions: 0 };
      a.credit = a.credit.add(share);
      if (i === largest) {
        a.energy_wh += wh;
        a.sessions += 1;
      }
      acc.set(key, a);
    });
  };
  const included = benefits.included_energy;
  const included_total_wh =
    included === undefined ? 0 : included_wh(included.kwh, terms.days_active, terms.days_in_period);
  const tiers = (benefits.volume_tiers ?? []).map((t, i, all) => ({
    from_wh: Math.max(new Money(t.above_kwh).mul(1000).toNumber(), included_total_wh),
    to_wh:
      i + 1 < all.length ? new Money(all[i + 1]!.above_kwh).mul(1000).toNumber() : Number.POSITIVE_INFINITY,
    per_wh_minor: new Money(t.discount_per_kwh).mul(scale).div(1000),
  }));
  let cumulative_wh = 0;
  let count = 0;
  for (const s of sessions) {
    count += 1;
    let left = remaining.get(s.session_id) ?? new Money(s.net_minor);
    const start_wh = cumulative_wh;
    const end_wh = start_wh + Math.max(0, s.energy_wh);
    cumulative_wh = end_wh;
    if (included !== undefined && s.energy_wh > 0) {
      const covered_wh = Math.max(0, Math.min(end_wh, included_total_wh) - start_wh);
      if (covered_wh > 0) {
        const at_rated = new Money(s.net_minor).mul(covered_wh).div(s.energy_wh);
        const at_members = new Money(included.price_per_kwh).mul(scale).mul(covered_wh).div(1000);
        const credit = Money.min(left, Money.max(0, at_rated.sub(at_members)));
        left = left.sub(credit);
        add('included_energy', 0, s, credit, covered_wh);
      }
    }
    tiers.forEach((tier, t) => {
      const band_wh = Math.max(0, Math.min(end_wh, tier.to_wh) - Math.max(start_wh, tier.from_wh));
      if (band_wh <= 0) return;
      const credit = Money.min(left, tier.per_wh_minor.mul(band_wh));
      left = left.sub(credit);
      add('volume_tier', t, s, credit, band_wh);
    });
    const loyalty = benefits.loyalty;
    if (loyalty !== undefined && count % loyalty.every_nth_session === 0) {
      const credit = left.mul(loyalty.discount_percent).div(100);
      left = left.sub(credit);
      add('loyalty', 0, s, credit, 0);
    }
    remaining.set(s.session_id, left);
  }
  const rule_order: Record<Rule, number> = { included_energy: 0, volume_tier: 1, loyalty: 2 };
  const entries = [...acc.values()].sort(
    (a, b) =>
      rule_order[a.rule] - rule_order[b.rule] ||
      a.tier - b.tier ||
      new Money(a.vat_percent).cmp(b.vat_percent),
  );
  const rates_of = (rule: Rule, tier: number) =>
    entries.filter((e) => e.rule === rule && e.tier === tier).length;
  const lines: DocumentLine[] = [];
  for (const e of entries) {
    // The line's net: the exact credit rounded once to the minor unit, as a negative amount.
    const credit_minor = minor_of(e.credit.div(scale).toString(), currency);
    if (credit_minor === 0) continue;
    const rate_note = rates_of(e.rule, e.tier) > 1 ? ` (part at ${e.vat_percent}% VAT)` : '';
    const credited = `${text_of_minor(credit_minor, currency)} credited`;
    let description: string;
    if (e.rule === 'included_energy') {
      const price = included!.price_per_kwh;
      description =
        `Membership ${terms.plan_id}: ${kwh_text(e.energy_wh)} kWh of ${kwh_text(included_total_wh)} kWh included ` +
        `${new Money(price).isZero() ? 'free' : `at ${price} ${currency}/kWh`}, ${credited}${rate_note}`;
    } else if (e.rule === 'volume_tier') {
      const tier = benefits.volume_tiers![e.tier]!;
      description =
        `Membership ${terms.plan_id}: volume tier above ${tier.above_kwh} kWh in the period, ` +
        `${kwh_text(e.energy_wh)} kWh at ${tier.discount_per_kwh} ${currency}/kWh off, ${credited}${rate_note}`;
    } else {
      const loyalty = benefits.loyalty!;
      description =
        `Membership ${terms.plan_id}: loyalty, every ${loyalty.every_nth_session}th session ` +
        `${loyalty.discount_percent}% off, ${e.sessions} session${e.sessions === 1 ? '' : 's'}, ${credited}${rate_note}`;
    }
    lines.push({
      kind: 'discount',
      description,
      net_minor: -credit_minor,
      vat_percent: e.vat_percent,
      ...(e.rule === 'loyalty' ? {} : { energy_wh: e.energy_wh }),
      plan_id: terms.plan_id,
      rule: e.rule,
    });
  }
  return lines;
}
