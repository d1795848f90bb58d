import { FieldError } from '../../core/field-error.js';
import { ConflictError, NotFoundError } from '../accounts.js';
import type { Ledger, Queryable } from '../ledger.js';
import { validate_bic, validate_creditor_id, validate_iban } from './identifiers.js';

/**
 * SEPA Direct Debit set-up: the creditor identity of a legal entity (its SEPA creditor identifier
 * and the account collections are credited to) and the mandates of its company accounts. A
 * mandate already used by a collection keeps its IBAN, BIC and signature date (the bank checks
 * them against the first collection): change the debtor's bank by a new mandate.
 */
export interface SepaCreditor {
  legal_entity_id: string;
  creditor_id: string;
  name: string;
  iban: string;
  bic: string;
}

export interface Mandate {
  mandate_id: string;
  account_id: string;
  debtor_name: string;
  iban: string;
  bic: string;
  /** YYYY-MM-DD. */
  signed_on: string;
  scheme: 'CORE' | 'B2B';
  status: 'active' | 'revoked';
}

type Json = Record<string, unknown>;

function object_of(value: unknown): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new FieldError('(body)', 'must be an object');
  return value as Json;
}

function only_fields(o: Json, allowed: readonly string[]): void {
  for (const key of Object.keys(o)) {
    if (!allowed.includes(key)) throw new FieldError(key, 'is not a known field');
  }
}

/** SEPA's character set for names and ids (EPC "Latin character set"), within the XSD lengths. */
function sepa_text(value: unknown, field: string, length_max: number): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > length_max) {
    throw new FieldError(field, `must be 1 to ${length_max} characters`);
  }
  if (!/^[A-Za-z0-9/\-?:().,'+ ]+$/.test(value)) {
    throw new FieldError(
      field,
      "may only hold the SEPA characters A-Z a-z 0-9 / - ? : ( ) . , ' + and space",
    );
  }
  return value;
}

export function validate_creditor(legal_entity_id: string, value: unknown): SepaCreditor {
  const o = object_of(value);
  only_fields(o, ['creditor_id', 'name', 'iban', 'bic']);
  return {
    legal_entity_id,
    creditor_id: validate_creditor_id(o.creditor_id, 'creditor_id'),
    name: sepa_text(o.name, 'name', 70),
    iban: validate_iban(o.iban, 'iban'),
    bic: validate_bic(o.bic, 'bic'),
  };
}

export function validate_mandate(account_id: string, mandate_id: string, value: unknown): Mandate {
  // EPC rulebook: the mandate reference is at most 35 characters of the SEPA set, no spaces.
  if (!/^[A-Za-z0-9/\-?:().,'+]{1,35}$/.test(mandate_id)) {
    throw new FieldError('mandate_id', 'must be 1 to 35 SEPA characters without spaces');
  }
  const o = object_of(value);
  only_fields(o, ['debtor_name', 'iban', 'bic', 'signed_on', 'scheme']);
  const signed_on = o.signed_on;
  if (
    typeof signed_on !== 'string' ||
    !/^\d{4}-\d{2}-\d{2}$/.test(signed_on) ||
    Number.isNaN(Date.parse(`${signed_on}T00:00:00Z`))
  ) {
    throw new FieldError('signed_on', 'must be a date YYYY-MM-DD');
  }
  const scheme = o.scheme ?? 'CORE';
  if (scheme !== 'CORE' && scheme !== 'B2B') throw new FieldError('scheme', 'must be CORE or B2B');
  return {
    mandate_id,
    account_id,
    debtor_name: sepa_text(o.debtor_name, 'debtor_name', 70),
    iban: validate_iban(o.iban, 'iban'),
    bic: validate_bic(o.bic, 'bic'),
    signed_on,
    scheme,
    status: 'active',
  };
}

export async function put_creditor(
  ledger: Ledger,
  creditor: SepaCreditor,
  now_ms = Date.now(),
): Promise<void> {
  const [entity] = await ledger.query('SELECT 1 FROM legal_entities WHERE id = $1', [
    creditor.legal_entity_id,
  ]);
  if (entity === undefined) throw new NotFoundError('id', 'is not a known legal entity');
  await ledger.query(
    `INSERT INTO sepa_creditors (legal_entity_id, creditor_id, name, iban, bic, updated_at_ms)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (legal_entity_id) DO UPDATE SET creditor_id = EXCLUDED.creditor_id, name = EXCLUDED.name,
       iban = EXCLUDED.iban, bic = EXCLUDED.bic, updated_at_ms = EXCLUDED.updated_at_ms`,
    [creditor.legal_entity_id, creditor.creditor_id, creditor.name, creditor.iban, creditor.bic, now_ms],
  );
}

export async function get_creditor(
  db: Queryable,
  legal_entity_id: string,
): Promise<SepaCreditor | undefined> {
  const [row] = await db.query<SepaCreditor>(
    'SELECT legal_entity_id, creditor_id, name, iban, bic FROM sepa_creditors WHERE legal_entity_id = $1',
    [legal_entity_id],
  );
  return row;
}

const mandate_columns = `mandate_id, account_id, debtor_name, iban, bic, to_char(signed_on, 'YYYY-MM-DD') AS signed_on,
  scheme, status`;

/** Creates the mandate or changes its unused details; the account's other active mandate is revoked. */
export async function put_mandate(
  ledger: Ledger,
  mandate: Mandate,
  now_ms = Date.now(),
): Promise<{ created: boolean }> {
  return await ledger.transaction(async (tx) => {
    const [account] = await tx.query<{ kind: string }>(
      'SELECT kind FROM accounts WHERE id = $1 AND NOT closed FOR UPDATE',
      [mandate.account_id],
    );
    if (account === undefined) throw new NotFoundError('account_id', 'is not a known account');
    if (account.kind !== 'company') {
      throw new FieldError('account_id', 'SEPA Direct Debit collects from company accounts only');
    }
    const [existing] = await tx.query<Mandate>(
      `SELECT ${mandate_columns} FROM sepa_mandates WHERE mandate_id = $1 FOR UPDATE`,
      [mandate.mandate_id],
    );
    if (existing !== undefined) {
      if (existing.account_id !== mandate.account_id) {
        throw new ConflictError('mandate_id', `belongs to account ${existing.account_id}`);
      }
      if (existing.status === 'revoked')
        throw new ConflictError('mandate_id', 'is revoked: sign a new mandate');
      const [used] = await tx.query('SELECT 1 FROM collection_attempts WHERE mandate_id = $1 LIMIT 1', [
        mandate.mandate_id,
      ]);
      const changed = (['iban', 'bic', 'signed_on', 'scheme'] as const).find(
        (k) => existing[k] !== mandate[k],
      );
      if (used !== undefined && changed !== undefined) {
        throw new ConflictError(
          changed,
          'cannot change on a mandate already collected from: sign a new mandate',
        );
      }
    }
    await tx.query(
      `UPDATE sepa_mandates SET status = 'revoked', updated_at_ms = $3
       WHERE account_id = $1 AND status = 'active' AND mandate_id <> $2`,
      [mandate.account_id, mandate.mandate_id, now_ms],
    );
    await tx.query(
      `INSERT INTO sepa_mandates (mandate_id, account_id, debtor_name, iban, bic, signed_on, scheme, status,
         created_at_ms, updated_at_ms)
       VALUES ($1, $2, $3, $4, $5, $6::date, $7, 'active', $8, $8)
       ON CONFLICT (mandate_id) DO UPDATE SET debtor_name = EXCLUDED.debtor_name, iban = EXCLUDED.iban,
         bic = EXCLUDED.bic, signed_on = EXCLUDED.signed_on, scheme = EXCLUDED.scheme, updated_at_ms = EXCLUDED.updated_at_ms`,
      [
        mandate.mandate_id,
        mandate.account_id,
        mandate.debtor_name,
        mandate.iban,
        mandate.bic,
        mandate.signed_on,
        mandate.scheme,
        now_ms,
      ],
    );
    return { created: existing === undefined };
  });
}

export async function list_mandates(db: Queryable, account_id: string): Promise<Mandate[]> {
  return await db.query<Mandate>(
    `SELECT ${mandate_columns} FROM sepa_mandates WHERE account_id = $1 ORDER BY created_at_ms, mandate_id`,
    [account_id],
  );
}

export async function get_mandate(db: Queryable, mandate_id: string): Promise<Mandate | undefined> {
  const [row] = await db.query<Mandate>(
    `SELECT ${mandate_columns} FROM sepa_mandates WHERE mandate_id = $1`,
    [mandate_id],
  );
  return row;
}

/** Revokes the mandate: it collects nothing more (collections already submitted stay). */
export async function revoke_mandate(
  ledger: Ledger,
  account_id: string,
  mandate_id: string,
  now_ms = Date.now(),
): Promise<boolean> {
  const rows = await ledger.query(
    `UPDATE sepa_mandates SET status = 'revoked', updated_at_ms = $3
     WHERE account_id = $1 AND mandate_id = $2 AND status = 'active' RETURNING mandate_id`,
    [account_id, mandate_id, now_ms],
  );
  return rows.length > 0;
}
