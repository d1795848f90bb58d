import { describe, expect, it } from 'vitest';
import type { MeterValue, OcppEvent, SampledValue } from '../schemas/events.js';
import { reading_of } from './readings.js';
import {
  apply_session_events,
  default_session_rules,
  new_session_state,
  type SessionEvent,
  type SessionMeta,
  type SessionRules,
} from './session.js';
import type { Tariff } from './tariff.js';

// Figures worked out by hand for each rule on messy meter data. Energy-only tariff: 0.30 EUR/kWh,
// billed per Wh (step_size 1), no VAT, so a session's price is its billed kWh x 0.30.
const energy_tariff: Tariff = {
  country_code: 'NL',
  party_id: 'EVR',
  id: 'e',
  currency: 'EUR',
  elements: [{ price_components: [{ type: 'ENERGY', price: 0.3, step_size: 1 }] }],
  last_updated: '2026-01-01T00:00:00Z',
};
// Time-only tariff: 1.20 EUR per charging hour, 6.00 EUR per hour not charging, per second.
const time_tariff: Tariff = {
  ...energy_tariff,
  id: 'h',
  elements: [
    {
      price_components: [
        { type: 'TIME', price: 1.2, step_size: 1 },
        { type: 'PARKING_TIME', price: 6, step_size: 1 },
      ],
    },
  ],
};
const t0 = Date.UTC(2026, 10, 23, 10, 0, 0);
const min = 60_000;

function meta_of(overrides: Partial<SessionMeta> = {}): SessionMeta {
  return {
    session_id: 'CP1/1',
    charge_point_id: 'CP1',
    transaction_id: '1',
    connector_id: 1,
    evse_id: 0,
    id_tag: 'TAG',
    payment_method: 'RFID',
    party: '',
    started_at_ms: t0,
    meter_start_wh: 10_000,
    tariff_id: 'e',
    tariff_version: 1,
    time_zone: 'UTC',
    ...overrides,
  };
}

function sv(value: string, extra: Partial<SampledValue> = {}): SampledValue {
  return {
    value,
    unit: 'Wh',
    measurand: 'Energy.Active.Import.Register',
    phase: '',
    location: 'Outlet',
    context: 'Sample.Periodic',
    format: 'Raw',
    ...extra,
  };
}

function mv(at_ms: number, ...values: SampledValue[]): MeterValue {
  return { timestampMs: at_ms, sampledValues: values };
}

function base(received_ms: number): Omit<OcppEvent, 'body'> {
  return { chargePointId: 'CP1', receivedAtMs: received_ms, ocppVersion: '1.6', messageId: 'm' };
}

/** One MeterValues CALL received at `received_ms` (by default when its first value was taken). */
function values(
  seq: number,
  list: MeterValue[],
  received_ms = list[0]!.timestampMs,
  charging_state?: string,
): SessionEvent {
  return {
    seq,
    event: {
      ...base(received_ms),
      body: 'meterValues',
      meterValues: {
        transactionId: '1',
        connectorId: 1,
        meterValues: list,
        ...(charging_state === undefined
          ? {}
          : { chargingState: charging_state, chargingStateAtMs: received_ms }),
      },
    },
  };
}

/** Periodic register readings, one CALL each, seq from 2. */
function readings(...list: [at_ms: number, wh: string][]): SessionEvent[] {
  return list.map(([at_ms, wh], i) => values(2 + i, [mv(at_ms, sv(wh))]));
}

function stop(seq: number, at_ms: number, meter_stop_wh: number, received_ms = at_ms): SessionEvent {
  return {
    seq,
    event: {
      ...base(received_ms),
      body: 'stopped',
      stopped: {
        transactionId: '1',
        idTag: 'TAG',
        meterStopWh: meter_stop_wh,
        timestampMs: at_ms,
        reason: 'Local',
        transactionData: [],
      },
    },
  };
}

function rate(
  meta: SessionMeta,
  events: SessionEvent[],
  tariff = energy_tariff,
  rules: SessionRules = default_session_rules,
) {
  const out = apply_session_events(new_session_state(meta, 1, meta.started_at_ms), events, tariff, rules);
  expect(out.rated).toHaveLength(1);
  return { version: out.rated[0]!, state: out.state };
}

describe('start register (rule 4)', () => {
  it('bills a rebooted charger from its own readings when meterStart 0 disagrees with Transaction.Begin', () => {
    // meterStart 0, but the Begin sample at the start says 1,000,000 Wh: 1,000 kWh in 0 s is no
    // plausible power. The next reading confirms the register: the session starts at 1,000,000.
    // Billed: 1,022,000 - 1,000,000 = 22,000 Wh = 22 kWh x 0.30 = 6.60 (not 1,022 kWh = 306.60).
    const { version, state } = rate(meta_of({ meter_start_wh: 0 }), [
      values(2, [mv(t0, sv('1000000', { context: 'Transaction.Begin' }))]),
      values(3, [mv(t0 + 30 * min, sv('1011000'))]),
      stop(4, t0 + 60 * min, 1_022_000),
    ]);
    expect(version.rated.total_energy).toBe('22');
    expect(version.rated.total_cost.excl_vat).toBe('6.60');
    expect(version.meter_start_wh).toBe(1_000_000);
    expect(version.meter_stop_wh).toBe(1_022_000);
    expect(state.anomalies.meter_start_mismatch).toBe(1);
    expect(version.review).toBe(false);
  });

  it('takes the first periodic reading when there is no Begin sample', () => {
    // First reading 1,005,000 Wh after 15 min: more than 500 kW x 15 min = 125,000 Wh above
    // meterStart 0, so a suspect; 1,011,000 at 30 min goes on from it (6,000 Wh in 15 min): the
    // session starts at 1,005,000. Billed 1,022,000 - 1,005,000 = 17 kWh x 0.30 = 5.10.
    const { version, state } = rate(meta_of({ meter_start_wh: 0 }), [
      ...readings([t0 + 15 * min, '1005000'], [t0 + 30 * min, '1011000']),
      stop(4, t0 + 60 * min, 1_022_000),
    ]);
    expect(version.rated.total_energy).toBe('17');
    expect(version.rated.total_cost.excl_vat).toBe('5.10');
    expect(state.anomalies.meter_start_mismatch).toBe(1);
  });

  it('keeps meterStart when the readings agree with it', () => {
    // 10,000 -> 14,000 (4 kWh in 20 min, 12 kW) -> stop 18,000: 8 kWh x 0.30 = 2.40.
    const { version, state } = rate(meta_of(), [
      ...readings([t0 + 20 * min, '14000']),
      stop(3, t0 + 40 * min, 18_000),
    ]);
    expect(version.rated.total_cost.excl_vat).toBe('2.40');
    expect(version.meter_start_wh).toBe(10_000);
    expect(state.anomalies).toEqual({});
  });
});

describe('register continuity (rule 4)', () => {
  it('drops a single 0 reading as a glitch: no phantom energy', () => {
    // 10,000 -> 12,000 -> 0 (glitch) -> 16,000 -> stop 18,000. The 0 is held back; 16,000 goes
    // on from 12,000, so the 0 was a glitch. Billed 18,000 - 10,000 = 8 kWh x 0.30 = 2.40.
    // (Taking the 0 as a reset would bill 12,000 more Wh: 20 kWh, 6.00.)
    const { version, state } = rate(meta_of(), [
      ...readings([t0 + 10 * min, '12000'], [t0 + 20 * min, '0'], [t0 + 30 * min, '16000']),
      stop(5, t0 + 40 * min, 18_000),
    ]);
    expect(version.rated.total_energy).toBe('8');
    expect(version.rated.total_cost.excl_vat).toBe('2.40');
    expect(state.anomalies.register_glitch).toBe(1);
    expect(state.anomalies.register_reset).toBeUndefined();
  });

  it('continues across a reset the following readings confirm, billing only what was measured', () => {
    // 10,000 -> 12,000, then the meter restarts: 0 -> 2,000 -> stop 4,000. 2,000 goes on from 0,
    // not from 12,000: a reset. Measured: 2,000 before it + 4,000 after = 6 kWh x 0.30 = 1.80.
    const { version, state } = rate(meta_of(), [
      ...readings([t0 + 10 * min, '12000'], [t0 + 20 * min, '0'], [t0 + 30 * min, '2000']),
      stop(5, t0 + 40 * min, 4_000),
    ]);
    expect(version.rated.total_energy).toBe('6');
    expect(version.rated.total_cost.excl_vat).toBe('1.80');
    expect(state.anomalies.register_reset).toBe(1);
    expect(version.meter_stop_wh).toBe(4_000);
  });

  it('does not bill a spike twice when the register comes back below it', () => {
    // 10,000 -> 11,000 -> 19,000 (a spike, but within 500 kW) -> 12,000 -> 13,000 -> stop 20,000.
    // 12,000 is below 19,000 and 13,000 goes on from it, but 12,000 also goes on from 11,000:
    // 19,000 was the spike. The billed energy waits at 19,000 until the register passes it.
    // Billed 20,000 - 10,000 = 10 kWh x 0.30 = 3.00 (a reset would add 7,000 Wh: 5.10).
    const { version, state } = rate(meta_of(), [
      ...readings(
        [t0 + 10 * min, '11000'],
        [t0 + 20 * min, '19000'],
        [t0 + 30 * min, '12000'],
        [t0 + 40 * min, '13000'],
      ),
      stop(6, t0 + 50 * min, 20_000),
    ]);
    expect(version.rated.total_energy).toBe('10');
    expect(version.rated.total_cost.excl_vat).toBe('3.00');
    expect(state.anomalies.register_spike).toBe(1);
  });

  it('bounds energy no plausible power delivers by the connector maximum, and flags the session', () => {
    // A 22 kW connector. 0 -> 3,000 at 10 min (18 kW), then 900,000 at 20 min, confirmed by
    // 901,000 at 30 min. In 10 min 22 kW delivers floor(22,000 x 600,000 / 3,600,000) = 3,666 Wh:
    // that much of the jump is billed, 900,000 - 3,000 - 3,666 = 893,334 Wh are not.
    // Billed: 3,000 + 3,666 + 1,000 + 2,000 (to the stop at 903,000) = 9,666 Wh
    // = 9.666 kWh x 0.30 = 2.8998 -> 2.90.
    const { version, state } = rate(meta_of({ meter_start_wh: 0, power_w_max: 22_000 }), [
      ...readings([t0 + 10 * min, '3000'], [t0 + 20 * min, '900000'], [t0 + 30 * min, '901000']),
      stop(5, t0 + 40 * min, 903_000),
    ]);
    expect(version.rated.total_energy).toBe('9.666');
    expect(version.rated.total_cost.excl_vat).toBe('2.90');
    expect(version.review).toBe(true);
    expect(state.anomalies.implausible_energy).toBe(1);
    expect(state.anomalies.implausible_energy_wh).toBe(893_334);
  });

  it('bounds a stop register nothing confirms and flags the session', () => {
    // meterStart 0, no readings, meterStop 1,020,000 after 1 h on a 350 kW connector: at most
    // 350 kWh could flow. Billed 350 kWh x 0.30 = 105.00, flagged (not 1,020 kWh = 306.00).
    const { version, state } = rate(meta_of({ meter_start_wh: 0, power_w_max: 350_000 }), [
      stop(2, t0 + 60 * min, 1_020_000),
    ]);
    expect(version.rated.total_energy).toBe('350');
    expect(version.rated.total_cost.excl_vat).toBe('105.00');
    expect(version.review).toBe(true);
    expect(state.anomalies.unconfirmed_reading).toBe(1);
  });

  it('ends at the last accepted reading when the stop register is a glitch nobody confirms', () => {
    // 10,000 -> 15,000, stop register 0: unconfirmed and low, dropped. Billed 5 kWh = 1.50.
    const { version, state } = rate(meta_of(), [
      ...readings([t0 + 20 * min, '15000']),
      stop(3, t0 + 30 * min, 0),
    ]);
    expect(version.rated.total_cost.excl_vat).toBe('1.50');
    expect(version.review).toBe(true);
    expect(state.anomalies.unconfirmed_reading).toBe(1);
  });
});

describe('one series per session (rule 3)', () => {
  it('bills the Outlet register and never mixes in the EV or Inlet readings', () => {
    // Each reading carries three locations. Outlet: 10,000 -> 13,000 -> stop 16,000: 6 kWh = 1.80.
    // Taking the last value seen (Inlet, 20,500 then 26,600) would bill other figures.
    const three = (at_ms: number, outlet: string, ev: string, inlet: string) =>
      mv(at_ms, sv(outlet), sv(ev, { location: 'EV' }), sv(inlet, { location: 'Inlet' }));
    const { version, state } = rate(meta_of(), [
      values(2, [three(t0 + 10 * min, '13000', '9000', '20500')]),
      values(3, [three(t0 + 20 * min, '14000', '9500', '26600')]),
      stop(4, t0 + 30 * min, 16_000),
    ]);
    expect(version.rated.total_energy).toBe('6');
    expect(version.rated.total_cost.excl_vat).toBe('1.80');
    expect(state.series_location).toBe('Outlet');
  });

  it('takes the only location a charger reports, and keeps to it', () => {
    // Only EV readings at first (12,000 -> 15,000), then an Inlet value appears: ignored.
    const { version, state } = rate(meta_of({ meter_start_wh: -1 }), [
      values(2, [mv(t0, sv('12000', { location: 'EV' }))]),
      values(3, [mv(t0 + 10 * min, sv('13000', { location: 'EV' }), sv('90000', { location: 'Inlet' }))]),
      values(4, [mv(t0 + 20 * min, sv('15000', { location: 'EV' }))]),
      { ...stop(5, t0 + 30 * min, -1) },
    ]);
    expect(state.series_location).toBe('EV');
    expect(version.rated.total_energy).toBe('3');
  });

  it('sums phase registers and phase currents when no total is sent', () => {
    const reading = reading_of(
      mv(
        t0,
        sv('1000', { phase: 'L1' }),
        sv('1500', { phase: 'L2' }),
        sv('2', { phase: 'L3', unit: 'kWh' }),
        sv('16', { measurand: 'Current.Import', unit: 'A', phase: 'L1' }),
        sv('16', { measurand: 'Current.Import', unit: 'A', phase: 'L2' }),
        sv('15.5', { measurand: 'Current.Import', unit: 'A', phase: 'L3' }),
        sv('3', { measurand: 'Current.Import', unit: 'A', phase: 'N' }),
      ),
    );
    // 1,000 + 1,500 + 2,000 Wh; 16 + 16 + 15.5 A (the neutral is not a phase of the sum).
    expect(reading.energy_wh).toBe(4500);
    expect(reading.current_a).toBe(47.5);
    // With a total, the total is the register.
    const total = reading_of(mv(t0, sv('1000', { phase: 'L1' }), sv('7000')));
    expect(total.energy_wh).toBe(7000);
  });

  it('reads an OCPP 2.0.1 signed value by its value, and skips a 1.6 SignedData blob', () => {
    const signed = JSON.stringify({
      signedMeterData: 'T0NNRnx7',
      signingMethod: 'ECDSA-secp256r1-SHA256',
      encodingMethod: 'OCMF',
      publicKey: '',
    });
    const v201 = reading_of(mv(t0, sv('12.5', { unit: 'kWh', format: 'SignedData', signedData: signed })));
    expect(v201.energy_wh).toBe(12_500);
    expect(v201.energy_resolution_wh).toBe(100);
    const v16 = reading_of(mv(t0, sv('12345', { format: 'SignedData', signedData: '12345' })));
    expect(v16.energy_wh).toBeUndefined();
  });

  it('prices a session whose charger signs every value', () => {
    // Eichrecht: every reading signed. 10,000 -> 12,000 -> stop 14,000: 4 kWh = 1.20.
    const signed = (at_ms: number, wh: string) =>
      mv(at_ms, sv(wh, { format: 'SignedData', signedData: JSON.stringify({ signedMeterData: `x${wh}` }) }));
    const { version } = rate(meta_of(), [
      values(2, [signed(t0 + 10 * min, '12000')]),
      stop(3, t0 + 20 * min, 14_000),
    ]);
    expect(version.rated.total_cost.excl_vat).toBe('1.20');
    expect(version.rated.total_energy).toBe('4');
  });
});

describe('OCPP 2.0.1 chargingState (rule 6)', () => {
  // A coarse meter (whole kWh): in 30 min at 1.4 kW the register does not move, so the energy
  // alone says parking. The 2.0.1 connector status is Occupied, which says nothing either.
  const events = (with_state: boolean): SessionEvent[] => [
    values(
      2,
      [mv(t0 + 30 * min, sv('1', { unit: 'kWh' }))],
      t0 + 30 * min,
      with_state ? 'SuspendedEV' : undefined,
    ),
    values(3, [mv(t0 + 60 * min, sv('1', { unit: 'kWh' }))]),
    stop(4, t0 + 60 * min, 1000),
  ];
  const meta201 = (with_state: boolean) =>
    meta_of({
      meter_start_wh: 1000,
      tariff_id: 'h',
      status_at_start: 'Occupied',
      ...(with_state ? { charging_state_at_start: 'Charging' } : {}),
    });

  it('prices Charging as charging and SuspendedEV as parking from the charger state', () => {
    // 30 min charging x 1.20/h = 0.60, then 30 min SuspendedEV x 6.00/h = 3.00: 3.60.
    const { version } = rate(meta201(true), events(true), time_tariff);
    expect(version.rated.total_time).toBe('1');
    expect(version.rated.total_parking_time).toBe('0.5');
    expect(version.rated.total_cost.excl_vat).toBe('3.60');
  });

  it('prices the same session as parking throughout without the state (what it was before)', () => {
    // 1 h parking x 6.00 = 6.00: the state is what makes the difference.
    const { version } = rate(meta201(false), events(false), time_tariff);
    expect(version.rated.total_parking_time).toBe('1');
    expect(version.rated.total_cost.excl_vat).toBe('6.00');
  });
});

describe('charger clock (rule 5)', () => {
  it('times a session whose charger clock was reset to 2000 by the receipt, keeping its intervals', () => {
    // The charger believes it is 2000-01-01; it is t0. Start, a reading 30 min later by its
    // clock (received 30 min later), a stop at 60 min: one hour, 10 kWh, as if the clock were right.
    const rtc = Date.UTC(2000, 0, 1, 0, 0, 0);
    const rules = default_session_rules;
    const skew = rtc - t0;
    const clock_offset_ms = -skew;
    const { version, state } = rate(
      meta_of({ started_at_ms: t0, started_at_ms_charger: rtc, clock_offset_ms, tariff_id: 'h' }),
      [
        values(2, [mv(rtc + 30 * min, sv('15000'))], t0 + 30 * min),
        stop(3, rtc + 60 * min, 20_000, t0 + 60 * min),
      ],
      time_tariff,
      rules,
    );
    // 1 h charging x 1.20 = 1.20, from t0 to t0 + 1 h.
    expect(version.rated.total_cost.excl_vat).toBe('1.20');
    expect(version.stopped_at_ms).toBe(t0 + 60 * min);
    expect(state.anomalies.late_sample).toBeUndefined();
    expect(state.anomalies.clock_corrected).toBeUndefined();
  });

  it('replaces a later timestamp outside the window by its receipt time, counted', () => {
    // A right start, then a reading stamped a year ahead, received at 30 min: taken at 30 min.
    const { version, state } = rate(
      meta_of({ tariff_id: 'h' }),
      [values(2, [mv(t0 + 365 * 24 * 60 * min, sv('15000'))], t0 + 30 * min), stop(3, t0 + 60 * min, 20_000)],
      time_tariff,
    );
    expect(state.anomalies.clock_corrected).toBe(1);
    expect(version.rated.total_cost.excl_vat).toBe('1.20');
  });
});

describe('reading units (rule 3)', () => {
  it('converts kWh text to the same Wh as exact decimal arithmetic, for any register text', async () => {
    const { Decimal } = await import('decimal.js');
    const fc = (await import('fast-check')).default;
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 10n ** 12n }),
        fc.integer({ min: 0, max: 9 }),
        fc.boolean(),
        (digits, decimals, kwh) => {
          const text = decimals === 0 ? String(digits) : (Number(digits) / 10 ** decimals).toFixed(decimals);
          const reading = reading_of(mv(t0, sv(text, { unit: kwh ? 'kWh' : 'Wh' })));
          expect(reading.energy_wh).toBe(new Decimal(text).mul(kwh ? 1000 : 1).toNumber());
          expect(reading.energy_resolution_wh).toBe(
            new Decimal(10)
              .pow(-decimals)
              .mul(kwh ? 1000 : 1)
              .toNumber(),
          );
        },
      ),
      { numRuns: 2000 },
    );
  });
});
