import type { KV } from '@nats-io/kv';
import type { Store } from '../../analytics/store.js';
import type { TokenStore } from '../../core/tokens.js';
import type { TariffStore } from '../../rating/tariff-store.js';
import type { Route } from '../http.js';
import type { CdrMapping } from './cdr-object.js';
import { cdrs_routes } from './cdrs.js';
import type { OcpiContext } from './context.js';
import { credentials_routes } from './credentials.js';
import { partner_routes } from './partner-routes.js';
import { sessions_routes } from './sessions.js';
import { tariffs_routes } from './tariffs.js';
import { tokens_routes } from './tokens.js';
import { versions_routes } from './versions.js';

export { ocpi_authenticator } from './auth.js';
export { type CdrMapping, cdr_of_row } from './cdr-object.js';
export { CdrPusher } from './cdr-push.js';
export type { OcpiContext } from './context.js';
export { ocpi_error_body } from './envelope.js';
export { PartnerRegistry } from './partners.js';
export { open_sessions_bucket } from './sessions.js';

export interface OcpiDeps {
  store: Store;
  tariffs: TariffStore;
  tokens: TokenStore;
  open_sessions: KV;
  mapping: CdrMapping;
  page_limit_max: number;
}

/** Every OCPI 2.2.1 route (auth `ocpi`) and the operator's partner routes (auth `operator`). */
export function ocpi_routes(context: OcpiContext, deps: OcpiDeps): Route[] {
  return [
    ...partner_routes(context),
    ...versions_routes(context),
    ...credentials_routes(context),
    ...cdrs_routes(context, deps),
    ...tariffs_routes(context, deps),
    ...sessions_routes(context, deps),
    ...tokens_routes(deps),
  ];
}
