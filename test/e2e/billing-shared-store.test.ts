import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, aCharger, aNetwork, startInThisMonth } from '../helpers/builders.js';
import {
  CLI,
  eventually,
  sql,
  startEngine,
  tempDir,
  writeNetwork,
  type RunningEngine,
} from '../helpers/engine.js';
import { TestCharger } from '../helpers/ocpp-client.js';

/**
 * C3 and C1 across API processes: an engine and a separate API process (`--role api`) on one
 * shared store (`chargestream store-server`). The same refund, and the same cancellation,
 * sent to both at once: one credit CDR each, and every answer the same.
 */
const dir = tempDir();
const config = writeNetwork(
  dir,
  aNetwork({ chargers: [aCharger('CP1', { connectors: [{ id: 1, maxPowerW: 10_000_000 }] })] }),
);
let storeServer: ChildProcess | undefined;
const engines: RunningEngine[] = [];

beforeAll(async () => {
  storeServer = spawn(
    process.execPath,
    [CLI, 'store-server', '--data', join(dir, 'shared'), '--port', '0'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const server = storeServer;
  const storeUrl = await new Promise<string>((resolve, reject) => {
    let out = '';
    server.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /store server: (http:\/\/[\d.]+:\d+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    server.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    server.once('exit', (code) => reject(new Error(`store-server exited ${code}: ${out}`)));
  });
  engines.push(
    await startEngine({
      config,
      dataDir: join(dir, 'engine'),
      extraArgs: ['--clickhouse', storeUrl],
    }),
  );
  engines.push(
    await startEngine({
      config,
      dataDir: join(dir, 'api'),
      extraArgs: ['--role', 'api', '--clickhouse', storeUrl],
    }),
  );
}, 180_000);

afterAll(async () => {
  for (const engine of engines) await engine.stop('SIGKILL');
  storeServer?.kill('SIGKILL');
});

async function post(engine: RunningEngine, path: string, body: unknown) {
  const response = await fetch(`${engine.apiUrl}${path}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${ADMIN_KEY}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, text: await response.text() };
}

describe('corrections from two API processes on one store', () => {
  it('C3 the same requestId at both processes at once is one refund; C1 one cancellation', async () => {
    const [engine, apiProcess] = engines as [RunningEngine, RunningEngine];
    const cp = await TestCharger.connect(`${engine.ocppUrl}/CP1`);
    // Two sessions of 10 s, 12 s apart, ended in this month (C1).
    const start = await startInThisMonth(25_000);
    for (const [i, wh] of [10_000, 20_000].entries()) {
      const t = start + i * 12_000;
      const started = await cp.call('StartTransaction', {
        connectorId: 1,
        idTag: 'TAG',
        meterStart: 0,
        timestamp: new Date(t).toISOString(),
      });
      if (!started.ok) throw new Error(started.description);
      await cp.call('StopTransaction', {
        transactionId: started.payload['transactionId'] as number,
        meterStop: wh,
        timestamp: new Date(t + 10_000).toISOString(),
        reason: 'EVDisconnected',
      });
    }
    cp.close();
    const rated = await eventually(
      () =>
        sql<{ session_id: string }>(
          apiProcess,
          ADMIN_KEY,
          "SELECT session_id FROM sessions WHERE status = 'rated' ORDER BY started_at",
        ),
      (rows) => rows.length === 2,
    );
    const [refunded, cancelled] = rated.map((r) => r.session_id) as [string, string];

    const refund = { amount: '1.11', reason: 'goodwill', requestId: 'shared-1' };
    const refunds = await Promise.all(
      [engine, apiProcess, engine, apiProcess].map((e) =>
        post(e, `/api/v1/sessions/${refunded}/refund`, refund),
      ),
    );
    expect(refunds.map((r) => r.status)).toEqual([201, 201, 201, 201]);
    expect(new Set(refunds.map((r) => r.text)).size).toBe(1);

    const cancels = await Promise.all(
      [engine, apiProcess].map((e) =>
        post(e, `/api/v1/sessions/${cancelled}/cancel`, { reason: 'duplicate' }),
      ),
    );
    // Both may pass their checks before either writes: the store keeps one cancellation, and
    // whichever answered 201 answered with it; one that came after is refused.
    for (const c of cancels) {
      if (c.status === 201) expect(c.text).toContain(`"cdrId":"${cancelled}-cancel"`);
      else expect(c.text).toContain('SESSION_ALREADY_CANCELLED');
    }
    expect(cancels.some((c) => c.status === 201)).toBe(true);

    const credits = await sql<{ session_id: string; n: string }>(
      apiProcess,
      ADMIN_KEY,
      "SELECT session_id, toString(count()) AS n FROM cdrs WHERE kind = 'credit' GROUP BY session_id ORDER BY session_id",
    );
    expect(credits.map((c) => [c.session_id, c.n]).sort()).toEqual(
      [
        [refunded, '1'],
        [cancelled, '1'],
      ].sort(),
    );
    const [status] = await sql<{ status: string }>(
      engine,
      ADMIN_KEY,
      `SELECT status FROM sessions WHERE session_id = '${cancelled}'`,
    );
    expect(status).toEqual({ status: 'cancelled' });
  });
});
