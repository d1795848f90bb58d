import type { Store } from '../../analytics/store.js';
import type { Route } from '../http.js';
import { ocpi_caller, require_registered } from './auth.js';
import { type CdrMapping, cdr_of_row } from './cdr-object.js';
import { query_cdr_page } from './cdr-query.js';
import { module_url, type OcpiContext } from './context.js';
import { invalid_parameter, send_ocpi } from './envelope.js';
import { page_headers, parse_page_request } from './pagination.js';
import { partner_scope } from './partners.js';

export interface CdrsDeps {
  store: Store;
  mapping: CdrMapping;
  page_limit_max: number;
  /** How long an X-Total-Count is reused (default 2 s; 0: counted on every page). */
  count_ttl_ms?: number;
}

export const paginated_parameters = [
  {
    name: 'date_from',
    in: 'query',
    schema: { type: 'string', format: 'date-time' },
    description: 'last_updated at or after (inclusive)',
  },
  {
    name: 'date_to',
    in: 'query',
    schema: { type: 'string', format: 'date-time' },
    description: 'last_updated before (exclusive)',
  },
  { name: 'offset', in: 'query', schema: { type: 'integer', minimum: 0 } },
  {
    name: 'limit',
    in: 'query',
    schema: { type: 'integer', minimum: 1 },
    description: 'lowered to the server maximum (X-Limit)',
  },
];

export const paginated_responses = {
  '200': {
    description: 'OCPI envelope with a list; Link (rel="next"), X-Total-Count and X-Limit headers',
    headers: {
      Link: { schema: { type: 'string' } },
      'X-Total-Count': { schema: { type: 'integer' } },
      'X-Limit': { schema: { type: 'integer' } },
    },
  },
  '401': { description: 'OCPI envelope, status 2000: missing or unknown token, or token A' },
  '429': { description: 'OCPI envelope, status 2000: request rate limit; Retry-After' },
};

/**
 * Where the next page starts, carried in our own Link URLs next to offset: the last CDR's
 * last_updated (ms) and id. With it a page is read as "the next `limit` CDRs after this one",
 * which keeps deep pages as cheap as the first (the sort holds one page, not offset + limit
 * rows). Offset keeps its meaning for clients that build their own URLs.
 */
export function format_cursor(last_updated_ms: number, session_id: string): string {
  return `${last_updated_ms}.${Buffer.from(session_id, 'utf8').toString('base64url')}`;
}

export function parse_cursor(
  text: string | null,
): { last_updated_ms: number; session_id: string } | undefined {
  if (text === null) return undefined;
  const match = /^(\d{1,15})\.([A-Za-z0-9_-]{0,400})$/.exec(text);
  if (match === null) throw invalid_parameter('cursor', 'is not a cursor from a Link header');
  return {
    last_updated_ms: Number(match[1]),
    session_id: Buffer.from(match[2]!, 'base64url').toString('utf8'),
  };
}

/**
 * X-Total-Count of recent questions: a partner crawling a million CDRs asks the same count on
 * every page, and counting is a scan. A count is reused for `ttl_ms`, so X-Total-Count may lag
 * new CDRs by that much (transport_and_format lets a client see growth on a later page anyway).
 */
export class CountCache {
  private readonly entries = new Map<string, { total: number; at_ms: number }>();

  constructor(private readonly options: { ttl_ms: number; entries_max: number }) {}

  get(key: string, now_ms: number = Date.now()): number | undefined {
    const entry = this.entries.get(key);
    return entry !== undefined && now_ms - entry.at_ms < this.options.ttl_ms ? entry.total : undefined;
  }

  set(key: string, total: number, now_ms: number = Date.now()): void {
    if (this.entries.size >= this.options.entries_max) this.entries.clear();
    this.entries.set(key, { total, at_ms: now_ms });
  }
}

/**
 * CDRs module, Sender interface (mod_cdrs "Sender Interface"): GET a page of the CDRs of the
 * partner's own parties' tokens. A partner without a role the operator allowed sees an empty list.
 */
export function cdrs_routes(context: OcpiContext, deps: CdrsDeps): Route[] {
  const counts = new CountCache({ ttl_ms: deps.count_ttl_ms ?? 2000, entries_max: 10_000 });
  return [
    {
      method: 'GET',
      path: /^\/ocpi\/2\.2\.1\/cdrs\/?$/,
      auth: 'ocpi',
      doc: {
        path: '/ocpi/2.2.1/cdrs',
        summary: 'CDRs of your tokens, oldest last_updated first (OCPI mod_cdrs Sender GET)',
        tags: ['ocpi'],
        parameters: paginated_parameters,
        responses: paginated_responses,
      },
      async handle({ res, url, caller }) {
        const partner = require_registered(ocpi_caller(caller));
        const page = parse_page_request(url.searchParams, deps.page_limit_max);
        const parties = partner_scope(partner);
        const cursor = parse_cursor(url.searchParams.get('cursor'));
        const filter = {
          parties,
          ...(page.date_from_ms === undefined ? {} : { updated_from_ms: page.date_from_ms }),
          ...(page.date_to_ms === undefined ? {} : { updated_to_ms: page.date_to_ms }),
        };
        const count_key = JSON.stringify(filter);
        const known_total = counts.get(count_key);
        const query_started_ms = performance.now();
        const { rows, total } =
          parties.length === 0
            ? { rows: [], total: 0 }
            : await query_cdr_page(
                deps.store,
                { ...filter, ...(cursor === undefined ? {} : { after: cursor }) },
                { offset: cursor === undefined ? page.offset : 0, limit: page.limit },
                known_total ?? true,
              );
        if (known_total === undefined && parties.length > 0) counts.set(count_key, total);
        const mapping_started_ms = performance.now();
        const cdrs = rows.map((row) => cdr_of_row(row, deps.mapping));
        // Where a page's time goes (W3C Server-Timing): the store, and the mapping to OCPI CDRs.
        const timing = `db;dur=${(mapping_started_ms - query_started_ms).toFixed(1)}, map;dur=${(performance.now() - mapping_started_ms).toFixed(1)}`;
        const last = rows[rows.length - 1];
        send_ocpi(res, cdrs, {
          headers: {
            'server-timing': timing,
            ...page_headers(
              module_url(context, 'cdrs'),
              page,
              url.searchParams,
              cdrs.length,
              total,
              last === undefined
                ? undefined
                : format_cursor(Number(last.cdr_last_updated_ms), last.session_id),
            ),
          },
        });
      },
    },
  ];
}
