import { createHash, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import { insert_tariff_version, list_rated_sessions } from '../analytics/sessions.js';
import type { Store } from '../analytics/store.js';
import { type ChargePointRegistry, password_length_max, password_length_min } from '../core/charge-points.js';
import type { Logger } from '../core/log.js';
import { metrics_registry } from '../core/metrics.js';
import { TariffValidationError, validate_tariff } from '../rating/tariff.js';
import type { TariffStore } from '../rating/tariff-store.js';

export interface ApiOptions {
  host: string;
  port: number;
  operator_token: string;
  body_bytes_max: number;
}

export interface ApiDeps {
  store: Store;
  tariffs: TariffStore;
  charge_points: ChargePointRegistry;
  log: Logger;
}

/** An error the client caused: answered with its status and a JSON body naming the problem. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

const page_limit_max = 1000;

function send_json(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

async function read_body(req: http.IncomingMessage, bytes_max: number): Promise<string> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > bytes_max) throw new HttpError(413, `request body over ${bytes_max} bytes`);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req) {
    total += (chunk as Buffer).length;
    if (total > bytes_max) throw new HttpError(413, `request body over ${bytes_max} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function decode_path_segment(segment: string, field: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, `${field} is not valid percent-encoding`, field);
  }
}

function parse_json_body(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, 'body is not valid JSON', '(body)');
  }
}

function int_param(
  params: URLSearchParams,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const raw = params.get(name);
  if (raw === null) return fallback;
  if (!/^\d+$/.test(raw)) throw new HttpError(400, `${name} must be a non-negative integer`, name);
  const value = Number(raw);
  if (value < min || value > max) throw new HttpError(400, `${name} must be between ${min} and ${max}`, name);
  return value;
}

/**
 * The operator HTTP API (node:http: the API is not the hot path, and node:http gives streaming
 * bodies, back-pressure and mature HTTP/1.1 handling with no native code).
 */
export class ApiServer {
  private readonly server: http.Server;
  private readonly token_digest: Buffer;
  port = 0;

  constructor(
    private readonly options: ApiOptions,
    private readonly deps: ApiDeps,
  ) {
    this.token_digest = digest(options.operator_token);
    this.server = http.createServer((req, res) => {
      this.route(req, res).catch((error: unknown) => {
        if (error instanceof HttpError) {
          send_json(res, error.status, {
            error: error.message,
            ...(error.field ? { field: error.field } : {}),
          });
          return;
        }
        this.deps.log.error({ err: error, url: req.url }, 'api request failed');
        if (!res.headersSent) send_json(res, 500, { error: 'internal error' });
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

  private authorize(req: http.IncomingMessage): void {
    const header = req.headers.authorization ?? '';
    const match = /^Bearer (\S+)$/.exec(header);
    if (match === null || !timingSafeEqual(digest(match[1]!), this.token_digest)) {
      throw new HttpError(401, 'missing or wrong operator token (Authorization: Bearer <token>)');
    }
  }

  private async route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = req.method ?? 'GET';
    if (url.pathname === '/health' && method === 'GET') {
      send_json(res, 200, { status: 'ok' });
      return;
    }
    if (url.pathname === '/metrics' && method === 'GET') {
      const text = await metrics_registry.metrics();
      res.writeHead(200, { 'content-type': metrics_registry.contentType });
      res.end(text);
      return;
    }
    if (!url.pathname.startsWith('/v1/')) throw new HttpError(404, 'not found');
    this.authorize(req);

    if (url.pathname === '/v1/sessions') {
      if (method !== 'GET') throw new HttpError(405, 'use GET');
      const charge_point_id = url.searchParams.get('charge_point_id') ?? undefined;
      if (charge_point_id !== undefined && (charge_point_id.length === 0 || charge_point_id.length > 48)) {
        throw new HttpError(400, 'charge_point_id must be 1 to 48 characters', 'charge_point_id');
      }
      const limit = int_param(url.searchParams, 'limit', 100, 1, page_limit_max);
      const offset = int_param(url.searchParams, 'offset', 0, 0, 10_000_000);
      const sessions = await list_rated_sessions(this.deps.store, {
        ...(charge_point_id === undefined ? {} : { charge_point_id }),
        limit,
        offset,
      });
      send_json(res, 200, {
        sessions: sessions.map((s) => ({ ...s, breakdown: JSON.parse(s.breakdown) as unknown })),
        limit,
        offset,
      });
      return;
    }

    const charge_point_match = /^\/v1\/charge-points\/([^/]+)$/.exec(url.pathname);
    if (charge_point_match !== null) {
      if (method !== 'PUT') throw new HttpError(405, 'use PUT');
      const charge_point_id = decode_path_segment(charge_point_match[1]!, 'charge_point_id');
      if (!/^[\x21-\x7e]{1,48}$/.test(charge_point_id)) {
        throw new HttpError(
          400,
          'charge point id must be 1 to 48 printable ASCII characters',
          'charge_point_id',
        );
      }
      const body = parse_json_body(await read_body(req, this.options.body_bytes_max));
      const password =
        typeof body === 'object' && body !== null ? (body as { password?: unknown }).password : undefined;
      if (
        typeof password !== 'string' ||
        password.length < password_length_min ||
        password.length > password_length_max
      ) {
        throw new HttpError(
          400,
          `password: must be a string of ${password_length_min} to ${password_length_max} characters (OCPP AuthorizationKey)`,
          'password',
        );
      }
      await this.deps.charge_points.set_password(charge_point_id, password);
      send_json(res, 200, { charge_point_id, password_set: true });
      return;
    }

    const tariff_match = /^\/v1\/tariffs\/([^/]+)$/.exec(url.pathname);
    if (tariff_match !== null) {
      const tariff_id = decode_path_segment(tariff_match[1]!, 'id');
      if (method === 'GET') {
        const current = await this.deps.tariffs.current(tariff_id);
        if (current === undefined) throw new HttpError(404, `tariff ${tariff_id} not found`);
        send_json(res, 200, current);
        return;
      }
      if (method !== 'PUT') throw new HttpError(405, 'use GET or PUT');
      const parsed = parse_json_body(await read_body(req, this.options.body_bytes_max));
      let tariff: ReturnType<typeof validate_tariff>;
      try {
        tariff = validate_tariff(parsed);
      } catch (error) {
        if (error instanceof TariffValidationError) throw new HttpError(400, error.message, error.field);
        throw error;
      }
      if (tariff.id !== tariff_id) {
        throw new HttpError(400, `id: must equal the id in the URL (${tariff_id})`, 'id');
      }
      const version = await this.deps.tariffs.put(tariff);
      await insert_tariff_version(this.deps.store, version);
      send_json(res, 200, version);
      return;
    }
    throw new HttpError(404, 'not found');
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    await closed;
  }
}
