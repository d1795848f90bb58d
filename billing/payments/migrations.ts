import type { LedgerMigration } from '../migrations.js';

/**
 * The payments part of the ledger schema: versions 100 to 149 (gateway payments, refunds, provider
 * events, account credit); 150 to 199 belong to collection (direct debit, dunning).
 *
 * - `payments`: one row per attempt to take money through a provider (a hold or an off-session
 *   charge), its amounts in minor units of `currency` and its state.
 * - `payment_transitions`: every change of a payment's state, who or what made it, when and why.
 *   Append-only.
 * - `payment_operations`: the intents. A row (with its idempotency key and the exact request) is
 *   committed BEFORE the provider is called; the answer is recorded after. A `pending` row found
 *   after a crash is sent again with the same key, so the provider acts at most once.
 * - `payment_refunds`: refunds, each against one payment (and the credit note it pays out, if any).
 * - `provider_events`: every verified provider event, by its id: an event is processed once.
 * - `payment_customers`: the provider customer and saved method per account, and the account's
 *   choice for credit notes (refund to the payment, or keep as account credit).
 * - `account_credit`: movements of an account's credit (+ added from a credit note, - used for an
 *   invoice); the balance is the sum.
 * - 101 `provider_balance_transactions`: the gateway's balance movements (charge with its fee,
 *   refund, payout, failed payout) by id, each matched to its ledger payment or refund;
 *   `provider_payouts`: payouts to the bank with their reconciliation (billing/payments/payouts.ts).
 */
export const payment_migrations: readonly LedgerMigration[] = [
  {
    version: 100,
    name: 'gateway payments, transitions, operations, refunds, provider events, account credit',
    sql: `
CREATE TABLE payment_customers (
  account_id text PRIMARY KEY REFERENCES accounts(id),
  provider text NOT NULL,
  provider_customer_id text NOT NULL,
  payment_method_id text,
  card_brand text,
  card_last4 text,
  credit_notes text NOT NULL DEFAULT 'refund' CHECK (credit_notes IN ('refund', 'account_credit')),
  updated_at_ms int8 NOT NULL,
  UNIQUE (provider, provider_customer_id)
);
CREATE TABLE payments (
  id int8 GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  provider text NOT NULL,
  provider_payment_id text,
  purpose text NOT NULL CHECK (purpose IN ('invoice', 'hold')),
  method text NOT NULL CHECK (method IN ('card', 'wallet')),
  account_id text REFERENCES accounts(id),
  invoice_id int8 REFERENCES invoices(id),
  attempt int NOT NULL DEFAULT 1 CHECK (attempt >= 1),
  currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  amount_minor int8 NOT NULL CHECK (amount_minor > 0),
  capturable_minor int8 NOT NULL DEFAULT 0 CHECK (capturable_minor >= 0),
  captured_minor int8 NOT NULL DEFAULT 0 CHECK (captured_minor >= 0),
  refunded_minor int8 NOT NULL DEFAULT 0 CHECK (refunded_minor >= 0),
  charged_back_minor int8 NOT NULL DEFAULT 0 CHECK (charged_back_minor >= 0),
  state text NOT NULL CHECK (state IN ('created', 'requires_action', 'authorized', 'captured', 'partly_refunded',
    'refunded', 'charged_back', 'cancelled', 'failed')),
  next_action_url text,
  failure_code text,
  metadata jsonb NOT NULL DEFAULT '{}',
  created_at_ms int8 NOT NULL,
  updated_at_ms int8 NOT NULL,
  UNIQUE (provider, provider_payment_id),
  UNIQUE (invoice_id, attempt),
  CHECK (capturable_minor <= amount_minor),
  CHECK (captured_minor <= amount_minor),
  CHECK (refunded_minor + charged_back_minor <= captured_minor),
  CHECK ((purpose = 'invoice') = (invoice_id IS NOT NULL))
);
CREATE INDEX payments_account ON payments (account_id, id);
CREATE TABLE payment_transitions (
  id int8 GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  payment_id int8 NOT NULL REFERENCES payments(id),
  from_state text NOT NULL,
  to_state text NOT NULL,
  actor text NOT NULL,
  reason text NOT NULL,
  provider_event_id text,
  at_ms int8 NOT NULL
);
CREATE INDEX payment_transitions_payment ON payment_transitions (payment_id, id);
CREATE TABLE payment_operations (
  id int8 GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  payment_id int8 NOT NULL REFERENCES payments(id),
  kind text NOT NULL CHECK (kind IN ('authorize', 'charge', 'capture', 'cancel', 'refund')),
  seq int NOT NULL CHECK (seq >= 1),
  idempotency_key text NOT NULL UNIQUE,
  request jsonb NOT NULL,
  status text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
  error_code text,
  error_message text,
  created_at_ms int8 NOT NULL,
  finished_at_ms int8,
  UNIQUE (payment_id, kind, seq)
);
CREATE INDEX payment_operations_pending ON payment_operations (id) WHERE status = 'pending';
CREATE TABLE payment_refunds (
  id int8 GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  payment_id int8 NOT NULL REFERENCES payments(id),
  operation_id int8 UNIQUE REFERENCES payment_operations(id),
  credit_note_id int8 REFERENCES invoices(id),
  provider_refund_id text,
  currency text NOT NULL,
  amount_minor int8 NOT NULL CHECK (amount_minor > 0),
  status text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
  reason text NOT NULL DEFAULT '',
  created_at_ms int8 NOT NULL,
  updated_at_ms int8 NOT NULL,
  UNIQUE (payment_id, provider_refund_id)
);
CREATE TABLE provider_events (
  provider text NOT NULL,
  event_id text NOT NULL,
  type text NOT NULL,
  provider_type text NOT NULL,
  provider_payment_id text,
  payment_id int8 REFERENCES payments(id),
  outcome text NOT NULL,
  created_at_ms int8 NOT NULL,
  received_at_ms int8 NOT NULL,
  PRIMARY KEY (provider, event_id)
);
CREATE TABLE account_credit (
  id int8 GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  account_id text NOT NULL REFERENCES accounts(id),
  currency text NOT NULL,
  amount_minor int8 NOT NULL CHECK (amount_minor <> 0),
  source text NOT NULL,
  invoice_id int8 REFERENCES invoices(id),
  at_ms int8 NOT NULL,
  UNIQUE (source)
);
CREATE INDEX account_credit_account ON account_credit (account_id, currency);

CREATE FUNCTION payments_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END $$;
CREATE TRIGGER payment_transitions_append_only BEFORE UPDATE OR DELETE ON payment_transitions
  FOR EACH ROW EXECUTE FUNCTION payments_append_only();
CREATE TRIGGER account_credit_append_only BEFORE UPDATE OR DELETE ON account_credit
  FOR EACH ROW EXECUTE FUNCTION payments_append_only();
`,
  },
  {
    version: 101,
    name: 'provider balance transactions (fees) and payouts',
    sql: `
CREATE TABLE provider_balance_transactions (
  provider text NOT NULL,
  transaction_id text NOT NULL,
  type text NOT NULL,
  source_id text NOT NULL,
  provider_payment_id text,
  payment_id int8 REFERENCES payments(id),
  refund_id int8 REFERENCES payment_refunds(id),
  currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  amount_minor int8 NOT NULL,
  fee_minor int8 NOT NULL CHECK (fee_minor >= 0),
  net_minor int8 NOT NULL,
  payout_id text,
  match_status text NOT NULL CHECK (match_status IN ('matched', 'unmatched', 'mismatch', 'payout')),
  note text NOT NULL DEFAULT '',
  created_at_ms int8 NOT NULL,
  available_on_ms int8 NOT NULL,
  recorded_at_ms int8 NOT NULL,
  PRIMARY KEY (provider, transaction_id),
  CHECK (net_minor = amount_minor - fee_minor)
);
CREATE INDEX provider_balance_transactions_payout ON provider_balance_transactions (provider, payout_id);
CREATE INDEX provider_balance_transactions_payment ON provider_balance_transactions (payment_id);
CREATE TABLE provider_payouts (
  provider text NOT NULL,
  payout_id text NOT NULL,
  currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  amount_minor int8 NOT NULL CHECK (amount_minor >= 0),
  status text NOT NULL CHECK (status IN ('pending', 'in_transit', 'paid', 'failed', 'canceled')),
  arrival_on date NOT NULL,
  failure_code text,
  transactions int,
  transactions_net_minor int8,
  reconciliation text NOT NULL DEFAULT 'pending' CHECK (reconciliation IN ('pending', 'matched', 'mismatch')),
  note text NOT NULL DEFAULT '',
  created_at_ms int8 NOT NULL,
  updated_at_ms int8 NOT NULL,
  PRIMARY KEY (provider, payout_id)
);
CREATE INDEX provider_payouts_arrival ON provider_payouts (arrival_on);
`,
  },
];
