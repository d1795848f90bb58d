import type { KV } from '@nats-io/kv';
import { type Nats, open_kv } from '../../core/nats.js';
import type { TariffStore } from '../../rating/tariff-store.js';
import type { Route } from '../http.js';
import { ocpi_caller, require_registered } from './auth.js';
import {
  auth_method_of,
  type CdrMapping,
  cdr_token_of,
  decimal_number,
  type OcpiAuthMethod,
  type OcpiCdrToken,
  type OcpiPrice,
  ocpi_id,
} from './cdr-object.js';
import { paginated_parameters, paginated_responses } from './cdrs.js';
import { module_url, type OcpiContext } from './context.js';
import { ocpi_timestamp, send_ocpi } from './envelope.js';
import { page_headers, parse_page_request } from './pagination.js';
import { partner_scope, party_key } from './partners.js';

/** The part of the rating service's open-session record (rating/service.ts StoredSession) read here. */
export interface OpenSessionRecord {
  session_id: string;
  charge_point_id: string;
  connector_id: number;
  id_tag: string;
  started_at_ms: number;
  tariff_id: string;
  tariff_version: number;
  /** token_type, contract_id and auth_method as in RatedSessionRow, when the rating keeps them. */
  meta: {
    party: string;
    payment_method: string;
    evse_id: number;
    token_type?: string;
    contract_id?: string;
    auth_method?: string;
  };
  closed: 'open' | 'stopped' | 'provisional';
  energy_wh: number;
  running_cost: { excl_vat: string; incl_vat: string } | null;
  last_activity_ms: number;
}

/** OCPI 2.2.1 mod_sessions Session (the fields we fill). */
export interface OcpiSession {
  country_code: string;
  party_id: string;
  id: string;
  start_date_time: string;
  kwh: number;
  cdr_token: OcpiCdrToken;
  auth_method: OcpiAuthMethod;
  location_id: string;
  evse_uid: string;
  connector_id: string;
  currency: string;
  total_cost?: OcpiPrice;
  status: 'ACTIVE';
  last_updated: string;
}

/** Bound on the open sessions read per request (KV holds one record per open session). */
export const open_sessions_scanned_max = 200_000;

export async function open_sessions_bucket(nats: Nats): Promise<KV> {
  return await open_kv(nats, 'evrate_sessions_open');
}

export function session_of_record(
  record: OpenSessionRecord,
  currency: string,
  mapping: CdrMapping,
): OcpiSession {
  // The CDR's token, built the same way: a CDR and the Session before it name one token.
  const token = { ...record.meta, id_tag: record.id_tag };
  const connector = record.meta.evse_id > 0 ? record.meta.evse_id : record.connector_id;
  return {
    country_code: mapping.cpo.country_code,
    party_id: mapping.cpo.party_id,
    id: ocpi_id(record.session_id),
    start_date_time: ocpi_timestamp(record.started_at_ms),
    kwh: record.energy_wh / 1000,
    cdr_token: cdr_token_of(token, mapping.cpo),
    auth_method: auth_method_of(token),
    location_id: ocpi_id(record.charge_point_id),
    evse_uid: ocpi_id(`${record.charge_point_id}-${connector}`),
    connector_id: String(record.connector_id),
    currency,
    ...(record.running_cost === null
      ? {}
      : {
          total_cost: {
            excl_vat: decimal_number(record.running_cost.excl_vat, 'total_cost.excl_vat'),
            incl_vat: decimal_number(record.running_cost.incl_vat, 'total_cost.incl_vat'),
          },
        }),
    status: 'ACTIVE',
    last_updated: ocpi_timestamp(record.last_activity_ms),
  };
}

/**
 * Sessions module, Sender interface (mod_sessions): the open sessions of the partner's tokens with
 * their running cost, from the rating service's state in NATS KV (`evrate_sessions_open`).
 */
export function sessions_routes(
  context: OcpiContext,
  deps: { open_sessions: KV; tariffs: TariffStore; mapping: CdrMapping; page_limit_max: number },
): Route[] {
  return [
    {
      method: 'GET',
      path: /^\/ocpi\/2\.2\.1\/sessions\/?$/,
      auth: 'ocpi',
      doc: {
        path: '/ocpi/2.2.1/sessions',
        summary: 'Open sessions of your tokens with their running cost (OCPI mod_sessions Sender GET)',
        tags: ['ocpi'],
        parameters: paginated_parameters,
        responses: paginated_responses,
      },
      async handle({ res, url, caller }) {
        const partner = require_registered(ocpi_caller(caller));
        const page = parse_page_request(url.searchParams, deps.page_limit_max);
        const scope = new Set(partner_scope(partner).map(party_key));
        const matching: OcpiSession[] = [];
        let scanned = 0;
        if (scope.size > 0) {
          for await (const key of await deps.open_sessions.keys('s.>')) {
            if (++scanned > open_sessions_scanned_max) break;
            const entry = await deps.open_sessions.get(key);
            if (entry === null || entry.operation !== 'PUT') continue;
            const record = JSON.parse(entry.string()) as OpenSessionRecord;
            if (record.closed !== 'open' || !scope.has(record.meta.party.toUpperCase())) continue;
            if (page.date_from_ms !== undefined && record.last_activity_ms < page.date_from_ms) continue;
            if (page.date_to_ms !== undefined && record.last_activity_ms >= page.date_to_ms) continue;
            const tariff = await deps.tariffs.version(record.tariff_id, record.tariff_version);
            if (tariff === undefined) continue; // no currency without its tariff: not a valid Session
            matching.push(session_of_record(record, tariff.tariff.currency, deps.mapping));
          }
        }
        matching.sort((a, b) =>
          a.last_updated < b.last_updated ? -1 : a.last_updated > b.last_updated ? 1 : a.id < b.id ? -1 : 1,
        );
        const slice = matching.slice(page.offset, page.offset + page.limit);
        send_ocpi(res, slice, {
          headers: page_headers(
            module_url(context, 'sessions'),
            page,
            url.searchParams,
            slice.length,
            matching.length,
          ),
        });
      },
    },
  ];
}
