import { join } from 'node:path';
import fc from 'fast-check';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aMeterValues, aStartTransaction, aStopTransaction } from '../helpers/builders.js';
import { startEngine, tempDir, writeNetwork, type RunningEngine } from '../helpers/engine.js';
import { recordFigure } from './figures.js';

/**
 * Random and mutated frames against a live gateway (reliability.md 6): the process never
 * crashes, every answer is a well-formed CALLRESULT or CALLERROR, and the connection keeps
 * answering. After each frame a Heartbeat probe is sent; everything answered before the
 * probe's answer belongs to the fuzzed frame.
 */
const network = {
  organizations: [{ id: 'o', type: 'cpo' }],
  sites: [{ id: 's', operator: 'o' }],
  chargers: ['FUZZ-16', 'FUZZ-201'].map((id) => ({
    id,
    site: 's',
    connectors: [{ id: 1, maxPowerW: 22_000 }],
  })),
};

let engine: RunningEngine;
beforeAll(async () => {
  const dir = tempDir();
  engine = await startEngine({ config: writeNetwork(dir, network), dataDir: join(dir, 'data') });
});
afterAll(async () => {
  await engine?.stop();
});

const VALID: Array<[string, object]> = [
  ['StartTransaction', aStartTransaction()],
  ['MeterValues', aMeterValues({ transactionId: 1, wh: 100, seconds: 30 })],
  ['StopTransaction', aStopTransaction()],
  ['StatusNotification', { connectorId: 1, errorCode: 'NoError', status: 'Available' }],
  ['BootNotification', { chargePointVendor: 'v', chargePointModel: 'm' }],
  [
    'TransactionEvent',
    {
      eventType: 'Started',
      timestamp: '2026-11-20T08:00:00Z',
      triggerReason: 'Authorized',
      seqNo: 0,
      transactionInfo: { transactionId: 't' },
    },
  ],
];

/** A JSON value with a field replaced, removed or retyped, somewhere in the tree. */
function mutate(value: unknown, choice: number, replacement: unknown): unknown {
  if (Array.isArray(value)) {
    if (value.length === 0) return replacement;
    const i = choice % value.length;
    return (value as unknown[]).map((v, j) =>
      j === i ? mutate(v, Math.floor(choice / 7), replacement) : v,
    );
  }
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value);
    if (keys.length === 0) return replacement;
    const key = keys[choice % keys.length]!;
    const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
    if (choice % 5 === 0) delete copy[key];
    else
      copy[key] =
        choice % 3 === 0 ? replacement : mutate(copy[key], Math.floor(choice / 11), replacement);
    return copy;
  }
  return replacement;
}

const frames = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc
    .tuple(
      fc.constantFrom(...VALID),
      fc.nat(),
      fc.jsonValue(),
      fc.constantFrom(2, 2, 2, 3, 4, 5, '2', null),
    )
    .map(([[action, payload], choice, replacement, type]) =>
      JSON.stringify([type, `f${choice}`, action, mutate(payload, choice, replacement)]),
    ),
  fc
    .tuple(fc.string({ maxLength: 40 }), fc.jsonValue())
    .map(([id, payload]) => JSON.stringify([2, id, 'Heartbeat', payload])),
);

/** A CALLRESULT or CALLERROR; or a CALL of the engine's own (a fuzzed boot that went through is provisioned). */
function wellFormed(frame: unknown): boolean {
  if (!Array.isArray(frame) || typeof frame[1] !== 'string') return false;
  if (frame[0] === 2)
    return frame.length === 4 && typeof frame[2] === 'string' && typeof frame[3] === 'object';
  if (frame[0] === 3)
    return frame.length === 3 && typeof frame[2] === 'object' && frame[2] !== null;
  return (
    frame[0] === 4 &&
    frame.length === 5 &&
    typeof frame[2] === 'string' &&
    typeof frame[3] === 'string' &&
    typeof frame[4] === 'object'
  );
}

async function fuzz(
  chargerId: string,
  protocol: string,
  runs: number,
): Promise<{ frames: number; answers: number; errors: Map<string, number> }> {
  const ws = new WebSocket(`${engine.ocppUrl}/${chargerId}`, [protocol]);
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  const inbox: unknown[] = [];
  let wake: (() => void) | null = null;
  ws.on('message', (data: Buffer) => {
    inbox.push(JSON.parse(data.toString()));
    wake?.();
  });
  const errors = new Map<string, number>();
  let answers = 0;
  let sent = 0;
  await fc.assert(
    fc.asyncProperty(frames, async (text) => {
      sent += 1;
      const probe = `probe-${sent}`;
      ws.send(text);
      ws.send(JSON.stringify([2, probe, 'Heartbeat', {}]));
      for (;;) {
        const frame = inbox.shift();
        if (frame === undefined) {
          await new Promise<void>((resolve, reject) => {
            const timer = setTimeout(
              () => reject(new Error(`no answer to probe after ${text.slice(0, 100)}`)),
              5000,
            );
            wake = () => {
              clearTimeout(timer);
              wake = null;
              resolve();
            };
          });
          continue;
        }
        expect(wellFormed(frame), JSON.stringify(frame)).toBe(true);
        const [type, id] = frame as [number, string];
        if (type === 2) continue; // the engine's own call, not an answer
        if (id === probe) break;
        answers += 1;
        if ((frame as unknown[])[0] === 4) {
          const code = (frame as string[])[2]!;
          errors.set(code, (errors.get(code) ?? 0) + 1);
        }
      }
      // Stay under the per-connection call rate limit.
      await new Promise((r) => setTimeout(r, 60));
    }),
    { numRuns: runs },
  );
  ws.close();
  return { frames: sent, answers, errors };
}

describe('fuzzing a live gateway', () => {
  it('reliability.md 6: random and mutated frames, 1.6 and 2.0.1: no crash, only well-formed answers', async () => {
    const results = await Promise.all([
      fuzz('FUZZ-16', 'ocpp1.6', 150),
      fuzz('FUZZ-201', 'ocpp2.0.1', 150),
    ]);
    const crashes = engine.process.exitCode === null ? 0 : 1;
    recordFigure(6, 'process crashes after 300 fuzzed frames (1.6 and 2.0.1)', crashes);
    expect(crashes).toBe(0);
    for (const r of results) expect(r.frames).toBe(150);
    const codes = new Map<string, number>();
    for (const r of results)
      for (const [code, n] of r.errors) codes.set(code, (codes.get(code) ?? 0) + n);
    console.log('fuzz: CALLERRORs by code', Object.fromEntries(codes));
  }, 120_000);
});
