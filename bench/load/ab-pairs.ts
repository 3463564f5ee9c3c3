/**
 * Two builds compared by the same gateway-bench run, in pairs whose order alternates (A B,
 * B A, A B, …). On this machine the second run of a pair costs the engine more CPU whichever
 * build it is (about 5 % at 9,000 frames/s, bench/RESULTS.md), so pairs in one order favour
 * the build that runs first.
 *
 *   node dist/bench/load/ab-pairs.js --a DIR --b DIR [--pairs 4] -- <gateway-bench options>
 *
 * DIR is a checkout of each build with its `dist/` built. Each run writes its JSON next to the
 * others in a temporary folder; per run and as means of each build it prints, for every engine
 * run: frames/s acknowledged and in ClickHouse, the engine's CPU a stored frame, its cores,
 * and the ack p99.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

interface Run {
  readonly server: string;
  readonly framesPerSecond: number;
  readonly serverCpuCores: number;
  readonly ackLatencyMs: { readonly p99: number };
  readonly store?: { readonly framesPerSecond: number; readonly engineCpuUsPerFrame: number };
}

interface Figures {
  acked: number;
  stored: number;
  usPerFrame: number;
  cores: number;
  ackP99: number;
}

const split = process.argv.indexOf('--');
const { values } = parseArgs({
  args: process.argv.slice(2, split === -1 ? undefined : split),
  options: {
    a: { type: 'string' },
    b: { type: 'string' },
    pairs: { type: 'string', default: '4' },
  },
});
const benchArgs = split === -1 ? [] : process.argv.slice(split + 1);
const pairs = Number(values.pairs);
if (values.a === undefined || values.b === undefined || !(Number.isInteger(pairs) && pairs > 0)) {
  process.stderr.write('--a DIR and --b DIR are required; --pairs: an integer ≥ 1\n');
  process.exit(2);
}
const builds = { A: values.a, B: values.b };
const out = mkdtempSync(join(tmpdir(), 'ab-pairs-'));
const figures: Record<'A' | 'B', Figures[]> = { A: [], B: [] };

for (let pair = 1; pair <= pairs; pair++) {
  const order: Array<'A' | 'B'> = pair % 2 === 1 ? ['A', 'B'] : ['B', 'A'];
  for (const build of order) {
    const file = join(out, `${build}-${pair}.json`);
    const run = spawnSync(
      process.execPath,
      [
        join(builds[build], 'dist', 'bench', 'load', 'gateway-bench.js'),
        ...benchArgs,
        '--out',
        file,
      ],
      { cwd: builds[build], stdio: ['ignore', 'ignore', 'inherit'] },
    );
    if (run.status !== 0) {
      process.stderr.write(`${build} pair ${pair}: gateway-bench exited with ${run.status}\n`);
      process.exit(1);
    }
    const { runs } = JSON.parse(readFileSync(file, 'utf8')) as { runs: Run[] };
    for (const r of runs.filter((r) => r.server.startsWith('engine'))) {
      const f: Figures = {
        acked: r.framesPerSecond,
        stored: r.store?.framesPerSecond ?? Number.NaN,
        usPerFrame: r.store?.engineCpuUsPerFrame ?? Number.NaN,
        cores: r.serverCpuCores,
        ackP99: r.ackLatencyMs.p99,
      };
      figures[build].push(f);
      console.log(`${build} pair ${pair} ${r.server}: ${describe(f)}`);
    }
  }
}
for (const build of ['A', 'B'] as const) {
  const runs = figures[build];
  const mean = (pick: (f: Figures) => number) =>
    runs.reduce((s, f) => s + pick(f), 0) / runs.length;
  console.log(
    `${build} mean of ${runs.length}: ${describe({
      acked: mean((f) => f.acked),
      stored: mean((f) => f.stored),
      usPerFrame: mean((f) => f.usPerFrame),
      cores: mean((f) => f.cores),
      ackP99: mean((f) => f.ackP99),
    })}`,
  );
}
console.log(`runs' JSON in ${out}`);

function describe(f: Figures): string {
  return [
    `acked ${Math.round(f.acked)}/s`,
    `stored ${Math.round(f.stored)}/s`,
    `engine ${f.usPerFrame.toFixed(1)} µs a stored frame`,
    `${f.cores.toFixed(2)} cores`,
    `ack p99 ${f.ackP99.toFixed(1)} ms`,
  ].join(', ');
}
