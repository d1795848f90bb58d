import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Money, round_money } from '../core/money.js';
import { type MeterSample, rate_session, SessionRater } from './engine.js';
import type { Tariff } from './tariff.js';

/** A time-of-use tariff: a peak energy price 17:00-21:00 on weekdays, a night rate, a base rate. */
const time_of_use: Tariff = {
  country_code: 'NL',
  party_id: 'EVR',
  id: 'tou',
  currency: 'EUR',
  elements: [
    {
      price_components: [{ type: 'ENERGY', price: 0.45, vat: 21, step_size: 1 }],
      restrictions: {
        start_time: '17:00',
        end_time: '21:00',
        day_of_week: ['MONDAY', 'TUESDAY', 'WEDNESDAY', 'THURSDAY', 'FRIDAY'],
      },
    },
    {
      price_components: [{ type: 'ENERGY', price: 0.21, vat: 21, step_size: 1 }],
      restrictions: { start_time: '23:00', end_time: '07:00' },
    },
    {
      price_components: [
        { type: 'FLAT', price: 0.5, vat: 21, step_size: 1 },
        { type: 'ENERGY', price: 0.3, vat: 21, step_size: 1 },
        { type: 'TIME', price: 0.6, vat: 21, step_size: 60 },
        { type: 'PARKING_TIME', price: 2, vat: 21, step_size: 300 },
      ],
    },
  ],
  last_updated: '2026-01-01T00:00:00Z',
};
const zone = 'Europe/Amsterdam';

/** Sessions as whole-minute steps with whole Wh, starting anywhere in 2026. */
const session = fc
  .record({
    start_ms: fc
      .integer({ min: Date.UTC(2026, 0, 1), max: Date.UTC(2026, 11, 31) })
      .map((ms) => ms - (ms % 60_000)),
    steps: fc.array(
      fc.record({
        minutes: fc.integer({ min: 1, max: 180 }),
        wh: fc.integer({ min: 0, max: 15_000 }),
        charging: fc.boolean(),
      }),
      { minLength: 1, maxLength: 20 },
    ),
  })
  .map(({ start_ms, steps }) => {
    const samples: MeterSample[] = [{ at_ms: start_ms, energy_wh: 0, charging: steps[0]!.charging }];
    let at_ms = start_ms;
    let energy_wh = 0;
    for (const step of steps) {
      at_ms += step.minutes * 60_000;
      energy_wh += step.charging ? step.wh : 0;
      samples.push({ at_ms, energy_wh, charging: step.charging });
    }
    return samples;
  });

const rate = (samples: MeterSample[], tariff: Tariff = time_of_use) =>
  rate_session({ tariff, time_zone: zone, samples });

describe('rating engine properties', () => {
  it('splitting an interval at a point on its own line never changes the price', () => {
    fc.assert(
      fc.property(session, fc.nat(), fc.integer({ min: 1, max: 3 }), (samples, which, parts) => {
        const i = 1 + (which % (samples.length - 1));
        const a = samples[i - 1]!;
        const b = samples[i]!;
        // A point dividing the interval into `parts` equal pieces, on whole ms and whole Wh.
        const dt = b.at_ms - a.at_ms;
        const de = b.energy_wh - a.energy_wh;
        if (dt % (parts + 1) !== 0 || de % (parts + 1) !== 0) return;
        const middle: MeterSample = {
          at_ms: a.at_ms + dt / (parts + 1),
          energy_wh: a.energy_wh + de / (parts + 1),
          // A sample's state holds until the next sample, so the new point keeps the interval's.
          charging: a.charging,
        };
        const split = [...samples.slice(0, i), middle, ...samples.slice(i)];
        expect(rate(split).total_cost).toEqual(rate(samples).total_cost);
      }),
      { numRuns: 300 },
    );
  });

  it('adding energy never lowers the energy cost', () => {
    fc.assert(
      fc.property(session, fc.integer({ min: 1, max: 50_000 }), (samples, extra_wh) => {
        const more = samples.map((s, i) =>
          i === samples.length - 1 ? { ...s, energy_wh: s.energy_wh + extra_wh } : s,
        );
        const before = new Money(rate(samples).total_energy_cost.excl_vat);
        const after = new Money(rate(more).total_energy_cost.excl_vat);
        expect(after.gte(before)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('each dimension is the rounded sum of its lines, and the total the sum of the dimensions', () => {
    // README "Rating", totals: one VAT rate (21%) here, so a dimension's net is its lines summed and
    // rounded once, the total net is the sum of the four rounded nets, and the VAT is 21% of that
    // sum rounded once; the dimensions' incl. VAT add up to the total's.
    fc.assert(
      fc.property(session, (samples) => {
        const rated = rate(samples);
        const sum = (dimension: string) =>
          round_money(
            rated.lines
              .filter((l) => l.dimension === dimension)
              .reduce((s, l) => s.plus(l.cost_excl_vat), new Money(0)),
            'EUR',
          );
        const dimensions = [
          [rated.total_energy_cost, 'ENERGY'],
          [rated.total_time_cost, 'TIME'],
          [rated.total_parking_cost, 'PARKING_TIME'],
          [rated.total_fixed_cost, 'FLAT'],
        ] as const;
        let net = new Money(0);
        let incl = new Money(0);
        for (const [price, dimension] of dimensions) {
          expect(price.excl_vat).toBe(sum(dimension).toFixed(2));
          net = net.plus(price.excl_vat);
          incl = incl.plus(price.incl_vat);
        }
        expect(rated.total_cost.excl_vat).toBe(net.toFixed(2));
        expect(rated.total_cost.incl_vat).toBe(net.plus(round_money(net.mul(0.21), 'EUR')).toFixed(2));
        expect(rated.total_cost.incl_vat).toBe(incl.toFixed(2));
      }),
      { numRuns: 300 },
    );
  });

  it('keeps the total within min_price and max_price', () => {
    const bounded: Tariff = {
      ...time_of_use,
      min_price: { excl_vat: 2, incl_vat: 2.42 },
      max_price: { excl_vat: 15 },
    };
    fc.assert(
      fc.property(session, (samples) => {
        const total = new Money(rate(samples, bounded).total_cost.excl_vat);
        expect(total.gte(2) && total.lte(15)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  /** Energy bands, a duration band, parking after 2 h, and price limits: every cut the engine makes. */
  const banded: Tariff = {
    ...time_of_use,
    min_price: { excl_vat: 1.5 },
    max_price: { excl_vat: 40, incl_vat: 48 },
    elements: [
      {
        price_components: [{ type: 'ENERGY', price: 0.25, vat: 21, step_size: 500 }],
        restrictions: { max_kwh: 20 },
      },
      {
        price_components: [{ type: 'PARKING_TIME', price: 6, vat: 21, step_size: 900 }],
        restrictions: { min_duration: 7200 },
      },
      ...time_of_use.elements,
    ],
  };

  it('the running cost after each sample equals pricing that prefix from scratch', () => {
    fc.assert(
      fc.property(session, fc.constantFrom(time_of_use, banded), (samples, tariff) => {
        const rater = new SessionRater(tariff, zone, samples[0]!);
        for (let i = 1; i < samples.length; i++) {
          rater.add(samples[i]!);
          const scratch = rate_session({ tariff, time_zone: zone, samples: samples.slice(0, i + 1) });
          expect(rater.running_cost()).toEqual(scratch.total_cost);
        }
        expect(rater.result()).toEqual(rate_session({ tariff, time_zone: zone, samples }));
      }),
      { numRuns: 200 },
    );
  });

  it('a rater restored from its saved state at any sample ends with the same price', () => {
    fc.assert(
      fc.property(session, fc.nat(), fc.constantFrom(time_of_use, banded), (samples, which, tariff) => {
        const cut = 1 + (which % (samples.length - 1));
        const before = new SessionRater(tariff, zone, samples[0]!);
        for (let i = 1; i <= cut; i++) before.add(samples[i]!);
        const saved = JSON.parse(JSON.stringify(before.state()));
        const resumed = SessionRater.from_state(tariff, zone, samples[0]!, saved);
        for (let i = cut + 1; i < samples.length; i++) resumed.add(samples[i]!);
        expect(resumed.result()).toEqual(rate_session({ tariff, time_zone: zone, samples }));
      }),
      { numRuns: 200 },
    );
  });
});
