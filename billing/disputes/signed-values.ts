import type { KeyObject } from 'node:crypto';
import { Decimal } from 'decimal.js';
import {
  curve_of_algorithm,
  OcmfError,
  type OcmfRecord,
  parse_ocmf,
  public_key_of,
  verify_ocmf,
} from './ocmf.js';

/**
 * A stored meter value's signed data, verified. What ingest keeps (ingest/ocpp201.ts,
 * ingest/ocpp16.ts): for OCPP 2.0.1 the SignedMeterValueType as JSON (2.0.1 part 2, 2.45:
 * signedMeterData base64 of the encoded data, signingMethod, encodingMethod, publicKey base64);
 * for OCPP 1.6 the SignedData value itself (1.6 section 7.43), an OCMF text in practice.
 *
 * A reading verifies only against a key registered for its meter (meter-keys.ts): a key carried
 * in the message proves nothing by itself (whoever altered the data can sign with their own key),
 * so it is only compared with the registered one.
 */
export interface StoredMeterValue {
  timestamp_ms: number;
  measurand: string;
  unit: string;
  value: string;
  format: string;
  signed_data: string;
}

export type VerificationStatus =
  | 'verified'
  | 'failed'
  | 'no_key'
  | 'unsupported_encoding'
  | 'unsupported_algorithm'
  | 'malformed'
  | 'unsigned';

export interface ReadingVerification {
  status: VerificationStatus;
  /** Why, in words, when not verified. */
  detail: string;
  encoding: string;
  algorithm: string;
  meter_serial: string;
  /** The OCMF readings of the record (time, its sync status, value, unit, meter status). */
  readings: {
    time: string;
    time_ms: number | null;
    time_status: string;
    value: string;
    unit: string;
    status: string;
    transaction: string;
  }[];
  /** The OCPP value equals a signed reading of the record (same quantity in Wh). */
  value_matches: boolean | null;
  /** The key in the message differs from the registered one. */
  embedded_key_differs: boolean;
}

export interface RegisteredKey {
  key_no: number;
  public_key_spki_hex: string;
}

function wh(value: string, unit: string): Decimal | undefined {
  try {
    if (unit === 'kWh') return new Decimal(value).mul(1000);
    if (unit === 'Wh') return new Decimal(value);
  } catch {
    return undefined;
  }
  return undefined;
}

interface Unwrapped {
  encoding: string;
  text: string;
  signing_method: string;
  public_key: string;
}

function unwrap(signed_data: string): Unwrapped | string {
  if (signed_data.startsWith('OCMF|'))
    return { encoding: 'OCMF', text: signed_data, signing_method: '', public_key: '' };
  if (signed_data.startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(signed_data);
    } catch {
      return 'signed data is neither OCMF nor JSON';
    }
    const s = parsed as Record<string, unknown>;
    if (typeof s.signedMeterData !== 'string') return 'SignedMeterValueType without signedMeterData';
    const data = Buffer.from(s.signedMeterData, 'base64').toString('utf8');
    return {
      encoding: typeof s.encodingMethod === 'string' ? s.encodingMethod : '',
      // Some chargers put the OCMF text itself, not base64 of it.
      text: s.signedMeterData.startsWith('OCMF|') ? s.signedMeterData : data,
      signing_method: typeof s.signingMethod === 'string' ? s.signingMethod : '',
      public_key: typeof s.publicKey === 'string' ? s.publicKey : '',
    };
  }
  const decoded = Buffer.from(signed_data, 'base64').toString('utf8');
  if (decoded.startsWith('OCMF|'))
    return { encoding: 'OCMF', text: decoded, signing_method: '', public_key: '' };
  return 'signed data in an unknown encoding';
}

function same_key(a: string, b: KeyObject): boolean {
  try {
    const der = (k: KeyObject) => k.export({ format: 'der', type: 'spki' }).toString('hex');
    return der(public_key_of(a)) === der(b);
  } catch {
    return false;
  }
}

export function verify_meter_value(
  value: StoredMeterValue,
  keys: readonly RegisteredKey[],
): ReadingVerification {
  const base: ReadingVerification = {
    status: 'unsigned',
    detail: '',
    encoding: '',
    algorithm: '',
    meter_serial: '',
    readings: [],
    value_matches: null,
    embedded_key_differs: false,
  };
  if (value.signed_data === '') return { ...base, detail: 'the reading carries no signed data' };
  const unwrapped = unwrap(value.signed_data);
  if (typeof unwrapped === 'string') return { ...base, status: 'unsupported_encoding', detail: unwrapped };
  base.encoding = unwrapped.encoding;
  if (unwrapped.encoding.toUpperCase() !== 'OCMF' || !unwrapped.text.startsWith('OCMF|')) {
    return {
      ...base,
      status: 'unsupported_encoding',
      detail: `encoding ${unwrapped.encoding || '(none)'} is not OCMF`,
    };
  }
  let record: OcmfRecord;
  try {
    record = parse_ocmf(unwrapped.text);
  } catch (error) {
    if (error instanceof OcmfError) return { ...base, status: 'malformed', detail: `OCMF ${error.message}` };
    throw error;
  }
  // 2.0.1 signingMethod may name the method when the data does not (OCMF SA absent means default).
  const algorithm =
    record.signature.SA === undefined && unwrapped.signing_method !== ''
      ? unwrapped.signing_method
      : record.algorithm;
  record = { ...record, algorithm };
  base.algorithm = algorithm;
  base.meter_serial = record.meter_serial;
  base.readings = record.readings.map((r) => ({
    time: r.time,
    time_ms: r.time_ms ?? null,
    time_status: r.time_status,
    value: r.value_text,
    unit: r.unit,
    status: r.status,
    transaction: r.transaction,
  }));
  const ocpp_wh = wh(value.value, value.unit);
  base.value_matches =
    ocpp_wh === undefined
      ? null
      : record.readings.some((r) => {
          const signed_wh = wh(r.value_text, r.unit);
          return signed_wh?.eq(ocpp_wh) === true;
        });
  if (curve_of_algorithm(algorithm) === undefined)
    return {
      ...base,
      status: 'unsupported_algorithm',
      detail: `signing method ${algorithm} is not one of OCMF table 22`,
    };
  if (keys.length === 0)
    return { ...base, status: 'no_key', detail: 'no public key is registered for this meter' };
  let last_problem = '';
  for (const registered of keys) {
    let key: KeyObject;
    try {
      key = public_key_of(registered.public_key_spki_hex);
    } catch {
      last_problem = `registered key ${registered.key_no} cannot be read`;
      continue;
    }
    const check = verify_ocmf(record, key);
    if (check.ok) {
      const embedded_key_differs = unwrapped.public_key !== '' && !same_key(unwrapped.public_key, key);
      if (base.value_matches === false)
        return {
          ...base,
          status: 'failed',
          embedded_key_differs,
          detail: `the signature holds but the OCPP value ${value.value} ${value.unit} is not a signed reading`,
        };
      return {
        ...base,
        status: 'verified',
        embedded_key_differs,
        detail: `verified with registered key ${registered.key_no}`,
      };
    }
    last_problem = check.problem;
  }
  return {
    ...base,
    status: 'failed',
    detail: `signature does not verify with a registered key (${last_problem})`,
  };
}
