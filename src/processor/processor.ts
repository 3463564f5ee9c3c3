import { join } from 'node:path';
import { Piscina } from 'piscina';
import type { Logger } from 'pino';
import type {
  BatchHandled,
  BatchHandler,
  EncodedBatch,
  EncodedBatchHandler,
  LogEntry,
} from '../bus/bus.js';
import type { Network } from '../config/network.js';
import { expirationsAt, indexNetwork, type NetworkIndex } from '../config/network-index.js';
import { projectRoot, runningFromSource } from '../lib/paths.js';
import { partitionFor } from '../bus/partitioner.js';
import { connectorKey, type RatingRetried, type SessionExpired } from '../ocpp/events.js';
import {
  hold,
  type HeldState,
  type OpenSession,
  type TaskInput,
  type TaskOutput,
} from '../sessions/held-state.js';
import type {
  LiveCost,
  NetworkUpdate,
  HighWater,
  SessionState,
} from '../sessions/process-batch.js';
import { Tally } from '../metrics/registry.js';
import type { Sink } from '../store/sink.js';
import { sqlString, type Store } from '../store/store.js';

/** What the store says about where each partition stands, read once at start. */
export interface Recovered {
  /** Next offset to process, per partition. */
  readonly committed: Map<number, number>;
  readonly highWater: Map<number, HighWater>;
  /** The open sessions' connector states. */
  readonly states: Map<string, HeldState>;
}

/** S8: attempts of the automatic retry job; past them a failed session waits for an operator. */
export const MAX_RATING_ATTEMPTS = 10;

/** The retry event of a failed session, on its connector's partition. */
export function retryOf(session: SessionState, state: string, now: number): RatingRetried {
  return {
    kind: 'retry',
    chargerId: session.chargerId,
    connectorId: session.connectorId,
    receivedAt: now,
    sessionId: session.sessionId,
    state,
  };
}

const NOTHING_STORED: HighWater = { readings: -1, statuses: -1, cdrs: -1, notifications: -1 };

/**
 * Rebuilds the processor's position from the store: the stored offset of each partition, the
 * highest offset each append-only table already holds past it, and the open sessions.
 */
export async function recover(
  store: Store,
  partitions: number,
  only: readonly number[] = Array.from({ length: partitions }, (_, p) => p),
): Promise<Recovered> {
  const among = `log_partition IN (${only.length === 0 ? '-1' : only.join(',')})`;
  const committed = new Map<number, number>();
  for (const r of await store.rows<{ p: number; o: string }>(
    `SELECT log_partition AS p, toString(max(log_offset)) AS o FROM ingest_offsets WHERE ${among} GROUP BY p`,
  )) {
    committed.set(r.p, Number(r.o) + 1);
  }
  // Only rows past a partition's stored offset matter; the lowest such offset bounds the scan.
  let floor = Number.MAX_SAFE_INTEGER;
  for (const p of only) floor = Math.min(floor, committed.get(p) ?? 0);
  const highWater = new Map<number, HighWater>();
  const tables = [
    ['readings', 'meter_readings'],
    ['statuses', 'connector_status'],
    ['cdrs', 'cdrs'],
    ['notifications', 'notifications'],
  ] as const;
  for (const [field, table] of tables) {
    for (const r of await store.rows<{ p: number; o: string }>(
      `SELECT log_partition AS p, toString(max(log_offset)) AS o FROM ${table} WHERE log_offset >= ${floor} AND ${among} GROUP BY p`,
    )) {
      const previous = highWater.get(r.p) ?? NOTHING_STORED;
      highWater.set(r.p, { ...previous, [field]: Number(r.o) });
    }
  }
  const states = new Map<string, HeldState>();
  for (const r of await store.rows<{ last_state: string; last_version: string }>(
    `SELECT argMax(state, version) AS last_state, toString(max(version)) AS last_version FROM sessions_log
     WHERE ${among} GROUP BY session_id HAVING argMax(status, version) IN ('ready', 'in_progress')`,
  )) {
    const session = JSON.parse(r.last_state) as SessionState;
    const held = hold({ appliedOffset: Math.floor(Number(r.last_version) / 8), session });
    if (held !== null) states.set(connectorKey(session.chargerId, session.connectorId), held);
  }
  return { committed, highWater, states };
}

export interface ProcessorOptions {
  readonly network: Network;
  readonly workers: number;
  /**
   * Threads more, for partitions that are behind (a batch cut at `batchSize`): a backlog —
   * the log replayed at a start, the store back after an outage, a burst — is worked off on
   * more cores, while a load the workers keep up with stays on `workers` threads, each woken
   * for more work at a time (bench/RESULTS.md).
   */
  readonly catchUpWorkers?: number;
  /** The most events the bus hands over in one batch; a partition is back in step at a quarter. */
  readonly batchSize?: number;
  /** Nice value of the worker threads: below the gateway's event loop (src/lib/priority.ts). */
  readonly workerNice?: number;
  readonly sink: Sink;
  readonly log: Logger;
  /** To load a partition's state when it is assigned to this process (distributed mode). */
  readonly store: Store;
  readonly partitions: number;
  /**
   * Publishes a batch's notifications (JSONEachRow) before the batch is stored: at least once,
   * since a batch stored before a crash is not processed again, but one published and not
   * stored is (its notifications then go out a second time, with the same keys).
   */
  readonly publishNotifications?: (rows: string) => Promise<void>;
  /** Called with a batch's notifications (JSONEachRow) once the store has them. */
  readonly afterStore?: (notifications: string) => void;
  /**
   * R5.1: the 2.0.1 transaction costs a batch changed, as soon as the workers computed them
   * (not waiting for the store: a batch replayed after a crash yields the same costs).
   */
  readonly costs?: (costs: readonly LiveCost[]) => void;
  /** Called when this process takes over a partition (distributed mode), after its state is rebuilt. */
  readonly onAdopted?: (partition: number) => Promise<unknown>;
  /** Where task durations (seconds, queue wait included) and batch sizes (events) go. */
  readonly observe?: {
    readonly taskSeconds: (seconds: number) => void;
    readonly batchEvents: (events: number) => void;
  };
}

/**
 * Runs each partition's batches through the worker pool, in order, one batch in flight per
 * partition and many partitions at once; a batch counts as done only when the sink stored
 * its rows, but the partition's next batch may be processed meanwhile. Connector state lives
 * here between batches, as JSON text (HeldState), and travels with each batch, so any worker
 * could take any batch; each partition goes to one thread, which keeps the objects it wrote
 * the texts from and skips parsing them again when they come back unchanged.
 */
export class Processor {
  /**
   * One single-thread pool per worker thread, each partition on the same one while it keeps
   * up (partition mod steady threads): a thread finds the states it wrote at its partitions'
   * next batches (ResidentStates). A partition's batches run one at a time anyway.
   */
  readonly #pools: Array<Piscina<TaskInput, TaskOutput>>;
  /** The first `workers` pools; the others take only partitions that are behind. */
  readonly #steadyPools: number;
  readonly #batchSize: number;
  /** Partitions behind: their batches go to any of the pools (see #poolFor). */
  readonly #behind = new Set<number>();
  readonly #sink: Sink;
  /** The connectors with an open session, their states as the workers left them. */
  readonly #states: Map<string, HeldState>;
  readonly #highWater: Map<number, HighWater>;
  readonly stats = { batches: 0, events: 0, readingsValid: 0, readingsRejected: 0 };
  /** The workers' own counters, summed over the batches they returned. */
  readonly workerCounters = {
    readings: new Tally(),
    sessions: new Tally(),
    notifications: new Tally(),
    expirations: 0,
    ratedReadings: 0,
    ratingSeconds: 0,
    busySeconds: 0,
    statesKept: 0,
    statesParsed: 0,
  };
  readonly #observe: ProcessorOptions['observe'];
  readonly #publishNotifications: ProcessorOptions['publishNotifications'];
  readonly #afterStore: ProcessorOptions['afterStore'];
  readonly #costs: ProcessorOptions['costs'];
  readonly #onAdopted: ProcessorOptions['onAdopted'];

  readonly #store: Store;
  #index: NetworkIndex;
  #network: NetworkUpdate | undefined;
  readonly #partitionCount: number;
  readonly #log: Logger;
  /** Partitions whose state this process holds; null: all of them (embedded mode). */
  #owned: Set<number> | null;
  readonly #loading = new Map<number, Promise<void>>();
  /** Sessions retried by batches not stored yet (S8), with how many such retries. */
  readonly #retriesUnstored = new Map<string, number>();

  /**
   * `recovered`: the state of all partitions (embedded: this process owns them all); null in
   * the distributed mode, where partitions are adopted one by one as the group assigns them.
   */
  constructor(options: ProcessorOptions, recovered: Recovered | null) {
    this.#store = options.store;
    this.#index = indexNetwork(options.network);
    this.#partitionCount = options.partitions;
    this.#log = options.log;
    this.#observe = options.observe;
    this.#publishNotifications = options.publishNotifications;
    this.#afterStore = options.afterStore;
    this.#costs = options.costs;
    this.#onAdopted = options.onAdopted;
    this.#owned = recovered === null ? new Set() : null;
    recovered ??= { committed: new Map(), highWater: new Map(), states: new Map() };
    this.#sink = options.sink;
    this.#states = recovered.states;
    this.#highWater = recovered.highWater;
    const file = runningFromSource ? 'workers/process-batch.ts' : 'dist/workers/process-batch.js';
    this.#steadyPools = options.workers;
    this.#batchSize = options.batchSize ?? Number.POSITIVE_INFINITY;
    this.#pools = Array.from(
      { length: options.workers + (options.catchUpWorkers ?? 0) },
      () =>
        new Piscina<TaskInput, TaskOutput>({
          filename: join(projectRoot, file),
          workerData: { network: options.network, nice: options.workerNice ?? 0 },
          minThreads: 1,
          maxThreads: 1,
          // From sources (tests, tsx) the worker needs the TypeScript loader too.
          execArgv: runningFromSource ? ['--import', 'tsx'] : [],
        }),
    );
  }

  /**
   * The thread of a partition's batch: one of the steady threads while the partition keeps
   * up; one of all threads from a full batch on (the bus had more queued than it could hand
   * over), until its batches are down to a quarter of the most again. A partition that moves
   * brings its states as texts, as always; the thread it moves to parses them once.
   */
  #poolFor(partition: number, full: boolean, events: number): Piscina<TaskInput, TaskOutput> {
    if (this.#pools.length > this.#steadyPools) {
      if (full) this.#behind.add(partition);
      else if (events <= this.#batchSize / 4) this.#behind.delete(partition);
    }
    const among = this.#behind.has(partition) ? this.#pools.length : this.#steadyPools;
    return this.#pools[partition % among]!;
  }

  /**
   * A new configuration (the configuration API): batches handed to the workers from now on
   * run with it. A session keeps the tariff it started with (R3).
   */
  setNetwork(index: NetworkIndex, version: number): void {
    const bytes = new TextEncoder().encode(JSON.stringify(index.network));
    const json = new SharedArrayBuffer(bytes.byteLength);
    new Uint8Array(json).set(bytes);
    this.#index = index;
    this.#network = { version, json };
  }

  /**
   * Open sessions of this process's partitions with no event for the ongoing-session
   * expiration in force at their charger (S3: the charger's, its site's, its operator's or the
   * network's), as the expiry events to publish. Each partition belongs to one processor, so
   * each expiry is decided once, also in the distributed mode.
   */
  expired(now: number): SessionExpired[] {
    const events: SessionExpired[] = [];
    for (const { session } of this.#states.values()) {
      if (session.status !== 'in_progress' && session.status !== 'ready') continue;
      const last = session.lastEventAt ?? session.startedAt;
      const limits = expirationsAt(this.#index, session.chargerId);
      // S2 for a ready session (its start never came), S3 for one in progress.
      const limitS = session.status === 'ready' ? limits.readyS : limits.ongoingS;
      if (now - last < limitS * 1000) continue;
      events.push({
        kind: 'expire',
        chargerId: session.chargerId,
        connectorId: session.connectorId,
        receivedAt: now,
        transactionId: session.transactionId,
        lastEventAt: last,
      });
    }
    return events;
  }

  /** The open sessions (ready ones too), for the gateway to know where running transactions live. */
  openSessions(): OpenSession[] {
    return [...this.#states.values()].map((s) => s.session);
  }

  /**
   * The group assigned these partitions to this process. State of partitions it no longer
   * owns is dropped; newly assigned ones are loaded from the store before their first batch
   * (the previous owner stored everything it committed): the state handover.
   */
  assigned(partitions: readonly number[]): void {
    if (this.#owned === null) return;
    const keep = new Set(partitions);
    for (const p of [...this.#owned]) if (!keep.has(p)) this.#owned.delete(p);
    this.#dropStates((p) => !keep.has(p));
    this.#log.info({ partitions }, 'partitions assigned');
  }

  #forget(partition: number): void {
    this.#owned?.delete(partition);
    this.#dropStates((p) => p === partition);
  }

  /** Drops the connector states of the partitions `which` selects. */
  #dropStates(which: (partition: number) => boolean): void {
    for (const key of [...this.#states.keys()]) {
      if (which(partitionFor(key, this.#partitionCount))) this.#states.delete(key);
    }
  }

  async #adopt(partition: number): Promise<void> {
    if (this.#owned === null || this.#owned.has(partition)) return;
    let loading = this.#loading.get(partition);
    if (loading === undefined) {
      loading = (async () => {
        const started = Date.now();
        const recovered = await recover(this.#store, this.#partitionCount, [partition]);
        this.#dropStates((p) => p === partition);
        for (const [key, state] of recovered.states) this.#states.set(key, state);
        this.#highWater.set(partition, recovered.highWater.get(partition) ?? NOTHING_STORED);
        this.#owned?.add(partition);
        await this.#onAdopted?.(partition);
        this.#log.info(
          { partition, openSessions: recovered.states.size, ms: Date.now() - started },
          'partition state rebuilt',
        );
      })().finally(() => this.#loading.delete(partition));
      this.#loading.set(partition, loading);
    }
    await loading;
  }

  /** A batch as events (the Kafka bus). */
  readonly handle: BatchHandler = async (
    partition: number,
    entries: readonly LogEntry[],
    fence?: () => Promise<void>,
  ) => {
    await this.#adopt(partition);
    return this.#process(
      partition,
      {
        connectors: entries.map(({ event }) => connectorKey(event.chargerId, event.connectorId)),
        retries: entries.flatMap(({ event }) => (event.kind === 'retry' ? [event.sessionId] : [])),
        count: entries.length,
        firstOffset: entries[0]!.offset,
        full: entries.length >= this.#batchSize,
      },
      { entries },
      fence,
    );
  };

  /**
   * A batch as the embedded log holds it: its bytes go to the worker, which decodes them; the
   * event loop reads only what the log noted of the batch (its connectors, its retries).
   */
  readonly handleEncoded: EncodedBatchHandler = (partition: number, batch: EncodedBatch) =>
    this.#process(partition, batch, {
      encoded: { bytes: batch.bytes, runs: batch.runs, shapes: batch.shapes },
    });

  async #process(
    partition: number,
    batch: {
      readonly connectors: readonly string[];
      /** The sessions of the batch's retry events (S8). */
      readonly retries: readonly string[];
      readonly count: number;
      readonly firstOffset: number;
      /** Cut at the batch size: the partition is behind. */
      readonly full: boolean;
    },
    payload: Pick<TaskInput, 'entries' | 'encoded'>,
    fence?: () => Promise<void>,
  ): Promise<BatchHandled> {
    // One store write completes the batches of many partitions at once; each hands its next
    // batch over in a turn of its own, so frames and acknowledgements are served in between.
    await new Promise((resolve) => setImmediate(resolve));
    const stale = await this.#staleRetries(batch.retries);
    const states: Record<string, string> = {};
    for (const key of batch.connectors) {
      const held = this.#states.get(key);
      if (held !== undefined) states[key] = held.text;
    }
    const queued = performance.now();
    // The states go as their JSON text (HeldState); the events as the log's bytes, moved (the
    // log made the buffer for this batch alone), or, from Kafka, by structured clone.
    const output = await this.#poolFor(partition, batch.full, batch.count).run(
      {
        partition,
        ...payload,
        stale: [...stale],
        states,
        highWater: this.#highWater.get(partition) ?? NOTHING_STORED,
        ...(this.#network === undefined ? {} : { network: this.#network }),
      },
      {
        transferList:
          payload.encoded === undefined ? [] : [payload.encoded.bytes.buffer as ArrayBuffer],
      },
    );
    // Still the partition's owner? (reliability.md 14: a processor frozen past the session
    // timeout wakes up here with a batch the new owner has processed too.)
    await fence?.();
    this.#observe?.taskSeconds((performance.now() - queued) / 1000);
    this.#observe?.batchEvents(batch.count);
    if (output.notifications !== '' && this.#publishNotifications !== undefined)
      await this.#publishNotifications(output.notifications);
    for (const [key, held] of Object.entries(output.states)) {
      if (held === null) this.#states.delete(key);
      else this.#states.set(key, held);
    }
    // Costs go out before the batch is stored: a replay after a crash computes the same ones.
    if (output.costs.length > 0) this.#costs?.(output.costs);
    // Retries this batch ran count as done for the batches after it until the store has
    // their outcome (see #staleRetries).
    const retried = batch.retries.filter((id) => !stale.has(id));
    for (const id of retried)
      this.#retriesUnstored.set(id, (this.#retriesUnstored.get(id) ?? 0) + 1);
    // The partition's next batch may be processed while these rows are written (the bus
    // commits the batch only once `stored` resolves). Nothing waiting for the write holds on
    // to the events (see EmbeddedLog's #drive).
    const events = batch.count;
    const stored = this.#sink
      .write({
        partition,
        firstOffset: batch.firstOffset,
        lastOffset: output.lastOffset,
        readings: output.readings,
        readingRows: output.readingRows,
        statuses: output.statuses,
        notifications: output.notifications,
        sessions: output.sessions,
        cdrs: output.cdrs,
        // Checked again just before the rows are written: the wait for the write can outlast
        // the partition's ownership too.
        ...(fence === undefined ? {} : { fence }),
      })
      .then(
        () => this.#stored(events, output, retried),
        (error: unknown) => {
          // Fenced at the write: this batch changed the partition's state here but was not
          // stored, so that state is dropped; the partition is loaded from the store again
          // if it comes back to this process.
          this.#forget(partition);
          throw error;
        },
      );
    return { stored };
  }

  /** A batch of `events` events is in the store (the events themselves are let go by now). */
  #stored(events: number, output: TaskOutput, retried: readonly string[]): void {
    for (const id of retried) {
      const left = (this.#retriesUnstored.get(id) ?? 1) - 1;
      if (left > 0) this.#retriesUnstored.set(id, left);
      else this.#retriesUnstored.delete(id);
    }
    if (output.notifications !== '') this.#afterStore?.(output.notifications);
    this.stats.batches += 1;
    this.stats.events += events;
    this.stats.readingsValid += output.readingsValid;
    this.stats.readingsRejected += output.readingsRejected;
    const c = this.workerCounters;
    c.readings.addAll(output.counters.readings);
    c.sessions.addAll(output.counters.sessions);
    c.notifications.addAll(output.counters.notifications);
    c.expirations += output.counters.expirations;
    c.ratedReadings += output.counters.ratedReadings;
    c.ratingSeconds += output.counters.ratingSeconds;
    c.busySeconds += output.counters.busySeconds;
    c.statesKept += output.statesKept;
    c.statesParsed += output.statesParsed;
  }

  /**
   * S8: retries of sessions no longer failed (an earlier retry went through) are stale: the
   * batch runs them as such, so a session is never rated, nor billed, twice. Retries of one
   * session share its connector's partition, so the earlier one is stored by now.
   */
  async #staleRetries(ids: readonly string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const rows = await this.#store.rows<{ session_id: string; status: string }>(
      `SELECT session_id, argMax(status, version) AS status FROM sessions_log
       WHERE session_id IN (${ids.map(sqlString).join(',')}) GROUP BY session_id`,
    );
    // A session retried by an earlier batch whose rows are still being written is not
    // failed any more as far as this batch knows: its retry is stale too.
    const failed = new Set(
      rows
        .filter((r) => r.status === 'rating_failed' || r.status === 'billing_failed')
        .map((r) => r.session_id)
        .filter((id) => !this.#retriesUnstored.has(id)),
    );
    return new Set(ids.filter((id) => !failed.has(id)));
  }

  /**
   * S8, the automatic retry job: failed sessions of this process's partitions whose backoff
   * has passed (1 min after the first failure, doubling up to 1 h; at most
   * `MAX_RATING_ATTEMPTS` attempts), as the retry events to publish.
   */
  async failedRatings(now: number): Promise<RatingRetried[]> {
    const owned = this.#owned === null ? null : [...this.#owned];
    if (owned !== null && owned.length === 0) return [];
    const rows = await this.#store.rows<{ session_id: string; state: string }>(
      `SELECT session_id, argMax(state, version) AS state FROM sessions_log
       ${owned === null ? '' : `WHERE log_partition IN (${owned.join(',')})`}
       GROUP BY session_id HAVING argMax(status, version) IN ('rating_failed', 'billing_failed')`,
    );
    const due: RatingRetried[] = [];
    for (const row of rows) {
      const session = JSON.parse(row.state) as SessionState;
      const attempts = session.ratingAttempts ?? 1;
      if (attempts >= MAX_RATING_ATTEMPTS) continue;
      const wait = Math.min(3_600_000, 60_000 * 2 ** (attempts - 1));
      if (now - (session.failedAt ?? 0) < wait) continue;
      due.push(retryOf(session, row.state, now));
    }
    return due;
  }

  /** Tasks waiting for a worker thread. */
  get queueSize(): number {
    return this.#pools.reduce((n, pool) => n + pool.queueSize, 0);
  }

  get threads(): number {
    return this.#pools.reduce((n, pool) => n + pool.threads.length, 0);
  }

  async close(): Promise<void> {
    await Promise.all(this.#pools.map((pool) => pool.close()));
  }
}
