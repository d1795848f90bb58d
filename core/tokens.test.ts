import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { start_test_nats } from '../test/helpers/nats.js';
import { type TokenRecord, TokenStore } from './tokens.js';

function token(uid: string, patch: Partial<TokenRecord> = {}): TokenRecord {
  return {
    uid,
    type: 'RFID',
    contract_id: `NL-TNM-C${uid}`,
    country_code: 'NL',
    party_id: 'TNM',
    valid: true,
    whitelist: 'ALLOWED',
    source: 'ocpi',
    last_updated: '2026-11-23T00:00:00Z',
    ...patch,
  };
}

describe('token store (real NATS KV)', () => {
  let env: Awaited<ReturnType<typeof start_test_nats>>;
  let store: TokenStore;
  beforeAll(async () => {
    env = await start_test_nats();
    store = await TokenStore.open(env.nats, { cache_ttl_ms: 200, cache_entries_max: 10 });
  });
  afterAll(async () => env?.dispose());

  it('accepts a valid token, blocks an invalid one, and rejects unknown unless told otherwise', async () => {
    await store.put(token('04A1B2C3'));
    await store.put(token('DEADBEEF', { valid: false }));
    await store.put(token('NEVERTOK', { whitelist: 'NEVER' }));
    expect((await store.authorize('04A1B2C3', false)).status).toBe('Accepted');
    expect((await store.authorize('DEADBEEF', false)).status).toBe('Blocked');
    expect((await store.authorize('NEVERTOK', false)).status).toBe('Invalid');
    expect(await store.authorize('UNKNOWN1', false)).toEqual({ status: 'Invalid' });
    expect(await store.authorize('UNKNOWN1', true)).toEqual({ status: 'Accepted' });
  });

  it('keeps uids with any characters apart and round-trips the record', async () => {
    const odd = token('a b/ü"\\.*>', { plan_id: 'gold', ocpi: { uid: 'a b/ü"\\.*>', extra: [1] } });
    await store.put(odd);
    expect(await store.get('a b/ü"\\.*>')).toEqual(odd);
    expect(await store.get('a b/ü"\\.*')).toBeUndefined();
    expect((await store.list()).map((t) => t.uid)).toContain('a b/ü"\\.*>');
  });

  it('sees a change made by another node once the cache TTL has passed', async () => {
    const other = await TokenStore.open(env.nats, { cache_ttl_ms: 60_000, cache_entries_max: 10 });
    await store.put(token('CACHED01'));
    expect((await store.authorize('CACHED01', false)).status).toBe('Accepted');
    await other.put(token('CACHED01', { valid: false }));
    expect((await store.authorize('CACHED01', false)).status).toBe('Accepted');
    await new Promise((r) => setTimeout(r, 250));
    expect((await store.authorize('CACHED01', false)).status).toBe('Blocked');
  });

  it('refuses an empty or over-long uid', async () => {
    await expect(store.put(token(''))).rejects.toThrow(/uid must be 1 to 36/);
    await expect(store.put(token('x'.repeat(37)))).rejects.toThrow(/uid must be 1 to 36/);
  });
});
