import uWS from 'uWebSockets.js';
import type { Logger } from 'pino';
import { ChargestreamError, errorMessage, type ErrorCode } from '../lib/errors.js';
import type { Store } from '../store/store.js';
import type { ApiKeys, Caller } from './auth.js';
import { checkReadOnlySql } from './sql-guard.js';
import type { Role } from '../config/network.js';

export interface ApiOptions {
  readonly host: string;
  readonly port: number;
  readonly store: Store;
  readonly keys: ApiKeys;
  readonly log: Logger;
  /** Ready when the engine accepts and processes events (for /readyz). */
  readonly ready: () => boolean;
  /** Prometheus text exposition of the engine's metrics. */
  readonly metrics: () => Promise<string>;
}

const MAX_BODY = 1024 * 1024;
const SQL_ROLES: ReadonlySet<Role> = new Set(['admin', 'analyst', 'financial_support', 'operator']);

const STATUS: Readonly<Partial<Record<ErrorCode, string>>> = {
  UNAUTHORIZED: '401 Unauthorized',
  FORBIDDEN: '403 Forbidden',
  BAD_REQUEST: '400 Bad Request',
  NOT_FOUND: '404 Not Found',
  SQL_NOT_READ_ONLY: '400 Bad Request',
  SQL_FAILED: '400 Bad Request',
  PAYLOAD_TOO_LARGE: '413 Payload Too Large',
};

/** The HTTP API on uWebSockets.js. Errors are JSON `{ error: { code, message } }`. */
export class Api {
  readonly #options: ApiOptions;
  readonly #app: uWS.TemplatedApp;
  #listenSocket: uWS.us_listen_socket | null = null;

  constructor(options: ApiOptions) {
    this.#options = options;
    this.#app = uWS
      .App()
      .get('/healthz', (res) => {
        res.writeHeader('Content-Type', 'application/json').end('{"status":"ok"}');
      })
      .get('/readyz', (res) => {
        const ready = options.ready();
        res
          .writeStatus(ready ? '200 OK' : '503 Service Unavailable')
          .writeHeader('Content-Type', 'application/json')
          .end(JSON.stringify({ status: ready ? 'ready' : 'starting' }));
      })
      .get('/metrics', (res) => {
        this.#respond(res, false, async () => ({
          type: 'text/plain; version=0.0.4',
          body: await options.metrics(),
        }));
      })
      .post('/api/v1/sql', (res, req) => {
        const authorization = req.getHeader('authorization');
        const format = req.getQuery('format') ?? '';
        this.#respond(res, true, async (body) => {
          this.#authorize(authorization, SQL_ROLES);
          return this.#sql(body, format);
        });
      })
      .any('/*', (res) => {
        this.#fail(res, new ChargestreamError('NOT_FOUND', 'no such route'));
      });
  }

  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#app.listen(this.#options.host, this.#options.port, (socket) => {
        if (socket === false) {
          reject(new Error(`cannot listen on ${this.#options.host}:${this.#options.port}`));
          return;
        }
        this.#listenSocket = socket;
        resolve(uWS.us_socket_local_port(socket));
      });
    });
  }

  close(): void {
    if (this.#listenSocket !== null) uWS.us_listen_socket_close(this.#listenSocket);
    this.#listenSocket = null;
  }

  #authorize(authorization: string, roles: ReadonlySet<Role>): Caller {
    const caller = this.#options.keys.caller(authorization);
    if (caller === null)
      throw new ChargestreamError(
        'UNAUTHORIZED',
        'a valid API key is required (Authorization: Bearer <key>)',
      );
    if (!roles.has(caller.role))
      throw new ChargestreamError('FORBIDDEN', `role ${caller.role} may not use this route`);
    return caller;
  }

  async #sql(body: Buffer, formatParam: string): Promise<{ type: string; body: string }> {
    const format = formatParam === '' ? 'JSONEachRow' : formatParam;
    if (!/^[A-Za-z0-9]{1,64}$/.test(format))
      throw new ChargestreamError('BAD_REQUEST', `format: not a ClickHouse format name: ${format}`);
    const verdict = checkReadOnlySql(body.toString('utf8'));
    if (!verdict.ok) throw new ChargestreamError('SQL_NOT_READ_ONLY', verdict.reason);
    const result = await this.#options.store.analystQuery(verdict.sql, format);
    return { type: contentType(format), body: result };
  }

  /** Reads the body (bounded), runs the handler, writes its result or a JSON error. */
  #respond(
    res: uWS.HttpResponse,
    readBody: boolean,
    handler: (body: Buffer) => Promise<{ type: string; body: string }>,
  ): void {
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    const run = (body: Buffer) =>
      handler(body).then(
        (result) => {
          if (aborted) return;
          res.cork(() => {
            res.writeHeader('Content-Type', result.type).end(result.body);
          });
        },
        (error: unknown) => this.#fail(res, error, () => aborted),
      );
    if (!readBody) {
      void run(Buffer.alloc(0));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    res.onData((chunk, isLast) => {
      if (size < 0) return;
      size += chunk.byteLength;
      if (size > MAX_BODY) {
        size = -1;
        this.#fail(
          res,
          new ChargestreamError('PAYLOAD_TOO_LARGE', `the body is over ${MAX_BODY} bytes`),
          () => aborted,
        );
        return;
      }
      // The chunk dies when this callback returns: copy it.
      chunks.push(Buffer.from(chunk.slice(0)));
      if (isLast) void run(Buffer.concat(chunks));
    });
  }

  #fail(res: uWS.HttpResponse, error: unknown, isAborted: () => boolean = () => false): void {
    if (isAborted()) return;
    const known = error instanceof ChargestreamError ? error : null;
    const code: ErrorCode = known?.code ?? 'INTERNAL';
    const status = (known !== null ? STATUS[known.code] : undefined) ?? '500 Internal Server Error';
    if (known === null) this.#options.log.error({ err: errorMessage(error) }, 'api handler failed');
    const message = known?.message ?? 'internal error';
    res.cork(() => {
      res
        .writeStatus(status)
        .writeHeader('Content-Type', 'application/json')
        .end(JSON.stringify({ error: { code, message } }));
    });
  }
}

function contentType(format: string): string {
  if (/^JSON(EachRow|Lines|CompactEachRow|StringsEachRow)/i.test(format))
    return 'application/x-ndjson';
  if (/^JSON/i.test(format)) return 'application/json';
  if (/^CSV/i.test(format)) return 'text/csv';
  return 'text/plain; charset=utf-8';
}
