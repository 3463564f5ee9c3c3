import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kafka, Partitioners, logLevel } from 'kafkajs';
import type { KafkaMessage } from 'kafkajs';
import {
  assembleKafka,
  brokerStatus,
  startLocalBroker,
  stopLocalBroker,
} from '../../src/kafka/local-broker.js';
import type { LocalBroker } from '../../src/kafka/local-broker.js';
import { freePort } from '../../src/lib/free-port.js';

/** The broker's pid is reaped by this process (it spawned it), so "gone" can take a moment. */
async function processGone(pid: number): Promise<boolean> {
  for (let i = 0; i < 50; i += 1) {
    try {
      process.kill(pid, 0);
    } catch {
      return true;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

describe('local Kafka broker (KRaft, single node)', () => {
  let dataDir = '';
  let broker: LocalBroker | undefined;
  const started = (): LocalBroker => {
    if (broker === undefined) throw new Error('the broker did not start');
    return broker;
  };

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'chargestream-kafka-'));
    const libsDir = await assembleKafka();
    const port = await freePort();
    let controllerPort = await freePort();
    while (controllerPort === port) controllerPort = await freePort();
    broker = await startLocalBroker({ port, controllerPort, dataDir, libsDir, heapMb: 384 });
  }, 120_000);

  afterAll(async () => {
    await broker?.stop();
    // Also through the pid file: if startLocalBroker was still pending when the hook timed
    // out, `broker` is unset but a detached JVM may already be running from dataDir.
    if (dataDir !== '') await stopLocalBroker(dataDir);
    if (dataDir !== '') await rm(dataDir, { recursive: true, force: true });
  }, 60_000);

  it('reports itself running through the pid file', async () => {
    const b = started();
    const status = await brokerStatus(dataDir);
    expect(status).toMatchObject({ running: true, pid: b.pid, port: b.port, brokers: b.brokers });
  });

  it('creates a 3-partition topic and round-trips a message produced with acks=-1', async () => {
    const b = started();
    const kafka = new Kafka({
      clientId: 'local-broker-test',
      brokers: [b.brokers],
      logLevel: logLevel.ERROR,
    });
    const topic = `local-broker-${randomUUID()}`;

    const admin = kafka.admin();
    await admin.connect();
    try {
      await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
      const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
      expect(metadata.topics[0]?.partitions).toHaveLength(3);
    } finally {
      await admin.disconnect();
    }

    const producer = kafka.producer({
      createPartitioner: Partitioners.DefaultPartitioner,
      allowAutoTopicCreation: false,
    });
    await producer.connect();
    const value = `hello ${randomUUID()}`;
    try {
      const [record] = await producer.send({
        topic,
        acks: -1,
        messages: [{ key: 'CP-1/1', value }],
      });
      expect(record?.errorCode).toBe(0);
    } finally {
      await producer.disconnect();
    }

    const consumer = kafka.consumer({ groupId: `local-broker-test-${randomUUID()}` });
    await consumer.connect();
    try {
      await consumer.subscribe({ topic, fromBeginning: true });
      const received = await new Promise<KafkaMessage>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no message within 60 s')), 60_000);
        consumer
          .run({
            eachMessage: ({ message }) => {
              clearTimeout(timer);
              resolve(message);
              return Promise.resolve();
            },
          })
          .catch(reject);
      });
      expect(received.key?.toString()).toBe('CP-1/1');
      expect(received.value?.toString()).toBe(value);
    } finally {
      await consumer.disconnect();
    }
  }, 120_000);

  it('stops through the pid file and leaves no process behind', async () => {
    const b = started();
    expect(await stopLocalBroker(dataDir)).toBe(true);
    expect(await brokerStatus(dataDir)).toMatchObject({ running: false, stalePid: undefined });
    expect(await processGone(b.pid)).toBe(true);
    // stop() on the handle after the CLI path stopped it is a no-op, not an error.
    await b.stop();
    expect(await stopLocalBroker(dataDir)).toBe(false);
  }, 60_000);
});
