/**
 * One error type for the whole engine: a stable `code` that tests, logs and users can rely
 * on, a `retriable` flag that retry loops read (as kafkajs does), and the `cause`.
 * Protocol and HTTP mappings happen only at the edges (gateway, api).
 */
export class ChargestreamError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;

  constructor(
    code: ErrorCode,
    message: string,
    options: { retriable?: boolean; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ChargestreamError';
    this.code = code;
    this.retriable = options.retriable ?? false;
  }
}

/** Every code a user can see, with what it means. A test checks this table is complete. */
export const ERROR_CODES = {
  CONFIG_INVALID: 'a flag, environment variable or the network file is invalid (exit code 2)',
  STORE_UNAVAILABLE: 'the store could not be reached or refused a write; retried',
  STORE_QUERY_FAILED: 'the store rejected a query',
  LOG_CORRUPT: 'the embedded log holds a record that cannot be read',
  BUS_CLOSED: 'the bus was closed while an event was being appended',
  UNAUTHORIZED: 'no or an unknown API key',
  FORBIDDEN: 'the API key may not do this',
  BAD_REQUEST: 'the request is malformed',
  NOT_FOUND: 'no such route or resource',
  SQL_NOT_READ_ONLY: 'the analyst SQL endpoint takes exactly one read-only statement',
  SQL_FAILED: 'ClickHouse rejected the analyst query',
  PAYLOAD_TOO_LARGE: 'the request body is larger than the limit',
  INTERNAL: 'an unexpected failure inside the engine; logged',
  CHARGER_OFFLINE: 'the charger is not connected to this engine',
  NOT_A_COMMAND:
    "the action is not one the central system may send in the charger's protocol version",
  INVALID_PAYLOAD: 'the command payload does not match the official schema',
  CHARGER_CALL_ERROR: 'the charger answered the command with a CALLERROR',
  CHARGER_TIMEOUT: 'the charger did not answer the command in time',
  CHARGER_BUSY: 'too many commands are waiting for this charger',
  SESSION_NOT_FAILED: 'only a session whose rating or billing failed can be retried',
  NO_BUS: 'this process has no bus to send the request through',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
