import type { LedgerMigration } from '../migrations.js';

/**
 * The disputes part of the ledger schema: versions 200 to 299.
 *
 * A case, its message log, its audit trail, its evidence bundles and the meters' public keys. The
 * message log, the audit trail and the bundles are append-only (triggers refuse UPDATE and DELETE,
 * like billing_events): a case's history is what happened, never what someone later wished.
 */
export const dispute_migrations: readonly LedgerMigration[] = [
  {
    version: 200,
    name: 'dispute cases, messages, audit trail, evidence bundles, meter public keys',
    sql: `
CREATE TABLE dispute_cases (
  id int8 GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  subject_kind text NOT NULL CHECK (subject_kind IN ('session', 'invoice_line', 'payment')),
  session_id text NOT NULL,
  invoice_id int8 REFERENCES invoices(id),
  line_no int,
  payment_reference text NOT NULL DEFAULT '',
  charge_point_id text NOT NULL DEFAULT '',
  evse_id int,
  station_id text NOT NULL DEFAULT '',
  account_id text REFERENCES accounts(id),
  legal_entity_id text REFERENCES legal_entities(id),
  time_zone text NOT NULL,
  source text NOT NULL CHECK (source IN ('driver', 'support', 'partner', 'chargeback')),
  opened_by text NOT NULL,
  reason text NOT NULL CHECK (reason IN ('energy', 'time_idle_fee', 'tariff', 'duplicate_charge',
    'failed_session', 'not_my_session', 'other')),
  currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  amount_disputed_minor int8 NOT NULL CHECK (amount_disputed_minor >= 0),
  state text NOT NULL CHECK (state IN ('open', 'investigating', 'proposed_resolution', 'resolved', 'escalated')),
  state_entered_at_ms int8 NOT NULL,
  deadline_at_ms int8,
  proposal jsonb,
  outside_party text NOT NULL DEFAULT '',
  outcome text CHECK (outcome IN ('accepted', 'partly_accepted', 'rejected', 'chargeback_won', 'chargeback_lost')),
  outcome_reason text NOT NULL DEFAULT '',
  credited_minor int8 NOT NULL DEFAULT 0 CHECK (credited_minor >= 0),
  credit_note_id int8 REFERENCES invoices(id),
  rerate jsonb,
  findings jsonb NOT NULL DEFAULT '[]',
  access_token_sha256 text UNIQUE,
  opened_at_ms int8 NOT NULL,
  resolved_at_ms int8,
  updated_at_ms int8 NOT NULL,
  CHECK ((state = 'resolved') = (outcome IS NOT NULL)),
  CHECK ((state = 'resolved') = (deadline_at_ms IS NULL))
);
CREATE INDEX dispute_cases_deadline ON dispute_cases (deadline_at_ms) WHERE deadline_at_ms IS NOT NULL;
CREATE INDEX dispute_cases_session ON dispute_cases (session_id);
CREATE TABLE dispute_messages (
  case_id int8 NOT NULL REFERENCES dispute_cases(id),
  seq int NOT NULL,
  at_ms int8 NOT NULL,
  author_kind text NOT NULL CHECK (author_kind IN ('claimant', 'support', 'system')),
  author text NOT NULL,
  body text NOT NULL,
  PRIMARY KEY (case_id, seq)
);
CREATE TABLE dispute_audit (
  id bigserial PRIMARY KEY,
  case_id int8 NOT NULL REFERENCES dispute_cases(id),
  at_ms int8 NOT NULL,
  actor_kind text NOT NULL CHECK (actor_kind IN ('claimant', 'support', 'partner', 'provider', 'system')),
  actor text NOT NULL,
  action text NOT NULL,
  changes jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX dispute_audit_case ON dispute_audit (case_id, id);
CREATE TABLE dispute_bundles (
  case_id int8 NOT NULL REFERENCES dispute_cases(id),
  version int NOT NULL,
  generated_at_ms int8 NOT NULL,
  -- text, not jsonb: the manifest's digest is over its exact text.
  manifest text NOT NULL,
  manifest_sha256 text NOT NULL,
  parts text NOT NULL,
  pdf_base64 text NOT NULL,
  PRIMARY KEY (case_id, version)
);
CREATE FUNCTION dispute_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END $$;
CREATE TRIGGER dispute_messages_append_only BEFORE UPDATE OR DELETE ON dispute_messages
  FOR EACH ROW EXECUTE FUNCTION dispute_append_only();
CREATE TRIGGER dispute_audit_append_only BEFORE UPDATE OR DELETE ON dispute_audit
  FOR EACH ROW EXECUTE FUNCTION dispute_append_only();
CREATE TRIGGER dispute_bundles_append_only BEFORE UPDATE OR DELETE ON dispute_bundles
  FOR EACH ROW EXECUTE FUNCTION dispute_append_only();
-- The public key of a charger's meter, per EVSE (0: every EVSE of the charge point). Replacing a
-- key keeps the old one: a reading signed before the meter was exchanged still verifies.
CREATE TABLE meter_keys (
  charge_point_id text NOT NULL,
  evse_id int NOT NULL CHECK (evse_id >= 0),
  key_no int NOT NULL,
  public_key_spki_hex text NOT NULL,
  curve text NOT NULL,
  meter_serial text NOT NULL DEFAULT '',
  registered_at_ms int8 NOT NULL,
  registered_by text NOT NULL,
  PRIMARY KEY (charge_point_id, evse_id, key_no)
);
CREATE TRIGGER meter_keys_append_only BEFORE UPDATE OR DELETE ON meter_keys
  FOR EACH ROW EXECUTE FUNCTION dispute_append_only();
`,
  },
  {
    version: 201,
    name: 'one chargeback case per provider dispute',
    // A provider may deliver the same dispute event twice at once: the second opening fails here
    // instead of making a second case (billing/disputes/chargeback.ts).
    sql: `CREATE UNIQUE INDEX dispute_cases_chargeback ON dispute_cases (payment_reference) WHERE source = 'chargeback';`,
  },
];
