import { type BillingEvent, record_billing_events } from '../events.js';
import { post_entry } from '../journal.js';
import type { Queryable } from '../ledger.js';
import type { ProviderPayment } from './provider.js';
import { can_transition, lifecycle_target, money_state, type PaymentState } from './states.js';

/**
 * Facts about a payment applied to the ledger, inside the caller's transaction (the payment row
 * locked): a provider's answer or event moves the state forward, books what was captured,
 * refunded or charged back as balanced journal entries (each keyed by its source, so it is booked
 * once), moves the invoice's paid amount and records the billing events of COMMON kinds.
 */
export interface PaymentRow {
  id: number;
  provider: string;
  provider_payment_id: string | null;
  purpose: 'invoice' | 'hold';
  method: 'card' | 'wallet';
  account_id: string | null;
  invoice_id: number | null;
  attempt: number;
  currency: string;
  amount_minor: number;
  capturable_minor: number;
  captured_minor: number;
  refunded_minor: number;
  charged_back_minor: number;
  state: PaymentState;
  next_action_url: string | null;
  failure_code: string | null;
  metadata: Record<string, string>;
  created_at_ms: number;
  updated_at_ms: number;
}

/** Who or what changed the payment and why: one `payment_transitions` row. */
export interface Cause {
  actor: string;
  reason: string;
  at_ms: number;
  provider_event_id?: string | undefined;
}

const payment_columns = `id, provider, provider_payment_id, purpose, method, account_id, invoice_id, attempt, currency,
  amount_minor, capturable_minor, captured_minor, refunded_minor, charged_back_minor, state, next_action_url,
  failure_code, metadata, created_at_ms, updated_at_ms`;

export async function lock_payment(tx: Queryable, id: number): Promise<PaymentRow | undefined> {
  const [row] = await tx.query<PaymentRow>(
    `SELECT ${payment_columns} FROM payments WHERE id = $1 FOR UPDATE`,
    [id],
  );
  return row;
}

export async function lock_payment_of_provider(
  tx: Queryable,
  provider: string,
  provider_payment_id: string,
): Promise<PaymentRow | undefined> {
  const [row] = await tx.query<PaymentRow>(
    `SELECT ${payment_columns} FROM payments WHERE provider = $1 AND provider_payment_id = $2 FOR UPDATE`,
    [provider, provider_payment_id],
  );
  return row;
}

export async function select_payments(
  tx: Queryable,
  where: string,
  params: unknown[],
): Promise<PaymentRow[]> {
  return await tx.query<PaymentRow>(`SELECT ${payment_columns} FROM payments WHERE ${where}`, params);
}

function event_base(payment: PaymentRow, at_ms: number): Omit<BillingEvent, 'kind'> {
  return {
    occurred_at_ms: at_ms,
    ...(payment.account_id !== null ? { account_id: payment.account_id } : {}),
    ...(payment.invoice_id !== null ? { invoice_id: payment.invoice_id } : {}),
    currency: payment.currency,
  };
}

/** Writes the new state and amounts and the transition row; returns the updated payment. */
async function move(
  tx: Queryable,
  payment: PaymentRow,
  to: PaymentState,
  cause: Cause,
  changes: Partial<
    Pick<
      PaymentRow,
      | 'provider_payment_id'
      | 'capturable_minor'
      | 'captured_minor'
      | 'refunded_minor'
      | 'charged_back_minor'
      | 'next_action_url'
      | 'failure_code'
    >
  > = {},
): Promise<PaymentRow> {
  if (to !== payment.state && !can_transition(payment.state, to)) {
    throw new Error(`payment ${payment.id}: no transition ${payment.state} -> ${to}`);
  }
  const next: PaymentRow = { ...payment, ...changes, state: to, updated_at_ms: cause.at_ms };
  if (
    next.refunded_minor + next.charged_back_minor > next.captured_minor ||
    next.captured_minor > next.amount_minor
  ) {
    throw new Error(`payment ${payment.id}: amounts out of bounds ${JSON.stringify(changes)}`);
  }
  await tx.query(
    `UPDATE payments SET state = $2, provider_payment_id = $3, capturable_minor = $4, captured_minor = $5,
       refunded_minor = $6, charged_back_minor = $7, next_action_url = $8, failure_code = $9, updated_at_ms = $10
     WHERE id = $1`,
    [
      payment.id,
      next.state,
      next.provider_payment_id,
      next.capturable_minor,
      next.captured_minor,
      next.refunded_minor,
      next.charged_back_minor,
      next.next_action_url,
      next.failure_code,
      cause.at_ms,
    ],
  );
  if (
    to !== payment.state ||
    changes.refunded_minor !== undefined ||
    changes.charged_back_minor !== undefined
  ) {
    await tx.query(
      `INSERT INTO payment_transitions (payment_id, from_state, to_state, actor, reason, provider_event_id, at_ms)
       VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [
        payment.id,
        payment.state,
        to,
        cause.actor,
        cause.reason.slice(0, 500),
        cause.provider_event_id ?? null,
        cause.at_ms,
      ],
    );
  }
  return next;
}

/**
 * A provider's view of the payment (an answer or an event) applied: only a step forward moves the
 * state; the same view twice, or an older one after a newer, changes nothing.
 */
export async function apply_provider_payment(
  tx: Queryable,
  payment: PaymentRow,
  view: ProviderPayment,
  cause: Cause,
): Promise<PaymentRow> {
  // A call refused before the provider made an object (e.g. an amount it does not take) has no id.
  const linked = view.provider_payment_id !== '';
  if (linked && payment.provider_payment_id === null) {
    await tx.query('UPDATE payments SET provider_payment_id = $2 WHERE id = $1', [
      payment.id,
      view.provider_payment_id,
    ]);
    payment = { ...payment, provider_payment_id: view.provider_payment_id };
  } else if (linked && payment.provider_payment_id !== view.provider_payment_id) {
    throw new Error(
      `payment ${payment.id} is ${payment.provider_payment_id}, not ${view.provider_payment_id}`,
    );
  }
  const to = lifecycle_target(payment.state, view.status);
  if (to === undefined) return payment;
  const base = event_base(payment, cause.at_ms);
  const ids = { payment_id: payment.id, provider: payment.provider };
  switch (to) {
    case 'requires_action':
      return await move(tx, payment, to, cause, { next_action_url: view.next_action_url ?? null });
    case 'authorized': {
      const moved = await move(tx, payment, to, cause, { capturable_minor: view.amount_capturable_minor });
      await record_billing_events(tx, [
        {
          ...base,
          kind: 'payment_authorized',
          amount_minor: view.amount_capturable_minor,
          attributes: { ...ids, method: payment.method },
        },
      ]);
      return moved;
    }
    case 'cancelled': {
      const moved = await move(tx, payment, to, cause, { capturable_minor: 0 });
      await record_billing_events(tx, [
        {
          ...base,
          kind: 'payment_cancelled',
          amount_minor: payment.capturable_minor,
          attributes: { ...ids, method: payment.method, reason: cause.reason.slice(0, 100) },
        },
      ]);
      return moved;
    }
    case 'failed': {
      const failure_code = view.failure_code ?? 'failed';
      const moved = await move(tx, payment, to, cause, { failure_code, capturable_minor: 0 });
      const events: BillingEvent[] = [
        {
          ...base,
          kind: 'payment_failed',
          amount_minor: payment.amount_minor,
          attributes: { ...ids, method: payment.method, failure_code },
        },
      ];
      if (payment.purpose === 'invoice') {
        events.push({
          ...base,
          kind: 'collection_failed',
          amount_minor: payment.amount_minor,
          attributes: { ...ids, method: payment.method, attempt: payment.attempt, failure_code },
        });
      }
      await record_billing_events(tx, events);
      return moved;
    }
    case 'captured': {
      const captured_minor = view.amount_captured_minor;
      const moved = await move(tx, payment, to, cause, { captured_minor, capturable_minor: 0 });
      await record_billing_events(tx, [
        {
          ...base,
          kind: 'payment_captured',
          amount_minor: captured_minor,
          attributes: { ...ids, method: payment.method },
        },
      ]);
      await book_capture(tx, moved, cause.at_ms);
      return moved;
    }
    default:
      return payment;
  }
}

/**
 * Money taken: for an invoice, cash against the account's receivable (`payment_received`, the
 * same entry as a bank payment) and the invoice's paid amount; for a hold without an invoice, cash
 * against unapplied payments until an invoice takes it.
 */
async function book_capture(tx: Queryable, payment: PaymentRow, at_ms: number): Promise<void> {
  const amount = payment.captured_minor;
  if (amount === 0) return;
  if (payment.invoice_id === null) {
    await post_entry(tx, {
      kind: 'payment_captured',
      source_id: `payment:${payment.id}`,
      currency: payment.currency,
      posted_at_ms: at_ms,
      description: `card payment ${payment.id} captured (${payment.provider} ${payment.provider_payment_id})`,
      lines: [
        { ledger_account: 'cash', debit_minor: amount, credit_minor: 0 },
        {
          ledger_account: 'unapplied_payments',
          party: payment.account_id ?? `payment:${payment.id}`,
          debit_minor: 0,
          credit_minor: amount,
        },
      ],
    });
    return;
  }
  await post_entry(tx, {
    kind: 'payment_received',
    source_id: `payment:${payment.id}`,
    currency: payment.currency,
    posted_at_ms: at_ms,
    description: `card payment ${payment.id} for invoice ${payment.invoice_id} (${payment.provider} ${payment.provider_payment_id})`,
    lines: [
      { ledger_account: 'cash', debit_minor: amount, credit_minor: 0 },
      { ledger_account: 'receivable', party: payment.account_id!, debit_minor: 0, credit_minor: amount },
    ],
  });
  await move_invoice_paid(tx, payment.invoice_id, amount, at_ms, {
    kind: 'payment_received',
    amount_minor: amount,
    attributes: { method: payment.method, payment_id: payment.id, reference: `payment:${payment.id}` },
  });
}

/**
 * Changes an invoice's paid amount by `delta_minor` (a payment, a refund, a chargeback, account
 * credit) and its status with it; records `event` and `invoice_paid` when it becomes paid.
 */
export async function move_invoice_paid(
  tx: Queryable,
  invoice_id: number,
  delta_minor: number,
  at_ms: number,
  event: Pick<BillingEvent, 'kind' | 'amount_minor' | 'attributes'> | undefined,
): Promise<void> {
  const [invoice] = await tx.query<{
    status: string;
    account_id: string;
    currency: string;
    total_minor: number;
    credited_minor: number;
    paid_minor: number;
  }>(
    'SELECT status, account_id, currency, total_minor, credited_minor, paid_minor FROM invoices WHERE id = $1 FOR UPDATE',
    [invoice_id],
  );
  if (invoice === undefined) throw new Error(`invoice ${invoice_id} is missing`);
  const paid = invoice.paid_minor + delta_minor;
  if (paid < 0) throw new Error(`invoice ${invoice_id}: paid would be ${paid}`);
  const owed = invoice.total_minor - invoice.credited_minor;
  const status =
    owed === 0 && paid === 0 ? 'void' : paid === 0 ? 'issued' : paid >= owed ? 'paid' : 'partly_paid';
  await tx.query('UPDATE invoices SET paid_minor = $2, status = $3 WHERE id = $1', [
    invoice_id,
    paid,
    status,
  ]);
  const base = {
    occurred_at_ms: at_ms,
    account_id: invoice.account_id,
    invoice_id,
    currency: invoice.currency,
  };
  const events: BillingEvent[] = [];
  if (event !== undefined) events.push({ ...base, ...event });
  if (status === 'paid' && invoice.status !== 'paid')
    events.push({ ...base, kind: 'invoice_paid', amount_minor: paid });
  await record_billing_events(tx, events);
}

/** A refund the provider confirmed: cash back out, against the receivable (or unapplied payments). */
export async function apply_refund_succeeded(
  tx: Queryable,
  payment: PaymentRow,
  refund: { id: number; amount_minor: number; credit_note_id: number | null },
  cause: Cause,
): Promise<PaymentRow> {
  const refunded_minor = payment.refunded_minor + refund.amount_minor;
  const amounts = { ...payment, refunded_minor };
  const moved = await move(tx, payment, money_state(amounts), cause, { refunded_minor });
  const party =
    payment.invoice_id === null ? (payment.account_id ?? `payment:${payment.id}`) : payment.account_id!;
  await post_entry(tx, {
    kind: 'payment_refunded',
    source_id: `refund:${refund.id}`,
    currency: payment.currency,
    posted_at_ms: cause.at_ms,
    description: `refund ${refund.id} of card payment ${payment.id}${refund.credit_note_id === null ? '' : ` for credit note ${refund.credit_note_id}`}`,
    lines: [
      {
        ledger_account: payment.invoice_id === null ? 'unapplied_payments' : 'receivable',
        party,
        debit_minor: refund.amount_minor,
        credit_minor: 0,
      },
      { ledger_account: 'cash', debit_minor: 0, credit_minor: refund.amount_minor },
    ],
  });
  const event: BillingEvent = {
    ...event_base(payment, cause.at_ms),
    kind: 'payment_refunded',
    amount_minor: refund.amount_minor,
    attributes: {
      payment_id: payment.id,
      refund_id: refund.id,
      method: payment.method,
      whole: refunded_minor === payment.captured_minor,
      ...(refund.credit_note_id !== null ? { credit_note_id: refund.credit_note_id } : {}),
    },
  };
  if (payment.invoice_id !== null) {
    await move_invoice_paid(tx, payment.invoice_id, -refund.amount_minor, cause.at_ms, event);
  } else {
    await record_billing_events(tx, [event]);
  }
  return moved;
}

/**
 * A chargeback: the cardholder's bank took the money back. The invoice is open again by that
 * amount (collection and dunning take it from there). At most what was captured and not refunded.
 */
export async function apply_chargeback(
  tx: Queryable,
  payment: PaymentRow,
  dispute: { provider_dispute_id: string; amount_minor: number },
  cause: Cause,
): Promise<PaymentRow> {
  const open_minor = payment.captured_minor - payment.refunded_minor - payment.charged_back_minor;
  const amount = Math.min(dispute.amount_minor, open_minor);
  if (amount <= 0) return payment;
  const charged_back_minor = payment.charged_back_minor + amount;
  const moved = await move(tx, payment, 'charged_back', cause, { charged_back_minor });
  const receivable = payment.invoice_id === null ? 'unapplied_payments' : 'receivable';
  const party = payment.account_id ?? `payment:${payment.id}`;
  await post_entry(tx, {
    kind: 'payment_charged_back',
    source_id: `chargeback:${payment.provider}:${dispute.provider_dispute_id}`,
    currency: payment.currency,
    posted_at_ms: cause.at_ms,
    description: `chargeback ${dispute.provider_dispute_id} of card payment ${payment.id}`,
    lines: [
      { ledger_account: receivable, party, debit_minor: amount, credit_minor: 0 },
      { ledger_account: 'cash', debit_minor: 0, credit_minor: amount },
    ],
  });
  const event: BillingEvent = {
    ...event_base(payment, cause.at_ms),
    kind: 'payment_charged_back',
    amount_minor: amount,
    attributes: { payment_id: payment.id, dispute_id: dispute.provider_dispute_id, method: payment.method },
  };
  if (payment.invoice_id !== null)
    await move_invoice_paid(tx, payment.invoice_id, -amount, cause.at_ms, event);
  else await record_billing_events(tx, [event]);
  return moved;
}

/** A dispute won: the money charged back comes back (once, keyed by the dispute). */
export async function apply_chargeback_reversed(
  tx: Queryable,
  payment: PaymentRow,
  dispute: { provider_dispute_id: string },
  cause: Cause,
): Promise<PaymentRow> {
  const [booked] = await tx.query<{ amount: number }>(
    `SELECT l.credit_minor AS amount FROM journal_entries e JOIN journal_lines l ON l.entry_id = e.id
     WHERE e.kind = 'payment_charged_back' AND e.source_id = $1 AND l.ledger_account = 'cash'`,
    [`chargeback:${payment.provider}:${dispute.provider_dispute_id}`],
  );
  const [reversed] = await tx.query(
    "SELECT 1 FROM journal_entries WHERE kind = 'chargeback_reversed' AND source_id = $1",
    [`chargeback:${payment.provider}:${dispute.provider_dispute_id}`],
  );
  if (booked === undefined || reversed !== undefined) return payment;
  const amount = Math.min(booked.amount, payment.charged_back_minor);
  const charged_back_minor = payment.charged_back_minor - amount;
  const moved = await move(tx, payment, money_state({ ...payment, charged_back_minor }), cause, {
    charged_back_minor,
  });
  const receivable = payment.invoice_id === null ? 'unapplied_payments' : 'receivable';
  await post_entry(tx, {
    kind: 'chargeback_reversed',
    source_id: `chargeback:${payment.provider}:${dispute.provider_dispute_id}`,
    currency: payment.currency,
    posted_at_ms: cause.at_ms,
    description: `chargeback ${dispute.provider_dispute_id} of card payment ${payment.id} reversed (dispute won)`,
    lines: [
      { ledger_account: 'cash', debit_minor: amount, credit_minor: 0 },
      {
        ledger_account: receivable,
        party: payment.account_id ?? `payment:${payment.id}`,
        debit_minor: 0,
        credit_minor: amount,
      },
    ],
  });
  const event: BillingEvent = {
    ...event_base(payment, cause.at_ms),
    kind: 'payment_charged_back',
    amount_minor: -amount,
    attributes: {
      payment_id: payment.id,
      dispute_id: dispute.provider_dispute_id,
      method: payment.method,
      outcome: 'won',
    },
  };
  if (payment.invoice_id !== null)
    await move_invoice_paid(tx, payment.invoice_id, amount, cause.at_ms, event);
  else await record_billing_events(tx, [event]);
  return moved;
}
