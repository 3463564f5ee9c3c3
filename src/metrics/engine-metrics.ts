import type { Bus } from '../bus/bus.js';
import type { FrameMetrics, Gateway } from '../gateway/server.js';
import type { Processor } from '../processor/processor.js';
import type { WebhookPublisher } from '../notifications/webhook.js';
import type { Sink } from '../store/sink.js';
import { LATENCY_BUCKETS_S, Metrics, Tally } from './registry.js';

/**
 * Every metric of the engine, by stage. Names carry their unit (`_seconds`, `_bytes`,
 * `_events`, `_total` for counts); the dashboards in grafana/ use these names, and a test checks
 * that each name a panel uses is exported.
 */

/** Gateway: connections, frames, errors, refusals, acknowledgements, send buffers. */
export function gatewayMetrics(metrics: Metrics, frameMetrics: boolean): FrameMetrics | undefined {
  if (!frameMetrics) return undefined;
  const framesIn = new Tally();
  const framesOut = new Tally();
  metrics.counter(
    'chargestream_gateway_frames_total',
    'OCPP frames by direction and action (answers to the engine: CALLRESULT / CALLERROR)',
    () => [
      ...[...framesIn].map(([action, n]) => [{ direction: 'in', action }, n] as const),
      ...[...framesOut].map(([action, n]) => [{ direction: 'out', action }, n] as const),
    ],
    ['direction', 'action'],
  );
  const ackLatency = metrics.plainHistogram(
    'chargestream_gateway_ack_latency_seconds',
    'From a transaction message arriving to its CALLRESULT, durable on the bus in between',
    LATENCY_BUCKETS_S,
  );
  return { framesIn, framesOut, ackLatency };
}

export function observeGateway(metrics: Metrics, g: Gateway): void {
  metrics.gauge(
    'chargestream_gateway_connections',
    'Open charger connections by protocol and state (connected, booted, pending)',
    () => g.connectionStates(),
    ['protocol', 'state'],
  );
  metrics.counter(
    'chargestream_gateway_connections_opened_total',
    'Charger connections accepted',
    () => g.stats.connections,
  );
  metrics.counter(
    'chargestream_gateway_callerrors_total',
    'CALLERRORs sent, by OCPP error code',
    () => [...g.stats.callErrors].map(([code, n]) => [{ code }, n] as const),
    ['code'],
  );
  metrics.counter(
    'chargestream_gateway_upgrade_refusals_total',
    'WebSocket upgrades refused, by reason',
    () => [...g.stats.refusals].map(([reason, n]) => [{ reason }, n] as const),
    ['reason'],
  );
  metrics.counter(
    'chargestream_gateway_acks_total',
    'Transaction messages acknowledged after durable',
    () => g.stats.acks,
  );
  metrics.counter(
    'chargestream_gateway_final_cost_timeouts_total',
    'OCPP 2.0.1 Ended events answered without totalCost: their rating did not come in time',
    () => g.costs.stats.finalTimeouts,
  );
  metrics.counter(
    'chargestream_gateway_cost_updated_total',
    'CostUpdated calls sent to OCPP 2.0.1 chargers',
    () => g.costs.stats.costUpdatedSent,
  );
  metrics.counter(
    'chargestream_gateway_rate_limited_total',
    'Calls refused by the per-connection rate limit',
    () => g.stats.rateLimited,
  );
  metrics.counter(
    'chargestream_gateway_send_backpressure_total',
    'Sends queued behind unsent data of a slow-reading charger',
    () => g.stats.backpressured,
  );
  metrics.counter(
    'chargestream_gateway_sends_dropped_total',
    'Sends dropped at the send buffer limit (the charger retries)',
    () => g.stats.dropped,
  );
  metrics.gauge(
    'chargestream_gateway_send_buffer_peak_bytes',
    'Largest send buffer a slow-reading charger built up',
    () => g.stats.peakBufferedBytes,
  );
}

/** Bus: produced and consumed events, per-partition consumer lag, parked messages. */
export function observeBus(metrics: Metrics, bus: Bus, kind: 'embedded' | 'kafka'): void {
  const labels = { bus: kind };
  metrics.counter(
    'chargestream_bus_produced_events_total',
    'Events made durable on the bus',
    () => [[labels, bus.stats.produced]],
    ['bus'],
  );
  metrics.counter(
    'chargestream_bus_consumed_events_total',
    'Events whose batch the processor finished',
    () => [[labels, bus.stats.consumed]],
    ['bus'],
  );
  metrics.counter(
    'chargestream_bus_parked_messages_total',
    'Undecodable messages moved to the parking topic',
    () => [[labels, bus.stats.parked]],
    ['bus'],
  );
  metrics.gauge(
    'chargestream_bus_unacknowledged_events',
    'Events published, not yet durable (gateway) or not yet stored (embedded)',
    () => bus.lag(),
  );
  metrics.gauge(
    'chargestream_bus_consumer_lag_messages',
    'Messages on the bus past the last one processed, per partition this process consumes',
    () => [...bus.partitionLag()].map(([p, n]) => [{ partition: String(p) }, n] as const),
    ['partition'],
  );
}

/** Processor and its Piscina pool, with the workers' own counters summed in. */
export function processorObservers(metrics: Metrics) {
  const task = metrics.histogram(
    'chargestream_worker_task_duration_seconds',
    'One batch through the worker pool, queue wait included',
    LATENCY_BUCKETS_S,
  );
  const batch = metrics.histogram(
    'chargestream_bus_batch_size_events',
    'Events per batch handed to the worker pool',
    [1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000],
  );
  return {
    taskSeconds: (seconds: number) => task.observe(seconds),
    batchEvents: (events: number) => batch.observe(events),
  };
}

export function observeProcessor(metrics: Metrics, p: Processor): void {
  const c = p.workerCounters;
  metrics.gauge(
    'chargestream_worker_queue_depth_tasks',
    'Batches waiting for a worker thread',
    () => p.queueSize,
  );
  metrics.counter(
    'chargestream_worker_busy_seconds_total',
    'Time the worker threads spent on batches (its rate over the threads is their utilization)',
    () => c.busySeconds,
  );
  metrics.gauge('chargestream_worker_threads', 'Worker threads in the pool', () => p.threads);
  metrics.counter(
    'chargestream_worker_states_total',
    'Connector states a batch brought to its worker thread: kept (the thread still held the object it wrote the text from) or parsed from the text',
    () => [
      [{ source: 'kept' }, c.statesKept],
      [{ source: 'parsed' }, c.statesParsed],
    ],
    ['source'],
  );
  metrics.counter(
    'chargestream_processor_events_total',
    'Events processed and stored',
    () => p.stats.events,
  );
  metrics.counter(
    'chargestream_processor_batches_total',
    'Batches processed and stored',
    () => p.stats.batches,
  );
  metrics.counter(
    'chargestream_readings_total',
    'Reading rows stored, by validity and reject reason (counted in the workers)',
    () =>
      [...c.readings].map(
        ([reason, n]) =>
          [
            {
              validity: reason === 'valid' ? 'valid' : 'rejected',
              reason: reason === 'valid' ? '' : reason,
            },
            n,
          ] as const,
      ),
    ['validity', 'reason'],
  );
  metrics.counter(
    'chargestream_rating_readings_total',
    'Readings rated incrementally (counted in the workers)',
    () => c.ratedReadings,
  );
  metrics.counter(
    'chargestream_rating_seconds_total',
    'Time the rating engine spent on those readings (divide by the readings for the latency)',
    () => c.ratingSeconds,
  );
  metrics.counter(
    'chargestream_sessions_transitions_total',
    'Session state changes, by the status entered (S1)',
    () => c.sessions.by('status'),
    ['status'],
  );
  metrics.counter(
    'chargestream_sessions_expired_total',
    'Sessions finalized by the ongoing-session expiration (S3)',
    () => c.expirations,
  );
  metrics.counter(
    'chargestream_notifications_sent_total',
    'Notifications published, by publisher and event (N1)',
    () =>
      [...c.notifications].map(([event, n]) => [{ publisher: 'stored_log', event }, n] as const),
    ['publisher', 'event'],
  );
  metrics.gauge(
    'chargestream_sessions_open',
    'Sessions this process holds open (ready or in progress)',
    () => p.openSessions().length,
  );
}

/** The embedded log's group commits: the synchronous write an acknowledgement waits for. */
export function logWriteObserver(metrics: Metrics): (seconds: number) => void {
  const write = metrics.histogram(
    'chargestream_bus_log_write_duration_seconds',
    'One group commit of the embedded log: the synchronous write of one record',
    LATENCY_BUCKETS_S,
  );
  return (seconds) => write.observe(seconds);
}

/** Store writes through the sink: latency, rows, retries, failures, the write buffer. */
export function storeInsertObserver(metrics: Metrics) {
  const insert = metrics.histogram(
    'chargestream_store_insert_duration_seconds',
    'One batched insert into one table',
    LATENCY_BUCKETS_S,
    ['table'],
  );
  return (table: string, seconds: number) => insert.observe({ table }, seconds);
}

export function observeSink(metrics: Metrics, sink: Sink): void {
  metrics.counter(
    'chargestream_store_rows_total',
    'Rows written to the store, by table',
    () => sink.stats.rowsByTable.by('table'),
    ['table'],
  );
  metrics.counter(
    'chargestream_store_retries_total',
    'Store writes retried after a failure',
    () => sink.stats.retries,
  );
  metrics.counter(
    'chargestream_store_failures_total',
    'Store inserts that failed (each is retried), by table',
    () => sink.stats.failures.by('table'),
    ['table'],
  );
  metrics.counter(
    'chargestream_notifications_failed_total',
    'Notification deliveries that failed (each is retried), by publisher',
    () => [[{ publisher: 'stored_log' }, sink.stats.failures.get('notifications') ?? 0]],
    ['publisher'],
  );
  metrics.counter(
    'chargestream_store_writes_total',
    'Group writes (one insert per table) completed',
    () => sink.stats.writes,
  );
  metrics.gauge(
    'chargestream_store_buffer_batches',
    'Processed batches waiting in the write buffer',
    () => sink.buffered().batches,
  );
  metrics.gauge(
    'chargestream_store_buffer_rows',
    'Rows waiting in the write buffer',
    () => sink.buffered().rows,
  );
}

/** N2's webhook publisher: deliveries by outcome, attempts. */
export function observeWebhooks(metrics: Metrics, w: WebhookPublisher): void {
  metrics.counter(
    'chargestream_webhook_deliveries_total',
    'Webhook notifications by outcome: delivered, or failed after every attempt',
    () => [
      [{ outcome: 'delivered' }, sum(w.stats.sent)],
      [{ outcome: 'failed' }, sum(w.stats.failed)],
    ],
    ['outcome'],
  );
  metrics.counter(
    'chargestream_webhook_attempts_total',
    'Webhook delivery attempts (retries included)',
    () => w.stats.attempts,
  );
}

function sum(tally: Tally): number {
  let total = 0;
  for (const n of tally.values()) total += n;
  return total;
}
