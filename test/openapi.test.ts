import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Route } from '../api/http.js';
import { builtin_docs, doc_of, example_path } from '../api/openapi.js';
import { start_test_stack, test_operator_token } from './helpers/stack.js';

/**
 * /v1/openapi.json against the router's real route list: every route is in the document, every
 * operation in the document is a route, and every documented operation is answered by a handler
 * (not by the router's 404 or 405).
 */

type OpenApi = {
  openapi: string;
  paths: Record<string, Record<string, { responses?: unknown; security?: unknown }>>;
};

const methods = ['get', 'put', 'post', 'patch', 'delete'];

/** What one side has that the other lacks, as "METHOD /path" lines. */
function mismatches(routes: readonly Route[], document: OpenApi): string[] {
  const problems: string[] = [];
  for (const route of routes) {
    const doc = doc_of(route);
    if (doc === undefined) {
      problems.push(`route ${route.method} ${route.path.source} has no description`);
      continue;
    }
    if (!route.path.test(example_path(doc.path)))
      problems.push(`route ${route.method} ${route.path.source} is described as ${doc.path}`);
    if (document.paths[doc.path]?.[route.method.toLowerCase()] === undefined) {
      problems.push(`route ${route.method} ${doc.path} is missing from the document`);
    }
  }
  for (const [path, operations] of Object.entries(document.paths)) {
    for (const method of Object.keys(operations)) {
      if (!methods.includes(method)) continue;
      const builtin = builtin_docs.some((b) => b.doc.path === path && b.method.toLowerCase() === method);
      const routed = routes.some((r) => r.method.toLowerCase() === method && r.path.test(example_path(path)));
      if (!builtin && !routed) problems.push(`document ${method.toUpperCase()} ${path} has no route`);
    }
  }
  return problems;
}

describe('OpenAPI document', () => {
  let stack: Awaited<ReturnType<typeof start_test_stack>>;
  let document: OpenApi;

  beforeAll(async () => {
    stack = await start_test_stack({ OCPI_CDR_PUSH_INTERVAL_MS: '0' });
    const res = await fetch(`${stack.api_url}/v1/openapi.json`, {
      headers: { authorization: `Bearer ${test_operator_token}` },
    });
    expect(res.status).toBe(200);
    document = (await res.json()) as OpenApi;
  });

  afterAll(async () => {
    await stack?.dispose();
  });

  it('is served only with the operator token', async () => {
    const res = await fetch(`${stack.api_url}/v1/openapi.json`);
    expect(res.status).toBe(401);
  });

  it('describes every route of the router and nothing else', () => {
    expect(document.openapi).toBe('3.1.0');
    expect(stack.api_routes.length).toBeGreaterThan(10);
    expect(mismatches(stack.api_routes, document)).toEqual([]);
    for (const operations of Object.values(document.paths)) {
      for (const operation of Object.values(operations)) expect(operation.responses).toBeDefined();
    }
    expect(document.paths['/ocpi/2.2.1/cdrs']?.get?.security).toEqual([{ ocpi_token: [] }]);
    expect(document.paths['/v1/partners']?.post?.security).toEqual([{ operator_bearer: [] }]);
  });

  it('reports a route without a description and a described operation without a route', () => {
    const undocumented: Route = {
      method: 'GET',
      path: /^\/v1\/secret$/,
      auth: 'operator',
      handle: async () => {},
    };
    expect(mismatches([...stack.api_routes, undocumented], document)).toEqual([
      'route GET ^\\/v1\\/secret$ has no description',
    ]);
    const extra: OpenApi = {
      ...document,
      paths: { ...document.paths, '/v1/ghost': { get: { responses: {} } } },
    };
    expect(mismatches(stack.api_routes, extra)).toEqual(['document GET /v1/ghost has no route']);
  });

  it('reaches a handler for every documented operation', async () => {
    const reached: string[] = [];
    for (const [path, operations] of Object.entries(document.paths)) {
      for (const method of Object.keys(operations)) {
        const url = `${stack.api_url}${example_path(path)}`;
        const operator = path.startsWith('/v1/');
        // Bodies that no handler accepts: nothing is written, but the route is reached.
        const res = await fetch(url, {
          method: method.toUpperCase(),
          headers: {
            ...(operator
              ? { authorization: `Bearer ${test_operator_token}` }
              : { authorization: 'Token bm9uZQ==' }),
            ...(method === 'get' || method === 'delete' ? {} : { 'content-type': 'application/json' }),
          },
          ...(method === 'get' || method === 'delete' ? {} : { body: '[]' }),
        });
        const text = await res.text();
        const router_miss =
          res.status === 405 || (res.status === 404 && /"(error|status_message)":"not found"/.test(text));
        expect(router_miss, `${method.toUpperCase()} ${path}: ${res.status} ${text.slice(0, 200)}`).toBe(
          false,
        );
        reached.push(`${method} ${path}`);
      }
    }
    expect(reached).toContain('get /ocpi/2.2.1/tokens/{country_code}/{party_id}/{token_uid}');
  });
});
