import { describe, expect, it } from 'vitest';
import { Money, minor_units } from '../core/money.js';
import { money_figures, money_per } from './query-filter.js';

/** The figures as Decimal gives them: what the integer path must reproduce digit for digit. */
function decimal_figures(amount: string, currency: string, sessions: number, energy_wh: number) {
  const sum = new Money(amount);
  return {
    revenue_excl_vat: sum.toFixed(Math.max(minor_units(currency), sum.decimalPlaces())),
    revenue_per_session_excl_vat: money_per(amount, sessions),
    revenue_per_kwh_excl_vat: money_per(amount, new Money(energy_wh).div(1000)),
  };
}

describe('money figures of analytics rows', () => {
  it('gives the same text as Decimal for sums, per-session and per-kWh ratios, halves and signs included', () => {
    const amounts = ['0', '-0.0000', '0.5', '12.3400', '-7.0001', '-0.00005', '0.00005', '-0.00004', '1e5'];
    // A fixed linear congruential sequence: the same cases on every run.
    let seed = 42;
    const next = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed % n;
    };
    for (let i = 0; i < 2000; i++) {
      const fraction = next(3) === 0 ? '' : `.${String(next(10_000)).padStart(4, '0')}`;
      amounts.push(`${next(5) === 0 ? '-' : ''}${next(2) === 0 ? next(10) : next(1_000_000_000)}${fraction}`);
    }
    for (const [i, amount] of amounts.entries()) {
      const currency = ['EUR', 'JPY', 'KWD'][i % 3]!;
      const sessions = i % 7 === 0 ? 0 : 1 + (i % 3 === 0 ? i % 7 : i * 31);
      const energy_wh = i % 11 === 0 ? 0 : i % 2 === 0 ? i % 3000 : i * 104_729;
      const figures = money_figures({
        currency,
        sessions: String(sessions),
        energy_wh: String(energy_wh),
        revenue_excl_vat: amount,
        revenue_incl_vat: amount,
      });
      expect(figures).toMatchObject(decimal_figures(amount, currency, sessions, energy_wh));
    }
    // Spelled out: half away from zero at the fourth decimal, minor units padded.
    const row = {
      currency: 'EUR',
      sessions: '8',
      energy_wh: '3000',
      revenue_excl_vat: '0.0004',
      revenue_incl_vat: '1.5',
    };
    expect(money_figures(row)).toMatchObject({
      revenue_excl_vat: '0.0004',
      revenue_incl_vat: '1.50',
      revenue_per_session_excl_vat: '0.0001',
      revenue_per_kwh_excl_vat: '0.0001',
    });
  });
});
