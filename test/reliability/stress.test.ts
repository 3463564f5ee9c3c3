import WebSocket from 'ws';
import { describe, expect, it } from 'vitest';
import { aCharger, aNetwork } from '../helpers/builders.js';
import { useEngine } from '../helpers/engine.js';
import { recordFigure } from './figures.js';

/**
 * Gateway scenarios of reliability.md under volume, each recording its figure: brute force
 * (10), a slow reader (12), an oversized frame (6). The reconnect storm (11) restarts the
 * engine: reconnect-storm.test.ts.
 */
const LOCKED = 'a-password-for-storm-tests';
const run = useEngine(
  aNetwork({
    chargers: [
      ...Array.from({ length: 100 }, (_, i) => aCharger(`L${i}`, { password: LOCKED })),
      aCharger('SLOW'),
      aCharger('BIG'),
    ],
  }),
);

function open(id: string, options: WebSocket.ClientOptions = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${run.engine.ocppUrl}/${id}`, ['ocpp1.6'], options);
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => reject(new Error(String(res.statusCode))));
    ws.once('error', reject);
  });
}

/** One CALL, its answer frame. */
function call(ws: WebSocket, id: string, action: string, payload: object): Promise<unknown[]> {
  return new Promise((resolve) => {
    const onMessage = (data: Buffer) => {
      const frame = JSON.parse(data.toString()) as unknown[];
      if (frame[1] !== id) return;
      ws.off('message', onMessage);
      resolve(frame);
    };
    ws.on('message', onMessage);
    ws.send(JSON.stringify([2, id, action, payload]));
  });
}

const pct = (values: number[], q: number) =>
  [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(q * values.length))] ??
  0;

describe('the gateway under volume', () => {
  it('reliability.md 10: thousands of failed upgrades from one source are limited while chargers elsewhere connect', async () => {
    let attempts = 0;
    let limited = 0;
    let attacking = true;
    // The attacker comes from 127.0.0.2; the chargers from 127.0.0.1 (both loopback).
    const attack = (async () => {
      while (attacking) {
        attempts += 1;
        await open('L0', {
          localAddress: '127.0.0.2',
          headers: {
            Authorization: `Basic ${Buffer.from(`L0:guess-${attempts}-000000000`).toString('base64')}`,
          },
        }).then(
          (ws) => ws.close(),
          (error: Error) => {
            if (error.message === '429') limited += 1;
          },
        );
      }
    })();
    await new Promise((r) => setTimeout(r, 300));
    const connectMs: number[] = [];
    for (let i = 0; i < 100; i++) {
      const t = performance.now();
      const ws = await open(`L${i}`, {
        headers: { Authorization: `Basic ${Buffer.from(`L${i}:${LOCKED}`).toString('base64')}` },
      });
      connectMs.push(performance.now() - t);
      ws.close();
    }
    attacking = false;
    await attack;
    recordFigure(10, `failed upgrades answered 429 (of ${attempts})`, limited);
    recordFigure(
      10,
      'connect p99 of 100 legitimate chargers meanwhile (ms)',
      Number(pct(connectMs, 0.99).toFixed(1)),
    );
    expect(connectMs).toHaveLength(100);
    expect(limited).toBeGreaterThan(attempts / 2);
  }, 60_000);

  it(
    'reliability.md 12: a charger that stops reading meets a bounded send buffer',
    { timeout: 60_000 },
    async () => {
      const ws = await open('SLOW');
      // Stop reading: the kernel buffers fill, then the engine's own send buffer.
      (ws as unknown as { _socket: { pause(): void } })._socket.pause();
      const frame = JSON.stringify([2, 'x', 'Heartbeat', {}]);
      // Enough answers (~90 bytes each) to fill the loopback's socket buffers several times over.
      for (let i = 0; i < 200_000; i++) ws.send(frame);
      await new Promise((r) => setTimeout(r, 4000));
      const metrics = await (await fetch(`${run.engine.apiUrl}/metrics`)).text();
      const peak = Number(/chargestream_gateway_send_buffer_peak_bytes (\d+)/.exec(metrics)?.[1]);
      const dropped = Number(/chargestream_gateway_sends_dropped_total (\d+)/.exec(metrics)?.[1]);
      recordFigure(
        12,
        `peak buffered bytes for a charger that stopped reading (${dropped} answers dropped)`,
        peak,
      );
      expect(peak).toBeGreaterThan(0);
      expect(peak).toBeLessThanOrEqual(256 * 1024 + 1024);
      ws.terminate();
      expect(run.engine.process.exitCode).toBeNull();
    },
  );

  it('reliability.md 6: a frame over the size limit closes that connection only', async () => {
    const ws = await open('BIG');
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    ws.send(
      JSON.stringify([2, 'big', 'DataTransfer', { vendorId: 'x', data: 'x'.repeat(100_000) }]),
    );
    // uWS drops the connection (1006 at the client; 1009 when it manages a close frame).
    const code = await closed;
    recordFigure(6, 'close code for a frame over the size limit', code);
    expect([1006, 1009]).toContain(code);
    const again = await open('BIG');
    expect((await call(again, 'h', 'Heartbeat', {}))[0]).toBe(3);
    again.close();
  });
});
