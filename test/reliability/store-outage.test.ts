import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ADMIN_KEY,
  aCharger,
  aMeterValues,
  aNetwork,
  aStartTransaction,
  aStopTransaction,
  at,
  tokenOf,
  withTokenPerCharger,
} from '../helpers/builders.js';
import {
  eventually,
  sql,
  startEngine,
  tempDir,
  writeNetwork,
  type RunningEngine,
} from '../helpers/engine.js';
import { TestCharger } from '../helpers/ocpp-client.js';
import { recordFigure, sized } from './figures.js';
import { crashesIn, metricSum, startStoreServer, type StoreServer } from './harness.js';

/**
 * reliability.md 16: the store goes away under load. The engine (embedded log) writes to a
 * ClickHouse HTTP store (`chargestream store-server`), which is SIGKILLed and started again on
 * the same port and data after the outage. Chargers keep sending and resend what was not
 * acknowledged. Afterwards every acknowledged reading is stored once and every session is
 * exact: the sink retried with the same deduplication tokens.
 */
const OUTAGE_MS = sized(10_000, 60_000);
const CHARGERS = Array.from({ length: 6 }, (_, i) => `SO-${i}`);
const network = withTokenPerCharger(aNetwork({ chargers: CHARGERS.map((id) => aCharger(id)) }));

let store: StoreServer | undefined;
let engine: RunningEngine | undefined;
afterAll(async () => {
  await engine?.stop('SIGKILL');
  await store?.stop();
});

describe('store outage', () => {
  it(`reliability.md 16: the store down for ${OUTAGE_MS / 1000} s under load: nothing lost, nothing doubled`, async () => {
    const dir = tempDir();
    const storeDir = join(dir, 'store');
    store = await startStoreServer(storeDir);
    const port = store.port;
    engine = await startEngine({
      config: writeNetwork(dir, network),
      dataDir: join(dir, 'data'),
      extraArgs: ['--clickhouse', store.url],
    });
    const running = engine;
    const acked = new Map<string, number>();
    let refused = 0;
    let stop = false;
    const drive = async (
      id: string,
    ): Promise<{ id: string; transactionId: number; last: number }> => {
      const cp = await TestCharger.connect(`${running.ocppUrl}/${id}`);
      // A charger resends what was not acknowledged (TransactionMessageAttempts).
      const send = async (action: string, payload: object) => {
        for (;;) {
          const answer = await cp.call(action, payload, 120_000);
          if (answer.ok) return answer.payload;
          refused += 1;
          await new Promise((r) => setTimeout(r, 200));
        }
      };
      const started = await send('StartTransaction', aStartTransaction({ idTag: tokenOf(id) }));
      const transactionId = started['transactionId'] as number;
      let n = 0;
      while (!stop) {
        n += 1;
        await send('MeterValues', aMeterValues({ transactionId, wh: n * 10, seconds: n * 10 }));
        acked.set(id, n);
        await new Promise((r) => setTimeout(r, 20));
      }
      const last = (n + 1) * 10;
      await send(
        'StopTransaction',
        aStopTransaction({ transactionId, meterStop: last, timestamp: at(last) }),
      );
      cp.close();
      return { id, transactionId, last };
    };
    const load = Promise.all(CHARGERS.map(drive));
    await new Promise((r) => setTimeout(r, 2000));

    await store.stop('SIGKILL');
    const down = Date.now();
    let lagPeak = 0;
    while (Date.now() - down < OUTAGE_MS) {
      lagPeak = Math.max(
        lagPeak,
        await metricSum(running, 'chargestream_bus_consumer_lag_messages'),
      );
      await new Promise((r) => setTimeout(r, 250));
    }
    store = await startStoreServer(storeDir, port);
    await new Promise((r) => setTimeout(r, 2000));
    stop = true;
    const sessions = await load;

    const expected = [...acked.values()].reduce((a, b) => a + b, 0);
    const [counts] = await eventually(
      () =>
        sql<{ rows: string; distinct: string; cdrs: string; exact: string }>(
          running,
          ADMIN_KEY,
          `SELECT toString(count()) AS rows, toString(uniqExact(charger_id, ts)) AS distinct,
                  toString((SELECT count() FROM cdrs WHERE charger_id LIKE 'SO-%')) AS cdrs,
                  toString((SELECT count() FROM cdrs WHERE charger_id LIKE 'SO-%' AND (charger_id, toFloat64(energy_wh)) IN (${sessions.map((s) => `('${s.id}', ${s.last})`).join(', ')}))) AS exact
           FROM meter_readings WHERE charger_id LIKE 'SO-%' AND context = 'Sample.Periodic'`,
        ),
      (r) => r[0]?.cdrs === String(CHARGERS.length) && Number(r[0]?.distinct) >= expected,
      120_000,
    );
    const retries = await metricSum(running, 'chargestream_store_retries_total');
    const duplicates = Number(counts?.rows) - Number(counts?.distinct);
    const lost = expected - Number(counts?.distinct);
    recordFigure(
      16,
      `lag peak during the outage (events; ${expected} readings acknowledged, ${refused} refused)`,
      lagPeak,
    );
    recordFigure(16, 'store writes retried', retries);
    recordFigure(16, 'duplicates', duplicates);
    recordFigure(16, 'acknowledged readings lost', lost);
    expect(duplicates).toBe(0);
    expect(lost).toBe(0);
    expect(counts?.cdrs).toBe(String(CHARGERS.length));
    expect(counts?.exact).toBe(String(CHARGERS.length));
    expect(retries).toBeGreaterThan(0);
    expect(running.process.exitCode).toBeNull();
    expect(crashesIn(running.output())).toBe(0);
  }, 300_000);
});
