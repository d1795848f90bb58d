import type { TokenDecision } from '../core/tokens.js';
import type { OcppEventBody, TransactionStartedEvent } from '../schemas/events.js';
import { OcppError } from './ocppj.js';
import type { SchemaValidator } from './validate.js';

/** What a CALL handler may use besides the payload: clock, configuration, ids, token decisions. */
export interface CallContext {
  heartbeat_interval_s: number;
  now_ms: () => number;
  /** A 1.6 transaction id; the same for the same `start_key` (a retried StartTransaction). */
  allocate_transaction_id: (start_key: string) => Promise<number>;
  /**
   * The decision for an idTag / idToken: the token store's (core/tokens.ts), or a payment
   * terminal's reference on a charger with one (ingest/payment-terminal.ts), which may need the
   * 2.0.1 IdTokenType's type and additionalInfo.
   */
  authorize: (
    id_token: string,
    presented?: { type?: string; additional_info?: readonly Record<string, unknown>[] },
  ) => Promise<TokenDecision>;
  /**
   * OCPP 1.6: whether a StartTransaction of this idTag on this connector follows a
   * RemoteStartTransaction this node sent to the charger and the charger accepted. The match is
   * used up by `start_key` (the start's facts, as for allocate_transaction_id), so only a retry of
   * the same StartTransaction matches it again (ingest/remote-starts.ts).
   */
  remote_start_taken: (id_tag: string, connector_id: number, start_key: string) => boolean;
}

/** OCPI 2.2.1 mod_cdrs AuthMethod of a transaction ingest saw start (AUTH_REQUEST is never ours). */
export type AuthMethod = 'COMMAND' | 'WHITELIST';

type TokenFields = Pick<
  Required<TransactionStartedEvent>,
  | 'tokenType'
  | 'tokenCountryCode'
  | 'tokenPartyId'
  | 'contractId'
  | 'groupId'
  | 'planId'
  | 'tokenSource'
  | 'authStatus'
>;

/**
 * What a started event carries of the token decision: the store record's type, issuing party,
 * contract, group, plan and source, and the status; '' for what is unknown (no record: an unknown
 * token; no decision: no token presented). A payment terminal's reference has no record: it is
 * a one-time token (OCPI TokenType AD_HOC_USER) of source `terminal`, which the rating service
 * turns into the session's payment method TERMINAL.
 */
export function token_fields_of(decision: TokenDecision | undefined): TokenFields {
  if (decision?.terminal === true)
    return {
      tokenType: 'AD_HOC_USER',
      tokenCountryCode: '',
      tokenPartyId: '',
      contractId: '',
      groupId: '',
      planId: '',
      tokenSource: 'terminal',
      authStatus: decision.status,
    };
  const token = decision?.token;
  return {
    tokenType: token?.type ?? '',
    tokenCountryCode: token?.country_code ?? '',
    tokenPartyId: token?.party_id ?? '',
    contractId: token?.contract_id ?? '',
    groupId: token?.group_id ?? '',
    planId: token?.plan_id ?? '',
    tokenSource: token?.source ?? '',
    authStatus: decision?.status ?? '',
  };
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
