import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import type { KV } from '@nats-io/kv';
import { type Nats, open_kv } from './nats.js';

/**
 * Charge point identities and their HTTP Basic passwords (OCPP 1.6 security whitepaper, security
 * profiles 1 and 2, A00.FR.203-205: username = charge point id, password = AuthorizationKey).
 * Passwords are stored only as salted scrypt hashes in NATS KV, shared by every ingest node.
 */
export const password_length_min = 16;
/** A00.FR.205: up to 20 bytes as 40 hexadecimal digits. */
export const password_length_max = 40;

interface StoredChargePoint {
  charge_point_id: string;
  scrypt_salt: string;
  scrypt_hash: string;
  updated_at_ms: number;
}

export type Verdict = 'accepted' | 'unknown' | 'rejected';

/**
 * What the operator assigns to a charge point: the tariff its sessions are priced with, the time
 * zone of its location (OCPI restrictions are local time), the station it belongs to and where it
 * is. Unset fields fall back to DEFAULT_TARIFF_ID, DEFAULT_TIME_ZONE and the charge point id.
 */
export interface ChargePointProfile {
  charge_point_id: string;
  tariff_id?: string;
  time_zone?: string;
  station_id?: string;
  /** The connector's maximum power, W: the bound on the energy a session can be billed for. */
  max_power_w?: number;
  /**
   * Set when the charger has a built-in payment terminal: the sessions it starts itself after its
   * terminal authorized a card carry the terminal's authorization reference, which begins with
   * `reference_prefix` (ingest/payment-terminal.ts). Absent: no token is a terminal reference here.
   */
  payment_terminal?: { reference_prefix: string };
  location?: {
    name?: string;
    address?: string;
    city?: string;
    postal_code?: string;
    /** ISO 3166-1 alpha-3, as OCPI Location.country. */
    country?: string;
    latitude?: string;
    longitude?: string;
  };
  updated_at_ms: number;
}

/** The prefix an operator gives a charger's terminal references (ingest/payment-terminal.ts). */
export const terminal_reference_prefix_pattern = /^[A-Za-z0-9._:-]{1,16}$/;

const profiles_cache_max = 100_000;
const profiles_cache_ttl_ms = 30_000;

const scrypt_key_bytes = 32;
const verified_cache_max = 100_000;
const verified_cache_ttl_ms = 60_000;

function derive(password: string, salt: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password, salt, scrypt_key_bytes, { N: 16384, r: 8, p: 1 }, (error, key) =>
      error ? reject(error) : resolve(key),
    ),
  );
}

function key_of(charge_point_id: string): string {
  return `cp.${Buffer.from(charge_point_id, 'utf8').toString('base64url')}`;
}

function profile_key_of(charge_point_id: string): string {
  return `pf.${Buffer.from(charge_point_id, 'utf8').toString('base64url')}`;
}

export class ChargePointRegistry {
  /** sha256(id, password) of recent successful checks: reconnect storms skip scrypt. */
  private readonly verified = new Map<string, number>();
  private readonly profiles = new Map<string, { profile: ChargePointProfile | undefined; at_ms: number }>();

  private constructor(private readonly kv: KV) {}

  async set_profile(profile: ChargePointProfile): Promise<void> {
    await this.kv.put(profile_key_of(profile.charge_point_id), JSON.stringify(profile));
    this.profiles.delete(profile.charge_point_id);
  }

  /** The profile, read from KV (not cached): for the API. */
  async profile(charge_point_id: string): Promise<ChargePointProfile | undefined> {
    const entry = await this.kv.get(profile_key_of(charge_point_id));
    return entry === null || entry.operation !== 'PUT' ? undefined : entry.json<ChargePointProfile>();
  }

  /** The profile through a cache: an assignment reaches every rating process within 30 s. */
  async cached_profile(charge_point_id: string): Promise<ChargePointProfile | undefined> {
    const now = Date.now();
    const cached = this.profiles.get(charge_point_id);
    if (cached !== undefined && now - cached.at_ms < profiles_cache_ttl_ms) return cached.profile;
    const profile = await this.profile(charge_point_id);
    if (this.profiles.size >= profiles_cache_max) this.profiles.clear();
    this.profiles.set(charge_point_id, { profile, at_ms: now });
    return profile;
  }

  /** Every registered or profiled charge point id, sorted (bounded by `max`). */
  async ids(max: number): Promise<string[]> {
    const ids = new Set<string>();
    for await (const key of await this.kv.keys()) {
      const dot = key.indexOf('.');
      ids.add(Buffer.from(key.slice(dot + 1), 'base64url').toString('utf8'));
      if (ids.size >= max) break;
    }
    return [...ids].sort();
  }

  static async open(nats: Nats): Promise<ChargePointRegistry> {
    return new ChargePointRegistry(await open_kv(nats, 'evrate_charge_points'));
  }

  async set_password(charge_point_id: string, password: string): Promise<void> {
    if (password.length < password_length_min || password.length > password_length_max) {
      throw new RangeError(`password must be ${password_length_min} to ${password_length_max} characters`);
    }
    const salt = randomBytes(16);
    const stored: StoredChargePoint = {
      charge_point_id,
      scrypt_salt: salt.toString('base64'),
      scrypt_hash: (await derive(password, salt)).toString('base64'),
      updated_at_ms: Date.now(),
    };
    await this.kv.put(key_of(charge_point_id), JSON.stringify(stored));
    this.verified.clear();
  }

  async exists(charge_point_id: string): Promise<boolean> {
    const entry = await this.kv.get(key_of(charge_point_id));
    return entry !== null && entry.operation === 'PUT';
  }

  async verify(charge_point_id: string, password: string | undefined): Promise<Verdict> {
    const entry = await this.kv.get(key_of(charge_point_id));
    if (entry === null || entry.operation !== 'PUT') return 'unknown';
    if (password === undefined) return 'rejected';
    const stored = JSON.parse(entry.string()) as StoredChargePoint;
    const cache_key = createHash('sha256')
      .update(`${charge_point_id}\u0000${password}\u0000${stored.scrypt_hash}`)
      .digest('base64');
    const seen = this.verified.get(cache_key);
    if (seen !== undefined && Date.now() - seen < verified_cache_ttl_ms) return 'accepted';
    const expected = Buffer.from(stored.scrypt_hash, 'base64');
    const actual = await derive(password, Buffer.from(stored.scrypt_salt, 'base64'));
    if (!timingSafeEqual(expected, actual)) return 'rejected';
    if (this.verified.size >= verified_cache_max) this.verified.clear();
    this.verified.set(cache_key, Date.now());
    return 'accepted';
  }
}

/** Parses `Authorization: Basic base64(id:password)`; undefined when absent or malformed. */
export function parse_basic_auth(header: string): { username: string; password: string } | undefined {
  const match = /^Basic ([A-Za-z0-9+/=]+)$/.exec(header.trim());
  if (match === null) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}
