import type { KV } from '@nats-io/kv';
import { type Nats, open_kv } from './nats.js';

/**
 * The token store: every idTag / idToken a charger may present (RFID cards, app users, ad-hoc
 * cards, roaming partners' tokens), shared by every ingest node through NATS KV and read through
 * a small per-process cache with a TTL. Fed by the operator API and by eMSPs over OCPI Tokens
 * (Receiver interface). Authorize, StartTransaction and TransactionEvent decisions come from here.
 */

/** OCPI 2.2.1 mod_tokens TokenType. */
export type TokenType = 'AD_HOC_USER' | 'APP_USER' | 'OTHER' | 'RFID';
/** OCPI 2.2.1 mod_tokens WhitelistType. */
export type Whitelist = 'ALWAYS' | 'ALLOWED' | 'ALLOWED_OFFLINE' | 'NEVER';

export interface TokenRecord {
  /** The id the charger sends (OCPP idTag / idToken.idToken, OCPI Token.uid). */
  uid: string;
  type: TokenType;
  contract_id: string;
  /** The party that issued the token (an eMSP, or our own party for operator tokens). */
  country_code: string;
  party_id: string;
  valid: boolean;
  whitelist: Whitelist;
  /** Membership plan of the driver, priced by the rating engine. */
  plan_id?: string;
  group_id?: string;
  /** Where the record came from: the operator API or a partner over OCPI. */
  source: 'operator' | 'ocpi';
  /** The OCPI Token object exactly as the partner sent it, when it came over OCPI. */
  ocpi?: unknown;
  /** RFC 3339. */
  last_updated: string;
}

/** OCPP AuthorizationStatus (1.6 IdTagInfo.status; 2.0.1 IdTokenInfo.status uses the same words). */
export type AuthorizationStatus = 'Accepted' | 'Blocked' | 'Expired' | 'Invalid' | 'ConcurrentTx';

export interface TokenDecision {
  status: AuthorizationStatus;
  /** The record the decision was made from; undefined for an unknown token. */
  token?: TokenRecord;
  /** A payment terminal's authorization reference on a charger with a terminal (ingest/payment-terminal.ts). */
  terminal?: true;
}

export interface TokenStoreOptions {
  cache_ttl_ms: number;
  cache_entries_max: number;
}

export const token_uid_length_max = 36;

function key_of(uid: string): string {
  return `t.${Buffer.from(uid, 'utf8').toString('base64url')}`;
}

export class TokenStore {
  private readonly cache = new Map<string, { record: TokenRecord | undefined; at_ms: number }>();

  private constructor(
    private readonly kv: KV,
    private readonly options: TokenStoreOptions,
  ) {}

  static async open(
    nats: Nats,
    options: TokenStoreOptions = { cache_ttl_ms: 30_000, cache_entries_max: 200_000 },
  ): Promise<TokenStore> {
    return new TokenStore(await open_kv(nats, 'evrate_tokens'), options);
  }

  async put(record: TokenRecord): Promise<void> {
    if (record.uid.length === 0 || record.uid.length > token_uid_length_max) {
      throw new RangeError(`uid must be 1 to ${token_uid_length_max} characters`);
    }
    await this.kv.put(key_of(record.uid), JSON.stringify(record));
    this.cache.delete(record.uid);
  }

  /** The stored record, read from KV (not cached): for the APIs. */
  async get(uid: string): Promise<TokenRecord | undefined> {
    if (uid.length === 0 || uid.length > token_uid_length_max) return undefined;
    const entry = await this.kv.get(key_of(uid));
    if (entry === null || entry.operation !== 'PUT') return undefined;
    return JSON.parse(entry.string()) as TokenRecord;
  }

  /** Every stored record (for listings; the store is sized for KV, not for analytics). */
  async list(): Promise<TokenRecord[]> {
    const records: TokenRecord[] = [];
    const keys = await this.kv.keys('t.>');
    for await (const key of keys) {
      const entry = await this.kv.get(key);
      if (entry !== null && entry.operation === 'PUT')
        records.push(JSON.parse(entry.string()) as TokenRecord);
    }
    return records;
  }

  /** The record through the cache: a change reaches every node within the cache TTL. */
  async lookup(uid: string): Promise<TokenRecord | undefined> {
    const now = Date.now();
    const cached = this.cache.get(uid);
    if (cached !== undefined && now - cached.at_ms < this.options.cache_ttl_ms) return cached.record;
    const record = await this.get(uid);
    if (this.cache.size >= this.options.cache_entries_max) this.cache.clear();
    this.cache.set(uid, { record, at_ms: now });
    return record;
  }

  /**
   * The decision for a token presented at a charger. Unknown tokens are Invalid unless
   * `accept_unknown` (free-vend sites); a token marked not valid is Blocked; a whitelist of NEVER
   * means the eMSP wants a real-time authorization we cannot ask for here, so it is Invalid.
   */
  async authorize(uid: string, accept_unknown: boolean): Promise<TokenDecision> {
    const token = await this.lookup(uid);
    if (token === undefined) return { status: accept_unknown ? 'Accepted' : 'Invalid' };
    if (!token.valid) return { status: 'Blocked', token };
    if (token.whitelist === 'NEVER') return { status: 'Invalid', token };
    return { status: 'Accepted', token };
  }
}
