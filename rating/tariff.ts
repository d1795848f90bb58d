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

const rfc3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-](\d{2}):(\d{2}))?$/;
const days_in_month = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * The instant of an OCPI DateTime (types: RFC 3339; "The absence of the timezone designator implies
 * a UTC timestamp"), in ms; undefined when the text is not one or names a day or time that does
 * not exist (2019-02-30, 24:00, a leap second: Date.parse would roll them over).
 */
export function date_time_ms(text: string): number | undefined {
  const m = rfc3339.exec(text);
  if (m === null) return undefined;
  const [year, month, day, hour, minute, second] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i]));
  const leap = year! % 4 === 0 && (year! % 100 !== 0 || year! % 400 === 0);
  const month_days = month === 2 && !leap ? 28 : days_in_month[month! - 1];
  if (month_days === undefined || day! < 1 || day! > month_days) return undefined;
  if (hour! > 23 || minute! > 59 || second! > 59) return undefined;
  if (m[9] !== undefined && (Number(m[9]) > 23 || Number(m[10]) > 59)) return undefined;
  return Date.parse(m[8] === undefined ? `${text}Z` : text);
}

function date_time_field(o: Json, key: string, required: boolean): number | undefined {
  const value = o[key];
  if (value === undefined) {
    if (required) fail(key, 'is required');
    return undefined;
  }
  const at_ms = typeof value === 'string' ? date_time_ms(value) : undefined;
  if (at_ms === undefined) fail(key, 'must be an RFC 3339 date-time (OCPI DateTime)');
  return at_ms;
}
const weekdays = ['MONDAY', 'TUESDAY', 'WEDNESDAY', 'THURSDAY', 'FRIDAY', 'SATURDAY', 'SUNDAY'];

const tariff_types = ['AD_HOC_PAYMENT', 'PROFILE_CHEAP', 'PROFILE_FAST', 'PROFILE_GREEN', 'REGULAR'];
const energy_sources = [
  'NUCLEAR',
  'GENERAL_FOSSIL',
  'COAL',
  'GAS',
  'GENERAL_GREEN',
  'SOLAR',
  'WIND',
  'WATER',
];
const impact_categories = ['NUCLEAR_WASTE', 'CARBON_DIOXIDE'];
const display_texts_max = 100;

/** OCPI DisplayText[] (types: language ISO 639-1, text string(512)). */
function validate_display_texts(value: unknown, field: string): void {
  if (value === undefined) return;
  if (!Array.isArray(value)) fail(field, 'must be an array of DisplayText');
  if (value.length > display_texts_max) fail(field, `at most ${display_texts_max} texts`);
  value.forEach((text: unknown, i) => {
    if (!is_object(text)) fail(`${field}[${i}]`, 'must be a DisplayText object');
    string_field(
      text,
      'language',
      `${field}[${i}].language`,
      /^[a-z]{2}$/i,
      'must be ISO 639-1 (2 letters)',
      true,
    );
    const body = text.text;
    if (typeof body !== 'string' || body.length > 512)
      fail(`${field}[${i}].text`, 'must be a string of at most 512 characters');
  });
}

/** OCPI EnergyMix (mod_locations): is_green_energy, energy_sources, environ_impact, names. */
function validate_energy_mix(value: unknown, field: string): void {
  if (value === undefined) return;
  if (!is_object(value)) fail(field, 'must be an EnergyMix object');
  if (typeof value.is_green_energy !== 'boolean') fail(`${field}.is_green_energy`, 'must be a boolean');
  const list = (key: string, kind: string, values: string[]) => {
    const items = value[key];
    if (items === undefined) return;
    if (!Array.isArray(items) || items.length > display_texts_max)
      fail(`${field}.${key}`, `must be an array of ${kind}`);
    items.forEach((item: unknown, i) => {
      const at = `${field}.${key}[${i}]`;
      const category = key === 'energy_sources' ? 'source' : 'category';
      if (!is_object(item)) fail(at, `must be a ${kind} object`);
      if (typeof item[category] !== 'string' || !values.includes(item[category] as string))
        fail(`${at}.${category}`, `must be one of ${values.join(', ')}`);
      number_field(
        item,
        key === 'energy_sources' ? 'percentage' : 'amount',
        `${at}.${key === 'energy_sources' ? 'percentage' : 'amount'}`,
        true,
      );
    });
  };
  list('energy_sources', 'EnergySource', energy_sources);
  list('environ_impact', 'EnvironmentalImpact', impact_categories);
  for (const key of ['supplier_name', 'energy_product_name']) {
    const name = value[key];
    if (name !== undefined && (typeof name !== 'string' || name.length > 64))
      fail(`${field}.${key}`, 'must be a string of at most 64 characters');
  }
}

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

/**
 * The descriptive fields of a tariff (type, tariff_alt_text, tariff_alt_url, energy_mix), which
 * pricing does not read: checked where a tariff enters (normalise_tariff), not when a stored
 * version is read back, so that a version stored before these checks still prices.
 */
function validate_descriptive_fields(value: Json): void {
  if (value.type !== undefined && (typeof value.type !== 'string' || !tariff_types.includes(value.type)))
    fail('type', `must be one of ${tariff_types.join(', ')}`);
  validate_display_texts(value.tariff_alt_text, 'tariff_alt_text');
  if (
    value.tariff_alt_url !== undefined &&
    (typeof value.tariff_alt_url !== 'string' || !/^https?:\/\/\S+$/.test(value.tariff_alt_url))
  )
    fail('tariff_alt_url', 'must be an http(s) URL');
  validate_energy_mix(value.energy_mix, 'energy_mix');
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
  date_time_field(value, 'last_updated', true);
  // The tariff is in force from start_date_time (inclusive) until end_date_time (exclusive).
  const start_ms = date_time_field(value, 'start_date_time', false);
  const end_ms = date_time_field(value, 'end_date_time', false);
  if (start_ms !== undefined && end_ms !== undefined && !(end_ms > start_ms))
    fail('end_date_time', 'must be after start_date_time');
  number_field(value, 'evrate_idle_grace_minutes', 'evrate_idle_grace_minutes', false, true, 0);
  if (typeof value.evrate_idle_grace_minutes === 'number' && value.evrate_idle_grace_minutes > 1440) {
    fail('evrate_idle_grace_minutes', 'must be at most 1440 (a day)');
  }
  validate_price(value.min_price, 'min_price');
  validate_price(value.max_price, 'max_price');
  // A session cannot cost at least more than it may cost at most.
  if (is_object(value.min_price) && is_object(value.max_price)) {
    const min = value.min_price as unknown as Price;
    const max = value.max_price as unknown as Price;
    if (min.excl_vat > max.excl_vat) fail('min_price.excl_vat', 'must not exceed max_price.excl_vat');
    if (min.incl_vat !== undefined && max.incl_vat !== undefined && min.incl_vat > max.incl_vat)
      fail('min_price.incl_vat', 'must not exceed max_price.incl_vat');
  }
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
      // step_size 0 is accepted and means no step rounding: the volume is billed as measured.
      number_field(component, 'step_size', `${cat}.step_size`, true, true, 0);
    });
    validate_restrictions(element.restrictions, `${at}.restrictions`);
  });
  return value as unknown as Tariff;
}

/**
 * Whether a tariff is in force at an instant: from start_date_time (inclusive) until end_date_time
 * (exclusive); without them, always (mod_tariffs 11.3.1: "The time when this tariff becomes
 * active" and "The time after which this tariff is no longer valid"). The tariff a session is
 * priced with is the one in force at its start (mod_tariffs: a driver accepts the tariff valid when
 * the session starts). Pure; the tariff is a validated one.
 */
export function tariff_in_force(tariff: Tariff, at_ms: number): boolean {
  const start_ms = tariff.start_date_time === undefined ? undefined : date_time_ms(tariff.start_date_time);
  const end_ms = tariff.end_date_time === undefined ? undefined : date_time_ms(tariff.end_date_time);
  if (start_ms !== undefined && at_ms < start_ms) return false;
  if (end_ms !== undefined && at_ms >= end_ms) return false;
  return true;
}

/** The CPO that owns imported tariffs: OCPI country code and party id (core/config.ts OCPI_COUNTRY_CODE, OCPI_PARTY_ID). */
export interface CpoParty {
  country_code: string;
  party_id: string;
}

/**
 * A tariff as imported (operator API PUT /v1/tariffs/{id}, `evrate rate --tariff`): OCPI 2.2.1, or
 * OCPI 2.1.1 normalised to 2.2.1, then validated. Returns a new object; the input is not changed.
 *
 * OCPI 2.1.1 (mod_tariffs 3.1 Tariff: id, currency, tariff_alt_text, tariff_alt_url, elements,
 * energy_mix, last_updated) differs from 2.2.1 in these shapes, normalised so:
 * - no country_code and party_id (a 2.1.1 Tariff is owned by the party of the connection): both
 *   are the CPO's own; a tariff with only one of the two is refused, naming the missing one;
 * - no `type`: it stays absent ("When omitted, this tariff is valid for all sessions");
 * - EnergyMix.environ_impact[].source (2.1.1 EnvironmentalImpact) is 2.2.1's `category`;
 * - PriceComponent without `vat`: no VAT applies (2.2.1: "If omitted, no VAT is applicable");
 * - tariff_alt_text as one DisplayText object instead of a list is taken as a list of one.
 * Everything else must already have its 2.2.1 shape, the descriptive fields included (type,
 * tariff_alt_text, tariff_alt_url, energy_mix); what does not is refused with the field named.
 */
export function normalise_tariff(value: unknown, cpo: CpoParty): Tariff {
  if (!is_object(value)) fail('(body)', 'must be a JSON object (OCPI 2.2.1 or 2.1.1 Tariff)');
  const tariff: Json = { ...value };
  const has_country = tariff.country_code !== undefined;
  const has_party = tariff.party_id !== undefined;
  if (!has_country && !has_party) {
    tariff.country_code = cpo.country_code;
    tariff.party_id = cpo.party_id;
  } else if (!has_country) fail('country_code', 'is required with party_id (OCPI 2.2.1)');
  else if (!has_party) fail('party_id', 'is required with country_code (OCPI 2.2.1)');
  if (is_object(tariff.tariff_alt_text)) tariff.tariff_alt_text = [tariff.tariff_alt_text];
  const mix = tariff.energy_mix;
  if (is_object(mix) && Array.isArray(mix.environ_impact)) {
    tariff.energy_mix = {
      ...mix,
      environ_impact: mix.environ_impact.map((impact: unknown) =>
        is_object(impact) && impact.category === undefined && impact.source !== undefined
          ? (({ source, ...rest }) => ({ ...rest, category: source }))(impact)
          : impact,
      ),
    };
  }
  const valid = validate_tariff(tariff);
  validate_descriptive_fields(tariff);
  return valid;
}
