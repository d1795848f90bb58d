import type { LedgerMigration } from '../migrations.js';

/**
 * The pay-at-charger part of the ledger schema: versions 300 to 349.
 *
 * `pay_sessions` is one row per payment a driver started at an EVSE: its hold, the ad-hoc token
 * that binds the charging session to it, and what became of both. The public id is in the URL; the
 * capability that lets a browser see and stop the session is a cookie whose SHA-256 is kept here
 * (never the cookie itself). Status moves forward only:
 *   awaiting_payment -> authorized -> starting -> charging -> stopping -> settled
 *   and to `declined` (the card), `released` (the hold returned, nothing taken), `failed`.
 */
export const pay_at_charger_migrations: readonly LedgerMigration[] = [
  {
    version: 300,
    name: 'pay at the charger: holds bound to charging sessions, site holds, dispute requests, terminal confirmations',
    sql: `
CREATE TABLE pay_site_holds (
  station_id text PRIMARY KEY,
  currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  hold_minor int8 NOT NULL CHECK (hold_minor > 0),
  updated_at_ms int8 NOT NULL
);
CREATE TABLE pay_sessions (
  id text PRIMARY KEY,
  charge_point_id text NOT NULL,
  evse_id int NOT NULL CHECK (evse_id >= 1),
  capability_sha256 text NOT NULL,
  id_tag text NOT NULL UNIQUE,
  currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  hold_minor int8 NOT NULL CHECK (hold_minor > 0),
  hold_source text NOT NULL CHECK (hold_source IN ('site', 'max_price', 'estimate')),
  tariff_id text NOT NULL,
  tariff_version int NOT NULL,
  provider text NOT NULL,
  provider_payment_id text,
  status text NOT NULL CHECK (status IN ('awaiting_payment', 'authorized', 'starting', 'charging',
    'stopping', 'settled', 'declined', 'released', 'failed')),
  reason text,
  session_id text UNIQUE,
  transaction_id text,
  energy_wh int8 NOT NULL DEFAULT 0,
  running_incl_vat_minor int8 NOT NULL DEFAULT 0,
  total_excl_vat_minor int8,
  total_incl_vat_minor int8,
  vat_percent numeric(7,4),
  captured_minor int8,
  rated_version int,
  breakdown jsonb,
  stop_requested_by text,
  created_at_ms int8 NOT NULL,
  authorized_at_ms int8,
  started_at_ms int8,
  stopped_at_ms int8,
  settled_at_ms int8,
  updated_at_ms int8 NOT NULL,
  CHECK (captured_minor IS NULL OR (captured_minor >= 0 AND captured_minor <= hold_minor))
);
CREATE INDEX pay_sessions_evse ON pay_sessions (charge_point_id, evse_id, created_at_ms);
CREATE INDEX pay_sessions_active ON pay_sessions (status)
  WHERE status IN ('authorized', 'starting', 'charging', 'stopping');
CREATE TABLE pay_dispute_requests (
  id bigserial PRIMARY KEY,
  pay_session_id text NOT NULL REFERENCES pay_sessions(id),
  reason text NOT NULL,
  message text NOT NULL,
  created_at_ms int8 NOT NULL
);
CREATE TABLE pay_terminal_confirmations (
  id text PRIMARY KEY,
  authorization_reference text NOT NULL,
  currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  total_excl_vat_minor int8 NOT NULL,
  total_incl_vat_minor int8 NOT NULL,
  eft_data jsonb NOT NULL,
  capture_status_code text NOT NULL,
  capture_status_message text,
  last_updated text NOT NULL,
  received_at_ms int8 NOT NULL
);
CREATE INDEX pay_terminal_confirmations_reference ON pay_terminal_confirmations (authorization_reference);
`,
  },
  {
    version: 301,
    name: 'pay at the charger: dispute requests open dispute cases; terminal providers and their credential',
    // A payer's dispute is a dispute case (billing/disputes) bound to the pay session: one per
    // session. Terminal providers confirm captures with a token of their own (kept as its SHA-256).
    sql: `
ALTER TABLE pay_dispute_requests ADD COLUMN case_id int8 REFERENCES dispute_cases(id);
ALTER TABLE pay_dispute_requests ADD COLUMN amount_disputed_minor int8 CHECK (amount_disputed_minor >= 0);
CREATE UNIQUE INDEX pay_dispute_requests_session ON pay_dispute_requests (pay_session_id);
CREATE TABLE pay_terminal_providers (
  id text PRIMARY KEY CHECK (id ~ '^[a-z0-9_-]{1,32}$'),
  name text NOT NULL,
  token_sha256 text NOT NULL,
  created_at_ms int8 NOT NULL,
  revoked_at_ms int8
);
ALTER TABLE pay_terminal_confirmations ADD COLUMN terminal_provider_id text REFERENCES pay_terminal_providers(id);
`,
  },
  {
    version: 302,
    name: "pay at the charger: rated versions keep who pays, so terminal sessions are found without their provider's word",
    // The rated feed's payment_method (rating/outputs.ts attribution_of): TERMINAL for a session a
    // charger's own payment terminal authorized; its id_tag is the terminal's authorization
    // reference. NULL for versions recorded before this column. The reconciliation lists the
    // terminal sessions no confirmation settled (terminal-reconciliation.ts).
    sql: `
ALTER TABLE session_versions ADD COLUMN payment_method text;
CREATE INDEX session_versions_terminal ON session_versions (stopped_at_ms) WHERE payment_method = 'TERMINAL' AND final;
CREATE INDEX session_versions_terminal_reference ON session_versions (id_tag) WHERE payment_method = 'TERMINAL';
`,
  },
];
