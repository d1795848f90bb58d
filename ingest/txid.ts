import { createHash } from 'node:crypto';
import type { KV } from '@nats-io/kv';
import { type Nats, open_kv } from '../core/nats.js';

const block_size = 1000;
/** How long a StartTransaction's id is remembered for its retries. */
const start_ids_ttl_ms = 24 * 3600 * 1000;
/** OCPP 1.6 transactionId is a JSON integer; chargers commonly store it in 32 bits. */
const transaction_id_max = 2 ** 31 - 1;

/**
 * OCPP 1.6 transaction ids, unique across all ingest nodes: each node reserves blocks of ids
 * from one NATS KV counter with compare-and-set, then hands them out locally.
 */
export class TransactionIdAllocator {
  private next = 0;
  private end = 0;
  private refill: Promise<void> | undefined;

  private constructor(
    private readonly kv: KV,
    private readonly starts: KV,
  ) {}

  static async open(nats: Nats): Promise<TransactionIdAllocator> {
    return new TransactionIdAllocator(
      await open_kv(nats, 'evrate_ids'),
      await open_kv(nats, 'evrate_start_ids', { ttl_ms: start_ids_ttl_ms }),
    );
  }

  /**
   * The id of one StartTransaction, the same for every retry of it. A charger retries a CALL it
   * got no answer to with the same message id and payload (OCPP-J 1.6 section 4.1.1), also after
   * reconnecting, possibly to another ingest node after this one died: the first allocation is
   * recorded under the start's key, so the retry gets the id the event already carries instead of
   * opening a second session that would never stop.
   */
  async allocate_for(start_key: string): Promise<number> {
    const key = `s.${createHash('sha256').update(start_key).digest('base64url')}`;
    const known = await this.starts.get(key);
    if (known !== null && known.operation === 'PUT') return Number(known.string());
    const id = await this.allocate();
    try {
      await this.starts.create(key, String(id));
      return id;
    } catch (error) {
      // A concurrent retry recorded its id first: use that one (this id stays unused). No record
      // means the create itself failed (NATS unreachable a moment): that error, to be retried.
      const winner = await this.starts.get(key);
      if (winner === null || winner.operation !== 'PUT') throw error;
      return Number(winner.string());
    }
  }

  async allocate(): Promise<number> {
    while (this.next >= this.end) {
      this.refill ??= this.reserve().finally(() => {
        this.refill = undefined;
      });
      await this.refill;
    }
    return this.next++;
  }

  private async reserve(): Promise<void> {
    for (let attempt = 0; attempt < 100; attempt++) {
      const entry = await this.kv.get('ocpp16.transaction_id');
      const start = entry === null ? 1 : Number(entry.string());
      const end = start + block_size;
      if (end > transaction_id_max) throw new Error('OCPP 1.6 transaction ids exhausted');
      try {
        if (entry === null) await this.kv.create('ocpp16.transaction_id', String(end));
        else await this.kv.update('ocpp16.transaction_id', String(end), entry.revision);
      } catch {
        continue; // another node reserved this block first
      }
      this.next = start;
      this.end = end;
      return;
    }
    throw new Error('could not reserve a block of transaction ids');
  }
}
