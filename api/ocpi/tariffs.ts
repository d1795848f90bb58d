import { ident, sql } from '../../analytics/sql.js';
import type { Store } from '../../analytics/store.js';
import type { TariffStore } from '../../rating/tariff-store.js';
import type { Route } from '../http.js';
import { ocpi_caller, require_registered } from './auth.js';
import { paginated_parameters, paginated_responses } from './cdrs.js';
import { module_url, type OcpiContext } from './context.js';
import { send_ocpi } from './envelope.js';
import { page_headers, parse_page_request } from './pagination.js';

export interface TariffsDeps {
  store: Store;
  tariffs: TariffStore;
  page_limit_max: number;
}

/** Bound on the tariffs listed (a network has tens to thousands of them). */
export const tariffs_listed_max = 10_000;

/**
 * Tariffs module, Sender interface (mod_tariffs): the current version of every tariff. The ids
 * come from the tariff audit table in ClickHouse (every stored version is written there); each
 * tariff itself is read from the tariff store, which is the truth.
 */
export function tariffs_routes(context: OcpiContext, deps: TariffsDeps): Route[] {
  return [
    {
      method: 'GET',
      path: /^\/ocpi\/2\.2\.1\/tariffs\/?$/,
      auth: 'ocpi',
      doc: {
        path: '/ocpi/2.2.1/tariffs',
        summary: 'Current tariffs, ordered by last_updated then id (OCPI mod_tariffs Sender GET)',
        tags: ['ocpi'],
        parameters: paginated_parameters,
        responses: paginated_responses,
      },
      async handle({ res, url, caller }) {
        require_registered(ocpi_caller(caller));
        const page = parse_page_request(url.searchParams, deps.page_limit_max);
        const ids = await deps.store.query<{ tariff_id: string }>(
          `SELECT DISTINCT tariff_id FROM ${sql`${ident(deps.store.database)}.tariffs`} ORDER BY tariff_id LIMIT ${sql`${tariffs_listed_max}`}`,
        );
        const current = [];
        for (const { tariff_id } of ids) {
          const version = await deps.tariffs.current(tariff_id);
          if (version === undefined) continue;
          const updated_ms = Date.parse(version.tariff.last_updated);
          if (page.date_from_ms !== undefined && updated_ms < page.date_from_ms) continue;
          if (page.date_to_ms !== undefined && updated_ms >= page.date_to_ms) continue;
          current.push({ tariff: version.tariff, updated_ms });
        }
        current.sort(
          (a, b) =>
            a.updated_ms - b.updated_ms ||
            (a.tariff.id < b.tariff.id ? -1 : a.tariff.id > b.tariff.id ? 1 : 0),
        );
        const slice = current.slice(page.offset, page.offset + page.limit).map((t) => t.tariff);
        send_ocpi(res, slice, {
          headers: page_headers(
            module_url(context, 'tariffs'),
            page,
            url.searchParams,
            slice.length,
            current.length,
          ),
        });
      },
    },
  ];
}
