/**
 * What R5.1 costs a 2.0.1 charger: answer latency of TransactionEvent Started, Updated and
 * Ended (Ended waits for the session's rating to carry its final totalCost), with C chargers
 * each running S sessions of R readings, one call at a time, against the engine started as
 * its own process (embedded, fsync on). Prints percentiles per event type and how many Ended
 * answers carried a totalCost, and writes them as JSON.
 *
 *   node dist/bench/load/live-cost-bench.js [--chargers 100] [--sessions 3] [--readings 10]
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { stringify } from 'yaml';
import { ENGINE_NODE_FLAGS } from '../../src/lib/engine-flags.js';
import { freePort } from '../../src/lib/free-port.js';

const here = fileURLToPath(import.meta.url);
const root = join(dirname(here), '..', '..', '..');
const T0 = Date.parse('2026-11-20T08:00:00.000Z');

type EventType = 'Started' | 'Updated' | 'Ended';

const { values } = parseArgs({
  options: {
    chargers: { type: 'string', default: '100' },
    sessions: { type: 'string', default: '3' },
    readings: { type: 'string', default: '10' },
    out: { type: 'string', default: join(root, 'bench', 'out', 'live-cost-bench.json') },
  },
});
const chargers = Number(values.chargers);
const sessions = Number(values.sessions);
const readings = Number(values.readings);

const dir = mkdtempSync(join(tmpdir(), 'chargestream-bench-'));
const config = join(dir, 'network.yaml');
const ids = Array.from({ length: chargers }, (_, i) => `LCB-${i}`);
writeFileSync(
  config,
  stringify({
    settings: { defaultTariff: 't', costUpdatedIntervalS: 0 },
    organizations: [{ id: 'o', type: 'cpo' }],
    sites: [{ id: 's', operator: 'o' }],
    chargers: ids.map((id) => ({ id, site: 's', connectors: [{ id: 1, maxPowerW: 22_000 }] })),
    tariffs: [
      {
        id: 't',
        currency: 'EUR',
        elements: [{ components: [{ type: 'ENERGY', price: '0.30', vat: '22' }] }],
      },
    ],
    customers: [{ id: 'c', organization: 'o', paymentType: 'postpaid' }],
    tokens: ids.map((id) => ({ id: `TAG-${id}`, type: 'RFID', customer: 'c' })),
  }),
);
const ocppPort = await freePort();
const engine = spawn(
  process.execPath,
  [
    ...ENGINE_NODE_FLAGS,
    join(root, 'dist', 'src', 'cli.js'),
    'start',
    '--config',
    config,
    '--data',
    join(dir, 'data'),
    '--ocpp-port',
    String(ocppPort),
    '--api-port',
    String(await freePort()),
    '--host',
    '127.0.0.1',
    '--log-level',
    'warn',
  ],
  { stdio: ['ignore', 'pipe', 'inherit'] },
);
await new Promise<void>((resolve) => {
  engine.stdout.on('data', (d: Buffer) => {
    if (d.toString().includes('listening')) resolve();
  });
});

const latencies: Record<EventType, number[]> = { Started: [], Updated: [], Ended: [] };
let endedWithCost = 0;
const started = performance.now();
await Promise.all(ids.map((id) => runCharger(id)));
const seconds = (performance.now() - started) / 1000;
engine.kill('SIGTERM');

const pct = (list: number[], p: number) => {
  const sorted = [...list].sort((a, b) => a - b);
  return Number(
    (sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0).toFixed(2),
  );
};
const result = {
  chargers,
  sessions: chargers * sessions,
  seconds: Number(seconds.toFixed(1)),
  endedWithTotalCost: `${endedWithCost} of ${chargers * sessions}`,
  latencyMs: Object.fromEntries(
    (Object.keys(latencies) as EventType[]).map((type) => [
      type,
      {
        n: latencies[type].length,
        p50: pct(latencies[type], 0.5),
        p95: pct(latencies[type], 0.95),
        p99: pct(latencies[type], 0.99),
      },
    ]),
  ),
};
console.log(JSON.stringify(result, null, 2));
mkdirSync(dirname(values.out), { recursive: true });
writeFileSync(values.out, JSON.stringify(result, null, 2));

async function runCharger(id: string): Promise<void> {
  const ws = new WebSocket(`ws://127.0.0.1:${ocppPort}/ocpp/${id}`, ['ocpp2.0.1']);
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  const waiting = new Map<string, (payload: Record<string, unknown>) => void>();
  ws.on('message', (data: Buffer) => {
    const frame = JSON.parse(data.toString()) as unknown[];
    if (frame[0] === 2) ws.send(JSON.stringify([3, frame[1], {}]));
    else waiting.get(String(frame[1]))?.(frame[2] as Record<string, unknown>);
  });
  let next = 0;
  const call = (payload: Record<string, unknown>) =>
    new Promise<Record<string, unknown>>((resolve) => {
      const messageId = String(next++);
      waiting.set(messageId, resolve);
      ws.send(JSON.stringify([2, messageId, 'TransactionEvent', payload]));
    });
  for (let s = 0; s < sessions; s += 1) {
    const transactionId = `${id}-${s}`;
    const base = T0 + s * 4 * 3600_000;
    for (let n = 0; n <= readings + 1; n += 1) {
      const eventType: EventType = n === 0 ? 'Started' : n <= readings ? 'Updated' : 'Ended';
      const timestamp = new Date(base + n * 60_000).toISOString();
      const sent = performance.now();
      const answer = await call({
        eventType,
        timestamp,
        triggerReason: n === 0 ? 'Authorized' : 'MeterValuePeriodic',
        seqNo: n,
        transactionInfo: {
          transactionId,
          ...(eventType === 'Ended' ? { stoppedReason: 'Local' } : {}),
        },
        evse: { id: 1, connectorId: 1 },
        ...(n === 0 ? { idToken: { idToken: `TAG-${id}`, type: 'ISO14443' } } : {}),
        meterValue: [
          {
            timestamp,
            sampledValue: [{ value: n * 250, measurand: 'Energy.Active.Import.Register' }],
          },
        ],
      });
      latencies[eventType].push(performance.now() - sent);
      if (eventType === 'Ended' && typeof answer['totalCost'] === 'number') endedWithCost += 1;
    }
  }
  ws.close();
}
