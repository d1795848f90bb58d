import { randomUUID } from 'node:crypto';
import { allow_private_addresses_from_env, destination_refusal } from './destination.js';
import type { OcpiResponse } from './envelope.js';

/** Why a call to a partner failed: transport, HTTP status, or an OCPI status outside 1xxx. */
export class OcpiClientError extends Error {
  constructor(
    message: string,
    readonly http_status?: number,
    readonly ocpi_status_code?: number,
  ) {
    super(message);
    this.name = 'OcpiClientError';
  }
}

/** A partner URL not called because of where it points (see destination.ts); nothing was sent. */
export class OcpiDestinationRefusedError extends OcpiClientError {
  constructor(
    message: string,
    readonly url: string,
  ) {
    super(message);
    this.name = 'OcpiDestinationRefusedError';
  }
}

export interface OcpiClientOptions {
  timeout_ms: number;
  response_bytes_max: number;
  /**
   * Call partner URLs on loopback, private, link-local and unique-local addresses too (config
   * OCPI_ALLOW_PRIVATE_ADDRESSES). Unset: the environment variable, read at each call.
   */
  allow_private_addresses?: boolean;
}

export const ocpi_client_defaults: OcpiClientOptions = {
  timeout_ms: 10_000,
  response_bytes_max: 4 * 1024 * 1024,
};

/** Authorization header value for a credentials token: Base64 of its UTF-8 (transport_and_format). */
export function authorization_header(token: string): string {
  return `Token ${Buffer.from(token, 'utf8').toString('base64')}`;
}

export interface OcpiCallResult<T> {
  http_status: number;
  body: OcpiResponse<T>;
  headers: Headers;
}

/**
 * One request to a partner's OCPI endpoint with its token B. Bounded in time and in response size;
 * any answer that is not an OCPI envelope with a 1xxx status is an OcpiClientError.
 */
export async function ocpi_call<T>(
  method: 'GET' | 'POST' | 'PUT',
  url: string,
  token: string,
  body: unknown,
  options: OcpiClientOptions = ocpi_client_defaults,
): Promise<OcpiCallResult<T>> {
  const parsed = new URL(url);
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new OcpiClientError(`${url}: only http and https URLs are called`);
  }
  await check_partner_url(parsed, options);
  let response: Response;
  try {
    response = await fetch(parsed, {
      method,
      headers: {
        authorization: authorization_header(token),
        accept: 'application/json',
        // transport_and_format "Unique message IDs": every request carries both.
        'x-request-id': randomUUID(),
        'x-correlation-id': randomUUID(),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      redirect: 'error',
      signal: AbortSignal.timeout(options.timeout_ms),
    });
  } catch (error) {
    throw new OcpiClientError(`${method} ${url}: ${(error as Error).message}`);
  }
  const text = await read_limited(response, options.response_bytes_max, url);
  let envelope: OcpiResponse<T>;
  try {
    envelope = JSON.parse(text) as OcpiResponse<T>;
  } catch {
    throw new OcpiClientError(`${method} ${url}: HTTP ${response.status}, body is not JSON`, response.status);
  }
  const code = typeof envelope === 'object' && envelope !== null ? envelope.status_code : undefined;
  if (!response.ok || typeof code !== 'number' || code < 1000 || code > 1999) {
    throw new OcpiClientError(
      `${method} ${url}: HTTP ${response.status}, OCPI status ${String(code)}`,
      response.status,
      typeof code === 'number' ? code : undefined,
    );
  }
  return { http_status: response.status, body: envelope, headers: response.headers };
}

async function read_limited(response: Response, bytes_max: number, url: string): Promise<string> {
  if (response.body === null) return '';
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    total += chunk.byteLength;
    if (total > bytes_max)
      throw new OcpiClientError(`${url}: response over ${bytes_max} bytes`, response.status);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Throws OcpiDestinationRefusedError, naming the URL, for a URL we must not call. */
export async function check_partner_url(url: URL, options: OcpiClientOptions): Promise<void> {
  const allow = options.allow_private_addresses ?? allow_private_addresses_from_env();
  const refusal = await destination_refusal(url, allow);
  if (refusal !== undefined) throw new OcpiDestinationRefusedError(refusal, url.href);
}
