import { Piscina } from 'piscina';
import { built_module } from '../core/paths.js';
import type { SessionBatch, SessionTaskOutcome } from './worker.js';

/**
 * The worker threads that do the pricing; the event loop only routes and acknowledges. A batch
 * is split into one chunk per thread so every thread works on every batch.
 */
export class PricingPool {
  private readonly piscina: Piscina;

  constructor(private readonly threads: number) {
    this.piscina = new Piscina({
      filename: built_module('rating/worker.js'),
      minThreads: threads,
      maxThreads: threads,
      maxQueue: 1024,
    });
  }

  async run(batch: SessionBatch): Promise<SessionTaskOutcome[]> {
    const { tasks } = batch;
    if (tasks.length === 0) return [];
    const chunk = Math.max(64, Math.ceil(tasks.length / this.threads));
    const parts: Promise<SessionTaskOutcome[]>[] = [];
    for (let i = 0; i < tasks.length; i += chunk) {
      parts.push(
        this.piscina.run({ ...batch, tasks: tasks.slice(i, i + chunk) }) as Promise<SessionTaskOutcome[]>,
      );
    }
    return (await Promise.all(parts)).flat();
  }

  async close(): Promise<void> {
    await this.piscina.close();
  }
}
