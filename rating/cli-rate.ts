import { Money } from '../core/money.js';
import { type MeterSample, type RatedSession, RatingInputError, rate_session } from './engine.js';
import { local_time } from './local-time.js';
import { type CpoParty, normalise_tariff, type Tariff, TariffValidationError } from './tariff.js';

/** A rating failure that names the input file ('tariff' or 'cdr'), the field and the rule broken. */
export class RateCdrError extends Error {
  constructor(
    readonly file: 'tariff' | 'cdr',
    readonly field: string,
    readonly rule: string,
  ) {
    super(`${file}: ${field}: ${rule}`);
    this.name = 'RateCdrError';
  }
}

/** The input CDR with its pricing part (OCPI 2.2.1 mod_cdrs 10.3.1) computed by the engine. */
export type PricedCdr = Record<string, unknown> &
  Pick<
    RatedSession,
    | 'currency'
    | 'charging_periods'
    | 'total_cost'
    | 'total_fixed_cost'
    | 'total_energy_cost'
    | 'total_time_cost'
    | 'total_parking_cost'
    | 'total_energy'
    | 'total_time'
    | 'total_parking_time'
  >;

export interface RateCdrOptions {
  /**
   * IANA zone of the Location. OCPI 2.2.1 CdrLocation has none: without it, the zone of the
   * location's country when that country has exactly one (zone_of_country).
   */
  time_zone?: string;
  /**
   * The CPO that owns an OCPI 2.1.1 tariff without country_code/party_id (core/config.ts
   * OCPI_COUNTRY_CODE, OCPI_PARTY_ID). Without it, the CDR's own country_code and party_id.
   */
  cpo?: CpoParty;
}

/**
 * IANA zone of a country (ISO 3166-1 alpha-3, as OCPI Location.country) that has exactly one zone
 * in the IANA database for its whole territory, so that the country alone gives local time.
 * Countries with several zones are deliberately absent (USA, CAN, AUS, RUS, BRA, MEX, ESP with the
 * Canary Islands, PRT with the Azores and Madeira, CHN with Urumqi, NZL with the Chatham Islands,
 * KAZ, IDN, UKR, CYP, ...): their location needs an explicit zone. Overseas territories with their
 * own ISO code (GUF, REU, GRL, FRO, BES, ...) are other countries here.
 */
export const zone_of_country: Readonly<Record<string, string>> = {
  ALB: 'Europe/Tirane',
  AND: 'Europe/Andorra',
  ARE: 'Asia/Dubai',
  AUT: 'Europe/Vienna',
  BEL: 'Europe/Brussels',
  BGR: 'Europe/Sofia',
  BIH: 'Europe/Sarajevo',
  CHE: 'Europe/Zurich',
  CZE: 'Europe/Prague',
  DEU: 'Europe/Berlin',
  DNK: 'Europe/Copenhagen',
  EST: 'Europe/Tallinn',
  FIN: 'Europe/Helsinki',
  FRA: 'Europe/Paris',
  GBR: 'Europe/London',
  GRC: 'Europe/Athens',
  HKG: 'Asia/Hong_Kong',
  HRV: 'Europe/Zagreb',
  HUN: 'Europe/Budapest',
  IND: 'Asia/Kolkata',
  IRL: 'Europe/Dublin',
  ISL: 'Atlantic/Reykjavik',
  ISR: 'Asia/Jerusalem',
  ITA: 'Europe/Rome',
  JPN: 'Asia/Tokyo',
  KOR: 'Asia/Seoul',
  LIE: 'Europe/Vaduz',
  LTU: 'Europe/Vilnius',
  LUX: 'Europe/Luxembourg',
  LVA: 'Europe/Riga',
  MCO: 'Europe/Monaco',
  MDA: 'Europe/Chisinau',
  MKD: 'Europe/Skopje',
  MLT: 'Europe/Malta',
  MNE: 'Europe/Podgorica',
  NLD: 'Europe/Amsterdam',
  NOR: 'Europe/Oslo',
  POL: 'Europe/Warsaw',
  ROU: 'Europe/Bucharest',
  SGP: 'Asia/Singapore',
  SMR: 'Europe/San_Marino',
  SRB: 'Europe/Belgrade',
  SVK: 'Europe/Bratislava',
  SVN: 'Europe/Ljubljana',
  SWE: 'Europe/Stockholm',
  THA: 'Asia/Bangkok',
  TUR: 'Europe/Istanbul',
  TWN: 'Asia/Taipei',
  ZAF: 'Africa/Johannesburg',
};

type Json = Record<string, unknown>;
const rfc3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const charging_periods_max = 10_000;

function is_object(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function fail(field: string, rule: string): never {
  throw new RateCdrError('cdr', field, rule);
}

function parse(file: 'tariff' | 'cdr', json: unknown): unknown {
  if (typeof json !== 'string') return json;
  try {
    return JSON.parse(json) as unknown;
  } catch (error) {
    throw new RateCdrError(file, '(file)', `is not JSON: ${(error as Error).message}`);
  }
}

function instant_ms(o: Json, key: string, field: string): number {
  const value = o[key];
  if (typeof value !== 'string' || !rfc3339.test(value))
    fail(field, 'must be an RFC 3339 date-time with zone');
  return Date.parse(value);
}

interface PeriodFacts {
  start_ms: number;
  energy_kwh: string | undefined;
  charging: boolean;
  current_a: number | undefined;
  power_w: number | undefined;
}

function period_facts(value: unknown, i: number, start_ms: number, end_ms: number): PeriodFacts {
  const at = `charging_periods[${i}]`;
  if (!is_object(value)) fail(at, 'must be an object');
  const period_start_ms = instant_ms(value, 'start_date_time', `${at}.start_date_time`);
  if (period_start_ms < start_ms || period_start_ms > end_ms) {
    fail(`${at}.start_date_time`, 'must lie within start_date_time and end_date_time');
  }
  const dimensions = value.dimensions;
  if (!Array.isArray(dimensions)) fail(`${at}.dimensions`, 'must be an array of CdrDimension');
  const volumes = new Map<string, number>();
  dimensions.forEach((d: unknown, j) => {
    const dat = `${at}.dimensions[${j}]`;
    if (!is_object(d) || typeof d.type !== 'string') fail(`${dat}.type`, 'must be a CdrDimensionType');
    if (typeof d.volume !== 'number' || !Number.isFinite(d.volume) || d.volume < 0) {
      fail(`${dat}.volume`, 'must be a non-negative number');
    }
    volumes.set(d.type, d.volume);
  });
  const energy = volumes.get('ENERGY');
  const current = volumes.get('CURRENT') ?? volumes.get('MAX_CURRENT');
  const power_kw = volumes.get('POWER') ?? volumes.get('MAX_POWER');
  return {
    start_ms: period_start_ms,
    energy_kwh: energy === undefined ? undefined : String(energy),
    // PARKING_TIME: "Time not charging" (mod_cdrs CdrDimensionType); any other period charges.
    charging: !volumes.has('PARKING_TIME') || volumes.has('TIME'),
    current_a: current,
    power_w: power_kw === undefined ? undefined : Number(new Money(String(power_kw)).mul(1000)),
  };
}

/**
 * The zone of the CDR's location when no --time-zone is given: its `time_zone` (an OCPI 2.1.1
 * Location has one), else its country's single zone. The location is `cdr_location` (OCPI 2.2.1
 * CdrLocation) or `location` (OCPI 2.1.1 CDR).
 */
function location_zone(cdr: Json): string {
  const key = cdr.cdr_location !== undefined ? 'cdr_location' : 'location';
  const location = cdr[key];
  if (location === undefined)
    fail('cdr_location', 'is required to find the time zone (or pass the time zone)');
  if (!is_object(location)) fail(key, 'must be an object (OCPI CdrLocation or Location)');
  if (location.time_zone !== undefined) {
    if (typeof location.time_zone !== 'string') fail(`${key}.time_zone`, 'must be an IANA time zone');
    return location.time_zone;
  }
  const country = location.country;
  if (typeof country !== 'string' || !/^[A-Z]{3}$/.test(country))
    fail(`${key}.country`, 'must be ISO 3166-1 alpha-3 to find the time zone (or pass the time zone)');
  const zone = zone_of_country[country];
  if (zone === undefined)
    fail(`${key}.country`, `${country} has no single time zone here: pass the time zone (--time-zone)`);
  return zone;
}

/**
 * Builds meter samples from a CDR's charging periods: a period lasts until the next one starts (the
 * last until end_date_time), with the ENERGY volume it declares. A CDR without ENERGY dimensions
 * spreads total_energy evenly over its time.
 */
function cdr_samples(cdr: Json): MeterSample[] {
  const start_ms = instant_ms(cdr, 'start_date_time', 'start_date_time');
  // OCPI 2.1.1 CDRs end at stop_date_time.
  const end_key =
    cdr.end_date_time === undefined && cdr.stop_date_time !== undefined ? 'stop_date_time' : 'end_date_time';
  const end_ms = instant_ms(cdr, end_key, end_key);
  if (end_ms < start_ms) fail('end_date_time', 'must not be before start_date_time');
  const raw = cdr.charging_periods ?? [];
  if (!Array.isArray(raw)) fail('charging_periods', 'must be an array of ChargingPeriod');
  if (raw.length > charging_periods_max) fail('charging_periods', `at most ${charging_periods_max} periods`);
  const periods = raw.map((p: unknown, i) => period_facts(p, i, start_ms, end_ms));
  periods.forEach((p, i) => {
    if (i > 0 && p.start_ms < periods[i - 1]!.start_ms) {
      fail(`charging_periods[${i}].start_date_time`, 'periods must be in time order');
    }
  });
  const total_energy = cdr.total_energy;
  if (total_energy !== undefined && (typeof total_energy !== 'number' || total_energy < 0)) {
    fail('total_energy', 'must be a non-negative number (kWh)');
  }
  const total_wh = new Money(String(total_energy ?? 0)).mul(1000);
  const has_energy = periods.some((p) => p.energy_kwh !== undefined);
  if (periods.length === 0 || periods[0]!.start_ms > start_ms) {
    periods.unshift({
      start_ms,
      energy_kwh: undefined,
      charging: true,
      current_a: undefined,
      power_w: undefined,
    });
  }
  const samples: MeterSample[] = [];
  let energy_wh = new Money(0);
  const duration_ms = end_ms - start_ms;
  periods.forEach((p, i) => {
    const next_ms = periods[i + 1]?.start_ms ?? end_ms;
    samples.push({
      at_ms: p.start_ms,
      energy_wh: energy_wh.toNumber(),
      charging: p.charging,
      ...(p.current_a === undefined ? {} : { current_a: p.current_a }),
      ...(p.power_w === undefined ? {} : { power_w: p.power_w }),
    });
    energy_wh = has_energy
      ? energy_wh.plus(new Money(p.energy_kwh ?? '0').mul(1000))
      : duration_ms === 0
        ? total_wh
        : energy_wh.plus(total_wh.mul(next_ms - p.start_ms).div(duration_ms));
  });
  samples.push({ at_ms: end_ms, energy_wh: energy_wh.toNumber(), charging: false });
  return samples;
}

/**
 * Prices an OCPI 2.2.1 CDR with a tariff: the CDR's periods give the session facts, the engine
 * gives the pricing part. Arguments are JSON text or parsed values; errors name file, field, rule.
 */
export function rate_cdr(tariff_json: unknown, cdr_json: unknown, options: RateCdrOptions = {}): PricedCdr {
  const tariff_value = parse('tariff', tariff_json);
  const cdr = parse('cdr', cdr_json);
  const party =
    is_object(cdr) && typeof cdr.country_code === 'string' && typeof cdr.party_id === 'string'
      ? { country_code: cdr.country_code, party_id: cdr.party_id }
      : undefined;
  let tariff: Tariff;
  try {
    const cpo = options.cpo ?? party;
    if (cpo === undefined && is_object(tariff_value) && tariff_value.country_code === undefined)
      throw new TariffValidationError(
        'country_code',
        'is required (an OCPI 2.1.1 tariff needs the CPO party)',
      );
    tariff = normalise_tariff(tariff_value, cpo ?? { country_code: '', party_id: '' });
  } catch (error) {
    if (error instanceof TariffValidationError) throw new RateCdrError('tariff', error.field, error.rule);
    throw error;
  }
  if (!is_object(cdr)) fail('(file)', 'must be a JSON object (OCPI 2.2.1 CDR)');
  if (cdr.currency !== undefined && cdr.currency !== tariff.currency) {
    fail('currency', `must equal the tariff currency ${tariff.currency}`);
  }
  const time_zone = options.time_zone ?? location_zone(cdr);
  try {
    local_time(0, time_zone);
  } catch {
    fail('cdr_location.time_zone', `unknown IANA time zone ${time_zone}`);
  }
  const samples = cdr_samples(cdr);
  try {
    const rated = rate_session({ tariff, time_zone, samples });
    return {
      ...cdr,
      currency: rated.currency,
      tariffs: [tariff],
      charging_periods: rated.charging_periods,
      total_cost: rated.total_cost,
      total_fixed_cost: rated.total_fixed_cost,
      total_energy_cost: rated.total_energy_cost,
      total_time_cost: rated.total_time_cost,
      total_parking_cost: rated.total_parking_cost,
      total_energy: rated.total_energy,
      total_time: rated.total_time,
      total_parking_time: rated.total_parking_time,
    };
  } catch (error) {
    if (error instanceof RatingInputError) fail(`charging_periods (${error.field})`, error.rule);
    throw error;
  }
}
