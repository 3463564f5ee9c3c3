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
 * A partition that is behind (its batch as large as the bus hands over) is worked on by the
 * catch-up thread as well; once its batches are small again it goes back to its steady
 * thread. Its states travel as texts either way, so a move costs one parse on the thread it
 * moves to and nothing else: every reading stored, every session's energy whole. Real worker
 * threads (one steady, one catch-up) and a real store.
 */
const PARTITIONS = 4;
const BATCH = 4;
const T0 = Date.parse('2026-11-20T08:00:00Z');

/** Two chargers per partition; partitions 1 and 3 are the ones that move when behind. */
const chargers: string[] = [];
for (let i = 0; chargers.length < PARTITIONS * 2; i++) {
  const id = `CU${i}`;
  const p = partitionFor(connectorKey(id, 1), PARTITIONS);
  if (chargers.filter((c) => partitionFor(connectorKey(c, 1), PARTITIONS) === p).length < 2)
    chargers.push(id);
}
const partitionOf = (id: string) => partitionFor(connectorKey(id, 1), PARTITIONS);
const network = parseNetwork(aNetwork({ chargers: chargers.map((id) => aCharger(id)) }));

let store: ChdbStore;
let processor: Processor;
beforeAll(async () => {
  store = new ChdbStore(join(tempDir(), 'store'));
  await store.migrate();
  const log = pino({ level: 'silent' });
  processor = new Processor(
    {
      network,
      workers: 1,
      catchUpWorkers: 1,
      batchSize: BATCH,
      sink: new Sink(store, log),
      log,
      store,
      partitions: PARTITIONS,
    },
    { committed: new Map(), highWater: new Map(), states: new Map() },
  );
});
afterAll(async () => {
  await processor?.close();
  await store?.close();
});

/** The charger's step-th event: its start, then a register value of 100 Wh a step. */
function eventOf(chargerId: string, step: number): ChargerEvent {
  const at = T0 + step * 60_000;
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

const steps = new Map<string, number>(chargers.map((id) => [id, 0]));
const offsets = new Array<number>(PARTITIONS).fill(0);

/** One batch per partition: `perCharger` events of each of `who`, all partitions at once. */
async function round(who: readonly string[], perCharger: number): Promise<void> {
  const batches = new Map<number, Array<{ offset: number; event: ChargerEvent }>>();
  for (const id of who) {
    for (let i = 0; i < perCharger; i++) {
      const step = steps.get(id)!;
      steps.set(id, step + 1);
      const p = partitionOf(id);
      const entries = batches.get(p) ?? [];
      entries.push({ offset: offsets[p]!++, event: eventOf(id, step) });
      batches.set(p, entries);
    }
  }
  const handled = await Promise.all(
    [...batches].map(([p, entries]) => processor.handle(p, entries)),
  );
  await Promise.all(handled.map((h) => h?.stored ?? Promise.resolve()));
}

describe('catch-up worker threads', () => {
  it('a partition behind moves to the catch-up thread and back once it keeps up; nothing lost or counted twice', async () => {
    expect(processor.threads).toBe(2);
    const c = processor.workerCounters;
    const odd = chargers.filter((id) => partitionOf(id) % 2 === 1);
    const firstOfEach = [...new Set(chargers.map(partitionOf))].map((p) =>
      chargers.find((id) => partitionOf(id) === p)!,
    );

    // Keeping up (2 events a batch, below the most): all on the steady thread.
    await round(chargers, 1); // the starts
    await round(chargers, 1);
    expect(c.statesParsed).toBe(0);
    expect(c.statesKept).toBe(chargers.length);

    // Behind (full batches): partitions 1 and 3 go to the catch-up thread, which parses the
    // states they bring once; partitions 0 and 2 stay where their states are.
    await round(chargers, 2);
    expect(c.statesParsed).toBe(odd.length);
    await round(chargers, 2);
    expect(c.statesParsed).toBe(odd.length);

    // Caught up (a batch of one, a quarter of the most): back to the steady thread, where the
    // moved partitions' states are parsed once more (the thread's copies are older).
    await round(firstOfEach, 1);
    const movedBack = firstOfEach.filter((id) => partitionOf(id) % 2 === 1).length;
    expect(c.statesParsed).toBe(odd.length + movedBack);
    await round(firstOfEach, 1);
    expect(c.statesParsed).toBe(odd.length + movedBack);
    expect(c.statesParsed + c.statesKept).toBe(
      chargers.length * 3 + firstOfEach.length * 2, // every state brought, once each
    );

    // Every event's reading stored once, and each session's energy is its last register.
    const events = [...steps.values()].reduce((n, s) => n + s, 0);
    const [row] = await store.rows<{ n: string }>(
      "SELECT toString(count()) AS n FROM meter_readings WHERE charger_id LIKE 'CU%'",
    );
    expect(row?.n).toBe(String(events));
    const sessions = await store.rows<{ charger_id: string; wh: string }>(
      `SELECT charger_id, toString(argMax(energy_wh, version)) AS wh FROM sessions_log
       WHERE charger_id LIKE 'CU%' GROUP BY charger_id ORDER BY charger_id`,
    );
    expect(Object.fromEntries(sessions.map((s) => [s.charger_id, Number(s.wh)]))).toEqual(
      Object.fromEntries(chargers.map((id) => [id, (steps.get(id)! - 1) * 100])),
    );
  });
});
