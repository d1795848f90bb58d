import { FieldError } from '../core/field-error.js';
import { Money } from '../core/money.js';
import { minor_of, text_of_minor } from './amounts.js';
import type { Ledger, Queryable } from './ledger.js';
import { benefit_fields, has_benefits, type MembershipBenefits, validate_benefits } from './memberships.js';

/**
 * Billing accounts (a driver, or a company/fleet with cost centres), the tokens they own, their
 * memberships, and the legal entities that invoice them (each with its own number series).
 * Validation names the field of any bad input; nothing is written unless all of it is valid.
 */
export interface Address {
  line1: string;
  line2?: string;
  postal_code: string;
  city: string;
  country_code: string;
}

export interface LegalEntity {
  id: string;
  name: string;
  vat_id: string;
  address: Address;
  country_code: string;
  time_zone: string;
  /** VAT on membership fees, percent as decimal text. */
  fee_vat_percent: string;
  invoice_prefix: string;
  credit_note_prefix: string;
}

export interface AccountToken {
  uid: string;
  cost_centre_id?: string;
}

export interface Membership {
  plan_id: string;
  currency: string;
  /** Monthly fee excl. VAT, decimal text in the currency. */
  monthly_fee: string;
  /** First day, YYYY-MM-DD; ends_on is the last day (inclusive), absent while it runs. */
  starts_on: string;
  ends_on?: string;
  /** Beyond the fee (memberships.ts): included kWh per period, volume tiers, loyalty. */
  included_energy?: MembershipBenefits['included_energy'];
  volume_tiers?: MembershipBenefits['volume_tiers'];
  loyalty?: MembershipBenefits['loyalty'];
}

export interface Account {
  id: string;
  kind: 'driver' | 'company';
  name: string;
  legal_entity_id: string;
  currency: string;
  billing_period: 'monthly' | 'per_session';
  payment_terms_days: number;
  vat_id: string;
  email: string;
  address: Address;
  cost_centres: { id: string; name: string }[];
  tokens: AccountToken[];
  memberships: Membership[];
}

type Json = Record<string, unknown>;

const id_pattern = /^[\x21-\x7e]{1,64}$/;
const day_pattern = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/;

function object_of(value: unknown, field: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new FieldError(field, 'must be an object');
  return value as Json;
}

function only_fields(o: Json, allowed: readonly string[], prefix: string): void {
  for (const key of Object.keys(o)) {
    if (!allowed.includes(key)) throw new FieldError(`${prefix}${key}`, 'is not a known field');
  }
}

function text(o: Json, key: string, field: string, length_max: number, required = true): string {
  const value = o[key];
  if (value === undefined && !required) return '';
  if (typeof value !== 'string' || (required && value.length === 0) || value.length > length_max) {
    throw new FieldError(field, `must be a string of ${required ? 1 : 0} to ${length_max} characters`);
  }
  return value;
}

export function validate_id(value: unknown, field: string): string {
  if (typeof value !== 'string' || !id_pattern.test(value)) {
    throw new FieldError(field, 'must be 1 to 64 printable ASCII characters');
  }
  return value;
}

function validate_address(value: unknown, field: string): Address {
  const o = object_of(value, field);
  only_fields(o, ['line1', 'line2', 'postal_code', 'city', 'country_code'], `${field}.`);
  const country_code = text(o, 'country_code', `${field}.country_code`, 2);
  if (!/^[A-Z]{2}$/.test(country_code))
    throw new FieldError(`${field}.country_code`, 'must be ISO 3166-1 alpha-2');
  const address: Address = {
    line1: text(o, 'line1', `${field}.line1`, 200),
    postal_code: text(o, 'postal_code', `${field}.postal_code`, 20),
    city: text(o, 'city', `${field}.city`, 100),
    country_code,
  };
  const line2 = text(o, 'line2', `${field}.line2`, 200, false);
  if (line2 !== '') address.line2 = line2;
  return address;
}

function validate_currency(value: unknown, field: string): string {
  if (typeof value !== 'string' || !/^[A-Z]{3}$/.test(value))
    throw new FieldError(field, 'must be an ISO 4217 code');
  return value;
}

function validate_percent(value: unknown, field: string): string {
  if (typeof value !== 'string' || !/^\d{1,2}(\.\d{1,4})?$/.test(value)) {
    throw new FieldError(field, 'must be a percent as decimal text, 0 to 99.9999');
  }
  return new Money(value).toString();
}

function validate_day(value: unknown, field: string): string {
  if (
    typeof value !== 'string' ||
    !day_pattern.test(value) ||
    Number.isNaN(Date.parse(`${value}T00:00:00Z`))
  ) {
    throw new FieldError(field, 'must be a date YYYY-MM-DD');
  }
  return value;
}

export function validate_time_zone(value: unknown, field: string): string {
  if (typeof value !== 'string') throw new FieldError(field, 'must be an IANA time zone');
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: value });
  } catch {
    throw new FieldError(field, 'must be an IANA time zone');
  }
  return value;
}

export function validate_legal_entity(id: string, value: unknown): LegalEntity {
  const o = object_of(value, '(body)');
  only_fields(
    o,
    [
      'name',
      'vat_id',
      'address',
      'country_code',
      'time_zone',
      'fee_vat_percent',
      'invoice_prefix',
      'credit_note_prefix',
    ],
    '',
  );
  const country_code = text(o, 'country_code', 'country_code', 2);
  if (!/^[A-Z]{2}$/.test(country_code)) throw new FieldError('country_code', 'must be ISO 3166-1 alpha-2');
  const prefix = (key: string, fallback: string) => {
    const value = o[key] ?? fallback;
    if (typeof value !== 'string' || !/^[A-Z0-9-]{0,16}$/.test(value)) {
      throw new FieldError(key, 'must be 0 to 16 characters A-Z, 0-9, -');
    }
    return value;
  };
  const entity: LegalEntity = {
    id: validate_id(id, 'id'),
    name: text(o, 'name', 'name', 200),
    vat_id: text(o, 'vat_id', 'vat_id', 30),
    address: validate_address(o.address, 'address'),
    country_code,
    time_zone: validate_time_zone(o.time_zone, 'time_zone'),
    fee_vat_percent: validate_percent(o.fee_vat_percent, 'fee_vat_percent'),
    invoice_prefix: prefix('invoice_prefix', 'INV-'),
    credit_note_prefix: prefix('credit_note_prefix', 'CN-'),
  };
  if (entity.invoice_prefix === entity.credit_note_prefix) {
    throw new FieldError('credit_note_prefix', 'must differ from invoice_prefix');
  }
  return entity;
}

/** Shape checks only; what needs the ledger (legal entity, token owners) is checked in put_account. */
export function validate_account(id: string, value: unknown): Account {
  const o = object_of(value, '(body)');
  only_fields(
    o,
    [
      'kind',
      'name',
      'legal_entity_id',
      'currency',
      'billing_period',
      'payment_terms_days',
      'vat_id',
      'email',
      'address',
      'cost_centres',
      'tokens',
      'memberships',
    ],
    '',
  );
  const kind = o.kind;
  if (kind !== 'driver' && kind !== 'company') throw new FieldError('kind', 'must be driver or company');
  const billing_period = o.billing_period ?? 'monthly';
  if (billing_period !== 'monthly' && billing_period !== 'per_session') {
    throw new FieldError('billing_period', 'must be monthly or per_session');
  }
  const terms = o.payment_terms_days ?? 14;
  if (typeof terms !== 'number' || !Number.isInteger(terms) || terms < 0 || terms > 365) {
    throw new FieldError('payment_terms_days', 'must be an integer from 0 to 365');
  }
  const list = (key: string, length_max: number): unknown[] => {
    const v = o[key] ?? [];
    if (!Array.isArray(v) || v.length > length_max)
      throw new FieldError(key, `must be an array of at most ${length_max}`);
    return v;
  };
  const cost_centres = list('cost_centres', 1000).map((c, i) => {
    const co = object_of(c, `cost_centres[${i}]`);
    only_fields(co, ['id', 'name'], `cost_centres[${i}].`);
    return {
      id: validate_id(co.id, `cost_centres[${i}].id`),
      name: text(co, 'name', `cost_centres[${i}].name`, 200),
    };
  });
  if (kind === 'driver' && cost_centres.length > 0) {
    throw new FieldError('cost_centres', 'only a company account has cost centres');
  }
  const centre_ids = new Set(cost_centres.map((c) => c.id));
  if (centre_ids.size !== cost_centres.length) throw new FieldError('cost_centres', 'ids must be unique');
  const seen_uids = new Set<string>();
  const tokens = list('tokens', 100_000).map((t, i): AccountToken => {
    const field = `tokens[${i}]`;
    const to = typeof t === 'string' ? { uid: t } : object_of(t, field);
    only_fields(to, ['uid', 'cost_centre_id'], `${field}.`);
    const uid = validate_id(to.uid, `${field}.uid`);
    if (seen_uids.has(uid)) throw new FieldError(`${field}.uid`, 'is listed twice');
    seen_uids.add(uid);
    if (to.cost_centre_id === undefined) return { uid };
    const cost_centre_id = validate_id(to.cost_centre_id, `${field}.cost_centre_id`);
    if (!centre_ids.has(cost_centre_id))
      throw new FieldError(`${field}.cost_centre_id`, 'is not a cost centre of the account');
    return { uid, cost_centre_id };
  });
  const currency = validate_currency(o.currency, 'currency');
  const memberships = list('memberships', 100).map((m, i): Membership => {
    const field = `memberships[${i}]`;
    const mo = object_of(m, field);
    only_fields(
      mo,
      ['plan_id', 'currency', 'monthly_fee', 'starts_on', 'ends_on', ...benefit_fields],
      `${field}.`,
    );
    const membership_currency =
      mo.currency === undefined ? currency : validate_currency(mo.currency, `${field}.currency`);
    const fee = mo.monthly_fee;
    if (typeof fee !== 'string' || !/^\d{1,9}(\.\d+)?$/.test(fee)) {
      throw new FieldError(`${field}.monthly_fee`, 'must be a non-negative decimal text');
    }
    const membership: Membership = {
      plan_id: validate_id(mo.plan_id, `${field}.plan_id`),
      currency: membership_currency,
      monthly_fee: text_of_minor(minor_of(fee, membership_currency), membership_currency),
      starts_on: validate_day(mo.starts_on, `${field}.starts_on`),
    };
    if (mo.ends_on !== undefined) {
      membership.ends_on = validate_day(mo.ends_on, `${field}.ends_on`);
      if (membership.ends_on < membership.starts_on)
        throw new FieldError(`${field}.ends_on`, 'is before starts_on');
    }
    const benefits = validate_benefits(mo, `${field}.`);
    if (has_benefits(benefits) && billing_period !== 'monthly') {
      // Period benefits need the period's invoice; a per-session invoice is issued before the period ends.
      const name = benefit_fields.find((f) => benefits[f] !== undefined)!;
      throw new FieldError(`${field}.${name}`, 'needs billing_period monthly');
    }
    Object.assign(membership, benefits);
    return membership;
  });
  return {
    id: validate_id(id, 'id'),
    kind,
    name: text(o, 'name', 'name', 200),
    legal_entity_id: validate_id(o.legal_entity_id, 'legal_entity_id'),
    currency,
    billing_period,
    payment_terms_days: terms,
    vat_id: text(o, 'vat_id', 'vat_id', 30, false),
    email: text(o, 'email', 'email', 200, false),
    address: validate_address(o.address, 'address'),
    cost_centres,
    tokens,
    memberships,
  };
}

function benefits_of(m: Membership): MembershipBenefits {
  const benefits: MembershipBenefits = {};
  for (const f of benefit_fields) if (m[f] !== undefined) Object.assign(benefits, { [f]: m[f] });
  return benefits;
}

export class ConflictError extends FieldError {}
export class NotFoundError extends FieldError {}

export async function put_legal_entity(
  ledger: Ledger,
  entity: LegalEntity,
  now_ms = Date.now(),
): Promise<void> {
  await ledger.transaction(async (tx) => {
    await tx.query(
      `INSERT INTO legal_entities (id, name, vat_id, address, country_code, time_zone, fee_vat_percent, created_at_ms)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, vat_id = EXCLUDED.vat_id, address = EXCLUDED.address,
         country_code = EXCLUDED.country_code, time_zone = EXCLUDED.time_zone, fee_vat_percent = EXCLUDED.fee_vat_percent`,
      [
        entity.id,
        entity.name,
        entity.vat_id,
        JSON.stringify(entity.address),
        entity.country_code,
        entity.time_zone,
        entity.fee_vat_percent,
        now_ms,
      ],
    );
    // A series keeps its counter for ever; only its prefix may change for numbers not yet given.
    for (const [series, prefix] of [
      ['invoice', entity.invoice_prefix],
      ['credit_note', entity.credit_note_prefix],
    ] as const) {
      await tx.query(
        `INSERT INTO number_series (legal_entity_id, series, prefix) VALUES ($1, $2, $3)
         ON CONFLICT (legal_entity_id, series) DO UPDATE SET prefix = EXCLUDED.prefix`,
        [entity.id, series, prefix],
      );
    }
  });
}

interface LegalEntityRow {
  id: string;
  name: string;
  vat_id: string;
  address: Address;
  country_code: string;
  time_zone: string;
  fee_vat_percent: string;
}

export async function get_legal_entity(db: Queryable, id: string): Promise<LegalEntity | undefined> {
  const [row] = await db.query<LegalEntityRow>('SELECT * FROM legal_entities WHERE id = $1', [id]);
  if (row === undefined) return undefined;
  const series = await db.query<{ series: string; prefix: string }>(
    'SELECT series, prefix FROM number_series WHERE legal_entity_id = $1',
    [id],
  );
  return {
    id: row.id,
    name: row.name,
    vat_id: row.vat_id,
    address: row.address,
    country_code: row.country_code,
    time_zone: row.time_zone,
    fee_vat_percent: new Money(row.fee_vat_percent).toString(),
    invoice_prefix: series.find((s) => s.series === 'invoice')?.prefix ?? '',
    credit_note_prefix: series.find((s) => s.series === 'credit_note')?.prefix ?? '',
  };
}

export async function list_legal_entities(db: Queryable): Promise<LegalEntity[]> {
  const ids = await db.query<{ id: string }>('SELECT id FROM legal_entities ORDER BY id');
  const out: LegalEntity[] = [];
  for (const { id } of ids) out.push((await get_legal_entity(db, id))!);
  return out;
}

/** Creates or replaces the account, its cost centres, tokens and memberships in one transaction. */
export async function put_account(
  ledger: Ledger,
  account: Account,
  now_ms = Date.now(),
): Promise<{ created: boolean }> {
  return await ledger.transaction(async (tx) => {
    const [entity] = await tx.query('SELECT 1 FROM legal_entities WHERE id = $1', [account.legal_entity_id]);
    if (entity === undefined) throw new FieldError('legal_entity_id', 'is not a known legal entity');
    const uids = account.tokens.map((t) => t.uid);
    const owned = await tx.query<{ uid: string; account_id: string }>(
      `SELECT uid, account_id FROM account_tokens WHERE uid = ANY($1::text[]) AND account_id <> $2`,
      [uids, account.id],
    );
    if (owned.length > 0) {
      const index = uids.indexOf(owned[0]!.uid);
      throw new ConflictError(`tokens[${index}].uid`, `is owned by account ${owned[0]!.account_id}`);
    }
    const [existing] = await tx.query<{ legal_entity_id: string }>(
      'SELECT legal_entity_id FROM accounts WHERE id = $1 FOR UPDATE',
      [account.id],
    );
    // The same values for a new account and a changed one ($11: now).
    const params = [
      account.id,
      account.kind,
      account.name,
      account.legal_entity_id,
      account.currency,
      account.billing_period,
      account.payment_terms_days,
      account.vat_id,
      account.email,
      JSON.stringify(account.address),
      now_ms,
    ];
    if (existing === undefined) {
      await tx.query(
        `INSERT INTO accounts (id, kind, name, legal_entity_id, currency, billing_period, payment_terms_days, vat_id,
           email, address, created_at_ms, updated_at_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)`,
        params,
      );
    } else {
      await tx.query(
        `UPDATE accounts SET kind = $2, name = $3, legal_entity_id = $4, currency = $5, billing_period = $6,
           payment_terms_days = $7, vat_id = $8, email = $9, address = $10, updated_at_ms = $11 WHERE id = $1`,
        params,
      );
      await tx.query('DELETE FROM account_tokens WHERE account_id = $1', [account.id]);
      await tx.query('DELETE FROM cost_centres WHERE account_id = $1', [account.id]);
      await tx.query('DELETE FROM memberships WHERE account_id = $1', [account.id]);
    }
    await tx.query(
      `INSERT INTO cost_centres (account_id, id, name)
       SELECT $1, x.id, x.name FROM jsonb_to_recordset($2::jsonb) AS x(id text, name text)`,
      [account.id, JSON.stringify(account.cost_centres)],
    );
    await tx.query(
      `INSERT INTO account_tokens (uid, account_id, cost_centre_id)
       SELECT x.uid, $1, x.cost_centre_id FROM jsonb_to_recordset($2::jsonb) AS x(uid text, cost_centre_id text)`,
      [account.id, JSON.stringify(account.tokens)],
    );
    await tx.query(
      `INSERT INTO memberships (account_id, plan_id, currency, monthly_fee_minor, starts_on, ends_on, benefits)
       SELECT $1, x.plan_id, x.currency, x.monthly_fee_minor, x.starts_on::date, x.ends_on::date, x.benefits
       FROM jsonb_to_recordset($2::jsonb) AS x(plan_id text, currency text, monthly_fee_minor int8, starts_on text, ends_on text,
         benefits jsonb)`,
      [
        account.id,
        JSON.stringify(
          account.memberships.map((m) => ({
            plan_id: m.plan_id,
            currency: m.currency,
            monthly_fee_minor: minor_of(m.monthly_fee, m.currency),
            starts_on: m.starts_on,
            ends_on: m.ends_on ?? null,
            benefits: benefits_of(m),
          })),
        ),
      ],
    );
    // Sessions already recorded under these tokens and not yet attributed now belong to this account.
    await tx.query(
      `UPDATE sessions SET account_id = $1 WHERE account_id IS NULL AND id_tag = ANY($2::text[])`,
      [account.id, uids],
    );
    return { created: existing === undefined };
  });
}

interface AccountRow {
  id: string;
  kind: 'driver' | 'company';
  name: string;
  legal_entity_id: string;
  currency: string;
  billing_period: 'monthly' | 'per_session';
  payment_terms_days: number;
  vat_id: string;
  email: string;
  address: Address;
}

export async function get_account(db: Queryable, id: string): Promise<Account | undefined> {
  const [row] = await db.query<AccountRow>(
    `SELECT id, kind, name, legal_entity_id, currency, billing_period, payment_terms_days, vat_id, email, address
     FROM accounts WHERE id = $1 AND NOT closed`,
    [id],
  );
  if (row === undefined) return undefined;
  const cost_centres = await db.query<{ id: string; name: string }>(
    'SELECT id, name FROM cost_centres WHERE account_id = $1 ORDER BY id',
    [id],
  );
  const tokens = await db.query<{ uid: string; cost_centre_id: string | null }>(
    'SELECT uid, cost_centre_id FROM account_tokens WHERE account_id = $1 ORDER BY uid',
    [id],
  );
  const memberships = await db.query<{
    plan_id: string;
    currency: string;
    monthly_fee_minor: number;
    starts_on: string;
    ends_on: string | null;
    benefits: MembershipBenefits;
  }>(
    `SELECT plan_id, currency, monthly_fee_minor, to_char(starts_on, 'YYYY-MM-DD') AS starts_on,
       to_char(ends_on, 'YYYY-MM-DD') AS ends_on, benefits FROM memberships WHERE account_id = $1 ORDER BY starts_on, plan_id`,
    [id],
  );
  return {
    ...row,
    cost_centres,
    tokens: tokens.map((t) =>
      t.cost_centre_id === null ? { uid: t.uid } : { uid: t.uid, cost_centre_id: t.cost_centre_id },
    ),
    memberships: memberships.map((m) => ({
      plan_id: m.plan_id,
      currency: m.currency,
      monthly_fee: text_of_minor(m.monthly_fee_minor, m.currency),
      starts_on: m.starts_on,
      ...(m.ends_on === null ? {} : { ends_on: m.ends_on }),
      ...m.benefits,
    })),
  };
}

export async function list_accounts(
  db: Queryable,
  filter: { limit: number; offset: number; legal_entity_id?: string },
): Promise<AccountRow[]> {
  return await db.query<AccountRow>(
    `SELECT id, kind, name, legal_entity_id, currency, billing_period, payment_terms_days, vat_id, email, address
     FROM accounts WHERE NOT closed AND ($1::text IS NULL OR legal_entity_id = $1) ORDER BY id LIMIT $2 OFFSET $3`,
    [filter.legal_entity_id ?? null, filter.limit, filter.offset],
  );
}

/**
 * Closes an account: it is no longer listed or billed, its tokens are released. Its invoices and
 * journal entries stay (they are the books); an account with nothing invoiced yet is the same.
 */
export async function close_account(ledger: Ledger, id: string): Promise<boolean> {
  return await ledger.transaction(async (tx) => {
    const rows = await tx.query(
      'UPDATE accounts SET closed = true WHERE id = $1 AND NOT closed RETURNING id',
      [id],
    );
    if (rows.length === 0) return false;
    await tx.query('DELETE FROM account_tokens WHERE account_id = $1', [id]);
    return true;
  });
}
