import { randomBytes } from 'node:crypto';
import type { KV } from '@nats-io/kv';
import { Counter } from 'prom-client';
import type { Store } from '../../analytics/store.js';
import type { Logger } from '../../core/log.js';
import { metrics_registry } from '../../core/metrics.js';
import { type Nats, open_kv } from '../../core/nats.js';
import { type CdrMapping, cdr_of_row } from './cdr-object.js';
import { query_cdr_page } from './cdr-query.js';
import { type OcpiClientOptions, OcpiDestinationRefusedError, ocpi_call } from './client.js';
import { type PartnerRecord, type PartnerRegistry, partner_scope } from './partners.js';

const cdrs_pushed = new Counter({
  name: 'evrate_ocpi_cdrs_pushed_total',
  help: 'CDR POSTs to partners CDRs Receiver endpoints, by result',
  labelNames: ['result'],
  registers: [metrics_registry],
});

export interface CdrPushOptions {
  /** Time between passes when nothing is pending. */
  interval_ms: number;
  /** CDRs taken per partner per pass at most (the bound on work in hand). */
  batch_max: number;
  /** POST attempts per CDR in one pass; after the last, the partner waits for the next pass. */
  attempts_max: number;
  backoff_ms_initial: number;
  backoff_ms_max: number;
  /**
   * Only CDRs whose last_updated is at least this old are pushed: last_updated is when the
   * version was rated (the stop time the charger reported, on rows from before schema v34), and a
   * version that reaches the store a little after that time must not land behind the cursor.
   */
  settle_ms: number;
}

export const cdr_push_defaults: CdrPushOptions = {
  interval_ms: 5_000,
  batch_max: 500,
  attempts_max: 5,
  backoff_ms_initial: 500,
  backoff_ms_max: 30_000,
  settle_ms: 60_000,
};

/** Where a partner's push stands: the last CDR it acknowledged, in (last_updated, id) order. */
interface PushCursor {
  last_updated_ms: number;
  session_id: string;
}

/**
 * A cursor as stored. Before schema v34 it was kept as rated_at_ms, which is the last_updated of
 * every CDR rated before then, so it reads as the same position.
 */
function parse_push_cursor(text: string): PushCursor {
  const stored = JSON.parse(text) as { last_updated_ms?: number; rated_at_ms?: number; session_id: string };
  return {
    last_updated_ms: stored.last_updated_ms ?? stored.rated_at_ms ?? 0,
    session_id: stored.session_id,
  };
}

/**
 * Pushes new CDRs to each registered partner's CDRs Receiver endpoint (mod_cdrs "Receiver
 * Interface": POST the full and final CDR). The queue is rated_sessions itself read in
 * (last_updated, id) order after a per-partner cursor kept in NATS KV `evrate_ocpi_cdr_push`;
 * the cursor moves only after the partner answered 1xxx, so a restart resumes where it stopped
 * (a CDR may be POSTed again after a crash between the answer and the cursor write, never lost).
 * Push starts at the partner's registration; earlier CDRs are for it to pull.
 */
export class CdrPusher {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private closed = false;
  private wake: (() => void) | undefined;
  /** This process in the push leases: several API processes push, one per partner at a time. */
  private readonly holder = randomBytes(8).toString('hex');
  private readonly leased = new Set<string>();

  private constructor(
    private readonly deps: {
      store: Store;
      partners: PartnerRegistry;
      cursors: KV;
      mapping: CdrMapping;
      client: OcpiClientOptions;
      log: Logger;
    },
    private readonly options: CdrPushOptions,
  ) {}

  static async open(
    nats: Nats,
    deps: {
      store: Store;
      partners: PartnerRegistry;
      mapping: CdrMapping;
      client: OcpiClientOptions;
      log: Logger;
    },
    options: CdrPushOptions = cdr_push_defaults,
  ): Promise<CdrPusher> {
    return new CdrPusher({ ...deps, cursors: await open_kv(nats, 'evrate_ocpi_cdr_push') }, options);
  }

  /** Runs passes every interval until close(). */
  start(): void {
    const loop = async () => {
      while (!this.closed) {
        try {
          await this.push_pending();
        } catch (error) {
          this.deps.log.error({ err: error }, 'cdr push pass failed');
        }
        await this.sleep(this.options.interval_ms);
      }
    };
    this.running = loop();
  }

  /** Stops after the CDR in hand and hands the leases back, so another process takes over at once. */
  async close(): Promise<void> {
    this.closed = true;
    this.wake?.();
    await this.running;
    for (const key of this.leased) {
      const entry = await this.deps.cursors.get(key).catch(() => null);
      if (entry === null || entry.operation !== 'PUT') continue;
      if ((JSON.parse(entry.string()) as { holder: string }).holder !== this.holder) continue;
      await this.deps.cursors.delete(key, { previousSeq: entry.revision }).catch(() => {});
    }
  }

  /** One pass over every registered partner; returns the CDRs each accepted in this pass. */
  async push_pending(now_ms: number = Date.now()): Promise<Record<string, number>> {
    const pushed: Record<string, number> = {};
    for (const partner of await this.deps.partners.list()) {
      if (this.closed) break;
      const endpoint = partner.endpoints?.find((e) => e.identifier === 'cdrs' && e.role === 'RECEIVER');
      if (partner.status !== 'registered' || endpoint === undefined || partner.partner_token === undefined)
        continue;
      if (!(await this.lease(partner.partner_id, now_ms))) continue;
      pushed[partner.partner_id] = await this.push_partner(
        partner,
        endpoint.url,
        partner.partner_token,
        now_ms,
      );
    }
    return pushed;
  }

  /**
   * Takes or renews the partner's push lease (`l.<partner>`, compare-and-set on the KV revision) so
   * that two processes never POST the same partner's CDRs at once; a dead holder's lease lapses.
   */
  private async lease(partner_id: string, now_ms: number): Promise<boolean> {
    const key = `l.${partner_id}`;
    const lease_ms = Math.max(5 * 60_000, this.options.interval_ms * 3);
    const value = JSON.stringify({ holder: this.holder, until_ms: now_ms + lease_ms });
    try {
      const entry = await this.deps.cursors.get(key);
      if (entry === null || entry.operation !== 'PUT') {
        await this.deps.cursors.create(key, value);
      } else {
        const current = JSON.parse(entry.string()) as { holder: string; until_ms: number };
        if (current.holder !== this.holder && current.until_ms > now_ms) return false;
        await this.deps.cursors.update(key, value, entry.revision);
      }
      this.leased.add(key);
      return true;
    } catch {
      return false; // another process changed the lease first
    }
  }

  private async push_partner(
    partner: PartnerRecord,
    url: string,
    token: string,
    now_ms: number,
  ): Promise<number> {
    const parties = partner_scope(partner);
    if (parties.length === 0) return 0;
    const key = `c.${partner.partner_id}`;
    const entry = await this.deps.cursors.get(key);
    const cursor: PushCursor =
      entry !== null && entry.operation === 'PUT'
        ? parse_push_cursor(entry.string())
        : { last_updated_ms: partner.updated_at_ms, session_id: '' };
    const { rows } = await query_cdr_page(
      this.deps.store,
      { parties, after: cursor, updated_to_ms: now_ms - this.options.settle_ms },
      { offset: 0, limit: this.options.batch_max },
      false,
    );
    let accepted = 0;
    for (const row of rows) {
      if (this.closed) break;
      const cdr = cdr_of_row(row, this.deps.mapping);
      if (!(await this.post_with_retries(partner.partner_id, url, token, cdr))) break;
      const next: PushCursor = {
        last_updated_ms: Number(row.cdr_last_updated_ms),
        session_id: row.session_id,
      };
      await this.deps.cursors.put(key, JSON.stringify(next));
      accepted++;
    }
    return accepted;
  }

  private async post_with_retries(
    partner_id: string,
    url: string,
    token: string,
    cdr: { id: string },
  ): Promise<boolean> {
    let backoff_ms = this.options.backoff_ms_initial;
    for (let attempt = 1; attempt <= this.options.attempts_max; attempt++) {
      try {
        await ocpi_call('POST', url, token, cdr, this.deps.client);
        cdrs_pushed.inc({ result: 'accepted' });
        return true;
      } catch (error) {
        cdrs_pushed.inc({ result: 'failed' });
        this.deps.log.warn(
          { partner_id, cdr_id: cdr.id, attempt, err: (error as Error).message },
          'cdr push failed',
        );
        // A receiver URL we do not call stays refused: no retries until the next pass.
        const refused = error instanceof OcpiDestinationRefusedError;
        if (refused || attempt === this.options.attempts_max || this.closed) return false;
        await this.sleep(backoff_ms);
        backoff_ms = Math.min(backoff_ms * 2, this.options.backoff_ms_max);
      }
    }
    return false;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(this.timer);
        resolve();
      };
    });
  }
}
