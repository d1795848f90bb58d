import type { Config } from '../../core/config.js';
import type { Logger } from '../../core/log.js';
import type { Ledger } from '../ledger.js';
import type { ReturnPolicy } from './bank-returns.js';
import { type CollectionResult, collect_retries } from './collect.js';
import {
  type DunningPolicy,
  type DunningTransition,
  run_dunning,
  sync_token_blocks,
  type TokenAccess,
} from './dunning.js';

/**
 * The collection pass the billing process runs on a schedule (and `evrate dunning` or
 * `POST /v1/collection/dunning/run` by hand): returned debits due again go into a retry file,
 * accounts move through dunning, and the token store is made to agree with the suspensions.
 */
export type CollectionPolicy = DunningPolicy & ReturnPolicy;

export function collection_policy(config: Config): CollectionPolicy {
  return {
    reminder_days: config.dunning_reminder_days,
    second_reminder_days: config.dunning_second_reminder_days,
    suspend_days: config.dunning_suspend_days,
    retry_days: config.collection_retry_days,
    retries_max: config.collection_retries_max,
  };
}

export interface CollectionPass {
  retry_file: CollectionResult['file'];
  transitions: DunningTransition[];
  truncated: boolean;
  tokens_blocked: string[];
  tokens_unblocked: string[];
}

export async function run_collection_pass(
  ledger: Ledger,
  tokens: TokenAccess | undefined,
  policy: CollectionPolicy,
  now_ms = Date.now(),
  account_ids?: readonly string[],
): Promise<CollectionPass> {
  const retries = account_ids === undefined ? await collect_retries(ledger, now_ms) : { file: undefined };
  const dunning = await run_dunning(ledger, policy, now_ms, account_ids);
  const sync =
    tokens === undefined ? { blocked: [], unblocked: [] } : await sync_token_blocks(ledger, tokens, now_ms);
  return {
    retry_file: retries.file,
    transitions: dunning.transitions,
    truncated: dunning.truncated,
    tokens_blocked: sync.blocked,
    tokens_unblocked: sync.unblocked,
  };
}

/** Runs the pass every `interval_ms`, one at a time; close() waits for the pass in flight. */
export class CollectionSchedule {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly ledger: Ledger,
    private readonly tokens: TokenAccess,
    private readonly policy: CollectionPolicy,
    private readonly interval_ms: number,
    private readonly log: Logger,
  ) {}

  start(): void {
    if (this.interval_ms <= 0) return;
    this.timer = setInterval(() => void this.pass(), this.interval_ms);
    this.timer.unref();
  }

  async pass(): Promise<void> {
    if (this.closed || this.running !== undefined) return;
    this.running = (async () => {
      try {
        const result = await run_collection_pass(this.ledger, this.tokens, this.policy);
        if (result.transitions.length > 0 || result.retry_file !== undefined) {
          this.log.info(
            {
              transitions: result.transitions.length,
              retry_file: result.retry_file?.id,
              tokens_blocked: result.tokens_blocked.length,
              tokens_unblocked: result.tokens_unblocked.length,
            },
            'collection pass',
          );
        }
      } catch (error) {
        this.log.error({ err: error }, 'collection pass failed; the next pass retries');
      }
    })();
    await this.running;
    this.running = undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    await this.running;
  }
}

/** The billing process's schedule, started (a no-op when COLLECTION_SCHEDULE_INTERVAL_S is 0). */
export function start_collection_schedule(
  ledger: Ledger,
  tokens: TokenAccess,
  config: Config,
  log: Logger,
): CollectionSchedule {
  const schedule = new CollectionSchedule(
    ledger,
    tokens,
    collection_policy(config),
    config.collection_schedule_interval_s * 1000,
    log.child({ component: 'collection' }),
  );
  schedule.start();
  return schedule;
}
