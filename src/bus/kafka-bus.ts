import {
  Kafka,
  logLevel,
  type Consumer,
  type Producer,
  type Message,
  type ITopicConfig,
} from 'kafkajs';
import { Packr } from 'msgpackr';
import type { Logger } from 'pino';
import { ChargestreamError, errorMessage } from '../lib/errors.js';
import type { ChargerEvent } from '../ocpp/events.js';
import {
  mayHandOver,
  type BatchHandled,
  type BatchHandler,
  type Bus,
  type BusStats,
  type LogEntry,
} from './bus.js';
import { Placements } from './partitioner.js';

/** Heartbeats while a batch waits for the store (the group's session timeout is 10 s). */
const HEARTBEAT_WHILE_STORING_MS = 2_000;
/** Most events one Kafka message carries; an event's bus offset is message offset × this + index. */
export const EVENTS_PER_MESSAGE = 1024;

export interface KafkaBusOptions {
  readonly brokers: readonly string[];
  readonly clientId: string;
  /** Prefix of the engine's topics: `<prefix>.events`, `.transactions`, `.parking`. */
  readonly topicPrefix: string;
  readonly partitions: number;
  /** Consumer group of the processors. */
  readonly groupId: string;
  readonly batchSize: number;
  readonly log: Logger;
  /** Replication factor of created topics (1 on a single-node broker). */
  readonly replicationFactor?: number;
}

export function topics(prefix: string) {
  return {
    events: `${prefix}.events`,
    transactions: `${prefix}.transactions`,
    commands: `${prefix}.commands`,
    commandResults: `${prefix}.command-results`,
    parking: `${prefix}.parking`,
    notifications: `${prefix}.notifications`,
    costs: `${prefix}.costs`,
    config: `${prefix}.config`,
  };
}

/**
 * The bus on Apache Kafka (kafkajs). Events are keyed by chargerId/connectorId and placed in
 * their partition explicitly with the same murmur2 function as the embedded log (kafkajs's
 * default partitioner is not relied on). Publishing group-commits: events published while a
 * send is in flight go out together next, one Kafka message per partition carrying a
 * msgpack-encoded batch, produced with acks=-1 by an idempotent producer. A publish resolves
 * only when Kafka acknowledged it.
 *
 * Consuming is a consumer group: each partition's messages are decoded into entries and
 * handed on in order; offsets are committed only after the handler (the sink) stored them.
 * A message that cannot be decoded goes to the parking topic with its origin in headers.
 */
export class KafkaBus implements Bus {
  readonly partitions: number;
  readonly #options: KafkaBusOptions;
  readonly #kafka: Kafka;
  readonly #topics: ReturnType<typeof topics>;
  /** Records, self-contained per message: see the embedded log; plain maps still decode. */
  readonly #packr = new Packr({ useRecords: true, mapsAsObjects: true, moreTypes: false });
  readonly #placements: Placements;
  #producer: Producer | null = null;
  #consumer: Consumer | null = null;
  #pending: Array<{ partition: number; event: ChargerEvent }> = [];
  #records: Array<{ topic: string; message: Message }> = [];
  #waiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  #sending = false;
  #unacknowledged = 0;
  readonly stats: BusStats = { produced: 0, consumed: 0, parked: 0 };
  /** Consumer lag of the partitions this process was last assigned. */
  readonly #partitionLag = new Map<number, number>();
  /** Group generations joined: a batch fetched in an earlier one is no longer this process's. */
  #generation = 0;
  #closed = false;
  /** Called with the partitions this process owns after each rebalance. */
  onAssignment: (partitions: readonly number[]) => void = () => undefined;

  private constructor(options: KafkaBusOptions) {
    this.#options = options;
    this.partitions = options.partitions;
    this.#placements = new Placements(options.partitions);
    this.#topics = topics(options.topicPrefix);
    this.#kafka = new Kafka({
      clientId: options.clientId,
      brokers: [...options.brokers],
      logLevel: logLevel.NOTHING,
      retry: { retries: 8, initialRetryTime: 200, maxRetryTime: 5000 },
    });
  }

  /** Connects, creating the engine's topics with their configuration if they do not exist. */
  static async open(options: KafkaBusOptions): Promise<KafkaBus> {
    const bus = new KafkaBus(options);
    await bus.#ensureTopics();
    return bus;
  }

  get topics(): ReturnType<typeof topics> {
    return this.#topics;
  }

  get kafka(): Kafka {
    return this.#kafka;
  }

  async #ensureTopics(): Promise<void> {
    const admin = this.#kafka.admin();
    await admin.connect();
    try {
      const replicationFactor = this.#options.replicationFactor ?? 1;
      const wanted: ITopicConfig[] = [
        {
          topic: this.#topics.events,
          numPartitions: this.partitions,
          replicationFactor,
          configEntries: [
            { name: 'min.insync.replicas', value: String(Math.min(2, replicationFactor)) },
          ],
        },
        {
          // Where running transactions live (for stops without connectorId): compacted, one
          // record per transaction, a tombstone when it ends.
          topic: this.#topics.transactions,
          numPartitions: 1,
          replicationFactor,
          configEntries: [{ name: 'cleanup.policy', value: 'compact' }],
        },
        { topic: this.#topics.parking, numPartitions: 1, replicationFactor },
        // N2's bus publisher: every notification, keyed by its stable id (consumers drop a
        // repeat by key: a notification published just before a crash is published again).
        { topic: this.#topics.notifications, numPartitions: this.partitions, replicationFactor },
        // Engine-initiated OCPP calls for the gateway holding the charger, and their results.
        { topic: this.#topics.commands, numPartitions: 1, replicationFactor },
        { topic: this.#topics.commandResults, numPartitions: 1, replicationFactor },
        // Configuration API changes, keyed by entity: compacted, read from the start.
        {
          topic: this.#topics.config,
          numPartitions: 1,
          replicationFactor,
          configEntries: [{ name: 'cleanup.policy', value: 'compact' }],
        },
        // R5.1: 2.0.1 transaction costs for the gateways; only the latest matter.
        {
          topic: this.#topics.costs,
          numPartitions: 1,
          replicationFactor,
          configEntries: [{ name: 'retention.ms', value: String(3600_000) }],
        },
      ];
      const existing = new Set(await admin.listTopics());
      const missing = wanted.filter((t) => !existing.has(t.topic));
      if (missing.length > 0) await admin.createTopics({ topics: missing, waitForLeaders: true });
      const [events] = (await admin.fetchTopicMetadata({ topics: [this.#topics.events] })).topics;
      const count = events?.partitions.length ?? 0;
      if (count !== this.partitions) {
        throw new ChargestreamError(
          'CONFIG_INVALID',
          `--partitions: topic ${this.#topics.events} has ${count} partitions, not ${this.partitions}`,
        );
      }
    } finally {
      await admin.disconnect();
    }
  }

  async #ensureProducer(): Promise<Producer> {
    if (this.#producer !== null) return this.#producer;
    const producer = this.#kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
    });
    await producer.connect();
    this.#producer = producer;
    return producer;
  }

  publishThen(event: ChargerEvent, durable: () => void, failed: (error: Error) => void): void {
    this.publish(event).then(durable, failed);
  }

  publish(event: ChargerEvent): Promise<void> {
    if (this.#closed)
      return Promise.reject(new ChargestreamError('BUS_CLOSED', 'the Kafka bus is closed'));
    const { partition } = this.#placements.of(event.chargerId, event.connectorId);
    this.#pending.push({ partition, event });
    this.#unacknowledged += 1;
    const done = new Promise<void>((resolve, reject) => this.#waiters.push({ resolve, reject }));
    this.#schedule();
    return done;
  }

  /** Sends keyed records to one of the engine's topics; resolves once Kafka acknowledged them. */
  async send(topic: string, messages: readonly Message[]): Promise<void> {
    const producer = await this.#ensureProducer();
    await producer.send({ topic, acks: -1, messages: [...messages] });
  }

  /**
   * Adds a keyed record for another topic to the next send, so it is acknowledged together
   * with the events published in the same turn (a null value is a tombstone).
   */
  record(topic: string, key: string, value: Buffer | null): void {
    this.#records.push({ topic, message: { key, value } });
    this.#schedule();
  }

  #schedule(): void {
    if (this.#sending) return;
    this.#sending = true;
    setImmediate(() => void this.#flush());
  }

  async #flush(): Promise<void> {
    while (this.#pending.length > 0 || this.#records.length > 0) {
      const pending = this.#pending;
      const records = this.#records;
      const waiters = this.#waiters;
      this.#pending = [];
      this.#records = [];
      this.#waiters = [];
      try {
        const producer = await this.#ensureProducer();
        await producer.sendBatch({
          acks: -1,
          topicMessages: this.#topicMessages(pending, records),
        });
        this.stats.produced += pending.length;
        for (const w of waiters) w.resolve();
      } catch (cause) {
        // Not acknowledged: the charger is answered InternalError and resends.
        const error = new ChargestreamError(
          'BUS_CLOSED',
          `Kafka did not acknowledge: ${errorMessage(cause)}`,
          {
            retriable: true,
            cause,
          },
        );
        for (const w of waiters) w.reject(error);
      }
      this.#unacknowledged -= pending.length;
    }
    this.#sending = false;
  }

  #topicMessages(
    pending: ReadonlyArray<{ partition: number; event: ChargerEvent }>,
    records: ReadonlyArray<{ topic: string; message: Message }>,
  ) {
    const byPartition = new Map<number, ChargerEvent[]>();
    for (const { partition, event } of pending) {
      const list = byPartition.get(partition);
      if (list === undefined) byPartition.set(partition, [event]);
      else list.push(event);
    }
    const messages: Message[] = [];
    for (const [partition, events] of byPartition) {
      for (let i = 0; i < events.length; i += EVENTS_PER_MESSAGE) {
        const slice = events.slice(i, i + EVENTS_PER_MESSAGE);
        const first = slice[0]!;
        messages.push({
          partition,
          key: this.#placements.of(first.chargerId, first.connectorId).key,
          value: this.#packr.pack(slice),
        });
      }
    }
    const byTopic = new Map<string, Message[]>();
    for (const { topic, message } of records) {
      const list = byTopic.get(topic);
      if (list === undefined) byTopic.set(topic, [message]);
      else list.push(message);
    }
    return [
      ...(messages.length > 0 ? [{ topic: this.#topics.events, messages }] : []),
      ...[...byTopic].map(([topic, list]) => ({ topic, messages: list })),
    ];
  }

  async consume(handler: BatchHandler): Promise<void> {
    const consumer = this.#kafka.consumer({
      groupId: this.#options.groupId,
      // A processor that died is replaced after 10 s; batches heartbeat as they go, so a long
      // one does not count as dead.
      sessionTimeout: 10_000,
      heartbeatInterval: 1_000,
      allowAutoTopicCreation: false,
      maxBytesPerPartition: 4 * 1024 * 1024,
    });
    this.#consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      this.#generation += 1;
      const assigned = payload.memberAssignment[this.#topics.events] ?? [];
      for (const p of [...this.#partitionLag.keys()])
        if (!assigned.includes(p)) this.#partitionLag.delete(p);
      // Every partition held shows, also before its first batch (nothing read yet: no lag known).
      for (const p of assigned) if (!this.#partitionLag.has(p)) this.#partitionLag.set(p, 0);
      this.onAssignment(assigned);
    });
    await consumer.connect();
    await consumer.subscribe({ topics: [this.#topics.events], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: Math.max(1, this.partitions),
      eachBatch: async (payload) => {
        const { batch } = payload;
        const generation = this.#generation;
        // A heartbeat after a long pause is refused by the coordinator once the group moved
        // on (the error ends this batch, and kafkajs rejoins); a rejoin meanwhile shows in the
        // generation.
        const fence = async () => {
          try {
            await payload.heartbeat();
            if (generation !== this.#generation || !payload.isRunning())
              throw new ChargestreamError(
                'PARTITION_REVOKED',
                `partition ${batch.partition}: the group was rebalanced while the batch was in flight`,
              );
          } catch (error) {
            this.#options.log.warn(
              { partition: batch.partition, err: errorMessage(error) },
              'batch fenced: the partition is no longer this processor’s',
            );
            throw error;
          }
        };
        const entries: LogEntry[] = [];
        let through: string | null = null;
        // The batches handed over and not yet stored and committed, oldest first.
        const settling: Array<Promise<void>> = [];
        /**
         * Waits for a handed-over batch to be stored and for the batch before it (`before`) to
         * be committed, then commits its offsets (`upTo`, the last message it took from).
         * Offsets go to Kafka only then, so the wait heartbeats: a store outage longer than the
         * session timeout would otherwise cost this processor its partitions while its write is
         * retried.
         */
        const settle = async (
          handled: void | BatchHandled,
          count: number,
          upTo: string | null,
          before: Promise<void> | undefined,
        ): Promise<void> => {
          const beat = setInterval(() => {
            payload.heartbeat().catch(() => undefined); // a lost partition shows in the fence
          }, HEARTBEAT_WHILE_STORING_MS);
          try {
            await handled?.stored;
            await before;
          } finally {
            clearInterval(beat);
          }
          this.stats.consumed += count;
          if (upTo !== null) {
            this.#partitionLag.set(
              batch.partition,
              Math.max(0, Number(batch.highWatermark) - Number(upTo) - 1),
            );
            payload.resolveOffset(upTo);
            await consumer.commitOffsets([
              {
                topic: batch.topic,
                partition: batch.partition,
                offset: (BigInt(upTo) + 1n).toString(),
              },
            ]);
          }
          await payload.heartbeat();
        };
        /**
         * Hands the gathered events over. The next batches are processed while this one is
         * being stored, as in the embedded log (a partition's next batch waiting for the write
         * bound the stored rate to what one batch a store interval carries, bench/RESULTS.md);
         * each is committed only after the one before it, so offsets go to Kafka in order, and
         * no more batches of a partition are ahead of the store than mayHandOver lets.
         */
        const deliver = async (ending: boolean) => {
          const count = entries.length;
          const upTo = through;
          through = null;
          // The batch ending a fetch goes as a full one would: nothing more of the partition is
          // fetched until every batch handed over is stored, so waiting for those before it
          // only cost the partition a store write a fetch (bench/RESULTS.md).
          const full = ending || count >= this.#options.batchSize;
          const stop = !full && entries.some(({ event }) => event.kind === 'tx_stopped');
          // A failure (a fenced write) surfaces here, where the batch is awaited.
          while (!mayHandOver(settling.length, { full, stop })) await settling.shift();
          // Handed over and let go: nothing waiting for the store holds the events.
          const handled =
            count > 0 ? await handler(batch.partition, entries.splice(0), fence) : undefined;
          const settled = settle(handled, count, upTo, settling.at(-1));
          settled.catch(() => undefined);
          settling.push(settled);
        };
        for (const message of batch.messages) {
          if (!payload.isRunning() || payload.isStale()) break;
          const decoded = this.#decode(message.value);
          if (decoded === null) {
            await this.#park(batch.partition, message);
          } else {
            const base = Number(message.offset) * EVENTS_PER_MESSAGE;
            decoded.forEach((event, i) => entries.push({ offset: base + i, event }));
          }
          through = message.offset;
          if (entries.length >= this.#options.batchSize) await deliver(false);
        }
        if (payload.isRunning() && !payload.isStale()) await deliver(true);
        while (settling.length > 0) await settling.shift();
      },
    });
  }

  #decode(value: Buffer | null): ChargerEvent[] | null {
    if (value === null) return null;
    try {
      const events = this.#packr.unpack(value) as unknown;
      return Array.isArray(events) ? (events as ChargerEvent[]) : null;
    } catch {
      return null;
    }
  }

  async #park(
    partition: number,
    message: { offset: string; value: Buffer | null; key: Buffer | null },
  ): Promise<void> {
    const producer = await this.#ensureProducer();
    await producer.send({
      topic: this.#topics.parking,
      acks: -1,
      messages: [
        {
          key: message.key,
          value: message.value,
          headers: {
            reason: 'undecodable',
            'origin-partition': String(partition),
            'origin-offset': message.offset,
          },
        },
      ],
    });
    this.stats.parked += 1;
    this.#options.log.warn({ partition, offset: message.offset }, 'undecodable message parked');
  }

  lag(): number {
    return this.#unacknowledged;
  }

  partitionLag(): ReadonlyMap<number, number> {
    return this.#partitionLag;
  }

  async close(): Promise<void> {
    this.#closed = true;
    while (this.#sending) await new Promise((r) => setTimeout(r, 5));
    await this.#consumer?.disconnect();
    await this.#producer?.disconnect();
  }
}
