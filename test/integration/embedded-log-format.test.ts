import { copyFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import type { EncodedBatch, LogEntry } from '../../src/bus/bus.js';
import { EmbeddedLog } from '../../src/bus/embedded-log.js';
import {
  decodeRuns,
  EventPacker,
  EventUnpacker,
  MAX_SHARED_SHAPES,
  MAX_WORDS,
} from '../../src/bus/event-codec.js';
import { partitionFor } from '../../src/bus/partitioner.js';
import type { ChargerEvent, MeterValuesReported } from '../../src/ocpp/events.js';
import { markStale } from '../../src/sessions/held-state.js';
import { tempDir } from '../helpers/engine.js';

const reading = (chargerId: string, n: number): MeterValuesReported => ({
  kind: 'meter_values',
  chargerId,
  connectorId: 1,
  receivedAt: 1_700_000_000_000 + n,
  transactionId: String(n % 3),
  samples: [
    {
      ts: 1_700_000_000_000 + n,
      measurand: 'Energy.Active.Import.Register',
      phase: '',
      value: n * 5,
      unit: 'Wh',
      context: 'Sample.Periodic',
    },
    {
      ts: 1_700_000_000_000 + n,
      measurand: 'Power.Active.Import',
      phase: 'L1',
      value: 7_400.5,
      unit: 'W',
      context: 'Sample.Periodic',
    },
  ],
});

async function replay(dir: string, partitions: number): Promise<ChargerEvent[]> {
  const log = await EmbeddedLog.open(dir, { partitions, fsync: false, batchSize: 100 }, new Map());
  const seen: LogEntry[] = [];
  await log.consume((_partition, entries) => {
    seen.push(...entries);
    return Promise.resolve();
  });
  await new Promise((r) => setTimeout(r, 50));
  await log.close();
  return seen.map((e) => e.event);
}

const status = (chargerId: string, n: number): ChargerEvent => ({
  kind: 'status',
  chargerId,
  connectorId: 1 + (n % 2),
  receivedAt: 1_700_000_000_000 + n,
  ts: 1_700_000_000_000 + n,
  status: n % 3 === 0 ? 'Charging' : 'Available',
  errorCode: 'NoError',
  info: '',
  vendorErrorCode: '',
});

/** A segment of one record as the log wrote it before runs: [partition, offset, event] triples. */
function oldSegment(dir: string, partitions: number, events: ChargerEvent[], packr: Packr): void {
  writeFileSync(join(dir, 'meta.json'), JSON.stringify({ partitions }));
  const next = new Map<number, number>();
  const records = events.map((event): [number, number, ChargerEvent] => {
    const p = partitionFor(`${event.chargerId}/${event.connectorId}`, partitions);
    const offset = next.get(p) ?? 0;
    next.set(p, offset + 1);
    return [p, offset, event];
  });
  const body = packr.pack(records);
  const header = Buffer.alloc(8);
  header.writeUInt32LE(body.length, 0);
  header.writeUInt32LE(crc32(body), 4);
  writeFileSync(join(dir, '000000000001.seg'), Buffer.concat([header, body]));
}

describe('embedded log record format (runs of shared-shape msgpack)', () => {
  it('replays what it wrote, every event as it was published', async () => {
    const dir = tempDir();
    const log = await EmbeddedLog.open(
      dir,
      { partitions: 4, fsync: true, batchSize: 50 },
      new Map(),
    );
    const events = Array.from({ length: 120 }, (_, i) => reading(`CP${i % 7}`, i));
    await Promise.all(events.map((e) => log.publish(e)));
    await log.close();
    const replayed = await replay(dir, 4);
    const key = (e: ChargerEvent) => `${e.chargerId}/${e.receivedAt}`;
    expect(replayed.map(key).sort()).toEqual(events.map(key).sort());
    const byKey = new Map(events.map((e) => [key(e), e]));
    for (const e of replayed) expect(e).toEqual(byKey.get(key(e)));
  });

  it('replays segments written before records (plain msgpack maps)', async () => {
    const dir = tempDir();
    const events = Array.from({ length: 10 }, (_, i) => reading(`OLD${i % 3}`, i));
    oldSegment(dir, 4, events, new Packr({ useRecords: false, moreTypes: false }));
    const replayed = await replay(dir, 4);
    expect(replayed).toHaveLength(events.length);
    for (const e of replayed) expect(events).toContainEqual(e);
  });

  it('replays segments written before runs (msgpackr records), then goes on after them', async () => {
    const dir = tempDir();
    const before = Array.from({ length: 12 }, (_, i) => reading(`OLD${i % 3}`, i));
    const packr = new Packr({ useRecords: true, mapsAsObjects: true, moreTypes: false });
    oldSegment(dir, 4, before, packr);
    const log = await EmbeddedLog.open(
      dir,
      { partitions: 4, fsync: true, batchSize: 50 },
      new Map(),
    );
    const after = Array.from({ length: 12 }, (_, i) => reading(`OLD${i % 3}`, 100 + i));
    for (const e of after) await log.publish(e);
    await log.close();
    const replayed = await replay(dir, 4);
    const key = (e: ChargerEvent) => `${e.chargerId}/${e.receivedAt}`;
    expect(replayed.map(key).sort()).toEqual([...before, ...after].map(key).sort());
  });

  /** Two partitions, batches of 7, segments of 1 KiB: the log rolls while new shapes keep appearing. */
  const smallSegments = (dir: string) =>
    EmbeddedLog.open(
      dir,
      { partitions: 2, fsync: false, batchSize: 7, segmentBytes: 1024 },
      new Map(),
    );
  /** Readings and statuses in turn, of five chargers. */
  const mixed = Array.from({ length: 60 }, (_, i) =>
    i % 2 === 0 ? reading(`CP${i % 5}`, i) : status(`CP${i % 5}`, i),
  );

  it('hands batches over as bytes that decode to the events published, with their offsets', async () => {
    const log = await smallSegments(tempDir());
    const batches: Array<{ partition: number; batch: EncodedBatch }> = [];
    await log.consumeEncoded((partition, batch) => {
      batches.push({ partition, batch });
      return Promise.resolve();
    });
    for (const e of mixed) await log.publish(e);
    await new Promise((r) => setTimeout(r, 50));
    await log.close();
    const published = new Map<number, ChargerEvent[]>();
    for (const e of mixed) {
      const p = partitionFor(`${e.chargerId}/${e.connectorId}`, 2);
      published.set(p, [...(published.get(p) ?? []), e]);
    }
    const unpacker = new EventUnpacker();
    const handed = new Map<number, LogEntry[]>();
    for (const { partition, batch } of batches) {
      expect(batch.count).toBeLessThanOrEqual(7);
      const entries = decodeRuns(batch, new EventUnpacker());
      expect(entries).toHaveLength(batch.count);
      expect(entries[0]!.offset).toBe(batch.firstOffset);
      expect(entries.at(-1)!.offset).toBe(batch.lastOffset);
      expect(new Set(batch.connectors)).toEqual(
        new Set(entries.map(({ event }) => `${event.chargerId}/${event.connectorId}`)),
      );
      handed.set(partition, [...(handed.get(partition) ?? []), ...decodeRuns(batch, unpacker)]);
    }
    for (const [partition, entries] of handed) {
      expect(entries.map((e) => e.offset)).toEqual(entries.map((_, i) => i));
      expect(entries.map((e) => e.event)).toEqual(published.get(partition));
    }
  });

  it('marks a batch cut at the batch size as full (a backlog), the batch that empties the queue not', async () => {
    // Batches are whole runs (one a partition and write), so a backlog's batches hold fewer
    // events than the most: runs of 3 in batches of at most 10 make batches of 9.
    const log = await EmbeddedLog.open(
      tempDir(),
      { partitions: 1, fsync: false, batchSize: 10 },
      new Map(),
    );
    const handed: Array<{ count: number; full: boolean }> = [];
    let release = () => {};
    const held = new Promise<void>((r) => (release = r));
    await log.consumeEncoded(async (_partition, batch) => {
      handed.push({ count: batch.count, full: batch.full });
      if (handed.length === 1) await held;
    });
    for (let run = 0; run < 5; run++)
      await Promise.all([0, 1, 2].map((i) => log.publish(reading('CP1', run * 3 + i))));
    release();
    await new Promise((r) => setTimeout(r, 50));
    await log.close();
    expect(handed).toEqual([
      { count: 3, full: false },
      { count: 9, full: true },
      { count: 3, full: false },
    ]);
  });

  it('carries in each segment the shapes list its events decode with', async () => {
    const dir = tempDir();
    // Nothing consumed, so no segment is retired.
    const log = await smallSegments(dir);
    for (const e of mixed) await log.publish(e);
    await log.close();
    const segments = readdirSync(dir)
      .filter((f) => f.endsWith('.seg'))
      .sort();
    expect(segments.length).toBeGreaterThan(4);
    // The last segments alone decode, readings and statuses: the shapes list of every segment
    // holds the shapes first seen in earlier ones.
    const alone = tempDir();
    writeFileSync(join(alone, 'meta.json'), JSON.stringify({ partitions: 2 }));
    for (const segment of segments.slice(-3))
      copyFileSync(join(dir, segment), join(alone, segment));
    const replayed = await replay(alone, 2);
    expect(new Set(replayed.map((e) => e.kind))).toEqual(new Set(['meter_values', 'status']));
    for (const e of replayed) expect(mixed).toContainEqual(e);
  });

  it('decodes events of more shapes than msgpackr has shared ids for', () => {
    const packer = new EventPacker();
    const unpacker = new EventUnpacker();
    for (let n = 0; n < 3 * MAX_SHARED_SHAPES; n++) {
      // A shape of its own each time: a key named after n.
      const event: ChargerEvent = { ...reading('CP1', n), [`extra${n}`]: n };
      const bytes = Buffer.from(packer.pack([event]));
      expect(unpacker.unpack(packer.shapes, bytes)).toEqual([event]);
    }
    expect(packer.shapeCount).toBeLessThanOrEqual(MAX_SHARED_SHAPES);
  });

  it("decodes the readings' words from the words list, signed, unreadable and stop readings too", () => {
    const signed = {
      data: 'OCMF|{}|{}',
      signingMethod: '',
      encodingMethod: '',
      publicKey: '',
    };
    const events: ChargerEvent[] = [
      reading('CP1', 1),
      {
        ...reading('CP2', 2),
        samples: [
          { ...reading('CP2', 2).samples[0]!, signed },
          { ...reading('CP2', 2).samples[1]!, value: Number.NaN, unit: 'kvarh', phase: 'L2-N' },
        ],
      },
      { ...reading('CP3', 3), samples: [] },
      {
        kind: 'tx_stopped',
        chargerId: 'CP1',
        connectorId: 1,
        receivedAt: 5,
        transactionId: '1',
        tokenId: 'T',
        meterStopWh: null,
        ts: 5,
        reason: 'Local',
        samples: reading('CP1', 4).samples,
        orphan: false,
      },
    ];
    const packer = new EventPacker();
    const before = structuredClone(events);
    // The same event twice in one call, as a caller publishing one object twice makes it.
    const bytes = Buffer.from(packer.pack([...events, events[0]!]));
    // The events are lent to the packer, and given back as they were.
    expect(events).toEqual(before);
    const decoded = new EventUnpacker().unpack(packer.shapes, bytes);
    expect(decoded).toEqual([...events, events[0]]);
    expect(Object.keys((decoded[1] as { samples: object[] }).samples[1]!)).not.toContain('signed');
    expect((JSON.parse(packer.shapes) as { w: string[] }).w).toEqual([
      'Energy.Active.Import.Register',
      '',
      'Wh',
      'Sample.Periodic',
      'Power.Active.Import',
      'L1',
      'W',
      'L2-N',
      'kvarh',
    ]);
    // Five readings: the words are a byte each (280 bytes with the words as text).
    expect(bytes.length / (events.length + 1)).toBeLessThan(200);
  });

  it('writes words past the list as text, and decodes records of the shapes list alone', () => {
    const packer = new EventPacker();
    const unpacker = new EventUnpacker();
    const made = (n: number): ChargerEvent => {
      const event = reading('CP1', n);
      return { ...event, samples: event.samples.map((s) => ({ ...s, unit: `u${n}` })) };
    };
    for (let n = 0; n < MAX_WORDS + 10; n += 1) {
      const bytes = Buffer.from(packer.pack([made(n)]));
      if (n % 500 === 0 || n >= MAX_WORDS - 2)
        expect(unpacker.unpack(packer.shapes, bytes)).toEqual([made(n)]);
    }
    expect((JSON.parse(packer.shapes) as { w: string[] }).w).toHaveLength(MAX_WORDS);
    // As records were written before the words list: the shapes list alone, samples as objects.
    const shapes: string[][] = [];
    const old = new Packr({
      structures: shapes,
      maxSharedStructures: MAX_SHARED_SHAPES,
      mapsAsObjects: true,
      moreTypes: false,
    });
    const events = [reading('CP1', 1), status('CP2', 2)];
    const bytes = Buffer.from(old.pack(events));
    expect(new EventUnpacker().unpack(JSON.stringify(shapes), bytes)).toEqual(events);
  });

  it('marks the retry events of stale sessions when decoding (S8)', () => {
    const retry = (sessionId: string): ChargerEvent => ({
      kind: 'retry',
      chargerId: 'CP1',
      connectorId: 1,
      receivedAt: 1,
      sessionId,
      state: '{}',
    });
    const packer = new EventPacker();
    const bytes = Buffer.from(packer.pack([retry('s1'), retry('s2')]));
    const entries = markStale(
      decodeRuns(
        { bytes, runs: [[5, 2, bytes.length]], shapes: packer.shapes },
        new EventUnpacker(),
      ),
      ['s2'],
    );
    expect(entries.map((e) => [e.offset, (e.event as { stale?: boolean }).stale])).toEqual([
      [5, undefined],
      [6, true],
    ]);
  });
});
