/**
 * OCPP-J framing (OCPP-J 1.6 section 4; OCPP 2.0.1 part 4 section 4): CALL [2, id, action, payload],
 * CALLRESULT [3, id, payload], CALLERROR [4, id, code, description, details].
 */
export const CALL = 2;
export const CALLRESULT = 3;
export const CALLERROR = 4;

export type OcppProtocol = 'ocpp1.6' | 'ocpp2.0.1';

/**
 * Error codes in OCPP-J 1.6 section 4.2.3 spelling (the spelling used throughout this code);
 * wire_error_code gives the OCPP 2.0.1 part 4 section 4.3 name where it differs.
 */
export type OcppErrorCode =
  | 'NotImplemented'
  | 'NotSupported'
  | 'InternalError'
  | 'ProtocolError'
  | 'SecurityError'
  | 'FormationViolation'
  | 'PropertyConstraintViolation'
  | 'OccurenceConstraintViolation'
  | 'TypeConstraintViolation'
  | 'GenericError';

/** Frame-level faults: unreadable frames and unknown message types. */
export type FrameFault = 'unreadable' | 'unknown_message_type';

export function wire_error_code(error: OcppError, protocol: OcppProtocol): string {
  if (protocol === 'ocpp1.6') return error.code;
  // OCPP 2.0.1 part 4 section 4.3 and 4.4.
  if (error.fault === 'unreadable') return 'RpcFrameworkError';
  if (error.fault === 'unknown_message_type') return 'MessageTypeNotSupported';
  if (error.code === 'FormationViolation') return 'FormatViolation';
  if (error.code === 'OccurenceConstraintViolation') return 'OccurrenceConstraintViolation';
  return error.code;
}

export class OcppError extends Error {
  constructor(
    readonly code: OcppErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
    /** For errors found while reading a frame: the id to answer under. */
    readonly frame_id?: string,
    readonly fault?: FrameFault,
  ) {
    super(message);
    this.name = 'OcppError';
  }
}

export type Frame =
  | { type: typeof CALL; id: string; action: string; payload: Record<string, unknown> }
  | { type: typeof CALLRESULT; id: string; payload: unknown }
  | { type: typeof CALLERROR; id: string; code: string; description: string };

/** The message id used in a CALLERROR when the frame's own id cannot be read (OCPP 2.0.1 part 4 4.2.3). */
export const unknown_message_id = '-1';

const message_id_length_max = 36;

/**
 * Parses one text frame. Throws OcppError with the id to answer under (unknown_message_id when
 * the frame has none).
 */
export function parse_frame(text: string): Frame {
  const unreadable = (message: string) =>
    new OcppError('FormationViolation', message, {}, unknown_message_id, 'unreadable');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw unreadable('frame is not valid JSON');
  }
  if (!Array.isArray(value) || value.length < 3)
    throw unreadable('frame must be a JSON array [type, id, ...]');
  const [type, id] = value;
  if (typeof id !== 'string' || id.length === 0 || id.length > message_id_length_max) {
    throw unreadable(`message id must be a string of 1 to ${message_id_length_max} characters`);
  }
  if (type === CALL) {
    const [, , action, payload] = value;
    if (value.length !== 4 || typeof action !== 'string') {
      throw new OcppError('FormationViolation', 'CALL must be [2, id, action, payload]', {}, id);
    }
    if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
      throw new OcppError('FormationViolation', 'CALL payload must be a JSON object', {}, id);
    }
    return { type, id, action, payload: payload as Record<string, unknown> };
  }
  if (type === CALLRESULT) return { type, id, payload: value[2] };
  if (type === CALLERROR) {
    return { type, id, code: String(value[2]), description: String(value[3] ?? '') };
  }
  throw new OcppError(
    'ProtocolError',
    `unknown message type ${JSON.stringify(type)}`,
    {},
    id,
    'unknown_message_type',
  );
}

export function frame_id_of(error: unknown): string {
  return error instanceof OcppError && error.frame_id !== undefined ? error.frame_id : unknown_message_id;
}

export function call_result(id: string, payload: unknown): string {
  return JSON.stringify([CALLRESULT, id, payload]);
}

export function call_error(id: string, error: OcppError, protocol: OcppProtocol): string {
  return JSON.stringify([
    CALLERROR,
    id,
    wire_error_code(error, protocol),
    error.message.slice(0, 255),
    error.details,
  ]);
}

/** Upper bound of connector and EVSE ids: they are stored as 32-bit numbers. */
const connector_id_max = 2 ** 31 - 1;

/**
 * A connector or EVSE id. The official schemas only say "integer"; OCPP 1.6 section 7 and 2.0.1
 * define them as 0 (the whole charge point) or a positive number, so anything else is refused
 * here rather than stored.
 */
export function connector_id(value: unknown, field: string): number {
  if (value === undefined) return 0;
  const id = Number(value);
  if (!Number.isInteger(id) || id < 0 || id > connector_id_max) {
    throw new OcppError(
      'PropertyConstraintViolation',
      `${field}: must be an integer from 0 to ${connector_id_max}`,
      {
        field,
      },
    );
  }
  return id;
}

/**
 * A 53-bit fingerprint of a frame's text (two 32-bit FNV-1a style lanes), to recognise a
 * charger's retry of a CALL: same message id and same text. Message ids are unique per sender
 * and connection (OCPP-J 1.6 section 4.1.3), so the fingerprint only ever tells a retry from a
 * sender that broke that rule; for that, 2^-53 is chance enough.
 */
export function text_fingerprint(text: string): number {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  return (a >>> 0) * 0x200000 + ((b >>> 0) & 0x1fffff);
}
