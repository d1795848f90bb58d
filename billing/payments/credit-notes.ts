import { record_billing_events } from '../events.js';
import { post_entry } from '../journal.js';
import type { Queryable } from '../ledger.js';
import { move_invoice_paid, select_payments } from './apply.js';
import { get_payment_customer } from './collect.js';
import {
  now_of,
  type OperationOutcome,
  type OperationRow,
  type PaymentsContext,
  run_operation,
} from './operations.js';
import { add_refund, invoice_excess_minor, refundable_minor } from './payments.js';

/**
 * Paying out credit notes. A credit note on an invoice already paid leaves the account paid beyond
 * what the invoice now asks (paid + credited > total). That excess goes back by the account's
 * choice (`payment_customers.credit_notes`): refunded to the invoice's card payments (newest
 * first), or kept as account credit, which `collect.ts` uses before the next collection. Whatever
 * no card payment can take (a bank transfer paid it) becomes account credit as well.
 *
 * Run for an invoice after a credit note, or by the sweep over every such invoice; it computes the
 * excess under the invoice's lock each time, so running it twice pays nothing twice.
 */
export interface SettlementResult {
  invoice_id: number;
  refunds: OperationOutcome[];
  credit_added_minor: number;
}

async function latest_credit_note(tx: Queryable, invoice_id: number): Promise<number | null> {
  const [row] = await tx.query<{ id: number }>(
    "SELECT id FROM invoices WHERE credited_invoice_id = $1 AND kind = 'credit_note' AND status <> 'draft' ORDER BY id DESC LIMIT 1",
    [invoice_id],
  );
  return row?.id ?? null;
}

async function add_account_credit(
  tx: Queryable,
  invoice: { id: number; account_id: string; currency: string },
  credit_note_id: number | null,
  amount_minor: number,
  at_ms: number,
): Promise<void> {
  const [n] = await tx.query<{ n: number }>(
    'SELECT count(*)::int8 AS n FROM account_credit WHERE source LIKE $1',
    [`credit_note:${invoice.id}:%`],
  );
  const source = `credit_note:${invoice.id}:${n!.n + 1}`;
  await tx.query(
    `INSERT INTO account_credit (account_id, currency, amount_minor, source, invoice_id, at_ms) VALUES ($1, $2, $3, $4, $5, $6)`,
    [invoice.account_id, invoice.currency, amount_minor, source, invoice.id, at_ms],
  );
  // The excess moves off the invoice's receivable into the account's credit.
  await post_entry(tx, {
    kind: 'account_credit_added',
    source_id: source,
    currency: invoice.currency,
    posted_at_ms: at_ms,
    description: `credit note ${credit_note_id ?? '-'} on paid invoice ${invoice.id} kept as account credit`,
    lines: [
      { ledger_account: 'receivable', party: invoice.account_id, debit_minor: amount_minor, credit_minor: 0 },
      {
        ledger_account: 'account_credit',
        party: invoice.account_id,
        debit_minor: 0,
        credit_minor: amount_minor,
      },
    ],
  });
  await record_billing_events(tx, [
    {
      kind: 'account_credit_added',
      occurred_at_ms: at_ms,
      account_id: invoice.account_id,
      invoice_id: invoice.id,
      amount_minor,
      currency: invoice.currency,
      attributes: {
        method: 'account_credit',
        source,
        ...(credit_note_id !== null ? { credit_note_id } : {}),
      },
    },
  ]);
  await move_invoice_paid(tx, invoice.id, -amount_minor, at_ms, undefined);
}

export async function settle_invoice_excess(
  ctx: PaymentsContext,
  invoice_id: number,
  actor: string,
): Promise<SettlementResult> {
  const at_ms = now_of(ctx);
  const planned = await ctx.ledger.transaction(async (tx) => {
    const [invoice] = await tx.query<{ id: number; kind: string; account_id: string; currency: string }>(
      'SELECT id, kind, account_id, currency FROM invoices WHERE id = $1 FOR UPDATE',
      [invoice_id],
    );
    if (invoice === undefined || invoice.kind !== 'invoice')
      return { ops: [] as OperationRow[], credit_added_minor: 0 };
    let excess = await invoice_excess_minor(tx, invoice.id);
    if (excess === 0) return { ops: [], credit_added_minor: 0 };
    const credit_note_id = await latest_credit_note(tx, invoice.id);
    const choice = (await get_payment_customer(tx, invoice.account_id))?.credit_notes ?? 'refund';
    const ops: OperationRow[] = [];
    if (choice === 'refund') {
      const payments = await select_payments(
        tx,
        "invoice_id = $1 AND state IN ('captured', 'partly_refunded', 'charged_back') ORDER BY id DESC FOR UPDATE",
        [invoice.id],
      );
      for (const payment of payments) {
        if (excess === 0) break;
        const amount = Math.min(excess, await refundable_minor(tx, payment));
        if (amount <= 0) continue;
        const reason = credit_note_id === null ? 'overpaid invoice' : `credit note ${credit_note_id}`;
        ops.push(
          await add_refund(
            tx,
            payment,
            { amount_minor: amount, reason, credit_note_id: credit_note_id ?? undefined, actor },
            at_ms,
          ),
        );
        excess -= amount;
      }
    }
    if (excess > 0) await add_account_credit(tx, invoice, credit_note_id, excess, at_ms);
    return { ops, credit_added_minor: excess };
  });
  const refunds: OperationOutcome[] = [];
  for (const op of planned.ops) refunds.push(await run_operation(ctx, op, actor));
  return { invoice_id, refunds, credit_added_minor: planned.credit_added_minor };
}

/** Invoices paid beyond what they ask (after a credit note): what the sweep settles. */
export async function invoices_with_excess(db: Queryable, limit: number): Promise<number[]> {
  const rows = await db.query<{ id: number }>(
    `SELECT i.id FROM invoices i WHERE i.kind = 'invoice' AND i.paid_minor + i.credited_minor > i.total_minor
       AND i.paid_minor + i.credited_minor - i.total_minor > coalesce((SELECT sum(r.amount_minor) FROM payment_refunds r
         JOIN payments p ON p.id = r.payment_id WHERE p.invoice_id = i.id AND r.status = 'pending'), 0)
     ORDER BY i.id LIMIT $1`,
    [limit],
  );
  return rows.map((r) => r.id);
}
