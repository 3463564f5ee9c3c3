import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { gatewayMetrics } from '../../src/metrics/engine-metrics.js';
import { Metrics } from '../../src/metrics/registry.js';

/**
 * What the gateway's per-frame metrics cost: per acknowledged frame the gateway counts the
 * frame in and the answer out by action (two map updates) and observes the ack latency in a
 * prom-client histogram (two clock reads and one observe). Prints nanoseconds per frame, and a
 * scrape's cost with the frame series filled in.
 *
 *   npm run build && node dist/bench/micro/metrics.bench.js [frames]
 */
const FRAMES = Number(process.argv[2] ?? 5_000_000);
const ACTIONS = [
  'MeterValues',
  'StatusNotification',
  'Heartbeat',
  'StartTransaction',
  'StopTransaction',
];

function perFrame(frames: number): number {
  const metrics = new Metrics();
  const m = gatewayMetrics(metrics, true)!;
  const t0 = performance.now();
  for (let i = 0; i < frames; i++) {
    const action = ACTIONS[i % 5]!;
    m.framesIn.add(action);
    const arrived = performance.now();
    m.ackLatency.observe((performance.now() - arrived) / 1000);
    m.framesOut.add(action);
  }
  return ((performance.now() - t0) * 1e6) / frames;
}

function baseline(frames: number): number {
  // The loop alone, for subtraction.
  let sink = 0;
  const t0 = performance.now();
  for (let i = 0; i < frames; i++) sink += ACTIONS[i % 5]!.length;
  const ns = ((performance.now() - t0) * 1e6) / frames;
  if (sink < 0) console.log(sink);
  return ns;
}

async function scrape(): Promise<number> {
  const metrics = new Metrics();
  const m = gatewayMetrics(metrics, true)!;
  for (let i = 0; i < 100_000; i++) {
    m.framesIn.add(ACTIONS[i % 5]!);
    m.ackLatency.observe(0.004);
  }
  await metrics.text();
  const t0 = performance.now();
  for (let i = 0; i < 100; i++) await metrics.text();
  return (performance.now() - t0) / 100;
}

perFrame(FRAMES / 10);
baseline(FRAMES / 10);
const cost = perFrame(FRAMES);
const loop = baseline(FRAMES);
console.log(
  `frame metrics: ${(cost - loop).toFixed(0)} ns per acknowledged frame (${FRAMES.toLocaleString('en')} frames, node ${process.version})`,
);
const scrapeMs = await scrape();
console.log(`scrape of the whole registry: ${scrapeMs.toFixed(2)} ms`);
const out = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bench', 'out');
mkdirSync(out, { recursive: true });
writeFileSync(
  join(out, 'metrics-bench.json'),
  `${JSON.stringify({ date: new Date().toISOString(), node: process.version, frames: FRAMES, nsPerFrame: Math.round(cost - loop), scrapeMs }, null, 2)}\n`,
);
