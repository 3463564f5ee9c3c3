import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  aMeterValues,
  aStartTransaction,
  aStopTransaction,
  at,
  aNetwork,
  aCharger,
  ADMIN_KEY,
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
import { recordFigure } from './figures.js';

const KEY = ADMIN_KEY;
const network = aNetwork({
  chargers: ['A', 'B'].map((id) =>
    aCharger(id, {
      connectors: [
        { id: 1, maxPowerW: 22_000 },
        { id: 2, maxPowerW: 22_000 },
      ],
    }),
  ),
  // One token per car: both sessions run at once (A2).
  tokens: ['TOKEN-A', 'TOKEN-B'].map((id) => ({ id, type: 'RFID', customer: 'c' })),
});

const running: RunningEngine[] = [];
afterAll(async () => {
  for (const engine of running) await engine.stop('SIGKILL');
});

async function transactionOf(
  charger: TestCharger,
  connectorId: number,
  idTag: string,
): Promise<number> {
  const started = await charger.call(
    'StartTransaction',
    aStartTransaction({ connectorId, idTag, meterStart: 5000 }),
  );
  if (!started.ok) throw new Error(started.description);
  return started.payload['transactionId'] as number;
}

describe('acknowledge after durable, across a crash', () => {
  it('what was acknowledged survives SIGKILL: the CDR is written once, and a stop after the restart finds its session (reliability.md 4)', async () => {
    const dir = tempDir();
    const config = writeNetwork(dir, network);
    const dataDir = join(dir, 'data');
    const first = await startEngine({ config, dataDir, extraArgs: ['--fsync', 'true'] });
    running.push(first);

    const a = await TestCharger.connect(`${first.ocppUrl}/A`);
    const txA = await transactionOf(a, 1, 'TOKEN-A');
    expect(
      (await a.call('MeterValues', aMeterValues({ transactionId: txA, wh: 6000, seconds: 600 })))
        .ok,
    ).toBe(true);
    const b = await TestCharger.connect(`${first.ocppUrl}/B`);
    const txB = await transactionOf(b, 2, 'TOKEN-B');
    expect(
      (
        await b.call(
          'MeterValues',
          aMeterValues({ connectorId: 2, transactionId: txB, wh: 7000, seconds: 600 }),
        )
      ).ok,
    ).toBe(true);
    expect(
      (
        await a.call(
          'StopTransaction',
          aStopTransaction({ transactionId: txA, meterStop: 8000, timestamp: at(1200) }),
        )
      ).ok,
    ).toBe(true);
    // Killed the moment the stop is acknowledged: the processor may not have stored anything yet.
    await first.stop('SIGKILL');

    const second = await startEngine({ config, dataDir });
    running.push(second);
    const b2 = await TestCharger.connect(`${second.ocppUrl}/B`);
    // reliability.md 1 across a restart: the StartTransaction resent because its answer was
    // lost gets the same id (one session, no superseded duplicate).
    expect(await transactionOf(b2, 2, 'TOKEN-B')).toBe(txB);
    // A 1.6 stop has no connectorId: it must reach connector 2's session through the restored mapping.
    expect(
      (
        await b2.call(
          'StopTransaction',
          aStopTransaction({ transactionId: txB, meterStop: 9000, timestamp: at(1200) }),
        )
      ).ok,
    ).toBe(true);

    const cdrs = await eventually(
      () =>
        sql<{ session_id: string; energy: string; total: string }>(
          second,
          KEY,
          'SELECT session_id, toString(energy_wh) AS energy, toString(total_incl_vat) AS total FROM cdrs ORDER BY session_id',
        ),
      (rows) => rows.length >= 2,
    );
    const misrouted = cdrs.filter((c) => c.session_id === `B-${txB}` && c.energy !== '4000').length;
    const [sessionsOfB] = await sql<{ n: string }>(
      second,
      KEY,
      "SELECT toString(count()) AS n FROM sessions WHERE charger_id = 'B' AND connector_id = 2",
    );
    recordFigure(
      1,
      'duplicate sessions after a resent start (across SIGKILL)',
      Number(sessionsOfB?.n) - 1,
    );
    recordFigure(4, 'misrouted stops after SIGKILL and restart (embedded)', misrouted);
    expect(sessionsOfB?.n).toBe('1');
    expect(misrouted).toBe(0);
    expect(cdrs).toEqual([
      { session_id: `A-${txA}`, energy: '3000', total: '1.1' },
      { session_id: `B-${txB}`, energy: '4000', total: '1.46' },
    ]);
    // New transactions after the restart never reuse an id handed out before it.
    const txNew = await transactionOf(b2, 1, 'TOKEN-A');
    expect(txNew).toBeGreaterThan(Math.max(txA, txB));
    const [readings] = await sql<{ n: string }>(
      second,
      KEY,
      "SELECT toString(count()) AS n FROM meter_readings WHERE charger_id = 'A'",
    );
    expect(readings?.n).toBe('3');
  });
});
