import { FieldError } from '../../core/field-error.js';
import type { Ledger, Queryable } from '../ledger.js';
import { curve_of_key, public_key_of } from './ocmf.js';
import type { RegisteredKey } from './signed-values.js';

/**
 * The public keys of the chargers' meters, registered by the operator (OCMF "Relation of Serial
 * Numbers, Charge Point and Public Key": the key reaches the verifier out of band, never with the
 * data it verifies). Per charge point and EVSE (0: every EVSE of the charge point). A new key is
 * added beside the older ones, which keep verifying what was signed before a meter exchange.
 */
export interface MeterKeyRequest {
  charge_point_id: string;
  evse_id: number;
  /** DER SubjectPublicKeyInfo as hex or base64, or PEM. */
  public_key: string;
  meter_serial?: string;
}

export interface MeterKey {
  charge_point_id: string;
  evse_id: number;
  key_no: number;
  curve: string;
  public_key_spki_hex: string;
  meter_serial: string;
  registered_at_ms: number;
  registered_by: string;
}

/** OpenSSL names of the curves OCMF table 23 allows. */
const allowed_curves = new Set([
  'secp192k1',
  'secp256k1',
  'prime192v1',
  'prime256v1',
  'brainpoolP256r1',
  'secp384r1',
  'brainpoolP384r1',
]);
export const meter_keys_per_evse_max = 20;

export function validate_meter_key(body: unknown, charge_point_id: string, evse_id: number): MeterKeyRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new FieldError('(body)', 'must be a JSON object');
  const b = body as Record<string, unknown>;
  if (!/^[\x21-\x7e]{1,64}$/.test(charge_point_id))
    throw new FieldError('charge_point_id', 'must be 1 to 64 printable characters');
  if (!Number.isInteger(evse_id) || evse_id < 0 || evse_id > 1000)
    throw new FieldError('evse_id', 'must be an integer from 0 to 1000');
  if (typeof b.public_key !== 'string' || b.public_key.length < 16 || b.public_key.length > 4000)
    throw new FieldError('public_key', 'must be a DER SubjectPublicKeyInfo (hex or base64) or PEM');
  if (b.meter_serial !== undefined && (typeof b.meter_serial !== 'string' || b.meter_serial.length > 64))
    throw new FieldError('meter_serial', 'must be a string of at most 64 characters');
  return {
    charge_point_id,
    evse_id,
    public_key: b.public_key,
    ...(b.meter_serial === undefined ? {} : { meter_serial: b.meter_serial as string }),
  };
}

export async function register_meter_key(
  ledger: Ledger,
  request: MeterKeyRequest,
  registered_by: string,
  now_ms = Date.now(),
): Promise<MeterKey> {
  let der_hex: string;
  let curve: string;
  try {
    const key = public_key_of(request.public_key);
    curve = curve_of_key(key);
    der_hex = key.export({ format: 'der', type: 'spki' }).toString('hex');
  } catch {
    throw new FieldError(
      'public_key',
      'is not a readable public key (DER SubjectPublicKeyInfo in hex or base64, or PEM)',
    );
  }
  if (!allowed_curves.has(curve))
    throw new FieldError(
      'public_key',
      `must be an EC key on a curve OCMF allows, not ${curve || 'a non-EC key'}`,
    );
  return await ledger.transaction(async (tx) => {
    // Serializes two registrations for one meter so both get their own number.
    await tx.query('SELECT pg_advisory_xact_lock(7245201, hashtext($1))', [
      `${request.charge_point_id}#${request.evse_id}`,
    ]);
    const held = await tx.query<{ key_no: number; public_key_spki_hex: string }>(
      'SELECT key_no, public_key_spki_hex FROM meter_keys WHERE charge_point_id = $1 AND evse_id = $2 ORDER BY key_no',
      [request.charge_point_id, request.evse_id],
    );
    const same = held.find((k) => k.public_key_spki_hex === der_hex);
    if (same !== undefined) {
      const [row] = await tx.query<MeterKey>(
        'SELECT * FROM meter_keys WHERE charge_point_id = $1 AND evse_id = $2 AND key_no = $3',
        [request.charge_point_id, request.evse_id, same.key_no],
      );
      return row!;
    }
    if (held.length >= meter_keys_per_evse_max)
      throw new FieldError('public_key', `at most ${meter_keys_per_evse_max} keys per EVSE`);
    const [row] = await tx.query<MeterKey>(
      `INSERT INTO meter_keys (charge_point_id, evse_id, key_no, public_key_spki_hex, curve, meter_serial, registered_at_ms, registered_by)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *`,
      [
        request.charge_point_id,
        request.evse_id,
        (held[held.length - 1]?.key_no ?? 0) + 1,
        der_hex,
        curve,
        request.meter_serial ?? '',
        now_ms,
        registered_by,
      ],
    );
    return row!;
  });
}

/** The keys that may have signed a reading of this EVSE: its own, newest first, then the charge point's. */
export async function keys_for(
  tx: Queryable,
  charge_point_id: string,
  evse_id: number,
): Promise<RegisteredKey[]> {
  return await tx.query<RegisteredKey>(
    `SELECT key_no, public_key_spki_hex FROM meter_keys WHERE charge_point_id = $1 AND evse_id IN ($2, 0)
     ORDER BY evse_id DESC, key_no DESC`,
    [charge_point_id, evse_id],
  );
}

export async function list_meter_keys(ledger: Ledger, charge_point_id?: string): Promise<MeterKey[]> {
  return await ledger.query<MeterKey>(
    `SELECT * FROM meter_keys WHERE ($1::text IS NULL OR charge_point_id = $1) ORDER BY charge_point_id, evse_id, key_no LIMIT 1000`,
    [charge_point_id ?? null],
  );
}
