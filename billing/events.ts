import type { Queryable } from './ledger.js';

/**
 * The ledger's event outbox: one row per business fact, written in the same transaction as the
 * fact itself, so an event exists exactly when its fact does (a rolled-back run leaves neither).
 * Whatever ships events onward (analytics, notifications) reads this table; nothing else is the
 * source of those figures.
 *
 * Kinds written by billing itself: `invoice_issued`, `credit_note_issued`, `payment_received`,
 * `invoice_paid`. Payments and disputes add their own kinds (documented where they are written).
 * `id` is a bigserial: ids are unique but may commit out of order, so a reader must not treat
 * "the highest id seen" as "everything below it is seen".
 */
export interface BillingEvent {
  kind: string;
  occurred_at_ms: number;
  legal_entity_id?: string;
  account_id?: string;
  invoice_id?: number;
  /** Signed minor units of `currency`; 0 for events that move no money. */
  amount_minor?: number;
  currency?: string;
  /** Small facts of the event (reason, method, number text); no personal data beyond ids. */
  attributes?: Record<string, string | number | boolean | null>;
}

export const billing_event_kind_pattern = /^[a-z][a-z0-9_]{1,62}$/;

export async function record_billing_events(tx: Queryable, events: readonly BillingEvent[]): Promise<void> {
  if (events.length === 0) return;
  for (const event of events) {
    if (!billing_event_kind_pattern.test(event.kind)) throw new Error(`billing event kind ${event.kind}`);
    if (event.amount_minor !== undefined && !Number.isSafeInteger(event.amount_minor)) {
      throw new Error(`billing event ${event.kind}: amount_minor ${event.amount_minor} is not an integer`);
    }
  }
  await tx.query(
    `INSERT INTO billing_events (kind, occurred_at_ms, legal_entity_id, account_id, invoice_id, amount_minor, currency, attributes)
     SELECT x.kind, x.occurred_at_ms, x.legal_entity_id, x.account_id, x.invoice_id, x.amount_minor, x.currency, x.attributes
     FROM jsonb_to_recordset($1::jsonb) AS x(kind text, occurred_at_ms int8, legal_entity_id text, account_id text,
       invoice_id int8, amount_minor int8, currency text, attributes jsonb)`,
    [
      JSON.stringify(
        events.map((e) => ({
          kind: e.kind,
          occurred_at_ms: e.occurred_at_ms,
          legal_entity_id: e.legal_entity_id ?? '',
          account_id: e.account_id ?? '',
          invoice_id: e.invoice_id ?? null,
          amount_minor: e.amount_minor ?? 0,
          currency: e.currency ?? '',
          attributes: e.attributes ?? {},
        })),
      ),
    ],
  );
}

export async function record_billing_event(tx: Queryable, event: BillingEvent): Promise<void> {
  await record_billing_events(tx, [event]);
}
