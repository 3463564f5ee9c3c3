import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, aCharger, aNetwork, startInThisMonth } from '../helpers/builders.js';
import {
  eventually,
  sql,
  startEngine,
  tempDir,
  writeNetwork,
  type RunningEngine,
} from '../helpers/engine.js';
import { TestCharger } from '../helpers/ocpp-client.js';

/**
 * Corrections across a crash: after SIGKILL the engine rebuilds its state from the store and
 * replays what the log holds past the stored offsets (any session row it writes again has its
 * old version, below the cancelled one); the cancelled state stays. A refund repeated after
 * the restart (a new API process, nothing in memory) is found in the store and answered as
 * before, without a second credit CDR.
 */
const running: RunningEngine[] = [];
afterAll(async () => {
  for (const engine of running) await engine.stop('SIGKILL');
});

async function call(engine: RunningEngine, method: string, path: string, body?: unknown) {
  const response = await fetch(`${engine.apiUrl}${path}`, {
    method,
    headers: { Authorization: `Bearer ${ADMIN_KEY}`, 'Content-Type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, text: await response.text() };
}

describe('corrections survive a crash and a replay', () => {
  it('C2 the cancelled session stays cancelled after the processor replays; C3 a refund repeated after the restart is the same refund', async () => {
    const dir = tempDir();
    const config = writeNetwork(
      dir,
      aNetwork({ chargers: [aCharger('CP1', { connectors: [{ id: 1, maxPowerW: 10_000_000 }] })] }),
    );
    const dataDir = join(dir, 'data');
    const first = await startEngine({ config, dataDir });
    running.push(first);
    const cp = await TestCharger.connect(`${first.ocppUrl}/CP1`);
    // Two sessions of 10 s, 12 s apart, ended in this month (C1).
    const start = await startInThisMonth(25_000);
    const ids: number[] = [];
    for (const [i, wh] of [5_000, 8_000].entries()) {
      const t = start + i * 12_000;
      const started = await cp.call('StartTransaction', {
        connectorId: 1,
        idTag: 'TAG',
        meterStart: 0,
        timestamp: new Date(t).toISOString(),
      });
      if (!started.ok) throw new Error(started.description);
      const transactionId = started.payload['transactionId'] as number;
      ids.push(transactionId);
      await cp.call('StopTransaction', {
        transactionId,
        meterStop: wh,
        timestamp: new Date(t + 10_000).toISOString(),
        reason: 'EVDisconnected',
      });
    }
    const sessions = await eventually(
      () =>
        sql<{ session_id: string }>(
          first,
          ADMIN_KEY,
          "SELECT session_id FROM sessions WHERE status = 'rated' ORDER BY started_at",
        ),
      (rows) => rows.length === 2,
    );
    const [cancelled, refunded] = sessions.map((s) => s.session_id) as [string, string];
    expect(
      (await call(first, 'POST', `/api/v1/sessions/${cancelled}/cancel`, { reason: 'test' }))
        .status,
    ).toBe(201);
    const refund = { amount: '0.50', reason: 'goodwill', requestId: 'crash-1' };
    const before = await call(first, 'POST', `/api/v1/sessions/${refunded}/refund`, refund);
    expect(before.status).toBe(201);
    cp.close();
    await first.stop('SIGKILL');

    const second = await startEngine({ config, dataDir });
    running.push(second);
    const status = await sql<{ status: string }>(
      second,
      ADMIN_KEY,
      `SELECT status FROM sessions WHERE session_id = '${cancelled}'`,
    );
    expect(status).toEqual([{ status: 'cancelled' }]);
    const after = await call(second, 'POST', `/api/v1/sessions/${refunded}/refund`, refund);
    expect(after).toEqual(before);
    const credits = await sql<{ session_id: string; n: string }>(
      second,
      ADMIN_KEY,
      "SELECT session_id, toString(count()) AS n FROM cdrs WHERE kind = 'credit' GROUP BY session_id ORDER BY session_id",
    );
    expect(credits.map((c) => c.n)).toEqual(['1', '1']);
    const [sums] = await sql<{ incl: string }>(
      second,
      ADMIN_KEY,
      `SELECT toString(sum(total_incl_vat)) AS incl FROM cdrs WHERE session_id = '${cancelled}'`,
    );
    expect(sums).toEqual({ incl: '0' });
    await second.stop();
  });
});
