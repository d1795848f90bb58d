import { describe, expect, it } from 'vitest';
import {
  date_time_ms,
  normalise_tariff,
  TariffValidationError,
  tariff_in_force,
  validate_tariff,
} from './tariff.js';

const cpo = { country_code: 'NL', party_id: 'EVR' };

const tariff_221 = {
  country_code: 'DE',
  party_id: 'ALL',
  id: '12',
  currency: 'EUR',
  elements: [{ price_components: [{ type: 'TIME', price: 2.0, vat: 10, step_size: 300 }] }],
  last_updated: '2015-06-29T20:39:09Z',
};

/** OCPI 2.1.1 mod_tariffs 3.1, "Simple Tariff example with alternative multi language text". */
const tariff_211 = {
  id: '12',
  currency: 'EUR',
  tariff_alt_text: [
    { language: 'en', text: '2 euro p/hour' },
    { language: 'nl', text: '2 euro p/uur' },
  ],
  elements: [{ price_components: [{ type: 'TIME', price: 2.0, step_size: 300 }] }],
  energy_mix: {
    is_green_energy: false,
    energy_sources: [{ source: 'GENERAL_GREEN', percentage: 35.9 }],
    environ_impact: [{ source: 'CARBON_DIOXIDE', amount: 372 }],
  },
  last_updated: '2015-06-29T20:39:09Z',
};

function field_of(f: () => unknown): string {
  try {
    f();
  } catch (error) {
    expect(error).toBeInstanceOf(TariffValidationError);
    return (error as TariffValidationError).field;
  }
  throw new Error('expected a TariffValidationError');
}

describe('normalise_tariff', () => {
  it('fills an OCPI 2.1.1 tariff with the CPO party and renames EnvironmentalImpact.source', () => {
    const input = structuredClone(tariff_211);
    const tariff = normalise_tariff(input, cpo);
    expect(tariff.country_code).toBe('NL');
    expect(tariff.party_id).toBe('EVR');
    expect(tariff.type).toBeUndefined();
    expect(tariff.energy_mix).toEqual({
      is_green_energy: false,
      energy_sources: [{ source: 'GENERAL_GREEN', percentage: 35.9 }],
      environ_impact: [{ category: 'CARBON_DIOXIDE', amount: 372 }],
    });
    // The input is not changed.
    expect(input).toEqual(tariff_211);
  });

  it('keeps an OCPI 2.2.1 tariff as it is, with its own party', () => {
    expect(normalise_tariff(tariff_221, cpo)).toEqual(tariff_221);
  });

  it('takes one DisplayText for a list of one', () => {
    const tariff = normalise_tariff(
      { ...tariff_211, tariff_alt_text: { language: 'en', text: '2 euro' } },
      cpo,
    );
    expect(tariff.tariff_alt_text).toEqual([{ language: 'en', text: '2 euro' }]);
  });

  it('refuses what it cannot normalise, naming the field', () => {
    const { country_code: _, ...party_only } = tariff_221;
    expect(field_of(() => normalise_tariff(party_only, cpo))).toBe('country_code');
    const { party_id: __, ...country_only } = tariff_221;
    expect(field_of(() => normalise_tariff(country_only, cpo))).toBe('party_id');
    expect(field_of(() => normalise_tariff({ ...tariff_211, tariff_alt_text: 'two euro' }, cpo))).toBe(
      'tariff_alt_text',
    );
    expect(
      field_of(() =>
        normalise_tariff({ ...tariff_211, tariff_alt_text: [{ language: 'english', text: 'x' }] }, cpo),
      ),
    ).toBe('tariff_alt_text[0].language');
    expect(field_of(() => normalise_tariff({ ...tariff_211, energy_mix: { energy_sources: [] } }, cpo))).toBe(
      'energy_mix.is_green_energy',
    );
    expect(
      field_of(() =>
        normalise_tariff(
          {
            ...tariff_211,
            energy_mix: { is_green_energy: true, environ_impact: [{ source: 'SMOG', amount: 1 }] },
          },
          cpo,
        ),
      ),
    ).toBe('energy_mix.environ_impact[0].category');
    expect(field_of(() => normalise_tariff({ ...tariff_211, type: 'CHEAP' }, cpo))).toBe('type');
    const { last_updated: ___, ...undated } = tariff_211;
    expect(field_of(() => normalise_tariff(undated, cpo))).toBe('last_updated');
    expect(field_of(() => normalise_tariff([], cpo))).toBe('(body)');
  });
});

describe('validate_tariff', () => {
  it('accepts step_size 0 and refuses a negative one', () => {
    const zero = {
      ...tariff_221,
      elements: [{ price_components: [{ type: 'ENERGY', price: 0.25, step_size: 0 }] }],
    };
    expect(validate_tariff(zero).elements[0]!.price_components[0]!.step_size).toBe(0);
    const negative = {
      ...tariff_221,
      elements: [{ price_components: [{ type: 'ENERGY', price: 0.25, step_size: -1 }] }],
    };
    expect(field_of(() => validate_tariff(negative))).toBe('elements[0].price_components[0].step_size');
  });

  it('checks start_date_time and end_date_time: RFC 3339, a real day, end after start', () => {
    const dated = {
      ...tariff_221,
      start_date_time: '2019-01-01T00:00:00Z',
      end_date_time: '2019-06-30T23:59:59Z',
    };
    expect(validate_tariff(dated).end_date_time).toBe('2019-06-30T23:59:59Z');
    expect(field_of(() => validate_tariff({ ...dated, end_date_time: '2019-02-30T00:00:00Z' }))).toBe(
      'end_date_time',
    );
    expect(field_of(() => validate_tariff({ ...dated, start_date_time: '2019-01-01 00:00' }))).toBe(
      'start_date_time',
    );
    expect(field_of(() => validate_tariff({ ...dated, end_date_time: '2019-01-01T00:00:00Z' }))).toBe(
      'end_date_time',
    );
    // 01:00 at +02:00 is 23:00Z the day before: before the start although its text sorts after it.
    expect(field_of(() => validate_tariff({ ...dated, end_date_time: '2019-01-01T01:00:00+02:00' }))).toBe(
      'end_date_time',
    );
  });
});

describe('tariff_in_force', () => {
  it('holds from start_date_time (inclusive) until end_date_time (exclusive)', () => {
    // mod_tariffs example 6 ends on 30 June 2019 (end_date_time 2019-06-30T23:59:59Z).
    const t = validate_tariff({
      ...tariff_221,
      start_date_time: '2019-01-01T00:00:00+01:00',
      end_date_time: '2019-06-30T23:59:59Z',
    });
    expect(tariff_in_force(t, Date.UTC(2018, 11, 31, 22, 59, 59, 999))).toBe(false);
    expect(tariff_in_force(t, Date.UTC(2018, 11, 31, 23))).toBe(true); // 00:00 at +01:00
    expect(tariff_in_force(t, Date.UTC(2019, 5, 30, 23, 59, 58, 999))).toBe(true);
    expect(tariff_in_force(t, Date.UTC(2019, 5, 30, 23, 59, 59))).toBe(false);
    // Without dates a tariff is always in force.
    expect(tariff_in_force(validate_tariff(tariff_221), 0)).toBe(true);
  });

  it('reads a DateTime without a zone designator as UTC (OCPI types DateTime)', () => {
    expect(date_time_ms('2019-06-30T23:59:59')).toBe(Date.UTC(2019, 5, 30, 23, 59, 59));
    expect(date_time_ms('2020-02-29T12:00:00.5Z')).toBe(Date.UTC(2020, 1, 29, 12, 0, 0, 500));
    expect(date_time_ms('2019-02-29T12:00:00Z')).toBeUndefined();
    expect(date_time_ms('2019-06-30T24:00:00Z')).toBeUndefined();
  });
});
