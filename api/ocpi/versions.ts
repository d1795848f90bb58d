import type { Route } from '../http.js';
import { ocpi_caller } from './auth.js';
import { module_url, type OcpiContext, ocpi_version } from './context.js';
import { send_ocpi } from './envelope.js';
import type { OcpiEndpoint } from './partners.js';

/** The modules we serve, with our role in each (version_information_endpoint Endpoint). */
export function our_endpoints(context: OcpiContext): OcpiEndpoint[] {
  return [
    { identifier: 'credentials', role: 'SENDER', url: module_url(context, 'credentials') },
    { identifier: 'cdrs', role: 'SENDER', url: module_url(context, 'cdrs') },
    { identifier: 'tariffs', role: 'SENDER', url: module_url(context, 'tariffs') },
    { identifier: 'sessions', role: 'SENDER', url: module_url(context, 'sessions') },
    { identifier: 'tokens', role: 'RECEIVER', url: module_url(context, 'tokens') },
  ];
}

const envelope_doc = { description: 'OCPI response envelope; errors carry an OCPI status_code (2xxx, 3xxx)' };

/** Versions module: token A or C (transport_and_format allows token A here). */
export function versions_routes(context: OcpiContext): Route[] {
  return [
    {
      method: 'GET',
      path: /^\/ocpi\/versions\/?$/,
      auth: 'ocpi',
      doc: {
        path: '/ocpi/versions',
        summary: 'OCPI versions we support, with the URL of each version details endpoint',
        tags: ['ocpi'],
        responses: { '200': envelope_doc, '401': envelope_doc },
      },
      async handle({ res, caller }) {
        ocpi_caller(caller);
        send_ocpi(res, [{ version: ocpi_version, url: `${context.base_url()}/ocpi/${ocpi_version}` }]);
      },
    },
    {
      method: 'GET',
      path: /^\/ocpi\/2\.2\.1\/?$/,
      auth: 'ocpi',
      doc: {
        path: '/ocpi/2.2.1',
        summary: 'OCPI 2.2.1 version details: our endpoints and roles',
        tags: ['ocpi'],
        responses: { '200': envelope_doc, '401': envelope_doc },
      },
      async handle({ res, caller }) {
        ocpi_caller(caller);
        send_ocpi(res, { version: ocpi_version, endpoints: our_endpoints(context) });
      },
    },
  ];
}
