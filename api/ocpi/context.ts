import type { OcpiClientOptions } from './client.js';
import type { CredentialsRole, PartnerRegistry } from './partners.js';

export const ocpi_version = '2.2.1';

/** What every OCPI route module needs: the registry, who we are and where we are reachable. */
export interface OcpiContext {
  partners: PartnerRegistry;
  /** Our public base URL, e.g. https://cpo.example.com (no trailing slash). */
  base_url(): string;
  /** Our roles as sent in the credentials object (CPO with our country code and party id). */
  our_roles: CredentialsRole[];
  client: OcpiClientOptions;
}

export function versions_url(context: OcpiContext): string {
  return `${context.base_url()}/ocpi/versions`;
}

export function module_url(context: OcpiContext, module: string): string {
  return `${context.base_url()}/ocpi/${ocpi_version}/${module}`;
}
