import type { Store } from '../../analytics/store.js';
import type { Route } from '../http.js';
import { ocpi_caller, require_registered } from './auth.js';
import { type CdrMapping, cdr_of_row } from './cdr-object.js';
import { query_cdr_page } from './cdr-query.js';
import { module_url, type OcpiContext } from './context.js';
import { send_ocpi } from './envelope.js';
import { page_headers, parse_page_request } from './pagination.js';
import { partner_scope } from './partners.js';

export interface CdrsDeps {
  store: Store;
  mapping: CdrMapping;
  page_limit_max: number;
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
 * CDRs module, Sender interface (mod_cdrs "Sender Interface"): GET a page of the CDRs of the
 * partner's own parties' tokens. A partner without a role the operator allowed sees an empty list.
 */
export function cdrs_routes(context: OcpiContext, deps: CdrsDeps): Route[] {
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
        const { rows, total } =
          parties.length === 0
            ? { rows: [], total: 0 }
            : await query_cdr_page(
                deps.store,
                {
                  parties,
                  ...(page.date_from_ms === undefined ? {} : { updated_from_ms: page.date_from_ms }),
                  ...(page.date_to_ms === undefined ? {} : { updated_to_ms: page.date_to_ms }),
                },
                page,
                true,
              );
        const cdrs = rows.map((row) => cdr_of_row(row, deps.mapping));
        send_ocpi(res, cdrs, {
          headers: page_headers(module_url(context, 'cdrs'), page, url.searchParams, cdrs.length, total),
        });
      },
    },
  ];
}
