/**
 * OCPP-J framing (OCPP-J 1.6 section 4; OCPP 2.0.1 part 4 section 4): CALL [2, id, action, payload],
 * CALLRESULT [3, id, payload], CALLERROR [4, id, code, description, details].
 */
export const CALL = 2;
export const CALLRESULT = 3;
export const CALLERROR = 4;

/** OCPP-J 1.6 section 4.2.3 error codes (with the specification's own spelling). */
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

export class OcppError extends Error {
  constructor(
    readonly code: OcppErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
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
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw Object.assign(new OcppError('FormationViolation', 'frame is not valid JSON'), {
      id: unknown_message_id,
    });
  }
  if (!Array.isArray(value) || value.length < 3) {
    throw Object.assign(new OcppError('FormationViolation', 'frame must be a JSON array [type, id, ...]'), {
      id: unknown_message_id,
    });
  }
  const [type, id] = value;
  if (typeof id !== 'string' || id.length === 0 || id.length > message_id_length_max) {
    throw Object.assign(
      new OcppError(
        'FormationViolation',
        `message id must be a string of 1 to ${message_id_length_max} characters`,
      ),
      { id: unknown_message_id },
    );
  }
  if (type === CALL) {
    const [, , action, payload] = value;
    if (value.length !== 4 || typeof action !== 'string') {
      throw Object.assign(new OcppError('FormationViolation', 'CALL must be [2, id, action, payload]'), {
        id,
      });
    }
    if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
      throw Object.assign(new OcppError('FormationViolation', 'CALL payload must be a JSON object'), { id });
    }
    return { type, id, action, payload: payload as Record<string, unknown> };
  }
  if (type === CALLRESULT) return { type, id, payload: value[2] };
  if (type === CALLERROR) {
    return { type, id, code: String(value[2]), description: String(value[3] ?? '') };
  }
  throw Object.assign(new OcppError('ProtocolError', `unknown message type ${JSON.stringify(type)}`), { id });
}

export function frame_id_of(error: unknown): string {
  const id = (error as { id?: unknown }).id;
  return typeof id === 'string' ? id : unknown_message_id;
}

export function call_result(id: string, payload: unknown): string {
  return JSON.stringify([CALLRESULT, id, payload]);
}

export function call_error(id: string, error: OcppError): string {
  return JSON.stringify([CALLERROR, id, error.code, error.message.slice(0, 255), error.details]);
}
