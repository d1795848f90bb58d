import { createPublicKey, type KeyObject, verify } from 'node:crypto';

/**
 * OCMF (Open Charge Metering Format, SAFE e.V.): `OCMF|{payload}|{signature}`. The signature is
 * over the payload section exactly as the meter wrote it (its bytes between the two separators),
 * never over a re-serialized JSON: OCMF "Reading Value" warns that rewriting a number changes it.
 *
 * Signature section (OCMF "Signed Data", table 8): SA the algorithm (default
 * ECDSA-secp256r1-SHA256), SE the encoding of SD (hex, the default, or base64), SM its MIME type
 * (application/x-der, the only one), SD the signature. Table 22 lists the algorithms; every one
 * hashes with SHA-256, also on the 384-bit curves.
 */
export interface OcmfReading {
  /** TM as written, e.g. `2018-07-24T13:22:04,000+0200 S`. */
  time: string;
  time_ms: number | undefined;
  /** Table 19: U unknown/unsynchronized, I informative, S synchronized, R relative. */
  time_status: string;
  /** TX (B begin, C charging, E end...), carried over from the previous reading when omitted. */
  transaction: string;
  /** RV verbatim as the JSON text had it. */
  value_text: string;
  unit: string;
  /** ST: meter status (G good, M manipulated...). */
  status: string;
  error_flags: string;
}

export interface OcmfRecord {
  payload_text: string;
  payload: Record<string, unknown>;
  signature: Record<string, unknown>;
  algorithm: string;
  readings: OcmfReading[];
  meter_serial: string;
}

export class OcmfError extends Error {}

/** OCMF table 22 identifiers (the spec writes brainpool256r1; OCPP and vendors write brainpoolP256r1). */
const curves: Record<string, string> = {
  'ECDSA-secp192k1-SHA256': 'secp192k1',
  'ECDSA-secp256k1-SHA256': 'secp256k1',
  'ECDSA-secp192r1-SHA256': 'prime192v1',
  'ECDSA-secp256r1-SHA256': 'prime256v1',
  'ECDSA-brainpool256r1-SHA256': 'brainpoolP256r1',
  'ECDSA-brainpoolP256r1-SHA256': 'brainpoolP256r1',
  'ECDSA-secp384r1-SHA256': 'secp384r1',
  'ECDSA-brainpool384r1-SHA256': 'brainpoolP384r1',
  'ECDSA-brainpoolP384r1-SHA256': 'brainpoolP384r1',
};

export const ocmf_default_algorithm = 'ECDSA-secp256r1-SHA256';

/** The OpenSSL curve name of an OCMF/OCPP signing method, undefined when not one we know. */
export function curve_of_algorithm(algorithm: string): string | undefined {
  return curves[algorithm];
}

const ocmf_text_bytes_max = 64 * 1024;

/** `2018-07-24T13:22:04,000+0200` to epoch ms. */
function time_ms_of(tm: string): number | undefined {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}),(\d{3})([+-])(\d{2})(\d{2})$/.exec(tm);
  if (m === null) return undefined;
  const ms = Date.parse(`${m[1]}.${m[2]}${m[3]}${m[4]}:${m[5]}`);
  return Number.isNaN(ms) ? undefined : ms;
}

/**
 * RV keeps its digits: the JSON text of each reading's RV, in order. JSON.parse would turn 2935.60
 * into 2935.6, so the numbers are read from the text itself.
 */
function rv_texts(payload_text: string): string[] {
  return [...payload_text.matchAll(/"RV"\s*:\s*(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g)].map((m) => m[1]!);
}

export function parse_ocmf(text: string): OcmfRecord {
  if (text.length > ocmf_text_bytes_max) throw new OcmfError(`longer than ${ocmf_text_bytes_max} characters`);
  if (!text.startsWith('OCMF|')) throw new OcmfError('does not start with OCMF|');
  const last = text.lastIndexOf('|');
  if (last <= 4) throw new OcmfError('has no signature section');
  const payload_text = text.slice(5, last);
  let payload: unknown;
  let signature: unknown;
  try {
    payload = JSON.parse(payload_text);
    signature = JSON.parse(text.slice(last + 1));
  } catch {
    throw new OcmfError('payload or signature section is not JSON');
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload))
    throw new OcmfError('payload section is not a JSON object');
  if (typeof signature !== 'object' || signature === null || Array.isArray(signature))
    throw new OcmfError('signature section is not a JSON object');
  const p = payload as Record<string, unknown>;
  const s = signature as Record<string, unknown>;
  if (typeof s.SD !== 'string' || s.SD.length === 0) throw new OcmfError('signature section has no SD');
  const rd = Array.isArray(p.RD) ? (p.RD as Record<string, unknown>[]) : [];
  const values = rv_texts(payload_text);
  const readings: OcmfReading[] = [];
  // OCMF "Readings": a field equal to the previous reading's may be omitted within a record.
  let previous: OcmfReading | undefined;
  for (let i = 0; i < rd.length; i++) {
    const r = rd[i] ?? {};
    const tm = typeof r.TM === 'string' ? r.TM : (previous?.time ?? '');
    const [clock, status = ''] = tm.split(' ');
    const reading: OcmfReading = {
      time: tm,
      time_ms: time_ms_of(clock ?? ''),
      time_status: status,
      transaction: typeof r.TX === 'string' ? r.TX : (previous?.transaction ?? ''),
      value_text: values[i] ?? (r.RV === undefined ? '' : String(r.RV)),
      unit: typeof r.RU === 'string' ? r.RU : (previous?.unit ?? ''),
      status: typeof r.ST === 'string' ? r.ST : (previous?.status ?? ''),
      error_flags: typeof r.EF === 'string' ? r.EF : '',
    };
    readings.push(reading);
    previous = reading;
  }
  return {
    payload_text,
    payload: p,
    signature: s,
    algorithm: typeof s.SA === 'string' && s.SA !== '' ? s.SA : ocmf_default_algorithm,
    readings,
    meter_serial: typeof p.MS === 'string' ? p.MS : '',
  };
}

/** A public key given as DER SubjectPublicKeyInfo in hex or base64, or as PEM. */
export function public_key_of(text: string): KeyObject {
  const trimmed = text.trim();
  if (trimmed.startsWith('-----BEGIN')) return createPublicKey({ key: trimmed, format: 'pem' });
  const der = /^[0-9a-fA-F]+$/.test(trimmed) ? Buffer.from(trimmed, 'hex') : Buffer.from(trimmed, 'base64');
  return createPublicKey({ key: der, format: 'der', type: 'spki' });
}

export function curve_of_key(key: KeyObject): string {
  return key.asymmetricKeyType === 'ec' ? String(key.asymmetricKeyDetails?.namedCurve ?? '') : '';
}

export type SignatureCheck =
  | { ok: true }
  | {
      ok: false;
      problem: 'unsupported_algorithm' | 'curve_mismatch' | 'malformed_signature' | 'bad_signature';
    };

/** Checks the record's signature with `key` (already registered for the meter). */
export function verify_ocmf(record: OcmfRecord, key: KeyObject): SignatureCheck {
  const curve = curve_of_algorithm(record.algorithm);
  if (curve === undefined) return { ok: false, problem: 'unsupported_algorithm' };
  if (curve_of_key(key) !== curve) return { ok: false, problem: 'curve_mismatch' };
  const encoding = record.signature.SE ?? 'hex';
  const sd = String(record.signature.SD);
  if (record.signature.SM !== undefined && record.signature.SM !== 'application/x-der')
    return { ok: false, problem: 'malformed_signature' };
  let signature: Buffer;
  if (encoding === 'hex' && /^([0-9a-fA-F]{2})+$/.test(sd)) signature = Buffer.from(sd, 'hex');
  else if (encoding === 'base64' && /^[A-Za-z0-9+/]+={0,2}$/.test(sd)) signature = Buffer.from(sd, 'base64');
  else return { ok: false, problem: 'malformed_signature' };
  try {
    const good = verify(
      'sha256',
      Buffer.from(record.payload_text, 'utf8'),
      { key, dsaEncoding: 'der' },
      signature,
    );
    return good ? { ok: true } : { ok: false, problem: 'bad_signature' };
  } catch {
    // A DER structure OpenSSL cannot read is a malformed signature, not a crash.
    return { ok: false, problem: 'malformed_signature' };
  }
}
