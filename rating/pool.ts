import { Piscina } from 'piscina';
import { built_module } from '../core/paths.js';
import type { PriceOutcome, PriceTask } from './worker.js';

/** The worker threads that do the pricing; the event loop only routes and acknowledges. */
export class PricingPool {
  private readonly piscina: Piscina;

  constructor(threads: number) {
    this.piscina = new Piscina({
      filename: built_module('rating/worker.js'),
      minThreads: threads,
      maxThreads: threads,
      maxQueue: 1024,
    });
  }

  async price(tasks: PriceTask[]): Promise<PriceOutcome[]> {
    if (tasks.length === 0) return [];
    return (await this.piscina.run(tasks)) as PriceOutcome[];
  }

  async close(): Promise<void> {
    await this.piscina.close();
  }
}
