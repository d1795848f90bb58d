// Pricing beyond OCPI that operators sell: membership plans and idle fees after a grace period.
import { describe, expect, it } from 'vitest';
import { Money } from '../core/money.js';
import { type MeterSample, rate_session, SessionRater } from './engine.js';
import { apply_plan, type Plan, PlanValidationError, validate_plan } from './plans.js';
import type { Tariff } from './tariff.js';

const tariff: Tariff = {
  country_code: 'DE',
  party_id: 'EVR',
  id: 'base',
  currency: 'EUR',
  elements: [
    {
      price_components: [
        { type: 'ENERGY', price: 0.4, vat: 20, step_size: 1 },
        { type: 'FLAT', price: 1, vat: 20, step_size: 1 },
      ],
    },
  ],
  last_updated: '2026-11-01T00:00:00Z',
};

const start_ms = Date.parse('2026-11-02T09:00:00Z');
/** 30 kWh over 2 hours: 30 x 0.40 + 1.00 = 13.00 excl. VAT, 15.60 incl. 20% VAT. */
const samples: MeterSample[] = [
  { at_ms: start_ms, energy_wh: 0, charging: true },
  { at_ms: start_ms + 3_600_000, energy_wh: 15_000, charging: true },
  { at_ms: start_ms + 7_200_000, energy_wh: 30_000, charging: true },
];

function plan(extra: Partial<Plan>): Plan {
  return { id: 'gold', name: 'Gold', currency: 'EUR', ...extra };
}

describe('membership plans', () => {
  it('prices without a plan at the tariff and explains nothing extra', () => {
    const rated = rate_session({ tariff, time_zone: 'Europe/Berlin', samples });
    expect(rated.total_cost).toEqual({ excl_vat: '13.00', incl_vat: '15.60' });
    expect(rated.plan).toBeNull();
    expect(rated.plan_lines).toEqual([]);
  });

  it('takes a percentage off, VAT following the session VAT mix', () => {
    const rated = rate_session({
      tariff,
      time_zone: 'Europe/Berlin',
      samples,
      plan: plan({ discount_percent: 15 }),
    });
    // 13.00 x 0.85 = 11.05; 15.60 x 0.85 = 13.26
    expect(rated.total_cost).toEqual({ excl_vat: '11.05', incl_vat: '13.26' });
    expect(rated.plan_lines).toEqual([
      { plan_id: 'gold', rule: 'discount_percent', amount_excl_vat: '1.95', amount_incl_vat: '2.34' },
    ]);
    // The dimension totals stay the tariff's; the plan line explains the difference.
    expect(rated.total_energy_cost.excl_vat).toBe('12.00');
  });

  it('applies percentage, then fixed amount, then the cap, in that order', () => {
    const rated = rate_session({
      tariff,
      time_zone: 'Europe/Berlin',
      samples,
      plan: plan({ discount_percent: 10, discount_fixed_excl_vat: 0.7, session_cap_excl_vat: 10 }),
    });
    // 13.00 - 1.30 = 11.70; - 0.70 = 11.00; capped at 10.00 (incl. VAT x 1.2 = 12.00)
    expect(rated.total_cost).toEqual({ excl_vat: '10.00', incl_vat: '12.00' });
    expect(rated.plan_lines.map((l) => [l.rule, l.amount_excl_vat])).toEqual([
      ['discount_percent', '1.3'],
      ['discount_fixed', '0.7'],
      ['session_cap', '1'],
    ]);
    // The plan lines explain the whole difference to the tariff price.
    const taken = rated.plan_lines.reduce((sum, l) => sum.plus(l.amount_excl_vat), new Money(0));
    expect(new Money('13').minus(taken).toFixed(2)).toBe(rated.total_cost.excl_vat);
  });

  it('never takes a fixed discount below zero, and a cap above the price changes nothing', () => {
    const free = rate_session({
      tariff,
      time_zone: 'Europe/Berlin',
      samples,
      plan: plan({ discount_fixed_excl_vat: 50, session_cap_excl_vat: 100 }),
    });
    expect(free.total_cost).toEqual({ excl_vat: '0.00', incl_vat: '0.00' });
    expect(free.plan_lines.map((l) => l.rule)).toEqual(['discount_fixed']);
  });

  it('gives the same running cost during the session as the final price', () => {
    const gold = plan({ discount_percent: 12.5, session_cap_excl_vat: 12 });
    const rater = new SessionRater(tariff, 'Europe/Berlin', samples[0]!, gold);
    for (const sample of samples.slice(1)) rater.add(sample);
    expect(rater.running_cost()).toEqual(rater.result().total_cost);
    // A restored rater keeps the plan.
    const restored = SessionRater.from_state(tariff, 'Europe/Berlin', samples[0]!, rater.state(), gold);
    expect(restored.result()).toEqual(rater.result());
  });

  it('refuses fixed amounts in another currency than the tariff', () => {
    expect(() =>
      rate_session({
        tariff,
        time_zone: 'Europe/Berlin',
        samples,
        plan: plan({ currency: 'USD', session_cap_excl_vat: 5 }),
      }),
    ).toThrow(PlanValidationError);
    // A percentage has no currency.
    expect(
      rate_session({
        tariff,
        time_zone: 'Europe/Berlin',
        samples,
        plan: plan({ currency: 'USD', discount_percent: 50 }),
      }).total_cost.excl_vat,
    ).toBe('6.50');
  });

  it('validates a plan and names the bad field', () => {
    expect(validate_plan({ id: 'p', name: 'P', currency: 'EUR', discount_percent: 5 })).toMatchObject({
      id: 'p',
    });
    const field_of = (value: unknown) => {
      try {
        validate_plan(value);
      } catch (error) {
        return (error as PlanValidationError).field;
      }
      return 'valid';
    };
    expect(field_of({ id: 'p', name: 'P', currency: 'EUR', discount_percent: 101 })).toBe('discount_percent');
    expect(field_of({ id: 'p', name: 'P', currency: 'eur' })).toBe('currency');
    expect(field_of({ id: 'p', name: 'P', currency: 'EUR', session_cap_excl_vat: -1 })).toBe(
      'session_cap_excl_vat',
    );
    expect(field_of({ id: 'p', name: 'P', currency: 'EUR', bonus: 1 })).toBe('bonus');
    expect(field_of([])).toBe('(body)');
  });

  it('leaves a cost untouched without a plan', () => {
    const cost = { excl: new Money('1.5'), incl: new Money('1.8') };
    expect(apply_plan(cost, 'EUR', undefined)).toEqual({ cost, lines: [] });
  });
});

describe('idle fee after a grace period', () => {
  const idle_tariff: Tariff = {
    ...tariff,
    id: 'idle',
    evrate_idle_grace_minutes: 15,
    elements: [
      {
        price_components: [
          { type: 'ENERGY', price: 0.3, vat: 0, step_size: 1 },
          { type: 'PARKING_TIME', price: 6, vat: 0, step_size: 60 },
        ],
      },
    ],
  };
  const minute_ms = 60_000;
  const at = (minutes: number) => start_ms + minutes * minute_ms;

  it('prices idle time only after the grace period, and counts all of it as parking time', () => {
    const rated = rate_session({
      tariff: idle_tariff,
      time_zone: 'Europe/Berlin',
      samples: [
        { at_ms: at(0), energy_wh: 0, charging: true },
        { at_ms: at(60), energy_wh: 20_000, charging: false },
        { at_ms: at(100), energy_wh: 20_000, charging: false },
      ],
    });
    // 20 kWh x 0.30 = 6.00; 40 idle minutes, 15 free: 25 min x 6.00/h = 2.50.
    expect(rated.total_cost.excl_vat).toBe('8.50');
    expect(rated.total_parking_cost.excl_vat).toBe('2.50');
    expect(rated.total_parking_time).toBe('0.666667');
    expect(rated.lines.filter((l) => l.dimension === 'PARKING_TIME').map((l) => l.volume)).toEqual(['1500']);
  });

  it('gives every idle run its own grace, whatever the samples and restarts', () => {
    const samples: MeterSample[] = [
      { at_ms: at(0), energy_wh: 0, charging: true },
      { at_ms: at(30), energy_wh: 10_000, charging: false },
      { at_ms: at(40), energy_wh: 10_000, charging: false },
      { at_ms: at(50), energy_wh: 10_000, charging: true },
      { at_ms: at(80), energy_wh: 20_000, charging: false },
      { at_ms: at(120), energy_wh: 20_000, charging: false },
    ];
    const whole = rate_session({ tariff: idle_tariff, time_zone: 'Europe/Berlin', samples });
    // Idle 30-50 (20 min, 5 billed) and 80-120 (40 min, 25 billed): 30 min x 6.00/h = 3.00.
    expect(whole.total_parking_cost.excl_vat).toBe('3.00');
    expect(whole.total_cost.excl_vat).toBe('9.00');
    // The same facts fed with a restart inside the second grace period price the same.
    const rater = new SessionRater(idle_tariff, 'Europe/Berlin', samples[0]!);
    for (const s of samples.slice(1, 5)) rater.add(s);
    rater.add({ at_ms: at(85), energy_wh: 20_000, charging: false });
    const restored = SessionRater.from_state(idle_tariff, 'Europe/Berlin', samples[0]!, rater.state());
    restored.add(samples[5]!);
    expect(restored.result().total_cost).toEqual(whole.total_cost);
    expect(restored.running_cost()).toEqual(whole.total_cost);
  });

  it('refuses a grace period that is not a whole number of minutes up to a day', async () => {
    const { validate_tariff, TariffValidationError } = await import('./tariff.js');
    for (const bad of [-1, 1.5, 1441]) {
      expect(() => validate_tariff({ ...idle_tariff, evrate_idle_grace_minutes: bad })).toThrow(
        TariffValidationError,
      );
    }
  });
});
