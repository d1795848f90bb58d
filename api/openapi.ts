import { type Method, type Route, type RouteDoc, send_json } from './http.js';

/**
 * Descriptions of routes whose modules do not carry their own `doc` (the operator routes written
 * before RouteDoc existed), keyed by method and OpenAPI path. A route found neither here nor in
 * its own `doc` is missing from the document, which test/openapi.test.ts reports.
 */
const documented_elsewhere: Record<string, RouteDoc> = {
  'GET /v1/sessions': {
    path: '/v1/sessions',
    summary:
      'Rated sessions, oldest stop first, with totals as exact decimal strings and the price breakdown',
    tags: ['sessions'],
    parameters: [
      { name: 'charge_point_id', in: 'query', schema: { type: 'string', maxLength: 48 } },
      { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
      { name: 'offset', in: 'query', schema: { type: 'integer', minimum: 0, default: 0 } },
    ],
    responses: {
      '200': { description: '{sessions, limit, offset}' },
      '400': { description: 'invalid parameter' },
    },
  },
  'PUT /v1/charge-points/{id}': {
    path: '/v1/charge-points/{id}',
    summary:
      'Register a charge point or change its password (the OCPP AuthorizationKey, kept as a salted scrypt hash)',
    tags: ['charge-points'],
    parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string', maxLength: 48 } }],
    request_body: {
      type: 'object',
      required: ['password'],
      properties: { password: { type: 'string', minLength: 16, maxLength: 40 } },
    },
    responses: {
      '200': { description: '{charge_point_id, password_set}' },
      '400': { description: 'invalid request' },
    },
  },
  'GET /v1/tariffs/{id}': {
    path: '/v1/tariffs/{id}',
    summary: 'The current version of a tariff',
    tags: ['tariffs'],
    parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
    responses: { '200': { description: 'the tariff version' }, '404': { description: 'unknown tariff' } },
  },
  'PUT /v1/tariffs/{id}': {
    path: '/v1/tariffs/{id}',
    summary: 'Store a new version of an OCPI 2.2.1 Tariff',
    tags: ['tariffs'],
    parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
    request_body: {
      type: 'object',
      description: 'OCPI 2.2.1 Tariff object, or an OCPI 2.1.1 one (normalised to 2.2.1 with our party)',
    },
    responses: {
      '200': { description: 'the stored version with its number' },
      '400': { description: 'invalid tariff' },
    },
  },
};

function query(
  name: string,
  schema: Record<string, unknown>,
  required = false,
  description?: string,
): unknown {
  return {
    name,
    in: 'query',
    ...(required ? { required } : {}),
    schema,
    ...(description ? { description } : {}),
  };
}

const range_parameters = [
  query('from', { type: 'string', format: 'date-time' }, true, 'start of the range (inclusive)'),
  query('to', { type: 'string', format: 'date-time' }, true, 'end of the range (exclusive)'),
  query('station', { type: 'string', maxLength: 255 }),
  query('evse', { type: 'string', maxLength: 255 }),
];
const session_parameters = [
  ...range_parameters,
  query('tariff', { type: 'string', maxLength: 255 }),
  query('currency', { type: 'string', maxLength: 255 }),
  query('party', { type: 'string', maxLength: 255 }, false, 'token issuer as CC*PID'),
];
const time_zone_parameter = query('time_zone', { type: 'string' }, false, 'IANA zone of the local hours');
const analytics_responses = {
  '200': { description: 'the answer over the range; money as exact decimal text' },
  '400': { description: 'invalid or unknown parameter, naming the field' },
};

function analytics_doc(name: string, summary: string, parameters: unknown[]): RouteDoc {
  return {
    path: `/v1/analytics/${name}`,
    summary,
    tags: ['analytics'],
    parameters,
    responses: analytics_responses,
  };
}

/** The analytics routes (api/analytics-routes.ts), which carry no doc of their own. */
const analytics_docs: Record<string, RouteDoc> = {
  'GET /v1/analytics/utilization': analytics_doc(
    'utilization',
    'Occupied and charging time of connectors over the range',
    range_parameters,
  ),
  'GET /v1/analytics/underutilized': analytics_doc(
    'underutilized',
    'Stations used below a threshold over the range',
    [
      ...range_parameters,
      query('threshold_percent', { type: 'number', minimum: 0, maximum: 100 }),
      query('limit', { type: 'integer', minimum: 1, maximum: 10_000 }),
    ],
  ),
  'GET /v1/analytics/peak-hours': analytics_doc(
    'peak-hours',
    'Sessions and energy by weekday and local hour',
    [...session_parameters, time_zone_parameter],
  ),
  'GET /v1/analytics/revenue': analytics_doc('revenue', 'Revenue by currency and period', [
    ...session_parameters,
    time_zone_parameter,
  ]),
  'GET /v1/analytics/payment-methods': analytics_doc(
    'payment-methods',
    'Sessions and revenue by payment method',
    session_parameters,
  ),
  'GET /v1/analytics/session-distributions': analytics_doc(
    'session-distributions',
    'Distributions of session energy, duration and idle time',
    session_parameters,
  ),
};

/** Routes the server answers itself, before the route list (api/server.ts). */
export const builtin_docs: { method: Method; auth: 'none'; doc: RouteDoc }[] = [
  {
    method: 'GET',
    auth: 'none',
    doc: {
      path: '/health',
      summary: 'Liveness probe',
      tags: ['ops'],
      responses: { '200': { description: '{status: ok}' } },
    },
  },
  {
    method: 'GET',
    auth: 'none',
    doc: {
      path: '/metrics',
      summary: 'Prometheus metrics',
      tags: ['ops'],
      responses: { '200': { description: 'Prometheus text format' } },
    },
  },
];

/** An example URL path for an OpenAPI path template: each `{name}` becomes `x-name`. */
export function example_path(template: string): string {
  return template.replace(/\{([^}]+)\}/g, (_, name: string) => `x-${name.replace(/_/g, '-')}`);
}

/** The RouteDoc of a route: its own, or the one kept here whose example path the route matches. */
export function doc_of(route: Route): RouteDoc | undefined {
  if (route.doc !== undefined) return route.doc;
  for (const [key, doc] of Object.entries({ ...documented_elsewhere, ...analytics_docs })) {
    const [method, path] = key.split(' ') as [string, string];
    if (method === route.method && route.path.test(example_path(path))) return doc;
  }
  return undefined;
}

const security_by_auth = {
  operator: [{ operator_bearer: [] }],
  ocpi: [{ ocpi_token: [] }],
  self: [],
  none: [],
} as const;

/** The OpenAPI 3.1 document of the given routes (and the built-in probes). */
export function openapi_document(routes: readonly Route[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const entries = [
    ...builtin_docs.map((b) => ({ method: b.method, auth: b.auth, doc: b.doc as RouteDoc | undefined })),
    ...routes.map((r) => ({ method: r.method, auth: r.auth, doc: doc_of(r) })),
  ];
  for (const { method, auth, doc } of entries) {
    if (doc === undefined) continue;
    const operation: Record<string, unknown> = {
      summary: doc.summary,
      ...(doc.tags === undefined ? {} : { tags: doc.tags }),
      security: security_by_auth[auth],
      responses: doc.responses,
    };
    const parameters = [...(doc.parameters ?? [])] as { name: string; in: string }[];
    for (const match of doc.path.matchAll(/\{([^}]+)\}/g)) {
      if (!parameters.some((p) => p.in === 'path' && p.name === match[1])) {
        parameters.push({ name: match[1]!, in: 'path', required: true, schema: { type: 'string' } } as never);
      }
    }
    if (parameters.length > 0) operation.parameters = parameters;
    if (doc.request_body !== undefined) {
      operation.requestBody = {
        required: true,
        content: { 'application/json': { schema: doc.request_body } },
      };
    }
    paths[doc.path] ??= {};
    paths[doc.path]![method.toLowerCase()] = operation;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'evrate API',
      version: '1',
      description:
        'Operator API (/v1, Authorization: Bearer <OPERATOR_TOKEN>) and OCPI 2.2.1 for roaming partners (/ocpi, Authorization: Token <base64 credentials token>; every answer in the OCPI envelope).',
    },
    components: {
      securitySchemes: {
        operator_bearer: { type: 'http', scheme: 'bearer' },
        ocpi_token: {
          type: 'apiKey',
          in: 'header',
          name: 'Authorization',
          description: 'Token <base64(credentials token)>',
        },
      },
    },
    paths,
  };
}

/**
 * GET /v1/openapi.json, with the operator token: the document lists every operator route, which
 * is the operator's business; partners have the OCPI specification and our versions endpoint.
 */
export function openapi_route(routes: () => readonly Route[]): Route {
  return {
    method: 'GET',
    path: /^\/v1\/openapi\.json$/,
    auth: 'operator',
    doc: {
      path: '/v1/openapi.json',
      summary: 'This OpenAPI 3.1 document',
      tags: ['ops'],
      responses: { '200': { description: 'OpenAPI 3.1 document' } },
    },
    async handle({ res }) {
      send_json(res, 200, openapi_document(routes()));
    },
  };
}
