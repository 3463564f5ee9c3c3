import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { CommandLog, runCommand, type CommandSender } from './api/commands.js';
import { ApiKeys, type Caller } from './api/auth.js';
import { Scope } from './api/access.js';
import { requestRetry } from './api/retry.js';
import type { Owners } from './api/access.js';
import { Api } from './api/server.js';
import type { Bus } from './bus/bus.js';
import { EmbeddedLog } from './bus/embedded-log.js';
import { KafkaBus } from './bus/kafka-bus.js';
import type { EngineConfig } from './config/load-config.js';
import { ConfigService } from './config/config-changes.js';
import { LiveNetwork, type ConfigChange } from './config/live-network.js';
import type { Network } from './config/network.js';
import type { NetworkIndex } from './config/network-index.js';
import { Gateway, type GatewayOptions } from './gateway/server.js';
import { CommandRelay } from './gateway/command-relay.js';
import { followTransactions } from './gateway/transaction-journal.js';
import { startKey, TransactionRegistry } from './gateway/transactions.js';
import { ChargestreamError } from './lib/errors.js';
import { runStopSteps, type StopStep } from './lib/shutdown.js';
import {
  gatewayMetrics,
  logWriteObserver,
  observeBus,
  observeGateway,
  observeProcessor,
  observeSink,
  observeWebhooks,
  processorObservers,
  storeInsertObserver,
} from './metrics/engine-metrics.js';
import { Metrics } from './metrics/registry.js';
import { WebhookPublisher } from './notifications/webhook.js';
import { Processor, recover, type ProcessorOptions } from './processor/processor.js';
import { parseClickHouseUrl } from './store/clickhouse-http-store.js';
import { openStore } from './store/open-store.js';
import { lowerNativeThreads } from './lib/priority.js';
import { applyReadingsRetention, sqlString, type Store } from './store/store.js';
import { Sink } from './store/sink.js';

/**
 * The longest one stop step (a pool's close, the store's) may take before the stop goes on
 * without it; Piscina's own close gives its tasks 30 s, a stuck one is not waited for.
 */
const STOP_STEP_MS = 15_000;

export interface Engine {
  /** Null where this process runs no gateway. */
  readonly ocppPort: number | null;
  readonly apiPort: number;
  stop(): Promise<void>;
}

/**
 * Wires the roles of one process. Embedded (no --kafka): everything in one process on the
 * embedded log. Distributed (--kafka): `gateway` (OCPP endpoint, producing to Kafka),
 * `processor` (consumer group member with the worker pool and the store), or `all` of them.
 * Started in pipeline order, so nothing is acknowledged before the stage after it can take it.
 */
export async function startEngine(config: EngineConfig, log: Logger): Promise<Engine> {
  if (config.clickhouse !== null) parseClickHouseUrl(config.clickhouse); // names a bad URL first
  if (config.role === 'api' && config.clickhouse === null) {
    throw new ChargestreamError(
      'CONFIG_INVALID',
      '--role api: a separate API process reads the store the processors write: give --clickhouse URL',
    );
  }
  if ((config.role === 'gateway' || config.role === 'processor') && config.kafka === null) {
    throw new ChargestreamError(
      'CONFIG_INVALID',
      `--role ${config.role}: separate roles need --kafka BROKERS`,
    );
  }
  const runsGateway = config.role === 'all' || config.role === 'gateway';
  const runsProcessor = config.role === 'all' || config.role === 'processor';
  const busRule = config.network.notificationRules.findIndex((r) => r.publisher === 'bus');
  if (busRule >= 0 && config.kafka === null) {
    throw new ChargestreamError(
      'CONFIG_INVALID',
      `notificationRules[${busRule}].publisher: the bus publisher needs --kafka (its notifications topic)`,
    );
  }
  /** The engine's stop, in order after the gateway and API close (runStopSteps). */
  const stops: StopStep[] = [];
  const metrics = new Metrics();

  let store: Store | null = null;
  let sink: Sink | null = null;
  let processor: Processor | null = null;
  let bus: Bus | null = null;
  let replayed = 0;
  let replayMs = 0;
  if (runsProcessor || config.role === 'api') {
    store = openStore(config);
    await store.migrate();
    // The store's native threads (inserts, merges) below the gateway's event loop; pools
    // start threads later too, so again every few seconds.
    if (config.backgroundNice > 0) {
      lowerNativeThreads(config.backgroundNice);
      setInterval(() => lowerNativeThreads(config.backgroundNice), 5000).unref();
    }
    if (runsProcessor)
      await applyReadingsRetention(store, config.network.settings.readingsRetentionDays);
  }
  // The network in force: the file, with what the configuration API changed since over it.
  const live = new LiveNetwork(config.network);
  let publishConfig: ((change: ConfigChange) => Promise<void>) | null = null;
  const configService = new ConfigService({
    live,
    store,
    origin: `${hostname()}.${process.pid}`,
    log,
    publish: (change) => publishConfig?.(change) ?? Promise.resolve(),
  });
  const configChanges = await configService.load();
  let webhooks: WebhookPublisher | null = null;
  if (runsProcessor) {
    sink = new Sink(store!, log, storeInsertObserver(metrics), config.storeIntervalMs);
    observeSink(metrics, sink);
    webhooks = new WebhookPublisher({
      rules: config.network.notificationRules,
      store: store!,
      log,
    });
    observeWebhooks(metrics, webhooks);
  }
  const observe = runsProcessor ? processorObservers(metrics) : undefined;

  // Declared before the processor, which hands it costs (R5.1) once it runs.
  let gateway: Gateway | null = null;
  if (config.kafka === null && runsProcessor) {
    const recovered = await recover(store!, config.partitions);
    processor = new Processor(
      {
        ...processorOptions(
          { ...config, network: live.network },
          log,
          store!,
          sink!,
          observe,
          webhooks!,
        ),
        // R5.1: the gateway of this process tells its 2.0.1 chargers their costs.
        costs: (costs) => gateway?.costsRated(costs),
      },
      recovered,
    );
    // What webhook rules selected before a crash and was not delivered goes out now.
    await webhooks!.resume(Array.from({ length: config.partitions }, (_, p) => p));
    const log_ = await EmbeddedLog.open(
      join(config.dataDir, 'log'),
      {
        partitions: config.partitions,
        fsync: config.fsync,
        commitIntervalMs: config.commitIntervalMs,
        batchSize: config.batchSize,
        // Batches further apart than the store's writes would only delay the readings.
        batchLingerMs: Math.min(config.batchLingerMs, config.storeIntervalMs),
        observeWrite: logWriteObserver(metrics),
        onFatal: (error) => {
          // Crash-only: what was acknowledged is in the log; a restart replays it.
          log.fatal({ err: error.message }, 'the embedded log cannot be written; stopping');
          process.exit(1);
        },
      },
      recovered.committed,
    );
    await log_.consumeEncoded(processor.handleEncoded);
    // Replay what the store had not committed before taking new traffic: the open sessions,
    // and so where each running transaction lives, are known only once it is processed.
    replayed = log_.lag();
    const replayStarted = performance.now();
    while (log_.lag() > 0) await new Promise((r) => setTimeout(r, 10));
    replayMs = Math.round(performance.now() - replayStarted);
    bus = log_;
  } else if (config.kafka !== null) {
    const kafka = await KafkaBus.open({
      brokers: config.kafka.split(',').map((b) => b.trim()),
      clientId: `chargestream-${hostname()}-${process.pid}`,
      topicPrefix: config.topicPrefix,
      partitions: config.partitions,
      groupId: `${config.topicPrefix}.processors`,
      batchSize: config.batchSize,
      log,
    });
    if (runsProcessor) {
      const p = new Processor(
        {
          ...processorOptions(
            { ...config, network: live.network },
            log,
            store!,
            sink!,
            observe,
            webhooks!,
          ),
          publishNotifications: (rows) =>
            kafka.send(kafka.topics.notifications, notificationMessages(rows)),
          // R5.1: to every gateway; the one holding the charger tells it (best effort: a lost
          // final cost makes the Ended answer wait its time, then go without totalCost).
          costs: (costs) =>
            kafka.record(
              kafka.topics.costs,
              costs[0]!.chargerId,
              Buffer.from(JSON.stringify(costs)),
            ),
        },
        null,
      );
      kafka.onAssignment = (partitions) => p.assigned(partitions);
      await kafka.consume(p.handle);
      processor = p;
    }
    bus = kafka;
    // Compacted, keyed by entity: every process reads it from the start (the current changes).
    publishConfig = (change) =>
      kafka.send(kafka.topics.config, [
        { key: `${change.kind}/${change.id}`, value: JSON.stringify(change) },
      ]);
  }
  if (bus !== null) {
    const b = bus;
    stops.push({ name: 'bus', run: () => b.close() });
    if (processor !== null) {
      stops.unshift({
        name: 'idle-session expiry',
        run: expireIdleSessions(processor, b, config, log),
      });
      stops.unshift({ name: 'rating retries', run: retryFailedRatings(processor, b, log) });
    }
    observeBus(metrics, b, config.kafka === null ? 'embedded' : 'kafka');
  }
  if (processor !== null) {
    const p = processor;
    stops.push({ name: 'worker pools', run: () => p.close() });
    observeProcessor(metrics, p);
  }

  const commandLog =
    store === null
      ? null
      : new CommandLog(store, (error) =>
          log.warn({ err: String(error) }, 'command results not recorded'),
        );
  if (commandLog !== null) stops.unshift({ name: 'command log', run: () => commandLog.flush() });
  let ocppPort: number | null = null;
  if (runsGateway) {
    const transactions = new TransactionRegistry(config.dataDir, config.gateway);
    let settle: (() => Promise<void>) | undefined;
    let findSession: GatewayOptions['findSession'];
    if (bus instanceof KafkaBus) {
      const follower = await followTransactions(bus, transactions, log);
      stops.push({ name: 'transaction follower', run: () => follower.stop() });
      settle = () => follower.settle();
    } else {
      for (const session of processor!.openSessions()) {
        if (session.status !== 'in_progress') continue; // ready: no transaction yet
        const { chargerId, connectorId, transactionId, startedAt, tokenId, startWh } = session;
        const start =
          startWh === null ? null : startKey(chargerId, connectorId, startedAt, tokenId, startWh);
        const home =
          tokenId === ''
            ? { chargerId, connectorId }
            : { chargerId, connectorId, tokenId: tokenId.toUpperCase() };
        transactions.restore(transactionId, home, start);
      }
      // A stop resent across the restart finds its ended session (R2): by its id, the key.
      const sessions = store!;
      findSession = async (chargerId, transactionId) => {
        const [row] = await sessions.rows<{ connector: number; status: string; ended: string }>(
          `SELECT any(connector_id) AS connector, argMax(status, version) AS status,
                  toString(toUnixTimestamp64Milli(argMax(ended_at, version))) AS ended
           FROM sessions_log WHERE session_id = ${sqlString(`${chargerId}-${transactionId}`)}
           HAVING count() > 0`,
        );
        if (row === undefined) return undefined;
        const running = row.status === 'in_progress' || row.status === 'ready';
        return { connectorId: row.connector, endedAt: running ? null : Number(row.ended) };
      };
    }
    const g = new Gateway({
      tls: config.tls,
      idleTimeoutS: config.idleTimeoutS,
      host: config.host,
      port: config.ocppPort,
      index: live.index,
      transactions,
      bus: bus!, // every gateway role has a bus (embedded or Kafka)
      log,
      ...(settle === undefined ? {} : { settleTransactions: settle }),
      ...(findSession === undefined ? {} : { findSession }),
      frameMetrics: gatewayMetrics(metrics, config.frameMetrics),
      costUpdatedIntervalS: config.network.settings.costUpdatedIntervalS,
      onProvisioningResult: (chargerId, action, payload, result) => {
        if (result.status !== 'accepted')
          log.warn(
            { chargerId, action, status: result.status, code: result.errorCode },
            'provisioning call not accepted',
          );
        commandLog?.record(chargerId, action, payload, result, 'engine/provisioning');
      },
    });
    observeGateway(metrics, g);
    ocppPort = await g.listen();
    gateway = g;
  }

  // A configuration change reaches the gateway's authorization and the workers at once.
  live.onChange((index, version) => {
    gateway?.setIndex(index);
    processor?.setNetwork(index, version);
  });
  if (configChanges > 0) log.info({ changes: configChanges }, 'configuration API changes applied');

  // Engine-initiated calls: to the local connection, else (distributed) through the relay to
  // whichever gateway holds the charger.
  let relay: CommandRelay | null = null;
  if (bus instanceof KafkaBus) {
    const r = await CommandRelay.open(bus, log);
    if (gateway !== null) {
      await r.serve(gateway);
      await r.serveCosts(gateway);
    }
    await r.serveConfig(configService);
    stops.unshift({ name: 'command relay', run: () => r.close() });
    relay = r;
  }
  const local = gateway;
  const send: CommandSender | null =
    local === null && relay === null
      ? null
      : (chargerId, action, payload, timeoutMs) =>
          local?.holds(chargerId) === true || relay === null
            ? (local?.command(chargerId, action, payload, timeoutMs) ?? { refused: 'offline' })
            : relay.request(chargerId, action, payload, timeoutMs);

  const api = new Api({
    host: config.host,
    port: config.apiPort,
    store,
    keys: new ApiKeys(config.network),
    config: configService,
    network: () => live.network,
    log,
    ready: () => true,
    metrics: () => metrics.text(),
    ...(store === null || bus === null
      ? {}
      : {
          retry: (sessionId: string, sees: (owners: Owners) => boolean) =>
            requestRetry(store, bus, sessionId, Date.now(), sees),
        }),
    ...(send === null
      ? {}
      : {
          commands: (request) =>
            runCommand(
              send,
              commandLog,
              (id) => commandable(live.index, live.network, id, request.caller),
              request,
            ),
        }),
  });
  const apiPort = await api.listen();
  log.info(
    {
      role: config.role,
      bus: config.kafka === null ? 'embedded' : 'kafka',
      ocppPort,
      apiPort,
      replayed,
      replayMs,
    },
    'engine started',
  );

  return {
    ocppPort,
    apiPort,
    async stop() {
      // Graceful: stop accepting, let what was acknowledged land in the store, then close.
      gateway?.close();
      api.close();
      // Everything acknowledged is in the log or Kafka; what the processor has not stored is
      // replayed at the next start. Give in-flight batches a moment to land first.
      const deadline = Date.now() + 5000;
      while ((bus?.lag() ?? 0) > 0 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      sink?.close();
      const { failed } = await runStopSteps(
        [
          { name: 'webhooks', run: () => webhooks?.close() },
          ...stops,
          { name: 'store', run: () => store?.close() },
        ],
        log,
        STOP_STEP_MS,
      );
      if (failed.length > 0)
        throw new ChargestreamError('INTERNAL', `stop steps unfinished: ${failed.join(', ')}`);
    },
  };
}

/**
 * S3: every so often, the sessions silent for the ongoing-session expiration are finalized
 * (rated and closed with their last valid reading, reason idle_timeout) through an expiry
 * event on the bus. Returns the stop function.
 */
function expireIdleSessions(
  processor: Processor,
  bus: Bus,
  config: EngineConfig,
  log: Logger,
): () => void {
  // Checked at a quarter of the shortest expiration configured anywhere in the network.
  const { network } = config;
  const shortestMs =
    Math.min(
      network.settings.ongoingSessionExpirationS,
      network.settings.readySessionExpirationS,
      ...[...network.organizations, ...network.sites, ...network.chargers].flatMap((o) => [
        o.ongoingSessionExpirationS ?? Infinity,
        o.readySessionExpirationS ?? Infinity,
      ]),
    ) * 1000;
  const sent = new Map<string, number>();
  const timer = setInterval(
    () => {
      const now = Date.now();
      for (const [key, at] of sent) if (now - at > 24 * 3600_000) sent.delete(key);
      for (const event of processor.expired(now)) {
        const key = `${event.chargerId}|${event.transactionId}|${event.lastEventAt}`;
        if (sent.has(key)) continue;
        sent.set(key, now);
        bus.publish(event).catch((error: unknown) => {
          sent.delete(key);
          log.warn({ err: String(error) }, 'expiry not published; retried at the next check');
        });
      }
    },
    Math.max(250, Math.min(30_000, shortestMs / 4)),
  );
  timer.unref();
  return () => clearInterval(timer);
}

/** S8, the automatic retry job: every 30 s, failed sessions whose backoff passed are sent again. */
function retryFailedRatings(processor: Processor, bus: Bus, log: Logger): () => void {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    processor
      .failedRatings(Date.now())
      .then((due) => Promise.all(due.map((event) => bus.publish(event))))
      .catch((error: unknown) => log.warn({ err: String(error) }, 'rating retry job failed'))
      .finally(() => (running = false));
  }, 30_000);
  timer.unref();
  return () => clearInterval(timer);
}

function processorOptions(
  config: EngineConfig & { readonly network: Network },
  log: Logger,
  store: Store,
  sink: Sink,
  observe: ProcessorOptions['observe'],
  webhooks: WebhookPublisher,
): ProcessorOptions {
  return {
    network: config.network,
    workers: config.workers,
    catchUpWorkers: config.catchUpWorkers,
    batchSize: config.batchSize,
    workerNice: config.backgroundNice,
    sink,
    log,
    store,
    partitions: config.partitions,
    ...(observe === undefined ? {} : { observe }),
    // Stored notifications of webhook rules go out; a partition taken over resends its own.
    afterStore: (rows) => webhooks.stored(rows),
    onAdopted: (partition) => webhooks.resume([partition]),
  };
}

/** Notification rows as Kafka messages keyed by their stable id (a repeat has the same key). */
function notificationMessages(rows: string): Array<{ key: string; value: string }> {
  return rows
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => ({
      key: (JSON.parse(line) as { notification_id: string }).notification_id,
      value: line,
    }));
}

/**
 * Whether a key may send commands to a charger: one of the network whose site's operator is
 * the key's organization or one of its sub-organizations. Any other charger is answered as
 * unknown (404), as the configuration API answers for entities out of a key's scope.
 */
function commandable(
  index: NetworkIndex,
  network: Network,
  chargerId: string,
  caller: Caller,
): boolean {
  const charger = index.chargers.get(chargerId);
  if (charger === undefined) return false;
  const scope = new Scope(network, caller);
  const operator = index.sites.get(charger.site)?.operator;
  return scope.everything || (operator !== undefined && scope.own.has(operator));
}
