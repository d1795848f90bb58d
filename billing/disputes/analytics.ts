import { write_dispute_fact } from '../../analytics/disputes.js';
import type { Store } from '../../analytics/store.js';

/** A case's current state copied to ClickHouse (analytics/disputes.ts) after each committed change. */
export async function write_case_fact(
  store: Store,
  view: {
    id: number;
    updated_at_ms: number;
    opened_at_ms: number;
    resolved_at_ms: number | null;
    reason: string;
    source: string;
    station_id: string;
    charge_point_id: string;
    state: string;
    outcome: string | null;
    currency: string;
    amount_disputed_minor: number;
    credited_minor: number;
  },
): Promise<void> {
  await write_dispute_fact(store, view);
}
