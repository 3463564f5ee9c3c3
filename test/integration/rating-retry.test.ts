import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseNetwork } from '../../src/config/network.js';
import { indexNetwork } from '../../src/config/network-index.js';
import type { ChargerEvent } from '../../src/ocpp/events.js';
import { MAX_RATING_ATTEMPTS, type Processor } from '../../src/processor/processor.js';
import { processBatch } from '../../src/sessions/process-batch.js';
import type { ChdbStore } from '../../src/store/chdb-store.js';
import { encodedBatch, openTestProcessor, processorOn } from '../helpers/processor.js';

/**
 * S8 in the processor, on a real store and worker pool: the automatic retry job picks failed
 * sessions by their backoff (a controllable clock, no sleeps), and a retry of a session that
 * an earlier retry already rated is marked stale before it reaches a worker.
 */
const network = parseNetwork({
  settings: { defaultTariff: 't' },
  organizations: [{ id: 'o', type: 'cpo' }],
  sites: [{ id: 's', operator: 'o' }],
  chargers: [{ id: 'CP1', site: 's', connectors: [{ id: 1, maxPowerW: 22000 }] }],
  tariffs: [
    {
      id: 't',
      currency: 'EUR',
      elements: [{ components: [{ type: 'ENERGY', price: '0.30', vat: '22' }] }],
    },
  ],
});
const FAILED_AT = Date.parse('2026-11-20T10:00:00Z');
let store: ChdbStore;
let processor: Processor;

const sessionRow = (id: string, version: number, status: string, attempts: number) =>
  JSON.stringify({
    session_id: id,
    version,
    charger_id: 'CP1',
    connector_id: 1,
    transaction_id: id,
    status,
    reason: 'Local',
    started_at: '2026-11-20 09:00:00.000',
    energy_wh: '100',
    cost_excl_vat: '0',
    vat: '0',
    cost_incl_vat: '0',
    currency: 'EUR',
    flags: [],
    error: status === 'rated' ? '' : 'boom',
    state: JSON.stringify({
      sessionId: id,
      chargerId: 'CP1',
      connectorId: 1,
      status,
      ratingAttempts: attempts,
      failedAt: FAILED_AT,
    }),
    log_partition: 0,
  }) + '\n';

let close: () => Promise<void>;

beforeAll(async () => {
  ({ store, processor, close } = await openTestProcessor(network));
  await store.insert(
    'sessions_log',
    sessionRow('FIRST', 10, 'rating_failed', 1) +
      sessionRow('THIRD', 10, 'rating_failed', 3) +
      sessionRow('GIVEN-UP', 10, 'rating_failed', MAX_RATING_ATTEMPTS) +
      sessionRow('DONE', 10, 'rating_failed', 1) +
      sessionRow('DONE', 20, 'rated', 1),
    'retry-test',
  );
});

afterAll(() => close());

describe('S8 rating retries in the processor', () => {
  it('S8 the retry job sends failed sessions once their backoff passed (1 min, doubling), never past the last attempt nor a rated one', async () => {
    const due = async (afterMs: number) =>
      (await processor.failedRatings(FAILED_AT + afterMs)).map((e) => e.sessionId).sort();
    expect(await due(30_000)).toEqual([]);
    expect(await due(60_000)).toEqual(['FIRST']);
    expect(await due(239_000)).toEqual(['FIRST']);
    expect(await due(240_000)).toEqual(['FIRST', 'THIRD']); // third attempt: 4 min
    const [event] = await processor.failedRatings(FAILED_AT + 60_000);
    expect(event).toMatchObject({ kind: 'retry', chargerId: 'CP1', connectorId: 1 });
  });

  /** A retry of the session rated since: not a session a worker could rate (were the retry not stale, a rating_failed row would follow). */
  const retryOfDone: ChargerEvent = {
    kind: 'retry',
    chargerId: 'CP1',
    connectorId: 1,
    receivedAt: FAILED_AT,
    sessionId: 'DONE',
    state: JSON.stringify({ sessionId: 'DONE', status: 'rating_failed' }),
  };
  const versionsOfDone = () =>
    store.rows<{ n: string; status: string }>(
      "SELECT toString(count()) AS n, argMax(status, version) AS status FROM sessions_log WHERE session_id = 'DONE'",
    );

  it('S8 a retry of a session no longer failed is stale before any worker sees it', async () => {
    const [before] = await versionsOfDone();
    expect(before?.status).toBe('rated');
    const handled = await processor.handle(0, [{ offset: 100, event: retryOfDone }]);
    await handled?.stored;
    expect((await versionsOfDone())[0]).toEqual(before);
  });

  it('S8 a retry of a session no longer failed is stale as the embedded log hands it over too (the worker decodes the batch)', async () => {
    const [before] = await versionsOfDone();
    const handled = await processor.handleEncoded(0, encodedBatch([retryOfDone], 101));
    await handled?.stored;
    expect((await versionsOfDone())[0]).toEqual(before);
  });

  it('S8 a retry whose session an earlier batch retried, its rows not stored yet, is stale (batches overlap the store write)', async () => {
    // A store writing at most every 2 s: a batch's rows stay unwritten while the partition's
    // next batch is processed.
    const slow = processorOn(store, network, { storeIntervalMs: 2000 });
    // A session whose rating failed while readings came in: a retry that runs does not rate
    // it again but counts one more rating_failed row.
    const started = processBatch(indexNetwork(network), {
      partition: 0,
      entries: [
        {
          offset: 0,
          event: {
            kind: 'tx_started',
            chargerId: 'CP1',
            connectorId: 1,
            receivedAt: FAILED_AT,
            transactionId: 'PIPE',
            tokenId: 'T',
            authorization: 'Accepted',
            customerId: 'c',
            meterStartWh: 0,
            ts: FAILED_AT,
          },
        },
      ],
      states: {},
      highWater: { readings: -1, statuses: -1, cdrs: -1, notifications: -1 },
    }).states['CP1/1']!.session!;
    const state = JSON.stringify({
      ...started,
      sessionId: 'PIPE',
      status: 'rating_failed',
      endedAt: FAILED_AT + 60_000,
      ratingError: 'reading: broken',
    });
    const retry = (offset: number) => ({
      offset,
      event: {
        kind: 'retry' as const,
        chargerId: 'CP1',
        connectorId: 1,
        receivedAt: FAILED_AT + 60_000,
        sessionId: 'PIPE',
        state,
      },
    });
    const failedRows = () => slow.workerCounters.sessions.get('rating_failed') ?? 0;
    try {
      await store.insert('sessions_log', sessionRow('PIPE', 10, 'rating_failed', 1), 'pipe');
      // A write just done (another partition), so the next one waits for the interval.
      await (
        await slow.handle(1, [retry(0)])
      )?.stored;
      expect(failedRows()).toBe(1);
      const first = await slow.handle(0, [retry(1)]);
      const second = await slow.handle(0, [retry(2)]);
      await Promise.all([first?.stored, second?.stored]);
      expect(failedRows()).toBe(2); // the first retry ran; the second was stale
    } finally {
      await slow.close();
    }
  });
});
