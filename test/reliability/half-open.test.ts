import { join } from 'node:path';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aCharger, aNetwork } from '../helpers/builders.js';
import {
  eventually,
  startEngine,
  tempDir,
  writeNetwork,
  type RunningEngine,
} from '../helpers/engine.js';
import { TestCharger } from '../helpers/ocpp-client.js';
import { startChargerProcess, type ChargerProcess } from './charger-process.js';
import { recordFigure } from './figures.js';
import { metricSum } from './harness.js';

/**
 * reliability.md 12, silent drops: a charger whose process hangs (SIGSTOP: its TCP
 * connection stays up, nothing answers) and one that stops answering pings are dropped
 * within the idle timeout, and their identity is free again for the real reconnect. The slow
 * reader (bounded send buffer) is in stress.test.ts.
 */
const IDLE_S = 8;
let engine: RunningEngine;
const children: ChargerProcess[] = [];
beforeAll(async () => {
  const dir = tempDir();
  engine = await startEngine({
    config: writeNetwork(dir, aNetwork({ chargers: [aCharger('HUNG-1'), aCharger('DEAF-1')] })),
    dataDir: join(dir, 'data'),
    extraArgs: ['--idle-timeout', String(IDLE_S)],
  });
});
afterAll(async () => {
  for (const c of children) c.kill();
  await engine?.stop();
});

/** Polls until the engine lets the identity connect again; the time it took. */
async function freedAfter(chargerId: string, since: number): Promise<number> {
  const back = await eventually(
    () =>
      TestCharger.connect(`${engine.ocppUrl}/${chargerId}`).then(
        (cp) => cp,
        () => null,
      ),
    (cp) => cp !== null,
    IDLE_S * 1000 * 4,
  );
  const ms = Date.now() - since;
  expect((await back!.call('Heartbeat', {})).ok).toBe(true);
  back!.close();
  return ms;
}

describe.concurrent('half-open connections', () => {
  it(
    `a charger process stopped (SIGSTOP) is dropped within the idle timeout (${IDLE_S} s)`,
    { timeout: 60_000 },
    async () => {
      const hung = await startChargerProcess(`${engine.ocppUrl}/HUNG-1`);
      children.push(hung);
      const before = await metricSum(engine, 'chargestream_gateway_connections');
      hung.process.kill('SIGSTOP');
      const stopped = Date.now();
      const detectedMs = await freedAfter('HUNG-1', stopped);
      hung.process.kill('SIGCONT');
      hung.kill();
      recordFigure(
        12,
        `detection time of a SIGSTOPped charger, idle timeout ${IDLE_S} s (ms)`,
        detectedMs,
      );
      expect(before).toBeGreaterThanOrEqual(1);
      // uWS's idle timer checks in 4 s ticks and sends a ping first: at most about twice the timeout.
      expect(detectedMs).toBeLessThan(IDLE_S * 1000 * 3);
    },
  );

  it(
    'a charger that stops answering pings is dropped within the idle timeout',
    { timeout: 60_000 },
    async () => {
      // autoPong off: the socket stays open at TCP level but the peer never answers a ping.
      const silent = new WebSocket(`${engine.ocppUrl}/DEAF-1`, ['ocpp1.6'], { autoPong: false });
      await new Promise((resolve, reject) => silent.once('open', resolve).once('error', reject));
      const opened = Date.now();
      const closedAfter = await new Promise<number>((resolve) =>
        silent.once('close', () => resolve(Date.now() - opened)),
      );
      recordFigure(12, `detection time of a charger not answering pings (ms)`, closedAfter);
      expect(closedAfter).toBeLessThan(IDLE_S * 1000 * 3);
      expect(await freedAfter('DEAF-1', Date.now())).toBeLessThan(IDLE_S * 1000);
    },
  );
});
