import type { ChargerEvent } from '../ocpp/events.js';
import type { EncodedRuns } from './event-codec.js';

/** One event at its place in a partition. */
export interface LogEntry {
  readonly offset: number;
  readonly event: ChargerEvent;
}

/**
 * Called with one partition's next batch, in order; one call in flight per partition.
 * `fence`, where the bus can lose a partition to another consumer while a batch is in
 * flight (Kafka), rejects once this process no longer owns the batch's partition: the
 * handler calls it before it changes state or writes, so that a consumer frozen past its
 * session timeout does not write, when it wakes, what the partition's new owner writes too.
 */
export type BatchHandler = (
  partition: number,
  entries: readonly LogEntry[],
  fence?: () => Promise<void>,
) => Promise<void | BatchHandled>;

/**
 * One partition's batch as the embedded log holds it: the events' bytes (EventPacker), in
 * runs of consecutive offsets, with what the processor needs to know of them without
 * decoding. `bytes` has a buffer of its own, so it can be moved to a worker thread.
 */
export interface EncodedBatch extends EncodedRuns {
  readonly count: number;
  readonly firstOffset: number;
  readonly lastOffset: number;
  /** The connectors of the batch's events (connectorKey), each once a run. */
  readonly connectors: readonly string[];
  /** The sessions of the batch's retry events (S8), in order. */
  readonly retries: readonly string[];
  /** Cut at the batch size: more of the partition's events were queued behind it (a backlog). */
  readonly full: boolean;
}

/** The embedded log's form of a BatchHandler: the same contract, the batch as bytes. */
export type EncodedBatchHandler = (
  partition: number,
  batch: EncodedBatch,
) => Promise<void | BatchHandled>;

/**
 * A batch processed whose rows are still being written: the bus may hand the partition's next
 * batch over at once (processing overlaps the store write) but counts the batch as done —
 * committed, its log space reclaimable — only once `stored` resolves. `stored` does not
 * reject while the store retries; it may stay pending when the engine stops, and the batch
 * is then replayed at the next start.
 */
export interface BatchHandled {
  readonly stored: Promise<void>;
}

/**
 * The most batches of one partition a bus lets be ahead of the store (handed over and not yet
 * stored, the one to be handed over included), by what the batch to be handed over is. The
 * sink writes every batch finished by then together, at most every store interval:
 * - keeping up, one: the batch waits for the one before it to be stored, and takes every
 *   event that arrived meanwhile. It still makes the next write, which starts no sooner than
 *   the store interval after the last one did; with two, the second batch of each write held
 *   the few events of the moment the write began, and every session in it cost its state and
 *   row twice a write (at 9,000 frames/s up to 17 % more of the engine's CPU; bench/RESULTS.md);
 * - holding a stop, two: its rating (the final cost a 2.0.1 Ended answer waits for) is not
 *   held up by a write in flight;
 * - full (cut at the batch size: a backlog), six: with two, a backlog was worked off at one
 *   batch a partition and write, the worker threads idle half the time.
 * A store that stalls stops the partition here, and the bus's lag limit then slows the chargers.
 */
export const MAX_UNSTORED_BATCHES = { keepingUp: 1, stop: 2, behind: 6 } as const;

/**
 * Whether a partition with `unstored` batches ahead of the store may be handed its next one,
 * which is `full` (cut at the batch size) or holds a transaction's `stop`.
 */
export function mayHandOver(unstored: number, next: { full: boolean; stop: boolean }): boolean {
  const { keepingUp, stop, behind } = MAX_UNSTORED_BATCHES;
  return unstored < (next.full ? behind : next.stop ? stop : keepingUp);
}

/** Running totals of a bus, for /metrics. */
export interface BusStats {
  /** Events made durable on the bus (acknowledged by Kafka, or written to the log). */
  produced: number;
  /** Events handed to the processor whose batch it finished. */
  consumed: number;
  /** Undecodable messages moved to the parking topic. */
  parked: number;
}

/**
 * The bus between gateways and processors. The embedded log and Kafka implement the same
 * interface, so nothing before or after the bus knows which one runs.
 */
export interface Bus {
  readonly partitions: number;
  /**
   * Appends an event to its connector's partition. Resolves once the event is durable: only
   * then may the charger be acknowledged. Rejects if it could not be made durable.
   */
  publish(event: ChargerEvent): Promise<void>;
  /**
   * `publish` answered by callbacks, one of which is called once: `durable` when the event is,
   * `failed` if it could not be made so. For the gateway's acknowledgements, where a promise
   * and its reaction for every frame were measurable in the embedded log.
   */
  publishThen(event: ChargerEvent, durable: () => void, failed: (error: Error) => void): void;
  /** Delivers batches to the processor; the handler's promise settles after the sink stored them. */
  consume(handler: BatchHandler): Promise<void>;
  /** Events accepted but not yet handled, for /readyz and backpressure. */
  lag(): number;
  /**
   * Consumer lag of each partition this process consumes: messages on the bus past the last
   * one whose batch the processor finished (one event a message in the embedded log).
   */
  partitionLag(): ReadonlyMap<number, number>;
  readonly stats: BusStats;
  close(): Promise<void>;
}
