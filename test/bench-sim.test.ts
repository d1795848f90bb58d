import { describe, expect, it } from 'vitest';
import { freshness_ms, percentile_of } from '../bench/drive.js';
import { source_address_of } from '../bench/sim/charger.js';
import { meter_values, transaction_ended, transaction_started } from '../bench/sim/frames.js';
import { LatencyHistogram } from '../bench/sim/histogram.js';
import {
  charge_step,
  new_car_session,
  pick_profile,
  seeded_random,
  session_done,
} from '../bench/sim/session-model.js';

describe('bench simulator, pure parts', () => {
  it('spreads chargers over loopback source addresses, 1,000 per address, never .0', () => {
    expect(source_address_of(0, 1000)).toBe('127.1.1.1');
    expect(source_address_of(999, 1000)).toBe('127.1.1.1');
    expect(source_address_of(1000, 1000)).toBe('127.1.1.2');
    const addresses = new Set(Array.from({ length: 100 }, (_, k) => source_address_of(k * 1000, 1000)));
    expect(addresses.size).toBe(100);
    for (const a of addresses) expect(a).toMatch(/^127\.1\.[1-9]\d*\.[1-9]\d*$/);
  });

  it('charges along a CC/CV curve: energy never decreases, power tapers above 80 % SoC', () => {
    const random = seeded_random(7);
    const profile = pick_profile(random);
    const car = new_car_session(random, 1_000_000);
    let last_wh = car.energy_wh;
    let full_power_w = 0;
    let steps = 0;
    while (!session_done(car, steps, 10_000)) {
      const r = charge_step(profile, car, steps * 60_000, 60);
      expect(r.energy_wh).toBeGreaterThanOrEqual(last_wh);
      if (r.soc_percent < 80) full_power_w = r.power_w;
      else expect(r.power_w).toBeLessThanOrEqual(profile.power_w_max);
      last_wh = r.energy_wh;
      steps++;
    }
    expect(full_power_w === 0 || full_power_w === profile.power_w_max).toBe(true);
    expect(car.soc_percent).toBeGreaterThanOrEqual(car.soc_percent_target);
    expect(car.soc_percent).toBeLessThanOrEqual(100);
  });

  it('counts the sampled values each CALL carries, per protocol', () => {
    const reading = {
      at_ms: 0,
      energy_wh: 10,
      power_w: 7000,
      current_a: 30,
      voltage_v: 230,
      soc_percent: 50,
    };
    const s = { connector_id: 1, id_tag: 'T', transaction_id: '5', seq_no: 0, reading };
    expect(transaction_started('ocpp1.6', s, 4).sampled_values_total).toBe(0);
    expect(transaction_started('ocpp2.0.1', s, 4).sampled_values_total).toBe(4);
    const mv16 = meter_values('ocpp1.6', s, 3);
    expect(mv16.action).toBe('MeterValues');
    expect((mv16.payload.meterValue as { sampledValue: unknown[] }[])[0]!.sampledValue).toHaveLength(3);
    expect(meter_values('ocpp2.0.1', s, 5).action).toBe('TransactionEvent');
    expect(transaction_ended('ocpp1.6', s).sampled_values_total).toBe(0);
    expect(transaction_ended('ocpp2.0.1', s).sampled_values_total).toBe(1);
  });

  it('histogram percentiles are within one 5 % bucket of the exact value', () => {
    const h = new LatencyHistogram();
    const values = Array.from({ length: 1000 }, (_, i) => (i + 1) * 0.1);
    for (const v of values) h.record(v);
    for (const p of [50, 90, 99]) {
      const exact = percentile_of(values, p);
      expect(h.percentile_ms(p)).toBeGreaterThanOrEqual(exact);
      expect(h.percentile_ms(p)).toBeLessThanOrEqual(exact * 1.06);
    }
    const merged = new LatencyHistogram();
    merged.add_sparse(h.sparse());
    expect(merged.percentile_ms(99)).toBe(h.percentile_ms(99));
  });

  it('freshness pairs the k-th stored value with the k-th answered one', () => {
    const answered: [number, number][] = [
      [0, 0],
      [1000, 100],
      [2000, 200],
    ];
    const stored: [number, number][] = [
      [0, 0],
      [1500, 100],
      [2500, 200],
    ];
    expect(freshness_ms(answered, stored)).toEqual([500, 500]);
  });
});
