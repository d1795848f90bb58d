import { CommandError, command_names, parse_command, request_command } from '../core/commands.js';
import type { Nats } from '../core/nats.js';
import { HttpError, type Route, send_json } from './http.js';

export interface CommandRouteDeps {
  nats: Nats;
  subject_prefix: string;
  answer_timeout_ms: number;
}

/** HTTP status per outcome: the charger's own refusal is not the caller's fault (502). */
const status_of = {
  answered: 200,
  rejected: 502,
  timeout: 504,
  disconnected: 503,
  not_connected: 409,
  invalid: 400,
} as const;

/** `POST /v1/charge-points/{id}/commands`: remote start/stop, reset, availability, firmware. */
export function command_routes(deps: CommandRouteDeps): Route[] {
  return [
    {
      method: 'POST',
      path: /^\/v1\/charge-points\/([^/]+)\/commands$/,
      param_names: ['charge_point_id'],
      auth: 'operator',
      doc: {
        path: '/v1/charge-points/{charge_point_id}/commands',
        summary:
          'Send a command to a connected charger (start, stop, reset, availability, firmware) and return its answer',
        tags: ['charge points'],
        parameters: [
          { name: 'charge_point_id', in: 'path', required: true, schema: { type: 'string', maxLength: 48 } },
        ],
        request_body: {
          type: 'object',
          required: ['command'],
          properties: {
            command: { enum: command_names.filter((c) => c !== 'cost') },
            id_tag: { type: 'string' },
            connector_id: { type: 'integer' },
            evse_id: { type: 'integer' },
            remote_start_id: { type: 'integer' },
            transaction_id: { type: 'string' },
            type: { enum: ['soft', 'hard'] },
            operative: { type: 'boolean' },
            location: { type: 'string' },
            retrieve_at: { type: 'string', format: 'date-time' },
            request_id: { type: 'integer' },
          },
        },
        responses: {
          '200': { description: "the charger's answer" },
          '400': { description: 'the command is not valid' },
          '409': { description: 'the charger is not connected' },
          '502': { description: 'the charger answered with a CALLERROR' },
          '503': { description: 'the charger disconnected before answering' },
          '504': { description: 'the charger did not answer in time' },
        },
      },
      async handle({ res, params, json_body }) {
        const charge_point_id = params[0]!;
        if (!/^[\x21-\x7e]{1,48}$/.test(charge_point_id)) {
          throw new HttpError(
            400,
            'charge point id must be 1 to 48 printable ASCII characters',
            'charge_point_id',
          );
        }
        let command: ReturnType<typeof parse_command>;
        try {
          command = parse_command(await json_body());
        } catch (error) {
          if (error instanceof CommandError) throw new HttpError(400, error.message, error.field);
          throw error;
        }
        const result = await request_command(
          deps.nats,
          deps.subject_prefix,
          charge_point_id,
          command,
          deps.answer_timeout_ms,
        );
        if (result.status === 'invalid')
          throw new HttpError(400, `${result.field}: ${result.rule}`, result.field);
        send_json(res, status_of[result.status], { charge_point_id, ...result });
      },
    },
  ];
}
