import WebSocket from 'ws';

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

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.on('message', (data: Buffer) => {
      const frame = JSON.parse(data.toString()) as unknown[];
      this.frames.push(frame);
      const resolve = this.#waiting.get(String(frame[1]));
      if (resolve !== undefined) {
        this.#waiting.delete(String(frame[1]));
        resolve(frame);
      }
    });
  }

  static connect(
    url: string,
    options: { protocols?: string[]; password?: string; user?: string } = {},
  ): Promise<TestCharger> {
    const identity = decodeURIComponent(url.slice(url.lastIndexOf('/') + 1));
    const headers: Record<string, string> = {};
    if (options.password !== undefined) {
      headers['Authorization'] =
        `Basic ${Buffer.from(`${options.user ?? identity}:${options.password}`).toString('base64')}`;
    }
    const ws = new WebSocket(url, options.protocols ?? ['ocpp1.6'], { headers });
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
