import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RatedSessionRow } from '../analytics/sessions.js';
import { run_ocpp16_session, TestCharger } from './helpers/charger.js';
import { api_get, eventually, start_test_stack } from './helpers/stack.js';

type Stack = Awaited<ReturnType<typeof start_test_stack>>;

/** Deterministic pseudo-random numbers (mulberry32), so a failing run can be replayed by seed. */
function random_source(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const frames_total = 100_000;
const window_frames = 12;

const ocpp16_codes = new Set([
  'NotImplemented',
  'NotSupported',
  'InternalError',
  'ProtocolError',
  'SecurityError',
  'FormationViolation',
  'PropertyConstraintViolation',
  'OccurenceConstraintViolation',
  'TypeConstraintViolation',
  'GenericError',
]);

const valid_payloads: [string, Record<string, unknown>][] = [
  ['Heartbeat', {}],
  ['BootNotification', { chargePointVendor: 'Acme', chargePointModel: 'F' }],
  ['StatusNotification', { connectorId: 1, errorCode: 'NoError', status: 'Available' }],
  ['Authorize', { idTag: 'TAG' }],
  [
    'MeterValues',
    { connectorId: 1, meterValue: [{ timestamp: '2026-11-20T10:00:00Z', sampledValue: [{ value: '1' }] }] },
  ],
];

const junk_values: unknown[] = [
  null,
  true,
  -1,
  1e308,
  '',
  'x'.repeat(600),
  '\u0000\uffff',
  [],
  {},
  [1, [2, [3]]],
  { $ref: '#' },
  '2026-13-45T99:99:99Z',
];

/**
 * One fuzz case: the frame text and what must come back. `expect_code` undefined means any
 * CALLRESULT or known CALLERROR is acceptable (mutations that may still be valid).
 */
interface FuzzCase {
  text: string;
  id: string;
  expect_code?: string;
}

function fuzz_case(random: () => number, n: number): FuzzCase {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  const id = `f${n}`;
  const [action, payload] = pick(valid_payloads);
  switch (Math.floor(random() * 8)) {
    case 0: {
      // Broken JSON: a valid frame cut short or with a byte flipped.
      const text = JSON.stringify([2, id, action, payload]);
      return {
        text: text.slice(0, Math.floor(random() * (text.length - 1))),
        id: '-1',
        expect_code: 'FormationViolation',
      };
    }
    case 1:
      // Not an array, or too short to carry an id.
      return {
        text: JSON.stringify(pick([{ id }, 'frame', 42, [2], [2, id]])),
        id: '-1',
        expect_code: 'FormationViolation',
      };
    case 2:
      // Unknown message type id.
      return {
        text: JSON.stringify([pick([0, 1, 5, 99, -2, '2']), id, action, payload]),
        id,
        expect_code: 'ProtocolError',
      };
    case 3:
      // An action that no version of OCPP has.
      return {
        text: JSON.stringify([2, id, `Fuzz${Math.floor(random() * 1e6)}`, {}]),
        id,
        expect_code: 'NotImplemented',
      };
    case 4: {
      // A field replaced by a value of another type.
      const broken: Record<string, unknown> = { ...payload };
      const keys = Object.keys(broken);
      if (keys.length === 0) broken.unexpected = pick(junk_values);
      else broken[pick(keys)] = pick(junk_values);
      return { text: JSON.stringify([2, id, action, broken]), id };
    }
    case 5: {
      // A required field removed.
      const keys = Object.keys(payload);
      if (keys.length === 0)
        return { text: JSON.stringify([2, id, action, { extra: 1 }]), id, expect_code: 'FormationViolation' };
      const broken: Record<string, unknown> = { ...payload };
      delete broken[pick(keys)];
      return {
        text: JSON.stringify([2, id, action, broken]),
        id,
        expect_code: 'OccurenceConstraintViolation',
      };
    }
    case 6:
      // Payload that is not an object.
      return {
        text: JSON.stringify([2, id, action, pick([null, [], 'x', 7])]),
        id,
        expect_code: 'FormationViolation',
      };
    default:
      // A valid CALL: must get its CALLRESULT.
      return { text: JSON.stringify([2, id, action, payload]), id, expect_code: 'result' };
  }
}

describe('OCPP fuzzing', () => {
  let stack: Stack;
  beforeAll(async () => {
    // The fuzzer pipelines frames far faster than any charger: the per-connection call rate limit
    // (tested in remote-commands.test.ts) would answer most of them with GenericError.
    stack = await start_test_stack({ OCPP_CALLS_PER_S_MAX: '1000000' });
  });
  afterAll(async () => {
    await stack?.dispose();
  });
  const ocpp = (id: string) => stack.ocpp_url.replace('{chargePointId}', id);

  it(`answers ${frames_total} random and mutated frames with the right CALLERROR, never crashing, other chargers unaffected`, async () => {
    const random = random_source(20261122);
    const fuzzer = await TestCharger.connect(ocpp('CP-FUZZ'));
    const bystander = await TestCharger.connect(ocpp('CP-BYSTANDER'));
    const answers = new Map<string, unknown[][]>();
    const waiters = new Map<string, (frame: unknown[]) => void>();
    fuzzer.socket.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as unknown[];
      const id = String(frame[1]);
      const waiter = waiters.get(id);
      if (waiter !== undefined) {
        waiters.delete(id);
        waiter(frame);
        return;
      }
      answers.set(id, [...(answers.get(id) ?? []), frame]);
    });
    const answer_to = (id: string): Promise<unknown[]> => {
      const arrived = answers.get(id)?.[0];
      if (arrived !== undefined) {
        answers.delete(id);
        return Promise.resolve(arrived);
      }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no answer to ${id}`)), 10_000);
        waiters.set(id, (frame) => {
          clearTimeout(timer);
          resolve(frame);
        });
      });
    };
    let unreadable_sent = 0;
    let checked = 0;
    let bystander_calls = 0;
    for (let start = 0; start < frames_total; start += window_frames) {
      const cases: FuzzCase[] = [];
      for (let n = start; n < Math.min(start + window_frames, frames_total); n++)
        cases.push(fuzz_case(random, n));
      for (const c of cases) {
        if (c.id === '-1') unreadable_sent++;
        fuzzer.socket.send(c.text);
      }
      // A barrier: the heartbeat's answer comes after every synchronous answer of the window.
      const barrier = `b${start}`;
      await fuzzer.raw(JSON.stringify([2, barrier, 'Heartbeat', {}]), barrier);
      for (const c of cases) {
        if (c.id === '-1') continue;
        const got = await answer_to(c.id);
        if (c.expect_code === 'result') expect(got[0], c.text).toBe(3);
        else if (c.expect_code !== undefined)
          expect(got.slice(0, 3), c.text).toEqual([4, c.id, c.expect_code]);
        else if (got[0] === 4) expect(ocpp16_codes.has(String(got[2])), c.text).toBe(true);
        else expect(got[0], c.text).toBe(3);
        checked++;
      }
      if (start % (window_frames * 500) === 0) {
        // Another charger, meanwhile, is served as usual.
        const answer = await bystander.call('Heartbeat', {});
        expect(typeof answer.currentTime).toBe('string');
        bystander_calls++;
      }
    }
    const unreadable_answers = answers.get('-1') ?? [];
    expect(unreadable_answers).toHaveLength(unreadable_sent);
    for (const frame of unreadable_answers) expect(frame[2]).toBe('FormationViolation');
    expect(checked + unreadable_sent).toBe(frames_total);
    expect(bystander_calls).toBeGreaterThan(10);

    // A frame over OCPP_FRAME_BYTES_MAX closes that connection only.
    const closed = new Promise<number>((resolve) => fuzzer.socket.once('close', (code) => resolve(code)));
    fuzzer.socket.send(
      JSON.stringify([2, 'huge', 'DataTransfer', { vendorId: 'x', data: 'y'.repeat(70_000) }]),
    );
    // uWS drops the socket (the client sees 1006) or closes it with 1009 (message too big).
    expect([1006, 1009]).toContain(await closed);
    expect(typeof (await bystander.call('Heartbeat', {})).currentTime).toBe('string');
    const again = await TestCharger.connect(ocpp('CP-FUZZ'));
    expect(
      (await again.call('BootNotification', { chargePointVendor: 'A', chargePointModel: 'B' })).status,
    ).toBe('Accepted');
    again.close();
    // Whatever the fuzzer got through validation did not jam the pipeline behind it.
    await run_ocpp16_session(bystander, {
      id_tag: 'BY',
      connector_id: 1,
      meter_start_wh: 0,
      meter_stop_wh: 2000,
      start: new Date('2026-11-20T10:00:00Z'),
      stop: new Date('2026-11-20T11:00:00Z'),
    });
    const rated = await eventually(async () => {
      const { body } = await api_get(stack, '/v1/sessions?charge_point_id=CP-BYSTANDER');
      return (body as { sessions: RatedSessionRow[] }).sessions[0];
    });
    expect(rated.energy_wh).toBe(2000);
    bystander.close();
  }, 600_000);
});
