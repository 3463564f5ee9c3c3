/**
 * The OCPP-J RPC framing shared by 1.6 and 2.0.1: CALL [2, id, action, payload],
 * CALLRESULT [3, id, payload], CALLERROR [4, id, code, description, details].
 */

export type OcppVersion = 'ocpp1.6' | 'ocpp2.0.1';

export type RpcErrorCode =
  | 'FormationViolation'
  | 'FormatViolation'
  | 'ProtocolError'
  | 'TypeConstraintViolation'
  | 'OccurrenceConstraintViolation'
  | 'PropertyConstraintViolation'
  | 'NotImplemented'
  | 'NotSupported'
  | 'SecurityError'
  | 'InternalError'
  | 'GenericError'
  | 'MessageTypeNotSupported'
  | 'RpcFrameworkError';

export const CALL = 2;
export const CALLRESULT = 3;
export const CALLERROR = 4;

/** messageId is at most 36 characters (a UUID) in both versions. */
export const MAX_MESSAGE_ID = 36;

export type Frame =
  | {
      readonly type: typeof CALL;
      readonly id: string;
      readonly action: string;
      readonly payload: Record<string, unknown>;
    }
  | { readonly type: typeof CALLRESULT; readonly id: string; readonly payload: unknown }
  | {
      readonly type: typeof CALLERROR;
      readonly id: string;
      readonly code: string;
      readonly description: string;
    };

export type ParsedFrame =
  | { readonly ok: true; readonly frame: Frame }
  | {
      readonly ok: false;
      readonly id: string;
      readonly code: RpcErrorCode;
      readonly description: string;
    };

/** The code for a frame that is not well-formed: the versions spell it differently. */
export function formatViolation(version: OcppVersion): RpcErrorCode {
  return version === 'ocpp1.6' ? 'FormationViolation' : 'FormatViolation';
}

/**
 * Parses one text frame. Never throws: a frame that cannot be read yields the CALLERROR to
 * send, with id "-1" when the messageId itself is unreadable.
 */
export function parseFrame(text: string, version: OcppVersion): ParsedFrame {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return fail('-1', formatViolation(version), 'frame is not valid JSON');
  }
  if (!Array.isArray(value) || value.length < 3) {
    return fail('-1', formatViolation(version), 'frame is not an OCPP-J array');
  }
  const [type, id] = value as [unknown, unknown];
  if (typeof id !== 'string' || id.length === 0) {
    return fail('-1', formatViolation(version), 'messageId must be a non-empty string');
  }
  if (id.length > MAX_MESSAGE_ID) {
    return fail(
      id.slice(0, MAX_MESSAGE_ID),
      version === 'ocpp1.6' ? 'ProtocolError' : 'RpcFrameworkError',
      `messageId is longer than ${MAX_MESSAGE_ID} characters`,
    );
  }
  // JSON can escape a lone UTF-16 surrogate ("\ud800"), which UTF-8 cannot carry: no log,
  // bus or store could keep such a string as sent (msgpack writes U+FFFD in its place). Only an
  // escape can make one (a socket's text arrives as UTF-8), so frames without one skip the walk.
  if (text.includes('\\u') && !wellFormed(value)) {
    return fail(
      id,
      formatViolation(version),
      'a string holds a lone UTF-16 surrogate (an unpaired \\uD800–\\uDFFF escape)',
    );
  }
  switch (type) {
    case CALL: {
      const [, , action, payload] = value as [unknown, unknown, unknown, unknown];
      if (value.length !== 4 || typeof action !== 'string') {
        return fail(id, formatViolation(version), 'CALL must be [2, messageId, action, payload]');
      }
      if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
        return fail(id, formatViolation(version), 'CALL payload must be a JSON object');
      }
      return {
        ok: true,
        frame: { type: CALL, id, action, payload: payload as Record<string, unknown> },
      };
    }
    case CALLRESULT:
      return { ok: true, frame: { type: CALLRESULT, id, payload: value[2] } };
    case CALLERROR: {
      const [, , code, description] = value as [unknown, unknown, unknown, unknown];
      return {
        ok: true,
        frame: {
          type: CALLERROR,
          id,
          code: String(code),
          description: typeof description === 'string' ? description : '',
        },
      };
    }
    default:
      return fail(
        id,
        version === 'ocpp1.6' ? 'ProtocolError' : 'MessageTypeNotSupported',
        `message type ${JSON.stringify(type)} is not 2, 3 or 4`,
      );
  }
}

/** Every string of a parsed JSON value, keys too, is well-formed UTF-16. */
function wellFormed(value: unknown): boolean {
  if (typeof value === 'string') return value.isWellFormed();
  if (value === null || typeof value !== 'object') return true;
  if (Array.isArray(value)) return value.every(wellFormed);
  for (const [key, v] of Object.entries(value))
    if (!key.isWellFormed() || !wellFormed(v)) return false;
  return true;
}

function fail(id: string, code: RpcErrorCode, description: string): ParsedFrame {
  return { ok: false, id, code, description };
}

export function callResult(id: string, payload: unknown): string {
  return `[3,${JSON.stringify(id)},${JSON.stringify(payload)}]`;
}

export function callError(
  id: string,
  code: RpcErrorCode,
  description: string,
  details: object = {},
): string {
  return JSON.stringify([CALLERROR, id, code, description, details]);
}
