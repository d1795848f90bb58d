import { type PricedSession, price_session, type SessionFacts } from './price.js';
import type { Tariff } from './tariff.js';

export interface PriceTask {
  tariff: Tariff;
  facts: SessionFacts;
}

export type PriceOutcome = { ok: true; priced: PricedSession } | { ok: false; error: string };

/** Piscina worker: prices a batch of sessions; one bad session does not fail the others. */
export default function price_batch(tasks: PriceTask[]): PriceOutcome[] {
  return tasks.map((task) => {
    try {
      return { ok: true, priced: price_session(task.tariff, task.facts) };
    } catch (error) {
      return { ok: false, error: (error as Error).message };
    }
  });
}
