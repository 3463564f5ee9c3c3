/**
 * Gateway benchmark (issue 10): how far the engine's gateway is from the machine's ceiling.
 *
 * Throughput mode (default): in one run, with the same load generator, (a) a bare
 * uWebSockets.js server that only parses and answers each frame (bare-uws-server.ts), then
 * (b) the engine with --fsync false and (c) with --fsync true. C chargers over P generator
 * processes, closed loop as in ack-bench.ts: each charger sends StartTransaction, then one
 * MeterValues (~420 bytes) at a time and waits for its CALLRESULT. After a warm-up, frames
 * answered within a window of S seconds are counted; the figure is frames/s of each server
 * and the ratio engine / bare.
 *
 *   node dist/bench/load/gateway-bench.js [--chargers 1000] [--seconds 10] [--procs 2]
 *        [--warmup 2] [--cpu-prof DIR] [--out FILE]
 *
 * Connections mode: N idle OCPP connections (each sends one BootNotification and then
 * nothing), opened by generator processes of at most 5,000 sockets each, first against the
 * bare server (the floor), then against the engine: time to open them all, the server's RSS
 * before and after, RSS per connection.
 *
 *   node dist/bench/load/gateway-bench.js --connections 10000 [--out FILE]
 *
 * Every process runs with the soft open-files limit raised to 20,000 (a process holds at most
 * ~19 k sockets here). Servers and generators share the machine's cores, so the table also
 * shows the CPU each side used (in cores: `srv CPU` the whole server process, `main thr` its
 * event loop, `gen CPU` the generators, `all CPU` the machine including other work): a
 * generator-bound run shows itself, and `frames/CPU-s` (frames per server CPU-second) with
 * its ratio `per CPU-s` stays comparable when other work competes for the cores.
 * Only CALLRESULTs count as frames; CALLERRORs (e.g. the gateway's per-connection rate
 * limit, which applies to calls answered from memory) are counted under `errors`.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { stringify } from 'yaml';
import { meterValues, T0 } from './frames.js';

const here = fileURLToPath(import.meta.url);
const root = join(dirname(here), '..', '..', '..');
const NOFILE = 20_000;
const MAX_SOCKETS_PER_GENERATOR = 5_000;
/** Upgrades in flight per generator while opening (stays well under the listen backlog). */
const OPEN_CONCURRENCY = 200;

// ---------------------------------------------------------------------------------------
// Parent ↔ generator messages

interface GeneratorTask {
  readonly url: string;
  readonly first: number;
  readonly count: number;
  readonly mode: 'load' | 'idle';
  readonly warmupS: number;
  readonly seconds: number;
}

type ToGenerator = { readonly cmd: 'connect' } | { readonly cmd: 'go' } | { readonly cmd: 'stop' };

interface LoadResult {
  /** MeterValues CALLRESULTs that arrived inside the measured window. */
  readonly frames: number;
  /** CALLERRORs (any time) and sockets lost during the run. */
  readonly callErrors: number;
  readonly lost: number;
  readonly errorCodes: Record<string, number>;
  /** Latency of each counted frame, µs. */
  readonly latenciesUs: number[];
  /** CPU this generator used from `go` to its result (process.cpuUsage), µs. */
  readonly cpuUs: number;
}

type FromGenerator =
  | { readonly kind: 'loaded'; readonly nofile: number }
  | {
      readonly kind: 'connected';
      readonly openMs: number;
      readonly booted: number;
      readonly failed: number;
      readonly firstError: string | null;
    }
  | ({ readonly kind: 'result' } & LoadResult);

// ---------------------------------------------------------------------------------------
// Process bookkeeping: everything started here is stopped on the way out, also on failure.

const live = new Set<ChildProcess>();
const tempDirs: string[] = [];

/** Last resort (also from the 'exit' handler, so synchronous): kill what is left, remove data. */
function cleanUp(): void {
  for (const child of live) child.kill('SIGKILL');
  live.clear();
  for (const dir of tempDirs.splice(0)) {
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch (error) {
      process.stderr.write(`gateway-bench: could not remove ${dir}: ${String(error)}\n`);
    }
  }
}

/** Kills every child still running, waits for them to be gone, then cleans up. */
async function killAll(): Promise<void> {
  const running = [...live].filter((c) => c.exitCode === null && c.signalCode === null);
  await Promise.all(running.map((c) => stopChild(c, 0)));
  cleanUp();
}

/** Starts `node ...args` through bash with the soft open-files limit raised (exec: same pid). */
function spawnNode(
  args: readonly string[],
  stdio: 'pipe-out' | 'ipc',
  nodeFlags: readonly string[] = [],
): ChildProcess {
  const child = spawn(
    'bash',
    [
      '-c',
      `ulimit -Sn ${NOFILE} 2>/dev/null || ulimit -Sn "$(ulimit -Hn)"; exec "$@"`,
      'bash',
      process.execPath,
      ...nodeFlags,
      ...args,
    ],
    {
      stdio:
        stdio === 'ipc' ? ['ignore', 'inherit', 'inherit', 'ipc'] : ['ignore', 'pipe', 'inherit'],
    },
  );
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
async function stopChild(child: ChildProcess, graceMs = 20_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------------------
// /proc readings

let clockTicksPerSecond = 0;

function clockTicks(): number {
  clockTicksPerSecond ||= Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  return clockTicksPerSecond;
}

function procStatusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** utime + stime of the whole process (all threads), seconds. */
function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields after the command name start at field 3 (state): utime is 14, stime 15.
    return (Number(fields[11]) + Number(fields[12])) / clockTicks();
  } catch {
    return 0;
  }
}

/** Machine-wide CPU seconds from /proc/stat: busy (not idle, not iowait) and steal. */
function machineCpuSeconds(): { busy: number; steal: number } {
  const cpu = readFileSync('/proc/stat', 'utf8')
    .split('\n', 1)[0]!
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = cpu;
  return {
    busy: (user + nice + system + irq + softirq) / clockTicks(),
    steal: steal / clockTicks(),
  };
}

/** CPU seconds per thread of a process, keyed `main` (tid = pid) or by thread name. */
function threadCpuSeconds(pid: number): Map<string, number> {
  const byName = new Map<string, number>();
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return byName;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name =
        Number(tid) === pid ? 'main' : stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cpu = (Number(fields[11]) + Number(fields[12])) / clockTicks();
      byName.set(name, (byName.get(name) ?? 0) + cpu);
    } catch {
      /* thread gone */
    }
  }
  return byName;
}

/** Median of five VmRSS readings half a second apart (one GC does not decide the figure). */
async function steadyRssKb(pid: number): Promise<number> {
  const readings: number[] = [];
  for (let i = 0; i < 5; i++) {
    if (i > 0) await sleep(500);
    readings.push(procStatusKb(pid, 'VmRSS'));
  }
  return readings.sort((a, b) => a - b)[2]!;
}

function openFilesLimit(pid: number | 'self'): number {
  const limits = readFileSync(`/proc/${pid}/limits`, 'utf8');
  return Number(/Max open files\s+(\d+)/.exec(limits)?.[1] ?? 0);
}

// ---------------------------------------------------------------------------------------
// Servers under test

interface Server {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** ws://127.0.0.1:PORT/ocpp */
  readonly url: string;
  readonly apiUrl: string | null;
}

function waitForLine(child: ChildProcess, pattern: RegExp, what: string): Promise<RegExpExecArray> {
  return withTimeout(
    new Promise<RegExpExecArray>((resolve, reject) => {
      let out = '';
      let matched = false;
      // Keep reading stdout for the whole life of the child: a full pipe would block it.
      child.stdout!.on('data', (d: Buffer) => {
        if (matched) return;
        out = (out + d.toString()).slice(-64 * 1024);
        const m = pattern.exec(out);
        if (m) {
          matched = true;
          resolve(m);
        }
      });
      child.once('exit', (code, signal) =>
        reject(new Error(`${what} exited before it was ready (${code ?? signal}): ${out}`)),
      );
    }),
    120_000,
    what,
  );
}

function cpuProfFlags(cpuProfDir: string | null, name: string): string[] {
  if (cpuProfDir === null) return [];
  const dir = join(cpuProfDir, name);
  mkdirSync(dir, { recursive: true });
  return ['--cpu-prof', '--cpu-prof-dir', dir];
}

async function startBare(cpuProfDir: string | null = null): Promise<Server> {
  const child = spawnNode(
    [join(root, 'dist', 'bench', 'load', 'bare-uws-server.js'), '0'],
    'pipe-out',
    cpuProfFlags(cpuProfDir, 'bare'),
  );
  const m = await waitForLine(child, /listening (\d+)/, 'bare server');
  return {
    name: 'bare uWS',
    child,
    pid: child.pid!,
    url: `ws://127.0.0.1:${m[1]}/ocpp`,
    apiUrl: null,
  };
}

function writeNetwork(dir: string, chargers: number): string {
  const file = join(dir, 'network.yaml');
  writeFileSync(
    file,
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
  return file;
}

async function startEngine(
  chargers: number,
  fsync: boolean,
  cpuProfDir: string | null,
): Promise<Server> {
  const dir = mkdtempSync(join(tmpdir(), 'chargestream-gateway-bench-'));
  tempDirs.push(dir);
  const config = writeNetwork(dir, chargers);
  const nodeFlags = cpuProfFlags(cpuProfDir, `engine-fsync-${fsync}`);
  const child = spawnNode(
    [
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
      String(fsync),
    ],
    'pipe-out',
    nodeFlags,
  );
  const m = await waitForLine(
    child,
    /OCPP (ws:\/\/[\d.]+:\d+)\/ocpp\S*\s+API (http:\/\/[\d.]+:\d+)/,
    'engine',
  );
  return {
    name: `engine fsync ${fsync ? 'on' : 'off'}`,
    child,
    pid: child.pid!,
    url: `${m[1]}/ocpp`,
    apiUrl: m[2]!,
  };
}

function checkNofile(server: Server, needed: number): void {
  const limit = openFilesLimit(server.pid);
  if (limit < needed) {
    throw new Error(`${server.name}: open-files limit ${limit} < ${needed} needed`);
  }
}

/** A gauge from the engine's /metrics, or null when it cannot be read. */
async function engineMetric(server: Server, name: string): Promise<number | null> {
  if (server.apiUrl === null) return null;
  try {
    // The sum over the metric's series (connections come by protocol and state).
    const text = await (await fetch(`${server.apiUrl}/metrics`)).text();
    const series = [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))];
    return series.length === 0 ? null : series.reduce((sum, m) => sum + Number(m[1]), 0);
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------
// Generators, driven from the parent

interface Generator {
  readonly child: ChildProcess;
  readonly task: GeneratorTask;
  next(kind: FromGenerator['kind'], timeoutMs: number): Promise<FromGenerator>;
  send(message: ToGenerator): void;
}

function startGenerator(task: GeneratorTask): Generator {
  const child = spawnNode([here, '--generator', JSON.stringify(task)], 'ipc');
  const inbox: FromGenerator[] = [];
  const waiters: ((m: FromGenerator) => void)[] = [];
  let failure: Error | null = null;
  const failWaiters: ((e: Error) => void)[] = [];
  child.on('message', (m) => {
    const waiter = waiters.shift();
    failWaiters.shift();
    if (waiter) waiter(m as FromGenerator);
    else inbox.push(m as FromGenerator);
  });
  child.once('exit', (code, signal) => {
    failure = new Error(`load generator exited with ${code ?? signal}`);
    for (const reject of failWaiters.splice(0)) reject(failure);
    waiters.length = 0;
  });
  return {
    child,
    task,
    send: (message) => child.send(message),
    next: (kind, timeoutMs) => {
      const queued = inbox.shift();
      const got =
        queued !== undefined
          ? Promise.resolve(queued)
          : failure !== null
            ? Promise.reject(failure)
            : new Promise<FromGenerator>((resolve, reject) => {
                waiters.push(resolve);
                failWaiters.push(reject);
              });
      return withTimeout(got, timeoutMs, `load generator (${kind})`).then((m) => {
        if (m.kind !== kind) throw new Error(`load generator: expected ${kind}, got ${m.kind}`);
        return m;
      });
    },
  };
}

function split(total: number, parts: number): { first: number; count: number }[] {
  const per = Math.ceil(total / parts);
  return Array.from({ length: parts }, (_, p) => ({
    first: p * per,
    count: Math.max(0, Math.min(per, total - p * per)),
  })).filter((s) => s.count > 0);
}

async function startGenerators(
  url: string,
  chargers: number,
  procs: number,
  mode: 'load' | 'idle',
  warmupS: number,
  seconds: number,
): Promise<Generator[]> {
  const generators = split(chargers, procs).map(({ first, count }) =>
    startGenerator({ url, first, count, mode, warmupS, seconds }),
  );
  const loaded = await Promise.all(generators.map((g) => g.next('loaded', 30_000)));
  loaded.forEach((m, i) => {
    const needed = generators[i]!.task.count + 100;
    if (m.kind === 'loaded' && m.nofile < needed)
      throw new Error(`load generator: open-files limit ${m.nofile} < ${needed} needed`);
  });
  return generators;
}

async function connectAll(
  generators: readonly Generator[],
): Promise<{ openMs: number; booted: number; failed: number; firstError: string | null }> {
  const started = performance.now();
  for (const g of generators) g.send({ cmd: 'connect' });
  const replies = await Promise.all(generators.map((g) => g.next('connected', 300_000)));
  const openMs = performance.now() - started;
  let booted = 0;
  let failed = 0;
  let firstError: string | null = null;
  for (const r of replies) {
    if (r.kind !== 'connected') continue;
    booted += r.booted;
    failed += r.failed;
    firstError ??= r.firstError;
  }
  return { openMs, booted, failed, firstError };
}

// ---------------------------------------------------------------------------------------
// Throughput mode

interface RunSummary {
  server: string;
  frames: number;
  framesPerSecond: number;
  ackLatencyMs: { p50: number; p90: number; p99: number; max: number };
  callErrors: number;
  errorCodes: Record<string, number>;
  lostSockets: number;
  serverPeakRssMiB: number;
  serverIdleRssMiB: number;
  /** CPU the server used during warm-up + window, in cores (1 = one core busy). */
  serverCpuCores: number;
  /** The same per thread (main = the event loop that runs the gateway), in cores. */
  serverThreadCpuCores: Record<string, number>;
  generatorCpuCores: number;
  /** All CPUs of the machine over the same time: busy (includes other work and softirq), steal. */
  machineBusyCores: number;
  machineStealCores: number;
  /** 1-minute load average at the end of the run (other work on the machine shows here). */
  loadAverage: number;
  framesPerServerCpuSecond: number;
  /** frames/s of this server ÷ frames/s of the bare server (the issue's figure). */
  ratioToBare: number | null;
  /** The same for frames per server CPU-second: steadier when other work shares the cores. */
  cpuRatioToBare: number | null;
}

async function measure(
  server: Server,
  chargers: number,
  procs: number,
  warmupS: number,
  seconds: number,
): Promise<RunSummary> {
  checkNofile(server, chargers + 100);
  const idleRssKb = procStatusKb(server.pid, 'VmRSS');
  const generators = await startGenerators(server.url, chargers, procs, 'load', warmupS, seconds);
  const opened = await connectAll(generators);
  if (opened.failed > 0) {
    throw new Error(
      `${server.name}: ${opened.failed} of ${chargers} connections failed (${opened.firstError})`,
    );
  }
  const cpu0 = cpuSeconds(server.pid);
  const threads0 = threadCpuSeconds(server.pid);
  const machine0 = machineCpuSeconds();
  const t0 = performance.now();
  for (const g of generators) g.send({ cmd: 'go' });
  const results = (await Promise.all(
    generators.map((g) => g.next('result', (warmupS + seconds + 120) * 1000)),
  )) as (FromGenerator & { kind: 'result' })[];
  const wall = (performance.now() - t0) / 1000;
  const serverCpu = cpuSeconds(server.pid) - cpu0;
  const machine1 = machineCpuSeconds();
  const threads: Record<string, number> = {};
  for (const [name, cpu] of threadCpuSeconds(server.pid)) {
    const used = round2((cpu - (threads0.get(name) ?? 0)) / wall);
    if (used >= 0.01) threads[name] = used;
  }
  const genCpu = results.reduce((s, r) => s + r.cpuUs, 0) / 1e6;
  const peakRssKb = procStatusKb(server.pid, 'VmHWM');
  await Promise.all(generators.map((g) => stopChild(g.child, 5_000)));

  const latencies = Float64Array.from(results.flatMap((r) => r.latenciesUs)).sort();
  const pct = (q: number) =>
    round2(
      (latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0) / 1000,
    );
  const frames = results.reduce((n, r) => n + r.frames, 0);
  const errorCodes: Record<string, number> = {};
  for (const r of results)
    for (const [code, n] of Object.entries(r.errorCodes))
      errorCodes[code] = (errorCodes[code] ?? 0) + n;
  return {
    server: server.name,
    frames,
    framesPerSecond: Math.round(frames / seconds),
    ackLatencyMs: { p50: pct(0.5), p90: pct(0.9), p99: pct(0.99), max: pct(1) },
    callErrors: results.reduce((n, r) => n + r.callErrors, 0),
    errorCodes,
    lostSockets: results.reduce((n, r) => n + r.lost, 0),
    serverPeakRssMiB: Math.round(peakRssKb / 1024),
    serverIdleRssMiB: Math.round(idleRssKb / 1024),
    serverCpuCores: round2(serverCpu / wall),
    serverThreadCpuCores: threads,
    loadAverage: round2(loadavg()[0]!),
    generatorCpuCores: round2(genCpu / wall),
    machineBusyCores: round2((machine1.busy - machine0.busy) / wall),
    machineStealCores: round2((machine1.steal - machine0.steal) / wall),
    // Frames counted in the window over CPU of warm-up + window: a floor, comparable across rows.
    framesPerServerCpuSecond: Math.round((frames * (warmupS + seconds)) / seconds / serverCpu),
    ratioToBare: null,
    cpuRatioToBare: null,
  };
}

async function throughputMode(o: {
  chargers: number;
  seconds: number;
  procs: number;
  warmupS: number;
  cpuProfDir: string | null;
  out: string;
}): Promise<void> {
  const runs: RunSummary[] = [];
  const targets: { name: string; start: () => Promise<Server> }[] = [
    { name: 'bare', start: () => startBare(o.cpuProfDir) },
    { name: 'engine fsync off', start: () => startEngine(o.chargers, false, o.cpuProfDir) },
    { name: 'engine fsync on', start: () => startEngine(o.chargers, true, o.cpuProfDir) },
  ];
  for (const target of targets) {
    process.stderr.write(`gateway-bench: ${target.name} …\n`);
    const server = await target.start();
    try {
      runs.push(await measure(server, o.chargers, o.procs, o.warmupS, o.seconds));
    } finally {
      await stopChild(server.child);
    }
  }
  const bare = runs[0]!;
  for (const r of runs.slice(1)) {
    r.ratioToBare = round2(r.framesPerSecond / bare.framesPerSecond);
    r.cpuRatioToBare = round2(r.framesPerServerCpuSecond / bare.framesPerServerCpuSecond);
  }

  const summary = {
    mode: 'throughput',
    date: new Date().toISOString(),
    node: process.version,
    cores: Number(execFileSync('nproc').toString().trim()),
    chargers: o.chargers,
    seconds: o.seconds,
    warmupSeconds: o.warmupS,
    generatorProcs: o.procs,
    runs,
  };
  writeJson(o.out, summary);
  console.log(
    `\n${o.chargers} chargers, ${o.procs} generator procs, ${o.warmupS} s warm-up + ${o.seconds} s window\n`,
  );
  printTable(
    [
      'server',
      'frames/s',
      'p50 ms',
      'p90 ms',
      'p99 ms',
      'max ms',
      'peak RSS',
      'srv CPU',
      'main thr',
      'gen CPU',
      'all CPU',
      'frames/CPU-s',
      'errors',
      'engine/bare',
      'per CPU-s',
    ],
    runs.map((r) => [
      r.server,
      fmt(r.framesPerSecond),
      r.ackLatencyMs.p50.toFixed(2),
      r.ackLatencyMs.p90.toFixed(2),
      r.ackLatencyMs.p99.toFixed(2),
      r.ackLatencyMs.max.toFixed(2),
      `${fmt(r.serverPeakRssMiB)} MiB`,
      r.serverCpuCores.toFixed(2),
      (r.serverThreadCpuCores['main'] ?? 0).toFixed(2),
      r.generatorCpuCores.toFixed(2),
      r.machineBusyCores.toFixed(2),
      fmt(r.framesPerServerCpuSecond),
      r.callErrors + r.lostSockets === 0
        ? '0'
        : `${r.callErrors} ${JSON.stringify(r.errorCodes)}${r.lostSockets ? ` lost ${r.lostSockets}` : ''}`,
      r.ratioToBare === null ? '—' : r.ratioToBare.toFixed(2),
      r.cpuRatioToBare === null ? '—' : r.cpuRatioToBare.toFixed(2),
    ]),
  );
  console.log(`\nwritten to ${o.out}`);
}

// ---------------------------------------------------------------------------------------
// Connections mode

interface ConnectionsSummary {
  server: string;
  connections: number;
  booted: number;
  failed: number;
  openSeconds: number;
  connectionsPerSecond: number;
  rssBeforeMiB: number;
  rssAfterMiB: number;
  rssPerConnectionKiB: number;
  /** JS heap used (the engine's own gauge, garbage included) per connection. */
  heapUsedPerConnectionKiB: number | null;
  serverReportedConnections: number | null;
}

async function holdConnections(
  server: Server,
  n: number,
  procs: number,
): Promise<ConnectionsSummary> {
  checkNofile(server, n + 200);
  await sleep(3_000);
  const before = await steadyRssKb(server.pid);
  const heapBefore = await engineMetric(server, 'chargestream_nodejs_heap_size_used_bytes');
  const generators = await startGenerators(server.url, n, procs, 'idle', 0, 0);
  try {
    const opened = await connectAll(generators);
    if (opened.failed > 0)
      process.stderr.write(`${server.name}: ${opened.failed} failed (${opened.firstError})\n`);
    // Let allocations settle (and a GC or two run) before reading the resident set.
    await sleep(3_000);
    const after = await steadyRssKb(server.pid);
    const heapAfter = await engineMetric(server, 'chargestream_nodejs_heap_size_used_bytes');
    const reported = await engineMetric(server, 'chargestream_gateway_connections');
    return {
      server: server.name,
      connections: n,
      booted: opened.booted,
      failed: opened.failed,
      openSeconds: round2(opened.openMs / 1000),
      connectionsPerSecond: Math.round(opened.booted / (opened.openMs / 1000)),
      rssBeforeMiB: round2(before / 1024),
      rssAfterMiB: round2(after / 1024),
      rssPerConnectionKiB: round2((after - before) / Math.max(1, opened.booted)),
      heapUsedPerConnectionKiB:
        heapBefore === null || heapAfter === null
          ? null
          : round2((heapAfter - heapBefore) / 1024 / Math.max(1, opened.booted)),
      serverReportedConnections: reported,
    };
  } finally {
    for (const g of generators) if (g.child.connected) g.send({ cmd: 'stop' });
    await Promise.all(generators.map((g) => stopChild(g.child, 10_000)));
  }
}

async function connectionsMode(o: {
  connections: number;
  procs: number;
  out: string;
}): Promise<void> {
  const procs = Math.max(o.procs, Math.ceil(o.connections / MAX_SOCKETS_PER_GENERATOR));
  const runs: ConnectionsSummary[] = [];
  const targets: { name: string; start: () => Promise<Server> }[] = [
    { name: 'bare', start: () => startBare() },
    { name: 'engine', start: () => startEngine(o.connections, true, null) },
  ];
  for (const target of targets) {
    process.stderr.write(`gateway-bench: ${o.connections} idle connections to ${target.name} …\n`);
    const server = await target.start();
    try {
      runs.push(await holdConnections(server, o.connections, procs));
    } finally {
      await stopChild(server.child);
    }
  }
  writeJson(o.out, {
    mode: 'connections',
    date: new Date().toISOString(),
    node: process.version,
    generatorProcs: procs,
    runs,
  });
  console.log(
    `\n${o.connections} idle OCPP 1.6 connections (one BootNotification each), ${procs} generator procs\n`,
  );
  printTable(
    [
      'server',
      'booted',
      'failed',
      'open all',
      'conn/s',
      'RSS before',
      'RSS after',
      'per conn',
      'heap/conn',
      'server says',
    ],
    runs.map((r) => [
      r.server,
      fmt(r.booted),
      fmt(r.failed),
      `${r.openSeconds.toFixed(2)} s`,
      fmt(r.connectionsPerSecond),
      `${r.rssBeforeMiB.toFixed(1)} MiB`,
      `${r.rssAfterMiB.toFixed(1)} MiB`,
      `${r.rssPerConnectionKiB.toFixed(1)} KiB`,
      r.heapUsedPerConnectionKiB === null ? '—' : `${r.heapUsedPerConnectionKiB.toFixed(1)} KiB`,
      r.serverReportedConnections === null ? '—' : fmt(r.serverReportedConnections),
    ]),
  );
  console.log(`\nwritten to ${o.out}`);
}

// ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      chargers: { type: 'string', default: '1000' },
      seconds: { type: 'string', default: '10' },
      procs: { type: 'string', default: '2' },
      warmup: { type: 'string', default: '2' },
      connections: { type: 'string' },
      'cpu-prof': { type: 'string' },
      out: { type: 'string' },
    },
  });
  const int = (name: string, text: string, min: number): number => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min) {
      process.stderr.write(`--${name}: must be an integer ≥ ${min}, got ${text}\n`);
      process.exit(2);
    }
    return n;
  };
  const chargers = int('chargers', values.chargers, 1);
  const seconds = int('seconds', values.seconds, 1);
  const procs = int('procs', values.procs, 1);
  const warmupS = int('warmup', values.warmup, 0);
  if (Math.ceil(chargers / procs) > MAX_SOCKETS_PER_GENERATOR) {
    process.stderr.write(
      `--chargers / --procs: at most ${MAX_SOCKETS_PER_GENERATOR} per generator\n`,
    );
    process.exit(2);
  }

  let aborting = false;
  const bail = (signal: NodeJS.Signals) => {
    aborting = true;
    process.stderr.write(`gateway-bench: ${signal}, stopping everything\n`);
    void killAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', bail);
  process.once('SIGTERM', bail);
  process.once('exit', cleanUp);

  try {
    if (values.connections !== undefined) {
      await connectionsMode({
        connections: int('connections', values.connections, 1),
        procs,
        out: values.out ?? join(root, 'bench', 'out', 'gateway-bench-connections.json'),
      });
    } else {
      await throughputMode({
        chargers,
        seconds,
        procs,
        warmupS,
        cpuProfDir: values['cpu-prof'] ?? null,
        out: values.out ?? join(root, 'bench', 'out', 'gateway-bench.json'),
      });
    }
  } catch (error) {
    if (aborting) return; // bail() is stopping everything and exits
    process.stderr.write(
      `gateway-bench failed: ${error instanceof Error ? error.stack : String(error)}\n`,
    );
    await killAll();
    process.exit(1);
  }
  cleanUp();
  process.exit(0);
}

// ---------------------------------------------------------------------------------------
// The load generator (its own process)

/** One simulated charger: a socket with at most one outstanding CALL, as OCPP requires. */
class Charger {
  readonly ws: WebSocket;
  #next = 0;
  #pending: { id: string; resolve: (frame: unknown[] | null) => void } | null = null;
  closed = false;

  constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data: Buffer) => {
      const frame = JSON.parse(data.toString()) as unknown[];
      const pending = this.#pending;
      if (pending === null || frame[1] !== pending.id) return;
      this.#pending = null;
      pending.resolve(frame);
    });
    ws.on('close', () => {
      this.closed = true;
      const pending = this.#pending;
      this.#pending = null;
      pending?.resolve(null);
    });
    ws.on('error', () => undefined);
  }

  /** The answer frame, or null when the socket closed first. */
  call(action: string, payload: object): Promise<unknown[] | null> {
    if (this.closed) return Promise.resolve(null);
    const id = String(++this.#next);
    return new Promise((resolve) => {
      this.#pending = { id, resolve };
      this.ws.send(JSON.stringify([2, id, action, payload]));
    });
  }
}

function openSocket(url: string): Promise<WebSocket> {
  return new Promise<WebSocket>((resolve, reject) => {
    const ws = new WebSocket(url, ['ocpp1.6']);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) =>
      reject(new Error(`upgrade refused: ${res.statusCode}`)),
    );
  });
}

function generator(task: GeneratorTask): void {
  const send = (m: FromGenerator) => process.send!(m);
  const chargers: (Charger | null)[] = [];
  process.on('message', (raw) => {
    const message = raw as ToGenerator;
    if (message.cmd === 'connect') {
      connect().then(send, (error: unknown) => {
        process.stderr.write(`generator: ${String(error)}\n`);
        process.exit(1);
      });
    } else if (message.cmd === 'go') {
      run().then(
        (result) => process.send!(result, () => process.exit(0)),
        (error: unknown) => {
          process.stderr.write(`generator: ${String(error)}\n`);
          process.exit(1);
        },
      );
    } else {
      for (const c of chargers) c?.ws.terminate();
      process.exit(0);
    }
  });
  send({ kind: 'loaded', nofile: openFilesLimit('self') });

  async function connect(): Promise<FromGenerator> {
    const started = performance.now();
    let booted = 0;
    let failed = 0;
    let firstError: string | null = null;
    let next = 0;
    const one = async (i: number): Promise<void> => {
      try {
        const charger = new Charger(await openSocket(`${task.url}/B${task.first + i}`));
        chargers[i] = charger;
        if (task.mode === 'idle') {
          const reply = await charger.call('BootNotification', {
            chargePointVendor: 'Bench',
            chargePointModel: 'Idle',
          });
          if (reply?.[0] !== 3)
            throw new Error(`BootNotification answered ${JSON.stringify(reply)}`);
        }
        booted += 1;
      } catch (error) {
        failed += 1;
        firstError ??= error instanceof Error ? error.message : String(error);
        chargers[i] = null;
      }
    };
    await Promise.all(
      Array.from({ length: Math.min(OPEN_CONCURRENCY, task.count) }, async () => {
        while (next < task.count) await one(next++);
      }),
    );
    return { kind: 'connected', openMs: performance.now() - started, booted, failed, firstError };
  }

  async function run(): Promise<FromGenerator> {
    const cpu0 = process.cpuUsage();
    const latenciesUs: number[] = [];
    const errorCodes: Record<string, number> = {};
    let frames = 0;
    let callErrors = 0;
    const windowStart = performance.now() + task.warmupS * 1000;
    const windowEnd = windowStart + task.seconds * 1000;
    const answered = (frame: unknown[] | null): boolean => {
      if (frame === null) return false;
      if (frame[0] === 3) return true;
      callErrors += 1;
      const code = String(frame[2]);
      errorCodes[code] = (errorCodes[code] ?? 0) + 1;
      return false;
    };
    await Promise.all(
      chargers.map(async (charger, i) => {
        if (charger === null) return;
        const start = await charger.call('StartTransaction', {
          connectorId: 1,
          idTag: `BENCH${task.first + i}`,
          meterStart: 0,
          timestamp: new Date(T0).toISOString(),
        });
        if (!answered(start)) return;
        // The bare server answers {}: keep the frame the same size with an id of our own.
        const transactionId =
          (start![2] as { transactionId?: number }).transactionId ?? task.first + i + 1;
        let n = 0;
        for (;;) {
          const sent = performance.now();
          if (sent >= windowEnd) break;
          n += 1;
          const reply = await charger.call('MeterValues', meterValues(transactionId, n));
          const at = performance.now();
          if (!answered(reply)) {
            if (reply === null) return;
            continue;
          }
          if (at >= windowStart && at <= windowEnd) {
            frames += 1;
            latenciesUs.push(Math.round((at - sent) * 1000));
          }
        }
      }),
    );
    const lost = chargers.filter((c) => c?.closed === true).length;
    for (const c of chargers) c?.ws.close();
    const cpu = process.cpuUsage(cpu0);
    return {
      kind: 'result',
      frames,
      callErrors,
      lost,
      errorCodes,
      latenciesUs,
      cpuUs: cpu.user + cpu.system,
    };
  }
}

// ---------------------------------------------------------------------------------------
// Helpers

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

function fmt(n: number): string {
  return n.toLocaleString('en-US');
}

function writeJson(file: string, value: unknown): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
}

function printTable(header: readonly string[], rows: readonly (readonly string[])[]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  console.log(line(header));
  console.log(
    `|${widths.map((w, i) => (i === 0 ? `${'-'.repeat(w + 1)}-` : `${'-'.repeat(w + 1)}:`)).join('|')}|`,
  );
  for (const r of rows) console.log(line(r));
}

// ---------------------------------------------------------------------------------------
// Entry (last: everything above is initialized by now)

if (process.argv[2] === '--generator') {
  generator(JSON.parse(process.argv[3]!) as GeneratorTask);
} else {
  await main();
}
