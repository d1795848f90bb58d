import {
  apply_session_events,
  close_if_silent,
  type SessionEvent,
  type SessionOutcome,
  type SessionRules,
  type SessionState,
} from './session.js';
import type { Tariff } from './tariff.js';

/** One session's work in a batch: its events, or (events undefined) a silence check. */
export interface SessionTask {
  state: SessionState;
  events?: SessionEvent[];
  /** Key into SessionBatch.tariffs: "<tariff_id>@<version>". */
  tariff_key: string;
}

export interface SessionBatch {
  tasks: SessionTask[];
  tariffs: Record<string, Tariff>;
  rules: SessionRules;
  now_ms: number;
}

export type SessionTaskOutcome =
  | { ok: true; outcome: SessionOutcome | undefined }
  | { ok: false; error: string; field?: string };

export function tariff_key(tariff_id: string, version: number): string {
  return `${tariff_id}@${version}`;
}

/**
 * Piscina worker: applies a batch of sessions' events (the pricing work). One session's failure
 * does not fail the others; the service quarantines it.
 */
export default function run_session_batch(batch: SessionBatch): SessionTaskOutcome[] {
  return batch.tasks.map((task) => {
    try {
      const tariff = batch.tariffs[task.tariff_key];
      if (tariff === undefined) return { ok: false, error: `tariff ${task.tariff_key} not in the batch` };
      const outcome =
        task.events === undefined
          ? close_if_silent(task.state, batch.now_ms, tariff, batch.rules)
          : apply_session_events(task.state, task.events, tariff, batch.rules);
      return { ok: true, outcome };
    } catch (error) {
      const field = (error as { field?: unknown }).field;
      return {
        ok: false,
        error: (error as Error).message,
        ...(typeof field === 'string' ? { field } : {}),
      };
    }
  });
}
