import type { CommandRefusal } from '../gateway/server.js';
import type { CommandResult } from '../gateway/outbound.js';
import { ChargestreamError } from '../lib/errors.js';
import { randomUUID } from 'node:crypto';
import { chTime } from '../lib/time.js';
import type { Store } from '../store/store.js';
import type { Caller } from './auth.js';

/** Sends an engine-initiated call to wherever the charger is connected. */
export type CommandSender = (
  chargerId: string,
  action: string,
  payload: object,
  timeoutMs: number,
) => CommandRefusal | Promise<CommandResult | CommandRefusal>;

export interface CommandReply {
  readonly status: string;
  readonly body: object;
}

/**
 * `POST /api/v1/chargers/{id}/commands/{action}`: one engine-initiated OCPP call, its payload
 * the request body. The result is recorded in `charger_commands` whatever it is.
 */
export async function runCommand(
  send: CommandSender,
  commandLog: CommandLog | null,
  known: (chargerId: string) => boolean,
  request: { chargerId: string; action: string; body: Buffer; timeoutMs: number; caller: Caller },
): Promise<CommandReply> {
  const { chargerId, action, caller } = request;
  if (!known(chargerId))
    throw new ChargestreamError('NOT_FOUND', `no charger ${chargerId} in the network`);
  let payload: unknown;
  try {
    payload = request.body.length === 0 ? {} : JSON.parse(request.body.toString('utf8'));
  } catch {
    throw new ChargestreamError(
      'BAD_REQUEST',
      'the body must be the JSON payload of the OCPP call',
    );
  }
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
    throw new ChargestreamError('BAD_REQUEST', 'the body must be a JSON object');
  }
  const sent = await send(chargerId, action, payload, request.timeoutMs);
  if ('refused' in sent) {
    switch (sent.refused) {
      case 'offline':
        throw new ChargestreamError('CHARGER_OFFLINE', `charger ${chargerId} is not connected`);
      case 'not_a_command':
        throw new ChargestreamError(
          'NOT_A_COMMAND',
          `${action} is not a ${sent.protocol} command; one of: ${sent.allowed.join(', ')}`,
        );
      case 'invalid_payload':
        throw new ChargestreamError(
          'INVALID_PAYLOAD',
          `${action} (${sent.protocol}): ${sent.reason}`,
        );
    }
  }
  const result = sent;
  if (commandLog !== null) {
    commandLog.record(chargerId, action, payload, result, `${caller.organization}/${caller.role}`);
    await commandLog.flush();
  }
  switch (result.status) {
    case 'accepted':
      return {
        status: '200 OK',
        body: {
          messageId: result.messageId,
          response: result.response,
          responseValid: !result.responseInvalid,
          latencyMs: result.latencyMs,
        },
      };
    case 'call_error':
      throw new ChargestreamError(
        'CHARGER_CALL_ERROR',
        `${result.errorCode ?? 'GenericError'}: ${result.description ?? ''}`,
      );
    case 'timeout':
      throw new ChargestreamError(
        'CHARGER_TIMEOUT',
        `no answer from ${chargerId} within ${request.timeoutMs} ms`,
      );
    case 'busy':
      throw new ChargestreamError('CHARGER_BUSY', `too many commands wait for ${chargerId}`);
    case 'disconnected':
      throw new ChargestreamError(
        'CHARGER_OFFLINE',
        `charger ${chargerId} disconnected before answering`,
      );
  }
}

/**
 * Keeps the outcome of engine-initiated calls in `charger_commands`, batched: provisioning a
 * few thousand chargers after a restart makes tens of thousands of results, and one insert
 * each would occupy the I/O threads the embedded log needs for acknowledging chargers.
 */
export class CommandLog {
  readonly #store: Store;
  readonly #onError: (error: unknown) => void;
  #rows: string[] = [];
  #timer: NodeJS.Timeout | null = null;
  #flushing: Promise<void> = Promise.resolve();

  constructor(store: Store, onError: (error: unknown) => void) {
    this.#store = store;
    this.#onError = onError;
  }

  record(
    chargerId: string,
    action: string,
    payload: object,
    result: CommandResult,
    requestedBy: string,
  ): void {
    this.#rows.push(
      JSON.stringify({
        ts: chTime(Date.now()),
        charger_id: chargerId,
        action,
        message_id: result.messageId,
        request: JSON.stringify(payload),
        status: result.status,
        response: result.response === undefined ? '' : JSON.stringify(result.response),
        response_valid: result.responseInvalid !== true,
        error_code: result.errorCode ?? '',
        description: result.description ?? '',
        latency_ms: Math.round(result.latencyMs),
        requested_by: requestedBy,
      }),
    );
    this.#timer ??= setTimeout(() => void this.flush(), 250);
  }

  /** Writes what is buffered; resolves when it is stored. */
  flush(): Promise<void> {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    const rows = this.#rows;
    this.#rows = [];
    if (rows.length > 0) {
      this.#flushing = this.#flushing
        .then(() =>
          this.#store.insert(
            'charger_commands',
            rows.join('\n') + '\n',
            `charger_commands:${randomUUID()}`,
          ),
        )
        .catch(this.#onError);
    }
    return this.#flushing;
  }
}
