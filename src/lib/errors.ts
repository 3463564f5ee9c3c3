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
  CONFIG_INVALID:
    'a flag, environment variable, the network file or a configuration API body is invalid (exit code 2; HTTP 400)',
  CONFIG_IN_USE: 'the entity cannot be deleted: others in the network still refer to it',
  STORE_UNAVAILABLE: 'the store could not be reached or refused a write; retried',
  STORE_QUERY_FAILED: 'the store rejected a query',
  LOG_CORRUPT: 'the embedded log holds a record that cannot be read',
  BUS_CLOSED: 'the bus was closed while an event was being appended',
  PARTITION_REVOKED:
    'a processor woke up with a batch of a partition the consumer group gave to another processor; not written',
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
  ORGANIZATION_NOT_RELATED:
    "the resource belongs to no organization the API key's organization may act for",
  SESSION_NOT_FOUND: 'no session with this id',
  CUSTOMER_NOT_FOUND: 'no customer with this id in the network',
  ORGANIZATION_NOT_FOUND: 'no organization with this id in the network',
  SESSION_ONGOING: 'the session is not completed yet',
  SESSION_NOT_BILLED: 'the session has no debit CDR (rejected, failed or not rated)',
  SESSION_NOT_CURRENT_MONTH: 'only sessions of the current calendar month can be cancelled',
  SESSION_ALREADY_CANCELLED: 'the session is cancelled already',
  SESSION_ALREADY_UPDATED: 'the session was corrected (refunded) before and cannot be cancelled',
  ROAMING_SESSION: 'roaming sessions cannot be cancelled yet',
  REASON_REQUIRED: 'a correction needs a non-empty reason',
  INVALID_AMOUNT: 'the amount is not a positive decimal in the currency minor unit',
  REQUEST_ID_REQUIRED: 'a refund needs a requestId',
  REQUEST_ID_CONFLICT: 'the requestId was used before for a different refund',
  REFUND_EXCEEDS_CHARGED: 'the refund is more than what remains charged for the session',
  INVOICE_NOT_ISSUED: 'no invoice: the session costs nothing after refunds and cancellation',
  INVALID_PERIOD: 'from/to are not ISO 8601 times with from before to',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
