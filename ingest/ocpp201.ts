import { Decimal } from 'decimal.js';
import type { TokenDecision } from '../core/tokens.js';
import type { MeterValue, SampledValue } from '../schemas/events.js';
import {
  type AuthMethod,
  type CallContext,
  type CallOutcome,
  check_call,
  timestamp_ms,
  token_fields_of,
} from './call.js';
import { connector_id, OcppError } from './ocppj.js';
import { ocpp201_validator } from './validate.js';

/**
 * OCPP 2.0.1 message semantics, free of I/O. Transactions are the charger's own ids (scoped by
 * charge point); energy registers are taken from the meter values of TransactionEvent.
 */
export const ocpp201_actions: ReadonlySet<string> = new Set([
  'BootNotification',
  'Heartbeat',
  'StatusNotification',
  'Authorize',
  'TransactionEvent',
  'MeterValues',
  'NotifyEvent',
  'FirmwareStatusNotification',
]);

type Json = Record<string, unknown>;

const energy_register = 'Energy.Active.Import.Register';

/** OCPP 2.0.1 part 2 SampledValueType defaults, written out so that stored rows are explicit. */
function meter_values_of(list: unknown, field: string): MeterValue[] {
  return ((list as Json[] | undefined) ?? []).map((mv, i) => ({
    timestampMs: timestamp_ms(mv.timestamp, `${field}[${i}].timestamp`),
    sampledValues: (mv.sampledValue as Json[]).map((sv): SampledValue => {
      const unit_of_measure = (sv.unitOfMeasure as Json | undefined) ?? {};
      const multiplier = Number(unit_of_measure.multiplier ?? 0);
      const unit = String(unit_of_measure.unit ?? 'Wh');
      const signed = sv.signedMeterValue as Json | undefined;
      return {
        // The number as the charger wrote it, scaled by its multiplier (a power of ten) exactly.
        // Without a multiplier the text is JavaScript's own, which Decimal would print alike.
        value:
          multiplier === 0
            ? String(sv.value)
            : new Decimal(String(sv.value)).mul(new Decimal(10).pow(multiplier)).toString(),
        context: (sv.context as string | undefined) ?? 'Sample.Periodic',
        format: signed === undefined ? 'Raw' : 'SignedData',
        measurand: (sv.measurand as string | undefined) ?? energy_register,
        phase: (sv.phase as string | undefined) ?? '',
        location: (sv.location as string | undefined) ?? 'Outlet',
        unit,
        // Evidence for billing disputes (2.0.1 part 2, SignedMeterValueType): kept as the charger sent it.
        signedData: signed === undefined ? '' : JSON.stringify(signed),
      };
    }),
  }));
}

/**
 * The energy register in Wh among meter values, rounded to the nearest Wh (the same rounding at
 * start and stop, far below any meter's accuracy class); -1 when there is none. The last
 * reading wins, which is the one closest to the event.
 */
export function register_wh(meter_values: readonly MeterValue[]): number {
  let wh = -1;
  for (const mv of meter_values) {
    for (const sv of mv.sampledValues) {
      if (sv.measurand !== energy_register || sv.phase !== '') continue;
      const scale = sv.unit === 'kWh' ? 1000 : sv.unit === 'Wh' ? 1 : undefined;
      if (scale === undefined) continue;
      wh = new Decimal(sv.value).mul(scale).toDecimalPlaces(0, Decimal.ROUND_HALF_UP).toNumber();
    }
  }
  return wh;
}

export async function handle_ocpp201_call(
  action: string,
  payload: Json,
  context: CallContext,
): Promise<CallOutcome> {
  check_call(ocpp201_validator, ocpp201_actions, action, payload);
  const now = new Date(context.now_ms()).toISOString();

  switch (action) {
    case 'BootNotification': {
      const station = payload.chargingStation as Json;
      return {
        events: [
          {
            body: 'boot',
            boot: {
              vendor: String(station.vendorName),
              model: String(station.model),
              serialNumber: String(station.serialNumber ?? ''),
              firmwareVersion: String(station.firmwareVersion ?? ''),
            },
          },
        ],
        payload: { currentTime: now, interval: context.heartbeat_interval_s, status: 'Accepted' },
      };
    }
    case 'Heartbeat':
      return { events: [], payload: { currentTime: now } };
    case 'StatusNotification':
      return {
        events: [
          {
            body: 'status',
            status: {
              connectorId: connector_id(payload.connectorId, 'connectorId'),
              evseId: connector_id(payload.evseId, 'evseId'),
              status: String(payload.connectorStatus),
              errorCode: '',
              timestampMs: timestamp_ms(payload.timestamp, 'timestamp'),
              info: '',
            },
          },
        ],
        payload: {},
      };
    case 'Authorize':
      return {
        events: [],
        payload: {
          idTokenInfo: id_token_info(await authorize_id_token(payload.idToken as Json, context)),
        },
      };
    case 'TransactionEvent':
      return transaction_event(payload, context);
    case 'MeterValues':
      return {
        events: [
          {
            body: 'meterValues',
            meterValues: {
              transactionId: '',
              connectorId: connector_id(payload.evseId, 'evseId'),
              meterValues: meter_values_of(payload.meterValue, 'meterValue'),
            },
          },
        ],
        payload: {},
      };
    case 'NotifyEvent':
    case 'FirmwareStatusNotification':
      return { events: [], payload: {} };
    default:
      throw new OcppError('NotSupported', `${action} is not supported by this server`);
  }
}

/** The decision for an IdTokenType, with what tells a payment terminal's reference (ingest/payment-terminal.ts). */
function authorize_id_token(id_token: Json, context: CallContext): Promise<TokenDecision> {
  const additional_info = id_token.additionalInfo as Json[] | undefined;
  return context.authorize(String(id_token.idToken), {
    type: String(id_token.type),
    ...(additional_info === undefined ? {} : { additional_info }),
  });
}

/** OCPP 2.0.1 IdTokenInfoType: the status, and the group as groupIdToken when there is one. */
function id_token_info(decision: TokenDecision): Json {
  const group = decision.token?.group_id;
  return {
    status: decision.status,
    ...(group === undefined || group === '' ? {} : { groupIdToken: { idToken: group, type: 'Central' } }),
  };
}

async function transaction_event(payload: Json, context: CallContext): Promise<CallOutcome> {
  const info = payload.transactionInfo as Json;
  const transaction_id = String(info.transactionId);
  const evse = (payload.evse as Json | undefined) ?? {};
  const evse_id = connector_id(evse.id, 'evse.id');
  const evse_connector_id =
    evse.connectorId === undefined ? evse_id : connector_id(evse.connectorId, 'evse.connectorId');
  const id_token_object = payload.idToken as Json | undefined;
  const id_token = String(id_token_object?.idToken ?? '');
  const at_ms = timestamp_ms(payload.timestamp, 'timestamp');
  const meter_values = meter_values_of(payload.meterValue, 'meterValue');
  // An empty idToken (type NoAuthorization, part 2 IdTokenEnumType) asks for no decision.
  const decision = id_token === '' ? undefined : await authorize_id_token(id_token_object!, context);
  const reply = decision === undefined ? {} : { idTokenInfo: id_token_info(decision) };
  const event_type = String(payload.eventType);
  // Part 2 TransactionType.chargingState: "required when state has changed", so its absence means
  // no change and is passed on as ''.
  const charging_state = String(info.chargingState ?? '');

  if (event_type === 'Started') {
    const events: CallOutcome['events'] = [
      {
        body: 'started',
        started: {
          transactionId: transaction_id,
          connectorId: evse_connector_id,
          evseId: evse_id,
          idTag: id_token,
          meterStartWh: register_wh(meter_values),
          timestampMs: at_ms,
          reservationId: Number(payload.reservationId ?? 0),
          ...token_fields_of(decision),
          authMethod: auth_method_of(payload, info),
          idTokenType: String(id_token_object?.type ?? ''),
          chargingState: charging_state,
        },
      },
    ];
    if (meter_values.length > 0) {
      events.push({
        body: 'meterValues',
        meterValues: {
          transactionId: transaction_id,
          connectorId: evse_connector_id,
          meterValues: meter_values,
        },
      });
    }
    return { events, payload: reply };
  }
  if (event_type === 'Ended') {
    return {
      events: [
        {
          body: 'stopped',
          stopped: {
            transactionId: transaction_id,
            idTag: id_token,
            meterStopWh: register_wh(meter_values),
            timestampMs: at_ms,
            // OCPP 2.0.1 ReasonEnumType: stoppedReason "MAY only be omitted when Reason is Local".
            reason: String(info.stoppedReason ?? 'Local'),
            transactionData: meter_values,
            chargingState: charging_state,
          },
        },
      ],
      payload: reply,
    };
  }
  // Updated: the meter values, and the charging state when it changed (SuspendedEV, Idle... are
  // how rating tells charging from parking when the meter is coarse); an Updated carrying a
  // charging state and no meter values is published too, with none.
  if (meter_values.length === 0 && charging_state === '') return { events: [], payload: reply };
  return {
    events: [
      {
        body: 'meterValues',
        meterValues: {
          transactionId: transaction_id,
          connectorId: evse_connector_id,
          meterValues: meter_values,
          chargingState: charging_state,
          chargingStateAtMs: charging_state === '' ? 0 : at_ms,
        },
      },
    ],
    payload: reply,
  };
}

/**
 * OCPI 2.2.1 mod_cdrs AuthMethod: COMMAND for a transaction our RequestStartTransaction started
 * (part 2 F01/F02: the charger reports triggerReason RemoteStart and echoes remoteStartId), else
 * WHITELIST: the token was decided here from the token store, without asking the eMSP.
 */
function auth_method_of(payload: Json, info: Json): AuthMethod {
  return payload.triggerReason === 'RemoteStart' || info.remoteStartId !== undefined
    ? 'COMMAND'
    : 'WHITELIST';
}
