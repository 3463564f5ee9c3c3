import type { Validator } from '../ocpp/validation.js';

export type CommandStatus = 'accepted' | 'call_error' | 'timeout' | 'disconnected' | 'busy';

/** The outcome of one engine-initiated CALL. */
export interface CommandResult {
  readonly status: CommandStatus;
  readonly messageId: string;
  readonly response?: unknown;
  /** The response did not match the official schema (recorded, still returned). */
  readonly responseInvalid?: boolean;
  readonly errorCode?: string;
  readonly description?: string;
  readonly latencyMs: number;
}

interface Pending {
  readonly id: string;
  readonly action: string;
  readonly payload: object;
  readonly timeoutMs: number;
  readonly resolve: (result: CommandResult) => void;
  readonly validateResponse: Validator | undefined;
  sentAt: number;
  timer: NodeJS.Timeout | null;
}

/** Most calls waiting behind the one in flight, per connection. */
const MAX_QUEUED = 64;

/**
 * Engine-initiated CALLs of one connection: one outstanding at a time (OCPP-J), the rest in a
 * bounded queue, each with a timeout. Answers are matched by messageId.
 */
export class OutboundCalls {
  readonly #send: (text: string, action: string) => void;
  readonly #queue: Pending[] = [];
  #inFlight: Pending | null = null;
  #next = 0;
  readonly #prefix: string;

  constructor(send: (text: string, action: string) => void, prefix: string) {
    this.#send = send;
    this.#prefix = prefix;
  }

  call(
    action: string,
    payload: object,
    timeoutMs: number,
    validateResponse: Validator | undefined,
  ): Promise<CommandResult> {
    const id = `${this.#prefix}${(this.#next++).toString(36)}`;
    if (this.#queue.length >= MAX_QUEUED)
      return Promise.resolve({ status: 'busy', messageId: id, latencyMs: 0 });
    return new Promise((resolve) => {
      this.#queue.push({
        id,
        action,
        payload,
        timeoutMs,
        resolve,
        validateResponse,
        sentAt: 0,
        timer: null,
      });
      this.#pump();
    });
  }

  /** A CALLRESULT or CALLERROR from the charger; false when it answers nothing we sent. */
  answer(
    id: string,
    result: { ok: true; payload: unknown } | { ok: false; code: string; description: string },
  ): boolean {
    const pending = this.#inFlight;
    if (pending === null || pending.id !== id) return false;
    const latencyMs = Date.now() - pending.sentAt;
    if (result.ok) {
      const valid =
        pending.validateResponse === undefined || pending.validateResponse(result.payload);
      this.#settle({
        status: 'accepted',
        messageId: id,
        response: result.payload,
        responseInvalid: !valid,
        latencyMs,
      });
    } else {
      this.#settle({
        status: 'call_error',
        messageId: id,
        errorCode: result.code,
        description: result.description,
        latencyMs,
      });
    }
    return true;
  }

  /** The connection closed: everything pending ends as disconnected. */
  close(): void {
    const all =
      this.#inFlight === null ? this.#queue.splice(0) : [this.#inFlight, ...this.#queue.splice(0)];
    this.#inFlight = null;
    for (const p of all) {
      if (p.timer !== null) clearTimeout(p.timer);
      p.resolve({
        status: 'disconnected',
        messageId: p.id,
        latencyMs: p.sentAt === 0 ? 0 : Date.now() - p.sentAt,
      });
    }
  }

  #settle(result: CommandResult): void {
    const pending = this.#inFlight!;
    if (pending.timer !== null) clearTimeout(pending.timer);
    this.#inFlight = null;
    pending.resolve(result);
    this.#pump();
  }

  #pump(): void {
    if (this.#inFlight !== null) return;
    const next = this.#queue.shift();
    if (next === undefined) return;
    this.#inFlight = next;
    next.sentAt = Date.now();
    next.timer = setTimeout(() => {
      if (this.#inFlight === next)
        this.#settle({
          status: 'timeout',
          messageId: next.id,
          latencyMs: Date.now() - next.sentAt,
        });
    }, next.timeoutMs);
    this.#send(JSON.stringify([2, next.id, next.action, next.payload]), next.action);
  }
}
