import { join } from 'node:path';
import { pino } from 'pino';
import type { EncodedBatch } from '../../src/bus/bus.js';
import { EventPacker } from '../../src/bus/event-codec.js';
import { partitionFor } from '../../src/bus/partitioner.js';
import type { Network } from '../../src/config/network.js';
import { connectorKey, type ChargerEvent } from '../../src/ocpp/events.js';
import { Processor, type ProcessorOptions, type Recovered } from '../../src/processor/processor.js';
import { ChdbStore } from '../../src/store/chdb-store.js';
import type { Store } from '../../src/store/store.js';
import { Sink } from '../../src/store/sink.js';
import { tempDir } from './engine.js';

/**
 * A processor on a real chDB store and a one-thread worker pool (or the `threads` given), for
 * the processor's own tests.
 */
export async function openTestProcessor(
  network: Network,
  recovered: Recovered = { committed: new Map(), highWater: new Map(), states: new Map() },
  threads: Partial<Pick<ProcessorOptions, 'workers' | 'catchUpWorkers' | 'batchSize'>> = {},
): Promise<{ store: ChdbStore; processor: Processor; close: () => Promise<void> }> {
  const store = new ChdbStore(join(tempDir(), 'store'));
  await store.migrate();
  const log = pino({ level: 'silent' });
  const processor = new Processor(
    { network, workers: 1, ...threads, sink: new Sink(store, log), log, store, partitions: 4 },
    recovered,
  );
  return {
    store,
    processor,
    close: async () => {
      await processor.close();
      await store.close();
    },
  };
}

/**
 * Another processor on an open store (chDB holds one data folder per process), whose sink
 * writes at most every `storeIntervalMs`: a batch's rows wait for their write while the
 * partition's next batch is processed. `distributed`: partitions are adopted from the store
 * as they are handled (Kafka mode); otherwise it holds them all from an empty start.
 */
export function processorOn(
  store: Store,
  network: Network,
  options: { readonly storeIntervalMs: number; readonly distributed?: boolean },
): Processor {
  const log = pino({ level: 'silent' });
  return new Processor(
    {
      network,
      workers: 1,
      sink: new Sink(store, log, undefined, options.storeIntervalMs),
      log,
      store,
      partitions: 4,
    },
    options.distributed === true
      ? null
      : { committed: new Map(), highWater: new Map(), states: new Map() },
  );
}

/** `perPartition` charger ids (`prefix` and a number) on each of `partitions` partitions. */
export function chargersOnEveryPartition(
  prefix: string,
  partitions: number,
  perPartition: number,
): string[] {
  const chargers: string[] = [];
  const partitionOf = (id: string) => partitionFor(connectorKey(id, 1), partitions);
  for (let i = 0; chargers.length < partitions * perPartition; i++) {
    const id = `${prefix}${i}`;
    const p = partitionOf(id);
    if (chargers.filter((c) => partitionOf(c) === p).length < perPartition) chargers.push(id);
  }
  return chargers;
}

/**
 * A charger's step-th event on connector 1, a minute apart from `t0`: its start (0 Wh), then
 * an energy register of 100 Wh a step.
 */
export function registerEvent(chargerId: string, step: number, t0: number): ChargerEvent {
  const at = t0 + step * 60_000;
  if (step === 0)
    return {
      kind: 'tx_started',
      chargerId,
      connectorId: 1,
      receivedAt: at,
      transactionId: '1',
      tokenId: 'T',
      authorization: 'Accepted',
      customerId: '',
      meterStartWh: 0,
      ts: at,
    };
  return {
    kind: 'meter_values',
    chargerId,
    connectorId: 1,
    receivedAt: at,
    transactionId: '1',
    samples: [
      {
        ts: at,
        measurand: 'Energy.Active.Import.Register',
        phase: '',
        value: step * 100,
        unit: 'Wh',
        context: 'Sample.Periodic',
      },
    ],
  };
}

/**
 * One batch a partition of `events` (in their order; `offsets[p]` is partition p's next
 * offset, moved on), all partitions handed to the processor at once; resolves once every
 * batch is stored.
 */
export async function handleRound(
  processor: Processor,
  events: readonly ChargerEvent[],
  offsets: number[],
): Promise<void> {
  const batches = new Map<number, Array<{ offset: number; event: ChargerEvent }>>();
  for (const event of events) {
    const p = partitionFor(connectorKey(event.chargerId, event.connectorId), offsets.length);
    const entries = batches.get(p) ?? [];
    entries.push({ offset: offsets[p]!++, event });
    batches.set(p, entries);
  }
  const handled = await Promise.all(
    [...batches].map(([p, entries]) => processor.handle(p, entries)),
  );
  await Promise.all(handled.map((h) => h?.stored ?? Promise.resolve()));
}

/**
 * `events` as the embedded log hands a batch over (one run from `firstOffset`); `full`: cut at
 * the batch size, more queued behind it.
 */
export function encodedBatch(
  events: readonly ChargerEvent[],
  firstOffset: number,
  full = false,
): EncodedBatch {
  const packer = new EventPacker();
  const bytes = new Uint8Array(packer.pack(events));
  return {
    bytes,
    runs: [[firstOffset, events.length, bytes.length]],
    shapes: packer.shapes,
    count: events.length,
    firstOffset,
    lastOffset: firstOffset + events.length - 1,
    connectors: [...new Set(events.map((e) => connectorKey(e.chargerId, e.connectorId)))],
    retries: events.flatMap((e) => (e.kind === 'retry' ? [e.sessionId] : [])),
    full,
  };
}
