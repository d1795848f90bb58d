import type { KV } from '@nats-io/kv';
import type { Logger } from '../core/log.js';
import { type Nats, open_kv } from '../core/nats.js';

/**
 * Which rating process owns which partition. Every process keeps a membership entry alive in a KV
 * bucket with a TTL; partition p belongs to the p-th member modulo the member count (members in
 * id order), so the assignment is the same in every process and moves only when a process joins
 * or dies. A process owns a partition while it holds its lease: a KV entry created with `create`
 * (fails while another holds it) and renewed with a compare-and-set on its revision. A process that
 * dies stops renewing, its entries expire after the TTL, and the next owner resumes the partition
 * from the session states in KV and the unacknowledged messages of the partition's consumer.
 */
export interface LeaseOptions {
  process_id: string;
  partitions: number;
  ttl_ms: number;
}

export class PartitionLeases {
  private readonly held = new Map<number, number>();

  private constructor(
    private readonly members: KV,
    private readonly leases: KV,
    private readonly options: LeaseOptions,
    private readonly log: Logger,
  ) {}

  static async open(nats: Nats, options: LeaseOptions, log: Logger): Promise<PartitionLeases> {
    const members = await open_kv(nats, 'evrate_rating_members', { ttl_ms: options.ttl_ms });
    const leases = await open_kv(nats, 'evrate_rating_leases', { ttl_ms: options.ttl_ms });
    return new PartitionLeases(members, leases, options, log);
  }

  /** Partitions this process should own now, given the live members. */
  async desired(): Promise<Set<number>> {
    await this.members.put(`m.${this.options.process_id}`, String(Date.now()));
    const ids: string[] = [];
    for await (const key of await this.members.keys('m.*')) ids.push(key.slice(2));
    ids.sort();
    const me = ids.indexOf(this.options.process_id);
    const desired = new Set<number>();
    for (let p = 0; p < this.options.partitions; p++) if (p % ids.length === me) desired.add(p);
    return desired;
  }

  owned(): Set<number> {
    return new Set(this.held.keys());
  }

  /** Claims a free partition; false when another process still holds it. */
  async claim(partition: number): Promise<boolean> {
    try {
      const revision = await this.leases.create(`p.${partition}`, this.options.process_id);
      this.held.set(partition, revision);
      this.log.info({ partition }, 'partition lease claimed');
      return true;
    } catch {
      return false;
    }
  }

  /** Renews every held lease; returns the partitions whose lease was lost (taken or expired). */
  async renew(): Promise<number[]> {
    const lost: number[] = [];
    for (const [partition, revision] of [...this.held]) {
      try {
        const next = await this.leases.update(`p.${partition}`, this.options.process_id, revision);
        // Released while the update was in flight: the release wins, the entry is not held again.
        if (this.held.get(partition) === revision) this.held.set(partition, next);
      } catch (error) {
        if (this.held.get(partition) !== revision) continue;
        this.log.warn({ partition, err: error }, 'partition lease lost');
        this.held.delete(partition);
        lost.push(partition);
      }
    }
    return lost;
  }

  async release(partition: number): Promise<void> {
    const revision = this.held.get(partition);
    this.held.delete(partition);
    if (revision === undefined) return;
    let expired = false;
    try {
      await this.leases.delete(`p.${partition}`, { previousSeq: revision });
    } catch {
      // Already expired or taken: nothing to give back, but this process holds it no more.
      expired = true;
    }
    this.log.info({ partition, expired }, 'partition lease released');
  }

  async leave(): Promise<void> {
    for (const partition of [...this.held.keys()]) await this.release(partition);
    await this.members.delete(`m.${this.options.process_id}`).catch(() => {});
  }
}
