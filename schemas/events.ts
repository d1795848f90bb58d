import protobuf from 'protobufjs';
import { project_file } from '../core/paths.js';

/** TypeScript view of schemas/events.proto (field names as protobufjs gives them: camelCase). */
export interface SampledValue {
  value: string;
  context: string;
  format: string;
  measurand: string;
  phase: string;
  location: string;
  unit: string;
  /** Signature evidence kept verbatim (see events.proto); empty or absent for raw values. */
  signedData?: string;
}

export interface MeterValue {
  timestampMs: number;
  sampledValues: SampledValue[];
}

export interface BootNotificationEvent {
  vendor: string;
  model: string;
  serialNumber: string;
  firmwareVersion: string;
}

export interface StatusNotificationEvent {
  connectorId: number;
  status: string;
  errorCode: string;
  timestampMs: number;
  info: string;
  evseId: number;
}

export interface TransactionStartedEvent {
  transactionId: string;
  connectorId: number;
  idTag: string;
  meterStartWh: number;
  timestampMs: number;
  reservationId: number;
  evseId: number;
  // The fields below are optional in this view so that events built without them (tests, older
  // producers) still type-check; decode_event_batch always fills them ('' when absent).
  /** OCPI TokenType of the token store record; '' for a token unknown to the store. */
  tokenType?: string;
  /** The issuing party of the record; '' when unknown. */
  tokenCountryCode?: string;
  tokenPartyId?: string;
  contractId?: string;
  groupId?: string;
  planId?: string;
  /** The record's source: 'operator' | 'ocpi' | ''. */
  tokenSource?: string;
  /** OCPI 2.2.1 AuthMethod: 'COMMAND' (started by our remote start) or 'WHITELIST'. */
  authMethod?: string;
  /** The token decision's AuthorizationStatus; '' when no token was presented. */
  authStatus?: string;
  /** OCPP 2.0.1 IdTokenEnumType as sent; '' for 1.6. */
  idTokenType?: string;
  /** OCPP 2.0.1 transactionInfo.chargingState of the Started event; '' when absent. */
  chargingState?: string;
}

export interface MeterValuesEvent {
  transactionId: string;
  connectorId: number;
  meterValues: MeterValue[];
  /** OCPP 2.0.1 chargingState of the TransactionEvent (Updated) that carried these values; '' when absent. */
  chargingState?: string;
  /** That TransactionEvent's timestamp; 0 when there is no chargingState. */
  chargingStateAtMs?: number;
}

export interface TransactionStoppedEvent {
  transactionId: string;
  idTag: string;
  meterStopWh: number;
  timestampMs: number;
  reason: string;
  transactionData: MeterValue[];
  /** OCPP 2.0.1 transactionInfo.chargingState of the Ended event; '' when absent. */
  chargingState?: string;
}

export type OcppEventBody =
  | { body: 'boot'; boot: BootNotificationEvent }
  | { body: 'status'; status: StatusNotificationEvent }
  | { body: 'started'; started: TransactionStartedEvent }
  | { body: 'meterValues'; meterValues: MeterValuesEvent }
  | { body: 'stopped'; stopped: TransactionStoppedEvent }
  | { body: 'connection'; connection: ConnectionChangedEvent }
  | { body: 'rejected'; rejected: CallRejectedEvent };

export interface ConnectionChangedEvent {
  connected: boolean;
  protocol: string;
  nodeId: string;
}

export interface CallRejectedEvent {
  action: string;
  errorCode: string;
  nodeId: string;
}

export type OcppEvent = {
  chargePointId: string;
  receivedAtMs: number;
  ocppVersion: string;
  messageId: string;
  /** The CALL frame as received (transaction messages only); absent or empty otherwise. */
  rawFrame?: string;
} & OcppEventBody;

export interface EventBatch {
  nodeId: string;
  sequence: number;
  events: OcppEvent[];
}

const root = protobuf.loadSync(project_file('schemas/events.proto'));
const EventBatchType = root.lookupType('evrate.v1.EventBatch');

/**
 * The events are built by typed code with the proto's field types, so they are encoded as they
 * are: fromObject's conversion would only copy them (and cost the ingest hot path twice the time).
 * The oneof's discriminator `body` is not a field and is not encoded.
 */
export function encode_event_batch(batch: EventBatch): Uint8Array {
  return EventBatchType.encode(batch).finish();
}

/** Decodes and fills defaults, so every field of the interfaces above is present. */
export function decode_event_batch(bytes: Uint8Array): EventBatch {
  const message = EventBatchType.decode(bytes);
  return EventBatchType.toObject(message, {
    longs: Number,
    defaults: true,
    arrays: true,
    oneofs: true,
  }) as EventBatch;
}
