import { invalid_parameter } from './envelope.js';
import { parse_date_time } from './validate.js';

/** transport_and_format "Paginated Request": date_from (inclusive), date_to (exclusive), offset, limit. */
export interface PageRequest {
  date_from_ms?: number;
  date_to_ms?: number;
  offset: number;
  /** Already capped at the server's maximum (X-Limit). */
  limit: number;
}

export const offset_max = 100_000_000;

function integer_param(params: URLSearchParams, name: string, fallback: number, max: number): number {
  const raw = params.get(name);
  if (raw === null) return fallback;
  if (!/^\d{1,10}$/.test(raw)) throw invalid_parameter(name, 'must be a non-negative integer');
  const value = Number(raw);
  if (value > max) throw invalid_parameter(name, `must be at most ${max}`);
  return value;
}

/**
 * Reads the pagination parameters. A limit above the server's maximum is lowered to it, not
 * refused: "the server might decide to return fewer objects" and says so in X-Limit.
 */
export function parse_page_request(params: URLSearchParams, limit_max: number): PageRequest {
  const request: PageRequest = {
    offset: integer_param(params, 'offset', 0, offset_max),
    limit: Math.min(integer_param(params, 'limit', limit_max, 4_294_967_295), limit_max),
  };
  if (request.limit === 0) throw invalid_parameter('limit', 'must be at least 1');
  const from = params.get('date_from');
  const to = params.get('date_to');
  if (from !== null) request.date_from_ms = parse_date_time(from, 'date_from');
  if (to !== null) request.date_to_ms = parse_date_time(to, 'date_to');
  if (
    request.date_from_ms !== undefined &&
    request.date_to_ms !== undefined &&
    request.date_to_ms <= request.date_from_ms
  ) {
    throw invalid_parameter('date_to', 'must be after date_from');
  }
  return request;
}

/**
 * The paginated response headers: X-Total-Count, X-Limit and, unless this is the last page, a
 * Link to the next one that repeats every filter of the request (transport_and_format
 * "Paginated Response").
 */
export function page_headers(
  url_base: string,
  request: PageRequest,
  original: URLSearchParams,
  returned: number,
  total: number,
  /** Where the next page starts, for senders that read pages by key (see cdrs.ts). */
  cursor?: string,
): Record<string, string> {
  const headers: Record<string, string> = {
    'x-total-count': String(total),
    'x-limit': String(request.limit),
  };
  const next_offset = request.offset + returned;
  if (returned > 0 && next_offset < total) {
    const next = new URLSearchParams();
    next.set('offset', String(next_offset));
    next.set('limit', String(request.limit));
    for (const name of ['date_from', 'date_to']) {
      const value = original.get(name);
      if (value !== null) next.set(name, value);
    }
    if (cursor !== undefined) next.set('cursor', cursor);
    headers.link = `<${url_base}?${next.toString()}>; rel="next"`;
  }
  return headers;
}
