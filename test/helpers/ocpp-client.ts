import WebSocket from 'ws';

export type CallAnswerer = (
  action: string,
  payload: Record<string, unknown>,
) => object | Error | null;

export type CallOutcome =
  | { readonly ok: true; readonly payload: Record<string, unknown> }
  | { readonly ok: false; readonly code: string; readonly description: string };

/**
 * A minimal OCPP-J charger for tests, on the `ws` package: one call at a time, as a real
 * charger behaves, plus raw frames for the malformed cases.
 */
export class TestCharger {
  readonly #ws: WebSocket;
  readonly #waiting = new Map<string, (frame: unknown[]) => void>();
  #next = 1;
  readonly frames: unknown[][] = [];
  #answer: CallAnswerer = () => null;
  #outstanding = 0;
  /** The most engine-initiated CALLs seen unanswered at once (OCPP-J allows one). */
  maxOutstandingCalls = 0;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.on('message', (data: Buffer) => {
      const frame = JSON.parse(data.toString()) as unknown[];
      this.frames.push(frame);
      if (frame[0] === 2) {
        this.#incoming(frame);
        return;
      }
      const resolve = this.#waiting.get(String(frame[1]));
      if (resolve !== undefined) {
        this.#waiting.delete(String(frame[1]));
        resolve(frame);
      }
    });
  }

  static connect(
    url: string,
    options: {
      protocols?: string[];
      password?: string;
      user?: string;
      ca?: string;
      localAddress?: string;
    } = {},
  ): Promise<TestCharger> {
    const identity = decodeURIComponent(url.slice(url.lastIndexOf('/') + 1));
    const headers: Record<string, string> = {};
    if (options.password !== undefined) {
      headers['Authorization'] =
        `Basic ${Buffer.from(`${options.user ?? identity}:${options.password}`).toString('base64')}`;
    }
    const ws = new WebSocket(url, options.protocols ?? ['ocpp1.6'], {
      headers,
      ...(options.ca === undefined ? {} : { ca: options.ca }),
      ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
    });
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new TestCharger(ws)));
      ws.once('unexpected-response', (_req, res) =>
        reject(new Error(`upgrade refused: ${res.statusCode}`)),
      );
      ws.once('error', reject);
    });
  }

  get protocol(): string {
    return this.#ws.protocol;
  }

  get isOpen(): boolean {
    return this.#ws.readyState === WebSocket.OPEN;
  }

  call(action: string, payload: object, timeoutMs = 15_000): Promise<CallOutcome> {
    const id = String(this.#next++);
    return this.#request(id, JSON.stringify([2, id, action, payload]), timeoutMs);
  }

  /** Sends raw text and waits for the answer carrying `expectId`. */
  raw(text: string, expectId: string, timeoutMs = 15_000): Promise<CallOutcome> {
    return this.#request(expectId, text, timeoutMs);
  }

  close(): void {
    this.#ws.close();
  }

  /**
   * How this charger answers the engine's CALLs, after 30 ms (so that a second CALL sent too
   * early would be seen): a payload for CALLRESULT, an Error whose message is the CALLERROR
   * code, null for silence.
   */
  answerCalls(answer: CallAnswerer): void {
    this.#answer = answer;
  }

  #incoming(frame: unknown[]): void {
    this.#outstanding += 1;
    this.maxOutstandingCalls = Math.max(this.maxOutstandingCalls, this.#outstanding);
    const [, id, action, payload] = frame as [number, string, string, Record<string, unknown>];
    const answer = this.#answer(action, payload);
    if (answer === null) return;
    setTimeout(() => {
      this.#outstanding -= 1;
      this.#ws.send(
        JSON.stringify(
          answer instanceof Error ? [4, id, answer.message, 'refused', {}] : [3, id, answer],
        ),
      );
    }, 30);
  }

  #request(id: string, text: string, timeoutMs: number): Promise<CallOutcome> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id);
        reject(new Error(`no answer to ${text.slice(0, 120)}`));
      }, timeoutMs);
      this.#waiting.set(id, (frame) => {
        clearTimeout(timer);
        resolve(
          frame[0] === 3
            ? { ok: true, payload: frame[2] as Record<string, unknown> }
            : { ok: false, code: String(frame[2]), description: String(frame[3]) },
        );
      });
      this.#ws.send(text);
    });
  }
}
