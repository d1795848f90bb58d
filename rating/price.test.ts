import { describe, expect, it } from 'vitest';
import { price_session } from './price.js';
import { type Tariff, TariffValidationError, validate_tariff } from './tariff.js';

const base: Tariff = {
  country_code: 'NL',
  party_id: 'EVR',
  id: 't1',
  currency: 'EUR',
  elements: [{ price_components: [{ type: 'ENERGY', price: 0.3, vat: 21, step_size: 1 }] }],
  last_updated: '2026-01-01T00:00:00Z',
};
const hour = 3600 * 1000;

describe('price_session', () => {
  it('prices energy per kWh with VAT, rounding the total once, half up', () => {
    // 7.777 kWh x 0.30 = 2.3331 -> 2.33; x 1.21 = 2.823051 -> 2.82
    const priced = price_session(base, { energy_wh: 7777, started_at_ms: 0, stopped_at_ms: hour });
    expect(priced.total_excl_vat).toBe('2.33');
    expect(priced.total_incl_vat).toBe('2.82');
    expect(priced.breakdown).toEqual([
      expect.objectContaining({
        dimension: 'ENERGY',
        volume: '7777',
        billed_volume: '7777',
        cost_excl_vat: '2.3331',
      }),
    ]);
  });

  it('rounds energy up to the step size before pricing (OCPI step_size in Wh)', () => {
    const tariff = structuredClone(base);
    tariff.elements[0]!.price_components[0]!.step_size = 500;
    // 1001 Wh billed as 1500 Wh: 1.5 x 0.30 = 0.45
    const priced = price_session(tariff, { energy_wh: 1001, started_at_ms: 0, stopped_at_ms: hour });
    expect(priced.breakdown[0]?.billed_volume).toBe('1500');
    expect(priced.total_excl_vat).toBe('0.45');
  });

  it('adds FLAT and TIME dimensions, TIME per hour rounded up to its step in seconds', () => {
    const tariff = structuredClone(base);
    tariff.elements[0]!.price_components.push(
      { type: 'FLAT', price: 0.5, vat: 21, step_size: 1 },
      { type: 'TIME', price: 1.2, vat: 21, step_size: 900 },
    );
    // 10 kWh -> 3.00; flat 0.50; 61 minutes billed as 75 minutes: 1.25 h x 1.20 = 1.50; total 5.00
    const priced = price_session(tariff, {
      energy_wh: 10_000,
      started_at_ms: 0,
      stopped_at_ms: 61 * 60 * 1000,
    });
    expect(priced.total_excl_vat).toBe('5.00');
    expect(priced.total_incl_vat).toBe('6.05');
    expect(priced.breakdown.map((l) => l.dimension)).toEqual(['FLAT', 'ENERGY', 'TIME']);
  });

  it('applies min_price and max_price to the total excl. VAT', () => {
    const low = { ...base, min_price: { excl_vat: 1, incl_vat: 1.21 } };
    expect(price_session(low, { energy_wh: 100, started_at_ms: 0, stopped_at_ms: hour })).toMatchObject({
      total_excl_vat: '1.00',
      total_incl_vat: '1.21',
      price_limit_applied: 'min_price',
    });
    const high = { ...base, max_price: { excl_vat: 10 } };
    expect(price_session(high, { energy_wh: 100_000, started_at_ms: 0, stopped_at_ms: hour })).toMatchObject({
      total_excl_vat: '10.00',
      total_incl_vat: '12.10',
      price_limit_applied: 'max_price',
    });
  });

  it('uses currency minor units (JPY has none)', () => {
    const yen = {
      ...base,
      currency: 'JPY',
      elements: [{ price_components: [{ type: 'ENERGY' as const, price: 45.5, step_size: 1 }] }],
    };
    expect(
      price_session(yen, { energy_wh: 1010, started_at_ms: 0, stopped_at_ms: hour }).total_excl_vat,
    ).toBe('46');
  });

  it('is exact where binary floating point is not', () => {
    const tariff = structuredClone(base);
    tariff.elements[0]!.price_components = [{ type: 'ENERGY', price: 1, step_size: 1 }];
    // 1.005 kWh x 1.00 = 1.005 -> 1.01 half up; in binary floating point 1.005 is 1.00499999... -> 1.00
    const priced = price_session(tariff, { energy_wh: 1005, started_at_ms: 0, stopped_at_ms: 1000 });
    expect(priced.breakdown[0]?.cost_excl_vat).toBe('1.005');
    expect(priced.total_excl_vat).toBe('1.01');
  });

  it('refuses negative energy and a stop before the start', () => {
    expect(() => price_session(base, { energy_wh: -1, started_at_ms: 0, stopped_at_ms: 1 })).toThrow(
      RangeError,
    );
    expect(() => price_session(base, { energy_wh: 1, started_at_ms: 10, stopped_at_ms: 1 })).toThrow(
      RangeError,
    );
  });
});

describe('validate_tariff', () => {
  it('accepts the OCPI 2.2.1 example tariff shape', () => {
    expect(validate_tariff(structuredClone(base)).id).toBe('t1');
  });

  it.each([
    [{ ...base, currency: 'euro' }, 'currency'],
    [{ ...base, elements: [] }, 'elements'],
    [{ ...base, last_updated: 'yesterday' }, 'last_updated'],
    [
      { ...base, elements: [{ price_components: [{ type: 'POWER', price: 1, step_size: 1 }] }] },
      'elements[0].price_components[0].type',
    ],
    [
      { ...base, elements: [{ price_components: [{ type: 'ENERGY', price: 1, step_size: 0 }] }] },
      'elements[0].price_components[0].step_size',
    ],
    [
      {
        ...base,
        elements: [
          {
            price_components: [{ type: 'ENERGY', price: 1, step_size: 1 }],
            restrictions: { start_time: '25:00' },
          },
        ],
      },
      'elements[0].restrictions.start_time',
    ],
  ])('names the broken field %#', (tariff, field) => {
    try {
      validate_tariff(tariff);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(TariffValidationError);
      expect((error as TariffValidationError).field).toBe(field);
    }
  });
});
