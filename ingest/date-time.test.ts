import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { is_date_time } from './date-time.js';

// ajv-formats' own decision, as the reference.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const reference_ajv = new Ajv();
addFormats(reference_ajv);
const reference = reference_ajv.compile({ type: 'string', format: 'date-time' });

describe('date-time format', () => {
  it('decides like ajv-formats on hand-picked cases', () => {
    const cases: [string, boolean][] = [
      ['2026-11-24T15:39:02Z', true],
      ['2026-11-24T15:39:02.123456Z', true],
      ['2026-11-24t15:39:02z', true],
      ['2026-11-24 15:39:02+01:00', true],
      ['2026-11-24T15:39:02+0100', true],
      ['2026-11-24T15:39:02+01', true],
      ['2026-11-24T15:39:02', false], // no zone
      ['2024-02-29T00:00:00Z', true],
      ['2023-02-29T00:00:00Z', false],
      ['2000-02-29T00:00:00Z', true],
      ['1900-02-29T00:00:00Z', false],
      ['2026-04-31T00:00:00Z', false],
      ['2026-13-01T00:00:00Z', false],
      ['2026-00-01T00:00:00Z', false],
      ['2026-01-00T00:00:00Z', false],
      ['2026-01-01T24:00:00Z', false],
      ['2026-01-01T23:60:00Z', false],
      ['2016-12-31T23:59:60Z', true], // leap second
      ['2016-12-31T23:59:60.5Z', true],
      ['2016-12-31T22:59:60Z', false],
      ['2017-01-01T00:59:60+01:00', true], // 23:59:60 UTC
      ['2016-12-31T18:59:60-05:00', true],
      ['2016-12-31T23:59:61Z', false],
      ['2026-01-01T00:00:00+24:00', false],
      ['2026-01-01T00:00:00+01:60', false],
      ['2026-01-01T00:00:00.Z', false],
      ['2026-01-01T00:00:00+1:00', false],
      ['2026-01-01TT00:00:00Z', false],
      ['2026-01-01T00:00:00Z ', false],
      ['26-01-01T00:00:00Z', false],
      ['', false],
    ];
    for (const [text, valid] of cases) {
      expect(reference(text), `ajv-formats on ${text}`).toBe(valid);
      expect(is_date_time(text), text).toBe(valid);
    }
  });

  it('decides like ajv-formats on 200,000 mutated timestamps', () => {
    let seed = 42;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed / 2_147_483_648;
    };
    const bases = ['2016-12-31T23:59:60Z', '2024-02-29T12:34:56.789+05:30', '2026-11-24 00:00:00-0800'];
    const alphabet = '0123456789-:.+TtZz \t9560';
    let valid_seen = 0;
    for (let n = 0; n < 200_000; n++) {
      const chars = [...bases[n % bases.length]!];
      const edits = 1 + Math.floor(random() * 3);
      for (let e = 0; e < edits; e++) {
        const at = Math.floor(random() * (chars.length + 1));
        const c = alphabet[Math.floor(random() * alphabet.length)]!;
        const op = random();
        if (op < 0.6) chars[at] = c;
        else if (op < 0.8) chars.splice(at, 0, c);
        else chars.splice(at, 1);
      }
      const text = chars.join('');
      const expected = reference(text);
      if (expected) valid_seen++;
      if (is_date_time(text) !== expected) expect.fail(`differs from ajv-formats on ${JSON.stringify(text)}`);
    }
    // The mutations must reach both answers for the comparison to mean anything.
    expect(valid_seen).toBeGreaterThan(10_000);
    expect(valid_seen).toBeLessThan(190_000);
  });
});
