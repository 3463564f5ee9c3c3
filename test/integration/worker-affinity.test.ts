import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partitionFor } from '../../src/bus/partitioner.js';
import { parseNetwork } from '../../src/config/network.js';
import { connectorKey, type ChargerEvent } from '../../src/ocpp/events.js';
import { aCharger, aNetwork } from '../helpers/builders.js';
import {
  chargersOnEveryPartition,
  encodedBatch,
  handleRound,
  openTestProcessor,
  registerEvent,
} from '../helpers/processor.js';

/**
 * Worker threads and partitions, with real worker threads and a real store; the batches of
 * all partitions run at once, so every thread is busy and a shared queue would hand batches
 * to any of them.
 */
const PARTITIONS = 4; // as openTestProcessor's
const T0 = Date.parse('2026-11-20T08:00:00Z');
const partitionOf = (id: string) => partitionFor(connectorKey(id, 1), PARTITIONS);

/** A processor of its own for `chargers`, opened before a describe's tests, closed after. */
function processorFor(
  chargers: readonly string[],
  threads: Parameters<typeof openTestProcessor>[2],
): Awaited<ReturnType<typeof openTestProcessor>> {
  const network = parseNetwork(aNetwork({ chargers: chargers.map((id) => aCharger(id)) }));
  const opened = {} as Awaited<ReturnType<typeof openTestProcessor>>;
  beforeAll(async () => {
    Object.assign(opened, await openTestProcessor(network, undefined, threads));
  });
  afterAll(async () => {
    await opened.close?.();
  });
  return opened;
}

/**
 * Two chargers on each partition (`prefix` and a number) and a processor of one steady and one
 * catch-up thread with batches of at most `batchSize`; `next(id)` is the charger's next event
 * (registerEvent), `offsets[p]` partition p's next offset.
 */
function catchUpFixture(prefix: string, batchSize: number) {
  const chargers = chargersOnEveryPartition(prefix, PARTITIONS, 2);
  const catchUp = processorFor(chargers, { workers: 1, catchUpWorkers: 1, batchSize });
  const steps = new Map<string, number>(chargers.map((id) => [id, 0]));
  const next = (id: string): ChargerEvent => {
    const step = steps.get(id)!;
    steps.set(id, step + 1);
    return registerEvent(id, step, T0);
  };
  return { chargers, catchUp, steps, next, offsets: new Array<number>(PARTITIONS).fill(0) };
}

/**
 * Each partition's batches go to one worker thread (two here), so a thread finds the connector
 * states it wrote at the partition's next batch and takes them up without parsing
 * (ResidentStates).
 */
describe('worker threads and partitions', () => {
  const chargers = chargersOnEveryPartition('AFF', PARTITIONS, 2);
  const affinity = processorFor(chargers, { workers: 2 });

  it('a partition’s next batch finds its states on the thread that wrote them', async () => {
    const offsets = new Array<number>(PARTITIONS).fill(0);
    const ROUNDS = 6;
    for (let round = 0; round < ROUNDS; round++) {
      const events = chargers.map((id) => registerEvent(id, round, T0));
      await handleRound(affinity.processor, events, offsets);
    }
    expect(affinity.processor.threads).toBe(2);
    const c = affinity.processor.workerCounters;
    // Round 0 starts the sessions (no state to bring); every later batch brings one state a
    // charger, each found on its partition's thread.
    expect(c.statesKept).toBe(chargers.length * (ROUNDS - 1));
    expect(c.statesParsed).toBe(0);
    const [row] = await affinity.store.rows<{ n: string }>(
      "SELECT toString(count()) AS n FROM meter_readings WHERE charger_id LIKE 'AFF%'",
    );
    // Every batch stored: a reading for each start (its meter start) and meter value.
    expect(row?.n).toBe(String(chargers.length * ROUNDS));
  });
});

/**
 * A partition that is behind (its batch as large as the bus hands over) is worked on by the
 * catch-up thread as well; once its batches are small again it goes back to its steady
 * thread. Its states travel as texts either way, so a move costs one parse on the thread it
 * moves to and nothing else: every reading stored, every session's energy whole. One steady
 * thread, one catch-up thread.
 */
describe('catch-up worker threads', () => {
  // Batches of at most 4; partitions 1 and 3 are the ones that move when behind.
  const { chargers, catchUp, steps, next, offsets } = catchUpFixture('CU', 4);

  /** `perCharger` events of each of `who`, in one batch a partition, all partitions at once. */
  async function round(who: readonly string[], perCharger: number): Promise<void> {
    const events: ChargerEvent[] = [];
    for (const id of who) for (let i = 0; i < perCharger; i++) events.push(next(id));
    await handleRound(catchUp.processor, events, offsets);
  }

  it('a partition behind moves to the catch-up thread and back once it keeps up; nothing lost or counted twice', async () => {
    expect(catchUp.processor.threads).toBe(2);
    const c = catchUp.processor.workerCounters;
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
    const [row] = await catchUp.store.rows<{ n: string }>(
      "SELECT toString(count()) AS n FROM meter_readings WHERE charger_id LIKE 'CU%'",
    );
    expect(row?.n).toBe(String(events));
    const sessions = await catchUp.store.rows<{ charger_id: string; wh: string }>(
      `SELECT charger_id, toString(argMax(energy_wh, version)) AS wh FROM sessions_log
       WHERE charger_id LIKE 'CU%' GROUP BY charger_id ORDER BY charger_id`,
    );
    expect(Object.fromEntries(sessions.map((s) => [s.charger_id, Number(s.wh)]))).toEqual(
      Object.fromEntries(chargers.map((id) => [id, (steps.get(id)! - 1) * 100])),
    );
  });
});

/**
 * The embedded log hands over whole runs, so a backlog's batches are as a rule a little below
 * the most; the log marks them full, and that is what moves a partition to the catch-up thread.
 */
describe('catch-up worker threads, batches from the embedded log', () => {
  // Batches of at most 8: two events a batch are a quarter of the most.
  const { chargers, catchUp, next, offsets } = catchUpFixture('CL', 8);

  /** One event of each charger, one batch a partition (`full` or not), all partitions at once. */
  async function round(full: boolean): Promise<void> {
    const handled = await Promise.all(
      [...new Set(chargers.map(partitionOf))].map((p) => {
        const events = chargers.filter((id) => partitionOf(id) === p).map(next);
        const batch = encodedBatch(events, offsets[p]!, full);
        offsets[p]! += events.length;
        return catchUp.processor.handleEncoded(p, batch);
      }),
    );
    await Promise.all(handled.map((h) => h?.stored ?? Promise.resolve()));
  }

  it('a batch the log marks full moves its partition to the catch-up thread, however many events it holds', async () => {
    const c = catchUp.processor.workerCounters;
    const odd = chargers.filter((id) => partitionOf(id) % 2 === 1);
    await round(false); // the starts
    await round(false);
    expect(c.statesParsed).toBe(0);
    // Two events a batch, a quarter of the most, but full: partitions 1 and 3 move.
    await round(true);
    expect(c.statesParsed).toBe(odd.length);
    await round(true);
    expect(c.statesParsed).toBe(odd.length);
    const [row] = await catchUp.store.rows<{ n: string }>(
      "SELECT toString(count()) AS n FROM meter_readings WHERE charger_id LIKE 'CL%'",
    );
    expect(row?.n).toBe(String(chargers.length * 4));
  });
});
