import { randomUUID } from 'node:crypto';
import { Packr } from 'msgpackr';
import type { Logger } from 'pino';
import type { KafkaBus } from '../bus/kafka-bus.js';
import type { TransactionRegistry } from './transactions.js';

const packr = new Packr({ useRecords: false });

/**
 * Distributed mode: the gateways share where running transactions live through a compacted
 * topic. Each gateway journals its changes there — in the same send as the event that caused
 * them, so a start is acknowledged only with its mapping durable — and follows the topic from
 * the beginning, catching up before it accepts chargers.
 */
export interface TransactionFollower {
  /**
   * Waits (at most `timeoutMs`) until everything journaled so far is applied: read-your-writes
   * for a stop whose start went through another gateway a moment ago.
   */
  settle(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export async function followTransactions(
  bus: KafkaBus,
  registry: TransactionRegistry,
  log: Logger,
): Promise<TransactionFollower> {
  const topic = bus.topics.transactions;
  registry.journal = (chargerId, transactionId, home, start) => {
    bus.record(
      topic,
      `${chargerId}|${transactionId}`,
      home === null ? null : packr.pack({ c: home.connectorId, s: start }),
    );
  };
  const admin = bus.kafka.admin();
  await admin.connect();
  const high = async () => BigInt((await admin.fetchTopicOffsets(topic))[0]?.high ?? '0');
  // The last offset present now: caught up once it is read (the topic has one partition).
  const target = (await high()) - 1n;
  let consumed = -1n;
  let resolveCaughtUp!: () => void;
  const caughtUp = new Promise<void>((r) => (resolveCaughtUp = r));
  if (target < 0n) resolveCaughtUp();
  const consumer = bus.kafka.consumer({
    groupId: `${topic}.follower.${randomUUID()}`,
    allowAutoTopicCreation: false,
  });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  let applied = 0;
  await consumer.run({
    autoCommit: false,
    eachMessage: ({ message }) => {
      const key = message.key?.toString() ?? '';
      const bar = key.indexOf('|');
      if (bar > 0) {
        const chargerId = key.slice(0, bar);
        const transactionId = key.slice(bar + 1);
        if (message.value === null) registry.apply(chargerId, transactionId, null, null);
        else {
          const { c, s } = packr.unpack(message.value) as { c: number; s: string | null };
          registry.apply(chargerId, transactionId, { chargerId, connectorId: c }, s);
        }
        applied += 1;
      }
      consumed = BigInt(message.offset);
      if (consumed >= target) resolveCaughtUp();
      return Promise.resolve();
    },
  });
  await caughtUp;
  log.info({ applied, running: registry.running }, 'transaction journal caught up');
  return {
    async settle(timeoutMs = 2000) {
      const deadline = Date.now() + timeoutMs;
      const goal = (await high()) - 1n;
      while (consumed < goal && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    },
    async stop() {
      await consumer.disconnect();
      await admin.disconnect();
    },
  };
}
