/**
 * How a simulated car charges, free of I/O: constant power up to 80 % state of charge, then a
 * linear taper to a tenth of it at 100 % (the usual CC/CV shape), sampled every `interval_s`.
 * Deterministic from a seed so that a run can be repeated.
 */
import type { MeterReading } from './frames.js';

/** mulberry32: a tiny seeded PRNG; plenty for picking session shapes. */
export function seeded_random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface ChargerProfile {
  power_w_max: number;
  voltage_v: number;
  /** Three-phase AC draws current on each phase; DC is one conductor pair. */
  phases: 1 | 3;
}

const profiles: readonly ChargerProfile[] = [
  { power_w_max: 7_400, voltage_v: 230, phases: 1 },
  { power_w_max: 11_000, voltage_v: 230, phases: 3 },
  { power_w_max: 22_000, voltage_v: 230, phases: 3 },
  { power_w_max: 50_000, voltage_v: 400, phases: 1 },
  { power_w_max: 150_000, voltage_v: 800, phases: 1 },
];

export function pick_profile(random: () => number): ChargerProfile {
  return profiles[Math.floor(random() * profiles.length)]!;
}

export interface CarSession {
  battery_wh: number;
  soc_percent: number;
  soc_percent_target: number;
  energy_wh: number;
}

export function new_car_session(random: () => number, register_wh: number): CarSession {
  return {
    battery_wh: 40_000 + Math.floor(random() * 60_000),
    soc_percent: 10 + random() * 40,
    soc_percent_target: 80 + random() * 20,
    energy_wh: register_wh,
  };
}

/** Charges for interval_s and returns the reading at its end; mutates the car's state. */
export function charge_step(
  profile: ChargerProfile,
  car: CarSession,
  at_ms: number,
  interval_s: number,
): MeterReading {
  const taper = car.soc_percent < 80 ? 1 : Math.max(0.1, 1 - ((car.soc_percent - 80) / 20) * 0.9);
  const power_w = Math.round(profile.power_w_max * taper);
  const step_wh = Math.round((power_w * interval_s) / 3600);
  car.energy_wh += step_wh;
  car.soc_percent = Math.min(100, car.soc_percent + (step_wh / car.battery_wh) * 100);
  return reading_of(profile, car, at_ms, power_w);
}

export function reading_of(
  profile: ChargerProfile,
  car: CarSession,
  at_ms: number,
  power_w: number,
): MeterReading {
  const current_a = power_w / (profile.voltage_v * (profile.phases === 3 ? 3 : 1));
  return {
    at_ms,
    energy_wh: car.energy_wh,
    power_w,
    current_a: Math.round(current_a * 10) / 10,
    voltage_v: profile.voltage_v,
    soc_percent: Math.round(car.soc_percent),
  };
}

export function session_done(car: CarSession, steps: number, steps_max: number): boolean {
  return car.soc_percent >= car.soc_percent_target || steps >= steps_max;
}
