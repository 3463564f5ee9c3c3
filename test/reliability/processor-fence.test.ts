import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LogEntry } from '../../src/bus/bus.js';
import { parseNetwork } from '../../src/config/network.js';
import { ChargestreamError } from '../../src/lib/errors.js';
import { partitionFor } from '../../src/bus/partitioner.js';
import type { Processor } from '../../src/processor/processor.js';
import type { ChdbStore } from '../../src/store/chdb-store.js';
import { openTestProcessor, processorOn } from '../helpers/processor.js';
import { recordFigure } from './figures.js';

/**
 * reliability.md 14, the part no timing can force: a processor frozen with a batch in flight
 * wakes up after the group gave the partition to another. The Kafka bus hands each batch a
 * fence (a heartbeat and a generation check); this is the processor's side, on a real store
 * and worker pool: a batch whose fence rejects changes no state and writes nothing, and the
 * same batch delivered afterwards with a fence that passes is written once.
 */
const network = parseNetwork({
  settings: { defaultTariff: 't' },
  organizations: [{ id: 'o', type: 'cpo' }],
  sites: [{ id: 's', operator: 'o' }],
  chargers: [
    { id: 'CP1', site: 's', connectors: [{ id: 1, maxPowerW: 22000 }] },
    { id: 'CP2', site: 's', connectors: [{ id: 1, maxPowerW: 22000 }] },
  ],
  tariffs: [
    {
      id: 't',
      currency: 'EUR',
      elements: [{ components: [{ type: 'ENERGY', price: '0.30', vat: '22' }] }],
    },
  ],
});
const T0 = Date.parse('2026-11-20T08:00:00Z');
let store: ChdbStore;
let processor: Processor;
let close: () => Promise<void>;
beforeAll(async () => {
  ({ store, processor, close } = await openTestProcessor(network));
});
afterAll(async () => {
  await close();
});

const entries: LogEntry[] = [
  {
    offset: 0,
    event: {
      kind: 'tx_started',
      chargerId: 'CP1',
      connectorId: 1,
      receivedAt: T0,
      transactionId: '7',
      tokenId: 'TAG',
      authorization: 'Accepted',
      customerId: '',
      meterStartWh: 1000,
      ts: T0,
    },
  },
  ...[1, 2, 3].map((n) => ({
    offset: n,
    event: {
      kind: 'meter_values' as const,
      chargerId: 'CP1',
      connectorId: 1,
      receivedAt: T0 + n * 60_000,
      transactionId: '7',
      samples: [
        {
          ts: T0 + n * 60_000,
          measurand: 'Energy.Active.Import.Register',
          phase: '',
          value: 1000 + n * 100,
          unit: 'Wh',
          context: 'Sample.Periodic',
        },
      ],
    },
  })),
];

const counts = async () =>
  (
    await store.rows<{ readings: string; sessions: string }>(
      "SELECT toString((SELECT count() FROM meter_readings WHERE charger_id = 'CP1')) AS readings, toString((SELECT count() FROM sessions_log WHERE charger_id = 'CP1')) AS sessions",
    )
  )[0];

describe('a batch of a partition this processor no longer owns', () => {
  it('is not written when its fence rejects; delivered again with a passing fence, it is written once', async () => {
    const partition = 1;
    const revoked = () =>
      Promise.reject(new ChargestreamError('PARTITION_REVOKED', 'rebalanced meanwhile'));
    await expect(processor.handle(partition, entries, revoked)).rejects.toMatchObject({
      code: 'PARTITION_REVOKED',
    });
    const afterFenced = await counts();
    let fenceCalls = 0;
    const handled = await processor.handle(partition, entries, () => {
      fenceCalls += 1;
      return Promise.resolve();
    });
    await handled?.stored;
    const afterWritten = await counts();
    recordFigure(
      14,
      'rows written by a fenced batch',
      Number(afterFenced?.readings) + Number(afterFenced?.sessions),
    );
    expect(afterFenced).toEqual({ readings: '0', sessions: '0' });
    expect(fenceCalls).toBe(2); // after the workers, and again just before the write
    // Three readings and the start's; the session written once, in progress with 300 Wh (state
    // was not advanced by the fenced attempt).
    expect(afterWritten?.readings).toBe('4');
    const [session] = await store.rows<{ energy: string; n: string }>(
      "SELECT toString(argMax(energy_wh, version)) AS energy, toString(uniqExact(version)) AS n FROM sessions_log WHERE charger_id = 'CP1'",
    );
    expect(session?.energy).toBe('300');
  });

  it('is not written either when it loses its partition while waiting for the store write; its state is dropped and loaded again', async () => {
    // Distributed mode (partitions adopted from the store), a store writing at most every
    // second: a batch waits for its write well after the workers and the first fence.
    const distributed = processorOn(store, network, { storeIntervalMs: 1000, distributed: true });
    const partition = partitionFor('CP2/1', 4);
    const cp2 = entries.map((e) => ({
      offset: e.offset + 1,
      event: { ...e.event, chargerId: 'CP2' },
    }));
    const rows = async () =>
      (
        await store.rows<{ n: string }>(
          "SELECT toString(count()) AS n FROM meter_readings WHERE charger_id = 'CP2'",
        )
      )[0]?.n;
    try {
      distributed.assigned([partition]);
      // A write just done (the connector's status), so the next one waits for the interval.
      const status: LogEntry = {
        offset: 0,
        event: {
          kind: 'status',
          chargerId: 'CP2',
          connectorId: 1,
          receivedAt: T0,
          ts: T0,
          status: 'Preparing',
          errorCode: 'NoError',
          info: '',
          vendorErrorCode: '',
        },
      };
      await (
        await distributed.handle(partition, [status])
      )?.stored;
      let fenceCalls = 0;
      const handled = await distributed.handle(partition, cp2, () => {
        fenceCalls += 1; // passes after the workers, fails at the write
        return fenceCalls === 1
          ? Promise.resolve()
          : Promise.reject(new ChargestreamError('PARTITION_REVOKED', 'rebalanced meanwhile'));
      });
      await expect(handled?.stored).rejects.toMatchObject({ code: 'PARTITION_REVOKED' });
      expect(fenceCalls).toBe(2);
      recordFigure(14, 'rows written by a batch fenced at its write', Number(await rows()));
      expect(await rows()).toBe('0');
      // Delivered again (the partition back, or to the new owner): written once, from the
      // store's state, not from the state the fenced batch left here.
      await (
        await distributed.handle(partition, cp2, () => Promise.resolve())
      )?.stored;
      expect(await rows()).toBe('4');
    } finally {
      await distributed.close();
    }
  });
});
