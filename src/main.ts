import { join } from 'node:path';
import type { Logger } from 'pino';
import { ApiKeys } from './api/auth.js';
import { runCommand } from './api/commands.js';
import { Api } from './api/server.js';
import { EmbeddedLog } from './bus/embedded-log.js';
import type { EngineConfig } from './config/load-config.js';
import { indexNetwork } from './config/network-index.js';
import { Gateway } from './gateway/server.js';
import { startKey, TransactionRegistry } from './gateway/transactions.js';
import { ChargestreamError } from './lib/errors.js';
import { createRegistry } from './metrics/registry.js';
import { Processor, recover } from './processor/processor.js';
import { ChdbStore } from './store/chdb-store.js';
import { Sink } from './store/sink.js';

export interface Engine {
  readonly ocppPort: number;
  readonly apiPort: number;
  stop(): Promise<void>;
}

/**
 * Wires the roles of the embedded deployment in one process: store (chDB) → recovery →
 * processor and its worker pool → embedded log → gateway → API. Started in that order so
 * that nothing is acknowledged before the stage after it can take it.
 */
export async function startEngine(config: EngineConfig, log: Logger): Promise<Engine> {
  if (config.role !== 'all') {
    throw new ChargestreamError(
      'CONFIG_INVALID',
      `--role ${config.role}: separate roles need the distributed mode (Kafka), not available yet; use --role all`,
    );
  }
  if (config.kafka !== null) {
    throw new ChargestreamError(
      'CONFIG_INVALID',
      '--kafka: the distributed mode is not available yet; leave it unset for the embedded log',
    );
  }
  if (config.clickhouse !== null) {
    throw new ChargestreamError(
      'CONFIG_INVALID',
      '--clickhouse: the ClickHouse server store is not available yet; leave it unset for chDB',
    );
  }

  const store = new ChdbStore(join(config.dataDir, 'store'));
  const applied = await store.migrate();
  const recovered = await recover(store, config.partitions);
  const sink = new Sink(store, log);
  const processor = new Processor(
    { network: config.network, workers: config.workers, sink, log },
    recovered,
  );
  const bus = await EmbeddedLog.open(
    join(config.dataDir, 'log'),
    {
      partitions: config.partitions,
      fsync: config.fsync,
      batchSize: config.batchSize,
      onFatal: (error) => {
        // Crash-only: what was acknowledged is in the log; a restart replays it.
        log.fatal({ err: error.message }, 'the embedded log cannot be written; stopping');
        process.exit(1);
      },
    },
    recovered.committed,
  );
  await bus.consume(processor.handle);
  // Replay what the store had not committed before taking new traffic: the open sessions,
  // and so where each running transaction lives, are known only once it is processed.
  const replayed = bus.lag();
  while (bus.lag() > 0) await new Promise((r) => setTimeout(r, 10));

  const index = indexNetwork(config.network);
  const transactions = new TransactionRegistry(config.dataDir, config.gateway);
  for (const session of processor.openSessions()) {
    const { chargerId, connectorId, transactionId, startedAt, tokenId, energy } = session;
    const start =
      energy.startWh === null
        ? null
        : startKey(chargerId, connectorId, startedAt, tokenId, energy.startWh);
    transactions.restore(transactionId, { chargerId, connectorId }, start);
  }
  const gateway = new Gateway({
    tls: config.tls,
    idleTimeoutS: config.idleTimeoutS,
    host: config.host,
    port: config.ocppPort,
    index,
    transactions,
    bus,
    log,
  });
  const registry = createRegistry([
    {
      name: 'chargestream_gateway_connections',
      help: 'Open charger connections',
      read: () => gateway.connected,
    },
    {
      name: 'chargestream_gateway_frames_in_total',
      help: 'Frames received',
      read: () => gateway.stats.framesIn,
    },
    {
      name: 'chargestream_gateway_acks_total',
      help: 'Transaction messages acknowledged after durable',
      read: () => gateway.stats.acks,
    },
    {
      name: 'chargestream_bus_lag_events',
      help: 'Events accepted, not yet stored',
      read: () => bus.lag(),
    },
    {
      name: 'chargestream_processor_events_total',
      help: 'Events processed and stored',
      read: () => processor.stats.events,
    },
    {
      name: 'chargestream_readings_valid_total',
      help: 'Energy readings found valid',
      read: () => processor.stats.readingsValid,
    },
    {
      name: 'chargestream_readings_rejected_total',
      help: 'Energy readings rejected',
      read: () => processor.stats.readingsRejected,
    },
    {
      name: 'chargestream_store_rows_total',
      help: 'Rows written to the store',
      read: () => sink.stats.rows,
    },
    {
      name: 'chargestream_store_retries_total',
      help: 'Store writes retried',
      read: () => sink.stats.retries,
    },
  ]);
  const ocppPort = await gateway.listen();
  const api = new Api({
    host: config.host,
    port: config.apiPort,
    store,
    keys: new ApiKeys(config.network),
    log,
    ready: () => true,
    metrics: () => registry.metrics(),
    commands: (request) => runCommand(gateway, store, (id) => index.chargers.has(id), request),
  });
  const apiPort = await api.listen();
  log.info(
    {
      ocppPort,
      apiPort,
      migrationsApplied: applied,
      openSessions: transactions.running,
      replayed,
    },
    'engine started',
  );

  return {
    ocppPort,
    apiPort,
    async stop() {
      // Graceful: stop accepting, let what was acknowledged land in the store, then close.
      gateway.close();
      api.close();
      // Everything acknowledged is in the log; what the processor has not stored is replayed
      // at the next start. Give in-flight batches a moment to land first.
      const deadline = Date.now() + 5000;
      while (bus.lag() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      sink.close();
      await bus.close();
      await processor.close();
      await store.close();
    },
  };
}
