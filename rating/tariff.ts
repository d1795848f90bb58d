import { FieldError } from '../core/field-error.js';
/**
 * The OCPI 2.2.1 Tariff object (mod_tariffs, section 11.3.1), the canonical tariff format.
 * Validation names the field and the rule it broke.
 */
export type TariffDimensionType = 'ENERGY' | 'FLAT' | 'PARKING_TIME' | 'TIME';
const dimension_types: readonly string[] = ['ENERGY', 'FLAT', 'PARKING_TIME', 'TIME'];

export interface PriceComponent {
  type: TariffDimensionType;
  price: number;
  vat?: number;
  step_size: number;
}

export interface TariffRestrictions {
  start_time?: string;
  end_time?: string;
  start_date?: string;
  end_date?: string;
  min_kwh?: number;
  max_kwh?: number;
  min_current?: number;
  max_current?: number;
  min_power?: number;
  max_power?: number;
  min_duration?: number;
  max_duration?: number;
  day_of_week?: string[];
  reservation?: 'RESERVATION' | 'RESERVATION_EXPIRES';
}

export interface TariffElement {
  price_components: PriceComponent[];
  restrictions?: TariffRestrictions;
}

export interface Price {
  excl_vat: number;
  incl_vat?: number;
}

export interface Tariff {
  country_code: string;
  party_id: string;
  id: string;
  currency: string;
  type?: string;
  tariff_alt_text?: { language: string; text: string }[];
  tariff_alt_url?: string;
  min_price?: Price;
  max_price?: Price;
  elements: TariffElement[];
  energy_mix?: unknown;
  start_date_time?: string;
  end_date_time?: string;
  last_updated: string;
  /**
   * Beyond OCPI: idle fees start after a grace period. The first minutes of every run of time
   * not charging are free PARKING_TIME (still counted in total_parking_time); OCPI partners
   * ignore the field (unknown fields are ignored by receivers).
   */
  evrate_idle_grace_minutes?: number;
}

export class TariffValidationError extends FieldError {}

type Json = Record<string, unknown>;

function is_object(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function fail(field: string, rule: string): never {
  throw new TariffValidationError(field, rule);
}

function string_field(o: Json, key: string, field: string, pattern: RegExp, rule: string, required: boolean) {
  const value = o[key];
  if (value === undefined) {
    if (required) fail(field, 'is required');
    return;
  }
  if (typeof value !== 'string' || !pattern.test(value)) fail(field, rule);
}

function number_field(o: Json, key: string, field: string, required: boolean, integer = false, min = 0) {
  const value = o[key];
  if (value === undefined) {
    if (required) fail(field, 'is required');
    return;
  }
  if (typeof value !== 'number' || !Number.isFinite(value)) fail(field, 'must be a number');
  if (integer && !Number.isInteger(value)) fail(field, 'must be an integer');
  if (value < min) fail(field, `must be at least ${min}`);
}

const rfc3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$/;
const weekdays = ['MONDAY', 'TUESDAY', 'WEDNESDAY', 'THURSDAY', 'FRIDAY', 'SATURDAY', 'SUNDAY'];

function validate_price(value: unknown, field: string): void {
  if (value === undefined) return;
  if (!is_object(value)) fail(field, 'must be an object with excl_vat');
  number_field(value, 'excl_vat', `${field}.excl_vat`, true);
  number_field(value, 'incl_vat', `${field}.incl_vat`, false);
}

function validate_restrictions(value: unknown, field: string): void {
  if (value === undefined) return;
  if (!is_object(value)) fail(field, 'must be an object');
  const hhmm = /^([01]\d|2[0-3]):[0-5]\d$/;
  string_field(value, 'start_time', `${field}.start_time`, hhmm, 'must be HH:MM (24h)', false);
  string_field(value, 'end_time', `${field}.end_time`, hhmm, 'must be HH:MM (24h)', false);
  const date = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/;
  string_field(value, 'start_date', `${field}.start_date`, date, 'must be YYYY-MM-DD', false);
  string_field(value, 'end_date', `${field}.end_date`, date, 'must be YYYY-MM-DD', false);
  for (const key of ['min_kwh', 'max_kwh', 'min_current', 'max_current', 'min_power', 'max_power']) {
    number_field(value, key, `${field}.${key}`, false);
  }
  number_field(value, 'min_duration', `${field}.min_duration`, false, true);
  number_field(value, 'max_duration', `${field}.max_duration`, false, true);
  const days = value.day_of_week;
  if (days !== undefined) {
    if (!Array.isArray(days)) fail(`${field}.day_of_week`, 'must be an array of weekdays');
    days.forEach((day, i) => {
      if (typeof day !== 'string' || !weekdays.includes(day)) {
        fail(`${field}.day_of_week[${i}]`, `must be one of ${weekdays.join(', ')}`);
      }
    });
  }
  const reservation = value.reservation;
  if (reservation !== undefined && reservation !== 'RESERVATION' && reservation !== 'RESERVATION_EXPIRES') {
    fail(`${field}.reservation`, 'must be RESERVATION or RESERVATION_EXPIRES');
  }
}

/** Checks an OCPI 2.2.1 Tariff and returns it typed; throws TariffValidationError naming the field. */
export function validate_tariff(value: unknown): Tariff {
  if (!is_object(value)) fail('(body)', 'must be a JSON object (OCPI 2.2.1 Tariff)');
  string_field(
    value,
    'country_code',
    'country_code',
    /^[A-Z]{2}$/,
    'must be ISO 3166 alpha-2 (2 letters)',
    true,
  );
  string_field(
    value,
    'party_id',
    'party_id',
    /^[A-Z0-9]{3}$/,
    'must be 3 characters (ISO 15118 party id)',
    true,
  );
  string_field(value, 'id', 'id', /^[\x21-\x7e]{1,36}$/, 'must be 1 to 36 printable ASCII characters', true);
  string_field(value, 'currency', 'currency', /^[A-Z]{3}$/, 'must be an ISO 4217 code (3 letters)', true);
  string_field(value, 'last_updated', 'last_updated', rfc3339, 'must be an RFC 3339 date-time', true);
  string_field(value, 'start_date_time', 'start_date_time', rfc3339, 'must be an RFC 3339 date-time', false);
  string_field(value, 'end_date_time', 'end_date_time', rfc3339, 'must be an RFC 3339 date-time', false);
  number_field(value, 'evrate_idle_grace_minutes', 'evrate_idle_grace_minutes', false, true, 0);
  if (typeof value.evrate_idle_grace_minutes === 'number' && value.evrate_idle_grace_minutes > 1440) {
    fail('evrate_idle_grace_minutes', 'must be at most 1440 (a day)');
  }
  validate_price(value.min_price, 'min_price');
  validate_price(value.max_price, 'max_price');
  const elements = value.elements;
  if (!Array.isArray(elements) || elements.length === 0) fail('elements', 'must be a non-empty array');
  elements.forEach((element: unknown, e) => {
    const at = `elements[${e}]`;
    if (!is_object(element)) fail(at, 'must be an object');
    const components = element.price_components;
    if (!Array.isArray(components) || components.length === 0) {
      fail(`${at}.price_components`, 'must be a non-empty array');
    }
    components.forEach((component: unknown, c) => {
      const cat = `${at}.price_components[${c}]`;
      if (!is_object(component)) fail(cat, 'must be an object');
      if (typeof component.type !== 'string' || !dimension_types.includes(component.type)) {
        fail(`${cat}.type`, `must be one of ${dimension_types.join(', ')}`);
      }
      number_field(component, 'price', `${cat}.price`, true);
      number_field(component, 'vat', `${cat}.vat`, false);
      number_field(component, 'step_size', `${cat}.step_size`, true, true, 1);
    });
    validate_restrictions(element.restrictions, `${at}.restrictions`);
  });
  return value as unknown as Tariff;
}
