import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { MeterValue, OcppEvent } from '../schemas/events.js';
import {
  apply_session_events,
  close_if_silent,
  default_session_rules,
  new_session_state,
  type RatedVersion,
  replay_session,
  type SessionEvent,
  type SessionMeta,
  type SessionState,
} from './session.js';
import type { Tariff } from './tariff.js';

// Live rating equals a re-rating from the stored facts, to the cent, for messy streams: live
// rating applies the events batch by batch as a partition's consumer delivers them, with
// redeliveries and crashes before the checkpoint (a batch applied, its facts logged, its state
// lost, the batch applied again), and logs each event it applies as the rating service does; the
// re-rating replays the logged facts, one per (seq, idx), through the same reducer.

const tariff: Tariff = {
  country_code: 'NL',
  party_id: 'EVR',
  id: 't',
  currency: 'EUR',
  elements: [
    {
      price_components: [
        { type: 'ENERGY', price: 0.31, vat: 21, step_size: 1 },
        { type: 'TIME', price: 1.2, vat: 21, step_size: 60 },
        { type: 'PARKING_TIME', price: 6, vat: 21, step_size: 60 },
      ],
    },
  ],
  last_updated: '2026-01-01T00:00:00Z',
};
const t0 = Date.UTC(2026, 10, 23, 10, 0, 0);
const min = 60_000;

type Step =
  | { kind: 'reading'; dt_min: number; wh: number; late: boolean; duplicate: boolean }
  | { kind: 'glitch'; dt_min: number; value: number }
  | { kind: 'reset'; dt_min: number }
  | { kind: 'status'; dt_min: number; status: string }
  | { kind: 'offline_batch'; count: number };

const step = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('reading' as const),
      dt_min: fc.integer({ min: 0, max: 20 }),
      wh: fc.integer({ min: 0, max: 4000 }),
      late: fc.boolean(),
      duplicate: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('glitch' as const),
      dt_min: fc.integer({ min: 1, max: 10 }),
      value: fc.constantFrom(0, 1, 9_999_999),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('reset' as const), dt_min: fc.integer({ min: 1, max: 10 }) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('status' as const),
      dt_min: fc.integer({ min: 0, max: 5 }),
      status: fc.constantFrom('Charging', 'SuspendedEV', 'SuspendedEVSE', 'Finishing'),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('offline_batch' as const),
      count: fc.integer({ min: 1, max: 4 }),
    }),
  },
);

function register(at_ms: number, wh: number): MeterValue {
  return {
    timestampMs: at_ms,
    sampledValues: [
      {
        value: String(wh),
        unit: 'Wh',
        measurand: 'Energy.Active.Import.Register',
        phase: '',
        location: 'Outlet',
        context: 'Sample.Periodic',
        format: 'Raw',
      },
    ],
  };
}

function base(received_ms: number): Omit<OcppEvent, 'body'> {
  return { chargePointId: 'CP1', receivedAtMs: received_ms, ocppVersion: '1.6', messageId: 'm' };
}

/** The events a charger sends for the steps, as JetStream messages of one or more events. */
function messages(steps: Step[], meter_start_wh: number, stopped: boolean): OcppEvent[][] {
  let at = t0;
  let wh = Math.max(0, meter_start_wh);
  let received = t0;
  const out: OcppEvent[][] = [];
  const held: MeterValue[] = [];
  const send = (list: MeterValue[], received_ms: number) =>
    out.push([
      {
        ...base(received_ms),
        body: 'meterValues',
        meterValues: { transactionId: '1', connectorId: 1, meterValues: list },
      },
    ]);
  for (const s of steps) {
    if (s.kind === 'reading') {
      at += s.dt_min * min;
      wh += s.wh;
      received = Math.max(received, at) + 200;
      const value = register(at, wh);
      if (s.late) {
        held.push(value); // queued while "offline", sent later
        continue;
      }
      send([value], received);
      if (s.duplicate) send([value], received + 1000);
    } else if (s.kind === 'glitch') {
      at += s.dt_min * min;
      received = Math.max(received, at) + 200;
      send([register(at, s.value)], received);
    } else if (s.kind === 'reset') {
      at += s.dt_min * min;
      wh = 0;
      received = Math.max(received, at) + 200;
      send([register(at, wh)], received);
    } else if (s.kind === 'status') {
      at += s.dt_min * min;
      received = Math.max(received, at) + 200;
      out.push([
        {
          ...base(received),
          body: 'status',
          status: {
            connectorId: 1,
            status: s.status,
            errorCode: 'NoError',
            timestampMs: at,
            info: '',
            evseId: 0,
          },
        },
      ]);
    } else if (held.length > 0) {
      received += 1000;
      send(held.splice(0, s.count), received);
    }
  }
  if (held.length > 0) send(held.splice(0), received + 1000);
  if (stopped) {
    at += 5 * min;
    received = Math.max(received, at) + 200;
    out.push([
      {
        ...base(received),
        body: 'stopped',
        stopped: {
          transactionId: '1',
          idTag: 'TAG',
          meterStopWh: wh,
          timestampMs: at,
          reason: 'Local',
          transactionData: [register(at - 1000, wh)],
        },
      },
    ]);
  }
  return out;
}

const meta_of = (meter_start_wh: number): SessionMeta => ({
  session_id: 'CP1/1',
  charge_point_id: 'CP1',
  transaction_id: '1',
  connector_id: 1,
  evse_id: 0,
  id_tag: 'TAG',
  payment_method: 'RFID',
  party: '',
  started_at_ms: t0,
  meter_start_wh,
  tariff_id: 't',
  tariff_version: 1,
  time_zone: 'Europe/Amsterdam',
  power_w_max: 50_000,
});

interface Fact {
  seq: number;
  idx: number;
  event: OcppEvent;
}

/** Live: batches as delivered, a crash before the checkpoint where `crashes` says, facts logged. */
function live(
  meta: SessionMeta,
  stream: OcppEvent[][],
  cuts: number[],
  crashes: boolean[],
): { last: RatedVersion | undefined; facts: Fact[] } {
  // The start is the first message's only event (seq 1); the stream follows from seq 2.
  let state: SessionState = new_session_state(meta, 1, t0);
  const facts: Fact[] = [];
  const batches: { seq: number; events: OcppEvent[] }[][] = [];
  let batch: { seq: number; events: OcppEvent[] }[] = [];
  stream.forEach((events, i) => {
    batch.push({ seq: 2 + i, events });
    if (cuts.includes(i) || i === stream.length - 1) {
      batches.push(batch);
      batch = [];
    }
  });
  let last: RatedVersion | undefined;
  batches.forEach((messages_of_batch, b) => {
    const apply = () => {
      const session_events: SessionEvent[] = [];
      for (const m of messages_of_batch) {
        m.events.forEach((event, idx) => {
          session_events.push({ seq: m.seq, event });
          if (m.seq > state.last_seq) facts.push({ seq: m.seq, idx, event });
        });
      }
      return apply_session_events(state, session_events, tariff);
    };
    if (crashes[b % crashes.length]) apply(); // written, then the process died before the checkpoint
    const outcome = apply();
    state = outcome.state;
    last = outcome.rated.at(-1) ?? last;
    // A redelivery after the checkpoint (the ack was lost): changes nothing.
    const again = apply_session_events(
      state,
      messages_of_batch.flatMap((m) => m.events.map((event) => ({ seq: m.seq, event }))),
      tariff,
    );
    expect(again.rated).toEqual([]);
    expect(again.state.rater).toEqual(state.rater);
  });
  if (state.closed === 'open') {
    const closed = close_if_silent(state, Number.MAX_SAFE_INTEGER, tariff, default_session_rules);
    last = closed?.rated.at(-1) ?? last;
  }
  return { last, facts };
}

function rerated(meta: SessionMeta, facts: Fact[], provisional: boolean): RatedVersion | undefined {
  const one = new Map<string, Fact>();
  for (const f of facts) one.set(`${f.seq}/${f.idx}`, f);
  const events = [...one.values()]
    .sort((a, b) => a.seq - b.seq || a.idx - b.idx)
    .map((f) => ({ seq: f.seq, event: f.event }));
  return replay_session({ meta, seq: 1, received_at_ms: t0 }, events, tariff, default_session_rules, {
    close_provisionally: provisional,
    version_before: 0,
    total_before: null,
  }).version;
}

describe('live rating equals a re-rating from the stored facts', () => {
  it('to the cent, for random messy streams with redeliveries and crashes', () => {
    fc.assert(
      fc.property(
        fc.array(step, { minLength: 1, maxLength: 40 }),
        fc.constantFrom(-1, 0, 5_000, 1_000_000),
        fc.boolean(),
        fc.array(fc.integer({ min: 0, max: 45 }), { maxLength: 8 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 5 }),
        (steps, meter_start_wh, stopped, cuts, crashes) => {
          const meta = meta_of(meter_start_wh);
          const stream = messages(steps, meter_start_wh, stopped);
          if (stream.length === 0) return;
          const { last, facts } = live(meta, stream, cuts, crashes);
          const again = rerated(meta, facts, !stopped);
          expect(last).toBeDefined();
          expect(again).toBeDefined();
          expect(again!.rated).toEqual(last!.rated);
          expect(again!.meter_start_wh).toBe(last!.meter_start_wh);
          expect(again!.meter_stop_wh).toBe(last!.meter_stop_wh);
          expect(again!.review).toBe(last!.review);
          expect(again!.anomalies).toEqual(last!.anomalies);
        },
      ),
      { numRuns: 300 },
    );
  });
});
