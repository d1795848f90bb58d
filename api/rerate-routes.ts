import type { Store } from '../analytics/store.js';
import type { Nats } from '../core/nats.js';
import { RerateError, type RerateSelection, rerate } from '../rating/rerate.js';
import type { SessionRules } from '../rating/session.js';
import type { TariffStore } from '../rating/tariff-store.js';
import { HttpError, type Route, send_json } from './http.js';

export interface RerateDeps {
  store: Store;
  tariffs: TariffStore;
  rules: SessionRules;
  /** Announces re-rated versions to billing. */
  nats?: Nats;
}

type Json = Record<string, unknown>;

function optional_string(body: Json, field: string): string | undefined {
  const value = body[field];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length === 0 || value.length > 255) {
    throw new HttpError(400, `${field}: must be a non-empty string of at most 255 characters`, field);
  }
  return value;
}

function optional_time(body: Json, field: string): number | undefined {
  const text = optional_string(body, field);
  if (text === undefined) return undefined;
  const ms = Date.parse(text);
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(text) || Number.isNaN(ms)) {
    throw new HttpError(
      400,
      `${field}: must be an RFC 3339 date-time with a zone, e.g. 2026-11-01T00:00:00Z`,
      field,
    );
  }
  return ms;
}

/** Parses a re-rating request body; shared by the API and the CLI. */
export function parse_rerate_request(body: unknown): {
  selection: RerateSelection;
  tariff: { tariff_id: string; version?: number };
} {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new HttpError(400, 'body must be a JSON object', '(body)');
  }
  const b = body as Json;
  const tariff_id = optional_string(b, 'tariff_id');
  if (tariff_id === undefined) throw new HttpError(400, 'tariff_id: required', 'tariff_id');
  const version = b.tariff_version;
  if (version !== undefined && (!Number.isInteger(version) || (version as number) < 1)) {
    throw new HttpError(400, 'tariff_version: must be a positive integer', 'tariff_version');
  }
  const selection: RerateSelection = {};
  const session_id = optional_string(b, 'session_id');
  const charge_point_id = optional_string(b, 'charge_point_id');
  const from_ms = optional_time(b, 'from');
  const to_ms = optional_time(b, 'to');
  if (session_id !== undefined) selection.session_id = session_id;
  if (charge_point_id !== undefined) selection.charge_point_id = charge_point_id;
  if (from_ms !== undefined) selection.from_ms = from_ms;
  if (to_ms !== undefined) selection.to_ms = to_ms;
  if (from_ms !== undefined && to_ms !== undefined && to_ms <= from_ms) {
    throw new HttpError(400, 'to: must be after from', 'to');
  }
  return {
    selection,
    tariff: { tariff_id, ...(version === undefined ? {} : { version: version as number }) },
  };
}

const rerate_doc_schema = {
  type: 'object',
  required: ['tariff_id'],
  properties: {
    tariff_id: { type: 'string' },
    tariff_version: { type: 'integer', minimum: 1, description: 'default: the current version' },
    session_id: { type: 'string' },
    charge_point_id: { type: 'string' },
    from: { type: 'string', format: 'date-time', description: 'sessions started at or after' },
    to: { type: 'string', format: 'date-time', description: 'sessions started before' },
  },
  additionalProperties: false,
};

/** POST /v1/sessions/rerate: re-prices one session, a charge point or a time range. */
export function rerate_routes(deps: RerateDeps): Route[] {
  return [
    {
      method: 'POST',
      path: /^\/v1\/sessions\/rerate$/,
      auth: 'operator',
      doc: {
        path: '/v1/sessions/rerate',
        summary:
          'Re-rate sessions with a tariff version; writes a new version of each and returns the differences',
        tags: ['sessions'],
        request_body: rerate_doc_schema,
        responses: {
          '200': { description: 'the re-rated sessions with previous total, new total and difference' },
          '400': { description: 'invalid request, naming the field' },
        },
      },
      async handle({ res, json_body }) {
        const request = parse_rerate_request(await json_body());
        try {
          const sessions = await rerate(deps, request.selection, request.tariff, deps.rules);
          send_json(res, 200, { sessions, count: sessions.length });
        } catch (error) {
          if (error instanceof RerateError) throw new HttpError(400, error.message, error.field);
          throw error;
        }
      },
    },
  ];
}
