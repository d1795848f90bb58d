import { FieldError } from '../../core/field-error.js';

/**
 * The identifiers of SEPA and bank-transfer collection, each checked by its ISO 7064 MOD 97-10
 * check digits: IBAN (ISO 13616), the SEPA creditor identifier (EPC262-08), the ISO 11649 "RF"
 * creditor reference, and the BIC's shape (ISO 9362). Pure functions; bad input is a FieldError.
 */

/** IBAN length per country of the SEPA scheme (ISO 13616 registry, SWIFT IBAN Registry). */
const iban_lengths: Readonly<Record<string, number>> = {
  AD: 24,
  AT: 20,
  BE: 16,
  BG: 22,
  CH: 21,
  CY: 28,
  CZ: 24,
  DE: 22,
  DK: 18,
  EE: 20,
  ES: 24,
  FI: 18,
  FR: 27,
  GB: 22,
  GG: 22,
  GI: 23,
  GR: 27,
  HR: 21,
  HU: 28,
  IE: 22,
  IM: 22,
  IS: 26,
  IT: 27,
  JE: 22,
  LI: 21,
  LT: 20,
  LU: 20,
  LV: 21,
  MC: 27,
  MT: 31,
  NL: 18,
  NO: 15,
  PL: 28,
  PT: 25,
  RO: 24,
  SE: 24,
  SI: 19,
  SK: 24,
  SM: 27,
  VA: 22,
};

/** Letters as two digits (A = 10 ... Z = 35), then the remainder mod 97, chunk by chunk (no bigint). */
export function mod97(alphanumeric: string): number {
  let remainder = 0;
  for (const ch of alphanumeric) {
    const code = ch.charCodeAt(0);
    const digits = code >= 65 && code <= 90 ? String(code - 55) : ch;
    for (const d of digits) remainder = (remainder * 10 + (d.charCodeAt(0) - 48)) % 97;
  }
  return remainder;
}

function two_digits(n: number): string {
  return String(n).padStart(2, '0');
}

/** Normalised IBAN (spaces removed, upper case) when valid: known SEPA country, length, mod 97 = 1. */
export function validate_iban(value: unknown, field: string): string {
  if (typeof value !== 'string') throw new FieldError(field, 'must be an IBAN');
  const iban = value.replace(/ /g, '').toUpperCase();
  if (!/^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$/.test(iban)) throw new FieldError(field, 'must be an IBAN');
  const length = iban_lengths[iban.slice(0, 2)];
  if (length === undefined) throw new FieldError(field, `country ${iban.slice(0, 2)} is not in SEPA`);
  if (iban.length !== length) {
    throw new FieldError(field, `a ${iban.slice(0, 2)} IBAN has ${length} characters, not ${iban.length}`);
  }
  if (mod97(iban.slice(4) + iban.slice(0, 4)) !== 1)
    throw new FieldError(field, 'IBAN check digits are wrong');
  return iban;
}

/** ISO 9362 BIC, 8 or 11 characters (the pattern of the pain.008 XSD's BICIdentifier). */
export function validate_bic(value: unknown, field: string): string {
  if (typeof value !== 'string' || !/^[A-Z]{6}[A-Z2-9][A-NP-Z0-9]([A-Z0-9]{3})?$/.test(value)) {
    throw new FieldError(field, 'must be a BIC of 8 or 11 characters (ISO 9362)');
  }
  return value;
}

/**
 * SEPA creditor identifier (EPC262-08 "Creditor Identifier Overview"): country code, two check
 * digits, a three-character business code (not part of the check), then the national identifier.
 * The check digits are 98 - (national id + country + "00") mod 97.
 */
export function validate_creditor_id(value: unknown, field: string): string {
  if (typeof value !== 'string') throw new FieldError(field, 'must be a SEPA creditor identifier');
  const id = value.replace(/ /g, '').toUpperCase();
  if (!/^[A-Z]{2}\d{2}[A-Z0-9]{3}[A-Z0-9]{1,28}$/.test(id) || id.length > 35) {
    throw new FieldError(field, 'must be a SEPA creditor identifier (e.g. DE98ZZZ09999999999)');
  }
  const expected = 98 - mod97(`${id.slice(7)}${id.slice(0, 2)}00`);
  if (two_digits(expected) !== id.slice(2, 4)) {
    throw new FieldError(field, 'creditor identifier check digits are wrong');
  }
  return id;
}

/** ISO 11649 structured creditor reference "RF" + 2 check digits + up to 21 alphanumerics. */
export function rf_reference(base: string): string {
  if (!/^[A-Z0-9]{1,21}$/.test(base)) throw new RangeError(`RF reference base ${base}`);
  return `RF${two_digits(98 - mod97(`${base}RF00`))}${base}`;
}

export function is_rf_reference(value: string): boolean {
  const ref = value.replace(/ /g, '').toUpperCase();
  return /^RF\d{2}[A-Z0-9]{1,21}$/.test(ref) && mod97(ref.slice(4) + ref.slice(0, 4)) === 1;
}

/** The payment reference of an invoice: its ledger id behind a fixed prefix, so it is unique. */
export function invoice_payment_reference(invoice_id: number): string {
  if (!Number.isSafeInteger(invoice_id) || invoice_id < 1) throw new RangeError(`invoice id ${invoice_id}`);
  return rf_reference(`EVR${invoice_id}`);
}

/** The invoice id of a valid reference made by invoice_payment_reference; undefined otherwise. */
export function invoice_of_payment_reference(value: string): number | undefined {
  const ref = value.replace(/ /g, '').toUpperCase();
  if (!is_rf_reference(ref)) return undefined;
  const match = /^RF\d{2}EVR([1-9]\d{0,15})$/.exec(ref);
  return match === null ? undefined : Number(match[1]);
}

/** Every valid RF reference found in free text (remittance information is often unstructured). */
export function rf_references_in(text: string): string[] {
  const found: string[] = [];
  for (const match of text.toUpperCase().matchAll(/RF\d{2}(?: ?[A-Z0-9]){1,21}/g)) {
    const ref = match[0].replace(/ /g, '');
    // A longer run may carry trailing words: try the longest valid prefix.
    for (let end = ref.length; end > 4; end--) {
      if (is_rf_reference(ref.slice(0, end))) {
        found.push(ref.slice(0, end));
        break;
      }
    }
  }
  return found;
}
