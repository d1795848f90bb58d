import type { TokenDecision } from '../core/tokens.js';
import type { OcppEventBody } from '../schemas/events.js';
import { OcppError } from './ocppj.js';
import type { SchemaValidator } from './validate.js';

/** What a CALL handler may use besides the payload: clock, configuration, ids, token decisions. */
export interface CallContext {
  heartbeat_interval_s: number;
  now_ms: () => number;
  /** A 1.6 transaction id; the same for the same `start_key` (a retried StartTransaction). */
  allocate_transaction_id: (start_key: string) => Promise<number>;
  /** The token store's decision for an idTag / idToken (core/tokens.ts). */
  authorize: (id_token: string) => Promise<TokenDecision>;
}

/** The answer to a CALL, and the events that must be durable before it is sent. */
export interface CallOutcome {
  events: OcppEventBody[];
  payload: Record<string, unknown>;
}

/**
 * The checks every CALL passes before its action runs, in the order OCPP-J wants them reported:
 * unknown action (NotImplemented), known but not served (NotSupported), then the payload schema.
 */
export function check_call(
  validator: SchemaValidator,
  implemented: ReadonlySet<string>,
  action: string,
  payload: unknown,
): void {
  const schema_id = `${action}.req`;
  if (!validator.has(schema_id)) {
    throw new OcppError('NotImplemented', `unknown action ${JSON.stringify(action).slice(0, 64)}`);
  }
  if (!implemented.has(action))
    throw new OcppError('NotSupported', `${action} is not supported by this server`);
  validator.check(schema_id, payload);
}

export function timestamp_ms(value: unknown, field: string): number {
  const ms = Date.parse(String(value));
  if (!Number.isFinite(ms))
    throw new OcppError('PropertyConstraintViolation', `${field}: not a valid date-time`);
  return ms;
}
