import { createHash, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { Logger } from '../core/log.js';
import { metrics_registry } from '../core/metrics.js';
import { TokenBucket } from '../core/rate-limit.js';
import { decode_path_segment, HttpError, parse_json_body, type Route, read_body, send_json } from './http.js';

export interface ApiOptions {
  host: string;
  port: number;
  operator_token: string;
  /** Earlier operator tokens still accepted during a rotation (OPERATOR_TOKEN's comma list). */
  operator_tokens_previous?: readonly string[];
  /** When set, GET /metrics needs `Authorization: Bearer <metrics_token>` (METRICS_TOKEN). */
  metrics_token?: string | undefined;
  body_bytes_max: number;
  /** Operator requests per second (bursts of twice that); above it: 429 with Retry-After. */
  operator_requests_per_s_max: number;
  /** Authenticates the routes with auth `ocpi`; its result reaches the handler as `caller`. */
  authenticate_ocpi?: (req: http.IncomingMessage) => Promise<unknown>;
  /**
   * Error bodies for the paths under a prefix (OCPI answers every error in its own envelope);
   * other paths get `{"error": ..., "field": ...}`.
   */
  error_bodies?: readonly { path_prefix: string; body(error: HttpError): unknown }[];
  /** Request headers answered back unchanged under a path prefix (OCPI X-Request-ID and X-Correlation-ID). */
  echo_headers?: readonly { path_prefix: string; names: readonly string[] }[];
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/**
 * The HTTP API (node:http: the API is not the hot path, and node:http gives streaming bodies,
 * back-pressure and mature HTTP/1.1 handling with no native code). Routes come from the modules
 * that own them (operator, analytics, OCPI, commands); this class matches, authenticates the
 * operator routes and turns errors into JSON answers.
 */
export class ApiServer {
  private readonly server: http.Server;
  /** The current operator token's digest first, then those of the earlier ones still accepted. */
  private readonly token_digests: readonly Buffer[];
  private readonly metrics_token_digest: Buffer | undefined;
  private readonly operator_rate: TokenBucket;
  port = 0;

  constructor(
    private readonly options: ApiOptions,
    private readonly routes: readonly Route[],
    private readonly log: Logger,
  ) {
    this.token_digests = [options.operator_token, ...(options.operator_tokens_previous ?? [])].map(digest);
    this.metrics_token_digest =
      options.metrics_token === undefined ? undefined : digest(options.metrics_token);
    this.operator_rate = new TokenBucket(
      options.operator_requests_per_s_max,
      options.operator_requests_per_s_max * 2,
      Date.now(),
    );
    this.server = http.createServer((req, res) => {
      this.route(req, res).catch((error: unknown) => {
        if (error instanceof HttpError) {
          send_json(res, error.status, this.error_body(req, error), error.headers);
          return;
        }
        this.log.error({ err: error, url: req.url }, 'api request failed');
        if (!res.headersSent) send_json(res, 500, this.error_body(req, new HttpError(500, 'internal error')));
        else res.destroy();
      });
    });
    this.server.requestTimeout = 30_000;
    this.server.headersTimeout = 10_000;
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', (error) =>
        reject(
          new Error(`API_PORT: cannot listen on ${this.options.host}:${this.options.port}: ${error.message}`),
        ),
      );
      this.server.listen(this.options.port, this.options.host, () => resolve());
    });
    const address = this.server.address();
    this.port = typeof address === 'object' && address !== null ? address.port : this.options.port;
    return this.port;
  }

  /** Every route, in matching order: the OpenAPI document and its test walk this list. */
  get route_list(): readonly Route[] {
    return this.routes;
  }

  private error_body(req: http.IncomingMessage, error: HttpError): unknown {
    const pathname = (req.url ?? '/').split('?')[0]!;
    const custom = this.options.error_bodies?.find((e) => pathname.startsWith(e.path_prefix));
    if (custom !== undefined) return custom.body(error);
    return { error: error.message, ...(error.field ? { field: error.field } : {}) };
  }

  private authorize(req: http.IncomingMessage): void {
    const header = req.headers.authorization ?? '';
    const match = /^Bearer (\S+)$/.exec(header);
    // Every accepted token is compared, so the time taken does not tell which one matched.
    const given = match === null ? undefined : digest(match[1]!);
    let accepted = false;
    for (const token_digest of this.token_digests) {
      if (given !== undefined && timingSafeEqual(given, token_digest)) accepted = true;
    }
    if (!accepted) {
      throw new HttpError(401, 'missing or wrong operator token (Authorization: Bearer <token>)');
    }
  }

  /**
   * The metrics token, compared as SHA-256 digests with timingSafeEqual: equal lengths whatever
   * the caller sends, so the time taken says nothing about the token.
   */
  private authorize_metrics(req: http.IncomingMessage): void {
    if (this.metrics_token_digest === undefined) return;
    const match = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
    if (match === null || !timingSafeEqual(digest(match[1]!), this.metrics_token_digest)) {
      throw new HttpError(
        401,
        'missing or wrong metrics token (Authorization: Bearer <METRICS_TOKEN>)',
        undefined,
        { 'www-authenticate': 'Bearer realm="metrics"' },
      );
    }
  }

  private async route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = req.method ?? 'GET';
    for (const echo of this.options.echo_headers ?? []) {
      if (!url.pathname.startsWith(echo.path_prefix)) continue;
      for (const name of echo.names) {
        const value = req.headers[name];
        if (typeof value === 'string' && /^[\x21-\x7e]{1,255}$/.test(value)) res.setHeader(name, value);
      }
    }
    if (url.pathname === '/health' && method === 'GET') {
      send_json(res, 200, { status: 'ok' });
      return;
    }
    if (url.pathname === '/metrics' && method === 'GET') {
      this.authorize_metrics(req);
      const text = await metrics_registry.metrics();
      res.writeHead(200, { 'content-type': metrics_registry.contentType });
      res.end(text);
      return;
    }
    const allowed: string[] = [];
    for (const route of this.routes) {
      const match = route.path.exec(url.pathname);
      if (match === null) continue;
      if (route.method !== method) {
        allowed.push(route.method);
        continue;
      }
      if (route.auth === 'operator') {
        this.authorize(req);
        const wait_s = this.operator_rate.take(Date.now());
        if (wait_s > 0) {
          throw new HttpError(429, 'operator request rate limit exceeded; retry later', undefined, {
            'retry-after': String(wait_s),
          });
        }
      }
      let caller: unknown;
      if (route.auth === 'ocpi') {
        // A route that asks for OCPI authentication is never reached without it.
        if (this.options.authenticate_ocpi === undefined) throw new HttpError(404, 'not found');
        caller = await this.options.authenticate_ocpi(req);
      }
      const params = match
        .slice(1)
        .map((segment, i) => decode_path_segment(segment ?? '', route.param_names?.[i] ?? `param ${i + 1}`));
      const body_bytes_max = this.options.body_bytes_max;
      await route.handle({
        req,
        res,
        url,
        params,
        json_body: async () => parse_json_body(await read_body(req, body_bytes_max)),
        caller,
      });
      return;
    }
    if (allowed.length > 0) {
      throw new HttpError(405, `use ${allowed.join(' or ')}`, undefined, { allow: allowed.join(', ') });
    }
    throw new HttpError(404, 'not found');
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    await closed;
  }
}
