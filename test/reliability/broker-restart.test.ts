import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startLocalBroker, type LocalBroker } from '../../src/kafka/local-broker.js';
import {
  ADMIN_KEY,
  aCharger,
  aMeterValues,
  aNetwork,
  aStartTransaction,
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
import { freePort } from '../../src/lib/free-port.js';
import { recordFigure } from './figures.js';

/**
 * reliability.md 15: the broker restarts while chargers send. A CALLRESULT must mean "kept":
 * every reading the engine acknowledged is in the store afterwards; what it could not keep it
 * refused, and the charger sent again.
 */

let broker: LocalBroker | undefined;
let engine: RunningEngine | undefined;
afterAll(async () => {
  await engine?.stop('SIGKILL');
  await broker?.stop();
});

describe('broker restart under load', () => {
  it('reliability.md 15: no acknowledged event is lost', async () => {
    const brokerDir = mkdtempSync(join(tmpdir(), 'chargestream-restart-broker-'));
    const ports = { port: await freePort(), controllerPort: await freePort() };
    broker = await startLocalBroker({ dataDir: brokerDir, ...ports });
    const dir = tempDir();
    const chargers = ['BR-1', 'BR-2', 'BR-3', 'BR-4'];
    engine = await startEngine({
      config: writeNetwork(dir, aNetwork({ chargers: chargers.map((id) => aCharger(id)) })),
      dataDir: join(dir, 'data'),
      extraArgs: [
        '--kafka',
        broker.brokers,
        '--topic-prefix',
        `br-${randomUUID().slice(0, 8)}`,
        '--partitions',
        '4',
      ],
    });
    const running = engine;
    const acked = new Set<string>();
    let refused = 0;
    let stop = false;
    const drive = async (id: string) => {
      const cp = await TestCharger.connect(`${running.ocppUrl}/${id}`);
      let started = await cp.call('StartTransaction', aStartTransaction({ idTag: 'TAG' }));
      while (!started.ok)
        started = await cp.call('StartTransaction', aStartTransaction({ idTag: 'TAG' }));
      const transactionId = started.payload['transactionId'] as number;
      for (let n = 1; !stop; n++) {
        // A charger resends what was not acknowledged (TransactionMessageAttempts).
        for (;;) {
          const answer = await cp.call(
            'MeterValues',
            aMeterValues({ transactionId, wh: n, seconds: n }),
            60_000,
          );
          if (answer.ok) break;
          refused += 1;
          await new Promise((r) => setTimeout(r, 200));
        }
        acked.add(`${id}:${n}`);
      }
      cp.close();
    };
    const load = Promise.all(chargers.map(drive));
    await new Promise((r) => setTimeout(r, 1500));
    await broker.stop();
    const down = performance.now();
    await new Promise((r) => setTimeout(r, 3000));
    broker = await startLocalBroker({ dataDir: brokerDir, ...ports });
    const backAfter = performance.now() - down;
    await new Promise((r) => setTimeout(r, 2000));
    stop = true;
    await load;
    const stored = await eventually(
      () =>
        sql<{ charger_id: string; value: number }>(
          running,
          ADMIN_KEY,
          "SELECT charger_id, value FROM meter_readings WHERE charger_id LIKE 'BR-%' AND context = 'Sample.Periodic'",
        ),
      (rows) => new Set(rows.map((r) => `${r.charger_id}:${r.value}`)).size >= acked.size,
      60_000,
    );
    const storedKeys = new Set(stored.map((r) => `${r.charger_id}:${r.value}`));
    const lost = [...acked].filter((k) => !storedKeys.has(k));
    console.log(
      `scenario 15: ${acked.size} acknowledged, ${refused} refused while the broker was down (${Math.round(backAfter)} ms), lost ${lost.length}`,
    );
    recordFigure(
      15,
      `acknowledged events lost (of ${acked.size}; ${refused} refused meanwhile)`,
      lost.length,
    );
    expect(lost).toEqual([]);
    expect(acked.size).toBeGreaterThan(0);
  }, 180_000);
});
