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
export async function followTransactions(
  bus: KafkaBus,
  registry: TransactionRegistry,
  log: Logger,
): Promise<() => Promise<void>> {
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
  const [offsets] = [await admin.fetchTopicOffsets(topic)];
  await admin.disconnect();
  // The last offset present now: caught up once it is read (the topic has one partition).
  const target = BigInt(offsets[0]?.high ?? '0') - 1n;
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
      if (BigInt(message.offset) >= target) resolveCaughtUp();
      return Promise.resolve();
    },
  });
  await caughtUp;
  log.info({ applied, running: registry.running }, 'transaction journal caught up');
  return () => consumer.disconnect();
}
