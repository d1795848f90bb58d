import { describe, expect, it } from 'vitest';
import { RateCdrError, rate_cdr, zone_of_country } from './cli-rate.js';
import { local_time } from './local-time.js';

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
    // No --time-zone, no time_zone and no country in the location: the country is what is missing.
    expect(error_of(() => rate_cdr(tariff, cdr)).field).toBe('cdr_location.country');
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

  it('takes the zone from the location country when it has one zone, and asks for it otherwise', () => {
    // BEL is Europe/Brussels: the 2.2.1 example prices as with --time-zone (2 h x 2.00 = 4.00).
    const belgian = { ...cdr, cdr_location: { ...cdr.cdr_location, country: 'BEL' } };
    expect(rate_cdr(tariff, belgian).total_cost).toEqual({ excl_vat: '4.00', incl_vat: '4.40' });
    // USA has many zones: refused, naming the field and the way out.
    const american = { ...cdr, cdr_location: { ...cdr.cdr_location, country: 'USA' } };
    const error = error_of(() => rate_cdr(tariff, american));
    expect([error.file, error.field]).toEqual(['cdr', 'cdr_location.country']);
    expect(error.rule).toContain('--time-zone');
    for (const country of ['CAN', 'AUS', 'RUS', 'BRA', 'MEX', 'ESP', 'PRT'])
      expect(zone_of_country[country], country).toBeUndefined();
    // An explicit zone wins over the country.
    expect(rate_cdr(tariff, american, { time_zone: 'America/New_York' }).total_cost.excl_vat).toBe('4.00');
  });

  it('knows every zone of its country table', () => {
    expect(zone_of_country.DEU).toBe('Europe/Berlin');
    expect(zone_of_country.NLD).toBe('Europe/Amsterdam');
    expect(zone_of_country.GBR).toBe('Europe/London');
    for (const [country, zone] of Object.entries(zone_of_country)) {
      expect(country, zone).toMatch(/^[A-Z]{3}$/);
      expect(() => local_time(0, zone), zone).not.toThrow();
    }
  });

  it('reads an OCPI 2.1.1 CDR (location, stop_date_time) with an OCPI 2.1.1 tariff', () => {
    // 2.1.1: no country_code/party_id on the tariff, no vat on its components; the CDR names its
    // Location (with country DEU, so Europe/Berlin) and ends at stop_date_time.
    const tariff_211 = {
      id: '12',
      currency: 'EUR',
      tariff_alt_text: [{ language: 'en', text: '2 euro p/hour' }],
      elements: [{ price_components: [{ type: 'TIME', price: 2.0, step_size: 300 }] }],
      last_updated: '2015-06-29T20:39:09Z',
    };
    const cdr_211 = {
      id: '12345',
      start_date_time: '2015-06-29T21:39:09Z',
      stop_date_time: '2015-06-29T23:37:32Z',
      location: { id: 'LOC1', country: 'DEU', city: 'Berlin' },
      currency: 'EUR',
      charging_periods: [
        { start_date_time: '2015-06-29T21:39:09Z', dimensions: [{ type: 'TIME', volume: 1.973 }] },
      ],
      total_energy: 15.342,
    };
    const priced = rate_cdr(tariff_211, cdr_211, { cpo: { country_code: 'DE', party_id: 'EVR' } });
    // 1:58:23 billed in 300 s steps: 7103 s -> 7200 s = 2 h x 2.00 = 4.00, no VAT.
    expect(priced.total_cost).toEqual({ excl_vat: '4.00', incl_vat: '4.00' });
    expect((priced.tariffs as { country_code: string; party_id: string }[])[0]).toMatchObject({
      country_code: 'DE',
      party_id: 'EVR',
    });
    // Without a CPO party given or in the CDR, a 2.1.1 tariff is refused naming the field.
    const error = error_of(() => rate_cdr(tariff_211, cdr_211));
    expect([error.file, error.field]).toEqual(['tariff', 'country_code']);
  });
});
