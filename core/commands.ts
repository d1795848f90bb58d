import { FieldError } from './field-error.js';
import type { Nats } from './nats.js';

/**
 * Commands to a connected charger, in the words of the operator. The API sends them over NATS
 * (request/reply) to every ingest node; the node holding the charger's socket turns the command
 * into the CALL of the charger's OCPP version (ingest/commands.ts), sends it and replies with the
 * charger's answer. No reply in time means no node holds the charger.
 */
export type Command =
  | { command: 'start'; id_tag: string; connector_id?: number; remote_start_id?: number }
  | { command: 'stop'; transaction_id: string }
  | { command: 'reset'; type: 'soft' | 'hard' }
  | { command: 'availability'; operative: boolean; connector_id?: number; evse_id?: number }
  | { command: 'firmware'; location: string; retrieve_at: string; request_id?: number }
  /** A message on the charger's display: a URI (its pay page, shown as a QR code) or text. */
  | { command: 'display'; message_id: number; format: 'URI' | 'UTF8'; content: string; evse_id?: number }
  | {
      command: 'cost';
      transaction_id: string;
      /** Total cost incl. VAT so far, an exact decimal string. */
      total_cost: string;
      currency: string;
    };

export const command_names = [
  'start',
  'stop',
  'reset',
  'availability',
  'firmware',
  'display',
  'cost',
] as const;

export class CommandError extends FieldError {}

type Json = Record<string, unknown>;

function fail(field: string, rule: string): never {
  throw new CommandError(field, rule);
}

function text(o: Json, field: string, length_max: number): string {
  const value = o[field];
  if (typeof value !== 'string' || value.length === 0 || value.length > length_max)
    fail(field, `must be a string of 1 to ${length_max} characters`);
  return value;
}

function optional_int(o: Json, field: string, min: number): number | undefined {
  const value = o[field];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > 2 ** 31 - 1)
    fail(field, `must be an integer from ${min}`);
  return value;
}

/** Reads a command from an API body; names the bad field. */
export function parse_command(value: unknown): Command {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    fail('(body)', 'must be a JSON object');
  const o = value as Json;
  switch (o.command) {
    case 'start': {
      const connector_id = optional_int(o, 'connector_id', 1);
      const remote_start_id = optional_int(o, 'remote_start_id', 0);
      return {
        command: 'start',
        id_tag: text(o, 'id_tag', 20),
        ...(connector_id === undefined ? {} : { connector_id }),
        ...(remote_start_id === undefined ? {} : { remote_start_id }),
      };
    }
    case 'stop':
      return { command: 'stop', transaction_id: text(o, 'transaction_id', 36) };
    case 'reset':
      if (o.type !== 'soft' && o.type !== 'hard') fail('type', 'must be soft or hard');
      return { command: 'reset', type: o.type };
    case 'availability': {
      if (typeof o.operative !== 'boolean') fail('operative', 'must be true or false');
      const connector_id = optional_int(o, 'connector_id', 0);
      const evse_id = optional_int(o, 'evse_id', 0);
      return {
        command: 'availability',
        operative: o.operative,
        ...(connector_id === undefined ? {} : { connector_id }),
        ...(evse_id === undefined ? {} : { evse_id }),
      };
    }
    case 'firmware': {
      const location = text(o, 'location', 512);
      if (!/^(https?|ftps?):\/\//.test(location)) fail('location', 'must be an http(s) or ftp(s) URL');
      const retrieve_at = text(o, 'retrieve_at', 40);
      if (Number.isNaN(Date.parse(retrieve_at))) fail('retrieve_at', 'must be an RFC 3339 date-time');
      const request_id = optional_int(o, 'request_id', 0);
      return {
        command: 'firmware',
        location,
        retrieve_at: new Date(retrieve_at).toISOString(),
        ...(request_id === undefined ? {} : { request_id }),
      };
    }
    case 'display': {
      const message_id = optional_int(o, 'message_id', 0) ?? 0;
      if (o.format !== 'URI' && o.format !== 'UTF8') fail('format', 'must be URI or UTF8');
      const evse_id = optional_int(o, 'evse_id', 1);
      return {
        command: 'display',
        message_id,
        format: o.format,
        content: text(o, 'content', 512),
        ...(evse_id === undefined ? {} : { evse_id }),
      };
    }
    default:
      return fail('command', `must be one of ${command_names.filter((c) => c !== 'cost').join(', ')}`);
  }
}

/** What became of a command. */
export type CommandResult =
  | { status: 'answered'; action: string; response: unknown }
  | { status: 'rejected'; action: string; error: { code: string; description: string } }
  | { status: 'timeout'; action: string }
  | { status: 'disconnected'; action: string }
  | { status: 'not_connected' }
  | { status: 'invalid'; field: string; rule: string };

export function command_subject(prefix: string, charge_point_id: string): string {
  return `${prefix}.cmd.${Buffer.from(charge_point_id, 'utf8').toString('base64url')}`;
}

export function charge_point_of_subject(subject: string): string {
  return Buffer.from(subject.slice(subject.lastIndexOf('.') + 1), 'base64url').toString('utf8');
}

/**
 * Sends a command to whichever ingest node holds the charger. `answer_timeout_ms` is how long the
 * node waits for the charger; the request waits a little longer so the node's own timeout answer
 * arrives first.
 */
export async function request_command(
  nats: Nats,
  prefix: string,
  charge_point_id: string,
  command: Command,
  answer_timeout_ms: number,
): Promise<CommandResult> {
  try {
    const reply = await nats.nc.request(
      command_subject(prefix, charge_point_id),
      JSON.stringify({ command, answer_timeout_ms }),
      { timeout: answer_timeout_ms + 2000 },
    );
    return reply.json<CommandResult>();
  } catch (error) {
    // Every ingest node listens; only the one holding the socket answers.
    const code = (error as { code?: string }).code;
    const name = (error as Error).name;
    if (
      code === 'TIMEOUT' ||
      code === '503' ||
      /timeout|no responders/i.test(`${name} ${(error as Error).message}`)
    ) {
      return { status: 'not_connected' };
    }
    throw error;
  }
}
