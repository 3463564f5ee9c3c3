import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partitionFor } from '../../src/bus/partitioner.js';
import { parseNetwork } from '../../src/config/network.js';
import { connectorKey, type ChargerEvent } from '../../src/ocpp/events.js';
import { Processor } from '../../src/processor/processor.js';
import { ChdbStore } from '../../src/store/chdb-store.js';
import { Sink } from '../../src/store/sink.js';
import { aCharger, aNetwork } from '../helpers/builders.js';
import { tempDir } from '../helpers/engine.js';

/**
 * Each partition's batches go to one worker thread, so a thread finds the connector states
 * it wrote at the partition's next batch and takes them up without parsing (ResidentStates).
 * Real worker threads (two) and a real store; the batches of all partitions run at once, so
 * both threads are busy and a shared queue would hand batches to either.
 */
const PARTITIONS = 4;
const T0 = Date.parse('2026-11-20T08:00:00Z');

/** Two chargers per partition. */
const chargers: string[] = [];
for (let i = 0; chargers.length < PARTITIONS * 2; i++) {
  const id = `AFF${i}`;
  const p = partitionFor(connectorKey(id, 1), PARTITIONS);
  if (chargers.filter((c) => partitionFor(connectorKey(c, 1), PARTITIONS) === p).length < 2)
    chargers.push(id);
}
const network = parseNetwork(aNetwork({ chargers: chargers.map((id) => aCharger(id)) }));

let store: ChdbStore;
let processor: Processor;
beforeAll(async () => {
  store = new ChdbStore(join(tempDir(), 'store'));
  await store.migrate();
  const log = pino({ level: 'silent' });
  processor = new Processor(
    { network, workers: 2, sink: new Sink(store, log), log, store, partitions: PARTITIONS },
    { committed: new Map(), highWater: new Map(), states: new Map() },
  );
});
afterAll(async () => {
  await processor?.close();
  await store?.close();
});

function eventOf(chargerId: string, round: number): ChargerEvent {
  const at = T0 + round * 60_000;
  if (round === 0)
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
        value: round * 100,
        unit: 'Wh',
        context: 'Sample.Periodic',
      },
    ],
  };
}

describe('worker threads and partitions', () => {
  it('a partition’s next batch finds its states on the thread that wrote them', async () => {
    const offsets = new Array<number>(PARTITIONS).fill(0);
    const ROUNDS = 6;
    for (let round = 0; round < ROUNDS; round++) {
      const batches = new Map<number, Array<{ offset: number; event: ChargerEvent }>>();
      for (const id of chargers) {
        const p = partitionFor(connectorKey(id, 1), PARTITIONS);
        const entries = batches.get(p) ?? [];
        entries.push({ offset: offsets[p]!++, event: eventOf(id, round) });
        batches.set(p, entries);
      }
      const handled = await Promise.all(
        [...batches].map(([p, entries]) => processor.handle(p, entries)),
      );
      await Promise.all(handled.map((h) => h?.stored ?? Promise.resolve()));
    }
    expect(processor.threads).toBe(2);
    const c = processor.workerCounters;
    // Round 0 starts the sessions (no state to bring); every later batch brings one state a
    // charger, each found on its partition's thread.
    expect(c.statesKept).toBe(chargers.length * (ROUNDS - 1));
    expect(c.statesParsed).toBe(0);
    const [row] = await store.rows<{ n: string }>(
      "SELECT toString(count()) AS n FROM meter_readings WHERE charger_id LIKE 'AFF%'",
    );
    // Every batch stored: a reading for each start (its meter start) and meter value.
    expect(row?.n).toBe(String(chargers.length * ROUNDS));
  });
});
