import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SingleBar } from 'cli-progress';
import type { EngineConfig } from '../config/load-config.js';
import { createLogger } from '../lib/log.js';
import { startEngine } from '../main.js';
import { simulate, type SimStats } from './simulator.js';

export interface DemoOptions {
  readonly chargers: number;
  readonly sessions: number;
  readonly readings: number;
}

/**
 * `npm run demo`: the engine (embedded, built-in demo network, fresh data under
 * `<data>/demo`) and simulated chargers running sessions with a few faulty readings, a
 * progress bar while they run, then a report from the store and a chart of throughput and
 * latency written next to the data.
 */
export async function runDemo(config: EngineConfig, options: DemoOptions): Promise<void> {
  if (config.demoApiKey === null)
    throw new Error('the demo runs on the built-in demo network (no --config, no network.yaml)');
  const dataDir = join(config.dataDir, 'demo');
  rmSync(dataDir, { recursive: true, force: true });
  const engine = await startEngine(
    { ...config, dataDir, ocppPort: 0, apiPort: 0, host: '127.0.0.1' },
    createLogger('warn'),
  );
  const chargers = config.network.chargers.slice(0, options.chargers);
  const total = chargers.length * options.sessions;
  process.stdout.write(
    `chargestream demo: ${chargers.length} simulated chargers, ${total} sessions\n`,
  );
  const bar = new SingleBar({
    format: 'sessions {bar} {value}/{total} | {acks} acks/s | p99 {p99} ms',
    hideCursor: true,
    clearOnComplete: false,
  });
  bar.start(total, 0, { acks: 0, p99: 0 });
  let done = 0;
  let stats: SimStats | null = null;
  // Live figures over the last half second.
  let window: number[] = [];
  const latest = { acks: 0, p99: 0 };
  const ticker = setInterval(() => bar.update(done, latest), 250);
  const run = simulate({
    url: `ws://127.0.0.1:${engine.ocppPort}/ocpp`,
    chargerIds: chargers.map((c) => c.id),
    tokens: config.network.tokens.map((t) => t.id),
    sessionsPerCharger: options.sessions,
    readingsPerSession: options.readings,
    intervalS: 15,
    share201: 0.3,
    faults: 0.01,
    maxPowerW: 22_000,
    perCharger: true,
    onSession: () => (done += 1),
    onCall: (ms) => window.push(ms),
  });
  const sampler = setInterval(() => {
    const recent = window;
    window = [];
    latest.acks = recent.length * 2;
    latest.p99 = Number(percentile(recent, 0.99).toFixed(1));
  }, 500);
  stats = await run;
  clearInterval(ticker);
  clearInterval(sampler);
  bar.update(done, {
    acks: Math.round(stats.acks / stats.seconds),
    p99: stats.latency.percentile(0.99).toFixed(1),
  });
  bar.stop();

  const query = async <T>(sql: string): Promise<T[]> => {
    const response = await fetch(`http://127.0.0.1:${engine.apiPort}/api/v1/sql`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${config.demoApiKey}` },
      body: sql,
    });
    const text = await response.text();
    return text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as T);
  };
  // Wait until the pipeline has stored every session's CDR.
  const deadline = Date.now() + 60_000;
  for (;;) {
    const [row] = await query<{ n: string }>('SELECT toString(count()) AS n FROM cdrs');
    if (Number(row?.n) >= total || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const [summary] = await query<{ sessions: string; kwh: string; revenue: string; vat: string }>(
    `SELECT toString(count()) AS sessions, toString(round(sum(energy_wh) / 1000, 1)) AS kwh,
            toString(sum(total_incl_vat)) AS revenue, toString(sum(total_vat)) AS vat FROM cdrs`,
  );
  const rejected = await query<{ reason: string; n: string }>(
    'SELECT reject_reason AS reason, toString(count()) AS n FROM meter_readings WHERE NOT valid GROUP BY reason ORDER BY reason',
  );
  const [readings] = await query<{ n: string }>(
    'SELECT toString(count()) AS n FROM meter_readings',
  );
  // What the simulator sent, to set against what the store holds.
  const sent = Object.values(stats.perCharger ?? {});
  const sentWh = sent.reduce(
    (n, c) => n + c.stops.reduce((m, s) => m + s.meterStopWh - s.meterStartWh, 0),
    0,
  );
  const sentReadings = sent.reduce((n, c) => n + c.readingsAcked, 0);
  const [stored] = await query<{ wh: string; readings: string }>(
    `SELECT toString(sum(energy_wh)) AS wh,
            toString((SELECT count() FROM (SELECT DISTINCT charger_id, connector_id, session_id, ts FROM meter_readings WHERE context = 'Sample.Periodic'))) AS readings
       FROM cdrs`,
  );
  const chart = join(dataDir, 'demo-report.svg');
  writeFileSync(chart, svgChart(stats));
  const lines = [
    '',
    'chargestream demo report',
    `  sessions rated        ${summary?.sessions ?? 0} (of ${total})`,
    `  energy                ${summary?.kwh ?? 0} kWh`,
    `  revenue               ${summary?.revenue ?? 0} EUR incl. ${summary?.vat ?? 0} EUR VAT`,
    `  readings stored       ${readings?.n ?? 0}`,
    `  energy sent / stored  ${(sentWh / 1000).toFixed(3)} kWh / ${(Number(stored?.wh ?? 0) / 1000).toFixed(3)} kWh`,
    `  meter values acked / stored  ${sentReadings} / ${stored?.readings ?? 0}`,
    `  readings rejected     ${rejected.length === 0 ? 'none' : rejected.map((r) => `${r.reason} ${r.n}`).join(', ')}`,
    `  OCPP calls            ${stats.acks} acknowledged in ${stats.seconds.toFixed(1)} s (${Math.round(stats.acks / stats.seconds)}/s)`,
    `  ack latency           p50 ${stats.latency.percentile(0.5).toFixed(1)} ms, p99 ${stats.latency.percentile(0.99).toFixed(1)} ms`,
    `  errors                ${Object.keys(stats.errors).length === 0 ? 'none' : JSON.stringify(stats.errors)}`,
    `  chart                 ${chart}`,
    '',
  ];
  process.stdout.write(lines.join('\n'));
  await engine.stop();
}

function percentile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

/** Acknowledged calls per second (bars) and p99 latency (line) over the run, as SVG. */
export function svgChart(stats: SimStats): string {
  const width = 720;
  const height = 300;
  const pad = 40;
  const points = stats.timeline;
  const maxAcks = Math.max(1, ...points.map((p) => p.acks));
  const maxP99 = Math.max(1, ...points.map((p) => p.p99Ms));
  const step = (width - 2 * pad) / Math.max(1, points.length);
  const bars = points
    .map((p, i) => {
      const h = ((height - 2 * pad) * p.acks) / maxAcks;
      return `<rect x="${(pad + i * step).toFixed(1)}" y="${(height - pad - h).toFixed(1)}" width="${Math.max(1, step - 2).toFixed(1)}" height="${h.toFixed(1)}" fill="#4c78a8"/>`;
    })
    .join('');
  const line = points
    .map(
      (p, i) =>
        `${(pad + i * step + step / 2).toFixed(1)},${(height - pad - ((height - 2 * pad) * p.p99Ms) / maxP99).toFixed(1)}`,
    )
    .join(' ');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${pad}" y="20">acknowledged calls per second (bars, max ${maxAcks}) and p99 ack latency (line, max ${maxP99.toFixed(1)} ms)</text>`,
    bars,
    `<polyline points="${line}" fill="none" stroke="#e45756" stroke-width="2"/>`,
    `<line x1="${pad}" y1="${height - pad}" x2="${width - pad}" y2="${height - pad}" stroke="black"/>`,
    `<text x="${pad}" y="${height - 15}">0 s</text><text x="${width - pad - 30}" y="${height - 15}">${(points.at(-1)?.second ?? 0) + 0.25} s</text>`,
    '</svg>',
  ].join('\n');
}
