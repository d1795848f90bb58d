import { describe, expect, it } from 'vitest';
import { type MeterSample, RatingInputError, rate_session } from './engine.js';
import type { Tariff, TariffElement } from './tariff.js';

const minute_ms = 60_000;

function tariff(elements: TariffElement[], extra: Partial<Tariff> = {}): Tariff {
  return {
    country_code: 'DE',
    party_id: 'ALL',
    id: 'T',
    currency: 'EUR',
    elements,
    last_updated: '2015-06-29T20:39:09Z',
    ...extra,
  };
}

/** Samples from (minute offset, cumulative Wh, charging, current A) rows starting at a UTC instant. */
function samples(start_utc: string, rows: [number, number, boolean, number?][]): MeterSample[] {
  const start_ms = Date.parse(start_utc);
  return rows.map(([minute, energy_wh, charging, current_a]) => ({
    at_ms: start_ms + minute * minute_ms,
    energy_wh,
    charging,
    ...(current_a === undefined ? {} : { current_a }),
  }));
}

// OCPI 2.2.1 mod_tariffs 11.4.1 example tariff 4 ("complex"), written out here.
const tariff_4 = tariff([
  { price_components: [{ type: 'FLAT', price: 2.5, vat: 15, step_size: 1 }] },
  {
    price_components: [{ type: 'TIME', price: 1.0, vat: 20, step_size: 900 }],
    restrictions: { max_current: 32 },
  },
  {
    price_components: [{ type: 'TIME', price: 2.0, vat: 20, step_size: 600 }],
    restrictions: { min_current: 32, day_of_week: ['MONDAY', 'TUESDAY', 'WEDNESDAY', 'THURSDAY', 'FRIDAY'] },
  },
  {
    price_components: [{ type: 'TIME', price: 1.25, vat: 20, step_size: 600 }],
    restrictions: { min_current: 32, day_of_week: ['SATURDAY', 'SUNDAY'] },
  },
  {
    price_components: [{ type: 'PARKING_TIME', price: 5.0, vat: 10, step_size: 300 }],
    restrictions: {
      start_time: '09:00',
      end_time: '18:00',
      day_of_week: ['MONDAY', 'TUESDAY', 'WEDNESDAY', 'THURSDAY', 'FRIDAY'],
    },
  },
  {
    price_components: [{ type: 'PARKING_TIME', price: 6.0, vat: 10, step_size: 300 }],
    restrictions: { start_time: '10:00', end_time: '17:00', day_of_week: ['SATURDAY'] },
  },
]);

// OCPI 2.2.1 mod_tariffs 11.4.6 step_size example tariff (switching between elements at 17:00 and 20:00).
const tariff_step = tariff([
  {
    price_components: [
      { type: 'TIME', price: 1.2, step_size: 1800 },
      { type: 'PARKING_TIME', price: 1.0, step_size: 900 },
    ],
    restrictions: { start_time: '00:00', end_time: '17:00' },
  },
  {
    price_components: [
      { type: 'TIME', price: 2.4, step_size: 900 },
      { type: 'PARKING_TIME', price: 1.0, step_size: 900 },
    ],
    restrictions: { start_time: '17:00', end_time: '20:00' },
  },
  {
    price_components: [{ type: 'TIME', price: 2.4, step_size: 900 }],
    restrictions: { start_time: '20:00', end_time: '00:00' },
  },
]);

const berlin = 'Europe/Berlin';

describe('rate_session: OCPI 2.2.1 mod_tariffs worked examples', () => {
  it('prices tariff 4 on a Monday morning: 165 min at 16 A, then 42 min parking billed as 45', () => {
    // 2015-06-29 is a Monday; 09:30 in Berlin (CEST) is 07:30Z.
    const rated = rate_session({
      tariff: tariff_4,
      time_zone: berlin,
      samples: samples('2015-06-29T07:30:00Z', [
        [0, 0, true, 16],
        [165, 20_000, false, 0],
        [207, 20_000, false, 0],
      ]),
    });
    // Flat 2.50 (2.875 incl.), charging 2.75 h x 1.00 = 2.75 (3.30), parking 0.75 h x 5.00 = 3.75 (4.125).
    expect(rated.total_fixed_cost).toEqual({ excl_vat: '2.50', incl_vat: '2.88' });
    expect(rated.total_time_cost).toEqual({ excl_vat: '2.75', incl_vat: '3.30' });
    expect(rated.total_parking_cost).toEqual({ excl_vat: '3.75', incl_vat: '4.13' });
    // VAT per rate on the rounded nets: 15% of 2.50 = 0.375 -> 0.38, 20% of 2.75 = 0.55, 10% of 3.75
    // = 0.375 -> 0.38; 9.00 + 1.31 = 10.31. The spec's 10.30 adds the unrounded 2.875 + 3.30 + 4.125,
    // a figure no invoice line shows.
    expect(rated.total_cost).toEqual({ excl_vat: '9.00', incl_vat: '10.31' });
    expect(rated.lines.find((l) => l.dimension === 'PARKING_TIME')?.billed_volume).toBe('2700');
    expect(rated.lines.find((l) => l.dimension === 'TIME')?.element_index).toBe(1);
    expect(rated.total_parking_time).toBe('0.7');
    expect(rated.total_energy).toBe('20');
  });

  it('prices tariff 4 on a Saturday afternoon at 43 A with 71 min parking billed as 75', () => {
    // 2015-07-04 is a Saturday; 13:30 CEST is 11:30Z. The spec's table prices 114 min at 1.20 (2.28)
    // although the element says 1.25; by the element: 1.9 h x 1.25 = 2.375 (2.85 incl. 20%).
    // Parking 15:24-16:35 falls in Saturday 10:00-17:00: 75 min x 6.00/h = 7.50 (8.25 incl. 10%).
    const rated = rate_session({
      tariff: tariff_4,
      time_zone: berlin,
      samples: samples('2015-07-04T11:30:00Z', [
        [0, 0, true, 43],
        [114, 30_000, false, 0],
        [185, 30_000, false, 0],
      ]),
    });
    // TIME is not rounded to its 600 s step: it is followed by parking (mod_cdrs step_size).
    expect(rated.lines.find((l) => l.dimension === 'TIME')).toMatchObject({
      element_index: 3,
      billed_volume: '6840',
    });
    expect(rated.lines.find((l) => l.dimension === 'PARKING_TIME')).toMatchObject({
      element_index: 5,
      billed_volume: '4500',
    });
    // Nets rounded per dimension: 2.50, 2.375 -> 2.38, 7.50; 12.38. VAT per rate on those nets:
    // 15% x 2.50 = 0.375 -> 0.38, 20% x 2.38 = 0.476 -> 0.48, 10% x 7.50 = 0.75; 12.38 + 1.61 = 13.99.
    expect(rated.total_time_cost).toEqual({ excl_vat: '2.38', incl_vat: '2.86' });
    expect(rated.total_cost).toEqual({ excl_vat: '12.38', incl_vat: '13.99' });
  });

  it('switching element #1: 10 min charging across 17:00, then 2 min parking billed as 15', () => {
    // 2026-03-02 16:55 CET is 15:55Z.
    const rated = rate_session({
      tariff: tariff_step,
      time_zone: berlin,
      samples: samples('2026-03-02T15:55:00Z', [
        [0, 0, true],
        [10, 2000, false],
        [12, 2000, false],
      ]),
    });
    // 5 min x 1.20 = 0.10, 5 min x 2.40 = 0.20, 15 min x 1.00 = 0.25
    expect(rated.lines.map((l) => [l.dimension, l.billed_volume, l.cost_excl_vat])).toEqual([
      ['TIME', '300', '0.1'],
      ['TIME', '300', '0.2'],
      ['PARKING_TIME', '900', '0.25'],
    ]);
    expect(rated.total_cost.excl_vat).toBe('0.55');
    expect(rated.charging_periods.map((p) => p.start_date_time)).toEqual([
      '2026-03-02T15:55:00Z',
      '2026-03-02T16:00:00Z',
      '2026-03-02T16:05:00Z',
    ]);
  });

  it('switching element #2: 35 min charging from 16:35 is rounded to 45 with the last step size', () => {
    const rated = rate_session({
      tariff: tariff_step,
      time_zone: berlin,
      samples: samples('2026-03-02T15:35:00Z', [
        [0, 0, true],
        [35, 5000, true],
      ]),
    });
    // 25 min x 1.20 = 0.50; 10 min rounded to 20 (total 35 -> 45 by 900 s) x 2.40 = 0.80
    expect(rated.lines.map((l) => l.billed_volume)).toEqual(['1500', '1200']);
    expect(rated.total_cost.excl_vat).toBe('1.30');
  });

  it('switching to a free element: parking after 20:00 is free, the 8 paid minutes are billed as 15', () => {
    const rated = rate_session({
      tariff: tariff_step,
      time_zone: berlin,
      samples: samples('2026-03-02T18:40:00Z', [
        [0, 0, true],
        [12, 3000, false],
        [32, 3000, false],
      ]),
    });
    // 12 min x 2.40 = 0.48; parking 19:52-20:00 billed 15 min x 1.00 = 0.25
    expect(rated.total_time_cost.excl_vat).toBe('0.48');
    expect(rated.total_parking_cost.excl_vat).toBe('0.25');
    expect(rated.total_cost.excl_vat).toBe('0.73');
    expect(rated.total_parking_time).toBe('0.333333');
  });

  it('simple 2 euro per hour tariff, billed per minute', () => {
    const rated = rate_session({
      tariff: tariff([{ price_components: [{ type: 'TIME', price: 2.0, vat: 10, step_size: 60 }] }]),
      time_zone: 'Europe/Amsterdam',
      samples: [
        { at_ms: 0, energy_wh: 0, charging: true },
        { at_ms: (90 * 60 + 20) * 1000, energy_wh: 11_000, charging: true },
      ],
    });
    // 90 min 20 s billed as 91 min: 91/60 x 2.00 = 3.0333.. -> net 3.03; VAT on the rounded net
    // (README "Rating", totals): 10% of 3.03 = 0.303 -> 0.30; 3.03 + 0.30 = 3.33.
    expect(rated.total_cost).toEqual({ excl_vat: '3.03', incl_vat: '3.33' });
  });

  it('0.25 per kWh with a start fee and parking billed per 15 minutes', () => {
    const rated = rate_session({
      tariff: tariff([
        {
          price_components: [
            { type: 'FLAT', price: 0.5, vat: 20, step_size: 1 },
            { type: 'ENERGY', price: 0.25, vat: 10, step_size: 1 },
            { type: 'PARKING_TIME', price: 2.0, vat: 20, step_size: 900 },
          ],
        },
      ]),
      time_zone: berlin,
      samples: samples('2026-03-02T10:00:00Z', [
        [0, 0, true],
        [60, 10_000, false],
        [80, 10_000, false],
      ]),
    });
    // 0.50 + 10 x 0.25 + 0.5 h x 2.00 = 4.00; 0.60 + 2.75 + 1.20 = 4.55
    expect(rated.total_cost).toEqual({ excl_vat: '4.00', incl_vat: '4.55' });
    expect(rated.total_energy_cost).toEqual({ excl_vat: '2.50', incl_vat: '2.75' });
  });

  it('caps at max_price excl. and incl. VAT, and lifts to min_price', () => {
    const energy = (extra: Partial<Tariff>) =>
      tariff(
        [
          {
            price_components: [
              { type: 'FLAT', price: 0.5, vat: 20, step_size: 1 },
              { type: 'ENERGY', price: 0.25, vat: 10, step_size: 1 },
            ],
          },
        ],
        extra,
      );
    const session = (wh: number) =>
      samples('2026-03-02T10:00:00Z', [
        [0, 0, true],
        [60, wh, true],
      ]);
    const capped = rate_session({
      tariff: energy({ max_price: { excl_vat: 10, incl_vat: 11 } }),
      time_zone: berlin,
      samples: session(50_000),
    });
    expect(capped.total_cost).toEqual({ excl_vat: '10.00', incl_vat: '11.00' });
    expect(capped.price_limit_applied).toBe('max_price');
    const lifted = rate_session({
      tariff: tariff([{ price_components: [{ type: 'ENERGY', price: 0.25, vat: 10, step_size: 1 }] }], {
        min_price: { excl_vat: 0.5, incl_vat: 0.55 },
      }),
      time_zone: berlin,
      samples: session(1000),
    });
    expect(lifted.total_cost).toEqual({ excl_vat: '0.50', incl_vat: '0.55' });
    expect(lifted.price_limit_applied).toBe('min_price');
  });
});

describe('rate_session: restrictions in local time', () => {
  const off_peak = tariff([
    {
      price_components: [{ type: 'TIME', price: 1, step_size: 1 }],
      restrictions: { start_time: '00:00', end_time: '07:00' },
    },
    { price_components: [{ type: 'TIME', price: 2, step_size: 1 }] },
  ]);

  it('counts the real hours of the night DST starts (Amsterdam, 2026-03-29, 23 h day)', () => {
    // 00:00 CET = 23:00Z; 08:00 CEST = 06:00Z: 7 real hours, 6 of them before 07:00 local.
    const rated = rate_session({
      tariff: off_peak,
      time_zone: 'Europe/Amsterdam',
      samples: samples('2026-03-28T23:00:00Z', [
        [0, 0, true],
        [420, 7000, true],
      ]),
    });
    expect(rated.lines.map((l) => [l.element_index, l.volume])).toEqual([
      [0, '21600'],
      [1, '3600'],
    ]);
    expect(rated.total_cost.excl_vat).toBe('8.00');
  });

  it('counts the real hours of the night DST ends (Amsterdam, 2026-10-25, 25 h day)', () => {
    // 00:00 CEST = 22:00Z on the 24th; 08:00 CET = 07:00Z: 9 real hours, 8 before 07:00 local.
    const rated = rate_session({
      tariff: off_peak,
      time_zone: 'Europe/Amsterdam',
      samples: samples('2026-10-24T22:00:00Z', [
        [0, 0, true],
        [540, 9000, true],
      ]),
    });
    expect(rated.total_cost.excl_vat).toBe('10.00');
    expect(rated.charging_periods[1]?.start_date_time).toBe('2026-10-25T06:00:00Z');
  });

  it('applies a night element that wraps across midnight (22:00-06:00), splitting energy linearly', () => {
    const night = tariff([
      {
        price_components: [{ type: 'ENERGY', price: 0.2, step_size: 1 }],
        restrictions: { start_time: '22:00', end_time: '06:00' },
      },
      { price_components: [{ type: 'ENERGY', price: 0.3, step_size: 1 }] },
    ]);
    // 21:00-23:00 local (CET, 20:00Z-22:00Z) and 05:00-07:00 local the next morning, 10 kWh each.
    const evening = rate_session({
      tariff: night,
      time_zone: berlin,
      samples: samples('2026-03-02T20:00:00Z', [
        [0, 0, true],
        [120, 10_000, true],
      ]),
    });
    // 5 kWh x 0.30 + 5 kWh x 0.20 = 2.50
    expect(evening.total_energy_cost.excl_vat).toBe('2.50');
    const morning = rate_session({
      tariff: night,
      time_zone: berlin,
      samples: samples('2026-03-03T04:00:00Z', [
        [0, 0, true],
        [120, 10_000, true],
      ]),
    });
    // 5 kWh x 0.20 + 5 kWh x 0.30 = 2.50, night element first this time
    expect(morning.lines.map((l) => l.element_index)).toEqual([0, 1]);
    expect(morning.total_energy_cost.excl_vat).toBe('2.50');
  });

  it('evaluates day_of_week and dates in the local zone, not in UTC', () => {
    // 2026-03-01T23:30Z is Monday 00:30 in Berlin but still Sunday in UTC.
    const weekday = tariff([
      {
        price_components: [{ type: 'FLAT', price: 1, step_size: 1 }],
        restrictions: { day_of_week: ['MONDAY'], start_date: '2026-03-02', end_date: '2026-03-03' },
      },
      { price_components: [{ type: 'FLAT', price: 9, step_size: 1 }] },
    ]);
    const rated = rate_session({
      tariff: weekday,
      time_zone: berlin,
      samples: samples('2026-03-01T23:30:00Z', [
        [0, 0, true],
        [10, 100, true],
      ]),
    });
    expect(rated.total_fixed_cost.excl_vat).toBe('1.00');
  });

  it('switches at max_kwh (exclusive) and at max_duration (exclusive)', () => {
    const tiers = tariff([
      {
        price_components: [
          { type: 'ENERGY', price: 0.2, step_size: 1 },
          { type: 'TIME', price: 0, step_size: 1 },
        ],
        restrictions: { max_kwh: 10 },
      },
      {
        price_components: [{ type: 'TIME', price: 0, step_size: 1 }],
        restrictions: { max_duration: 1800 },
      },
      {
        price_components: [
          { type: 'ENERGY', price: 0.3, step_size: 1 },
          { type: 'TIME', price: 3, step_size: 1 },
        ],
      },
    ]);
    // 15 kWh over 60 min, linear: 10 kWh reached at 40 min. ENERGY: 10 x 0.20 + 5 x 0.30 = 3.50.
    // TIME: element 0 until 40 min (free), then element 2 for 20 min: 1/3 h x 3.00 = 1.00.
    // (element 1 no longer applies from 30 min; it would be free until then but element 0 comes first.)
    const rated = rate_session({
      tariff: tiers,
      time_zone: berlin,
      samples: samples('2026-03-02T10:00:00Z', [
        [0, 0, true],
        [60, 15_000, true],
      ]),
    });
    expect(rated.total_energy_cost.excl_vat).toBe('3.50');
    expect(rated.total_time_cost.excl_vat).toBe('1.00');
    expect(rated.charging_periods.map((p) => p.start_date_time)).toEqual([
      '2026-03-02T10:00:00Z',
      '2026-03-02T10:40:00Z',
    ]);
  });

  it('selects by power (kW) per sample interval', () => {
    const by_power = tariff([
      {
        price_components: [{ type: 'ENERGY', price: 0.25, step_size: 1 }],
        restrictions: { max_power: 11 },
      },
      { price_components: [{ type: 'ENERGY', price: 0.4, step_size: 1 }] },
    ]);
    const start_ms = Date.parse('2026-03-02T10:00:00Z');
    const rated = rate_session({
      tariff: by_power,
      time_zone: berlin,
      samples: [
        { at_ms: start_ms, energy_wh: 0, power_w: 7000, charging: true },
        { at_ms: start_ms + 3_600_000, energy_wh: 7000, power_w: 22_000, charging: true },
        { at_ms: start_ms + 5_400_000, energy_wh: 18_000, charging: true },
      ],
    });
    // 7 kWh x 0.25 + 11 kWh x 0.40 = 1.75 + 4.40 = 6.15
    expect(rated.total_cost.excl_vat).toBe('6.15');
  });
});

describe('rate_session: input errors', () => {
  const simple = tariff([{ price_components: [{ type: 'ENERGY', price: 0.3, step_size: 1 }] }]);
  it('keeps energy registered without time passing, and the start fee of an empty session', () => {
    const with_flat = tariff([
      {
        price_components: [
          { type: 'FLAT', price: 1, step_size: 1 },
          { type: 'ENERGY', price: 0.3, step_size: 1 },
        ],
      },
    ]);
    const instant = rate_session({
      tariff: with_flat,
      time_zone: berlin,
      samples: [
        { at_ms: 0, energy_wh: 0, charging: true },
        { at_ms: 0, energy_wh: 1000, charging: true },
      ],
    });
    expect(instant.total_cost.excl_vat).toBe('1.30');
    const empty = rate_session({
      tariff: with_flat,
      time_zone: berlin,
      samples: [
        { at_ms: 0, energy_wh: 0, charging: true },
        { at_ms: 0, energy_wh: 0, charging: true },
      ],
    });
    expect(empty.total_cost.excl_vat).toBe('1.00');
  });
  it('names the sample whose energy decreases', () => {
    try {
      rate_session({
        tariff: simple,
        time_zone: berlin,
        samples: [
          { at_ms: 0, energy_wh: 10, charging: true },
          { at_ms: 1000, energy_wh: 5, charging: true },
        ],
      });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(RatingInputError);
      expect((error as RatingInputError).field).toBe('samples[1].energy_wh');
    }
  });
  it('refuses an unknown time zone', () => {
    expect(() =>
      rate_session({
        tariff: simple,
        time_zone: 'Mars/Olympus',
        samples: [
          { at_ms: 0, energy_wh: 0, charging: true },
          { at_ms: 1000, energy_wh: 5, charging: true },
        ],
      }),
    ).toThrow(RangeError);
  });
});
