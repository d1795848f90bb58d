import type http from 'node:http';

/** An error the client caused: answered with its status and a JSON body naming the problem. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export type Method = 'GET' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';

/** What a route handler gets: the request, the response, the parsed URL and the path captures. */
export interface RouteContext {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  url: URL;
  /** Percent-decoded capture groups of the route's path pattern, in order. */
  params: string[];
  /** Reads and parses the JSON body (size-limited); 400 when it is not JSON, 413 when too big. */
  json_body(): Promise<unknown>;
  /** What the route's authenticator returned (auth `ocpi`: the partner); undefined otherwise. */
  caller?: unknown;
}

/** The OpenAPI 3.1 description of one route; `/v1/openapi.json` is built from these. */
export interface RouteDoc {
  /** The OpenAPI path template, e.g. `/v1/tariffs/{id}`. */
  path: string;
  summary: string;
  tags?: string[];
  /** OpenAPI Parameter objects (path and query). */
  parameters?: unknown[];
  /** JSON Schema of the request body, when the route takes one. */
  request_body?: unknown;
  /** OpenAPI Responses object keyed by status code. */
  responses: Record<string, unknown>;
}

export interface Route {
  method: Method;
  /** Anchored pattern matched against the URL path; capture groups become `params`. */
  path: RegExp;
  /**
   * `operator`: the router checks the operator Bearer token before the handler runs.
   * `ocpi`: the router runs the OCPI authenticator (credentials token) and passes its result as
   * `caller`; a route cannot be reached without it.
   * `self`: the handler authenticates the caller itself (public probes).
   */
  auth: 'operator' | 'ocpi' | 'self';
  /** Names of the captures, used in error messages when one is not valid percent-encoding. */
  param_names?: string[];
  handle(ctx: RouteContext): Promise<void>;
  doc?: RouteDoc;
}

export function send_json(
  res: http.ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(text)),
  });
  res.end(text);
}

export async function read_body(req: http.IncomingMessage, bytes_max: number): Promise<string> {
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

export function decode_path_segment(segment: string, field: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, `${field} is not valid percent-encoding`, field);
  }
}

/** A request body that must be a JSON object: 400 naming `(body)` otherwise. */
export function object_body(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new HttpError(400, '(body): must be a JSON object', '(body)');
  return body as Record<string, unknown>;
}

export function parse_json_body(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, 'body is not valid JSON', '(body)');
  }
}

export function int_param(
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
