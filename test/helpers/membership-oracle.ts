import { Decimal } from 'decimal.js';

/**
 * The membership rules of billing/memberships.ts written again, independently, kWh band by kWh
 * band, for the tests to check invoices against: the discounts of one membership over the
 * sessions it covers (in stop order), per rule and VAT rate, in cents, and the invoice total.
 */
const D = Decimal.clone({ precision: 60, rounding: Decimal.ROUND_HALF_UP });
type Dec = InstanceType<typeof D>;

export interface Benefits {
  included_energy?: { kwh: string; price_per_kwh: string };
  volume_tiers?: { above_kwh: string; discount_per_kwh: string }[];
  loyalty?: { every_nth_session: number; discount_percent: string };
}

export interface Part {
  vat_percent: string;
  net_minor: number;
}
export interface Sess {
  session_id: string;
  energy_wh: number;
  net_minor: number;
  parts: Part[];
}

/**
 * The discount lines the rules give, computed here kWh band by kWh band: [rule, vat %, cents]
 * (cents positive, to be taken off). One membership per account in this test.
 */
export function expected_discounts(sessions: Sess[], b: Benefits, days_active: number, days: number) {
  const credit = new Map<string, Dec>();
  const put = (rule: string, s: Sess, amount: Dec) => {
    for (const p of s.parts) {
      const share = s.parts.length === 1 ? amount : amount.mul(p.net_minor).div(s.net_minor);
      const key = `${rule}|${new D(p.vat_percent).toString()}`;
      credit.set(key, (credit.get(key) ?? new D(0)).add(share));
    }
  };
  const included_wh = b.included_energy
    ? new D(b.included_energy.kwh).mul(1000).mul(days_active).div(days).floor().toNumber()
    : 0;
  const bands = (b.volume_tiers ?? []).map((t, i, all) => ({
    name: `volume_tier${i}`,
    lo: Math.max(Number(t.above_kwh) * 1000, included_wh),
    hi: i + 1 < all.length ? Number(all[i + 1]!.above_kwh) * 1000 : Infinity,
    cents_per_wh: new D(t.discount_per_kwh).mul(100).div(1000),
  }));
  let at_wh = 0;
  sessions.forEach((s, index) => {
    let cost = new D(s.net_minor);
    const lo = at_wh;
    const hi = at_wh + s.energy_wh;
    at_wh = hi;
    const inside = Math.max(0, Math.min(hi, included_wh) - lo);
    if (inside > 0 && b.included_energy) {
      const c = D.min(
        cost,
        D.max(
          0,
          cost
            .mul(inside)
            .div(s.energy_wh)
            .sub(new D(b.included_energy.price_per_kwh).mul(100).mul(inside).div(1000)),
        ),
      );
      cost = cost.sub(c);
      put('included_energy', s, c);
    }
    for (const band of bands) {
      const wh = Math.max(0, Math.min(hi, band.hi) - Math.max(lo, band.lo));
      if (wh === 0) continue;
      const c = D.min(cost, band.cents_per_wh.mul(wh));
      cost = cost.sub(c);
      put(band.name, s, c);
    }
    if (b.loyalty && (index + 1) % b.loyalty.every_nth_session === 0) {
      const c = cost.mul(b.loyalty.discount_percent).div(100);
      put('loyalty', s, c);
    }
  });
  return [...credit.entries()]
    .map(([key, c]) => [key, c.toDecimalPlaces(0, D.ROUND_HALF_UP).toNumber()] as const)
    .filter(([, c]) => c !== 0);
}

/** Invoice total from session nets, the fee and the discounts, VAT per rate rounded once. */
export function expected_total(
  sessions: Sess[],
  fee_cents: number,
  discounts: readonly (readonly [string, number])[],
) {
  const by_rate = new Map<string, number>();
  const add = (rate: string, cents: number) =>
    by_rate.set(new D(rate).toString(), (by_rate.get(new D(rate).toString()) ?? 0) + cents);
  for (const s of sessions) for (const p of s.parts) add(p.vat_percent, p.net_minor);
  if (fee_cents > 0) add('21', fee_cents);
  for (const [key, cents] of discounts) add(key.split('|')[1]!, -cents);
  let total = 0;
  for (const [rate, net] of by_rate)
    total += net + new D(net).mul(rate).div(100).toDecimalPlaces(0, D.ROUND_HALF_UP).toNumber();
  return { total, by_rate };
}
