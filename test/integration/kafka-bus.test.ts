import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { Kafka, logLevel } from 'kafkajs';
import { describe, expect, inject, it } from 'vitest';
import { MAX_UNSTORED_BATCHES, type LogEntry } from '../../src/bus/bus.js';
import { KafkaBus } from '../../src/bus/kafka-bus.js';
import { partitionFor } from '../../src/bus/partitioner.js';
import type { ChargerEvent } from '../../src/ocpp/events.js';

const log = pino({ level: 'silent' });

function open(prefix: string, groupId = `${prefix}-group`): Promise<KafkaBus> {
  return KafkaBus.open({
    brokers: [inject('kafkaBrokers')],
    clientId: `test-${randomUUID()}`,
    topicPrefix: prefix,
    partitions: 4,
    groupId,
    batchSize: 50,
    log,
  });
}

const status = (chargerId: string, connectorId: number, n: number): ChargerEvent => ({
  kind: 'status',
  chargerId,
  connectorId,
  receivedAt: n,
  ts: n,
  status: 'Available',
  errorCode: 'NoError',
  info: '',
  vendorErrorCode: '',
});

async function until(
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('Kafka bus on the real broker', () => {
  it('keeps every connector in order within its partition, under concurrent publishers', async () => {
    const prefix = `t-${randomUUID()}`;
    const producer = await open(prefix);
    const consumer = await open(prefix);
    const seen: Array<{ partition: number; entry: LogEntry }> = [];
    await consumer.consume((partition, entries) => {
      for (const entry of entries) seen.push({ partition, entry });
      return Promise.resolve();
    });
    const n = 2000;
    await Promise.all(
      Array.from({ length: n }, (_, i) => producer.publish(status(`CP${i % 25}`, 1 + (i % 3), i))),
    );
    await until(() => seen.length >= n);
    expect(seen).toHaveLength(n);
    const last = new Map<string, { n: number; offset: number }>();
    for (const { partition, entry } of seen) {
      const key = `${entry.event.chargerId}/${entry.event.connectorId}`;
      expect(partition).toBe(partitionFor(key, 4));
      const previous = last.get(key);
      if (previous !== undefined) {
        expect(entry.event.receivedAt).toBeGreaterThan(previous.n);
        expect(entry.offset).toBeGreaterThan(previous.offset);
      }
      last.set(key, { n: entry.event.receivedAt, offset: entry.offset });
    }
    await producer.close();
    await consumer.close();
  });

  it('commits only what the handler finished: a batch that failed is delivered again to the next owner', async () => {
    const prefix = `t-${randomUUID()}`;
    const producer = await open(prefix);
    // Two sends, so two Kafka messages: offsets are committed per message.
    await Promise.all(Array.from({ length: 50 }, (_, i) => producer.publish(status('CP1', 1, i))));
    await Promise.all(
      Array.from({ length: 50 }, (_, i) => producer.publish(status('CP1', 1, 50 + i))),
    );
    const first = await open(prefix);
    let handled = 0;
    await first.consume((_p, entries) => {
      handled += entries.length;
      // The first batch is stored; the second fails (the store is down), then the process goes.
      return handled <= 50 ? Promise.resolve() : Promise.reject(new Error('store down'));
    });
    await until(() => handled > 50);
    await first.close().catch(() => undefined);
    const second = await open(prefix);
    const redelivered: number[] = [];
    await second.consume((_p, entries) => {
      redelivered.push(...entries.map((e) => e.event.receivedAt));
      return Promise.resolve();
    });
    await until(() => redelivered.includes(99));
    // Everything after the committed first batch, nothing of it.
    expect(redelivered[0]).toBe(50);
    expect(redelivered.at(-1)).toBe(99);
    await producer.close();
    await second.close();
  }, 90_000);

  it('hands a partition its next batches while the ones before are stored, up to MAX_UNSTORED_BATCHES.behind ahead while behind, and commits only what was stored, in order', async () => {
    const prefix = `t-${randomUUID()}`;
    const producer = await open(prefix);
    // One send a batch, so one Kafka message of 50 events: a full batch each (a backlog), all
    // of one partition.
    const { behind } = MAX_UNSTORED_BATCHES;
    const batches = behind + 1;
    for (let m = 0; m < batches; m++) {
      await Promise.all(
        Array.from({ length: 50 }, (_, i) => producer.publish(status('CP1', 1, m * 50 + i))),
      );
    }
    const admin = new Kafka({
      brokers: [inject('kafkaBrokers')],
      logLevel: logLevel.NOTHING,
    }).admin();
    await admin.connect();
    const partition = partitionFor('CP1/1', 4);
    const committed = async () => {
      const [topic] = await admin.fetchOffsets({
        groupId: `${prefix}-group`,
        topics: [`${prefix}.events`],
      });
      return Number(topic!.partitions.find((p) => p.partition === partition)!.offset);
    };
    const consumer = await open(prefix);
    const handed: number[] = [];
    const stores: Array<() => void> = [];
    await consumer.consume((_p, entries) => {
      handed.push(entries[0]!.event.receivedAt);
      return Promise.resolve({ stored: new Promise<void>((resolve) => stores.push(resolve)) });
    });
    const firsts = (n: number) => Array.from({ length: n }, (_, m) => m * 50);
    // The next batches are processed while the first is not stored yet; the last one waits.
    await until(() => handed.length === behind);
    await new Promise((r) => setTimeout(r, 500));
    expect(handed).toEqual(firsts(behind));
    expect(await committed()).toBe(-1);
    stores[0]!(); // the first batch stored: its message committed, the last batch goes
    await until(() => handed.length === batches);
    expect(handed).toEqual(firsts(batches));
    expect(await committed()).toBe(1);
    stores[2]!(); // the third stored before the second: nothing more is committed yet
    await new Promise((r) => setTimeout(r, 500));
    expect(await committed()).toBe(1);
    stores[1]!(); // now the second and the third are
    await until(async () => (await committed()) === 3);
    for (const store of stores.slice(3)) store();
    await until(() => consumer.stats.consumed === batches * 50);
    await new Promise((r) => setTimeout(r, 200));
    expect(await committed()).toBe(batches);
    await admin.disconnect();
    await producer.close();
    await consumer.close();
  }, 90_000);

  it('hands over the partial batch ending a fetch while the full ones before it are stored', async () => {
    // Nothing more of the partition is fetched until all its batches are stored: a last batch
    // waiting for the ones before it would cost the partition a store write a fetch.
    const prefix = `t-${randomUUID()}`;
    const producer = await open(prefix);
    for (const [first, size] of [
      [0, 50],
      [50, 50],
      [100, 25],
    ] as const) {
      await Promise.all(
        Array.from({ length: size }, (_, i) => producer.publish(status('CP1', 1, first + i))),
      );
    }
    const consumer = await open(prefix);
    const handed: number[] = [];
    const stores: Array<() => void> = [];
    await consumer.consume((_p, entries) => {
      handed.push(entries.length);
      return Promise.resolve({ stored: new Promise<void>((resolve) => stores.push(resolve)) });
    });
    await until(() => handed.length === 3);
    expect(handed).toEqual([50, 50, 25]);
    for (const store of stores) store();
    await until(() => consumer.stats.consumed === 125);
    await producer.close();
    await consumer.close();
  }, 90_000);
});
