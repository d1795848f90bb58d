import { describe, expect, it } from 'vitest';
import { RateCdrError, rate_cdr } from './cli-rate.js';

const tariff = {
  country_code: 'BE',
  party_id: 'BEC',
  id: '12',
  currency: 'EUR',
  elements: [{ price_components: [{ type: 'TIME', price: 2.0, vat: 10.0, step_size: 300 }] }],
  last_updated: '2015-02-02T14:15:01Z',
};

const cdr = {
  country_code: 'BE',
  party_id: 'BEC',
  id: '12345',
  start_date_time: '2015-06-29T21:39:09Z',
  end_date_time: '2015-06-29T23:37:32Z',
  currency: 'EUR',
  cdr_location: { id: 'LOC1', city: 'Gent' },
  charging_periods: [
    {
      start_date_time: '2015-06-29T21:39:09Z',
      dimensions: [{ type: 'TIME', volume: 1.973 }],
      tariff_id: '12',
    },
  ],
  total_energy: 15.342,
  last_updated: '2015-06-29T22:01:13Z',
};

function error_of(f: () => unknown): RateCdrError {
  try {
    f();
  } catch (error) {
    expect(error).toBeInstanceOf(RateCdrError);
    return error as RateCdrError;
  }
  throw new Error('expected a RateCdrError');
}

describe('rate_cdr', () => {
  it('prices the OCPI 2.2.1 CDR example: 1:58:23 of TIME billed in 5 min steps as 2 h x 2.00', () => {
    const priced = rate_cdr(JSON.stringify(tariff), JSON.stringify(cdr), { time_zone: 'Europe/Brussels' });
    expect(priced.total_cost).toEqual({ excl_vat: '4.00', incl_vat: '4.40' });
    expect(priced.total_time_cost).toEqual({ excl_vat: '4.00', incl_vat: '4.40' });
    expect(priced.total_energy).toBe('15.342');
    expect(priced.total_time).toBe('1.973056');
    expect(priced.id).toBe('12345');
  });

  it('names the tariff field that breaks a rule', () => {
    const error = error_of(() => rate_cdr({ ...tariff, currency: 'euro' }, cdr, { time_zone: 'UTC' }));
    expect([error.file, error.field]).toEqual(['tariff', 'currency']);
  });

  it('names the CDR field that breaks a rule', () => {
    expect(error_of(() => rate_cdr(tariff, cdr)).field).toBe('cdr_location.time_zone');
    const late = {
      ...cdr,
      charging_periods: [{ start_date_time: '2015-06-30T00:00:00Z', dimensions: [] }],
    };
    const error = error_of(() => rate_cdr(tariff, late, { time_zone: 'UTC' }));
    expect([error.file, error.field]).toEqual(['cdr', 'charging_periods[0].start_date_time']);
    expect(error_of(() => rate_cdr(tariff, '{', { time_zone: 'UTC' })).field).toBe('(file)');
  });

  it('splits energy by ENERGY dimensions and prices parking periods as PARKING_TIME', () => {
    const parking_tariff = {
      ...tariff,
      elements: [
        {
          price_components: [
            { type: 'ENERGY', price: 0.25, step_size: 1 },
            { type: 'PARKING_TIME', price: 2.0, step_size: 900 },
          ],
        },
      ],
    };
    const two = {
      ...cdr,
      start_date_time: '2026-03-02T10:00:00Z',
      end_date_time: '2026-03-02T11:20:00Z',
      charging_periods: [
        {
          start_date_time: '2026-03-02T10:00:00Z',
          dimensions: [
            { type: 'ENERGY', volume: 10 },
            { type: 'TIME', volume: 1 },
          ],
        },
        { start_date_time: '2026-03-02T11:00:00Z', dimensions: [{ type: 'PARKING_TIME', volume: 0.3333 }] },
      ],
    };
    const priced = rate_cdr(parking_tariff, two, { time_zone: 'Europe/Brussels' });
    // 10 kWh x 0.25 = 2.50; 20 min parking billed as 30 min x 2.00 = 1.00
    expect(priced.total_energy_cost.excl_vat).toBe('2.50');
    expect(priced.total_parking_cost.excl_vat).toBe('1.00');
    expect(priced.total_cost.excl_vat).toBe('3.50');
  });
});
