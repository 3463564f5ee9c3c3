import uWS from 'uWebSockets.js';
import { listen } from '../lib/uws.js';
import type { Logger } from 'pino';
import { ChargestreamError, errorMessage, type ErrorCode } from '../lib/errors.js';
import type { Store } from '../store/store.js';
import type { ApiKeys, Caller } from './auth.js';
import { checkReadOnlySql } from './sql-guard.js';
import type { Network } from '../config/network.js';
import { mayUse, Scope, type Owners, type RouteId } from './access.js';
import { BillingApi, type Reply, type Request } from './billing-api.js';
import { ConfigApi } from './config-api.js';
import type { ConfigService } from '../config/config-changes.js';
import { ENTITY_KINDS } from '../config/live-network.js';

export interface ApiOptions {
  readonly host: string;
  readonly port: number;
  /** Null where no store runs in this process (a gateway-only process). */
  readonly store: Store | null;
  readonly keys: ApiKeys;
  readonly log: Logger;
  /** The configuration API's changes; absent: the configuration is read-only here. */
  readonly config?: ConfigService;
  /** The network in force (organizations, customers); default the one the keys came from. */
  readonly network?: () => Network;
  /** Ready when the engine accepts and processes events (for /readyz). */
  readonly ready: () => boolean;
  /** Prometheus text exposition of the engine's metrics. */
  readonly metrics: () => Promise<string>;
  /** S8: a failed session sent to be rated again; absent where this process has no bus. */
  readonly retry?: (
    sessionId: string,
    sees: (owners: Owners) => boolean,
  ) => Promise<{ status: string; body: object }>;
  /** Engine-initiated OCPP calls; absent where no gateway runs in this process. */
  readonly commands?: (request: {
    chargerId: string;
    action: string;
    body: Buffer;
    timeoutMs: number;
    caller: Caller;
  }) => Promise<{ status: string; body: object }>;
}

const MAX_BODY = 1024 * 1024;

const STATUS: Readonly<Partial<Record<ErrorCode, string>>> = {
  UNAUTHORIZED: '401 Unauthorized',
  FORBIDDEN: '403 Forbidden',
  BAD_REQUEST: '400 Bad Request',
  NOT_FOUND: '404 Not Found',
  SQL_NOT_READ_ONLY: '400 Bad Request',
  SQL_FAILED: '400 Bad Request',
  PAYLOAD_TOO_LARGE: '413 Payload Too Large',
  CHARGER_OFFLINE: '409 Conflict',
  NOT_A_COMMAND: '400 Bad Request',
  INVALID_PAYLOAD: '400 Bad Request',
  CHARGER_CALL_ERROR: '502 Bad Gateway',
  CHARGER_TIMEOUT: '504 Gateway Timeout',
  CHARGER_BUSY: '429 Too Many Requests',
  SESSION_NOT_FAILED: '409 Conflict',
  NO_BUS: '503 Service Unavailable',
  STORE_QUERY_FAILED: '500 Internal Server Error',
  ORGANIZATION_NOT_RELATED: '403 Forbidden',
  CONFIG_INVALID: '400 Bad Request',
  CONFIG_IN_USE: '409 Conflict',
  SESSION_NOT_FOUND: '404 Not Found',
  CUSTOMER_NOT_FOUND: '404 Not Found',
  ORGANIZATION_NOT_FOUND: '404 Not Found',
  SESSION_ONGOING: '409 Conflict',
  SESSION_NOT_BILLED: '409 Conflict',
  SESSION_NOT_CURRENT_MONTH: '409 Conflict',
  SESSION_ALREADY_CANCELLED: '409 Conflict',
  SESSION_ALREADY_UPDATED: '409 Conflict',
  ROAMING_SESSION: '409 Conflict',
  REASON_REQUIRED: '400 Bad Request',
  INVALID_AMOUNT: '400 Bad Request',
  REQUEST_ID_REQUIRED: '400 Bad Request',
  REQUEST_ID_CONFLICT: '409 Conflict',
  REFUND_EXCEEDS_CHARGED: '409 Conflict',
  INVOICE_NOT_ISSUED: '409 Conflict',
  INVALID_PERIOD: '400 Bad Request',
};

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** The HTTP API on uWebSockets.js. Errors are JSON `{ error: { code, message } }`. */
export class Api {
  readonly #options: ApiOptions;
  readonly #app: uWS.TemplatedApp;
  #listenSocket: uWS.us_listen_socket | null = null;
  readonly #billing: BillingApi;

  constructor(options: ApiOptions) {
    this.#options = options;
    const network = options.network ?? (() => options.keys.network);
    this.#billing = new BillingApi(options.store, network);
    const billing = this.#billing;
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
        // The key is checked before any body is read: no buffering for strangers.
        const caller = this.#caller(res, req.getHeader('authorization'), 'sql');
        if (caller === null) return;
        const format = req.getQuery('format') ?? '';
        // SQL reads every organization's rows: the network's operators only (others use the
        // routes scoped by organization).
        const org = network().organizations.find((o) => o.id === caller.organization);
        if (org === undefined || org.parent != null || org.type !== 'cpo') {
          this.#fail(
            res,
            new ChargestreamError(
              'ORGANIZATION_NOT_RELATED',
              `the SQL endpoint reads the whole store: only keys of a top-level CPO organization may use it (${caller.organization} is not one); use the routes scoped by organization`,
            ),
          );
          return;
        }
        this.#respond(res, true, (body) => this.#sql(body, format));
      })
      .post('/api/v1/chargers/:id/commands/:action', (res, req) => {
        const caller = this.#caller(res, req.getHeader('authorization'), 'charger.command');
        if (caller === null) return;
        const chargerId = safeDecode(req.getParameter(0));
        const action = req.getParameter(1);
        const timeoutMs = Number(req.getQuery('timeoutMs') ?? 30_000);
        this.#respond(res, true, async (body) => {
          if (options.commands === undefined)
            throw new ChargestreamError('NOT_FOUND', 'no gateway runs in this process');
          if (!Number.isInteger(timeoutMs) || timeoutMs < 100 || timeoutMs > 300_000) {
            throw new ChargestreamError(
              'BAD_REQUEST',
              'timeoutMs: must be a whole number from 100 to 300000',
            );
          }
          const reply = await options.commands({ chargerId, action, body, timeoutMs, caller });
          return {
            status: reply.status,
            type: 'application/json',
            body: JSON.stringify(reply.body),
          };
        });
      })
      .post('/api/v1/sessions/:id/retry', (res, req) => {
        const caller = this.#caller(res, req.getHeader('authorization'), 'session.retry');
        if (caller === null) return;
        const sessionId = safeDecode(req.getParameter(0));
        const scope = new Scope(network(), caller);
        this.#respond(res, false, async () => {
          if (options.retry === undefined)
            throw new ChargestreamError(
              'NO_BUS',
              'no bus in this process: ask a processor, or give --kafka',
            );
          const reply = await options.retry(sessionId, (owners) => scope.sees(owners));
          return {
            status: reply.status,
            type: 'application/json',
            body: JSON.stringify(reply.body),
          };
        });
      })
      .get(
        '/api/v1/sessions',
        this.#route('session.list', 0, false, (r) => billing.listSessions(r)),
      )
      .get(
        '/api/v1/sessions/:id',
        this.#route('session.read', 1, false, (r) => billing.getSession(r)),
      )
      .get(
        '/api/v1/cdrs',
        this.#route('cdr.list', 0, false, (r) => billing.listCdrs(r)),
      )
      .post(
        '/api/v1/sessions/:id/cancel',
        this.#route('session.cancel', 1, true, (r) => billing.cancel(r)),
      )
      .post(
        '/api/v1/sessions/:id/refund',
        this.#route('session.refund', 1, true, (r) => billing.refund(r)),
      )
      .get(
        '/api/v1/sessions/:id/invoice',
        this.#route('session.invoice', 1, false, (r) => billing.invoice(r)),
      )
      .get(
        '/api/v1/statements/driver/:id',
        this.#route('statement.driver', 1, false, (r) => billing.driverStatement(r)),
      )
      .get(
        '/api/v1/statements/account/:id',
        this.#route('statement.account', 1, false, (r) => billing.accountStatement(r)),
      );
    if (options.config !== undefined) this.#configRoutes(new ConfigApi(options.config));
    this.#app.any('/*', (res) => {
      this.#fail(res, new ChargestreamError('NOT_FOUND', 'no such route'));
    });
  }

  async listen(): Promise<number> {
    const { socket, port } = await listen(this.#app, this.#options.host, this.#options.port);
    this.#listenSocket = socket;
    return port;
  }

  close(): void {
    if (this.#listenSocket !== null) uWS.us_listen_socket_close(this.#listenSocket);
    this.#listenSocket = null;
  }

  /** The configuration API, one set of routes per kind (docs/api.md). */
  #configRoutes(api: ConfigApi): void {
    for (const kind of ENTITY_KINDS) {
      this.#app
        .get(
          `/api/v1/${kind}`,
          this.#route('config.read', 0, false, (r) => api.list(kind, r)),
        )
        .get(
          `/api/v1/${kind}/:id`,
          this.#route('config.read', 1, false, (r) => api.get(kind, r)),
        )
        .put(
          `/api/v1/${kind}/:id`,
          this.#route('config.write', 1, true, (r) => api.put(kind, r)),
        )
        .del(
          `/api/v1/${kind}/:id`,
          this.#route('config.write', 1, false, (r) => api.delete(kind, r)),
        );
    }
  }

  /**
   * A route of `ROUTE_ROLES`: the key and role checked before the body is read, the request
   * copied out of uWS's `req` (it dies at the first await), then the handler.
   */
  #route(
    route: RouteId,
    params: number,
    readBody: boolean,
    handler: (request: Request) => Promise<Reply>,
  ): (res: uWS.HttpResponse, req: uWS.HttpRequest) => void {
    return (res, req) => {
      const caller = this.#caller(res, req.getHeader('authorization'), route);
      if (caller === null) return;
      const request = {
        caller,
        params: Array.from({ length: params }, (_, i) => safeDecode(req.getParameter(i) ?? '')),
        query: new URLSearchParams(req.getQuery() ?? ''),
        accept: req.getHeader('accept'),
      };
      this.#respond(res, readBody, (body) => handler({ ...request, body }));
    };
  }

  /** The caller, or null after answering 401/403. */
  #caller(res: uWS.HttpResponse, authorization: string, route: RouteId): Caller | null {
    try {
      return this.#authorize(authorization, route);
    } catch (error) {
      this.#fail(res, error);
      return null;
    }
  }

  #authorize(authorization: string, route: RouteId): Caller {
    const caller = this.#options.keys.caller(authorization);
    if (caller === null)
      throw new ChargestreamError(
        'UNAUTHORIZED',
        'a valid API key is required (Authorization: Bearer <key>)',
      );
    if (!mayUse(route, caller.role))
      throw new ChargestreamError(
        'FORBIDDEN',
        `role ${caller.role} may not use this route (${route})`,
      );
    return caller;
  }

  async #sql(body: Buffer, formatParam: string): Promise<{ type: string; body: string }> {
    const format = formatParam === '' ? 'JSONEachRow' : formatParam;
    if (!/^[A-Za-z0-9]{1,64}$/.test(format))
      throw new ChargestreamError('BAD_REQUEST', `format: not a ClickHouse format name: ${format}`);
    const verdict = checkReadOnlySql(body.toString('utf8'));
    if (!verdict.ok) throw new ChargestreamError('SQL_NOT_READ_ONLY', verdict.reason);
    const store = this.#options.store;
    if (store === null)
      throw new ChargestreamError(
        'NOT_FOUND',
        'no store in this process: ask a processor or api process',
      );
    const result = await store.analystQuery(verdict.sql, format);
    return { type: contentType(format), body: result };
  }

  /** Reads the body (bounded), runs the handler, writes its result or a JSON error. */
  #respond(
    res: uWS.HttpResponse,
    readBody: boolean,
    handler: (body: Buffer) => Promise<{ status?: string; type: string; body: string }>,
  ): void {
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    // A handler that throws before its first await is a refusal too, never a crash.
    const run = (body: Buffer) =>
      Promise.resolve(body)
        .then(handler)
        .then(
          (result) => {
            if (aborted) return;
            res.cork(() => {
              res
                .writeStatus(result.status ?? '200 OK')
                .writeHeader('Content-Type', result.type)
                .end(result.body);
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
