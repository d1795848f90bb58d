import { createHash, randomBytes } from 'node:crypto';
import type { KV } from '@nats-io/kv';
import { type Nats, open_kv } from '../../core/nats.js';

/** OCPI 2.2.1 types.asciidoc Role. */
export type OcpiRole = 'CPO' | 'EMSP' | 'HUB' | 'NAP' | 'NSP' | 'OTHER' | 'SCSP';
export const ocpi_roles: readonly OcpiRole[] = ['CPO', 'EMSP', 'HUB', 'NAP', 'NSP', 'OTHER', 'SCSP'];

/** A party: OCPI country_code (CiString 2) and party_id (CiString 3), kept upper case. */
export interface Party {
  country_code: string;
  party_id: string;
}

/** credentials.asciidoc CredentialsRole. */
export interface CredentialsRole extends Party {
  role: OcpiRole;
  business_details: { name: string; website?: string };
}

/** version_information_endpoint.asciidoc Endpoint. */
export interface OcpiEndpoint {
  identifier: string;
  role: 'SENDER' | 'RECEIVER';
  url: string;
}

/**
 * A roaming partner. The operator creates it with the parties it may act for and gets
 * CREDENTIALS_TOKEN_A; the partner's POST /credentials exchanges it for its token B (which we
 * use to call it, so it is kept as is) and our token C. Of the tokens we issue only the SHA-256
 * is stored.
 */
export interface PartnerRecord {
  partner_id: string;
  /** Parties the operator allows this partner to act for; the handshake's roles must be among them. */
  parties: Party[];
  /** pending: token A issued; registered: handshake done; unregistered: DELETE received. */
  status: 'pending' | 'registered' | 'unregistered';
  /** SHA-256 (hex) of the token we issued that is valid now (A while pending, C once registered). */
  token_sha256: string;
  token_kind: 'A' | 'C';
  /**
   * SHA-256 of a new token C offered to the partner during an operator-initiated rotation: valid
   * beside token_sha256 until the partner has answered (it may call us with it meanwhile).
   */
  pending_token_sha256?: string;
  /** When the operator last rotated our token C (ms since the epoch). */
  rotated_at_ms?: number;
  /** CREDENTIALS_TOKEN_B: the token we send in our requests to the partner. */
  partner_token?: string;
  versions_url?: string;
  version?: string;
  endpoints?: OcpiEndpoint[];
  roles?: CredentialsRole[];
  created_at_ms: number;
  updated_at_ms: number;
}

export function token_sha256(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** 256 random bits, base64url: 43 printable non-whitespace ASCII characters (credentials: string(64)). */
export function new_credentials_token(): string {
  return randomBytes(32).toString('base64url');
}

export const partner_id_pattern = /^[A-Za-z0-9_.-]{1,64}$/;
export const partners_max = 10_000;

function partner_key(partner_id: string): string {
  return `p.${partner_id}`;
}

function hash_key(sha256_hex: string): string {
  return `h.${sha256_hex}`;
}

/**
 * Partners in NATS KV bucket `evrate_ocpi_partners`: `p.<partner id>` holds the record and
 * `h.<sha256 of a token we issued>` points at the partner, so a request's token is found with
 * two reads and no scan. The record is the truth: an index entry whose partner no longer holds
 * that token hash is ignored.
 */
export class PartnerRegistry {
  private constructor(private readonly kv: KV) {}

  static async open(nats: Nats): Promise<PartnerRegistry> {
    return new PartnerRegistry(await open_kv(nats, 'evrate_ocpi_partners'));
  }

  async get(partner_id: string): Promise<PartnerRecord | undefined> {
    if (!partner_id_pattern.test(partner_id)) return undefined;
    const entry = await this.kv.get(partner_key(partner_id));
    if (entry === null || entry.operation !== 'PUT') return undefined;
    return JSON.parse(entry.string()) as PartnerRecord;
  }

  /** The partner holding this credentials token (one we issued), or undefined. */
  async by_token(token: string): Promise<PartnerRecord | undefined> {
    const sha = token_sha256(token);
    const index = await this.kv.get(hash_key(sha));
    if (index === null || index.operation !== 'PUT') return undefined;
    const partner = await this.get(index.string());
    if (partner === undefined) return undefined;
    if (partner.token_sha256 !== sha && partner.pending_token_sha256 !== sha) return undefined;
    return partner;
  }

  async list(): Promise<PartnerRecord[]> {
    const records: PartnerRecord[] = [];
    for await (const key of await this.kv.keys('p.>')) {
      if (records.length >= partners_max) break;
      const entry = await this.kv.get(key);
      if (entry !== null && entry.operation === 'PUT')
        records.push(JSON.parse(entry.string()) as PartnerRecord);
    }
    return records.sort((a, b) => a.partner_id.localeCompare(b.partner_id));
  }

  /**
   * Creates a partner or restarts its onboarding with a fresh token A (any earlier token of ours
   * stops working). Returns token A in clear, the only time it exists outside the caller.
   */
  async issue_token_a(
    partner_id: string,
    parties: Party[],
  ): Promise<{ token_a: string; record: PartnerRecord }> {
    const previous = await this.get(partner_id);
    const token_a = new_credentials_token();
    const now = Date.now();
    const record: PartnerRecord = {
      partner_id,
      parties,
      status: 'pending',
      token_sha256: token_sha256(token_a),
      token_kind: 'A',
      created_at_ms: previous?.created_at_ms ?? now,
      updated_at_ms: now,
    };
    await this.save(record, previous);
    return { token_a, record };
  }

  /**
   * Starts a rotation: `token` is accepted beside the current one until `save` makes it the
   * current one, or abort_rotation drops it. Returns the record as written.
   */
  async offer_token(record: PartnerRecord, token: string): Promise<PartnerRecord> {
    const offered: PartnerRecord = { ...record, pending_token_sha256: token_sha256(token) };
    await this.kv.put(hash_key(offered.pending_token_sha256!), record.partner_id);
    await this.kv.put(partner_key(record.partner_id), JSON.stringify(offered));
    return offered;
  }

  /** Ends a rotation that failed: the offered token stops working, the current one stays. */
  async abort_rotation(offered: PartnerRecord): Promise<void> {
    const pending = offered.pending_token_sha256;
    const current = await this.get(offered.partner_id);
    if (current !== undefined && current.pending_token_sha256 === pending) {
      const { pending_token_sha256: _p, ...rest } = current;
      await this.kv.put(partner_key(offered.partner_id), JSON.stringify(rest));
    }
    if (pending !== undefined && current?.token_sha256 !== pending) await this.kv.delete(hash_key(pending));
  }

  /** Writes the record and moves the token index from the previous record's hash to the new one. */
  async save(record: PartnerRecord, previous: PartnerRecord | undefined): Promise<void> {
    await this.kv.put(hash_key(record.token_sha256), record.partner_id);
    await this.kv.put(partner_key(record.partner_id), JSON.stringify(record));
    if (previous !== undefined && previous.token_sha256 !== record.token_sha256) {
      await this.kv.delete(hash_key(previous.token_sha256));
    }
  }
}

/** The record without secrets, for the operator API. */
export function partner_view(record: PartnerRecord): Record<string, unknown> {
  const { token_sha256: _hash, pending_token_sha256: _pending, partner_token, ...rest } = record;
  return { ...rest, partner_token_set: partner_token !== undefined };
}

/** "CC*PID", the form of the rated_sessions `party` column. */
export function party_key(party: Party): string {
  return `${party.country_code.toUpperCase()}*${party.party_id.toUpperCase()}`;
}

/** The parties whose data this partner may see: its handshake roles, within what the operator allowed. */
export function partner_scope(record: PartnerRecord): Party[] {
  const allowed = new Set(record.parties.map(party_key));
  const seen = new Set<string>();
  const scope: Party[] = [];
  for (const role of record.roles ?? []) {
    const key = party_key(role);
    if (!allowed.has(key) || seen.has(key)) continue;
    seen.add(key);
    scope.push({ country_code: role.country_code.toUpperCase(), party_id: role.party_id.toUpperCase() });
  }
  return scope;
}
