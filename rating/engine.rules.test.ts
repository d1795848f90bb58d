// The pricing rules written in rating/decimal-engine.ts (invoice_totals, apply_price_limits) and
// rating/restrictions.ts (implied_power_w), each with figures worked out by hand. Every session is
// priced by both engines, which must agree digit for digit.
import { describe, expect, it } from 'vitest';
import { DecimalSessionRater } from './decimal-engine.js';
import { type MeterSample, type RatedSession, rate_session } from './engine.js';
import { type Tariff, type TariffElement, validate_tariff } from './tariff.js';

const hour_ms = 3_600_000;
const start_ms = Date.UTC(2026, 2, 2, 10); // a Monday, 11:00 in Berlin

function tariff(elements: TariffElement[], extra: Partial<Tariff> = {}): Tariff {
  return validate_tariff({
    country_code: 'DE',
    party_id: 'EVR',
    id: 'T',
    currency: 'EUR',
    elements,
    last_updated: '2026-01-01T00:00:00Z',
    ...extra,
  });
}

/** Samples from (ms after the start, cumulative Wh, extra fields) rows. */
function samples(rows: [number, number, Partial<MeterSample>?][]): MeterSample[] {
  return rows.map(([ms, energy_wh, extra]) => ({
    at_ms: start_ms + ms,
    energy_wh,
    charging: true,
    ...extra,
  }));
}

/** The integer engine's result, after checking that the decimal engine gives the same. */
function rate(t: Tariff, s: MeterSample[]): RatedSession {
  const rated = rate_session({ tariff: t, time_zone: 'Europe/Berlin', samples: s });
  const decimal = new DecimalSessionRater(t, 'Europe/Berlin', s[0]!);
  for (const sample of s.slice(1)) decimal.add(sample);
  expect(rated).toEqual(decimal.result());
  return rated;
}

const energy_025 = { type: 'ENERGY', price: 0.25, vat: 10, step_size: 1 } as const;

describe('min_price and max_price: both bounds, excl. and incl. VAT', () => {
  it('a session of no usage still costs min_price, its incl. VAT bound from the tariff VAT', () => {
    // min_price 0.50 excl. VAT only; every component has 10% VAT: the incl. bound is 0.50 x 1.10 = 0.55.
    const t = tariff([{ price_components: [energy_025] }], { min_price: { excl_vat: 0.5 } });
    const rated = rate(
      t,
      samples([
        [0, 1000],
        [0, 1000],
      ]),
    );
    expect(rated.total_energy_cost).toEqual({ excl_vat: '0.00', incl_vat: '0.00' });
    expect(rated.total_cost).toEqual({ excl_vat: '0.50', incl_vat: '0.55' });
    expect(rated.price_limit_applied).toBe('min_price');
  });

  it('raises the incl. VAT total to min_price incl. VAT even when the excl. VAT total is above its bound', () => {
    // 2.08 kWh x 0.25 = 0.52 net (above 0.50); VAT 10% = 0.052 -> 0.05, incl. 0.57 < 0.60: raised.
    const t = tariff([{ price_components: [energy_025] }], { min_price: { excl_vat: 0.5, incl_vat: 0.6 } });
    const rated = rate(
      t,
      samples([
        [0, 0],
        [hour_ms, 2080],
      ]),
    );
    expect(rated.total_cost).toEqual({ excl_vat: '0.52', incl_vat: '0.60' });
    expect(rated.price_limit_applied).toBe('min_price');
  });

  it('lowers the incl. VAT total to max_price incl. VAT while the excl. VAT total stays below its bound', () => {
    // 39 kWh x 0.25 = 9.75 net (below 10); VAT 0.975 -> 0.98, incl. 10.73 > 10.50: lowered.
    const t = tariff([{ price_components: [energy_025] }], { max_price: { excl_vat: 10, incl_vat: 10.5 } });
    const rated = rate(
      t,
      samples([
        [0, 0],
        [hour_ms, 39_000],
      ]),
    );
    expect(rated.total_cost).toEqual({ excl_vat: '9.75', incl_vat: '10.50' });
    expect(rated.price_limit_applied).toBe('max_price');
    // The dimension total is the price before the limit: 9.75 + 0.98.
    expect(rated.total_energy_cost).toEqual({ excl_vat: '9.75', incl_vat: '10.73' });
  });

  it('max_price without incl_vat: the incl. VAT bound is excl_vat x (1 + the tariff VAT)', () => {
    // 50 kWh x 0.25 = 12.50 (13.75 incl.); bounds 10.00 and 10.00 x 1.10 = 11.00.
    const t = tariff([{ price_components: [energy_025] }], { max_price: { excl_vat: 10 } });
    expect(
      rate(
        t,
        samples([
          [0, 0],
          [hour_ms, 50_000],
        ]),
      ).total_cost,
    ).toEqual({
      excl_vat: '10.00',
      incl_vat: '11.00',
    });
  });

  it('a tariff of several VAT rates takes the session VAT mix for a bound without incl_vat', () => {
    // No usage: only the start fee 0.50 at 20% = 0.60 incl. Mix 0.60 / 0.50 = 1.2; min 2.00 -> 2.40.
    const t = tariff(
      [{ price_components: [{ type: 'FLAT', price: 0.5, vat: 20, step_size: 1 }, energy_025] }],
      { min_price: { excl_vat: 2 } },
    );
    expect(
      rate(
        t,
        samples([
          [0, 0],
          [0, 0],
        ]),
      ).total_cost,
    ).toEqual({ excl_vat: '2.00', incl_vat: '2.40' });
  });

  it('refuses a min_price above the max_price', () => {
    expect(() =>
      tariff([{ price_components: [energy_025] }], {
        min_price: { excl_vat: 5 },
        max_price: { excl_vat: 4 },
      }),
    ).toThrow(/min_price.excl_vat: must not exceed max_price.excl_vat/);
  });
});

describe('totals add up as an invoice shows them', () => {
  it('rounds each (dimension, VAT rate) net, and VAT once per rate on the rounded nets', () => {
    // ENERGY at 21% for the first kWh (max_kwh 1), then at 9%; 0.333 per kWh, 2 kWh.
    // Nets: 1 x 0.333 = 0.333 -> 0.33 at 21%, 0.333 -> 0.33 at 9%; ENERGY 0.66 (not 0.666 -> 0.67).
    // VAT: 21% x 0.33 = 0.0693 -> 0.07; 9% x 0.33 = 0.0297 -> 0.03; incl. 0.66 + 0.10 = 0.76.
    const t = tariff([
      {
        price_components: [{ type: 'ENERGY', price: 0.333, vat: 21, step_size: 1 }],
        restrictions: { max_kwh: 1 },
      },
      { price_components: [{ type: 'ENERGY', price: 0.333, vat: 9, step_size: 1 }] },
    ]);
    const rated = rate(
      t,
      samples([
        [0, 0],
        [hour_ms, 2000],
      ]),
    );
    expect(rated.total_energy_cost).toEqual({ excl_vat: '0.66', incl_vat: '0.76' });
    expect(rated.total_cost).toEqual({ excl_vat: '0.66', incl_vat: '0.76' });
  });

  it('shares a rate VAT over the dimensions so that they add up to the total', () => {
    // 10% VAT: ENERGY 0.2 kWh x 0.25 = 0.05, FLAT 0.05. VAT on 0.10 = 0.01 (not 0.005 -> 0.01 twice).
    // Shares 0.005 and 0.005: floors 0, the one cent left goes to the first in ENERGY, TIME,
    // PARKING_TIME, FLAT order: ENERGY 0.06, FLAT 0.05, total 0.11.
    const t = tariff([
      { price_components: [{ type: 'FLAT', price: 0.05, vat: 10, step_size: 1 }, energy_025] },
    ]);
    const rated = rate(
      t,
      samples([
        [0, 0],
        [hour_ms, 200],
      ]),
    );
    expect(rated.total_energy_cost).toEqual({ excl_vat: '0.05', incl_vat: '0.06' });
    expect(rated.total_fixed_cost).toEqual({ excl_vat: '0.05', incl_vat: '0.05' });
    expect(rated.total_cost).toEqual({ excl_vat: '0.10', incl_vat: '0.11' });
  });

  it('the total excl. VAT is the sum of the rounded dimension nets', () => {
    // ENERGY 1.002 kWh x 0.25 = 0.2505 -> 0.25; TIME 1.5 h x 0.01 = 0.015 -> 0.02; PARKING_TIME
    // 0.5 h x 0.01 = 0.005 -> 0.01. Nets 0.25 + 0.02 + 0.01 = 0.28, where rounding the unrounded sum
    // 0.2705 would say 0.27 and no invoice line would add up to it.
    const t = tariff([
      {
        price_components: [
          { type: 'ENERGY', price: 0.25, step_size: 1 },
          { type: 'TIME', price: 0.01, step_size: 1 },
          { type: 'PARKING_TIME', price: 0.01, step_size: 1 },
        ],
      },
    ]);
    const rated = rate(
      t,
      samples([
        [0, 0],
        [1.5 * hour_ms, 1002, { charging: false }],
        [2 * hour_ms, 1002, { charging: false }],
      ]),
    );
    expect(rated.total_energy_cost.excl_vat).toBe('0.25');
    expect(rated.total_time_cost.excl_vat).toBe('0.02');
    expect(rated.total_parking_cost.excl_vat).toBe('0.01');
    expect(rated.total_cost).toEqual({ excl_vat: '0.28', incl_vat: '0.28' });
  });
});

describe('power and current restrictions', () => {
  // 0.50 per kWh from 20 kW on, else 0.30.
  const fast = tariff([
    { price_components: [{ type: 'ENERGY', price: 0.5, step_size: 1 }], restrictions: { min_power: 20 } },
    { price_components: [{ type: 'ENERGY', price: 0.3, step_size: 1 }] },
  ]);

  it('an interval without a measured power is matched with the power its energy implies', () => {
    // 22 kWh in 1 h: 22 kW >= 20 -> 22 x 0.50 = 11.00.
    expect(
      rate(
        fast,
        samples([
          [0, 0],
          [hour_ms, 22_000],
        ]),
      ).total_energy_cost.excl_vat,
    ).toBe('11.00');
    // 11 kWh in 1 h: 11 kW < 20 -> 11 x 0.30 = 3.30.
    expect(
      rate(
        fast,
        samples([
          [0, 0],
          [hour_ms, 11_000],
        ]),
      ).total_energy_cost.excl_vat,
    ).toBe('3.30');
    // 10 kWh in 30 min: 20 kW, min_power inclusive -> 10 x 0.50 = 5.00.
    expect(
      rate(
        fast,
        samples([
          [0, 0],
          [hour_ms / 2, 10_000],
        ]),
      ).total_energy_cost.excl_vat,
    ).toBe('5.00');
  });

  it('a measured power wins over the implied one, per interval', () => {
    // First interval 11 kWh in 1 h, no power yet: 11 kW -> 3.30. The second sample reports 50 kW,
    // which holds for the second interval (5 kWh in 1 h would imply 5 kW) -> 5 x 0.50 = 2.50.
    const rated = rate(
      fast,
      samples([
        [0, 0],
        [hour_ms, 11_000, { power_w: 50_000 }],
        [2 * hour_ms, 16_000],
      ]),
    );
    expect(rated.total_energy_cost.excl_vat).toBe('5.80');
  });

  it('current is the sum over phases, and no current is implied without a measurement', () => {
    // min_current 32 A: three phases at 16 A are 48 A (the caller passes the sum) -> 0.50 x 10 = 5.00.
    const by_current = tariff([
      { price_components: [{ type: 'ENERGY', price: 0.5, step_size: 1 }], restrictions: { min_current: 32 } },
      { price_components: [{ type: 'ENERGY', price: 0.3, step_size: 1 }] },
    ]);
    const three_phase = samples([
      [0, 0, { current_a: 48 }],
      [hour_ms, 10_000],
    ]);
    expect(rate(by_current, three_phase).total_energy_cost.excl_vat).toBe('5.00');
    // Without a current the restriction does not match: 10 x 0.30 = 3.00.
    expect(
      rate(
        by_current,
        samples([
          [0, 0],
          [hour_ms, 10_000],
        ]),
      ).total_energy_cost.excl_vat,
    ).toBe('3.00');
  });
});

describe('step_size 0', () => {
  it('is accepted and bills the volume as measured', () => {
    // 90 min 20 s = 5420 s x 2.00 / 3600 = 3.0111.. -> 3.01 (a 60 s step would bill 91 min: 3.03).
    const t = tariff([{ price_components: [{ type: 'TIME', price: 2, step_size: 0 }] }]);
    const rated = rate(
      t,
      samples([
        [0, 0],
        [5_420_000, 11_000],
      ]),
    );
    expect(rated.total_time_cost.excl_vat).toBe('3.01');
    expect(rated.lines[0]).toMatchObject({ volume: '5420', billed_volume: '5420', step_size: 0 });
    // ENERGY with step 0: 1.2345 kWh x 0.25 = 0.308625 -> 0.31.
    const e = tariff([{ price_components: [{ type: 'ENERGY', price: 0.25, step_size: 0 }] }]);
    expect(
      rate(
        e,
        samples([
          [0, 0],
          [hour_ms, 1234.5],
        ]),
      ).total_energy_cost.excl_vat,
    ).toBe('0.31');
  });
});
