// The integer engine against the decimal engine it replaced: same output, byte for byte, on random
// tariffs and sessions, including the values that leave the integer ranges.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  Money,
  minor_units,
  minor_units_estimate,
  minor_units_exact,
  minor_units_text,
  money_text,
} from '../core/money.js';
import { DecimalSessionRater } from './decimal-engine.js';
import { type MeterSample, rate_session, SessionRater } from './engine.js';
import { ceil_to_step, mul_div_half_up, quotient_text } from './exact-integers.js';
import { iso } from './iso-text.js';
import { local_time } from './local-time.js';
import type { Plan } from './plans.js';
import type { PriceComponent, Tariff, TariffElement, TariffRestrictions } from './tariff.js';

const zones = ['Europe/Amsterdam', 'America/New_York', 'Australia/Lord_Howe', 'Asia/Kathmandu', 'UTC'];
const weekdays = ['MONDAY', 'TUESDAY', 'WEDNESDAY', 'THURSDAY', 'FRIDAY', 'SATURDAY', 'SUNDAY'];

const hhmm = fc
  .tuple(fc.integer({ min: 0, max: 23 }), fc.constantFrom(0, 0, 15, 30, 45, 59))
  .map(([h, m]) => `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}`);
const price = fc.oneof(
  fc.constantFrom(0, 0.45, 0.21, 0.3, 2, 0.2345, 0.123456789, 1.25, 7, 0.000001, 1e-7, 0.1 + 0.2),
  fc.integer({ min: 0, max: 10_000 }).map((n) => n / 1000),
);
const vat = fc.constantFrom(undefined, 0, 21, 20, 7.7, 5.5, 19.25);
const step_size = fc.constantFrom(0, 1, 1, 60, 300, 500, 900, 1000, 3600);

const component = fc.record({
  type: fc.constantFrom('ENERGY', 'TIME', 'PARKING_TIME', 'FLAT'),
  price,
  vat,
  step_size,
}) as fc.Arbitrary<PriceComponent>;

const restrictions: fc.Arbitrary<TariffRestrictions | undefined> = fc.option(
  fc.record(
    {
      start_time: hhmm,
      end_time: hhmm,
      start_date: fc.constantFrom('2026-03-29', '2026-06-01', '2026-11-01'),
      end_date: fc.constantFrom('2026-03-30', '2026-06-02', '2026-12-31'),
      day_of_week: fc.subarray(weekdays, { minLength: 1 }),
      min_kwh: fc.constantFrom(0, 0.5, 1.234, 5, 20, 0.000000001),
      max_kwh: fc.constantFrom(1, 2.5, 10, 20, 9_000_000),
      min_duration: fc.constantFrom(0, 600, 3600, 7200),
      max_duration: fc.constantFrom(300, 1800, 5400),
      min_power: fc.constantFrom(3.7, 11, 22),
      max_power: fc.constantFrom(11, 50),
      min_current: fc.constantFrom(16, 32),
      max_current: fc.constantFrom(16, 32),
    },
    { requiredKeys: [] },
  ),
  { nil: undefined, freq: 3 },
);

const element: fc.Arbitrary<TariffElement> = fc
  .record({ price_components: fc.array(component, { minLength: 1, maxLength: 4 }), restrictions })
  .map(({ price_components, restrictions }) =>
    restrictions === undefined ? { price_components } : { price_components, restrictions },
  );

const tariff: fc.Arbitrary<Tariff> = fc
  .record({
    elements: fc.array(element, { minLength: 1, maxLength: 5 }),
    currency: fc.constantFrom('EUR', 'EUR', 'JPY', 'KWD'),
    min_price: fc.option(
      fc.record({
        excl_vat: fc.constantFrom(0.5, 2, 3.333),
        incl_vat: fc.option(fc.constantFrom(2.42, 4), { nil: undefined }),
      }),
      { nil: undefined, freq: 3 },
    ),
    max_price: fc.option(
      fc.record({
        excl_vat: fc.constantFrom(5, 15, 40),
        incl_vat: fc.option(fc.constantFrom(18.15, 48), { nil: undefined }),
      }),
      { nil: undefined, freq: 3 },
    ),
    evrate_idle_grace_minutes: fc.option(fc.constantFrom(5, 30), { nil: undefined, freq: 3 }),
  })
  .map(({ elements, currency, min_price, max_price, evrate_idle_grace_minutes }) => {
    const t: Tariff = {
      country_code: 'NL',
      party_id: 'EVR',
      id: 'random',
      currency,
      elements,
      last_updated: '2026-01-01T00:00:00Z',
    };
    // Without incl_vat a limit is the excl. VAT one scaled; absent fields stay absent.
    if (min_price !== undefined)
      t.min_price = min_price.incl_vat === undefined ? { excl_vat: min_price.excl_vat } : min_price;
    if (max_price !== undefined)
      t.max_price = max_price.incl_vat === undefined ? { excl_vat: max_price.excl_vat } : max_price;
    if (evrate_idle_grace_minutes !== undefined) t.evrate_idle_grace_minutes = evrate_idle_grace_minutes;
    return t;
  });

const plan: fc.Arbitrary<Plan | undefined> = fc.option(
  fc.record(
    {
      id: fc.constant('gold'),
      name: fc.constant('Gold'),
      currency: fc.constant('EUR'),
      discount_percent: fc.constantFrom(10, 15, 33.3),
      discount_fixed_excl_vat: fc.constantFrom(0.5, 1),
      session_cap_excl_vat: fc.constantFrom(10, 20),
    },
    { requiredKeys: ['id', 'name', 'currency'] },
  ),
  { nil: undefined, freq: 4 },
);

/** Session starts around the DST changes of 2026 and anywhere else in the year. */
const start_ms = fc.oneof(
  fc.constantFrom(
    Date.UTC(2026, 2, 28, 20),
    Date.UTC(2026, 2, 29, 0, 30),
    Date.UTC(2026, 3, 4, 14),
    Date.UTC(2026, 9, 24, 22),
    Date.UTC(2026, 10, 1, 4),
    Date.UTC(2026, 9, 3, 14),
  ),
  fc.integer({ min: Date.UTC(2026, 0, 1), max: Date.UTC(2026, 11, 31) }),
);

/** Registers: whole Wh, half Wh, nine decimals, a huge meter, and a few beyond nWh resolution. */
const register_start = fc.constantFrom(0, 0, 12_345, 0.5, 900_000_000, 123.456789123, 7_999_999.5);
const energy_step = fc.oneof(
  { arbitrary: fc.integer({ min: 0, max: 15_000 }), weight: 4 },
  { arbitrary: fc.integer({ min: 0, max: 15_000_000 }).map((n) => n / 1000), weight: 3 },
  { arbitrary: fc.integer({ min: 0, max: 1_000_000_000 }).map((n) => n / 1_000_000_000), weight: 1 },
  { arbitrary: fc.constantFrom(0.1, 0.2, 1e-10, 3_000_000), weight: 1 },
);

const session = fc
  .record({
    start_ms,
    register_start,
    steps: fc.array(
      fc.record({
        ms: fc.oneof(
          fc.integer({ min: 1, max: 180 }).map((m) => m * 60_000),
          fc.integer({ min: 0, max: 3 * 3_600_000 }),
          fc.constantFrom(0, 20 * 3_600_000, 26 * 3_600_000 + 17),
        ),
        wh: energy_step,
        charging: fc.boolean(),
        power_w: fc.option(fc.constantFrom(3_700, 11_000, 22_000, 50_000), { nil: undefined }),
        current_a: fc.option(fc.constantFrom(10, 16, 32), { nil: undefined }),
      }),
      { minLength: 1, maxLength: 20 },
    ),
  })
  .map(({ start_ms, register_start, steps }) => {
    const samples: MeterSample[] = [
      { at_ms: start_ms, energy_wh: register_start, charging: steps[0]!.charging },
    ];
    let at_ms = start_ms;
    let energy_wh = register_start;
    for (const step of steps) {
      at_ms += step.ms;
      energy_wh += step.wh;
      const sample: MeterSample = { at_ms, energy_wh, charging: step.charging };
      if (step.power_w !== undefined) sample.power_w = step.power_w;
      if (step.current_a !== undefined) sample.current_a = step.current_a;
      samples.push(sample);
    }
    return samples;
  });

/** What a call gave: its value, or the error it threw (both engines must refuse alike). */
function outcome<T>(call: () => T): { value: T } | { error: string } {
  try {
    return { value: call() };
  } catch (error) {
    return { error: String(error) };
  }
}

describe('integer engine against the decimal engine', () => {
  it('gives the same running cost, state and result after every sample', () => {
    fc.assert(
      fc.property(tariff, plan, fc.constantFrom(...zones), session, (tariff, plan_of, zone, samples) => {
        // Mostly in the tariff's currency; now and then in another, which both must refuse.
        const plan =
          plan_of === undefined || tariff.currency === 'KWD'
            ? plan_of
            : { ...plan_of, currency: tariff.currency };
        const integer = new SessionRater(tariff, zone, samples[0]!, plan);
        const decimal = new DecimalSessionRater(tariff, zone, samples[0]!, plan);
        expect(outcome(() => integer.result())).toEqual(outcome(() => decimal.result()));
        for (let i = 1; i < samples.length; i++) {
          integer.add(samples[i]!);
          decimal.add(samples[i]!);
          expect(outcome(() => integer.running_cost())).toEqual(outcome(() => decimal.running_cost()));
          expect(integer.state()).toEqual(decimal.state());
        }
        expect(outcome(() => integer.result())).toEqual(outcome(() => decimal.result()));
      }),
      { numRuns: 400 },
    );
  });

  it('never refuses a session in its own currency, and its dimensions add up to the total', () => {
    // The first test compares outcomes, so an invariant both engines broke alike would pass there.
    // Here, without price limits or plan: total excl. VAT = the sum of the dimensions' excl. VAT, the
    // same incl. VAT, and each dimension's excl. VAT is the sum over VAT rates of its lines' sums,
    // each rounded half up (README "Rating", totals).
    fc.assert(
      fc.property(tariff, fc.constantFrom(...zones), session, (limited, zone, samples) => {
        const { min_price: _, max_price: __, ...tariff } = limited;
        const rated = rate_session({ tariff, time_zone: zone, samples });
        const dims = [
          ['ENERGY', rated.total_energy_cost],
          ['TIME', rated.total_time_cost],
          ['PARKING_TIME', rated.total_parking_cost],
          ['FLAT', rated.total_fixed_cost],
        ] as const;
        let excl = new Money(0);
        let incl = new Money(0);
        for (const [dimension, price] of dims) {
          const by_rate = new Map<string, Money>();
          for (const line of rated.lines.filter((l) => l.dimension === dimension))
            by_rate.set(
              line.vat_percent,
              (by_rate.get(line.vat_percent) ?? new Money(0)).plus(line.cost_excl_vat),
            );
          // A line's cost is printed with Decimal's finite precision (a time line is volume x price /
          // 3600, a repeating decimal), so the sum of printed lines can fall short of an exact half
          // cent by 1e-58: round it at 40 places, far below a cent and far above the printing error.
          const net = [...by_rate.values()].reduce(
            (sum, v) => sum.plus(money_text(v.toDecimalPlaces(40), tariff.currency)),
            new Money(0),
          );
          expect(price.excl_vat).toBe(net.toFixed(minor_units(tariff.currency)));
          excl = excl.plus(price.excl_vat);
          incl = incl.plus(price.incl_vat);
        }
        expect(rated.total_cost.excl_vat).toBe(excl.toFixed(minor_units(tariff.currency)));
        expect(rated.total_cost.incl_vat).toBe(incl.toFixed(minor_units(tariff.currency)));
      }),
      { numRuns: 300 },
    );
  });

  it('resumes from a state the decimal engine saved and ends with the same result', () => {
    fc.assert(
      fc.property(tariff, fc.constantFrom(...zones), session, fc.nat(), (tariff, zone, samples, which) => {
        const cut = 1 + (which % (samples.length - 1));
        const decimal = new DecimalSessionRater(tariff, zone, samples[0]!);
        for (let i = 1; i <= cut; i++) decimal.add(samples[i]!);
        const saved = JSON.parse(JSON.stringify(decimal.state()));
        const resumed = SessionRater.from_state(tariff, zone, samples[0]!, saved);
        for (let i = cut + 1; i < samples.length; i++) {
          resumed.add(samples[i]!);
          decimal.add(samples[i]!);
        }
        expect(resumed.running_cost()).toEqual(decimal.running_cost());
        expect(resumed.result()).toEqual(decimal.result());
      }),
      { numRuns: 200 },
    );
  });

  it('prices a session of many days sampled hourly the same', () => {
    const tou: Tariff = {
      country_code: 'NL',
      party_id: 'EVR',
      id: 'tou',
      currency: 'EUR',
      elements: [
        {
          price_components: [{ type: 'ENERGY', price: 0.123456789, vat: 21, step_size: 1 }],
          restrictions: { start_time: '17:00', end_time: '21:00', day_of_week: ['MONDAY', 'FRIDAY'] },
        },
        {
          price_components: [{ type: 'PARKING_TIME', price: 2.5, vat: 21, step_size: 300 }],
          restrictions: { start_time: '22:00', end_time: '06:30' },
        },
        {
          price_components: [
            { type: 'ENERGY', price: 0.3, vat: 21, step_size: 1 },
            { type: 'TIME', price: 0.6, vat: 21, step_size: 60 },
          ],
        },
      ],
      last_updated: '2026-01-01T00:00:00Z',
    };
    const start = Date.UTC(2026, 9, 20, 8, 0, 7);
    const samples: MeterSample[] = Array.from({ length: 24 * 14 }, (_, h) => ({
      at_ms: start + h * 3_600_000 + (h % 7) * 1_001,
      energy_wh: 900_000_000 + h * 1_234.5,
      charging: h % 5 !== 0,
    }));
    const integer = new SessionRater(tou, 'Europe/Amsterdam', samples[0]!);
    const decimal = new DecimalSessionRater(tou, 'Europe/Amsterdam', samples[0]!);
    for (const sample of samples.slice(1)) {
      integer.add(sample);
      decimal.add(sample);
    }
    expect(integer.running_cost()).toEqual(decimal.running_cost());
    expect(integer.result()).toEqual(decimal.result());
  });
});

describe('integer engine against the decimal engine, where cuts are subtle', () => {
  const same = (tariff: Tariff, zone: string, samples: MeterSample[]) => {
    const integer = new SessionRater(tariff, zone, samples[0]!);
    const decimal = new DecimalSessionRater(tariff, zone, samples[0]!);
    for (let i = 1; i < samples.length; i++) {
      integer.add(samples[i]!);
      decimal.add(samples[i]!);
      expect(integer.running_cost()).toEqual(decimal.running_cost());
    }
    expect(integer.result()).toEqual(decimal.result());
  };

  /** Whole-minute steps with whole Wh from a start. */
  const steps = (start: fc.Arbitrary<number>, minutes_max: number, wh_max: number) =>
    fc
      .record({
        start_ms: start,
        steps: fc.array(
          fc.record({
            minutes: fc.integer({ min: 1, max: minutes_max }),
            seconds: fc.constantFrom(0, 0, 0, 17),
            wh: fc.integer({ min: 0, max: wh_max }),
            charging: fc.boolean(),
          }),
          { minLength: 1, maxLength: 12 },
        ),
      })
      .map(({ start_ms, steps }) => {
        const samples: MeterSample[] = [{ at_ms: start_ms, energy_wh: 0, charging: steps[0]!.charging }];
        let at_ms = start_ms;
        let energy_wh = 0;
        for (const step of steps) {
          at_ms += step.minutes * 60_000 + step.seconds * 1000;
          energy_wh += step.wh;
          samples.push({ at_ms, energy_wh, charging: step.charging });
        }
        return samples;
      });

  it('cuts at the same minutes across DST changes, in the hours that are skipped or repeated', () => {
    const window = fc
      .tuple(
        fc.integer({ min: 0, max: 4 }),
        fc.constantFrom(0, 15, 30, 45),
        fc.integer({ min: 15, max: 150 }),
      )
      .map(([h, m, length]) => {
        const start = h * 60 + m;
        const end = start + length;
        const text = (minutes: number) =>
          `${String(Math.floor(minutes / 60) % 24).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
        return { start_time: text(start), end_time: text(end) };
      });
    const transitions = [
      Date.UTC(2026, 2, 29, 1), // Europe/Amsterdam, forward
      Date.UTC(2026, 9, 25, 1), // Europe/Amsterdam, back
      Date.UTC(2026, 2, 8, 7), // America/New_York, forward
      Date.UTC(2026, 10, 1, 6), // America/New_York, back
      Date.UTC(2026, 3, 4, 15), // Australia/Lord_Howe, back half an hour
      Date.UTC(2026, 9, 3, 15, 30), // Australia/Lord_Howe, forward half an hour
    ];
    const start = fc
      .tuple(fc.constantFrom(...transitions), fc.integer({ min: -240, max: 60 }))
      .map(([t, minutes]) => t + minutes * 60_000);
    fc.assert(
      fc.property(
        window,
        window,
        fc.constantFrom('Europe/Amsterdam', 'America/New_York', 'Australia/Lord_Howe'),
        steps(start, 90, 5_000),
        (peak, night, zone, samples) => {
          const tariff: Tariff = {
            country_code: 'NL',
            party_id: 'EVR',
            id: 'dst',
            currency: 'EUR',
            elements: [
              {
                price_components: [{ type: 'ENERGY', price: 0.45, vat: 21, step_size: 1 }],
                restrictions: peak,
              },
              {
                price_components: [{ type: 'PARKING_TIME', price: 3, vat: 21, step_size: 60 }],
                restrictions: night,
              },
              {
                price_components: [
                  { type: 'ENERGY', price: 0.3, vat: 21, step_size: 1 },
                  { type: 'TIME', price: 1.2, vat: 21, step_size: 1 },
                  { type: 'PARKING_TIME', price: 1, vat: 21, step_size: 1 },
                ],
                restrictions: { day_of_week: ['SUNDAY', 'MONDAY'] },
              },
              { price_components: [{ type: 'TIME', price: 0.5, vat: 21, step_size: 1 }] },
            ],
            last_updated: '2026-01-01T00:00:00Z',
          };
          same(tariff, zone, samples);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('cuts where the register reaches min_kwh and max_kwh on the same ms', () => {
    // 6000 Wh over 9 minutes reaches 1000 Wh after 1/6 of it: the decimal engine's 60-digit
    // quotient 0.166...67 times 540000 ms is just above 90000, so the cut falls on ms 90001; the
    // integer engine must cut there too.
    const banded: Tariff = {
      country_code: 'NL',
      party_id: 'EVR',
      id: 'kwh',
      currency: 'EUR',
      elements: [
        {
          price_components: [{ type: 'ENERGY', price: 0.25, vat: 21, step_size: 1 }],
          restrictions: { max_kwh: 1 },
        },
        {
          price_components: [{ type: 'ENERGY', price: 0.35, vat: 21, step_size: 1 }],
          restrictions: { min_kwh: 7 },
        },
        {
          price_components: [{ type: 'TIME', price: 2, vat: 21, step_size: 1 }],
          restrictions: { min_kwh: 3.5, max_kwh: 11 },
        },
        {
          price_components: [
            { type: 'ENERGY', price: 0.3, vat: 21, step_size: 1 },
            { type: 'TIME', price: 1, vat: 21, step_size: 1 },
            { type: 'PARKING_TIME', price: 1, vat: 21, step_size: 1 },
          ],
        },
      ],
      last_updated: '2026-01-01T00:00:00Z',
    };
    const start_ms = Date.UTC(2026, 5, 1, 12);
    same(banded, 'Europe/Amsterdam', [
      { at_ms: start_ms, energy_wh: 0, charging: true },
      { at_ms: start_ms + 540_000, energy_wh: 6000, charging: true },
    ]);
    expect(
      rate_session({
        tariff: banded,
        time_zone: 'Europe/Amsterdam',
        samples: [
          { at_ms: start_ms, energy_wh: 0, charging: true },
          { at_ms: start_ms + 540_000, energy_wh: 6000, charging: true },
        ],
      }).charging_periods[1]?.start_date_time,
    ).toBe('2026-06-01T12:01:30.001Z');
    fc.assert(
      fc.property(steps(fc.constant(start_ms), 30, 6_000), (samples) =>
        same(banded, 'Europe/Amsterdam', samples),
      ),
      { numRuns: 300 },
    );
  });
});

describe('integer engine beyond its ranges', () => {
  const base: Tariff = {
    country_code: 'NL',
    party_id: 'EVR',
    id: 'edge',
    currency: 'EUR',
    elements: [
      {
        price_components: [
          { type: 'ENERGY', price: 0.3, vat: 21, step_size: 1 },
          { type: 'TIME', price: 1.5, vat: 21, step_size: 60 },
        ],
      },
    ],
    last_updated: '2026-01-01T00:00:00Z',
  };
  const start_ms = Date.UTC(2026, 5, 1, 12);
  const samples: MeterSample[] = [
    { at_ms: start_ms, energy_wh: 100, charging: true },
    { at_ms: start_ms + 600_000, energy_wh: 2_100.25, charging: true },
    { at_ms: start_ms + 1_200_000, energy_wh: 0.1 + 0.2 + 5_000, charging: true },
    { at_ms: start_ms + 1_800_000, energy_wh: 9_000_100, charging: false },
    { at_ms: start_ms + 2_400_000, energy_wh: 9_000_100, charging: false },
  ];
  const tariffs: [string, Tariff][] = [
    [
      'a price with 21 decimals',
      { ...base, elements: [{ price_components: [{ type: 'ENERGY', price: 1e-21, step_size: 1 }] }] },
    ],
    [
      'a kWh threshold with 13 decimals',
      {
        ...base,
        elements: [{ ...base.elements[0]!, restrictions: { max_kwh: 1.0000000000001 } }, ...base.elements],
      },
    ],
    ['32 elements', { ...base, elements: Array.from({ length: 32 }, () => base.elements[0]!) }],
    ['registers beyond nWh and sessions beyond 8 MWh', base],
  ];
  for (const [what, tariff] of tariffs) {
    it(`prices ${what} as the decimal engine does`, () => {
      const integer = new SessionRater(tariff, 'Europe/Amsterdam', samples[0]!);
      const decimal = new DecimalSessionRater(tariff, 'Europe/Amsterdam', samples[0]!);
      for (const sample of samples.slice(1)) {
        integer.add(sample);
        decimal.add(sample);
        expect(integer.running_cost()).toEqual(decimal.running_cost());
        expect(integer.state()).toEqual(decimal.state());
      }
      expect(integer.result()).toEqual(decimal.result());
    });
  }
});

describe('CDR instants', () => {
  it('print as Date.toISOString() without .000, in any year', () => {
    const instant = fc.oneof(
      fc.integer({ min: -8.64e15, max: 8.64e15 }),
      fc.integer({ min: Date.UTC(1999, 0, 1), max: Date.UTC(2101, 0, 1) }),
      fc.constantFrom(0, -1, Date.UTC(2000, 1, 29, 23, 59, 59, 999), Date.UTC(999, 11, 31, 23, 59, 59, 999)),
    );
    fc.assert(
      fc.property(instant, (at_ms) => {
        expect(iso(at_ms)).toBe(new Date(at_ms).toISOString().replace('.000Z', 'Z'));
      }),
      { numRuns: 20_000 },
    );
  });
});

describe('local time', () => {
  it('agrees with Intl at any instant, across DST changes', () => {
    const formatter = (zone: string) =>
      new Intl.DateTimeFormat('en-US', {
        timeZone: zone,
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
        hour: '2-digit',
        minute: '2-digit',
        weekday: 'long',
        hourCycle: 'h23',
      });
    fc.assert(
      fc.property(
        fc.constantFrom(...zones),
        start_ms,
        fc.integer({ min: 0, max: 48 * 3_600_000 }),
        (zone, s, d) => {
          const at_ms = s + d;
          const parts = Object.fromEntries(
            formatter(zone)
              .formatToParts(new Date(at_ms))
              .map((p) => [p.type, p.value]),
          );
          expect(local_time(at_ms, zone)).toEqual({
            date: `${parts.year}-${parts.month}-${parts.day}`,
            minute_of_day: Number(parts.hour) * 60 + Number(parts.minute),
            day_of_week: String(parts.weekday).toUpperCase(),
          });
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('exact integers', () => {
  it('prints a quotient as decimal.js does: 60 digits, half up, no trailing zeros', () => {
    const numerator = fc.oneof(
      fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      fc.bigInt({ min: 0n, max: 10n ** 70n }),
      fc.constantFrom(10n ** 61n - 1n, 36n * (10n ** 60n - 1n), 5n * 10n ** 60n - 1n, 999_999_999_999_999n),
    );
    fc.assert(
      fc.property(
        numerator,
        fc.constantFrom(1, 36, 9, 7, 3600),
        fc.integer({ min: 0, max: 40 }),
        (n, d, e) => {
          const text = quotient_text(n, d, e);
          const expected = new Money(String(n)).div(new Money(`${d}e${e}`)).toString();
          if (text === undefined) expect(expected).toContain('e');
          else expect(text).toBe(expected);
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('rounds amounts held as fractions to minor units as money_text does', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 10n ** 24n }),
        fc.integer({ min: 0, max: 20 }),
        fc.constantFrom('EUR', 'JPY', 'KWD'),
        (numerator, exponent, currency) => {
          const denominator = 36n * 10n ** BigInt(exponent);
          const expected = money_text(new Money(String(numerator)).div(String(denominator)), currency);
          const digits = minor_units(currency);
          expect(minor_units_text(minor_units_exact(numerator, denominator, digits), digits)).toBe(expected);
          const estimate = minor_units_estimate((Number(numerator) / Number(denominator)) * 10 ** digits);
          if (estimate >= 0) expect(minor_units_text(estimate, digits)).toBe(expected);
        },
      ),
      { numRuns: 5000 },
    );
    // Halves exactly: the estimate declines them, the exact rounding goes up.
    expect(minor_units_estimate(60.5)).toBe(-1);
    expect(minor_units_text(minor_units_exact(605n, 1000n, 2), 2)).toBe('0.61');
  });

  it('rounds a x k / d half up and steps up exactly, past 2^53 products', () => {
    const safe = fc.integer({ min: 0, max: 8e15 });
    fc.assert(
      fc.property(safe, fc.integer({ min: 1, max: 6e9 }), fc.nat(), (a, d, k_seed) => {
        const k = k_seed % (d + 1);
        const exact = (2n * BigInt(a) * BigInt(k) + BigInt(d)) / (2n * BigInt(d));
        expect(mul_div_half_up(a, k, d)).toBe(Number(exact));
        const step = 1 + (k_seed % 1e15);
        const stepped = ((BigInt(a) + BigInt(step) - 1n) / BigInt(step)) * BigInt(step);
        if (stepped < 2n ** 53n) expect(ceil_to_step(a, step)).toBe(Number(stepped));
      }),
      { numRuns: 5000 },
    );
  });
});
