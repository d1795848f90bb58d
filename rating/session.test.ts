import { describe, expect, it } from 'vitest';
import type { MeterValue, OcppEvent } from '../schemas/events.js';
import { rate_session } from './engine.js';
import {
  apply_session_events,
  close_if_silent,
  default_session_rules,
  new_session_state,
  type SessionEvent,
  type SessionMeta,
  type SessionState,
} from './session.js';
import type { Tariff } from './tariff.js';

/** 0.30/kWh, 1.20/h charging, 6.00/h parking (idle fee), billed per second, no VAT. */
const tariff: Tariff = {
  country_code: 'NL',
  party_id: 'EVR',
  id: 't',
  currency: 'EUR',
  elements: [
    {
      price_components: [
        { type: 'ENERGY', price: 0.3, step_size: 1 },
        { type: 'TIME', price: 1.2, step_size: 1 },
        { type: 'PARKING_TIME', price: 6, step_size: 1 },
      ],
    },
  ],
  last_updated: '2026-01-01T00:00:00Z',
};
const t0 = Date.UTC(2026, 10, 23, 10, 0, 0);
const min = 60_000;

const meta: SessionMeta = {
  session_id: 'CP1/1',
  charge_point_id: 'CP1',
  transaction_id: '1',
  connector_id: 1,
  evse_id: 0,
  id_tag: 'TAG',
  payment_method: 'RFID',
  party: '',
  started_at_ms: t0,
  meter_start_wh: 1000,
  tariff_id: 't',
  tariff_version: 1,
  time_zone: 'UTC',
};

function base(at_ms = t0): Omit<OcppEvent, 'body'> {
  return { chargePointId: 'CP1', receivedAtMs: at_ms, ocppVersion: '1.6', messageId: 'm' };
}

function mv(at_ms: number, value: string, unit = 'Wh', extra: MeterValue['sampledValues'] = []): MeterValue {
  return {
    timestampMs: at_ms,
    sampledValues: [
      {
        value,
        unit,
        measurand: 'Energy.Active.Import.Register',
        phase: '',
        location: 'Outlet',
        context: 'Sample.Periodic',
        format: 'Raw',
      },
      ...extra,
    ],
  };
}

function values(seq: number, received_ms: number, ...list: MeterValue[]): SessionEvent {
  return {
    seq,
    event: {
      ...base(received_ms),
      body: 'meterValues',
      meterValues: { transactionId: '1', connectorId: 1, meterValues: list },
    },
  };
}

function status(seq: number, at_ms: number, value: string): SessionEvent {
  return {
    seq,
    event: {
      ...base(at_ms),
      body: 'status',
      status: {
        connectorId: 1,
        status: value,
        errorCode: 'NoError',
        timestampMs: at_ms,
        info: '',
        evseId: 0,
      },
    },
  };
}

function stop(seq: number, at_ms: number, meter_stop_wh: number, data: MeterValue[] = []): SessionEvent {
  return {
    seq,
    event: {
      ...base(at_ms),
      body: 'stopped',
      stopped: {
        transactionId: '1',
        idTag: 'TAG',
        meterStopWh: meter_stop_wh,
        timestampMs: at_ms,
        reason: 'Local',
        transactionData: data,
      },
    },
  };
}

function run(events: SessionEvent[], state: SessionState = new_session_state(meta, 1, t0)) {
  return apply_session_events(state, events, tariff);
}

describe('session rules', () => {
  it('prices a plain session from start and stop registers alone (a stop without meter values)', () => {
    const out = run([stop(2, t0 + 60 * min, 11_000)]);
    expect(out.rated).toHaveLength(1);
    // 10 kWh x 0.30 + 1 h x 1.20 (energy flowed throughout: charging).
    expect(out.rated[0]!.rated.total_cost.excl_vat).toBe('4.20');
    expect(out.state.closed).toBe('stopped');
  });

  it('applies a redelivered batch once (rule 1)', () => {
    const first = run([values(2, t0 + 30 * min, mv(t0 + 30 * min, '6000'))]);
    const again = apply_session_events(
      first.state,
      [values(2, t0 + 30 * min, mv(t0 + 30 * min, '6000'))],
      tariff,
    );
    expect(again.state).toEqual(first.state);
    const stopped = apply_session_events(again.state, [stop(3, t0 + 60 * min, 11_000)], tariff);
    const twice = apply_session_events(stopped.state, [stop(3, t0 + 60 * min, 11_000)], tariff);
    expect(twice.rated).toEqual([]);
    expect(stopped.rated[0]!.rated.total_energy).toBe('10');
  });

  it('sorts readings of a batch by time and keeps a late reading out of the price (rule 2)', () => {
    const sorted = run([values(2, t0 + 40 * min, mv(t0 + 40 * min, '9000'), mv(t0 + 20 * min, '5000'))]);
    expect(sorted.state.anomalies.late_sample).toBeUndefined();
    const late = apply_session_events(
      sorted.state,
      [values(3, t0 + 41 * min, mv(t0 + 10 * min, '3000'))],
      tariff,
    );
    expect(late.state.anomalies.late_sample).toBe(1);
    const end = apply_session_events(late.state, [stop(4, t0 + 60 * min, 11_000)], tariff);
    expect(end.rated[0]!.rated.total_energy).toBe('10');
  });

  it('reads kWh and W/kW exactly (rule 3)', () => {
    const power = {
      value: '7.2',
      unit: 'kW',
      measurand: 'Power.Active.Import',
      phase: '',
      location: 'Outlet',
      context: 'Sample.Periodic',
      format: 'Raw',
    };
    const out = run([values(2, t0 + 30 * min, mv(t0 + 30 * min, '6.0005', 'kWh', [power]))]);
    expect(out.state.energy_wh).toBe(5000.5);
    expect(out.state.rater!.last.power_w).toBe(7200);
    const end = apply_session_events(out.state, [stop(3, t0 + 60 * min, 11_000)], tariff);
    expect(end.rated[0]!.rated.total_energy).toBe('10');
  });

  it('continues across a register reset without counting energy twice (rule 4)', () => {
    const out = run([
      values(2, t0 + 20 * min, mv(t0 + 20 * min, '4000')),
      // New meter: register restarts at 200 Wh.
      values(3, t0 + 40 * min, mv(t0 + 40 * min, '200')),
      stop(4, t0 + 60 * min, 2200),
    ]);
    expect(out.state.anomalies.register_reset).toBe(1);
    // 3 kWh before the reset, 0 across it, 2 kWh after.
    expect(out.rated[0]!.rated.total_energy).toBe('5');
  });

  it('replaces a charger timestamp far in the future with the receipt time (rule 5)', () => {
    const out = run([values(2, t0 + 30 * min, mv(t0 + 30 * min + 3 * 3600_000, '6000'))]);
    expect(out.state.anomalies.clock_corrected).toBe(1);
    expect(out.state.rater!.last.at_ms).toBe(t0 + 30 * min);
  });

  it('prices idle minutes as PARKING_TIME, from energy and status (rule 6)', () => {
    const out = run([
      values(2, t0 + 30 * min, mv(t0 + 30 * min, '8500')),
      status(3, t0 + 30 * min, 'SuspendedEV'),
      values(4, t0 + 50 * min, mv(t0 + 50 * min, '8500')),
      stop(5, t0 + 60 * min, 8500),
    ]);
    const rated = out.rated[0]!.rated;
    expect(rated.total_parking_time).toBe('0.5');
    // 7.5 kWh x 0.30 + 0.5 h x 1.20 + 0.5 h x 6.00
    expect(rated.total_cost.excl_vat).toBe('5.85');
    expect(rated.total_parking_cost.excl_vat).toBe('3.00');
  });

  it('closes a silent session provisionally and finalizes it when the stop comes (rule 8)', () => {
    const open = run([values(2, t0 + 30 * min, mv(t0 + 30 * min, '6000'))]);
    expect(close_if_silent(open.state, t0 + 60 * min, tariff)).toBeUndefined();
    const closed = close_if_silent(open.state, t0 + 30 * min + default_session_rules.silence_ms, tariff)!;
    expect(closed.rated[0]).toMatchObject({ version: 1, provisional: true });
    expect(closed.rated[0]!.rated.total_energy).toBe('5');
    const final = apply_session_events(closed.state, [stop(3, t0 + 60 * min, 11_000)], tariff);
    expect(final.rated[0]).toMatchObject({ version: 2, provisional: false });
    expect(final.rated[0]!.rated.total_cost.excl_vat).toBe('4.20');
  });

  it('takes the first reading as the baseline when the start had no register', () => {
    const out = run(
      [values(2, t0 + 1 * min, mv(t0 + 1 * min, '50000')), stop(3, t0 + 61 * min, 60_000)],
      new_session_state({ ...meta, meter_start_wh: -1 }, 1, t0),
    );
    expect(out.state.anomalies.missing_start_register).toBe(1);
    expect(out.rated[0]!.rated.total_energy).toBe('10');
  });

  it('shows a running cost equal to the final price of the same facts', () => {
    const a = run([
      values(2, t0 + 30 * min, mv(t0 + 30 * min, '6000')),
      values(3, t0 + 60 * min, mv(t0 + 60 * min, '11000')),
    ]);
    const b = apply_session_events(a.state, [stop(4, t0 + 60 * min, 11_000)], tariff);
    expect(a.running_cost).toEqual(b.rated[0]!.rated.total_cost);
    const scratch = rate_session({
      tariff,
      time_zone: 'UTC',
      samples: [
        { at_ms: t0, energy_wh: 1000, charging: true },
        { at_ms: t0 + 30 * min, energy_wh: 6000, charging: true },
        { at_ms: t0 + 60 * min, energy_wh: 11_000, charging: true },
      ],
    });
    expect(b.rated[0]!.rated.total_cost).toEqual(scratch.total_cost);
  });
});
