import type { LedgerMigration } from '../migrations.js';

/**
 * Collection without a gateway (SEPA Direct Debit, bank transfers, bank files, dunning): ledger
 * versions 150 to 199, inside the payments range (100 to 199). Amounts are int8 minor units beside
 * their currency; times are epoch ms; days are dates in the legal entity's time zone.
 */
export const collection_migrations: readonly LedgerMigration[] = [
  {
    version: 150,
    name: 'sepa creditors and mandates, collection files and attempts, bank files, dunning',
    sql: `
-- A legal entity collecting by SEPA Direct Debit: its creditor identifier and the account debited
-- amounts are credited to.
CREATE TABLE sepa_creditors (
  legal_entity_id text PRIMARY KEY REFERENCES legal_entities(id),
  creditor_id text NOT NULL,
  name text NOT NULL,
  iban text NOT NULL,
  bic text NOT NULL,
  updated_at_ms int8 NOT NULL
);
CREATE TABLE sepa_mandates (
  mandate_id text PRIMARY KEY,
  account_id text NOT NULL REFERENCES accounts(id),
  debtor_name text NOT NULL,
  iban text NOT NULL,
  bic text NOT NULL,
  signed_on date NOT NULL,
  scheme text NOT NULL CHECK (scheme IN ('CORE', 'B2B')),
  status text NOT NULL CHECK (status IN ('active', 'revoked')),
  created_at_ms int8 NOT NULL,
  updated_at_ms int8 NOT NULL
);
-- One mandate collects for an account at a time.
CREATE UNIQUE INDEX sepa_mandates_active ON sepa_mandates (account_id) WHERE status = 'active';
CREATE TABLE collection_files (
  id int8 GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('run', 'retry')),
  billing_run_id int8 REFERENCES billing_runs(id),
  message_id text NOT NULL UNIQUE,
  transactions int NOT NULL CHECK (transactions > 0),
  control_sum_minor int8 NOT NULL CHECK (control_sum_minor > 0),
  currency text NOT NULL,
  xml text NOT NULL,
  created_at_ms int8 NOT NULL,
  CHECK ((kind = 'run') = (billing_run_id IS NOT NULL))
);
-- One collection file per billing run.
CREATE UNIQUE INDEX collection_files_run ON collection_files (billing_run_id) WHERE kind = 'run';
CREATE TABLE collection_attempts (
  id int8 GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  invoice_id int8 NOT NULL REFERENCES invoices(id),
  account_id text NOT NULL REFERENCES accounts(id),
  attempt int NOT NULL CHECK (attempt >= 1),
  file_id int8 NOT NULL REFERENCES collection_files(id),
  payment_info_id text NOT NULL,
  mandate_id text NOT NULL REFERENCES sepa_mandates(mandate_id),
  sequence_type text NOT NULL CHECK (sequence_type IN ('FRST', 'RCUR')),
  end_to_end_id text NOT NULL UNIQUE,
  amount_minor int8 NOT NULL CHECK (amount_minor > 0),
  currency text NOT NULL,
  requested_on date NOT NULL,
  status text NOT NULL CHECK (status IN ('submitted', 'settled', 'rejected', 'returned')),
  reason_code text NOT NULL DEFAULT '',
  retry_due_ms int8,
  created_at_ms int8 NOT NULL,
  settled_at_ms int8,
  returned_at_ms int8,
  UNIQUE (invoice_id, attempt)
);
CREATE INDEX collection_attempts_file ON collection_attempts (file_id);
CREATE INDEX collection_attempts_retry ON collection_attempts (retry_due_ms) WHERE retry_due_ms IS NOT NULL;
-- Every bank file fed back, once (by its digest), and each of its lines with what it matched.
CREATE TABLE bank_files (
  id int8 GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  sha256 text NOT NULL UNIQUE,
  message_type text NOT NULL,
  message_id text NOT NULL,
  lines int NOT NULL,
  received_at_ms int8 NOT NULL
);
CREATE TABLE bank_file_lines (
  file_id int8 NOT NULL REFERENCES bank_files(id),
  line_no int NOT NULL,
  source_line int NOT NULL,
  kind text NOT NULL CHECK (kind IN ('rejected', 'returned', 'collection_credit', 'transfer_credit', 'other')),
  booked_on date NOT NULL,
  amount_minor int8 NOT NULL CHECK (amount_minor >= 0),
  fee_minor int8 NOT NULL DEFAULT 0 CHECK (fee_minor >= 0),
  currency text NOT NULL,
  reference text NOT NULL DEFAULT '',
  reason_code text NOT NULL DEFAULT '',
  status text NOT NULL CHECK (status IN ('matched', 'unmatched', 'mismatched', 'duplicate')),
  attempt_id int8 REFERENCES collection_attempts(id),
  invoice_id int8 REFERENCES invoices(id),
  note text NOT NULL DEFAULT '',
  PRIMARY KEY (file_id, line_no)
);
CREATE INDEX bank_file_lines_day ON bank_file_lines (booked_on);
CREATE TABLE dunning_states (
  account_id text PRIMARY KEY REFERENCES accounts(id),
  state text NOT NULL CHECK (state IN ('none', 'reminder', 'second_reminder', 'suspended')),
  since_ms int8 NOT NULL
);
-- Tokens this module blocked (and only those are unblocked): one the operator blocked stays blocked.
CREATE TABLE dunning_token_blocks (
  uid text PRIMARY KEY,
  account_id text NOT NULL REFERENCES accounts(id),
  blocked_at_ms int8 NOT NULL
);
`,
  },
];
