import { collection_migrations } from './collection/migrations.js';
import { dispute_migrations } from './disputes/migrations.js';
import type { Ledger } from './ledger.js';
import { pay_at_charger_migrations } from './pay-at-charger/migrations.js';
import { payment_migrations } from './payments/migrations.js';

/**
 * The ledger's schema, versioned. Each migration runs once, in its own transaction, under an
 * advisory lock so that several processes starting together apply it once; the same SQL runs on
 * PGlite (PostgreSQL 18) and on PostgreSQL 15 servers. Never edit a released migration: add one.
 *
 * Amounts are integer minor units (int8) with their currency beside them; times are epoch ms.
 */
export interface LedgerMigration {
  version: number;
  name: string;
  sql: string;
}

/** Billing's own versions: 1 to 99 (20 to 29: billing analytics). Payments own 100 to 199, disputes 200 to 299, pay at the charger 300 to 349. */
const billing_migrations: readonly LedgerMigration[] = [
  {
    version: 1,
    name: 'legal entities, accounts, tokens, memberships',
    sql: `
CREATE TABLE legal_entities (
  id text PRIMARY KEY,
  name text NOT NULL,
  vat_id text NOT NULL,
  address jsonb NOT NULL,
  country_code text NOT NULL CHECK (country_code ~ '^[A-Z]{2}$'),
  time_zone text NOT NULL,
  fee_vat_percent numeric(7,4) NOT NULL CHECK (fee_vat_percent >= 0 AND fee_vat_percent < 100),
  created_at_ms int8 NOT NULL
);
CREATE TABLE number_series (
  legal_entity_id text NOT NULL REFERENCES legal_entities(id),
  series text NOT NULL,
  prefix text NOT NULL,
  next_number int8 NOT NULL DEFAULT 1 CHECK (next_number >= 1),
  PRIMARY KEY (legal_entity_id, series)
);
CREATE TABLE accounts (
  id text PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('driver', 'company')),
  name text NOT NULL,
  legal_entity_id text NOT NULL REFERENCES legal_entities(id),
  currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  billing_period text NOT NULL CHECK (billing_period IN ('monthly', 'per_session')),
  payment_terms_days int NOT NULL CHECK (payment_terms_days BETWEEN 0 AND 365),
  vat_id text NOT NULL DEFAULT '',
  email text NOT NULL DEFAULT '',
  address jsonb NOT NULL,
  closed boolean NOT NULL DEFAULT false,
  created_at_ms int8 NOT NULL,
  updated_at_ms int8 NOT NULL
);
CREATE TABLE cost_centres (
  account_id text NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
  id text NOT NULL,
  name text NOT NULL,
  PRIMARY KEY (account_id, id)
);
CREATE TABLE account_tokens (
  uid text PRIMARY KEY,
  account_id text NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
  cost_centre_id text
);
CREATE INDEX account_tokens_account ON account_tokens (account_id);
CREATE TABLE memberships (
  account_id text NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
  plan_id text NOT NULL,
  currency text NOT NULL,
  monthly_fee_minor int8 NOT NULL CHECK (monthly_fee_minor >= 0),
  starts_on date NOT NULL,
  ends_on date,
  PRIMARY KEY (account_id, plan_id, starts_on),
  CHECK (ends_on IS NULL OR ends_on >= starts_on)
);
`,
  },
  {
    version: 2,
    name: 'rated session versions from the feed',
    sql: `
CREATE TABLE session_versions (
  session_id text NOT NULL,
  version int NOT NULL,
  final boolean NOT NULL,
  id_tag text NOT NULL,
  charge_point_id text NOT NULL,
  evse_id int,
  station_id text NOT NULL,
  started_at_ms int8 NOT NULL,
  stopped_at_ms int8 NOT NULL,
  energy_wh int8 NOT NULL,
  duration_s int8 NOT NULL,
  tariff_id text NOT NULL,
  tariff_version int NOT NULL,
  currency text NOT NULL,
  total_excl_vat numeric NOT NULL,
  total_incl_vat numeric NOT NULL,
  net_minor int8 NOT NULL,
  vat_percent numeric(7,4) NOT NULL,
  recorded_at_ms int8 NOT NULL,
  PRIMARY KEY (session_id, version)
);
CREATE TABLE sessions (
  session_id text PRIMARY KEY,
  id_tag text NOT NULL,
  account_id text REFERENCES accounts(id),
  final_version int,
  stopped_at_ms int8,
  currency text,
  billed_version int,
  billed_invoice_id int8
);
CREATE INDEX sessions_unbilled ON sessions (account_id, stopped_at_ms)
  WHERE final_version IS NOT NULL AND billed_version IS NULL;
CREATE INDEX sessions_unattributed ON sessions (id_tag) WHERE account_id IS NULL;
`,
  },
  {
    version: 3,
    name: 'invoices, credit notes, billing runs',
    sql: `
CREATE TABLE billing_runs (
  id int8 GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  period text NOT NULL CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
  account_ids jsonb,
  status text NOT NULL CHECK (status IN ('running', 'finished', 'failed')),
  accounts_total int NOT NULL DEFAULT 0,
  accounts_done int NOT NULL DEFAULT 0,
  invoices_created int NOT NULL DEFAULT 0,
  error text NOT NULL DEFAULT '',
  started_at_ms int8 NOT NULL,
  finished_at_ms int8
);
CREATE TABLE invoices (
  id int8 GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('invoice', 'credit_note')),
  account_id text NOT NULL REFERENCES accounts(id),
  legal_entity_id text NOT NULL REFERENCES legal_entities(id),
  period text,
  currency text NOT NULL,
  status text NOT NULL CHECK (status IN ('draft', 'issued', 'partly_paid', 'paid', 'void')),
  series text NOT NULL,
  number int8,
  number_text text,
  issued_at_ms int8,
  issue_date date,
  due_date date,
  credited_invoice_id int8 REFERENCES invoices(id),
  reason text NOT NULL DEFAULT '',
  net_minor int8 NOT NULL DEFAULT 0,
  vat_minor int8 NOT NULL DEFAULT 0,
  total_minor int8 NOT NULL DEFAULT 0,
  paid_minor int8 NOT NULL DEFAULT 0,
  credited_minor int8 NOT NULL DEFAULT 0,
  billing_run_id int8 REFERENCES billing_runs(id),
  seller jsonb NOT NULL,
  buyer jsonb NOT NULL,
  created_at_ms int8 NOT NULL,
  UNIQUE (legal_entity_id, series, number),
  CHECK ((status = 'draft') = (number IS NULL)),
  CHECK (total_minor = net_minor + vat_minor),
  CHECK (credited_minor >= 0 AND credited_minor <= total_minor),
  CHECK ((kind = 'credit_note') = (credited_invoice_id IS NOT NULL))
);
CREATE UNIQUE INDEX invoices_period ON invoices (account_id, period, currency)
  WHERE kind = 'invoice' AND period IS NOT NULL;
CREATE INDEX invoices_account ON invoices (account_id, id);
CREATE TABLE invoice_lines (
  invoice_id int8 NOT NULL REFERENCES invoices(id),
  line_no int NOT NULL,
  kind text NOT NULL CHECK (kind IN ('session', 'fee', 'credit')),
  description text NOT NULL,
  session_id text,
  session_version int,
  started_at_ms int8,
  stopped_at_ms int8,
  charge_point_id text,
  evse_id int,
  station_id text,
  energy_wh int8,
  duration_s int8,
  tariff_id text,
  tariff_version int,
  id_tag text,
  cost_centre_id text,
  net_minor int8 NOT NULL,
  vat_percent numeric(7,4) NOT NULL,
  PRIMARY KEY (invoice_id, line_no)
);
-- A session version is invoiced at most once and credited at most once.
CREATE UNIQUE INDEX invoice_lines_session ON invoice_lines (session_id, session_version) WHERE kind = 'session';
CREATE UNIQUE INDEX invoice_lines_credit ON invoice_lines (session_id, session_version) WHERE kind = 'credit' AND session_id IS NOT NULL;
CREATE TABLE invoice_vat (
  invoice_id int8 NOT NULL REFERENCES invoices(id),
  vat_percent numeric(7,4) NOT NULL,
  net_minor int8 NOT NULL,
  vat_minor int8 NOT NULL,
  PRIMARY KEY (invoice_id, vat_percent)
);
CREATE TABLE period_closures (
  account_id text NOT NULL REFERENCES accounts(id),
  period text NOT NULL,
  billing_run_id int8 NOT NULL REFERENCES billing_runs(id),
  closed_at_ms int8 NOT NULL,
  PRIMARY KEY (account_id, period)
);

-- An issued document is immutable: only its payment state, its credited amount and voiding move.
CREATE FUNCTION invoices_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.status <> 'draft' AND (
       NEW.number IS DISTINCT FROM OLD.number OR NEW.total_minor <> OLD.total_minor
    OR NEW.net_minor <> OLD.net_minor OR NEW.vat_minor <> OLD.vat_minor
    OR NEW.account_id <> OLD.account_id OR NEW.currency <> OLD.currency
    OR NEW.issued_at_ms IS DISTINCT FROM OLD.issued_at_ms OR NEW.status = 'draft') THEN
    RAISE EXCEPTION 'invoice % is issued and cannot change', OLD.id;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER invoices_immutable BEFORE UPDATE ON invoices FOR EACH ROW EXECUTE FUNCTION invoices_immutable();
CREATE FUNCTION invoice_lines_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT status FROM invoices WHERE id = OLD.invoice_id) <> 'draft' THEN
    RAISE EXCEPTION 'lines of issued invoice % cannot change', OLD.invoice_id;
  END IF;
  IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER invoice_lines_immutable BEFORE UPDATE OR DELETE ON invoice_lines
  FOR EACH ROW EXECUTE FUNCTION invoice_lines_immutable();
`,
  },
  {
    version: 4,
    name: 'double-entry journal',
    sql: `
CREATE TABLE journal_entries (
  id int8 GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  kind text NOT NULL,
  source_id text NOT NULL,
  currency text NOT NULL,
  posted_at_ms int8 NOT NULL,
  description text NOT NULL,
  UNIQUE (kind, source_id)
);
CREATE TABLE journal_lines (
  entry_id int8 NOT NULL REFERENCES journal_entries(id),
  line_no int NOT NULL,
  ledger_account text NOT NULL,
  party text NOT NULL DEFAULT '',
  debit_minor int8 NOT NULL CHECK (debit_minor >= 0),
  credit_minor int8 NOT NULL CHECK (credit_minor >= 0),
  PRIMARY KEY (entry_id, line_no),
  CHECK ((debit_minor = 0) <> (credit_minor = 0))
);
-- Debits equal credits in every entry, checked at commit (after all of its lines are in).
CREATE FUNCTION journal_entry_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE difference int8;
BEGIN
  SELECT coalesce(sum(debit_minor), 0) - coalesce(sum(credit_minor), 0) INTO difference
    FROM journal_lines WHERE entry_id = NEW.entry_id;
  IF difference <> 0 THEN
    RAISE EXCEPTION 'journal entry % does not balance (debits - credits = %)', NEW.entry_id, difference;
  END IF;
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER journal_entry_balanced AFTER INSERT OR UPDATE ON journal_lines
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION journal_entry_balanced();
CREATE FUNCTION journal_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'journal entries are immutable: post a correcting entry';
END $$;
CREATE TRIGGER journal_lines_immutable BEFORE UPDATE OR DELETE ON journal_lines
  FOR EACH ROW EXECUTE FUNCTION journal_immutable();
CREATE TRIGGER journal_entries_immutable BEFORE UPDATE OR DELETE ON journal_entries
  FOR EACH ROW EXECUTE FUNCTION journal_immutable();
`,
  },
  {
    version: 5,
    name: 'billing event outbox',
    sql: `
CREATE TABLE billing_events (
  id bigserial PRIMARY KEY,
  kind text NOT NULL,
  occurred_at_ms int8 NOT NULL,
  legal_entity_id text NOT NULL DEFAULT '',
  account_id text NOT NULL DEFAULT '',
  invoice_id int8,
  amount_minor int8 NOT NULL DEFAULT 0,
  currency text NOT NULL DEFAULT '',
  attributes jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX billing_events_by_kind ON billing_events (kind, id);
CREATE FUNCTION billing_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'billing events are append-only';
END $$;
CREATE TRIGGER billing_events_append_only BEFORE UPDATE OR DELETE ON billing_events
  FOR EACH ROW EXECUTE FUNCTION billing_events_append_only();
`,
  },
  {
    version: 6,
    name: 'VAT parts of sessions, per-session invoices, billing run leases',
    sql: `
-- A session is one invoice line per VAT rate (rated-versions.ts session_vat_parts).
ALTER TABLE session_versions ADD COLUMN vat_parts jsonb;
DROP INDEX invoice_lines_session;
DROP INDEX invoice_lines_credit;
CREATE UNIQUE INDEX invoice_lines_session ON invoice_lines (session_id, session_version, vat_percent) WHERE kind = 'session';
CREATE UNIQUE INDEX invoice_lines_credit ON invoice_lines (session_id, session_version, vat_percent)
  WHERE kind = 'credit' AND session_id IS NOT NULL;
-- The session of a per-session invoice (accounts.billing_period = 'per_session').
ALTER TABLE invoices ADD COLUMN session_id text;
CREATE INDEX invoices_session ON invoices (session_id) WHERE session_id IS NOT NULL;
-- A run holds a lease it renews with every chunk; a run whose lease ran out (its process died) is
-- taken over by the next run of its period and marked abandoned.
ALTER TABLE billing_runs DROP CONSTRAINT billing_runs_status_check;
ALTER TABLE billing_runs ADD CONSTRAINT billing_runs_status_check
  CHECK (status IN ('running', 'finished', 'failed', 'abandoned'));
ALTER TABLE billing_runs ADD COLUMN lease_expires_at_ms int8;
ALTER TABLE billing_runs ADD COLUMN resumed_by_run_id int8 REFERENCES billing_runs(id);
`,
  },
  {
    version: 7,
    name: 'membership benefits (included energy, volume tiers, loyalty) and their discount lines',
    sql: `
-- memberships.ts MembershipBenefits, validated there: {included_energy?, volume_tiers?, loyalty?}.
ALTER TABLE memberships ADD COLUMN benefits jsonb NOT NULL DEFAULT '{}';
ALTER TABLE invoice_lines DROP CONSTRAINT invoice_lines_kind_check;
ALTER TABLE invoice_lines ADD CONSTRAINT invoice_lines_kind_check
  CHECK (kind IN ('session', 'fee', 'credit', 'discount'));
-- A discount line names its membership plan and rule; it takes off, never adds.
ALTER TABLE invoice_lines ADD COLUMN plan_id text;
ALTER TABLE invoice_lines ADD COLUMN rule text CHECK (rule IN ('included_energy', 'volume_tier', 'loyalty'));
ALTER TABLE invoice_lines ADD CONSTRAINT invoice_lines_discount_sign
  CHECK (kind <> 'discount' OR (net_minor <= 0 AND rule IS NOT NULL));
`,
  },
  {
    version: 20,
    name: 'billing events carry the transaction that wrote them, for shipping in commit-safe order',
    sql: `
-- The shipper to ClickHouse (billing/analytics/shipper.ts) reads events below the oldest running
-- transaction (pg_snapshot_xmin of its snapshot) in (xid, id) order: every transaction below that
-- horizon has committed or aborted, so no event can appear later behind the shipper's cursor,
-- whatever order concurrent writers commit in (ids alone may commit out of order). Rows from
-- before carry this migration's transaction.
ALTER TABLE billing_events ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX billing_events_by_xid ON billing_events (xid, id);
`,
  },
];

const migrations = [
  ...billing_migrations,
  ...payment_migrations,
  ...collection_migrations,
  ...dispute_migrations,
  ...pay_at_charger_migrations,
].sort((a, b) => a.version - b.version);

export const ledger_schema_version = migrations[migrations.length - 1]!.version;

/** Applies what is missing; returns the versions applied. */
export async function migrate_ledger(ledger: Ledger): Promise<number[]> {
  await ledger
    .query(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY, name text NOT NULL, applied_at_ms int8 NOT NULL)',
    )
    .catch(async (error: unknown) => {
      // Two processes creating it at once: one wins, the other sees a duplicate type; both go on.
      if (!(error instanceof Error && /already exists|duplicate key/.test(error.message))) throw error;
    });
  const applied: number[] = [];
  for (const migration of migrations) {
    const done = await ledger.transaction(async (tx) => {
      // Any fixed key: it only serializes migrating processes with each other.
      await tx.query('SELECT pg_advisory_xact_lock(7245001)');
      const rows = await tx.query('SELECT 1 FROM schema_migrations WHERE version = $1', [migration.version]);
      if (rows.length > 0) return false;
      await tx.exec(migration.sql);
      await tx.query('INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES ($1, $2, $3)', [
        migration.version,
        migration.name,
        Date.now(),
      ]);
      return true;
    });
    if (done) applied.push(migration.version);
  }
  return applied;
}
