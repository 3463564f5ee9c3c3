import { join } from 'node:path';
import { pino } from 'pino';
import type { Network } from '../../src/config/network.js';
import { Processor, type Recovered } from '../../src/processor/processor.js';
import { ChdbStore } from '../../src/store/chdb-store.js';
import type { Store } from '../../src/store/store.js';
import { Sink } from '../../src/store/sink.js';
import { tempDir } from './engine.js';

/** A processor on a real chDB store and a one-thread worker pool, for the processor's own tests. */
export async function openTestProcessor(
  network: Network,
  recovered: Recovered = { committed: new Map(), highWater: new Map(), states: new Map() },
): Promise<{ store: ChdbStore; processor: Processor; close: () => Promise<void> }> {
  const store = new ChdbStore(join(tempDir(), 'store'));
  await store.migrate();
  const log = pino({ level: 'silent' });
  const processor = new Processor(
    { network, workers: 1, sink: new Sink(store, log), log, store, partitions: 4 },
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
