import type { KV } from '@nats-io/kv';
import { type Nats, open_kv } from '../core/nats.js';
import { type Tariff, tariff_in_force, validate_tariff } from './tariff.js';

export interface TariffVersion {
  tariff_id: string;
  version: number;
  tariff: Tariff;
  created_at_ms: number;
}

function key_of(tariff_id: string): string {
  return `t.${Buffer.from(tariff_id, 'utf8').toString('base64url')}`;
}

const versions_cache_max = 10_000;
/** How many versions back a look-up by instant goes. */
const versions_scanned_max = 100;

/**
 * Tariffs by id, versioned, in NATS KV so that every process sees the same ones. A version, once
 * written, never changes: key "<id>.v<N>" is created once; "<id>.current" points at the newest.
 */
export class TariffStore {
  private readonly versions = new Map<string, TariffVersion>();

  private constructor(private readonly kv: KV) {}

  static async open(nats: Nats): Promise<TariffStore> {
    return new TariffStore(await open_kv(nats, 'evrate_tariffs'));
  }

  /** Stores a new version of a tariff and returns it; concurrent writers each get their own. */
  async put(tariff: Tariff): Promise<TariffVersion> {
    const key = key_of(tariff.id);
    for (let attempt = 0; attempt < 20; attempt++) {
      const current = await this.kv.get(`${key}.current`);
      const version = current === null || current.operation !== 'PUT' ? 1 : Number(current.string()) + 1;
      const entry: TariffVersion = { tariff_id: tariff.id, version, tariff, created_at_ms: Date.now() };
      try {
        await this.kv.create(`${key}.v${version}`, JSON.stringify(entry));
      } catch {
        continue; // another writer took this version number
      }
      if (current === null) await this.kv.put(`${key}.current`, String(version));
      else await this.kv.update(`${key}.current`, String(version), current.revision);
      return entry;
    }
    throw new Error(`tariff ${tariff.id}: too many concurrent updates`);
  }

  async version(tariff_id: string, version: number): Promise<TariffVersion | undefined> {
    const cache_key = `${tariff_id}\u0000${version}`;
    const cached = this.versions.get(cache_key);
    if (cached !== undefined) return cached;
    const entry = await this.kv.get(`${key_of(tariff_id)}.v${version}`);
    if (entry === null || entry.operation !== 'PUT') return undefined;
    const parsed = JSON.parse(entry.string()) as TariffVersion;
    validate_tariff(parsed.tariff);
    if (this.versions.size >= versions_cache_max) this.versions.clear();
    this.versions.set(cache_key, parsed);
    return parsed;
  }

  /** The current version of every tariff (bounded by `max`), by id. */
  async list(max: number): Promise<TariffVersion[]> {
    const ids: string[] = [];
    for await (const key of await this.kv.keys('t.*.current')) {
      ids.push(Buffer.from(key.slice(2, -'.current'.length), 'base64url').toString('utf8'));
      if (ids.length >= max) break;
    }
    ids.sort();
    const found = await Promise.all(ids.map((id) => this.current(id)));
    return found.filter((t): t is TariffVersion => t !== undefined);
  }

  /**
   * The version in force at an instant (a session's start): the newest version published at or
   * before it whose OCPI validity (`start_date_time` inclusive, `end_date_time` exclusive) holds
   * it, so a session started before a version was published is never priced by it, however late
   * its events are processed (a backlog, an offline queue). A tariff younger than the session (no
   * version published before it, e.g. a charger's offline queue older than the tariff assigned to
   * it since) applies as it is when the session is first rated: its newest valid version (the
   * choice is recorded with the session, so a re-rating replays it). Undefined when no version is
   * valid at the instant (ended, or not yet begun). Looks back at most `versions_scanned_max`.
   */
  async in_force_at(
    tariff_id: string,
    at_ms: number,
    head?: TariffVersion,
  ): Promise<TariffVersion | undefined> {
    const newest = head ?? (await this.current(tariff_id));
    if (newest === undefined) return undefined;
    const oldest = Math.max(1, newest.version - versions_scanned_max + 1);
    let newest_valid: TariffVersion | undefined;
    for (let version = newest.version; version >= oldest; version--) {
      const found = version === newest.version ? newest : await this.version(tariff_id, version);
      if (found === undefined || !tariff_in_force(found.tariff, at_ms)) continue;
      if (found.created_at_ms <= at_ms) return found;
      newest_valid ??= found;
    }
    return newest_valid;
  }

  async current(tariff_id: string): Promise<TariffVersion | undefined> {
    const current = await this.kv.get(`${key_of(tariff_id)}.current`);
    if (current === null || current.operation !== 'PUT') return undefined;
    return await this.version(tariff_id, Number(current.string()));
  }
}
