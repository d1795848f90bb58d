import { createHash } from 'node:crypto';
import { Decimal } from 'decimal.js';
import { ocpi_timestamp } from './envelope.js';
import type { Party } from './partners.js';

/** A rated_sessions row as the CDR query reads it (latest version; money as decimal text). */
export interface CdrRow {
  session_id: string;
  version: number | string;
  charge_point_id: string;
  connector_id: number | string;
  evse_id: number | string;
  id_tag: string;
  started_at_ms: number | string;
  stopped_at_ms: number | string;
  energy_wh: number | string;
  currency: string;
  tariff_id: string;
  total_excl_vat: string;
  total_incl_vat: string;
  energy_cost_excl_vat: string;
  time_cost_excl_vat: string;
  parking_cost_excl_vat: string;
  fixed_cost_excl_vat: string;
  duration_s: number | string;
  parking_s: number | string;
  payment_method: string;
  party: string;
  breakdown: string;
  rated_at_ms: number | string;
  /** Schema v34 columns ('' on older rows); see analytics/sessions.ts RatedSessionRow. */
  token_type: string;
  contract_id: string;
  auth_method: string;
  /** last_updated_ms where the rating set it, else rated_at_ms (migration 34). */
  cdr_last_updated_ms: number | string;
}

export type OcpiAuthMethod = 'AUTH_REQUEST' | 'COMMAND' | 'WHITELIST';

/** OCPI 2.2.1 mod_cdrs CdrToken. */
export interface OcpiCdrToken {
  country_code: string;
  party_id: string;
  uid: string;
  type: string;
  contract_id: string;
}

/** OCPI 2.2.1 types Price. */
export interface OcpiPrice {
  excl_vat: number;
  incl_vat?: number;
}

/** OCPI 2.2.1 mod_cdrs CDR object (the fields we can fill). */
export interface OcpiCdr {
  country_code: string;
  party_id: string;
  id: string;
  start_date_time: string;
  end_date_time: string;
  session_id: string;
  cdr_token: OcpiCdrToken;
  auth_method: OcpiAuthMethod;
  cdr_location: {
    id: string;
    address: string;
    city: string;
    country: string;
    coordinates: { latitude: string; longitude: string };
    evse_uid: string;
    evse_id: string;
    connector_id: string;
    connector_standard: string;
    connector_format: string;
    connector_power_type: string;
  };
  currency: string;
  charging_periods: {
    start_date_time: string;
    dimensions: { type: string; volume: number }[];
    tariff_id?: string;
  }[];
  total_cost: OcpiPrice;
  total_fixed_cost?: OcpiPrice;
  total_energy: number;
  total_energy_cost?: OcpiPrice;
  total_time: number;
  total_time_cost?: OcpiPrice;
  total_parking_time?: number;
  total_parking_cost?: OcpiPrice;
  last_updated: string;
}

export interface CdrMapping {
  /** Our party: the CDR's owner (mod_cdrs: country_code and party_id of the CPO). */
  cpo: Party;
  /** ISO 3166-1 alpha-3 country of our locations (CdrLocation.country). */
  location_country: string;
}

/**
 * CiString(36) id from a longer internal id: the id itself when it fits, else "h" and 35 hex
 * characters of its SHA-256, so the same session always gets the same CDR id.
 */
export function ocpi_id(internal_id: string): string {
  if (internal_id.length <= 36 && /^[\x20-\x7e]+$/.test(internal_id)) return internal_id;
  return `h${createHash('sha256').update(internal_id, 'utf8').digest('hex').slice(0, 35)}`;
}

/**
 * Decimal text to a JSON number, refusing any value a double would not print back exactly
 * (money must leave as it was stored; types.asciidoc number is a decimal).
 */
export function decimal_number(text: string, field: string): number {
  const value = Number(text);
  // Fast path: the number prints back as the same digits (trailing zeros aside).
  if (Number.isFinite(value) && String(value) === plain_decimal(text)) return value;
  if (!Number.isFinite(value) || !new Decimal(String(value)).eq(new Decimal(text))) {
    throw new RangeError(`${field}: ${text} cannot be written exactly as a JSON number`);
  }
  return value;
}

/** "03.100" -> "3.1", "-0.0" -> "0": the form String(Number) gives for ordinary decimals. */
function plain_decimal(text: string): string {
  let t = text;
  if (t.includes('.')) t = t.replace(/0+$/, '').replace(/\.$/, '');
  t = t.replace(/^(-?)0+(?=\d)/, '$1');
  return t === '-0' ? '0' : t;
}

/** Hours from seconds, to the microhour: volumes, not money, so a double is fine. */
function hours(seconds: number): number {
  return Math.round((seconds / 3600) * 1e6) / 1e6;
}

function price(
  excl_vat: string | undefined,
  incl_vat: string | undefined,
  field: string,
): OcpiPrice | undefined {
  if (excl_vat === undefined) return undefined;
  return {
    excl_vat: decimal_number(excl_vat, `${field}.excl_vat`),
    ...(incl_vat === undefined ? {} : { incl_vat: decimal_number(incl_vat, `${field}.incl_vat`) }),
  };
}

/**
 * Our payment method to OCPI TokenType, for rows rated before the token type was kept (schema
 * v34); roaming tokens are cards unless known otherwise.
 */
const token_type_by_payment_method: Record<string, string> = {
  RFID: 'RFID',
  APP: 'APP_USER',
  AD_HOC: 'AD_HOC_USER',
  TERMINAL: 'AD_HOC_USER',
  OTHER: 'OTHER',
  ROAMING: 'RFID',
  // OCPP 2.0.1 NoAuthorization: no token was presented.
  FREE: 'OTHER',
};

const ocpi_token_types = new Set(['AD_HOC_USER', 'APP_USER', 'OTHER', 'RFID']);
const ocpi_auth_methods = new Set<string>(['AUTH_REQUEST', 'COMMAND', 'WHITELIST']);

/** What a CDR or a Session says about the token: the rated row's, or the open session's. */
export interface TokenFacts {
  id_tag: string;
  /** "CC*PID" of a roaming token's eMSP; '' for our own tokens. */
  party: string;
  payment_method: string;
  token_type?: string;
  contract_id?: string;
  auth_method?: string;
}

/**
 * mod_cdrs CdrToken: the token's issuer (the eMSP of a roaming token, else us), its uid, and its
 * type and contract id as the rating recorded them; a row from before those were kept falls back
 * to the payment method's type and the uid as the contract id.
 */
export function cdr_token_of(token: TokenFacts, cpo: Party): OcpiCdrToken {
  const party = token_party(token.party, cpo);
  const type = token.token_type ?? '';
  const contract_id = token.contract_id ?? '';
  return {
    country_code: party.country_code,
    party_id: party.party_id,
    uid: token.id_tag,
    type: ocpi_token_types.has(type) ? type : (token_type_by_payment_method[token.payment_method] ?? 'OTHER'),
    contract_id: contract_id !== '' ? contract_id : token.id_tag,
  };
}

/**
 * mod_cdrs AuthMethod as the rating recorded it; before it was kept, tokens were authorized only
 * from the token store the eMSPs push to (mod_tokens whitelist).
 */
export function auth_method_of(token: TokenFacts): OcpiAuthMethod {
  const method = token.auth_method ?? '';
  return ocpi_auth_methods.has(method) ? (method as OcpiAuthMethod) : 'WHITELIST';
}

interface Breakdown {
  charging_periods?: {
    start_date_time: string;
    dimensions: { type: string; volume: string }[];
    tariff_id?: string;
  }[];
  total_fixed_cost?: { excl_vat: string; incl_vat: string };
  total_energy_cost?: { excl_vat: string; incl_vat: string };
  total_time_cost?: { excl_vat: string; incl_vat: string };
  total_parking_cost?: { excl_vat: string; incl_vat: string };
}

function parse_breakdown(text: string): Breakdown {
  try {
    const parsed = JSON.parse(text) as unknown;
    return typeof parsed === 'object' && parsed !== null ? (parsed as Breakdown) : {};
  } catch {
    return {};
  }
}

function token_party(party: string, cpo: Party): Party {
  const match = /^([A-Z]{2})\*([A-Z0-9]{3})$/i.exec(party);
  return match === null ? cpo : { country_code: match[1]!.toUpperCase(), party_id: match[2]!.toUpperCase() };
}

/**
 * A rated session as an OCPI CDR (mod_cdrs "CDR object"). Charging periods and per-dimension
 * costs come from the stored price breakdown; a row without one (older rows) gets a single period
 * carrying its totals so that charging_periods keeps its cardinality of one or more. Locations are
 * not modelled yet: CdrLocation names the charge point and its EVSE with an empty address.
 */
export function cdr_of_row(row: CdrRow, mapping: CdrMapping): OcpiCdr {
  const started_ms = Number(row.started_at_ms);
  const stopped_ms = Number(row.stopped_at_ms);
  // Wh are integers, so a division by 1000 gives the exact kWh digits.
  const energy_kwh = Number(row.energy_wh) / 1000;
  const time_h = hours(Number(row.duration_s));
  const parking_h = hours(Number(row.parking_s));
  const breakdown = parse_breakdown(row.breakdown);
  const periods =
    breakdown.charging_periods !== undefined && breakdown.charging_periods.length > 0
      ? breakdown.charging_periods.map((p) => ({
          start_date_time: p.start_date_time,
          dimensions: p.dimensions.map((d) => ({ type: d.type, volume: Number(d.volume) })),
          ...(p.tariff_id === undefined ? {} : { tariff_id: p.tariff_id }),
        }))
      : [
          {
            start_date_time: ocpi_timestamp(started_ms),
            dimensions: [
              { type: 'ENERGY', volume: energy_kwh },
              { type: 'TIME', volume: time_h },
            ],
            tariff_id: row.tariff_id,
          },
        ];
  const connector = Number(row.evse_id) > 0 ? Number(row.evse_id) : Number(row.connector_id);
  const evse = ocpi_id(`${row.charge_point_id}-${connector}`);
  const b = breakdown;
  const cdr: OcpiCdr = {
    country_code: mapping.cpo.country_code,
    party_id: mapping.cpo.party_id,
    id: ocpi_id(row.session_id),
    start_date_time: ocpi_timestamp(started_ms),
    end_date_time: ocpi_timestamp(stopped_ms),
    session_id: ocpi_id(row.session_id),
    cdr_token: cdr_token_of(row, mapping.cpo),
    auth_method: auth_method_of(row),
    cdr_location: {
      id: ocpi_id(row.charge_point_id),
      address: '',
      city: '',
      country: mapping.location_country,
      coordinates: { latitude: '0.000000', longitude: '0.000000' },
      evse_uid: evse,
      evse_id: evse,
      connector_id: String(Number(row.connector_id)),
      connector_standard: 'IEC_62196_T2',
      connector_format: 'SOCKET',
      connector_power_type: 'AC_3_PHASE',
    },
    currency: row.currency,
    charging_periods: periods,
    total_cost: price(row.total_excl_vat, row.total_incl_vat, 'total_cost')!,
    total_fixed_cost: price(
      b.total_fixed_cost?.excl_vat ?? row.fixed_cost_excl_vat,
      b.total_fixed_cost?.incl_vat,
      'total_fixed_cost',
    ),
    total_energy: energy_kwh,
    total_energy_cost: price(
      b.total_energy_cost?.excl_vat ?? row.energy_cost_excl_vat,
      b.total_energy_cost?.incl_vat,
      'total_energy_cost',
    ),
    total_time: time_h,
    total_time_cost: price(
      b.total_time_cost?.excl_vat ?? row.time_cost_excl_vat,
      b.total_time_cost?.incl_vat,
      'total_time_cost',
    ),
    total_parking_time: parking_h,
    total_parking_cost: price(
      b.total_parking_cost?.excl_vat ?? row.parking_cost_excl_vat,
      b.total_parking_cost?.incl_vat,
      'total_parking_cost',
    ),
    // The time this version was rated, so that a re-rated CDR is found again by date_from.
    last_updated: ocpi_timestamp(Number(row.cdr_last_updated_ms)),
  };
  return cdr;
}
