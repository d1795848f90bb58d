import { invalid_parameter } from './envelope.js';

/** Field readers for OCPI request bodies: each throws 2001 naming the field and the rule. */
export type Json = Record<string, unknown>;

export function object_body(body: unknown, field = '(body)'): Json {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw invalid_parameter(field, 'must be a JSON object');
  }
  return body as Json;
}

function has_control_character(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

/** OCPI string(n): printable text up to n characters. */
export function string_field(body: Json, field: string, length_max: number, required: true): string;
export function string_field(
  body: Json,
  field: string,
  length_max: number,
  required: false,
): string | undefined;
export function string_field(
  body: Json,
  field: string,
  length_max: number,
  required: boolean,
): string | undefined {
  const value = body[field];
  if (value === undefined || value === null) {
    if (required) throw invalid_parameter(field, 'required');
    return undefined;
  }
  if (typeof value !== 'string' || value.length > length_max || has_control_character(value)) {
    throw invalid_parameter(field, `must be a string of at most ${length_max} characters`);
  }
  return value;
}

/** OCPI CiString(n): printable ASCII, compared case-insensitively. */
export function cistring_field(body: Json, field: string, length_max: number, required: true): string;
export function cistring_field(
  body: Json,
  field: string,
  length_max: number,
  required: false,
): string | undefined;
export function cistring_field(
  body: Json,
  field: string,
  length_max: number,
  required: boolean,
): string | undefined {
  const value = required
    ? string_field(body, field, length_max, true)
    : string_field(body, field, length_max, false);
  if (value === undefined) return undefined;
  if (!/^[\x20-\x7e]*$/.test(value) || (required && value.length === 0)) {
    throw invalid_parameter(field, `must be printable ASCII of 1 to ${length_max} characters`);
  }
  return value;
}

export function enum_field<T extends string>(
  body: Json,
  field: string,
  values: readonly T[],
  required: true,
): T;
export function enum_field<T extends string>(
  body: Json,
  field: string,
  values: readonly T[],
  required: false,
): T | undefined;
export function enum_field<T extends string>(
  body: Json,
  field: string,
  values: readonly T[],
  required: boolean,
): T | undefined {
  const value = body[field];
  if (value === undefined || value === null) {
    if (required) throw invalid_parameter(field, 'required');
    return undefined;
  }
  if (typeof value !== 'string' || !(values as readonly string[]).includes(value)) {
    throw invalid_parameter(field, `must be one of ${values.join(', ')}`);
  }
  return value as T;
}

export function boolean_field(body: Json, field: string): boolean {
  const value = body[field];
  if (typeof value !== 'boolean') throw invalid_parameter(field, 'required, true or false');
  return value;
}

const date_time_pattern = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})?$/;

/**
 * OCPI DateTime (types.asciidoc): RFC 3339, UTC. A value without a zone is read as UTC, as the
 * spec says all timestamps are UTC.
 */
export function parse_date_time(value: string, field: string): number {
  if (!date_time_pattern.test(value))
    throw invalid_parameter(field, 'must be an RFC 3339 date-time, e.g. 2026-11-01T00:00:00Z');
  const ms = Date.parse(/(Z|[+-]\d{2}:\d{2})$/.test(value) ? value : `${value}Z`);
  if (Number.isNaN(ms)) throw invalid_parameter(field, 'is not a valid date-time');
  return ms;
}

export function date_time_field(body: Json, field: string): number {
  const value = string_field(body, field, 40, true);
  return parse_date_time(value, field);
}

export function url_field(body: Json, field: string): string {
  const value = string_field(body, field, 255, true);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalid_parameter(field, 'must be an absolute URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw invalid_parameter(field, 'must be an http or https URL');
  return value;
}
