import {
  appendFileSync,
  cpSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MAX_UNSTORED_BATCHES, type LogEntry } from '../../src/bus/bus.js';
import { EmbeddedLog, type EmbeddedLogOptions } from '../../src/bus/embedded-log.js';
import { partitionFor } from '../../src/bus/partitioner.js';
import type { ChargerEvent } from '../../src/ocpp/events.js';
import { tempDir } from '../helpers/engine.js';

const status = (chargerId: string, connectorId: number, n: number): ChargerEvent => ({
  kind: 'status',
  chargerId,
  connectorId,
  receivedAt: n,
  ts: n,
  status: 'Available',
  errorCode: 'NoError',
  info: String(n),
  vendorErrorCode: '',
});

const stop = (chargerId: string, connectorId: number, n: number): ChargerEvent => ({
  kind: 'tx_stopped',
  chargerId,
  connectorId,
  receivedAt: n,
  transactionId: 'T1',
  tokenId: 'TAG',
  meterStopWh: 10,
  ts: n,
  reason: 'Local',
  samples: [],
  orphan: false,
});

/** A log in `dir` with nothing committed, fsync off unless asked for. */
const openLog = (
  dir: string,
  options: Omit<EmbeddedLogOptions, 'fsync'> & { fsync?: boolean },
  committed = new Map<number, number>(),
) => EmbeddedLog.open(dir, { fsync: false, ...options }, committed);

/** Collects what the log delivers, per partition, and commits on demand. */
function collector() {
  const seen = new Map<number, LogEntry[]>();
  const handler = (partition: number, entries: readonly LogEntry[]) => {
    seen.set(partition, [...(seen.get(partition) ?? []), ...entries]);
    return Promise.resolve();
  };
  return { seen, handler };
}

describe('embedded partitioned log', () => {
  it('delivers each connector in order within its partition, after the append is durable', async () => {
    const dir = tempDir();
    const log = await openLog(dir, { partitions: 4, fsync: true, batchSize: 7 });
    const { seen, handler } = collector();
    await log.consume(handler);
    await Promise.all(
      Array.from({ length: 200 }, (_, i) => log.publish(status(`CP${i % 10}`, 1 + (i % 2), i))),
    );
    await new Promise((r) => setTimeout(r, 50));
    expect([...seen.values()].flat()).toHaveLength(200);
    for (const [partition, entries] of seen) {
      expect(entries.map((e) => e.offset)).toEqual(entries.map((_, i) => i));
      for (const { event } of entries)
        expect(partitionFor(`${event.chargerId}/${event.connectorId}`, 4)).toBe(partition);
      const perConnector = new Map<string, number>();
      for (const { event } of entries) {
        const key = `${event.chargerId}/${event.connectorId}`;
        expect(event.receivedAt).toBeGreaterThan(perConnector.get(key) ?? -1);
        perConnector.set(key, event.receivedAt);
      }
    }
    await log.close();
  });

  it('starts a write no sooner than the commit interval after the previous one: frames of the interval share it', async () => {
    const writesFor = async (commitIntervalMs: number) => {
      let writes = 0;
      const log = await openLog(tempDir(), {
        partitions: 2,
        batchSize: 100,
        commitIntervalMs,
        observeWrite: () => (writes += 1),
      });
      await log.publish(status('CP1', 1, 0));
      // Five frames, each in a turn of its own, right after that write.
      const acks: Array<Promise<number>> = [];
      for (let i = 1; i <= 5; i++) {
        acks.push(log.publish(status('CP1', 1, i)).then(() => writes));
        await new Promise((r) => setImmediate(r));
      }
      const writtenAtAck = await Promise.all(acks);
      await log.close();
      return { writes, writtenAtAck };
    };
    // Each frame acknowledged only once the write holding it is done.
    expect(await writesFor(0)).toEqual({ writes: 6, writtenAtAck: [2, 3, 4, 5, 6] });
    expect(await writesFor(200)).toEqual({ writes: 2, writtenAtAck: [2, 2, 2, 2, 2] });
  });

  it('hands a partition its batches about the linger interval apart, a full batch and a stop at once, the partitions spread over the interval', async () => {
    const LINGER = 200;
    const dir = tempDir();
    const opened = performance.now();
    const log = await openLog(dir, { partitions: 2, batchSize: 50, batchLingerMs: LINGER });
    const handed: Array<{ at: number; partition: number; events: ChargerEvent[] }> = [];
    await log.consume((partition, entries) => {
      handed.push({ at: performance.now(), partition, events: entries.map((e) => e.event) });
      return Promise.resolve();
    });
    const until = async (done: () => boolean) => {
      for (let waited = 0; !done() && waited < 5_000; waited += 5)
        await new Promise((r) => setTimeout(r, 5));
    };
    const [c0, c1] = [0, 1].map((partition) =>
      Array.from({ length: 40 }, (_, i) => `CP${i}`).find(
        (id) => partitionFor(`${id}/1`, 2) === partition,
      ),
    ) as [string, string];
    // Partition 0's first turn is at once, partition 1's half an interval later.
    await Promise.all([log.publish(status(c0, 1, 0)), log.publish(status(c1, 1, 0))]);
    await until(() => handed.length === 2);
    const firstAt = (p: number) => handed.find((h) => h.partition === p)!.at - opened;
    expect(firstAt(1)).toBeGreaterThanOrEqual(LINGER / 2 - 1);
    expect(firstAt(0)).toBeLessThan(firstAt(1));

    // A reading every 10 ms on partition 0: a batch about every interval, not one a reading.
    handed.length = 0;
    const first = performance.now();
    for (let i = 1; i <= 90; i++) {
      await log.publish(status(c0, 1, i));
      await new Promise((r) => setTimeout(r, 10));
    }
    const publishing = performance.now() - first;
    await until(() => handed.flatMap((h) => h.events).length === 90);
    const batches = handed.filter((h) => h.partition === 0);
    expect(batches.flatMap((b) => b.events.map((e) => e.receivedAt))).toEqual(
      Array.from({ length: 90 }, (_, i) => i + 1),
    );
    expect(batches.length).toBeGreaterThanOrEqual(2);
    expect(batches.length).toBeLessThanOrEqual(Math.ceil(publishing / LINGER) + 1);
    // Turns keep their spacing (a late one does not push the later ones back).
    const spacing = (batches.at(-1)!.at - batches[0]!.at) / (batches.length - 1);
    expect(spacing).toBeGreaterThanOrEqual(LINGER * 0.8);

    // A full batch goes without waiting for the partition's turn.
    handed.length = 0;
    await Promise.all(Array.from({ length: 50 }, (_, i) => log.publish(status(c0, 1, 100 + i))));
    expect(handed.map((h) => h.events.length)).toEqual([50]);

    // So does a stop (a 2.0.1 Ended answer waits for its rating): sent right after a batch,
    // it goes long before the partition's next turn, with what is queued before it.
    await log.publish(status(c0, 1, 150));
    await until(() => handed.length === 2);
    await log.publish(status(c0, 1, 151));
    const stopSent = performance.now();
    await log.publish(stop(c0, 1, 200));
    await until(() => handed.some((h) => h.events.some((e) => e.kind === 'tx_stopped')));
    expect(handed.at(-1)!.at - stopSent).toBeLessThan(LINGER / 2);
    expect(handed.at(-1)!.events.map((e) => e.receivedAt)).toEqual([151, 200]);
    await log.close();
  });

  it('closed while a write waits for the commit interval: the waiting frames are written and acknowledged first', async () => {
    const dir = tempDir();
    let writes = 0;
    const log = await openLog(dir, {
      partitions: 2,
      batchSize: 100,
      commitIntervalMs: 200,
      observeWrite: () => (writes += 1),
    });
    await log.publish(status('CP1', 1, 0));
    const waiting = log.publish(status('CP1', 1, 1));
    await log.close();
    await waiting;
    expect(writes).toBe(2);
    const reopened = await openLog(dir, { partitions: 2, batchSize: 100 });
    const { seen, handler } = collector();
    await reopened.consume(handler);
    await new Promise((r) => setTimeout(r, 50));
    expect([...seen.values()].flat().map((e) => e.event.receivedAt)).toEqual([0, 1]);
    await reopened.close();
  });

  it('publishThen: each callback once, in order, after the write; a callback that throws keeps none of the others from theirs; a closed log fails the call', async () => {
    const dir = tempDir();
    let writes = 0;
    const log = await openLog(dir, {
      partitions: 2,
      batchSize: 100,
      observeWrite: () => (writes += 1),
    });
    const called: string[] = [];
    const thrown: unknown[] = [];
    const onThrown = (error: unknown) => thrown.push(error);
    process.on('uncaughtException', onThrown);
    try {
      for (let n = 0; n < 4; n++) {
        log.publishThen(
          status(`CP${n}`, 1, n),
          () => {
            called.push(`durable ${n} after ${writes} write(s)`);
            if (n === 1) throw new Error('a callback that throws');
          },
          (error) => called.push(`failed ${n}: ${error.message}`),
        );
      }
      expect(called).toEqual([]);
      await new Promise((r) => setTimeout(r, 30));
      expect(called).toEqual([0, 1, 2, 3].map((n) => `durable ${n} after 1 write(s)`));
      expect(thrown).toEqual([new Error('a callback that throws')]);
    } finally {
      process.off('uncaughtException', onThrown);
    }
    await log.close();
    const failed = await new Promise<Error>((resolve) =>
      log.publishThen(
        status('CP9', 1, 9),
        () => resolve(new Error('durable after close')),
        resolve,
      ),
    );
    expect(failed.message).toMatch(/closed/);
  });

  it('replays what was not committed after a restart, and continues the offsets', async () => {
    const dir = tempDir();
    const first = await openLog(dir, { partitions: 2, batchSize: 100 });
    for (let i = 0; i < 10; i++) await first.publish(status('CP1', 1, i));
    await first.close();
    const p = partitionFor('CP1/1', 2);
    // The store had committed offsets 0–5 of that partition.
    const second = await openLog(dir, { partitions: 2, batchSize: 100 }, new Map([[p, 6]]));
    const { seen, handler } = collector();
    await second.consume(handler);
    await second.publish(status('CP1', 1, 10));
    await new Promise((r) => setTimeout(r, 20));
    expect(seen.get(p)?.map((e) => e.offset)).toEqual([6, 7, 8, 9, 10]);
    await second.close();
  });

  it('ignores a torn record at the tail (a crash mid-write: never acknowledged)', async () => {
    const dir = tempDir();
    const log = await openLog(dir, { partitions: 1, batchSize: 100 });
    await log.publish(status('CP1', 1, 1));
    await log.close();
    const segment = readdirSync(dir)
      .filter((f) => f.endsWith('.seg'))
      .sort()[0]!;
    appendFileSync(join(dir, segment), Buffer.from([200, 0, 0, 0, 1, 2, 3, 4, 5]));
    const reopened = await openLog(dir, { partitions: 1, batchSize: 100 });
    const { seen, handler } = collector();
    await reopened.consume(handler);
    await new Promise((r) => setTimeout(r, 20));
    expect(seen.get(0)?.map((e) => e.event.receivedAt)).toEqual([1]);
    await reopened.close();
  });

  it('with fsync, segments are zero-filled to their size before use; after a crash the replay reads every record up to the zeros, a torn one left out', async () => {
    const dir = tempDir();
    const segmentBytes = 64 * 1024;
    const log = await openLog(dir, { partitions: 2, batchSize: 1000, fsync: true, segmentBytes });
    const events = Array.from({ length: 1500 }, (_, n) => status(`CP${n % 7}`, 1, n));
    for (const event of events) await log.publish(event); // a record each: segments roll
    const segments = () =>
      readdirSync(dir)
        .filter((f) => f.endsWith('.seg'))
        .sort();
    expect(segments().length).toBeGreaterThanOrEqual(3); // filled, active, prepared next
    for (const f of segments())
      expect(statSync(join(dir, f)).size).toBeGreaterThanOrEqual(segmentBytes);
    // A crash now: the files as they are, and a record torn mid-write after the last one.
    const copy = tempDir();
    cpSync(dir, copy, { recursive: true });
    await log.close();
    const active = join(copy, segments().at(-1)!);
    const data = readFileSync(active);
    let end = 0;
    while (data.readUInt32LE(end) !== 0) end += 8 + data.readUInt32LE(end);
    const torn = openSync(active, 'r+');
    writeSync(torn, Buffer.from([200, 0, 0, 0, 1, 2, 3, 4, 5]), 0, 9, end);
    const reopened = await openLog(copy, {
      partitions: 2,
      batchSize: 1000,
      fsync: true,
      segmentBytes,
    });
    const { seen, handler } = collector();
    await reopened.consume(handler);
    await new Promise((r) => setTimeout(r, 50));
    const replayed = [...seen.values()].flat().map((e) => e.event.receivedAt);
    expect(replayed.sort((a, b) => a - b)).toEqual(events.map((e) => e.receivedAt));
    await reopened.close();
  });

  it('refuses to reopen with another partition count (connectors would move)', async () => {
    const dir = tempDir();
    await (await openLog(dir, { partitions: 3, batchSize: 1 })).close();
    await expect(openLog(dir, { partitions: 4, batchSize: 1 })).rejects.toThrow('--partitions');
  });

  it('holds publishers back when the processor lags (backpressure)', async () => {
    const dir = tempDir();
    const log = await openLog(dir, { partitions: 1, batchSize: 10, maxLag: 5 });
    let release!: () => void;
    await log.consume(() => new Promise<void>((r) => (release = r)));
    const published = Array.from({ length: 8 }, (_, i) => log.publish(status('CP1', 1, i)));
    let settled = 0;
    published.forEach((p) => void p.then(() => settled++));
    await new Promise((r) => setTimeout(r, 30));
    expect(settled).toBe(5);
    release();
    await new Promise((r) => setTimeout(r, 30));
    expect(settled).toBe(8);
    release();
    await log.close();
  });
});

describe('embedded log under processor failure', () => {
  it('a batch the handler fails is retried, never skipped, and order holds', async () => {
    const dir = tempDir();
    const log = await openLog(dir, { partitions: 1, batchSize: 1 });
    const handled: number[] = [];
    let failures = 2;
    await log.consume((_p, entries) => {
      if (entries[0]!.offset === 0 && failures > 0) {
        failures -= 1;
        return Promise.reject(new Error('store down'));
      }
      handled.push(...entries.map((e) => e.offset));
      return Promise.resolve();
    });
    await Promise.all([0, 1, 2].map((i) => log.publish(status('CP1', 1, i))));
    await new Promise((r) => setTimeout(r, 600));
    expect(handled).toEqual([0, 1, 2]);
    expect(log.lag()).toBe(0);
    await log.close();
  });

  it('batches processed but not yet stored let the next ones through (MAX_UNSTORED_BATCHES: full ones six ahead, one with a stop two, others one), and count as committed only once stored', async () => {
    const dir = tempDir();
    const log = await openLog(dir, { partitions: 1, batchSize: 1 });
    const handled: number[] = [];
    const storing: Array<() => void> = [];
    await log.consume((_p, entries) => {
      handled.push(...entries.map((e) => e.offset));
      return Promise.resolve({ stored: new Promise<void>((r) => storing.push(r)) });
    });
    const { behind, stop: withStop, keepingUp } = MAX_UNSTORED_BATCHES;
    const events = behind + 2;
    const offsets = (n: number) => Array.from({ length: n }, (_, i) => i);
    let stored = 0;
    const store = async (n: number) => {
      for (let i = 0; i < n; i++) storing.shift()!();
      stored += n;
      await new Promise((r) => setTimeout(r, 30));
    };
    await Promise.all(offsets(events).map((i) => log.publish(status('CP1', 1, i))));
    await new Promise((r) => setTimeout(r, 30));
    // A backlog (each batch cut at the batch size): that many ahead of the store, no more.
    expect(handled).toEqual(offsets(behind));
    expect(log.lag()).toBe(events);
    expect(log.partitionLag().get(0)).toBe(events);
    await store(1);
    expect(handled).toEqual(offsets(behind + 1));
    expect(log.partitionLag().get(0)).toBe(events - 1);
    // The last event is a batch of its own, not full: it waits until fewer than `keepingUp`
    // batches are unstored.
    await store(behind - keepingUp);
    expect(handled).toEqual(offsets(behind + 1));
    await store(1);
    expect(handled).toEqual(offsets(events));
    expect(log.partitionLag().get(0)).toBe(events - stored);
    // One batch unstored: a stop goes all the same (fewer than `withStop`); the event after
    // it waits again.
    expect(storing).toHaveLength(1);
    expect(withStop).toBeGreaterThan(keepingUp);
    await log.publish(stop('CP1', 1, events));
    await log.publish(status('CP1', 1, events + 1));
    await new Promise((r) => setTimeout(r, 30));
    expect(handled).toEqual(offsets(events + 1));
    await store(storing.length);
    expect(handled).toEqual(offsets(events + 2));
    await log.close();

    // Stopped with batches processed and not stored: they are the ones replayed.
    const again = await openLog(dir, { partitions: 1, batchSize: 10 }, new Map([[0, stored]]));
    const { seen, handler } = collector();
    await again.consume(handler);
    await new Promise((r) => setTimeout(r, 30));
    expect(seen.get(0)?.map((e) => e.offset)).toEqual(offsets(events + 2).slice(stored));
    await again.close();
  });
});
