import uWS from 'uWebSockets.js';
import { listen } from '../lib/uws.js';
import type { Logger } from 'pino';
import type { Bus } from '../bus/bus.js';
import { expirationsAt, type NetworkIndex } from '../config/network-index.js';
import type { ChargerEvent, StationChanged } from '../ocpp/events.js';
import { errorMessage } from '../lib/errors.js';
import type { Tally } from '../metrics/registry.js';
import {
  handleCall,
  type ActionContext,
  type CallOutcome,
  type ProtocolTable,
} from '../ocpp/actions.js';
import {
  CALL,
  CALLRESULT,
  callError,
  callResult,
  formatViolation,
  parseFrame,
  type OcppVersion,
  type RpcErrorCode,
} from '../ocpp/rpc.js';
import { V16 } from '../ocpp/v16/actions.js';
import { V201 } from '../ocpp/v201/actions.js';
import { checkCredentials, isValidIdentity, type UpgradeRefusal } from './credentials.js';
import { OutboundCalls, type CommandResult } from './outbound.js';
import { provisioningCalls } from './provisioning.js';
import { FailureLimiter, TokenBucket } from './rate-limit.js';
import type { TransactionRegistry } from './transactions.js';
import { LiveCosts } from './live-costs.js';
import type { LiveCost } from '../sessions/process-batch.js';

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
  /** Seconds without a frame or pong before a connection counts as dead (half-open). */
  readonly idleTimeoutS?: number;
  /** CALLs per second a connection may send, and the burst above it. */
  readonly callsPerSecond?: number;
  readonly callBurst?: number;
  /**
   * Distributed mode: waits until other gateways' transaction changes are applied, so that a
   * stop whose start went through another gateway a moment ago still finds its connector.
   */
  readonly settleTransactions?: () => Promise<void>;
  /**
   * Embedded mode: the session the store holds for a transaction this gateway does not know as
   * running — a stop resent after a restart (R2): its connector, and when it ended (null:
   * running). Only running transactions are restored at start.
   */
  readonly findSession?: (
    chargerId: string,
    transactionId: string,
  ) => Promise<{ connectorId: number; endedAt: number | null } | undefined>;
  /** The outcome of each provisioning call (H1), for the record. */
  readonly onProvisioningResult?: (
    chargerId: string,
    action: string,
    payload: object,
    result: CommandResult,
  ) => void;
  /** PEM certificate and key: wss:// (security profile 2). */
  readonly tls?: { readonly cert: string; readonly key: string } | null;
  /** Per-frame metrics; absent, they are not taken (to measure what they cost). */
  readonly frameMetrics?: FrameMetrics;
  /** R5.1: CostUpdated at most this often per 2.0.1 transaction (s); 0 never. Default 60. */
  readonly costUpdatedIntervalS?: number;
  /** How long the answer to a 2.0.1 Ended event waits for its final cost. Default 10 s. */
  readonly finalCostWaitMs?: number;
}

/** What the gateway measures per frame, for /metrics. */
export interface FrameMetrics {
  /** Frames received: CALLs by action, answers to the engine's calls as CALLRESULT / CALLERROR. */
  readonly framesIn: Tally;
  /** Frames sent: answers by the action answered, CALLERROR, the engine's CALLs by action. */
  readonly framesOut: Tally;
  /** Seconds from a transaction message's arrival to its acknowledgement. */
  readonly ackLatency: { observe(seconds: number): void };
}

interface Connection {
  readonly chargerId: string;
  readonly protocol: OcppVersion;
  /** The charger proved its identity (credentials configured and checked). */
  readonly authenticated: boolean;
  /** A BootNotification of this connection was accepted. */
  booted: boolean;
  closed: boolean;
  /** Events published and not yet acknowledged (OCPP allows one outstanding CALL). */
  inFlight: number;
  bucket: TokenBucket | null;
  outbound: OutboundCalls | null;
  /** The charger refused CostUpdated as not implemented or not supported: not sent again. */
  noCostUpdated?: boolean;
}

type Refusal = UpgradeRefusal | 'no_subprotocol' | 'identity_in_use' | 'too_many_failures';

const MAX_IN_FLIGHT = 8;

/** In order of preference when a charger offers several. */
const SUPPORTED: readonly OcppVersion[] = ['ocpp2.0.1', 'ocpp1.6'];
const TABLES: Readonly<Record<OcppVersion, ProtocolTable>> = { 'ocpp1.6': V16, 'ocpp2.0.1': V201 };

/** Engine-initiated actions the API may send, per version (the CSMS side of each protocol). */
export const COMMANDS: Readonly<Record<OcppVersion, ReadonlySet<string>>> = {
  'ocpp1.6': new Set([
    'ChangeConfiguration',
    'GetConfiguration',
    'RemoteStartTransaction',
    'RemoteStopTransaction',
    'Reset',
    'TriggerMessage',
    'UnlockConnector',
    'ChangeAvailability',
    'ClearCache',
    'ReserveNow',
    'CancelReservation',
    'DataTransfer',
  ]),
  'ocpp2.0.1': new Set([
    'SetVariables',
    'GetVariables',
    'GetBaseReport',
    'RequestStartTransaction',
    'RequestStopTransaction',
    'GetTransactionStatus',
    'Reset',
    'TriggerMessage',
    'UnlockConnector',
    'ChangeAvailability',
    'CostUpdated',
    'DataTransfer',
  ]),
};

export type CommandRefusal =
  | { readonly refused: 'offline' }
  | {
      readonly refused: 'not_a_command';
      readonly protocol: OcppVersion;
      readonly allowed: readonly string[];
    }
  | {
      readonly refused: 'invalid_payload';
      readonly protocol: OcppVersion;
      readonly reason: string;
    };

/**
 * The OCPP endpoint, `ws://HOST:PORT/ocpp/{chargerId}`, on uWebSockets.js, for 1.6J and 2.0.1.
 * It authenticates at the upgrade, answers what it can from memory, acknowledges transaction
 * messages only once the bus has made their event durable, and carries the engine's own
 * CALLs to chargers, one at a time per connection.
 *
 * Same identity twice: a charger with credentials that connects again replaces its old
 * connection (a half-open socket it gave up on must not lock it out, and only the charger
 * knows its password); a charger without credentials cannot prove who it is, so a second
 * connection is refused (409) while the first is alive — never an unauthenticated takeover.
 */
export class Gateway {
  readonly #options: GatewayOptions;
  #context: ActionContext;
  #index: NetworkIndex;
  readonly #app: uWS.TemplatedApp;
  readonly #connections = new Map<string, uWS.WebSocket<Connection>>();
  readonly #failures = new FailureLimiter(60, 60_000);
  /** S2: starts awaited per charger and token: where their ready session is, until when. */
  readonly #awaited = new Map<string, Map<string, { connectorId: number; until: number }>>();
  /** R2: stops being made durable, per charger|transaction (a copy meanwhile waits for them). */
  readonly #stopping = new Map<string, Promise<void>>();
  #listenSocket: uWS.us_listen_socket | null = null;
  /** R5.1: the rated costs of 2.0.1 transactions, for totalCost and CostUpdated. */
  readonly costs: LiveCosts;
  readonly stats = {
    connections: 0,
    framesIn: 0,
    framesOut: 0,
    acks: 0,
    callErrors: new Map<string, number>(),
    refusals: new Map<Refusal, number>(),
    dropped: 0,
    peakBufferedBytes: 0,
    /** Sends queued behind unsent data (a slow reader): backpressure. */
    backpressured: 0,
    rateLimited: 0,
  };

  constructor(options: GatewayOptions) {
    this.#options = options;
    this.#index = options.index;
    this.costs = new LiveCosts(options.costUpdatedIntervalS ?? 60);
    this.#context = {
      index: options.index,
      transactions: options.transactions,
      heartbeatIntervalS: options.heartbeatIntervalS ?? 300,
      // Chargers of the network are accepted; auto-registered ones wait for an operator.
      registration: (chargerId) => (this.#index.chargers.has(chargerId) ? 'Accepted' : 'Pending'),
    };
    // TLS is uSockets' (OpenSSL): its defaults refuse protocols below TLS 1.2 on this platform.
    const app =
      options.tls == null
        ? uWS.App()
        : uWS.SSLApp({ cert_file_name: options.tls.cert, key_file_name: options.tls.key });
    this.#app = app.ws<Connection>('/ocpp/:chargerId', {
      compression: uWS.DISABLED,
      maxPayloadLength: options.maxFrameBytes ?? 64 * 1024,
      // A charger that stops reading hits this bound; sends past it are dropped and counted.
      maxBackpressure: 256 * 1024,
      idleTimeout: options.idleTimeoutS ?? 120,
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

  async listen(): Promise<number> {
    const { socket, port } = await listen(this.#app, this.#options.host, this.#options.port);
    this.#listenSocket = socket;
    return port;
  }

  /** Stops accepting connections, then closes the open ones (graceful shutdown, first step). */
  close(): void {
    if (this.#listenSocket !== null) uWS.us_listen_socket_close(this.#listenSocket);
    this.#listenSocket = null;
    for (const ws of [...this.#connections.values()]) ws.end(1001, 'server shutting down');
    this.#connections.clear();
  }

  get connected(): number {
    return this.#connections.size;
  }

  /**
   * Open connections by protocol and state (`pending`: the charger awaits registration;
   * `booted`: a BootNotification was accepted; `connected`: not booted yet). Counted when
   * asked, not kept per frame.
   */
  connectionStates(): Array<[{ protocol: string; state: string }, number]> {
    const counts = new Map<string, number>();
    // Every combination has its series, also at zero.
    for (const protocol of SUPPORTED)
      for (const state of ['connected', 'booted', 'pending']) counts.set(`${protocol}|${state}`, 0);
    for (const ws of this.#connections.values()) {
      const c = ws.getUserData();
      const state =
        this.#context.registration(c.chargerId) !== 'Accepted'
          ? 'pending'
          : c.booted
            ? 'booted'
            : 'connected';
      const key = `${c.protocol}|${state}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    return [...counts].map(([key, n]) => {
      const [protocol, state] = key.split('|') as [string, string];
      return [{ protocol, state }, n];
    });
  }

  /**
   * R5.1: costs the processor rated for 2.0.1 transactions (any charger; those of chargers
   * held elsewhere are ignored). Running costs due are sent as CostUpdated.
   */
  costsRated(costs: readonly LiveCost[]): void {
    const held = costs.filter((c) => this.#connections.has(c.chargerId));
    if (held.length === 0) return;
    for (const cost of this.costs.update(held, Date.now())) {
      const connection = this.#connections.get(cost.chargerId)?.getUserData();
      if (connection === undefined || connection.noCostUpdated === true) continue;
      // Short: the one outstanding call per connection is not held long by a silent charger.
      const sent = this.command(
        cost.chargerId,
        'CostUpdated',
        { totalCost: Number(cost.totalCost), transactionId: cost.transactionId },
        10_000,
      );
      if ('refused' in sent) continue;
      this.costs.stats.costUpdatedSent += 1;
      void sent.then((result) => {
        if (result.errorCode === 'NotImplemented' || result.errorCode === 'NotSupported')
          connection.noCostUpdated = true;
      });
    }
  }

  /**
   * A new configuration (the configuration API): authorization, registration and expirations
   * use it from the next frame on. Connections of chargers it removed stay open until they
   * close; their next connection is refused.
   */
  setIndex(index: NetworkIndex): void {
    this.#index = index;
    this.#context = { ...this.#context, index };
  }

  /** Whether this process holds the charger's connection. */
  holds(chargerId: string): boolean {
    return this.#connections.has(chargerId);
  }

  /**
   * Sends an engine-initiated CALL to a connected charger and waits for its answer. The
   * payload is checked against the official request schema of the charger's version first.
   */
  command(
    chargerId: string,
    action: string,
    payload: object,
    timeoutMs = 30_000,
  ): CommandRefusal | Promise<CommandResult> {
    const ws = this.#connections.get(chargerId);
    if (ws === undefined) return { refused: 'offline' };
    const connection = ws.getUserData();
    const table = TABLES[connection.protocol];
    const allowed = COMMANDS[connection.protocol];
    if (!allowed.has(action))
      return { refused: 'not_a_command', protocol: connection.protocol, allowed: [...allowed] };
    const validate = table.requests.get(action);
    if (validate !== undefined && !validate(payload)) {
      const error = validate.errors?.[0];
      return {
        refused: 'invalid_payload',
        protocol: connection.protocol,
        reason: `${error?.instancePath || 'payload'} ${error?.message ?? 'is invalid'}`,
      };
    }
    const result = connection.outbound!.call(
      action,
      payload,
      timeoutMs,
      table.responses.get(action),
    );
    if (action === 'RemoteStartTransaction' || action === 'RequestStartTransaction') {
      void result.then((r) => {
        if (r.status !== 'accepted' || (r.response as { status?: string }).status !== 'Accepted')
          return;
        const p = payload as {
          idTag?: string;
          idToken?: { idToken?: string };
          connectorId?: number;
          evseId?: number;
        };
        this.#awaitStart(
          chargerId,
          p.idTag ?? p.idToken?.idToken ?? '',
          'remote_start',
          p.connectorId ?? p.evseId,
        );
      });
    }
    return result;
  }

  #upgrade(res: uWS.HttpResponse, req: uWS.HttpRequest, context: uWS.us_socket_context_t): void {
    const source = Buffer.from(res.getRemoteAddressAsText()).toString();
    const now = Date.now();
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
    const charger = this.#index.chargers.get(chargerId);
    const hasCredentials = charger?.password !== undefined || charger?.passwordHash !== undefined;
    let refusal: Refusal | null = null;
    if (this.#failures.blocked(source, now)) refusal = 'too_many_failures';
    else if (!isValidIdentity(chargerId)) refusal = 'bad_identity';
    else if (charger === undefined && !this.#index.network.settings.autoRegisterChargers)
      refusal = 'unknown_charger';
    else if (charger !== undefined)
      refusal = checkCredentials(charger, chargerId, req.getHeader('authorization'));
    if (refusal === null && protocol === undefined) refusal = 'no_subprotocol';
    if (refusal === null && !hasCredentials && this.#connections.has(chargerId))
      refusal = 'identity_in_use';
    if (refusal !== null) {
      if (
        refusal !== 'no_subprotocol' &&
        refusal !== 'too_many_failures' &&
        refusal !== 'identity_in_use'
      ) {
        this.#failures.failed(source, now);
      }
      this.stats.refusals.set(refusal, (this.stats.refusals.get(refusal) ?? 0) + 1);
      const status = REFUSAL_STATUS[refusal];
      res.cork(() => {
        res.writeStatus(status);
        if (refusal === 'missing_credentials' || refusal === 'bad_credentials')
          res.writeHeader('WWW-Authenticate', 'Basic realm="ocpp"');
        res.end(refusal);
      });
      return;
    }
    res.upgrade<Connection>(
      {
        chargerId,
        protocol: protocol!,
        authenticated: hasCredentials,
        booted: false,
        closed: false,
        inFlight: 0,
        bucket: null,
        outbound: null,
      },
      req.getHeader('sec-websocket-key'),
      protocol!,
      req.getHeader('sec-websocket-extensions'),
      context,
    );
  }

  #open(ws: uWS.WebSocket<Connection>): void {
    const connection = ws.getUserData();
    connection.bucket = new TokenBucket(
      this.#options.callsPerSecond ?? 20,
      this.#options.callBurst ?? 100,
      Date.now(),
    );
    connection.outbound = new OutboundCalls(
      (text, action) => this.#send(ws, connection, text, action),
      'cs-',
    );
    const previous = this.#connections.get(connection.chargerId);
    if (previous !== undefined) {
      const old = previous.getUserData();
      old.closed = true;
      old.outbound?.close();
      previous.end(4000, 'replaced by a new connection');
    }
    this.#connections.set(connection.chargerId, ws);
    this.stats.connections += 1;
    this.#station(connection.chargerId, 'connected', { protocol: connection.protocol });
  }

  /** N1 charger scope, published only when a notification rule asks for it. */
  #station(
    chargerId: string,
    change: StationChanged['change'],
    details: Record<string, string>,
  ): void {
    if (!this.#index.rules.has(`station_${change}`)) return;
    this.#inform({
      kind: 'station',
      chargerId,
      connectorId: 0,
      receivedAt: Date.now(),
      change,
      details,
    });
  }

  /**
   * S1/S2: an authorized start (Authorize, or a remote start the charger accepted) is awaited:
   * a ready session on its connector — the one named, else the charger's only one, else
   * connector 0 — until the start comes or the ready-session expiration passes.
   */
  #awaitStart(chargerId: string, tokenId: string, origin: string, connectorId?: number): void {
    if (tokenId === '') return;
    const index = this.#index;
    const charger = index.chargers.get(chargerId);
    const connector =
      connectorId ?? (charger?.connectors.length === 1 ? charger.connectors[0]!.id : 0);
    const token = tokenId.toUpperCase();
    const now = Date.now();
    let ofCharger = this.#awaited.get(chargerId);
    if (ofCharger === undefined) {
      ofCharger = new Map<string, { connectorId: number; until: number }>();
      this.#awaited.set(chargerId, ofCharger);
    }
    for (const [key, awaited] of ofCharger) if (awaited.until < now) ofCharger.delete(key);
    ofCharger.set(token, {
      connectorId: connector,
      until: now + expirationsAt(index, chargerId).readyS * 1000,
    });
    this.#inform({
      kind: 'ready',
      chargerId,
      connectorId: connector,
      receivedAt: now,
      tokenId,
      customerId: index.tokens.get(token)?.customer ?? '',
      origin,
    });
  }

  /** A start came: a ready session awaiting it on another connector (or 0) is told. */
  #startArrived(event: ChargerEvent): void {
    if (event.kind !== 'tx_started' || this.#awaited.size === 0) return;
    const ofCharger = this.#awaited.get(event.chargerId);
    const token = event.tokenId.toUpperCase();
    const awaited = ofCharger?.get(token);
    if (awaited === undefined) return;
    ofCharger!.delete(token);
    if (ofCharger!.size === 0) this.#awaited.delete(event.chargerId);
    // On its own connector the start closes the ready session itself.
    if (awaited.until < event.receivedAt || awaited.connectorId === event.connectorId) return;
    this.#endReady(event.chargerId, awaited.connectorId, event.tokenId, event.receivedAt, '');
  }

  /** S4 charger_offline: the charger dropped its connection while starts were awaited. */
  #dropAwaited(chargerId: string): void {
    const ofCharger = this.#awaited.get(chargerId);
    if (ofCharger === undefined) return;
    this.#awaited.delete(chargerId);
    const now = Date.now();
    for (const [token, awaited] of ofCharger)
      if (awaited.until >= now)
        this.#endReady(chargerId, awaited.connectorId, token, now, 'charger_offline');
  }

  /** Tells a ready session its wait is over: its start came (`outcome` ''), or it is refused. */
  #endReady(
    chargerId: string,
    connectorId: number,
    tokenId: string,
    at: number,
    outcome: string,
  ): void {
    this.#inform({
      kind: 'ready',
      chargerId,
      connectorId,
      receivedAt: at,
      tokenId,
      customerId: '',
      origin: '',
      consumed: true,
      ...(outcome === '' ? {} : { outcome }),
    });
  }

  /** Events the engine raises itself at the gateway: published, never awaited by a charger. */
  #inform(event: ChargerEvent): void {
    this.#options.bus.publish(event).catch((error: unknown) => {
      this.#options.log.warn(
        { chargerId: event.chargerId, kind: event.kind, err: errorMessage(error) },
        'event not published',
      );
    });
  }

  #close(ws: uWS.WebSocket<Connection>): void {
    const connection = ws.getUserData();
    connection.closed = true;
    connection.outbound?.close();
    if (this.#connections.get(connection.chargerId) === ws) {
      this.#connections.delete(connection.chargerId);
      this.#dropAwaited(connection.chargerId);
      this.#station(connection.chargerId, 'disconnected', { protocol: connection.protocol });
    }
  }

  #message(ws: uWS.WebSocket<Connection>, message: ArrayBuffer, isBinary: boolean): void {
    const connection = ws.getUserData();
    this.stats.framesIn += 1;
    const metrics = this.#options.frameMetrics;
    if (isBinary) {
      metrics?.framesIn.add('malformed');
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
      metrics?.framesIn.add('malformed');
      this.#error(ws, connection, parsed.id, parsed.code, parsed.description);
      return;
    }
    const frame = parsed.frame;
    if (frame.type !== CALL) {
      metrics?.framesIn.add(frame.type === CALLRESULT ? 'CALLRESULT' : 'CALLERROR');
      connection.outbound?.answer(
        frame.id,
        frame.type === CALLRESULT
          ? { ok: true, payload: frame.payload }
          : { ok: false, code: frame.code, description: frame.description },
      );
      return;
    }
    // Only actions of the protocol are labels: a charger inventing names must not grow the
    // metric without bound.
    metrics?.framesIn.add(
      Object.hasOwn(TABLES[connection.protocol].handlers, frame.action) ? frame.action : 'unknown',
    );
    const receivedAt = Date.now();
    const arrived = metrics === undefined ? 0 : performance.now();
    let outcome: CallOutcome;
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
    // Calls answered from memory are rate-limited; transaction messages are not (a charger
    // flushing an offline backlog sends them as fast as they are acknowledged, and refusing
    // one would only make it retry): they are bounded by MAX_IN_FLIGHT instead.
    if (outcome.kind !== 'durable' && connection.bucket?.take(receivedAt) === false) {
      this.stats.rateLimited += 1;
      this.#error(ws, connection, frame.id, 'GenericError', 'too many calls; slow down');
      return;
    }
    switch (outcome.kind) {
      case 'reply':
        this.#send(ws, connection, callResult(frame.id, outcome.payload), frame.action);
        if (frame.action === 'Authorize')
          this.#authorized(connection.chargerId, frame.payload, outcome.payload);
        if (
          frame.action === 'BootNotification' &&
          (outcome.payload as { status?: string }).status === 'Accepted'
        ) {
          connection.booted = true;
          this.#station(connection.chargerId, 'booted', bootDetails(frame.payload));
          this.#provision(connection);
        }
        return;
      case 'error':
        this.#error(ws, connection, frame.id, outcome.code, outcome.description);
        return;
      case 'durable': {
        const { event, payload } = outcome;
        this.#startArrived(event);
        // A charger ignoring the one-outstanding-CALL rule gets a bounded share, not memory.
        if (connection.inFlight >= MAX_IN_FLIGHT) {
          this.#error(
            ws,
            connection,
            frame.id,
            'GenericError',
            'too many calls waiting for an answer',
          );
          return;
        }
        connection.inFlight += 1;
        const answer = (reply: object) => {
          this.stats.acks += 1;
          metrics?.ackLatency.observe((performance.now() - arrived) / 1000);
          this.#send(ws, connection, callResult(frame.id, reply), frame.action);
        };
        const notDurable = (error: unknown) => {
          connection.inFlight -= 1;
          this.#notDurable(ws, connection, frame.id, error);
        };
        // Most frames (readings, statuses) need neither another look at their transaction nor
        // a cost in their answer: answered once durable, without the steps between.
        if (!this.#mayResolve(event) && !answersWithCost(connection, frame.action)) {
          this.#options.bus.publishThen(
            event,
            () => {
              connection.inFlight -= 1;
              answer(payload);
            },
            notDurable,
          );
          return;
        }
        this.#resolveOrphan(event)
          .then((resolved) => this.#publish(resolved))
          .then((published) => {
            connection.inFlight -= 1;
            return this.#withCost(connection, frame.action, published, payload).then(answer);
          }, notDurable);
      }
    }
  }

  /**
   * R5.1: a 2.0.1 TransactionEvent's answer carries `totalCost` incl. VAT — the running cost
   * for Updated (when one was rated yet), the final one for Ended, which waits for its rating
   * (0 for a free or refused session; none when the rating failed or did not come in time).
   */
  async #withCost(
    connection: Connection,
    action: string,
    event: ChargerEvent,
    payload: object,
  ): Promise<object> {
    if (!answersWithCost(connection, action)) return payload;
    const { chargerId } = connection;
    let totalCost: string | null | undefined;
    if (event.kind === 'meter_values')
      totalCost = this.costs.running(chargerId, event.transactionId);
    // An orphan (no session knows its transaction) gets no cost: nothing to wait for.
    else if (event.kind === 'tx_stopped' && !event.orphan)
      totalCost = await this.costs.final(
        chargerId,
        event.transactionId,
        this.#options.finalCostWaitMs ?? 10_000,
      );
    return totalCost == null ? payload : { ...payload, totalCost: Number(totalCost) };
  }

  /** Not durable, so not acknowledged: the charger retries the message. */
  #notDurable(
    ws: uWS.WebSocket<Connection>,
    connection: Connection,
    id: string,
    error: unknown,
  ): void {
    this.#options.log.error({ err: errorMessage(error) }, 'event not durable');
    this.#error(ws, connection, id, 'InternalError', 'the event could not be stored; retry');
  }

  /** An accepted Authorize: its start is awaited (S2). */
  #authorized(chargerId: string, request: Record<string, unknown>, answer: object): void {
    const info = answer as { idTagInfo?: { status?: string }; idTokenInfo?: { status?: string } };
    if ((info.idTagInfo ?? info.idTokenInfo)?.status !== 'Accepted') return;
    const token =
      (request['idTag'] as string | undefined) ??
      (request['idToken'] as { idToken?: string } | undefined)?.idToken ??
      '';
    this.#awaitStart(chargerId, token, 'authorize');
  }

  /** H1: the integration profile, one call at a time, after the BootNotification answer. */
  #provision(connection: Connection): void {
    for (const { action, payload } of provisioningCalls(
      connection.protocol,
      this.#index.network.settings,
    )) {
      const sent = this.command(connection.chargerId, action, payload);
      if (!('refused' in sent)) {
        void sent.then((result) =>
          this.#options.onProvisioningResult?.(connection.chargerId, action, payload, result),
        );
      }
    }
  }

  /**
   * An event of a transaction this gateway does not know as running (R2). A stop of one whose
   * stop went through already is that stop resent after its answer was lost: it goes to the
   * transaction's connector without its readings (the first copy stored them), where the
   * processor ignores it as a retried stop. Otherwise one more look: once the journal settles
   * (distributed: the start went through another gateway a moment ago; also for a 2.0.1
   * Updated event without `evse`), or at the store's session (embedded, after a restart).
   */
  async #resolveOrphan(event: ChargerEvent): Promise<ChargerEvent> {
    if (!this.#mayResolve(event)) return event;
    const transactions = this.#options.transactions;
    const settle = this.#options.settleTransactions;
    if (event.kind === 'meter_values') {
      await settle!();
      const home = transactions.home(event.chargerId, event.transactionId);
      return home === undefined ? event : { ...event, connectorId: home.connectorId };
    }
    if (event.kind !== 'tx_stopped') return event;
    const { chargerId, transactionId } = event;
    const resent = (connectorId: number): ChargerEvent => ({ ...event, connectorId, samples: [] });
    if (!event.orphan) {
      // A copy of a stop that is not durable yet: once the first is, this one is resent.
      const first = this.#stopping.get(`${chargerId}|${transactionId}`);
      if (first === undefined) return event;
      await first.catch(() => undefined);
      const endedOn = transactions.endedOn(chargerId, transactionId);
      return endedOn === undefined ? event : resent(endedOn);
    }
    const endedOn = transactions.endedOn(chargerId, transactionId);
    if (endedOn !== undefined) return resent(endedOn);
    if (settle !== undefined) {
      await settle();
      const home = transactions.home(chargerId, transactionId);
      if (home !== undefined) return { ...event, connectorId: home.connectorId, orphan: false };
      const journaled = transactions.endedOn(chargerId, transactionId);
      if (journaled !== undefined) return resent(journaled);
    }
    // Best effort: a store that cannot answer leaves the stop an orphan, as before.
    const session = await this.#options.findSession?.(chargerId, transactionId).catch((error) => {
      this.#options.log.warn({ chargerId, err: errorMessage(error) }, 'session not looked up');
      return undefined;
    });
    if (session === undefined) return event;
    if (session.endedAt === null)
      return { ...event, connectorId: session.connectorId, orphan: false };
    // Ended by this stop (the same timestamp) or by the engine (expired, superseded): then
    // its readings are kept for the record, on its connector.
    return session.endedAt === event.ts
      ? resent(session.connectorId)
      : { ...event, connectorId: session.connectorId };
  }

  /**
   * Whether #resolveOrphan may give another event than it was given: a stop, or the readings
   * of a 2.0.1 TransactionEvent (seqNo) with no `evse` and no known home (connector 0) where
   * the journal may still settle (distributed mode).
   */
  #mayResolve(event: ChargerEvent): boolean {
    if (event.kind === 'tx_stopped') return true;
    return (
      event.kind === 'meter_values' &&
      this.#options.settleTransactions !== undefined &&
      event.connectorId === 0 &&
      event.seqNo !== undefined
    );
  }

  /**
   * Publishes an event. A stop's transaction has ended once the stop is durable; until then a
   * copy of it (resent because the answer was slow) waits in #resolveOrphan (R2).
   */
  #publish(event: ChargerEvent): Promise<ChargerEvent> {
    const published = this.#options.bus.publish(event);
    if (event.kind !== 'tx_stopped' || event.orphan) return published.then(() => event);
    const { chargerId, transactionId } = event;
    const key = `${chargerId}|${transactionId}`;
    const ended = published.then(() => this.#options.transactions.ended(chargerId, transactionId));
    this.#stopping.set(key, ended);
    const settled = () => {
      if (this.#stopping.get(key) === ended) this.#stopping.delete(key);
    };
    ended.then(settled, settled);
    return ended.then(() => event);
  }

  #error(
    ws: uWS.WebSocket<Connection>,
    connection: Connection,
    id: string,
    code: RpcErrorCode,
    description: string,
  ): void {
    this.stats.callErrors.set(code, (this.stats.callErrors.get(code) ?? 0) + 1);
    this.#send(ws, connection, callError(id, code, description), 'CALLERROR');
  }

  /**
   * Sends unless the socket closed meanwhile (a late bus acknowledgement must not throw).
   * `action`: what the frame answers or calls, for the frame metrics.
   */
  #send(ws: uWS.WebSocket<Connection>, connection: Connection, text: string, action: string): void {
    if (connection.closed) return;
    const status = ws.send(text, false);
    this.stats.framesOut += 1;
    this.#options.frameMetrics?.framesOut.add(action);
    // 2: dropped at the backpressure limit. The charger times out and retries its call.
    if (status === 2) this.stats.dropped += 1;
    // 0: queued behind unsent data (a slow reader); the queue is bounded by maxBackpressure.
    else if (status === 0) {
      this.stats.backpressured += 1;
      this.stats.peakBufferedBytes = Math.max(this.stats.peakBufferedBytes, ws.getBufferedAmount());
    }
  }
}

/** Vendor, model and firmware of a BootNotification, in either version's fields. */
function bootDetails(payload: Record<string, unknown>): Record<string, string> {
  const station = (payload['chargingStation'] ?? payload) as Record<string, unknown>;
  const pick = (...names: string[]) => {
    for (const name of names) if (typeof station[name] === 'string') return station[name];
    return '';
  };
  return {
    vendor: pick('chargePointVendor', 'vendorName'),
    model: pick('chargePointModel', 'model'),
    firmware: pick('firmwareVersion'),
  };
}

const REFUSAL_STATUS: Readonly<Record<Refusal, string>> = {
  unknown_charger: '404 Not Found',
  bad_identity: '400 Bad Request',
  missing_credentials: '401 Unauthorized',
  bad_credentials: '401 Unauthorized',
  no_subprotocol: '400 Bad Request',
  identity_in_use: '409 Conflict',
  too_many_failures: '429 Too Many Requests',
};

/** R5.1: a 2.0.1 TransactionEvent is answered with the session's cost (#withCost). */
function answersWithCost(connection: Connection, action: string): boolean {
  return connection.protocol === 'ocpp2.0.1' && action === 'TransactionEvent';
}
