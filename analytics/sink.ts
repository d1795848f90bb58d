import { Counter } from 'prom-client';
import { metrics_registry } from '../core/metrics.js';
import { insert_or_quarantine } from './quarantine.js';
import type { Store } from './store.js';

/**
 * The batched sink in front of ClickHouse. Writers hand it JSONEachRow lines and get a promise
 * that settles only when every one of their rows is in the store (or, refused for its content,
 * kept in quarantined_rows): a writer acknowledges upstream (JetStream) after that promise, never
 * before. Rows wait in bounded per-table buffers; one insert at a time carries at most
 * `flush_rows_max` rows and `flush_bytes_max` bytes; a buffer is flushed when full or when its
 * oldest row has waited `flush_interval_ms`. A failed insert (store unreachable, overloaded) is
 * retried with doubling delays up to `retry_delay_ms_max`, for as long as it takes: giving up
 * would mean dropping rows or acknowledging them unwritten.
 */
export interface SinkOptions {
  flush_rows_max: number;
  flush_bytes_max: number;
  flush_interval_ms: number;
  /** Rows accepted and not yet written, over all tables; above it write() waits (backpressure). */
  pending_rows_max: number;
  retry_delay_ms_min: number;
  retry_delay_ms_max: number;
}

export const sink_defaults: SinkOptions = {
  flush_rows_max: 10_000,
  flush_bytes_max: 8 * 1024 * 1024,
  flush_interval_ms: 200,
  pending_rows_max: 200_000,
  retry_delay_ms_min: 100,
  retry_delay_ms_max: 10_000,
};

const sink_rows = new Counter({
  name: 'evrate_sink_rows_total',
  help: 'Rows written by the ClickHouse sink',
  labelNames: ['table'],
  registers: [metrics_registry],
});
const sink_inserts = new Counter({
  name: 'evrate_sink_inserts_total',
  help: 'Inserts made by the ClickHouse sink',
  labelNames: ['table'],
  registers: [metrics_registry],
});
const sink_retries = new Counter({
  name: 'evrate_sink_insert_retries_total',
  help: 'Failed inserts retried by the ClickHouse sink (store unreachable or refusing work)',
  labelNames: ['table'],
  registers: [metrics_registry],
});

/** One write() call: settles when its last row is written. */
interface Ticket {
  rows_left: number;
  resolve(): void;
}

interface TableBuffer {
  rows: string[];
  tickets: Ticket[];
  bytes: number;
  oldest_ms: number;
}

export class SinkClosedError extends Error {
  constructor() {
    super('sink is closed');
    this.name = 'SinkClosedError';
  }
}

export class Sink {
  private readonly options: SinkOptions;
  private readonly buffers = new Map<string, TableBuffer>();
  private readonly space_waiters: (() => void)[] = [];
  private readonly drain_waiters: (() => void)[] = [];
  private flush_now = false;
  private pending = 0;
  private closing = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Counters for tests and the benchmark (the same figures go to Prometheus). */
  readonly stats = { inserts: 0, rows: 0, retries: 0, quarantined: 0, last_error: '' };

  constructor(
    private readonly store: Store,
    options: Partial<SinkOptions> = {},
  ) {
    this.options = { ...sink_defaults, ...options };
    for (const [name, value] of Object.entries(this.options)) {
      if (!Number.isSafeInteger(value) || value < 1)
        throw new RangeError(`sink ${name} must be a positive integer`);
    }
    if (this.options.retry_delay_ms_max < this.options.retry_delay_ms_min) {
      throw new RangeError('sink retry_delay_ms_max must not be below retry_delay_ms_min');
    }
  }

  /** Rows accepted and not yet written. */
  get pending_rows(): number {
    return this.pending;
  }

  /**
   * Queues rows (JSONEachRow lines, one object each, no newline inside) for `table`; resolves
   * when all of them are written. Waits first while the sink holds `pending_rows_max` rows.
   */
  async write(table: string, rows: readonly string[]): Promise<void> {
    if (this.closing) throw new SinkClosedError();
    if (rows.length === 0) return;
    // A write larger than the bound is taken alone into an empty sink rather than never.
    while (this.pending > 0 && this.pending + rows.length > this.options.pending_rows_max) {
      await new Promise<void>((resolve) => this.space_waiters.push(resolve));
      if (this.closing) throw new SinkClosedError();
    }
    const done = new Promise<void>((resolve) => {
      const ticket: Ticket = { rows_left: rows.length, resolve };
      let buffer = this.buffers.get(table);
      if (buffer === undefined) {
        buffer = { rows: [], tickets: [], bytes: 0, oldest_ms: Date.now() };
        this.buffers.set(table, buffer);
      }
      if (buffer.rows.length === 0) buffer.oldest_ms = Date.now();
      for (const row of rows) {
        buffer.rows.push(row);
        buffer.tickets.push(ticket);
        buffer.bytes += Buffer.byteLength(row) + 1;
      }
    });
    this.pending += rows.length;
    this.start();
    this.wake?.();
    await done;
  }

  /** Writes everything buffered now, without waiting for the interval; resolves when drained. */
  async flush(): Promise<void> {
    if (this.pending === 0) return;
    this.flush_now = true;
    this.wake?.();
    await new Promise<void>((resolve) => this.drain_waiters.push(resolve));
  }

  /** Flushes what is buffered (retrying as long as it takes) and refuses new writes. */
  async close(): Promise<void> {
    this.closing = true;
    for (const waiter of this.space_waiters.splice(0)) waiter();
    this.wake?.();
    await this.loop;
    if (this.timer !== undefined) clearTimeout(this.timer);
  }

  private start(): void {
    this.loop ??= this.run().finally(() => {
      this.loop = undefined;
      if (this.pending > 0) this.start();
    });
  }

  /** The one flusher: picks the buffer that is due, writes one chunk, repeats until idle. */
  private async run(): Promise<void> {
    for (;;) {
      const due = this.next_due();
      if (due === undefined) {
        if (this.pending === 0) return;
        await this.sleep_until_due();
        continue;
      }
      await this.write_chunk(due.table, due.buffer);
    }
  }

  private next_due(): { table: string; buffer: TableBuffer } | undefined {
    const now = Date.now();
    for (const [table, buffer] of this.buffers) {
      if (buffer.rows.length === 0) continue;
      if (
        this.closing ||
        this.flush_now ||
        buffer.rows.length >= this.options.flush_rows_max ||
        buffer.bytes >= this.options.flush_bytes_max ||
        now - buffer.oldest_ms >= this.options.flush_interval_ms
      ) {
        return { table, buffer };
      }
    }
    return undefined;
  }

  private async sleep_until_due(): Promise<void> {
    const now = Date.now();
    let wait_ms = this.options.flush_interval_ms;
    for (const buffer of this.buffers.values()) {
      if (buffer.rows.length > 0)
        wait_ms = Math.min(wait_ms, buffer.oldest_ms + this.options.flush_interval_ms - now);
    }
    await new Promise<void>((resolve) => {
      this.wake = resolve;
      this.timer = setTimeout(resolve, Math.max(1, wait_ms));
    });
    this.wake = undefined;
    if (this.timer !== undefined) clearTimeout(this.timer);
  }

  /** Takes rows from the front of the buffer up to both bounds (at least one row). */
  private take_chunk(buffer: TableBuffer): { rows: string[]; tickets: Ticket[] } {
    let n = 0;
    let bytes = 0;
    while (n < buffer.rows.length && n < this.options.flush_rows_max) {
      const size = Buffer.byteLength(buffer.rows[n]!) + 1;
      if (n > 0 && bytes + size > this.options.flush_bytes_max) break;
      bytes += size;
      n++;
    }
    const rows = buffer.rows.splice(0, n);
    const tickets = buffer.tickets.splice(0, n);
    buffer.bytes -= bytes;
    buffer.oldest_ms = Date.now();
    return { rows, tickets };
  }

  private async write_chunk(table: string, buffer: TableBuffer): Promise<void> {
    const { rows, tickets } = this.take_chunk(buffer);
    let delay_ms = this.options.retry_delay_ms_min;
    for (;;) {
      try {
        const quarantined = await insert_or_quarantine(this.store, table, rows);
        this.stats.inserts += 1;
        this.stats.rows += rows.length - quarantined;
        this.stats.quarantined += quarantined;
        sink_inserts.inc({ table });
        sink_rows.inc({ table }, rows.length - quarantined);
        break;
      } catch (error) {
        this.stats.retries += 1;
        this.stats.last_error = (error as Error).message.slice(0, 500);
        sink_retries.inc({ table });
        await new Promise((resolve) => setTimeout(resolve, delay_ms));
        delay_ms = Math.min(delay_ms * 2, this.options.retry_delay_ms_max);
      }
    }
    this.pending -= rows.length;
    for (const ticket of tickets) {
      ticket.rows_left -= 1;
      if (ticket.rows_left === 0) ticket.resolve();
    }
    while (this.space_waiters.length > 0 && this.pending < this.options.pending_rows_max) {
      this.space_waiters.shift()!();
    }
    if (this.pending === 0) {
      this.flush_now = false;
      for (const waiter of this.drain_waiters.splice(0)) waiter();
    }
  }
}
