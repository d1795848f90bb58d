/**
 * Rating engine benchmark, one thread: complete sessions priced per second with a time-of-use
 * tariff and 20 meter samples each, and samples priced incrementally per second (add a sample,
 * read the running cost). Prints figures; asserts nothing.
 *
 *   node dist/bench/rating.js [--sessions 20000]
 */
import { parseArgs } from 'node:util';
import { type MeterSample, rate_session, SessionRater } from '../rating/engine.js';
import type { Tariff } from '../rating/tariff.js';

const { values } = parseArgs({ options: { sessions: { type: 'string', default: '20000' } } });
const sessions_total = Number(values.sessions);
const samples_per_session = 20;

const tariff: Tariff = {
  country_code: 'NL',
  party_id: 'EVR',
  id: 'tou',
  currency: 'EUR',
  elements: [
    {
      price_components: [{ type: 'ENERGY', price: 0.45, vat: 21, step_size: 1 }],
      restrictions: { start_time: '17:00', end_time: '21:00' },
    },
    {
      price_components: [{ type: 'ENERGY', price: 0.21, vat: 21, step_size: 1 }],
      restrictions: { start_time: '23:00', end_time: '07:00' },
    },
    {
      price_components: [
        { type: 'FLAT', price: 0.5, vat: 21, step_size: 1 },
        { type: 'ENERGY', price: 0.3, vat: 21, step_size: 1 },
        { type: 'PARKING_TIME', price: 2, vat: 21, step_size: 300 },
      ],
    },
  ],
  last_updated: '2026-01-01T00:00:00Z',
};

function session(n: number): MeterSample[] {
  const start_ms = Date.UTC(2026, 5, 1) + (n % 1440) * 60_000;
  return Array.from({ length: samples_per_session }, (_, i) => ({
    at_ms: start_ms + i * 5 * 60_000,
    energy_wh: i * 1800 + (n % 7),
    charging: i < samples_per_session - 3,
  }));
}

const inputs = Array.from({ length: sessions_total }, (_, n) => session(n));
for (let n = 0; n < Math.min(500, sessions_total); n++)
  rate_session({ tariff, time_zone: 'Europe/Amsterdam', samples: inputs[n]! });
const started = performance.now();
let check = 0;
// A session counts as priced when the engine gave it at least one line: the harness compares
// this with the sessions given (a session silently dropped would show here).
let sessions_priced = 0;
for (const samples of inputs) {
  const lines = rate_session({ tariff, time_zone: 'Europe/Amsterdam', samples }).lines.length;
  check += lines;
  if (lines > 0) sessions_priced++;
}
const elapsed_s = (performance.now() - started) / 1000;

// Incremental: the live path, one sample at a time with the running cost after each (what the
// rating service does for an open session).
const incremental_started = performance.now();
let running_check = 0;
let incremental_samples = 0;
for (const samples of inputs) {
  const rater = new SessionRater(tariff, 'Europe/Amsterdam', samples[0]!);
  for (let i = 1; i < samples.length; i++) {
    rater.add(samples[i]!);
    running_check += rater.running_cost().excl_vat.length;
    incremental_samples++;
  }
}
const incremental_s = (performance.now() - incremental_started) / 1000;
process.stdout.write(
  `${JSON.stringify(
    {
      sessions: sessions_total,
      sessions_priced,
      samples_per_session,
      seconds: Number(elapsed_s.toFixed(2)),
      sessions_per_s: Math.round(sessions_total / elapsed_s),
      samples_per_s: Math.round((sessions_total * samples_per_session) / elapsed_s),
      lines_total: check,
      incremental_samples_per_s: Math.round(incremental_samples / incremental_s),
      running_cost_chars: running_check,
    },
    null,
    2,
  )}\n`,
);
