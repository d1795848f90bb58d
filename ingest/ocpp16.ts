import type { TokenDecision } from '../core/tokens.js';
import type { MeterValue, SampledValue } from '../schemas/events.js';
import { type CallContext, type CallOutcome, check_call, timestamp_ms, token_fields_of } from './call.js';
import { connector_id, OcppError } from './ocppj.js';
import { ocpp16_validator } from './validate.js';

/** OCPP 1.6 message semantics, free of I/O: each CALL becomes its answer and its events. */
/** Actions this server implements; any other action known to OCPP 1.6 is NotSupported. */
export const ocpp16_actions: ReadonlySet<string> = new Set([
  'BootNotification',
  'Heartbeat',
  'StatusNotification',
  'Authorize',
  'StartTransaction',
  'MeterValues',
  'StopTransaction',
  'DataTransfer',
  'FirmwareStatusNotification',
  'DiagnosticsStatusNotification',
]);

type Json = Record<string, unknown>;

/** OCPP 1.6 section 7.45 SampledValue defaults, written out so that stored rows are explicit. */
function meter_values_of(list: unknown, field: string): MeterValue[] {
  return ((list as Json[] | undefined) ?? []).map((mv, i) => ({
    timestampMs: timestamp_ms(mv.timestamp, `${field}[${i}].timestamp`),
    sampledValues: (mv.sampledValue as Json[]).map(
      (sv): SampledValue => ({
        value: String(sv.value),
        context: (sv.context as string | undefined) ?? 'Sample.Periodic',
        format: (sv.format as string | undefined) ?? 'Raw',
        measurand: (sv.measurand as string | undefined) ?? 'Energy.Active.Import.Register',
        phase: (sv.phase as string | undefined) ?? '',
        location: (sv.location as string | undefined) ?? 'Outlet',
        unit: (sv.unit as string | undefined) ?? 'Wh',
        // OCPP 1.6 section 7.43: a SignedData value is the signature evidence itself.
        signedData: sv.format === 'SignedData' ? String(sv.value) : '',
      }),
    ),
  }));
}

/** OCPP 1.6 IdToken is CiString20Type (section 7.28); token store groups may be up to 36 characters. */
const id_token_length_max = 20;

/**
 * OCPP 1.6 section 7.27 IdTagInfo: the status, and the group as parentIdTag when there is one
 * that fits an IdToken (parentIdTag is optional; a longer group would break IdTagInfo's schema).
 */
function id_tag_info(decision: TokenDecision): Json {
  const group = decision.token?.group_id;
  const fits = group !== undefined && group !== '' && group.length <= id_token_length_max;
  return { status: decision.status, ...(fits ? { parentIdTag: group } : {}) };
}

export async function handle_ocpp16_call(
  action: string,
  payload: Json,
  context: CallContext,
): Promise<CallOutcome> {
  check_call(ocpp16_validator, ocpp16_actions, action, payload);
  const now = new Date(context.now_ms()).toISOString();

  switch (action) {
    case 'BootNotification':
      return {
        events: [
          {
            body: 'boot',
            boot: {
              vendor: String(payload.chargePointVendor),
              model: String(payload.chargePointModel),
              serialNumber: String(payload.chargePointSerialNumber ?? ''),
              firmwareVersion: String(payload.firmwareVersion ?? ''),
            },
          },
        ],
        payload: { status: 'Accepted', currentTime: now, interval: context.heartbeat_interval_s },
      };
    case 'Heartbeat':
      return { events: [], payload: { currentTime: now } };
    case 'StatusNotification':
      return {
        events: [
          {
            body: 'status',
            status: {
              connectorId: connector_id(payload.connectorId, 'connectorId'),
              status: String(payload.status),
              errorCode: String(payload.errorCode),
              timestampMs: payload.timestamp === undefined ? 0 : timestamp_ms(payload.timestamp, 'timestamp'),
              info: String(payload.info ?? ''),
              evseId: 0,
            },
          },
        ],
        payload: {},
      };
    case 'Authorize':
      return {
        events: [],
        payload: { idTagInfo: id_tag_info(await context.authorize(String(payload.idTag))) },
      };
    case 'StartTransaction': {
      const started_ms = timestamp_ms(payload.timestamp, 'timestamp');
      // The transaction is recorded whatever the decision: the charge point has started it and
      // stops it itself when the status is not Accepted (OCPP 1.6 section 5.11, StopTransactionOnInvalidId).
      const id_tag = String(payload.idTag);
      const connector = connector_id(payload.connectorId, 'connectorId');
      const decision = await context.authorize(id_tag);
      // The start's facts identify it; the server adds the charge point and the message id.
      const start_key = JSON.stringify([
        payload.connectorId,
        payload.idTag,
        payload.meterStart,
        payload.timestamp,
      ]);
      const transaction_id = await context.allocate_transaction_id(start_key);
      return {
        events: [
          {
            body: 'started',
            started: {
              transactionId: String(transaction_id),
              connectorId: connector,
              idTag: id_tag,
              meterStartWh: Number(payload.meterStart),
              timestampMs: started_ms,
              reservationId: Number(payload.reservationId ?? 0),
              evseId: 0,
              ...token_fields_of(decision),
              // OCPP 1.6 StartTransaction.req names no remote start: matched by idTag and connector
              // to one this node sent (ingest/remote-starts.ts); else decided here from the store.
              authMethod: context.remote_start_taken(id_tag, connector, start_key) ? 'COMMAND' : 'WHITELIST',
              // 1.6 has neither IdTokenEnumType nor chargingState.
              idTokenType: '',
              chargingState: '',
            },
          },
        ],
        payload: { transactionId: transaction_id, idTagInfo: id_tag_info(decision) },
      };
    }
    case 'MeterValues':
      return {
        events: [
          {
            body: 'meterValues',
            meterValues: {
              transactionId: payload.transactionId === undefined ? '' : String(payload.transactionId),
              connectorId: connector_id(payload.connectorId, 'connectorId'),
              meterValues: meter_values_of(payload.meterValue, 'meterValue'),
            },
          },
        ],
        payload: {},
      };
    case 'StopTransaction': {
      const id_tag_answer =
        payload.idTag === undefined ? undefined : id_tag_info(await context.authorize(String(payload.idTag)));
      return {
        events: [
          {
            body: 'stopped',
            stopped: {
              transactionId: String(payload.transactionId),
              idTag: String(payload.idTag ?? ''),
              meterStopWh: Number(payload.meterStop),
              timestampMs: timestamp_ms(payload.timestamp, 'timestamp'),
              // OCPP 1.6 section 6.48: an omitted reason means Local.
              reason: String(payload.reason ?? 'Local'),
              transactionData: meter_values_of(payload.transactionData, 'transactionData'),
            },
          },
        ],
        payload: id_tag_answer === undefined ? {} : { idTagInfo: id_tag_answer },
      };
    }
    case 'DataTransfer':
      // OCPP 1.6 section 4.3: no vendor-specific extensions are known here.
      return { events: [], payload: { status: 'UnknownVendorId' } };
    case 'FirmwareStatusNotification':
    case 'DiagnosticsStatusNotification':
      return { events: [], payload: {} };
    default:
      throw new OcppError('NotSupported', `${action} is not supported by this server`);
  }
}
