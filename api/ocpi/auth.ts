import type http from 'node:http';
import { RateLimiter } from '../../core/rate-limit.js';
import { OcpiError, ocpi_status } from './envelope.js';
import type { PartnerRecord, PartnerRegistry } from './partners.js';

/** Who is calling an OCPI route: the partner and which of our tokens it presented. */
export interface OcpiCaller {
  partner: PartnerRecord;
  /** The credentials token presented (needed for GET /credentials, which returns it). */
  token: string;
}

const credentials_token_pattern = /^[\x21-\x7e]{1,64}$/;

/**
 * The credentials token of an `Authorization: Token <encoded token>` header. OCPI 2.2.1
 * (transport_and_format "Authorization header") requires the token Base64-encoded; its NOTE says
 * 2.1.1 and 2.2 implementations often send it raw. Both are accepted: the decoded form is tried
 * first, then the header value as is (a raw token that happens to be valid Base64 decodes to
 * bytes that match no token, so the two readings cannot be confused for a token we issued).
 */
export function token_candidates(header: string | undefined): string[] {
  const match = /^Token ([\x21-\x7e]{1,128})$/.exec(header ?? '');
  if (match === null) return [];
  const value = match[1]!;
  const candidates: string[] = [];
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(value) && value.length % 4 === 0) {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    if (credentials_token_pattern.test(decoded)) candidates.push(decoded);
  }
  if (credentials_token_pattern.test(value)) candidates.push(value);
  return candidates;
}

export interface OcpiAuthOptions {
  rate_limit_per_s: number;
  rate_limit_burst: number;
}

/**
 * The router's authenticator for `auth: 'ocpi'` routes: finds the partner by token, then spends
 * one unit of its request budget. A missing or unknown token is 401 (transport_and_format); so
 * many failures from one address are slowed down with 429 before any lookup.
 */
export function ocpi_authenticator(
  partners: PartnerRegistry,
  options: OcpiAuthOptions,
): (req: http.IncomingMessage) => Promise<OcpiCaller> {
  const per_partner = new RateLimiter({
    per_s: options.rate_limit_per_s,
    burst: options.rate_limit_burst,
    keys_max: 100_000,
  });
  // Failed authentications per remote address: once its budget is spent, the address is
  // refused before any lookup, which bounds how fast tokens can be guessed.
  const failures = new RateLimiter({ per_s: 2, burst: 20, keys_max: 100_000 });
  return async (req) => {
    const address = req.socket.remoteAddress ?? 'unknown';
    const blocked_s = failures.wait_s(address);
    if (blocked_s > 0) throw too_many(blocked_s);
    for (const token of token_candidates(req.headers.authorization)) {
      const partner = await partners.by_token(token);
      if (partner !== undefined && partner.status !== 'unregistered') {
        const wait_s = per_partner.take(partner.partner_id);
        if (wait_s > 0) throw too_many(wait_s);
        return { partner, token };
      }
    }
    failures.take(address);
    throw new OcpiError(
      401,
      ocpi_status.client_error,
      'missing or unknown credentials token (Authorization: Token <base64 token>)',
    );
  };
}

function too_many(wait_s: number): OcpiError {
  return new OcpiError(
    429,
    ocpi_status.client_error,
    `request rate limit reached; retry in ${wait_s} s`,
    undefined,
    {
      'retry-after': String(wait_s),
    },
  );
}

/** The partner of a request on an `ocpi` route (the router never runs the handler without one). */
export function ocpi_caller(caller: unknown): OcpiCaller {
  if (typeof caller !== 'object' || caller === null || !('partner' in caller)) {
    throw new Error('OCPI route reached without an authenticated partner');
  }
  return caller as OcpiCaller;
}

/**
 * Token A may only be used on the credentials and versions modules (transport_and_format: any
 * other module SHALL answer 401); functional modules need a registered partner's token C.
 */
export function require_registered(caller: OcpiCaller): PartnerRecord {
  if (caller.partner.status !== 'registered' || caller.partner.token_kind !== 'C') {
    throw new OcpiError(
      401,
      ocpi_status.client_error,
      'this module needs the credentials token of a registered partner',
    );
  }
  return caller.partner;
}
