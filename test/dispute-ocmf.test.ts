import { createPublicKey, generateKeyPairSync, getCurves, type KeyObject, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parse_ocmf, verify_ocmf } from '../billing/disputes/ocmf.js';
import { verify_meter_value } from '../billing/disputes/signed-values.js';
import { deadline_ms, parse_deadline_rules } from '../billing/disputes/workflow.js';

/**
 * OCMF records signed in the test with real keys on every curve OCMF table 22 names that the
 * disputes verify, and checked as they arrive from chargers: OCPP 2.0.1 SignedMeterValueType
 * (base64 OCMF) and OCPP 1.6 SignedData (the OCMF text). A changed byte fails; a key on another
 * curve or another meter's key fails; a reading whose OCPP value differs from the signed one fails.
 */
function key_pair(curve: string): { privateKey: KeyObject; spki_hex: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
  return { privateKey, spki_hex: publicKey.export({ format: 'der', type: 'spki' }).toString('hex') };
}

function ocmf(
  private_key: KeyObject,
  algorithm: string | undefined,
  rv: string,
  extra: Record<string, unknown> = {},
): string {
  // RV written as the meter writes it (two decimals kept), not as JSON.stringify would.
  const payload = `{"FV":"1.0","GI":"Test Charger","GS":"GW-1","PG":"T1","MV":"Test","MM":"M1","MS":"METER-1","IS":true,"IT":"ISO14443","ID":"04A1B2C3","RD":[{"TM":"2026-11-20T11:20:00,000+0100 S","TX":"C","RV":${rv},"RI":"1-b:1.8.0","RU":"kWh","RT":"AC","EF":"","ST":"G"}]${Object.keys(extra).length > 0 ? `,${JSON.stringify(extra).slice(1, -1)}` : ''}}`;
  const sd = sign('sha256', Buffer.from(payload, 'utf8'), { key: private_key, dsaEncoding: 'der' }).toString(
    'hex',
  );
  return `OCMF|${payload}|${JSON.stringify({ ...(algorithm === undefined ? {} : { SA: algorithm }), SD: sd })}`;
}

const curves = [
  ['prime256v1', 'ECDSA-secp256r1-SHA256'],
  ['secp384r1', 'ECDSA-secp384r1-SHA256'],
  ['brainpoolP256r1', 'ECDSA-brainpoolP256r1-SHA256'],
  ['brainpoolP256r1', 'ECDSA-brainpool256r1-SHA256'],
  ['brainpoolP384r1', 'ECDSA-brainpoolP384r1-SHA256'],
  ['brainpoolP384r1', 'ECDSA-brainpool384r1-SHA256'],
  ['secp256k1', 'ECDSA-secp256k1-SHA256'],
] as const;

describe('OCMF signed meter values', () => {
  it('has the brainpool curves in this OpenSSL', () => {
    expect(getCurves()).toEqual(
      expect.arrayContaining(['brainpoolP256r1', 'brainpoolP384r1', 'prime256v1', 'secp384r1']),
    );
  });

  for (const [curve, algorithm] of curves) {
    it(`verifies ${algorithm} and fails the same record with one byte changed`, () => {
      const { privateKey, spki_hex } = key_pair(curve);
      const text = ocmf(privateKey, algorithm, '12.50');
      const record = parse_ocmf(text);
      expect(record.algorithm).toBe(algorithm);
      expect(record.readings[0]).toMatchObject({
        value_text: '12.50',
        unit: 'kWh',
        time_status: 'S',
        transaction: 'C',
        status: 'G',
      });
      expect(record.readings[0]!.time_ms).toBe(Date.parse('2026-11-20T10:20:00Z'));
      const keys = [{ key_no: 1, public_key_spki_hex: spki_hex }];
      const v201 = verify_meter_value(
        {
          timestamp_ms: 0,
          measurand: 'Energy.Active.Import.Register',
          unit: 'kWh',
          value: '12.5',
          format: 'SignedData',
          signed_data: JSON.stringify({
            signedMeterData: Buffer.from(text).toString('base64'),
            signingMethod: algorithm,
            encodingMethod: 'OCMF',
            publicKey: Buffer.from(spki_hex, 'hex').toString('base64'),
          }),
        },
        keys,
      );
      expect(v201).toMatchObject({ status: 'verified', value_matches: true, embedded_key_differs: false });
      const tampered = text.replace('"RV":12.50', '"RV":12.40');
      expect(tampered).not.toBe(text);
      const failed = verify_meter_value(
        {
          timestamp_ms: 0,
          measurand: 'Energy.Active.Import.Register',
          unit: 'kWh',
          value: '12.4',
          format: 'SignedData',
          signed_data: tampered,
        },
        keys,
      );
      expect(failed.status).toBe('failed');
      expect(failed.detail).toMatch(/bad_signature/);
    });
  }

  it('takes the default algorithm (secp256r1) when SA is absent, and base64 signatures (SE)', () => {
    const { privateKey, spki_hex } = key_pair('prime256v1');
    const text = ocmf(privateKey, undefined, '3.00');
    const key = parse_ocmf(text);
    expect(key.algorithm).toBe('ECDSA-secp256r1-SHA256');
    const [head, payload, signature] = [
      text.slice(0, 4),
      text.slice(5, text.lastIndexOf('|')),
      JSON.parse(text.slice(text.lastIndexOf('|') + 1)),
    ];
    const b64 = `${head}|${payload}|${JSON.stringify({ SE: 'base64', SD: Buffer.from(signature.SD, 'hex').toString('base64') })}`;
    const keys = [{ key_no: 1, public_key_spki_hex: spki_hex }];
    const stored = {
      timestamp_ms: 0,
      measurand: 'Energy.Active.Import.Register',
      unit: 'Wh',
      value: '3000',
      format: 'SignedData',
    };
    expect(verify_meter_value({ ...stored, signed_data: text }, keys).status).toBe('verified');
    expect(verify_meter_value({ ...stored, signed_data: b64 }, keys).status).toBe('verified');
  });

  it('fails a record checked with another meter key or a key on another curve, and says when no key is registered', () => {
    const signer = key_pair('brainpoolP256r1');
    const other = key_pair('brainpoolP256r1');
    const p256 = key_pair('prime256v1');
    const text = ocmf(signer.privateKey, 'ECDSA-brainpoolP256r1-SHA256', '1.00');
    const record = parse_ocmf(text);
    const load = (hex: string) =>
      createPublicKey({ key: Buffer.from(hex, 'hex'), format: 'der', type: 'spki' });
    expect(verify_ocmf(record, load(signer.spki_hex))).toEqual({ ok: true });
    expect(verify_ocmf(record, load(other.spki_hex))).toEqual({ ok: false, problem: 'bad_signature' });
    expect(verify_ocmf(record, load(p256.spki_hex))).toEqual({ ok: false, problem: 'curve_mismatch' });
    const stored = {
      timestamp_ms: 0,
      measurand: 'Energy.Active.Import.Register',
      unit: 'kWh',
      value: '1',
      format: 'SignedData',
      signed_data: text,
    };
    expect(verify_meter_value(stored, []).status).toBe('no_key');
    // Signed 1.00 kWh, but the OCPP value says 2: the signature holds for another number.
    const mismatch = verify_meter_value({ ...stored, value: '2' }, [
      { key_no: 1, public_key_spki_hex: signer.spki_hex },
    ]);
    expect(mismatch).toMatchObject({ status: 'failed', value_matches: false });
    expect(verify_meter_value({ ...stored, signed_data: 'OCMF|{not json|{}' }, []).status).toBe('malformed');
    expect(verify_meter_value({ ...stored, signed_data: '' }, []).status).toBe('unsigned');
    expect(
      verify_meter_value(
        {
          ...stored,
          signed_data: JSON.stringify({ signedMeterData: 'AAAA', encodingMethod: 'EDL', signingMethod: '' }),
        },
        [],
      ).status,
    ).toBe('unsupported_encoding');
  });
});

describe('dispute deadlines in working days, in the operator time zone', () => {
  it('skips weekends and ends at local midnight', () => {
    // Friday 2026-11-20 16:00 in Amsterdam (15:00 UTC); 5 working days: Mon 23 .. Fri 27, ends at
    // the local midnight starting Saturday 28 (23:00 UTC on the 27th).
    const friday = Date.parse('2026-11-20T15:00:00Z');
    expect(new Date(deadline_ms(friday, 5, 'Europe/Amsterdam')).toISOString()).toBe(
      '2026-11-27T23:00:00.000Z',
    );
    // 1 working day from Friday: Monday, ends at Tuesday 00:00 local.
    expect(new Date(deadline_ms(friday, 1, 'Europe/Amsterdam')).toISOString()).toBe(
      '2026-11-23T23:00:00.000Z',
    );
    // The same instant is already Saturday in Auckland (04:00 on the 21st): Monday 23 there too,
    // but its midnight is 11:00 UTC on the 23rd (UTC+13 in summer).
    expect(new Date(deadline_ms(friday, 1, 'Pacific/Auckland')).toISOString()).toBe(
      '2026-11-23T11:00:00.000Z',
    );
    // 23:30 UTC on Thursday is Friday in Berlin: counting starts after Friday.
    expect(new Date(deadline_ms(Date.parse('2026-11-19T23:30:00Z'), 1, 'Europe/Berlin')).toISOString()).toBe(
      '2026-11-23T23:00:00.000Z',
    );
  });

  it('reads the rules per state and refuses unknown states', () => {
    expect(parse_deadline_rules('investigating=3')).toEqual({
      open: 1,
      investigating: 3,
      proposed_resolution: 10,
      escalated: 30,
    });
    expect(() => parse_deadline_rules('resolved=1')).toThrow(/resolved=1/);
  });
});
