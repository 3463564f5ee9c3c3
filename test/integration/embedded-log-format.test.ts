import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import type { LogEntry } from '../../src/bus/bus.js';
import { EmbeddedLog } from '../../src/bus/embedded-log.js';
import { partitionFor } from '../../src/bus/partitioner.js';
import type { ChargerEvent } from '../../src/ocpp/events.js';
import { tempDir } from '../helpers/engine.js';

const reading = (chargerId: string, n: number): ChargerEvent => ({
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

describe('embedded log record format (msgpackr records)', () => {
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
    const partitions = 4;
    writeFileSync(join(dir, 'meta.json'), JSON.stringify({ partitions }));
    const events = Array.from({ length: 10 }, (_, i) => reading(`OLD${i % 3}`, i));
    const next = new Map<number, number>();
    const records = events.map((event): [number, number, ChargerEvent] => {
      const p = partitionFor(`${event.chargerId}/${event.connectorId}`, partitions);
      const offset = next.get(p) ?? 0;
      next.set(p, offset + 1);
      return [p, offset, event];
    });
    const body = new Packr({ useRecords: false, moreTypes: false }).pack(records);
    const header = Buffer.alloc(8);
    header.writeUInt32LE(body.length, 0);
    header.writeUInt32LE(crc32(body), 4);
    writeFileSync(join(dir, '000000000001.seg'), Buffer.concat([header, body]));
    const replayed = await replay(dir, partitions);
    expect(replayed).toHaveLength(events.length);
    for (const e of replayed) expect(events).toContainEqual(e);
  });
});
