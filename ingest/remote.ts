import type { Subscription } from '@nats-io/transport-node';
import { Counter } from 'prom-client';
import {
  type Command,
  CommandError,
  type CommandResult,
  charge_point_of_subject,
  parse_command,
} from '../core/commands.js';
import type { Logger } from '../core/log.js';
import { metrics_registry } from '../core/metrics.js';
import type { Nats } from '../core/nats.js';

const costs_skipped = new Counter({
  name: 'evrate_ingest_cost_updates_coalesced_total',
  help: 'Running costs not sent because a newer one replaced them while the charger had one in hand',
  registers: [metrics_registry],
});

/** The part of the ingest server remote management needs. */
export interface CommandTarget {
  holds(charge_point_id: string): boolean;
  command(
    charge_point_id: string,
    command: Command,
    answer_timeout_ms: number,
  ): Promise<CommandResult | undefined>;
}

export interface RemoteOptions {
  subject_prefix: string;
  /** Longest wait for a charger's answer that a caller may ask for. */
  answer_timeout_ms_max: number;
  /** Send each open session's running cost to its charger (CostUpdated / DataTransfer). */
  cost_updates: boolean;
}

/** The running cost message the rating service publishes (rating/service.ts RunningCostMessage). */
interface RunningCost {
  charge_point_id: string;
  transaction_id: string;
  currency: string;
  total_cost: { excl_vat: string; incl_vat: string };
}

/**
 * Remote management on an ingest node: every node listens to commands for all charge points and
 * the one holding the charger's socket answers (request/reply), so the API needs no directory of
 * which node holds whom. Running costs published by the rating service reach the charger the
 * same way; at most one is in hand per charger and newer ones replace a waiting one.
 */
export class RemoteCommands {
  private readonly subscriptions: Subscription[] = [];
  /** Per charger: a running cost being sent, and the newest one waiting behind it. */
  private readonly costs = new Map<string, { waiting: RunningCost | undefined }>();

  constructor(
    nats: Nats,
    private readonly target: CommandTarget,
    private readonly options: RemoteOptions,
    private readonly log: Logger,
  ) {
    this.subscriptions.push(
      nats.nc.subscribe(`${options.subject_prefix}.cmd.*`, {
        callback: (error, message) => {
          if (error !== null) return;
          const charge_point_id = charge_point_of_subject(message.subject);
          if (!this.target.holds(charge_point_id)) return; // another node answers, or nobody
          this.run(charge_point_id, message.data).then(
            (result) => message.respond(JSON.stringify(result)),
            (failure: unknown) => this.log.error({ err: failure, charge_point_id }, 'command failed'),
          );
        },
      }),
    );
    if (options.cost_updates) {
      this.subscriptions.push(
        nats.nc.subscribe(`${options.subject_prefix}.cost.*`, {
          callback: (error, message) => {
            if (error !== null) return;
            const charge_point_id = charge_point_of_subject(message.subject);
            if (!this.target.holds(charge_point_id)) return;
            try {
              this.cost(message.json<RunningCost>());
            } catch {
              // A malformed running cost is the rating service's bug; the charger is not bothered.
            }
          },
        }),
      );
    }
  }

  private async run(charge_point_id: string, data: Uint8Array): Promise<CommandResult | undefined> {
    let request: { command?: unknown; answer_timeout_ms?: unknown };
    try {
      request = JSON.parse(Buffer.from(data).toString('utf8')) as typeof request;
    } catch {
      return { status: 'invalid', field: '(body)', rule: 'must be JSON' };
    }
    let command: Command;
    try {
      command = parse_command(request.command);
    } catch (error) {
      if (error instanceof CommandError) return { status: 'invalid', field: error.field, rule: error.rule };
      throw error;
    }
    const asked = typeof request.answer_timeout_ms === 'number' ? request.answer_timeout_ms : 30_000;
    const timeout_ms = Math.max(100, Math.min(asked, this.options.answer_timeout_ms_max));
    return this.target.command(charge_point_id, command, timeout_ms);
  }

  private cost(cost: RunningCost): void {
    const slot = this.costs.get(cost.charge_point_id);
    if (slot !== undefined) {
      if (slot.waiting !== undefined) costs_skipped.inc();
      slot.waiting = cost;
      return;
    }
    this.costs.set(cost.charge_point_id, { waiting: undefined });
    void this.send_cost(cost);
  }

  private async send_cost(cost: RunningCost): Promise<void> {
    let next: RunningCost | undefined = cost;
    while (next !== undefined) {
      const current: RunningCost = next;
      await this.target
        .command(
          current.charge_point_id,
          {
            command: 'cost',
            transaction_id: current.transaction_id,
            total_cost: current.total_cost.incl_vat,
            currency: current.currency,
          },
          this.options.answer_timeout_ms_max,
        )
        .catch((error: unknown) =>
          this.log.warn({ err: error, charge_point_id: current.charge_point_id }, 'running cost not sent'),
        );
      const slot = this.costs.get(current.charge_point_id);
      next = slot?.waiting;
      if (slot !== undefined) slot.waiting = undefined;
    }
    this.costs.delete(cost.charge_point_id);
  }

  close(): void {
    for (const subscription of this.subscriptions) subscription.unsubscribe();
  }
}
