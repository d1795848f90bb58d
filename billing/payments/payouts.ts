import { FieldError } from '../../core/field-error.js';
import { text_of_minor } from '../amounts.js';
import { type BillingEvent, record_billing_events } from '../events.js';
import { post_entry } from '../journal.js';
import type { Queryable } from '../ledger.js';
import type { PaymentRow } from './apply.js';
import { now_of, type PaymentsContext } from './operations.js';
import type { ProviderBalanceTransaction, ProviderPayout } from './provider.js';

/**
 * Provider fees and payouts (Stripe balance transactions and payouts):
 *
 * - Every balance transaction we learn of (a payment's captured charge, or the ones a payout lists)
 *   is stored once by its id, matched to its ledger payment or refund: `matched` when the amount
 *   agrees with the ledger (the charge's amount = captured, a refund's = -refunded row), `mismatch`
 *   when it does not, `unmatched` when the ledger has no such payment or refund (money moved at the
 *   provider that the ledger never asked for), `payout` for the payout's own movements.
 * - A fee is booked once, when its transaction is first stored: `payment_fees` (expense) debit
 *   against `cash` credit, keyed `fee:<provider>:<transaction>`, with a `payment_fee` billing event.
 *   `cash` is the clearing account of card money: a capture debits it, a refund or fee credits it,
 *   and a payout moves what is left to `bank`; its balance is what the provider holds for us.
 * - A payout (from the webhook or from listing the provider's payouts) is stored by its id; once
 *   `paid`, `bank` debit against `cash` credit (`payout_paid` entry and billing event); a payout
 *   that fails after it was booked paid is reversed (`payout_failed`). Its balance transactions are
 *   fetched, stored and summed: the payout is `matched` when the sum of their net (its own excluded)
 *   equals its amount and each of them matched the ledger, else `mismatch` with a note.
 */

const provider_methods = 'card';

async function payment_of_transaction(
  tx: Queryable,
  provider: string,
  txn: ProviderBalanceTransaction,
): Promise<{
  payment: PaymentRow | undefined;
  refund?: { id: number; amount_minor: number; status: string; payment_id: number } | undefined;
}> {
  if (txn.type === 'refund') {
    const [refund] = await tx.query<{ id: number; amount_minor: number; status: string; payment_id: number }>(
      `SELECT r.id, r.amount_minor, r.status, r.payment_id FROM payment_refunds r JOIN payments p ON p.id = r.payment_id
       WHERE p.provider = $1 AND r.provider_refund_id = $2`,
      [provider, txn.source_id],
    );
    if (refund === undefined) return { payment: undefined };
    const [payment] = await tx.query<PaymentRow>('SELECT * FROM payments WHERE id = $1', [refund.payment_id]);
    return { payment, refund };
  }
  if (txn.provider_payment_id === undefined) {
    // A charge listed without its source expanded: a charge stored before links it.
    const [known] = await tx.query<{ payment_id: number | null }>(
      'SELECT payment_id FROM provider_balance_transactions WHERE provider = $1 AND source_id = $2 AND payment_id IS NOT NULL',
      [provider, txn.source_id],
    );
    if (known?.payment_id == null) return { payment: undefined };
    const [payment] = await tx.query<PaymentRow>('SELECT * FROM payments WHERE id = $1', [known.payment_id]);
    return { payment };
  }
  const [payment] = await tx.query<PaymentRow>(
    'SELECT * FROM payments WHERE provider = $1 AND provider_payment_id = $2',
    [provider, txn.provider_payment_id],
  );
  return { payment };
}

interface Match {
  match_status: string;
  note: string;
  payment: PaymentRow | undefined;
  refund_id: number | null;
}

async function match_of(tx: Queryable, provider: string, txn: ProviderBalanceTransaction): Promise<Match> {
  if (txn.type !== 'charge' && txn.type !== 'payment' && txn.type !== 'refund') {
    return { match_status: 'payout', note: '', payment: undefined, refund_id: null };
  }
  const found = await payment_of_transaction(tx, provider, txn);
  const payment = found.payment;
  const refund_id = found.refund?.id ?? null;
  const result = (match_status: string, note = ''): Match => ({ match_status, note, payment, refund_id });
  if (payment === undefined) {
    return result(
      'unmatched',
      `no ledger ${txn.type === 'refund' ? 'refund' : 'payment'} for ${txn.source_id}`,
    );
  }
  if (txn.currency !== payment.currency) {
    return result(
      'mismatch',
      `currency ${txn.currency}, the ledger's payment ${payment.id} is ${payment.currency}`,
    );
  }
  if (txn.type === 'refund') {
    const expected = -(found.refund?.amount_minor ?? 0);
    if (expected === txn.amount_minor && found.refund?.status === 'succeeded') return result('matched');
    return result(
      'mismatch',
      `refund ${txn.amount_minor}, the ledger's refund ${refund_id} is ${expected} (${found.refund?.status})`,
    );
  }
  if (txn.amount_minor === payment.captured_minor) return result('matched');
  return result(
    'mismatch',
    `charge ${txn.amount_minor}, the ledger's payment ${payment.id} captured ${payment.captured_minor}`,
  );
}

/**
 * Stores a balance transaction once and books its fee once; a known one gains its payout, and is
 * matched again while it did not match (the ledger may have caught up since).
 */
export async function record_balance_transaction(
  tx: Queryable,
  provider: string,
  txn: ProviderBalanceTransaction,
  payout_id: string | null,
  at_ms: number,
): Promise<{ fresh: boolean; match_status: string }> {
  if (txn.net_minor !== txn.amount_minor - txn.fee_minor) {
    throw new Error(`balance transaction ${txn.transaction_id}: net is not amount - fee`);
  }
  const [known] = await tx.query<{ match_status: string }>(
    'SELECT match_status FROM provider_balance_transactions WHERE provider = $1 AND transaction_id = $2 FOR UPDATE',
    [provider, txn.transaction_id],
  );
  if (known !== undefined) {
    let match_status = known.match_status;
    if (match_status === 'unmatched' || match_status === 'mismatch') {
      const match = await match_of(tx, provider, txn);
      match_status = match.match_status;
      await tx.query(
        `UPDATE provider_balance_transactions SET match_status = $3, note = $4, payment_id = $5, refund_id = $6
         WHERE provider = $1 AND transaction_id = $2`,
        [
          provider,
          txn.transaction_id,
          match.match_status,
          match.note,
          match.payment?.id ?? null,
          match.refund_id,
        ],
      );
    }
    if (payout_id !== null) {
      await tx.query(
        'UPDATE provider_balance_transactions SET payout_id = $3 WHERE provider = $1 AND transaction_id = $2',
        [provider, txn.transaction_id, payout_id],
      );
    }
    return { fresh: false, match_status };
  }
  const { match_status, note, payment, refund_id } = await match_of(tx, provider, txn);
  await tx.query(
    `INSERT INTO provider_balance_transactions (provider, transaction_id, type, source_id, provider_payment_id, payment_id,
       refund_id, currency, amount_minor, fee_minor, net_minor, payout_id, match_status, note, created_at_ms, available_on_ms,
       recorded_at_ms)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
    [
      provider,
      txn.transaction_id,
      txn.type,
      txn.source_id,
      txn.provider_payment_id ?? payment?.provider_payment_id ?? null,
      payment?.id ?? null,
      refund_id,
      txn.currency,
      txn.amount_minor,
      txn.fee_minor,
      txn.net_minor,
      payout_id,
      match_status,
      note.slice(0, 500),
      txn.created_at_ms,
      txn.available_on_ms,
      at_ms,
    ],
  );
  if (txn.fee_minor > 0) await book_fee(tx, provider, txn, payment, at_ms);
  return { fresh: true, match_status };
}

async function book_fee(
  tx: Queryable,
  provider: string,
  txn: ProviderBalanceTransaction,
  payment: PaymentRow | undefined,
  at_ms: number,
): Promise<void> {
  await post_entry(tx, {
    kind: 'payment_fee',
    source_id: `fee:${provider}:${txn.transaction_id}`,
    currency: txn.currency,
    posted_at_ms: at_ms,
    description: `${provider} fee on ${txn.type} ${txn.source_id}${payment ? ` (payment ${payment.id})` : ''}`,
    lines: [
      { ledger_account: 'payment_fees', party: provider, debit_minor: txn.fee_minor, credit_minor: 0 },
      { ledger_account: 'cash', debit_minor: 0, credit_minor: txn.fee_minor },
    ],
  });
  const event: BillingEvent = {
    kind: 'payment_fee',
    occurred_at_ms: at_ms,
    amount_minor: txn.fee_minor,
    currency: txn.currency,
    attributes: {
      method: payment?.method ?? provider_methods,
      provider,
      transaction_id: txn.transaction_id,
      source: txn.type,
      ...(payment !== undefined ? { payment_id: payment.id } : {}),
    },
  };
  if (payment?.account_id != null) event.account_id = payment.account_id;
  if (payment?.invoice_id != null) event.invoice_id = payment.invoice_id;
  await record_billing_events(tx, [event]);
}

/**
 * Fees of captured payments not recorded yet, `limit` at a time: each charge's balance
 * transaction fetched and stored (its fee booked once).
 */
export async function record_payment_fees(ctx: PaymentsContext, limit = 50): Promise<number> {
  const provider = ctx.provider;
  if (provider.charge_transaction_of === undefined) return 0;
  const due = await ctx.ledger.query<{ id: number; provider_payment_id: string }>(
    `SELECT p.id, p.provider_payment_id FROM payments p
     WHERE p.provider = $1 AND p.captured_minor > 0 AND p.provider_payment_id IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM provider_balance_transactions t WHERE t.payment_id = p.id AND t.type IN ('charge', 'payment'))
     ORDER BY p.id LIMIT $2`,
    [provider.name, limit],
  );
  let recorded = 0;
  for (const p of due) {
    const txn = await provider.charge_transaction_of(p.provider_payment_id);
    if (txn === undefined) continue;
    await ctx.ledger.transaction(async (tx) => {
      if ((await record_balance_transaction(tx, provider.name, txn, null, now_of(ctx))).fresh) recorded++;
    });
  }
  return recorded;
}

/** A payout's state from the provider (event or list), applied once per change; books it paid once. */
export async function apply_payout(
  tx: Queryable,
  provider: string,
  payout: ProviderPayout,
  at_ms: number,
): Promise<void> {
  const [before] = await tx.query<{ status: string }>(
    'SELECT status FROM provider_payouts WHERE provider = $1 AND payout_id = $2 FOR UPDATE',
    [provider, payout.provider_payout_id],
  );
  // A payout only moves forward: a late "pending" after "paid" changes nothing.
  const rank: Record<string, number> = { pending: 0, in_transit: 1, paid: 2, failed: 3, canceled: 3 };
  if (before !== undefined && (rank[payout.status] ?? 0) <= (rank[before.status] ?? 0)) return;
  // Two events of one new payout applied at once both find no row: the insert or update keeps
  // only a step forward, so a "pending" committed second never undoes a "paid".
  const rank_sql = (status: string) =>
    `CASE ${status} WHEN 'pending' THEN 0 WHEN 'in_transit' THEN 1 WHEN 'paid' THEN 2 ELSE 3 END`;
  const [changed] = await tx.query(
    `INSERT INTO provider_payouts (provider, payout_id, currency, amount_minor, status, arrival_on, failure_code, created_at_ms,
       updated_at_ms)
     VALUES ($1, $2, $3, $4, $5, $6::date, $7, $8, $9)
     ON CONFLICT (provider, payout_id) DO UPDATE SET status = EXCLUDED.status, failure_code = EXCLUDED.failure_code,
       arrival_on = EXCLUDED.arrival_on, updated_at_ms = EXCLUDED.updated_at_ms
     WHERE ${rank_sql('EXCLUDED.status')} > ${rank_sql('provider_payouts.status')}
     RETURNING 1`,
    [
      provider,
      payout.provider_payout_id,
      payout.currency,
      payout.amount_minor,
      payout.status,
      payout.arrival_on,
      payout.failure_code ?? null,
      payout.created_at_ms,
      at_ms,
    ],
  );
  if (changed === undefined) return;
  const source_id = `payout:${provider}:${payout.provider_payout_id}`;
  const base = {
    occurred_at_ms: at_ms,
    amount_minor: payout.amount_minor,
    currency: payout.currency,
  };
  if (payout.status === 'paid') {
    await post_entry(tx, {
      kind: 'payout_paid',
      source_id,
      currency: payout.currency,
      posted_at_ms: at_ms,
      description: `${provider} payout ${payout.provider_payout_id} to the bank, arriving ${payout.arrival_on}`,
      lines: [
        { ledger_account: 'bank', debit_minor: payout.amount_minor, credit_minor: 0 },
        { ledger_account: 'cash', debit_minor: 0, credit_minor: payout.amount_minor },
      ],
    });
    await record_billing_events(tx, [
      {
        ...base,
        kind: 'payout_paid',
        attributes: {
          method: provider_methods,
          provider,
          payout_id: payout.provider_payout_id,
          arrival_on: payout.arrival_on,
        },
      },
    ]);
  } else if (payout.status === 'failed' || payout.status === 'canceled') {
    const [paid] = await tx.query('SELECT 1 FROM journal_entries WHERE kind = $1 AND source_id = $2', [
      'payout_paid',
      source_id,
    ]);
    if (paid !== undefined) {
      await post_entry(tx, {
        kind: 'payout_failed',
        source_id,
        currency: payout.currency,
        posted_at_ms: at_ms,
        description: `${provider} payout ${payout.provider_payout_id} ${payout.status} (${payout.failure_code ?? 'no code'}): back in the provider balance`,
        lines: [
          { ledger_account: 'cash', debit_minor: payout.amount_minor, credit_minor: 0 },
          { ledger_account: 'bank', debit_minor: 0, credit_minor: payout.amount_minor },
        ],
      });
    }
    await record_billing_events(tx, [
      {
        ...base,
        kind: 'payout_failed',
        attributes: {
          method: provider_methods,
          provider,
          payout_id: payout.provider_payout_id,
          status: payout.status,
          failure_code: payout.failure_code ?? payout.status,
        },
      },
    ]);
  }
}

/**
 * Reconciles one payout: its balance transactions fetched and stored, their net summed (its own
 * movement excluded) against its amount, each matched to the ledger.
 */
export async function reconcile_payout(
  ctx: PaymentsContext,
  provider_payout_id: string,
): Promise<PayoutView> {
  const provider = ctx.provider;
  if (provider.payout_transactions === undefined) {
    throw new FieldError('payout_id', `provider ${provider.name} has no payouts`);
  }
  const txns = await provider.payout_transactions(provider_payout_id);
  const at_ms = now_of(ctx);
  await ctx.ledger.transaction(async (tx) => {
    const [payout] = await tx.query<{ amount_minor: number; currency: string }>(
      'SELECT amount_minor, currency FROM provider_payouts WHERE provider = $1 AND payout_id = $2 FOR UPDATE',
      [provider.name, provider_payout_id],
    );
    if (payout === undefined) throw new FieldError('payout_id', 'is not a known payout');
    let net = 0;
    let settled = 0;
    const notes: string[] = [];
    for (const txn of txns) {
      const { match_status } = await record_balance_transaction(
        tx,
        provider.name,
        txn,
        provider_payout_id,
        at_ms,
      );
      // The payout's own movement (type payout, source the payout) is not money it settles.
      if (txn.type === 'payout' && txn.source_id === provider_payout_id) continue;
      settled++;
      net += txn.net_minor;
      if (match_status === 'unmatched' || match_status === 'mismatch')
        notes.push(`${txn.transaction_id} ${match_status}`);
    }
    if (net !== payout.amount_minor) {
      notes.unshift(
        `transactions net ${text_of_minor(net, payout.currency)}, payout ${text_of_minor(payout.amount_minor, payout.currency)}`,
      );
    }
    await tx.query(
      `UPDATE provider_payouts SET transactions = $3, transactions_net_minor = $4, reconciliation = $5, note = $6, updated_at_ms = $7
       WHERE provider = $1 AND payout_id = $2`,
      [
        provider.name,
        provider_payout_id,
        settled,
        net,
        notes.length === 0 ? 'matched' : 'mismatch',
        notes.join('; ').slice(0, 2000),
        at_ms,
      ],
    );
  });
  return (await get_payout(ctx.ledger, provider.name, provider_payout_id))!;
}

/**
 * Payouts of the last `days` listed at the provider and applied (a missed webhook is caught up),
 * then every one not yet reconciled is reconciled. Returns how many payouts were reconciled.
 */
export async function sync_payouts(
  ctx: PaymentsContext,
  options: { days?: number; limit?: number } = {},
): Promise<{ listed: number; reconciled: number }> {
  const provider = ctx.provider;
  if (provider.list_payouts === undefined) return { listed: 0, reconciled: 0 };
  const now = now_of(ctx);
  const payouts = await provider.list_payouts({
    created_after_ms: now - (options.days ?? 14) * 86_400_000,
    limit: options.limit ?? 100,
  });
  for (const payout of payouts) {
    await ctx.ledger.transaction((tx) => apply_payout(tx, provider.name, payout, now));
  }
  const due = await ctx.ledger.query<{ payout_id: string }>(
    `SELECT payout_id FROM provider_payouts WHERE provider = $1 AND reconciliation = 'pending' AND status IN ('paid', 'failed')
     ORDER BY created_at_ms LIMIT $2`,
    [provider.name, options.limit ?? 100],
  );
  for (const { payout_id } of due) await reconcile_payout(ctx, payout_id);
  return { listed: payouts.length, reconciled: due.length };
}

export interface PayoutTransactionView {
  transaction_id: string;
  type: string;
  source_id: string;
  payment_id: number | null;
  refund_id: number | null;
  currency: string;
  amount: string;
  fee: string;
  net: string;
  match_status: string;
  note: string;
}

/** A provider_balance_transactions row as the views read it (minor units). */
type BalanceTransactionRow = Omit<PayoutTransactionView, 'amount' | 'fee' | 'net'> & {
  amount_minor: number;
  fee_minor: number;
  net_minor: number;
};

const balance_transaction_columns =
  'transaction_id, type, source_id, payment_id, refund_id, currency, amount_minor, fee_minor, net_minor, match_status, note';

function transaction_view({
  amount_minor,
  fee_minor,
  net_minor,
  ...rest
}: BalanceTransactionRow): PayoutTransactionView {
  return {
    ...rest,
    amount: text_of_minor(amount_minor, rest.currency),
    fee: text_of_minor(fee_minor, rest.currency),
    net: text_of_minor(net_minor, rest.currency),
  };
}

export interface PayoutView {
  provider: string;
  payout_id: string;
  currency: string;
  amount: string;
  amount_minor: number;
  status: string;
  arrival_on: string;
  failure_code: string | null;
  reconciliation: string;
  transactions: number | null;
  transactions_net: string | null;
  note: string;
  items?: PayoutTransactionView[];
}

interface PayoutRow {
  provider: string;
  payout_id: string;
  currency: string;
  amount_minor: number;
  status: string;
  arrival_on: string;
  failure_code: string | null;
  reconciliation: string;
  transactions: number | null;
  transactions_net_minor: number | null;
  note: string;
}

const payout_columns = `provider, payout_id, currency, amount_minor, status, to_char(arrival_on, 'YYYY-MM-DD') AS arrival_on,
  failure_code, reconciliation, transactions, transactions_net_minor, note`;

function payout_view(row: PayoutRow): PayoutView {
  const { transactions_net_minor, ...rest } = row;
  return {
    ...rest,
    amount: text_of_minor(row.amount_minor, row.currency),
    transactions_net:
      transactions_net_minor === null ? null : text_of_minor(transactions_net_minor, row.currency),
  };
}

export async function get_payout(
  db: Queryable,
  provider: string,
  payout_id: string,
): Promise<PayoutView | undefined> {
  const [row] = await db.query<PayoutRow>(
    `SELECT ${payout_columns} FROM provider_payouts WHERE provider = $1 AND payout_id = $2`,
    [provider, payout_id],
  );
  if (row === undefined) return undefined;
  const items = await db.query<BalanceTransactionRow>(
    `SELECT ${balance_transaction_columns}
     FROM provider_balance_transactions WHERE provider = $1 AND payout_id = $2 ORDER BY created_at_ms, transaction_id`,
    [provider, payout_id],
  );
  return {
    ...payout_view(row),
    items: items.map(transaction_view),
  };
}

export const payouts_page_max = 200;

export async function list_payouts(
  db: Queryable,
  filter: { status?: string | undefined; reconciliation?: string | undefined; limit?: number },
): Promise<PayoutView[]> {
  const rows = await db.query<PayoutRow>(
    `SELECT ${payout_columns} FROM provider_payouts
     WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR reconciliation = $2)
     ORDER BY arrival_on DESC, payout_id LIMIT $3`,
    [filter.status ?? null, filter.reconciliation ?? null, filter.limit ?? payouts_page_max],
  );
  return rows.map(payout_view);
}

/**
 * For the daily reconciliation report: payouts arriving that day (with what did not match), the
 * balance transactions recorded that day that matched no ledger payment or disagree with it, and
 * the provider fees booked that day per currency.
 */
export interface PayoutReport {
  payouts: PayoutView[];
  transactions_unmatched: PayoutTransactionView[];
  provider_fees: { currency: string; amount: string; amount_minor: number }[];
}

export async function payout_report(db: Queryable, day: string): Promise<PayoutReport> {
  const rows = await db.query<PayoutRow>(
    `SELECT ${payout_columns} FROM provider_payouts WHERE arrival_on = $1::date ORDER BY payout_id`,
    [day],
  );
  const payouts: PayoutView[] = [];
  for (const row of rows) {
    const full = (await get_payout(db, row.provider, row.payout_id))!;
    payouts.push({
      ...full,
      items: (full.items ?? []).filter(
        (i) => i.match_status === 'unmatched' || i.match_status === 'mismatch',
      ),
    });
  }
  const day_start = Date.parse(`${day}T00:00:00Z`);
  const unmatched = await db.query<BalanceTransactionRow>(
    `SELECT ${balance_transaction_columns}
     FROM provider_balance_transactions WHERE recorded_at_ms >= $1 AND recorded_at_ms < $2
       AND match_status IN ('unmatched', 'mismatch') ORDER BY recorded_at_ms, transaction_id LIMIT 10000`,
    [day_start, day_start + 86_400_000],
  );
  const fees = await db.query<{ currency: string; amount_minor: number }>(
    `SELECT currency, sum(fee_minor)::int8 AS amount_minor FROM provider_balance_transactions
     WHERE recorded_at_ms >= $1 AND recorded_at_ms < $2 AND fee_minor > 0 GROUP BY currency ORDER BY currency`,
    [day_start, day_start + 86_400_000],
  );
  return {
    payouts,
    transactions_unmatched: unmatched.map(transaction_view),
    provider_fees: fees.map((f) => ({ ...f, amount: text_of_minor(f.amount_minor, f.currency) })),
  };
}
