/**
 * Skeleton load benchmark: C simulated chargers, each running a session and sending
 * MeterValues one call at a time (as a real charger does: one outstanding CALL), against the
 * engine started as its own process with fsync on. Prints acknowledged frames per second,
 * ack latency percentiles and the engine's memory, and writes them as JSON.
 *
 *   node dist/bench/load/ack-bench.js [--chargers 2000] [--seconds 20] [--procs 2] [--fsync true] [--bus embedded|kafka]
 *     [--frame-metrics true|false]
 *
 * Load generators are separate processes (a process holds at most ~19 k sockets here, and
 * one event loop would measure itself rather than the engine).
 */
import { fork, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { stringify } from 'yaml';
import { ENGINE_NODE_FLAGS } from '../../src/lib/engine-flags.js';
import { freePort } from '../../src/lib/free-port.js';
import { meterValues, T0 } from './frames.js';

const here = fileURLToPath(import.meta.url);
const root = join(dirname(here), '..', '..', '..');

interface LoadResult {
  acks: number;
  errors: number;
  latenciesUs: number[];
}

if (process.argv[2] === '--generator') {
  await generator(
    JSON.parse(process.argv[3]!) as { url: string; first: number; count: number; seconds: number },
  );
} else {
  await main();
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      chargers: { type: 'string', default: '2000' },
      seconds: { type: 'string', default: '20' },
      procs: { type: 'string', default: '2' },
      fsync: { type: 'string', default: 'true' },
      // false: the engine takes no per-frame metrics (to measure what they cost).
      'frame-metrics': { type: 'string', default: 'true' },
      // embedded: the in-process log; kafka: a local broker started for the run, engine on it.
      bus: { type: 'string', default: 'embedded' },
      out: { type: 'string', default: join(root, 'bench', 'out', 'ack-bench.json') },
    },
  });
  const chargers = Number(values.chargers);
  const seconds = Number(values.seconds);
  const procs = Number(values.procs);
  const dir = mkdtempSync(join(tmpdir(), 'chargestream-bench-'));
  const config = join(dir, 'network.yaml');
  writeFileSync(
    config,
    stringify({
      settings: { defaultTariff: 't' },
      organizations: [{ id: 'o', type: 'cpo' }],
      sites: [{ id: 's', operator: 'o' }],
      chargers: Array.from({ length: chargers }, (_, i) => ({
        id: `B${i}`,
        site: 's',
        connectors: [{ id: 1, maxPowerW: 22_000 }],
      })),
      tariffs: [
        {
          id: 't',
          currency: 'EUR',
          elements: [{ components: [{ type: 'ENERGY', price: '0.30', vat: '22' }] }],
        },
      ],
      customers: [{ id: 'c', organization: 'o', paymentType: 'postpaid' }],
      // A card per charger: a card charges one car at a time (A2).
      tokens: Array.from({ length: chargers }, (_, i) => ({
        id: `BENCH${i}`,
        type: 'RFID',
        customer: 'c',
      })),
    }),
  );
  let broker: { brokers: string; stop(): Promise<void> } | null = null;
  const busArgs: string[] = [];
  if (values.bus === 'kafka') {
    const { startLocalBroker } = await import('../../src/kafka/local-broker.js');
    broker = await startLocalBroker({
      dataDir: join(dir, 'kafka'),
      port: await freePort(),
      controllerPort: await freePort(),
    });
    busArgs.push('--kafka', broker.brokers, '--topic-prefix', 'bench');
  } else if (values.bus !== 'embedded') {
    throw new Error(`--bus: embedded or kafka, not ${values.bus}`);
  }
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
      '0',
      '--api-port',
      '0',
      '--host',
      '127.0.0.1',
      '--log-level',
      'warn',
      '--fsync',
      values.fsync,
      '--frame-metrics',
      values['frame-metrics'],
      ...busArgs,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const url = await new Promise<string>((resolve) => {
    let out = '';
    engine.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /OCPP (ws:\/\/[\d.]+:\d+)\/ocpp/.exec(out);
      if (m) resolve(`${m[1]}/ocpp`);
    });
  });
  const per = Math.ceil(chargers / procs);
  const started = performance.now();
  let peakRssKb = 0;
  const sampler = setInterval(() => {
    try {
      const status = readFileSync(`/proc/${engine.pid}/status`, 'utf8');
      peakRssKb = Math.max(peakRssKb, Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0));
    } catch {
      /* engine gone */
    }
  }, 250);
  const results = await Promise.all(
    Array.from(
      { length: procs },
      (_, p) =>
        new Promise<LoadResult>((resolve, reject) => {
          const child = fork(here, [
            '--generator',
            JSON.stringify({
              url,
              first: p * per,
              count: Math.min(per, chargers - p * per),
              seconds,
            }),
          ]);
          child.once('message', (m) => resolve(m as LoadResult));
          child.once('error', reject);
          child.once('exit', (code) => reject(new Error(`load generator exited with ${code}`)));
        }),
    ),
  );
  const elapsed = (performance.now() - started) / 1000;
  clearInterval(sampler);
  const exited = new Promise((resolve) => engine.once('exit', resolve));
  engine.kill('SIGTERM');
  await exited;
  await broker?.stop();
  const latencies = results.flatMap((r) => r.latenciesUs).sort((a, b) => a - b);
  const pct = (q: number) =>
    (latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0) / 1000;
  const acks = results.reduce((n, r) => n + r.acks, 0);
  const summary = {
    chargers,
    seconds,
    procs,
    fsync: values.fsync === 'true',
    bus: values.bus,
    acks,
    errors: results.reduce((n, r) => n + r.errors, 0),
    acksPerSecond: Math.round(acks / seconds),
    ackLatencyMs: { p50: pct(0.5), p90: pct(0.9), p99: pct(0.99), max: pct(1) },
    enginePeakRssMiB: Math.round(peakRssKb / 1024),
    wallSeconds: Math.round(elapsed * 10) / 10,
  };
  mkdirSync(dirname(values.out), { recursive: true });
  writeFileSync(values.out, JSON.stringify(summary, null, 2));
  console.log(JSON.stringify(summary, null, 2));
  process.exit(0);
}

/** One load-generator process: `count` chargers, each a loop of MeterValues calls. */
async function generator(o: {
  url: string;
  first: number;
  count: number;
  seconds: number;
}): Promise<void> {
  const result: LoadResult = { acks: 0, errors: 0, latenciesUs: [] };
  const sockets = await Promise.all(
    Array.from(
      { length: o.count },
      (_, i) =>
        new Promise<WebSocket>((resolve, reject) => {
          const ws = new WebSocket(`${o.url}/B${o.first + i}`, ['ocpp1.6']);
          ws.once('open', () => resolve(ws));
          ws.once('error', reject);
          ws.once('unexpected-response', (_req, res) =>
            reject(new Error(`upgrade refused: ${res.statusCode}`)),
          );
        }),
    ),
  );
  const deadline = performance.now() + o.seconds * 1000;
  await Promise.all(
    sockets.map(async (ws, i) => {
      let id = 0;
      const call = (action: string, payload: object) =>
        new Promise<unknown[]>((resolve) => {
          const messageId = String(++id);
          const sent = process.hrtime.bigint();
          const onMessage = (data: Buffer) => {
            const frame = JSON.parse(data.toString()) as unknown[];
            if (frame[1] !== messageId) return;
            ws.off('message', onMessage);
            result.latenciesUs.push(Number(process.hrtime.bigint() - sent) / 1000);
            if (frame[0] === 3) result.acks += 1;
            else result.errors += 1;
            resolve(frame);
          };
          ws.on('message', onMessage);
          ws.send(JSON.stringify([2, messageId, action, payload]));
        });
      const start = await call('StartTransaction', {
        connectorId: 1,
        idTag: `BENCH${o.first + i}`,
        meterStart: 0,
        timestamp: new Date(T0).toISOString(),
      });
      const transactionId = (start[2] as { transactionId: number }).transactionId;
      let n = 0;
      while (performance.now() < deadline) {
        n += 1;
        await call('MeterValues', meterValues(transactionId, n));
      }
      ws.close();
    }),
  );
  process.send!(result, () => process.exit(0));
}
