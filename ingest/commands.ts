import { type Command, CommandError } from '../core/commands.js';
import type { OcppProtocol } from './ocppj.js';
import { ocpp16_validator, ocpp201_validator } from './validate.js';

type Json = Record<string, unknown>;

function fail(field: string, rule: string): never {
  throw new CommandError(field, rule);
}

/**
 * The CALL for a command in the charger's version. The payload is checked against the official
 * schema of the action, so a charger never receives a CALL it could reject as malformed.
 */
export function ocpp_call_of(command: Command, protocol: OcppProtocol): { action: string; payload: Json } {
  const call = protocol === 'ocpp1.6' ? ocpp16_call(command) : ocpp201_call(command);
  const validator = protocol === 'ocpp1.6' ? ocpp16_validator : ocpp201_validator;
  try {
    validator.check(`${call.action}.req`, call.payload);
  } catch (error) {
    fail('(command)', `not valid as ${protocol} ${call.action}: ${(error as Error).message}`);
  }
  return call;
}

function ocpp16_call(command: Command): { action: string; payload: Json } {
  switch (command.command) {
    case 'start':
      return {
        action: 'RemoteStartTransaction',
        payload: {
          idTag: command.id_tag,
          ...(command.connector_id === undefined ? {} : { connectorId: command.connector_id }),
        },
      };
    case 'stop': {
      // 1.6 transaction ids are integers (ours, allocated at StartTransaction).
      if (!/^\d{1,10}$/.test(command.transaction_id))
        fail('transaction_id', 'must be an OCPP 1.6 integer id');
      return { action: 'RemoteStopTransaction', payload: { transactionId: Number(command.transaction_id) } };
    }
    case 'reset':
      return { action: 'Reset', payload: { type: command.type === 'soft' ? 'Soft' : 'Hard' } };
    case 'availability':
      return {
        action: 'ChangeAvailability',
        payload: {
          connectorId: command.connector_id ?? 0,
          type: command.operative ? 'Operative' : 'Inoperative',
        },
      };
    case 'firmware':
      return {
        action: 'UpdateFirmware',
        payload: { location: command.location, retrieveDate: command.retrieve_at },
      };
    case 'display':
      // OCPP 1.6 has no display messages (SetDisplayMessage is new in 2.0.1, use case O01).
      return fail('command', 'display needs OCPP 2.0.1 (SetDisplayMessage)');
    case 'cost':
      // OCPP 1.6 has no CostUpdated: the Open Charge Alliance's running-cost message travels as a
      // DataTransfer (vendorId org.openchargealliance.costmsg, messageId RunningCost).
      return {
        action: 'DataTransfer',
        payload: {
          vendorId: 'org.openchargealliance.costmsg',
          messageId: 'RunningCost',
          data: JSON.stringify({
            transactionId: Number(command.transaction_id),
            cost: Number(command.total_cost),
            currency: command.currency,
          }),
        },
      };
  }
}

function ocpp201_call(command: Command): { action: string; payload: Json } {
  switch (command.command) {
    case 'start':
      return {
        action: 'RequestStartTransaction',
        payload: {
          idToken: { idToken: command.id_tag, type: 'Central' },
          remoteStartId: command.remote_start_id ?? 0,
          ...(command.connector_id === undefined ? {} : { evseId: command.connector_id }),
        },
      };
    case 'stop':
      return { action: 'RequestStopTransaction', payload: { transactionId: command.transaction_id } };
    case 'reset':
      return { action: 'Reset', payload: { type: command.type === 'soft' ? 'OnIdle' : 'Immediate' } };
    case 'availability': {
      const evse_id = command.evse_id ?? command.connector_id;
      return {
        action: 'ChangeAvailability',
        payload: {
          operationalStatus: command.operative ? 'Operative' : 'Inoperative',
          ...(evse_id === undefined || evse_id === 0 ? {} : { evse: { id: evse_id } }),
        },
      };
    }
    case 'firmware':
      return {
        action: 'UpdateFirmware',
        payload: {
          requestId: command.request_id ?? 0,
          firmware: { location: command.location, retrieveDateTime: command.retrieve_at },
        },
      };
    case 'display':
      // OCPP 2.0.1 part 2, O01 SetDisplayMessage: priority InFront keeps it over the cycle of
      // other messages; a URI content is what a display shows as a QR code.
      return {
        action: 'SetDisplayMessage',
        payload: {
          message: {
            id: command.message_id,
            priority: 'InFront',
            message: { format: command.format, content: command.content },
            ...(command.evse_id === undefined
              ? {}
              : { display: { name: 'Display', evse: { id: command.evse_id } } }),
          },
        },
      };
    case 'cost':
      // OCPP 2.0.1 CostUpdated (part 2, I03): the running total incl. VAT as a decimal number.
      return {
        action: 'CostUpdated',
        payload: { totalCost: Number(command.total_cost), transactionId: command.transaction_id },
      };
  }
}
