import { join } from 'node:path';
import type WebSocket from 'ws';
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
import { recordFigure, sized } from './figures.js';
import { callRaw, crashesIn, openSocket, quantile, rssKiB } from './harness.js';

/**
 * reliability.md 11: every charger connected, a session running on each; the engine is
 * SIGKILLed and started again, and all chargers reconnect at once and flush what they queued
 * meanwhile (readings and the stop). Nothing acknowledged before or after is lost; memory
 * stays bounded.
 */
const N = sized(1000, 3000);
const BEFORE = 2; // readings acknowledged before the crash
const QUEUED = 5; // readings queued while the engine was down, flushed after the reconnect
// One token per charger: a token charges one car at a time (A2).
const network = withTokenPerCharger(
  aNetwork({ chargers: Array.from({ length: N }, (_, i) => aCharger(`R${i}`)) }),
);

const running: RunningEngine[] = [];
afterAll(async () => {
  for (const engine of running) await engine.stop('SIGKILL');
});

/** Connects `ids` a few hundred at a time (the setup, not the storm). */
async function connectAll(engine: RunningEngine, ids: readonly string[]): Promise<WebSocket[]> {
  const sockets: WebSocket[] = [];
  for (let i = 0; i < ids.length; i += 250)
    sockets.push(
      ...(await Promise.all(
        ids.slice(i, i + 250).map((id) => openSocket(`${engine.ocppUrl}/${id}`)),
      )),
    );
  return sockets;
}

describe('reconnect storm after a restart', () => {
  it(`reliability.md 11: ${N} chargers reconnect at once after the engine restarted and flush their queues; nothing lost, memory bounded`, async () => {
    const dir = tempDir();
    const config = writeNetwork(dir, network);
    const dataDir = join(dir, 'data');
    const ids = Array.from({ length: N }, (_, i) => `R${i}`);
    const first = await startEngine({ config, dataDir });
    running.push(first);

    const before = await connectAll(first, ids);
    const transactions = await Promise.all(
      before.map(async (ws, i) => {
        const started = await callRaw(
          ws,
          's',
          'StartTransaction',
          aStartTransaction({ idTag: tokenOf(ids[i]!), meterStart: 0 }),
        );
        const transactionId = (started[2] as { transactionId: number }).transactionId;
        for (let n = 1; n <= BEFORE; n++) {
          const answer = await callRaw(
            ws,
            `b${n}`,
            'MeterValues',
            aMeterValues({ transactionId, wh: n * 10, seconds: n * 10 }),
          );
          expect(answer[0], ids[i]).toBe(3);
        }
        return transactionId;
      }),
    );
    const closed = before.map((ws) => new Promise((resolve) => ws.once('close', resolve)));
    await first.stop('SIGKILL');
    await Promise.all(closed);

    const second = await startEngine({ config, dataDir });
    running.push(second);
    // Replayed batches settle first: the baseline is the engine at rest, before any connection.
    await new Promise((r) => setTimeout(r, 2000));
    const baseline = rssKiB(second.process.pid!);
    const stormStart = performance.now();
    const backAt: number[] = [];
    const after = await Promise.all(
      ids.map(async (id) => {
        const ws = await openSocket(`${second.ocppUrl}/${id}`);
        backAt.push(performance.now() - stormStart);
        return ws;
      }),
    );
    const allBack = performance.now() - stormStart;
    const ackMs: number[] = [];
    await Promise.all(
      after.map(async (ws, i) => {
        const transactionId = transactions[i]!;
        for (let n = BEFORE + 1; n <= BEFORE + QUEUED; n++) {
          const t = performance.now();
          const answer = await callRaw(
            ws,
            `q${n}`,
            'MeterValues',
            aMeterValues({ transactionId, wh: n * 10, seconds: n * 10 }),
          );
          ackMs.push(performance.now() - t);
          expect(answer[0], ids[i]).toBe(3);
        }
        const end = (BEFORE + QUEUED + 1) * 10;
        const stopped = await callRaw(
          ws,
          'stop',
          'StopTransaction',
          aStopTransaction({ transactionId, meterStop: end, timestamp: at(end) }),
        );
        expect(stopped[0], ids[i]).toBe(3);
      }),
    );
    const peak = rssKiB(second.process.pid!);
    for (const ws of after) ws.close();

    const expectedReadings = N * (BEFORE + QUEUED);
    const [stored] = await eventually(
      () =>
        sql<{ readings: string; cdrs: string; exact: string }>(
          second,
          ADMIN_KEY,
          `SELECT toString((SELECT count() FROM meter_readings WHERE charger_id LIKE 'R%' AND context = 'Sample.Periodic')) AS readings,
                  toString((SELECT count() FROM cdrs WHERE charger_id LIKE 'R%')) AS cdrs,
                  toString((SELECT count() FROM cdrs WHERE charger_id LIKE 'R%' AND energy_wh = ${(BEFORE + QUEUED + 1) * 10})) AS exact`,
        ),
      (rows) => rows[0]?.cdrs === String(N) && Number(rows[0]?.readings) >= expectedReadings,
      120_000,
    );
    const lost = expectedReadings - Number(stored?.readings) + (N - Number(stored?.exact));
    const sorted = [...backAt].sort((a, b) => a - b);
    recordFigure(11, `chargers reconnected at once after SIGKILL + restart`, N);
    recordFigure(11, 'connects/s', Math.round(N / (allBack / 1000)));
    recordFigure(11, 'time to 99 % back (ms)', Math.round(quantile(sorted, 0.99)));
    recordFigure(11, 'ack p99 while flushing queues (ms)', Math.round(quantile(ackMs, 0.99)));
    // RSS moves by tens of MiB with chDB and the garbage collector: the growth from the engine
    // at rest to the peak of the storm and the flush, per connection, bounds it from above.
    recordFigure(
      11,
      'memory per connection, upper bound: (peak RSS − RSS at rest) / chargers (KiB)',
      Number((Math.max(0, peak - baseline) / N).toFixed(1)),
    );
    recordFigure(11, 'peak RSS (MiB)', Math.round(peak / 1024));
    recordFigure(11, 'readings or sessions lost', lost);
    recordFigure(11, 'crashes', crashesIn(second.output()) + (second.process.exitCode ?? 0));
    expect(lost).toBe(0);
    expect(stored?.readings).toBe(String(expectedReadings));
    expect(second.process.exitCode).toBeNull();
    expect(crashesIn(second.output())).toBe(0);
    expect(peak - baseline).toBeLessThan(512 * 1024);
  }, 300_000);
});
