import { randomUUID } from 'node:crypto';
import dns, { type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import {
  allow_private_addresses_from_env,
  destination_refusal,
  refused_address_kind,
} from './destination.js';
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
  const allow_private = options.allow_private_addresses ?? allow_private_addresses_from_env();
  const payload = body === undefined ? undefined : JSON.stringify(body);
  let response: { status: number; headers: Headers; text: string };
  try {
    response = await request_text(parsed, {
      method,
      headers: {
        authorization: authorization_header(token),
        accept: 'application/json',
        // transport_and_format "Unique message IDs": every request carries both.
        'x-request-id': randomUUID(),
        'x-correlation-id': randomUUID(),
        ...(payload === undefined
          ? {}
          : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) }),
      },
      payload,
      timeout_ms: options.timeout_ms,
      response_bytes_max: options.response_bytes_max,
      allow_private,
    });
  } catch (error) {
    if (error instanceof OcpiClientError) throw error;
    const refused = (error as { refusal?: string }).refusal;
    if (refused !== undefined) throw new OcpiDestinationRefusedError(`${url}: ${refused}`, parsed.href);
    throw new OcpiClientError(`${method} ${url}: ${(error as Error).message}`);
  }
  const text = response.text;
  const ok = response.status >= 200 && response.status < 300;
  let envelope: OcpiResponse<T>;
  try {
    envelope = JSON.parse(text) as OcpiResponse<T>;
  } catch {
    throw new OcpiClientError(`${method} ${url}: HTTP ${response.status}, body is not JSON`, response.status);
  }
  const code = typeof envelope === 'object' && envelope !== null ? envelope.status_code : undefined;
  if (!ok || typeof code !== 'number' || code < 1000 || code > 1999) {
    throw new OcpiClientError(
      `${method} ${url}: HTTP ${response.status}, OCPI status ${String(code)}`,
      response.status,
      typeof code === 'number' ? code : undefined,
    );
  }
  return { http_status: response.status, body: envelope, headers: response.headers };
}

/**
 * The address check again at connection time, on the addresses the connection itself uses: a
 * name checked by check_partner_url could resolve elsewhere a moment later (DNS rebinding). An
 * IP literal is not looked up; check_partner_url refused it already.
 */
export function checked_lookup(allow_private: boolean): LookupFunction {
  return (hostname, options, callback) => {
    dns.lookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error !== null) return callback(error, '', 0);
      for (const a of addresses) {
        const kind = allow_private ? undefined : refused_address_kind(a.address);
        if (kind !== undefined) {
          const refused = Object.assign(new Error(`${hostname} resolves to ${a.address}, ${kind}`), {
            refusal: `${hostname} resolves to ${a.address}, ${kind}; partner URLs must be public addresses (OCPI_ALLOW_PRIVATE_ADDRESSES=true allows others)`,
          });
          return callback(refused, '', 0);
        }
      }
      if (options.all === true) return (callback as (e: null, a: LookupAddress[]) => void)(null, addresses);
      const first = addresses[0];
      if (first === undefined) return callback(new Error(`${hostname}: no address`), '', 0);
      callback(null, first.address, first.family);
    });
  };
}

/**
 * One HTTP request over node:http(s) (so that the connection's own lookup can be checked), its
 * answer read up to `response_bytes_max`, all within `timeout_ms`. Redirects are not followed: a
 * 3xx is an answer that is not 2xx.
 */
function request_text(
  url: URL,
  options: {
    method: string;
    headers: Record<string, string>;
    payload: string | undefined;
    timeout_ms: number;
    response_bytes_max: number;
    allow_private: boolean;
  },
): Promise<{ status: number; headers: Headers; text: string }> {
  return new Promise((resolve, reject) => {
    const send = url.protocol === 'https:' ? https.request : http.request;
    const request = send(
      url,
      {
        method: options.method,
        headers: options.headers,
        lookup: checked_lookup(options.allow_private),
        signal: AbortSignal.timeout(options.timeout_ms),
      },
      (response) => {
        const chunks: Buffer[] = [];
        let total = 0;
        const status = response.statusCode ?? 0;
        response.on('data', (chunk: Buffer) => {
          total += chunk.byteLength;
          if (total > options.response_bytes_max) {
            response.destroy();
            reject(
              new OcpiClientError(`${url.href}: response over ${options.response_bytes_max} bytes`, status),
            );
            return;
          }
          chunks.push(chunk);
        });
        response.on('error', reject);
        response.on('end', () => {
          const headers = new Headers();
          for (const [name, value] of Object.entries(response.headers)) {
            if (value === undefined) continue;
            for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
          }
          resolve({ status, headers, text: Buffer.concat(chunks).toString('utf8') });
        });
      },
    );
    request.on('error', reject);
    request.end(options.payload);
  });
}

/** Throws OcpiDestinationRefusedError, naming the URL, for a URL we must not call. */
export async function check_partner_url(url: URL, options: OcpiClientOptions): Promise<void> {
  const allow = options.allow_private_addresses ?? allow_private_addresses_from_env();
  const refusal = await destination_refusal(url, allow);
  if (refusal !== undefined) throw new OcpiDestinationRefusedError(refusal, url.href);
}
