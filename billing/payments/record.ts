import { FieldError } from '../../core/field-error.js';
import { minor_of, text_of_minor } from '../amounts.js';
import { record_billing_events } from '../events.js';
import { post_entry } from '../journal.js';
import type { Ledger } from '../ledger.js';

/**
 * A payment received against an invoice: cash (debit) against the account's receivable (credit),
 * one balanced entry, keyed by the caller's payment reference so that a retried call books it once.
 * Never more than what remains (total - credited - paid).
 */
export async function record_payment(
  ledger: Ledger,
  request: { invoice_id: number; amount: string; reference: string; method?: string },
  now_ms = Date.now(),
): Promise<{ status: string; paid: string }> {
  if (typeof request.reference !== 'string' || !/^[\x21-\x7e]{1,100}$/.test(request.reference)) {
    throw new FieldError('reference', 'must be 1 to 100 printable ASCII characters');
  }
  if (typeof request.amount !== 'string' || !/^\d{1,12}(\.\d+)?$/.test(request.amount)) {
    throw new FieldError('amount', 'must be a positive decimal text');
  }
  return await ledger.transaction(async (tx) => {
    const [invoice] = await tx.query<{
      kind: string;
      status: string;
      account_id: string;
      currency: string;
      total_minor: number;
      credited_minor: number;
      paid_minor: number;
    }>(
      'SELECT kind, status, account_id, currency, total_minor, credited_minor, paid_minor FROM invoices WHERE id = $1 FOR UPDATE',
      [request.invoice_id],
    );
    if (invoice === undefined || invoice.kind !== 'invoice')
      throw new FieldError('invoice_id', 'is not a known invoice');
    const source_id = `${request.invoice_id}:${request.reference}`;
    const [seen] = await tx.query('SELECT 1 FROM journal_entries WHERE kind = $1 AND source_id = $2', [
      'payment_received',
      source_id,
    ]);
    if (seen !== undefined) {
      return { status: invoice.status, paid: text_of_minor(invoice.paid_minor, invoice.currency) };
    }
    if (invoice.status === 'draft' || invoice.status === 'void') {
      throw new FieldError('invoice_id', `is ${invoice.status}: only an issued invoice can be paid`);
    }
    const amount_minor = minor_of(request.amount, invoice.currency);
    const remaining = invoice.total_minor - invoice.credited_minor - invoice.paid_minor;
    if (amount_minor <= 0 || amount_minor > remaining) {
      throw new FieldError(
        'amount',
        `must be more than 0 and at most the ${text_of_minor(remaining, invoice.currency)} remaining`,
      );
    }
    await post_entry(tx, {
      kind: 'payment_received',
      source_id,
      currency: invoice.currency,
      posted_at_ms: now_ms,
      description: `payment ${request.reference} for invoice ${request.invoice_id}`,
      lines: [
        { ledger_account: 'cash', debit_minor: amount_minor, credit_minor: 0 },
        {
          ledger_account: 'receivable',
          party: invoice.account_id,
          debit_minor: 0,
          credit_minor: amount_minor,
        },
      ],
    });
    const paid = invoice.paid_minor + amount_minor;
    const status = paid === invoice.total_minor - invoice.credited_minor ? 'paid' : 'partly_paid';
    await tx.query('UPDATE invoices SET paid_minor = $2, status = $3 WHERE id = $1', [
      request.invoice_id,
      paid,
      status,
    ]);
    const event = {
      occurred_at_ms: now_ms,
      account_id: invoice.account_id,
      invoice_id: request.invoice_id,
      currency: invoice.currency,
    };
    await record_billing_events(tx, [
      {
        ...event,
        kind: 'payment_received',
        amount_minor,
        attributes: {
          reference: request.reference,
          method: request.method ?? 'bank_transfer',
        },
      },
      ...(status === 'paid' ? [{ ...event, kind: 'invoice_paid', amount_minor: paid }] : []),
    ]);
    return { status, paid: text_of_minor(paid, invoice.currency) };
  });
}
