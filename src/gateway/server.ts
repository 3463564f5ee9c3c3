import uWS from 'uWebSockets.js';
import type { Logger } from 'pino';
import type { Bus } from '../bus/bus.js';
import type { NetworkIndex } from '../config/network-index.js';
import { errorMessage } from '../lib/errors.js';
import {
  CALL,
  callError,
  callResult,
  parseFrame,
  formatViolation,
  type OcppVersion,
  type RpcErrorCode,
} from '../ocpp/rpc.js';
import { handleCall, type ActionContext, type ProtocolTable } from '../ocpp/actions.js';
import { V16 } from '../ocpp/v16/actions.js';
import { V201 } from '../ocpp/v201/actions.js';
import { checkCredentials, isValidIdentity, type UpgradeRefusal } from './credentials.js';
import type { TransactionRegistry } from './transactions.js';

export interface GatewayOptions {
  readonly host: string;
  readonly port: number;
  readonly index: NetworkIndex;
  readonly transactions: TransactionRegistry;
  readonly bus: Bus;
  readonly log: Logger;
  readonly heartbeatIntervalS?: number;
  /** Frames above this size close the connection (uWS closes with 1009). */
  readonly maxFrameBytes?: number;
}

interface Connection {
  readonly chargerId: string;
  readonly protocol: OcppVersion;
  closed: boolean;
}

/** In order of preference when a charger offers several. */
const SUPPORTED: readonly OcppVersion[] = ['ocpp2.0.1', 'ocpp1.6'];
const TABLES: Readonly<Record<OcppVersion, ProtocolTable>> = { 'ocpp1.6': V16, 'ocpp2.0.1': V201 };

/**
 * The OCPP endpoint, `ws://HOST:PORT/ocpp/{chargerId}`, on uWebSockets.js. It authenticates at
 * upgrade, answers what it can from memory, and acknowledges transaction messages only once
 * the bus has made their event durable.
 */
export class Gateway {
  readonly #options: GatewayOptions;
  readonly #context: ActionContext;
  readonly #app: uWS.TemplatedApp;
  readonly #connections = new Map<string, uWS.WebSocket<Connection>>();
  #listenSocket: uWS.us_listen_socket | null = null;
  readonly stats = {
    connections: 0,
    framesIn: 0,
    framesOut: 0,
    acks: 0,
    callErrors: new Map<string, number>(),
    refusals: new Map<UpgradeRefusal | 'no_subprotocol', number>(),
    dropped: 0,
  };

  constructor(options: GatewayOptions) {
    this.#options = options;
    this.#context = {
      index: options.index,
      transactions: options.transactions,
      heartbeatIntervalS: options.heartbeatIntervalS ?? 300,
      // Chargers of the network are accepted; auto-registered ones wait for an operator.
      registration: (chargerId) => (options.index.chargers.has(chargerId) ? 'Accepted' : 'Pending'),
    };
    this.#app = uWS.App().ws<Connection>('/ocpp/:chargerId', {
      compression: uWS.DISABLED,
      maxPayloadLength: options.maxFrameBytes ?? 64 * 1024,
      maxBackpressure: 256 * 1024,
      idleTimeout: 120,
      sendPingsAutomatically: true,
      upgrade: (res, req, context) => this.#upgrade(res, req, context),
      open: (ws) => this.#open(ws),
      message: (ws, message, isBinary) => this.#message(ws, message, isBinary),
      close: (ws) => this.#close(ws),
    });
    this.#app.any('/*', (res) => {
      res.writeStatus('404 Not Found').end('chargers connect to /ocpp/{chargerId}');
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
    for (const ws of this.#connections.values()) ws.end(1001, 'server shutting down');
    this.#connections.clear();
  }

  get connected(): number {
    return this.#connections.size;
  }

  #upgrade(res: uWS.HttpResponse, req: uWS.HttpRequest, context: uWS.us_socket_context_t): void {
    let chargerId: string;
    try {
      chargerId = decodeURIComponent(req.getParameter(0));
    } catch {
      chargerId = '';
    }
    const offered = req
      .getHeader('sec-websocket-protocol')
      .split(',')
      .map((p) => p.trim());
    const protocol = SUPPORTED.find((p) => offered.includes(p));
    const charger = this.#options.index.chargers.get(chargerId);
    let refusal: UpgradeRefusal | 'no_subprotocol' | null = null;
    if (!isValidIdentity(chargerId)) refusal = 'bad_identity';
    else if (charger === undefined && !this.#options.index.network.settings.autoRegisterChargers)
      refusal = 'unknown_charger';
    else if (charger !== undefined)
      refusal = checkCredentials(charger, chargerId, req.getHeader('authorization'));
    if (refusal === null && protocol === undefined) refusal = 'no_subprotocol';
    if (refusal !== null) {
      this.stats.refusals.set(refusal, (this.stats.refusals.get(refusal) ?? 0) + 1);
      const status = REFUSAL_STATUS[refusal];
      res.cork(() => {
        res.writeStatus(status);
        if (refusal === 'missing_credentials' || refusal === 'bad_credentials') {
          res.writeHeader('WWW-Authenticate', 'Basic realm="ocpp"');
        }
        res.end(refusal);
      });
      return;
    }
    res.upgrade<Connection>(
      { chargerId, protocol: protocol!, closed: false },
      req.getHeader('sec-websocket-key'),
      protocol!,
      req.getHeader('sec-websocket-extensions'),
      context,
    );
  }

  #open(ws: uWS.WebSocket<Connection>): void {
    const connection = ws.getUserData();
    // An authenticated reconnect replaces a stale connection of the same charger (a
    // half-open socket the charger has already given up on).
    const previous = this.#connections.get(connection.chargerId);
    if (previous !== undefined) {
      previous.getUserData().closed = true;
      previous.end(4000, 'replaced by a new connection');
    }
    this.#connections.set(connection.chargerId, ws);
    this.stats.connections += 1;
  }

  #close(ws: uWS.WebSocket<Connection>): void {
    const connection = ws.getUserData();
    const wasReplaced = connection.closed;
    connection.closed = true;
    if (!wasReplaced && this.#connections.get(connection.chargerId) === ws)
      this.#connections.delete(connection.chargerId);
  }

  #message(ws: uWS.WebSocket<Connection>, message: ArrayBuffer, isBinary: boolean): void {
    const connection = ws.getUserData();
    this.stats.framesIn += 1;
    if (isBinary) {
      this.#error(
        ws,
        connection,
        '-1',
        formatViolation(connection.protocol),
        'OCPP-J frames are text',
      );
      return;
    }
    // The ArrayBuffer dies when this callback returns: decode (copy) it first.
    const text = Buffer.from(message).toString('utf8');
    const parsed = parseFrame(text, connection.protocol);
    if (!parsed.ok) {
      this.#error(ws, connection, parsed.id, parsed.code, parsed.description);
      return;
    }
    const frame = parsed.frame;
    if (frame.type !== CALL) return; // Answers to engine-initiated calls: none are sent yet.
    const receivedAt = Date.now();
    let outcome;
    try {
      outcome = handleCall(
        TABLES[connection.protocol],
        frame.action,
        frame.payload,
        connection.chargerId,
        receivedAt,
        this.#context,
      );
    } catch (error) {
      this.#options.log.error({ err: errorMessage(error), action: frame.action }, 'handler failed');
      this.#error(
        ws,
        connection,
        frame.id,
        'InternalError',
        'the central system failed to handle the call',
      );
      return;
    }
    switch (outcome.kind) {
      case 'reply':
        this.#send(ws, connection, callResult(frame.id, outcome.payload));
        return;
      case 'error':
        this.#error(ws, connection, frame.id, outcome.code, outcome.description);
        return;
      case 'durable': {
        const { event, payload } = outcome;
        this.#options.bus.publish(event).then(
          () => {
            if (event.kind === 'tx_stopped' && !event.orphan)
              this.#options.transactions.ended(event.chargerId, event.transactionId);
            this.stats.acks += 1;
            this.#send(ws, connection, callResult(frame.id, payload));
          },
          (error: unknown) => {
            // Not durable, so not acknowledged: the charger retries the message.
            this.#options.log.error({ err: errorMessage(error) }, 'event not durable');
            this.#error(
              ws,
              connection,
              frame.id,
              'InternalError',
              'the event could not be stored; retry',
            );
          },
        );
      }
    }
  }

  #error(
    ws: uWS.WebSocket<Connection>,
    connection: Connection,
    id: string,
    code: RpcErrorCode,
    description: string,
  ): void {
    this.stats.callErrors.set(code, (this.stats.callErrors.get(code) ?? 0) + 1);
    this.#send(ws, connection, callError(id, code, description));
  }

  /** Sends unless the socket closed meanwhile (a late bus acknowledgement must not throw). */
  #send(ws: uWS.WebSocket<Connection>, connection: Connection, text: string): void {
    if (connection.closed) return;
    const status = ws.send(text, false);
    this.stats.framesOut += 1;
    // 2: dropped at the backpressure limit. The charger times out and retries the call.
    if (status === 2) this.stats.dropped += 1;
  }
}

const REFUSAL_STATUS: Readonly<Record<UpgradeRefusal | 'no_subprotocol', string>> = {
  unknown_charger: '404 Not Found',
  bad_identity: '400 Bad Request',
  missing_credentials: '401 Unauthorized',
  bad_credentials: '401 Unauthorized',
  no_subprotocol: '400 Bad Request',
};
