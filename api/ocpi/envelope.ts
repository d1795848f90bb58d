import type http from 'node:http';
import { HttpError, send_json } from '../http.js';

/**
 * The OCPI 2.2.1 response format (transport_and_format "Response format"): every answer, errors
 * included, is `{data?, status_code, status_message?, timestamp}`.
 */
export interface OcpiResponse<T = unknown> {
  data?: T;
  status_code: number;
  status_message?: string;
  timestamp: string;
}

/** OCPI status codes (status_codes.asciidoc). */
export const ocpi_status = {
  success: 1000,
  client_error: 2000,
  invalid_parameters: 2001,
  not_enough_information: 2002,
  unknown_location: 2003,
  unknown_token: 2004,
  server_error: 3000,
  client_api_unusable: 3001,
  unsupported_version: 3002,
  no_matching_endpoints: 3003,
} as const;

/**
 * An error answered in the OCPI envelope. Per status_codes.asciidoc a request that is valid JSON,
 * authenticated and addressed to an existing resource has reached the OCPI layer and MUST NOT get
 * an HTTP error status: such errors keep HTTP 200 and carry the OCPI code. HTTP errors remain for
 * the transport (401, 404 of an unknown object, 405, 413, 429, invalid JSON).
 */
export class OcpiError extends HttpError {
  constructor(
    http_status: number,
    readonly ocpi_status_code: number,
    message: string,
    field?: string,
    headers: Record<string, string> = {},
  ) {
    super(http_status, message, field, headers);
  }
}

/** Invalid or missing parameters (2001), answered with HTTP 200 (see OcpiError). */
export function invalid_parameter(field: string, rule: string): OcpiError {
  return new OcpiError(200, ocpi_status.invalid_parameters, `${field}: ${rule}`, field);
}

export function ocpi_timestamp(ms: number = Date.now()): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function send_ocpi<T>(
  res: http.ServerResponse,
  data: T | undefined,
  options: { http_status?: number; headers?: Record<string, string>; message?: string } = {},
): void {
  const body: OcpiResponse<T> = {
    ...(data === undefined ? {} : { data }),
    status_code: ocpi_status.success,
    ...(options.message === undefined ? {} : { status_message: options.message }),
    timestamp: ocpi_timestamp(),
  };
  send_json(res, options.http_status ?? 200, body, options.headers);
}

/** The body of an error under /ocpi: the router calls this for every HttpError it answers. */
export function ocpi_error_body(error: HttpError): OcpiResponse<never> {
  let code: number;
  if (error instanceof OcpiError) code = error.ocpi_status_code;
  else if (error.status === 400 || error.status === 413 || error.status === 415)
    code = ocpi_status.invalid_parameters;
  else if (error.status >= 500) code = ocpi_status.server_error;
  else code = ocpi_status.client_error;
  return { status_code: code, status_message: error.message, timestamp: ocpi_timestamp() };
}
