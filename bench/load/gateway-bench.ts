/**
 * The load scenarios of issue 10, each against the bare uWebSockets.js ceiling
 * (bare-uws-server.ts) measured in the same run, with the same load generator.
 *
 * `--scenario steady` (default): C chargers over P generator processes, closed loop — each
 * sends StartTransaction, then one MeterValues (~420 bytes) at a time and waits for its
 * CALLRESULT. After a warm-up, frames answered within a window of S seconds are counted:
 * frames/s of the bare server, then of the engine (`--targets bare,on,off,kafka`: fsync on,
 * off, the engine on a local Kafka broker). For an engine, also: the time until every frame
 * it acknowledged is queryable in `meter_readings` (frames/s end to end, in ClickHouse), and
 * two runs paced at `--paced` (0.5), open loop, each on a fresh engine — of the end-to-end
 * maximum (what the whole pipeline carries; acknowledging beyond it only fills the log), and
 * of the acknowledged maximum — for the ack latency at that load and, from one more charger
 * probing the store every 100 ms, frame-to-queryable. `npm run bench:steady` uses a 30 s window,
 * so that what a fresh engine pays once (V8 compiling its hot code, on its helper threads, in
 * the first seconds; the store catching up after the load's last frame) weighs less in the
 * figures of the steady state than in a 10 s window (bench/RESULTS.md has both).
 *
 *   node dist/bench/load/gateway-bench.js [--chargers 1000] [--seconds 10] [--procs 2]
 *        [--warmup 2] [--targets bare,on] [--paced 0.5 | --rate N] [--cpu-prof DIR] [--out FILE]
 *
 * `--rate N` replaces the maximum run and the paced share by one run at N frames/s: CPU per
 * frame of two builds compared at the same load. `npm run bench:realistic` is the shape of a
 * network's chargers: 10,000 of them, each sending MeterValues every 4 s (2,500/s), so a
 * batch holds one event of each session it touches; its warm-up is 6 s, as the store takes
 * about 4 s to absorb the 10,000 transaction starts of the first seconds.
 *
 * `--scenario kafka`: the same for bare, embedded and Kafka (`--targets bare,on,kafka`),
 * unpaced, with the broker's CPU shown beside the engine's.
 *
 * `--scenario connections --connections N` (19,000): N idle OCPP connections (each sends one
 * BootNotification and then nothing), opened by generator processes of at most 5,000
 * sockets, first against the bare server, then against the engine: time to open them all,
 * the server's RSS before and after, RSS per connection.
 *
 * `--scenario two-gateways --connections N` (38,000): a local Kafka broker and two gateway
 * processes (`--role gateway --gateways 2 --gateway-index i`), each holding N/2 idle chargers.
 *
 * `--scenario storm --connections N` (19,000): N chargers open and boot all at once, then every
 * socket drops at once and every charger reconnects and boots at once; per phase the chargers
 * accepted and the time until 50 %, 99 % and all were, on the bare server and on the engine.
 *
 * `--scenario replay [--runs 3]`: the processor and the store alone. An engine takes the
 * closed-loop load for S seconds with its store writes 10 s apart (the log fills with
 * acknowledged frames, up to its lag limit of 200,000), and is SIGKILLed; each run starts a
 * copy of its data folder, which replays the log before it listens: events replayed, time,
 * events/s and CPU per event by thread group, and every acknowledged frame found stored.
 *
 * Each generator process has its own loopback source address (127.0.0.2, .3, …), so no phase
 * runs out of ephemeral ports while the sockets of the previous one sit in TIME_WAIT.
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
import { randomBytes } from 'node:crypto';
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { stringify } from 'yaml';
import { ENGINE_NODE_FLAGS } from '../../src/lib/engine-flags.js';
import { meterValues, READINGS_PER_FRAME, T0 } from './frames.js';

const here = fileURLToPath(import.meta.url);
const root = join(dirname(here), '..', '..', '..');
const NOFILE = 20_000;
const MAX_SOCKETS_PER_GENERATOR = 5_000;
/**
 * First source address (127.0.0.2 + n) of each scenario's generators: scenarios run one after
 * the other may get a server on the port of the one before, and a connection from a source
 * port still in TIME_WAIT towards it is reset — so no two scenarios share addresses.
 */
const ADDRESSES = { steady: 0, connections: 20, storm: 40, twoGateways: 60 } as const;
/** Upgrades in flight per generator while opening (stays well under the listen backlog). */
const OPEN_CONCURRENCY = 200;

// ---------------------------------------------------------------------------------------
// Parent ↔ generator messages

interface GeneratorTask {
  readonly url: string;
  readonly first: number;
  readonly count: number;
  /** load: closed loop; paced: one MeterValues per charger every `intervalMs`; idle: boot only. */
  readonly mode: 'load' | 'paced' | 'idle';
  readonly warmupS: number;
  readonly seconds: number;
  readonly intervalMs?: number;
  /** Upgrades in flight while opening; all at once for a boot storm. */
  readonly concurrency?: number;
  /** Source address of this generator's sockets (each address has its own ephemeral ports). */
  readonly localAddress?: string;
  /** A refused connection or boot is tried again (backoff with jitter) until this long. */
  readonly retryForMs?: number;
  /**
   * The source address of the reconnect phase: reconnecting from the address just closed,
   * the kernel hands out ports whose old connection the server may not have closed yet (its
   * event loop busy with the storm), and those connections are reset — an artefact of one
   * client address holding thousands of sockets that real chargers, each on its own
   * address, do not have.
   */
  readonly reconnectAddress?: string;
}

type ToGenerator =
  | { readonly cmd: 'connect' }
  | { readonly cmd: 'reconnect' }
  | { readonly cmd: 'go' }
  | { readonly cmd: 'stop' };

interface LoadResult {
  /** MeterValues CALLRESULTs that arrived inside the measured window. */
  readonly frames: number;
  /** MeterValues CALLRESULTs of the whole run, warm-up included (to count them in the store). */
  readonly allFrames: number;
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
      /** ms from the command to each accepted BootNotification (idle mode). */
      readonly bootMs: number[];
      /** Chargers that never got in, by the last reason. */
      readonly errorCodes: Record<string, number>;
      /** Attempts refused and tried again (storms), by reason. */
      readonly retries: Record<string, number>;
    }
  | ({ readonly kind: 'result' } & LoadResult);

// ---------------------------------------------------------------------------------------
// Process bookkeeping: everything started here is stopped on the way out, also on failure.

const live = new Set<ChildProcess>();
const brokers = new Set<{ stop(): Promise<void> }>();
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
  await Promise.all([...brokers].map((b) => b.stop().catch(() => undefined)));
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

/** Each thread of a process: its id, name, nice value and CPU seconds so far. */
function threadStats(pid: number): Array<{ tid: number; comm: string; nice: number; cpu: number }> {
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const threads = [];
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      threads.push({
        tid: Number(tid),
        comm: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')),
        nice: Number(fields[16]),
        cpu: (Number(fields[11]) + Number(fields[12])) / clockTicks(),
      });
    } catch {
      /* thread gone */
    }
  }
  return threads;
}

/** CPU seconds per thread of a process, keyed `main` (tid = pid), `node/<tid>` or by name. */
function threadCpuSeconds(pid: number, threads = threadStats(pid)): Map<string, number> {
  const byName = new Map<string, number>();
  for (const { tid, comm, cpu } of threads) {
    // Node names all its threads `node` (the Piscina worker, libuv's pool — log writes,
    // fdatasync, chDB's queries and inserts — and V8's helpers): those are kept apart by id.
    const name = tid === pid ? 'main' : comm === 'node' ? `node/${tid}` : comm;
    byName.set(name, (byName.get(name) ?? 0) + cpu);
  }
  return byName;
}

/** The engine's threads in groups, by what runs on them; the CPU seconds of each. */
interface ThreadGroups {
  /** The gateway's event loop (tid = pid). */
  eventLoop: number;
  /** `node` threads at a lowered nice: the worker threads (they lower themselves). */
  workers: number;
  /** The other `node` threads: V8's platform threads (GC, compilation) and libuv's pool. */
  otherNode: number;
  /** Threads by other names: chDB's. */
  native: number;
}

function threadGroupCpuSeconds(pid: number, threads = threadStats(pid)): ThreadGroups {
  const groups: ThreadGroups = { eventLoop: 0, workers: 0, otherNode: 0, native: 0 };
  for (const { tid, comm, nice, cpu } of threads) {
    const group: keyof ThreadGroups =
      tid === pid ? 'eventLoop' : comm !== 'node' ? 'native' : nice > 0 ? 'workers' : 'otherNode';
    groups[group] += cpu;
  }
  return groups;
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
  readonly apiKey: string | null;
  /** Other processes the server needs (a Kafka broker), stopped with it, counted in its CPU. */
  readonly helpers: readonly { readonly name: string; readonly pid: number }[];
  readonly stop: () => Promise<void>;
  /** An engine started with `replay`: the events it replayed from its log, and in how long. */
  readonly replay?: { readonly events: number; readonly ms: number };
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
    apiKey: null,
    helpers: [],
    stop: () => stopChild(child),
  };
}

const API_KEY = randomBytes(24).toString('base64url');

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
      apiKeys: [{ key: API_KEY, role: 'admin', organization: 'o' }],
    }),
  );
  return file;
}

interface EngineSpec {
  readonly chargers: number;
  readonly fsync: boolean;
  readonly cpuProfDir?: string | null;
  /** Kafka bootstrap list: the engine on Kafka instead of the embedded log. */
  readonly kafka?: string;
  readonly role?: 'all' | 'gateway';
  readonly gateways?: { readonly count: number; readonly index: number };
  readonly name?: string;
  /** The data folder (default: a new one); the network file goes beside it. */
  readonly dataDir?: string;
  /** More `start` flags (the replay scenario's store interval). */
  readonly flags?: readonly string[];
  /** Ready only once the engine logged its replay of the log (`replayMs`, log level info). */
  readonly replay?: boolean;
}

async function startEngine(spec: EngineSpec): Promise<Server> {
  const dir =
    spec.dataDir === undefined
      ? mkdtempSync(join(tmpdir(), 'chargestream-gateway-bench-'))
      : dirname(spec.dataDir);
  if (spec.dataDir === undefined) tempDirs.push(dir);
  else mkdirSync(dir, { recursive: true });
  const config = writeNetwork(dir, spec.chargers);
  const name = spec.name ?? `engine fsync ${spec.fsync ? 'on' : 'off'}`;
  const nodeFlags = [
    ...ENGINE_NODE_FLAGS,
    ...cpuProfFlags(spec.cpuProfDir ?? null, name.replace(/\W+/g, '-')),
  ];
  const child = spawnNode(
    [
      join(root, 'dist', 'src', 'cli.js'),
      'start',
      '--config',
      config,
      '--data',
      spec.dataDir ?? join(dir, 'data'),
      '--ocpp-port',
      '0',
      '--api-port',
      '0',
      '--host',
      '127.0.0.1',
      '--log-level',
      spec.replay === true ? 'info' : 'warn',
      '--fsync',
      String(spec.fsync),
      ...(spec.flags ?? []),
      ...(spec.kafka === undefined
        ? []
        : ['--kafka', spec.kafka, '--topic-prefix', `bench${process.pid}`]),
      ...(spec.role === undefined ? [] : ['--role', spec.role]),
      ...(spec.gateways === undefined
        ? []
        : [
            '--gateways',
            String(spec.gateways.count),
            '--gateway-index',
            String(spec.gateways.index),
          ]),
    ],
    'pipe-out',
    nodeFlags,
  );
  // Its addresses, and with `replay` its start's log line (level info), in either order.
  const m = await waitForLine(
    child,
    spec.replay === true
      ? /^(?=[\s\S]*?"replayed":(?<events>\d+),"replayMs":(?<ms>\d+))(?=[\s\S]*?OCPP (?<ocpp>ws:\/\/[\d.]+:\d+)\/ocpp\S*\s+API (?<api>http:\/\/[\d.]+:\d+))/
      : /OCPP (?<ocpp>ws:\/\/[\d.]+:\d+)\/ocpp\S*\s+API (?<api>http:\/\/[\d.]+:\d+)/,
    'engine',
  );
  const found = m.groups!;
  return {
    name,
    child,
    pid: child.pid!,
    url: `${found['ocpp']}/ocpp`,
    apiUrl: found['api']!,
    ...(spec.replay === true
      ? { replay: { events: Number(found['events']), ms: Number(found['ms']) } }
      : {}),
    apiKey: API_KEY,
    helpers: [],
    stop: () => stopChild(child),
  };
}

/** A local Kafka broker for the run (a JVM on the same cores), stopped at the end. */
async function startBroker(): Promise<{ brokers: string; pid: number; stop(): Promise<void> }> {
  const { startLocalBroker } = await import('../../src/kafka/local-broker.js');
  const { freePort } = await import('../../src/lib/free-port.js');
  const dir = mkdtempSync(join(tmpdir(), 'chargestream-gateway-bench-kafka-'));
  tempDirs.push(dir);
  const broker = await startLocalBroker({
    dataDir: dir,
    port: await freePort(),
    controllerPort: await freePort(),
  });
  brokers.add(broker);
  return {
    brokers: broker.brokers,
    pid: broker.pid,
    stop: async () => {
      brokers.delete(broker);
      await broker.stop();
    },
  };
}

/** The engine (role all) on a Kafka broker of its own. */
async function startKafkaEngine(chargers: number, cpuProfDir: string | null): Promise<Server> {
  const broker = await startBroker();
  try {
    const engine = await startEngine({
      chargers,
      fsync: true,
      cpuProfDir,
      kafka: broker.brokers,
      name: 'engine on Kafka',
    });
    return {
      ...engine,
      helpers: [{ name: 'kafka broker', pid: broker.pid }],
      stop: async () => {
        await engine.stop();
        await broker.stop();
      },
    };
  } catch (error) {
    await broker.stop();
    throw error;
  }
}

/** One statement through the engine's SQL API; rows as objects. */
async function sql<T>(server: Server, statement: string): Promise<T[]> {
  if (server.apiUrl === null) throw new Error(`${server.name} has no API`);
  const response = await fetch(`${server.apiUrl}/api/v1/sql`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${server.apiKey ?? ''}` },
    body: statement,
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`SQL ${response.status}: ${text}`);
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as T);
}

/** All rows of `meter_readings`: ClickHouse answers from its parts' row counts, without a scan. */
async function storedReadings(server: Server): Promise<number> {
  const [row] = await sql<{ n: string }>(
    server,
    'SELECT toString(count()) AS n FROM meter_readings',
  );
  return Number(row?.n ?? 0);
}

/** MeterValues frames of the load chargers stored in ClickHouse (one register value each). */
async function storedFrames(server: Server): Promise<number> {
  const [row] = await sql<{ n: string }>(
    server,
    "SELECT toString(count()) AS n FROM meter_readings WHERE measurand = 'Energy.Active.Import.Register' AND context = 'Sample.Periodic'",
  );
  return Number(row?.n ?? 0);
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
  mode: GeneratorTask['mode'],
  warmupS: number,
  seconds: number,
  extra: {
    intervalMs?: number;
    concurrency?: number;
    first?: number;
    addressBase?: number;
    retryForMs?: number;
  } = {},
): Promise<Generator[]> {
  const generators = split(chargers, procs).map(({ first, count }, g) =>
    startGenerator({
      url,
      first: first + (extra.first ?? 0),
      count,
      mode,
      warmupS,
      seconds,
      ...(extra.intervalMs === undefined ? {} : { intervalMs: extra.intervalMs }),
      ...(extra.concurrency === undefined ? {} : { concurrency: extra.concurrency }),
      ...(extra.retryForMs === undefined ? {} : { retryForMs: extra.retryForMs }),
      // One loopback source address per generator: each has its own ~28 k ephemeral ports,
      // so sockets in TIME_WAIT from a previous phase never run a phase out of ports.
      localAddress: `127.0.0.${2 + (((extra.addressBase ?? ADDRESSES.steady) + g) % 120)}`,
      reconnectAddress: `127.0.0.${130 + (((extra.addressBase ?? ADDRESSES.steady) + g) % 120)}`,
    }),
  );
  const loaded = await Promise.all(generators.map((g) => g.next('loaded', 30_000)));
  loaded.forEach((m, i) => {
    const needed = generators[i]!.task.count + 100;
    if (m.kind === 'loaded' && m.nofile < needed)
      throw new Error(`load generator: open-files limit ${m.nofile} < ${needed} needed`);
  });
  return generators;
}

interface Opened {
  openMs: number;
  booted: number;
  failed: number;
  firstError: string | null;
  /** ms from the command to each accepted BootNotification, all generators. */
  bootMs: number[];
  errorCodes: Record<string, number>;
  retries: Record<string, number>;
}

async function connectAll(
  generators: readonly Generator[],
  cmd: 'connect' | 'reconnect' = 'connect',
): Promise<Opened> {
  const started = performance.now();
  for (const g of generators) g.send({ cmd });
  const replies = await Promise.all(generators.map((g) => g.next('connected', 300_000)));
  const openMs = performance.now() - started;
  const opened: Opened = {
    openMs,
    booted: 0,
    failed: 0,
    firstError: null,
    bootMs: [],
    errorCodes: {},
    retries: {},
  };
  for (const r of replies) {
    if (r.kind !== 'connected') continue;
    opened.booted += r.booted;
    opened.failed += r.failed;
    opened.firstError ??= r.firstError;
    opened.bootMs.push(...r.bootMs);
    for (const [code, n] of Object.entries(r.errorCodes))
      opened.errorCodes[code] = (opened.errorCodes[code] ?? 0) + n;
    for (const [code, n] of Object.entries(r.retries))
      opened.retries[code] = (opened.retries[code] ?? 0) + n;
  }
  return opened;
}

// ---------------------------------------------------------------------------------------
// Throughput mode

interface RunSummary {
  server: string;
  /** load: closed loop (the maximum); paced: a fixed rate, `targetFramesPerSecond`. */
  load: 'load' | 'paced';
  targetFramesPerSecond: number | null;
  /** Paced at a share of a maximum: of the acknowledged one, or of the end-to-end one. */
  shareOf?: 'acknowledged' | 'end to end';
  frames: number;
  /** Every MeterValues acknowledged in the run, the warm-up's too. */
  framesAcknowledged: number;
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
  /** Processes the server needs (the Kafka broker), in cores. */
  helperCpuCores: Record<string, number>;
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
  /**
   * End to end: every MeterValues acknowledged in the run (warm-up included) queryable in
   * `meter_readings`, over the time from the start of the load until the last of them was.
   */
  store: {
    frames: number;
    seconds: number;
    framesPerSecond: number;
    ratioToBare: number | null;
    /**
     * CPU a stored frame, from the start of the load until the last frame was queryable (the
     * store's catching up after the load included): the engine's, in µs, and the generators'.
     */
    engineCpuUsPerFrame: number;
    /** The same by thread group (threads that ended meanwhile are not in it). */
    engineCpuUsPerFrameByThreads: ThreadGroups;
    generatorCpuUsPerFrame: number;
    /** All CPUs of the machine busy over the same time, in cores. */
    machineBusyCores: number;
    /**
     * The engine's CPU a frame that would keep half the bare server's frames/s queryable, at
     * this run's generator cost and machine use (null without a bare run): see printBudget.
     */
    engineBudgetUsPerFrame: number | null;
  } | null;
  /** Paced runs: ms from sending a probe charger's MeterValues to its reading being queryable. */
  frameToQueryableMs: { samples: number; p50: number; p99: number; max: number } | null;
  /** The engine's own view (its /metrics): event-loop lag since the previous scrape, GC time. */
  serverRuntime: {
    eventLoopLagP99Ms: number;
    eventLoopLagMaxMs: number;
    gcSecondsPerSecond: number;
    majorGcSeconds: number;
  } | null;
}

interface MeasureOptions {
  readonly load: 'load' | 'paced';
  /** Paced: frames per second over all chargers. */
  readonly rate?: number;
  /** Wait for the store to hold every acknowledged frame (engines). */
  readonly store?: boolean;
  /** Paced: a probe charger (index) measuring frame-to-queryable meanwhile. */
  readonly probe?: number;
}

/**
 * Event-loop lag (prom-client resets its histogram at each scrape, so a scrape after a run
 * gives the lag during the run) and GC seconds so far, from an engine's /metrics.
 */
async function runtimeFigures(server: Server): Promise<{
  lagP99Ms: number;
  lagMaxMs: number;
  gcSeconds: number;
  majorGcSeconds: number;
} | null> {
  if (server.apiUrl === null) return null;
  try {
    const text = await (await fetch(`${server.apiUrl}/metrics`)).text();
    const value = (pattern: RegExp) =>
      [...text.matchAll(pattern)].reduce((sum, m) => sum + Number(m[1]), 0);
    return {
      lagP99Ms: value(/^chargestream_nodejs_eventloop_lag_p99_seconds (\S+)$/gm) * 1000,
      lagMaxMs: value(/^chargestream_nodejs_eventloop_lag_max_seconds (\S+)$/gm) * 1000,
      gcSeconds: value(/^chargestream_nodejs_gc_duration_seconds_sum\{[^}]*\} (\S+)$/gm),
      majorGcSeconds: value(
        /^chargestream_nodejs_gc_duration_seconds_sum\{kind="major"[^}]*\} (\S+)$/gm,
      ),
    };
  } catch {
    return null;
  }
}

async function measure(
  server: Server,
  chargers: number,
  procs: number,
  warmupS: number,
  seconds: number,
  options: MeasureOptions = { load: 'load' },
): Promise<RunSummary> {
  checkNofile(server, chargers + 100);
  const idleRssKb = procStatusKb(server.pid, 'VmRSS');
  const storedBefore = options.store === true ? await storedFrames(server) : 0;
  const readingsBefore = options.store === true ? await storedReadings(server) : 0;
  const intervalMs =
    options.load === 'paced' ? Math.max(1, (chargers / (options.rate ?? 1)) * 1000) : undefined;
  const generators = await startGenerators(
    server.url,
    chargers,
    procs,
    options.load,
    warmupS,
    seconds,
    intervalMs === undefined ? {} : { intervalMs },
  );
  const opened = await connectAll(generators);
  if (opened.failed > 0) {
    throw new Error(
      `${server.name}: ${opened.failed} of ${chargers} connections failed (${opened.firstError})`,
    );
  }
  const runtime0 = await runtimeFigures(server);
  const cpu0 = cpuSeconds(server.pid);
  const helpers0 = server.helpers.map((h) => cpuSeconds(h.pid));
  const stats0 = threadStats(server.pid);
  const threads0 = threadCpuSeconds(server.pid, stats0);
  const groups0 = threadGroupCpuSeconds(server.pid, stats0);
  const machine0 = machineCpuSeconds();
  const t0 = performance.now();
  for (const g of generators) g.send({ cmd: 'go' });
  const probing =
    options.probe === undefined
      ? null
      : probeQueryable(server, options.probe, t0 + warmupS * 1000, t0 + (warmupS + seconds) * 1000);
  const results = (await Promise.all(
    generators.map((g) => g.next('result', (warmupS + seconds + 120) * 1000)),
  )) as (FromGenerator & { kind: 'result' })[];
  const wall = (performance.now() - t0) / 1000;
  const serverCpu = cpuSeconds(server.pid) - cpu0;
  const helperCpu: Record<string, number> = {};
  server.helpers.forEach((h, i) => {
    helperCpu[h.name] = round2((cpuSeconds(h.pid) - helpers0[i]!) / wall);
  });
  const machine1 = machineCpuSeconds();
  const threads: Record<string, number> = {};
  for (const [name, cpu] of threadCpuSeconds(server.pid)) {
    const used = round2((cpu - (threads0.get(name) ?? 0)) / wall);
    if (used >= 0.01) threads[name] = used;
  }
  const genCpu = results.reduce((s, r) => s + r.cpuUs, 0) / 1e6;
  const runtime1 = await runtimeFigures(server);
  const peakRssKb = procStatusKb(server.pid, 'VmHWM');
  await Promise.all(generators.map((g) => stopChild(g.child, 5_000)));
  const probeMs = probing === null ? null : await probing;

  const allFrames = results.reduce((n, r) => n + r.allFrames, 0);
  let store: RunSummary['store'] = null;
  if (options.store === true) {
    // Every acknowledged frame must become queryable; the figure counts until the last did.
    const expected = storedBefore + allFrames + (probeMs?.sent ?? 0);
    const deadline = performance.now() + 300_000;
    // Counting the frames scans the table (about 16 ms of the store's CPU at 1.2 M rows), which
    // every 100 ms would take CPU from the pipeline it measures; so it runs only once the
    // table's row count, which costs nothing, says enough readings are in for every frame.
    const enough = async (): Promise<boolean> =>
      (await storedReadings(server)) - readingsBefore >=
      READINGS_PER_FRAME * (expected - storedBefore);
    let stored = await storedFrames(server);
    while (stored < expected && performance.now() < deadline) {
      await sleep(100);
      if (await enough()) stored = await storedFrames(server);
    }
    const storeSeconds = (performance.now() - t0) / 1000;
    const framesStored = Math.min(stored - storedBefore, allFrames);
    const machineStored = machineCpuSeconds();
    store = {
      frames: stored - storedBefore,
      seconds: round2(storeSeconds),
      framesPerSecond: Math.round(framesStored / storeSeconds),
      ratioToBare: null,
      // The engine's CPU until the last frame was stored: the counting queries above are in it
      // (a row count every 100 ms, a scan at the end), a few ms a second.
      engineCpuUsPerFrame: round2(((cpuSeconds(server.pid) - cpu0) / framesStored) * 1e6),
      engineCpuUsPerFrameByThreads: perFrame(
        threadGroupCpuSeconds(server.pid),
        groups0,
        framesStored,
      ),
      generatorCpuUsPerFrame: round2((genCpu / allFrames) * 1e6),
      machineBusyCores: round2((machineStored.busy - machine0.busy) / storeSeconds),
      engineBudgetUsPerFrame: null,
    };
    if (stored < expected)
      process.stderr.write(`${server.name}: only ${stored} of ${expected} frames stored\n`);
  }

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
  const probeSorted = probeMs === null ? [] : [...probeMs.latencies].sort((a, b) => a - b);
  const probePct = (q: number) =>
    round2(probeSorted[Math.min(probeSorted.length - 1, Math.floor(q * probeSorted.length))] ?? 0);
  return {
    server: server.name,
    load: options.load,
    targetFramesPerSecond: options.load === 'paced' ? Math.round(options.rate ?? 0) : null,
    frames,
    framesAcknowledged: allFrames,
    framesPerSecond: Math.round(frames / seconds),
    ackLatencyMs: { p50: pct(0.5), p90: pct(0.9), p99: pct(0.99), max: pct(1) },
    callErrors: results.reduce((n, r) => n + r.callErrors, 0),
    errorCodes,
    lostSockets: results.reduce((n, r) => n + r.lost, 0),
    serverPeakRssMiB: Math.round(peakRssKb / 1024),
    serverIdleRssMiB: Math.round(idleRssKb / 1024),
    serverCpuCores: round2(serverCpu / wall),
    serverThreadCpuCores: threads,
    serverRuntime:
      runtime0 === null || runtime1 === null
        ? null
        : {
            eventLoopLagP99Ms: runtime1.lagP99Ms,
            eventLoopLagMaxMs: runtime1.lagMaxMs,
            gcSecondsPerSecond: round2((runtime1.gcSeconds - runtime0.gcSeconds) / wall),
            majorGcSeconds: round2(runtime1.majorGcSeconds - runtime0.majorGcSeconds),
          },
    helperCpuCores: helperCpu,
    loadAverage: round2(loadavg()[0]!),
    generatorCpuCores: round2(genCpu / wall),
    machineBusyCores: round2((machine1.busy - machine0.busy) / wall),
    machineStealCores: round2((machine1.steal - machine0.steal) / wall),
    // Frames counted in the window over CPU of warm-up + window: a floor, comparable across rows.
    framesPerServerCpuSecond: Math.round((frames * (warmupS + seconds)) / seconds / serverCpu),
    ratioToBare: null,
    cpuRatioToBare: null,
    store,
    frameToQueryableMs:
      probeMs === null
        ? null
        : {
            samples: probeSorted.length,
            p50: probePct(0.5),
            p99: probePct(0.99),
            max: probePct(1),
          },
  };
}

/**
 * Frame-to-queryable: one more charger (`B<index>`) sends a MeterValues every 200 ms while the
 * load runs, and the store is polled every 100 ms for its newest reading (polling more often
 * loads chDB measurably); each reading's figure is from its send to the first poll that saw
 * it, so it includes up to one poll period. Each probe runs against an engine of its own
 * (an empty store), so it never finds another probe's readings. Like the acknowledgements',
 * its figures are of the window only (`windowFrom` to `end`, the generators' clock):
 * readings sent during the warm-up, while every charger starts its transaction, are sent and
 * awaited but not counted.
 */
async function probeQueryable(
  server: Server,
  index: number,
  windowFrom: number,
  end: number,
): Promise<{ sent: number; latencies: number[] }> {
  const charger = new Charger(await openSocket(`${server.url}/B${index}`, '127.0.0.1'));
  const start = await charger.call('StartTransaction', {
    connectorId: 1,
    idTag: `BENCH${index}`,
    meterStart: 0,
    timestamp: new Date(T0).toISOString(),
  });
  const transactionId = (start?.[2] as { transactionId?: number } | undefined)?.transactionId ?? 0;
  const sentAt = new Map<number, number>();
  const latencies: number[] = [];
  let n = 0;
  let done = false;
  const sender = (async () => {
    while (performance.now() < end) {
      n += 1;
      sentAt.set(n, performance.now());
      await charger.call('MeterValues', meterValues(transactionId, n));
      await sleep(200);
    }
  })();
  let seen = 0;
  const poller = (async () => {
    while (!done || seen < n) {
      const [row] = await sql<{ t: string }>(
        server,
        `SELECT toString(toUnixTimestamp64Milli(max(ts))) AS t FROM meter_readings WHERE charger_id = 'B${index}' AND context = 'Sample.Periodic'`,
      );
      const now = performance.now();
      const newest = Math.round((Number(row?.t ?? 0) - T0) / 1000);
      for (let k = seen + 1; k <= newest; k++) {
        const at = sentAt.get(k);
        if (at !== undefined && at >= windowFrom) latencies.push(now - at);
      }
      seen = Math.max(seen, newest);
      if (done && performance.now() > end + 30_000) break;
      await sleep(100);
    }
  })();
  await sender;
  done = true;
  await poller;
  charger.ws.close();
  return { sent: n, latencies };
}

type Target = 'bare' | 'on' | 'off' | 'kafka';

async function throughputMode(o: {
  chargers: number;
  seconds: number;
  procs: number;
  warmupS: number;
  cpuProfDir: string | null;
  targets: readonly Target[];
  /** Paced runs of each engine at this share of its measured maximum (0: none). */
  paced: number;
  /** A fixed rate (frames/s) instead: one paced run per engine, no maximum run. */
  rate: number | null;
  out: string;
}): Promise<void> {
  const runs: RunSummary[] = [];
  const starters: Record<Target, () => Promise<Server>> = {
    bare: () => startBare(o.cpuProfDir),
    off: () => startEngine({ chargers: o.chargers + 1, fsync: false, cpuProfDir: o.cpuProfDir }),
    on: () => startEngine({ chargers: o.chargers + 1, fsync: true, cpuProfDir: o.cpuProfDir }),
    kafka: () => startKafkaEngine(o.chargers + 1, o.cpuProfDir),
  };
  for (const target of o.targets) {
    const engine = target !== 'bare';
    /** Runs `measure` on a server started for it alone, stopped after. */
    const fresh = async (options: MeasureOptions): Promise<RunSummary> => {
      const server = await starters[target]();
      try {
        return await measure(server, o.chargers, o.procs, o.warmupS, o.seconds, options);
      } finally {
        await server.stop();
      }
    };
    process.stderr.write(`gateway-bench: ${target} …\n`);
    if (o.rate !== null) {
      process.stderr.write(`gateway-bench: ${target} at ${o.rate}/s …\n`);
      runs.push(
        await fresh({
          load: 'paced',
          rate: o.rate,
          store: engine,
          ...(engine ? { probe: o.chargers } : {}),
        }),
      );
      continue;
    }
    const max = await fresh({ load: 'load', store: engine });
    runs.push(max);
    if (!engine || o.paced <= 0) continue;
    // Each paced run on an engine of its own: after a closed-loop maximum the store goes on
    // merging what it took in (measured: its merge threads at 0.16–0.20 cores in a paced run
    // on the same engine, 0.07–0.10 on a fresh one at 5,000/s), which would weigh on the run.
    const maxima = [['acknowledged', max.framesPerSecond]] as Array<
      [NonNullable<RunSummary['shareOf']>, number]
    >;
    if (max.store !== null) maxima.unshift(['end to end', max.store.framesPerSecond]);
    for (const [shareOf, maximum] of maxima) {
      process.stderr.write(
        `gateway-bench: ${target} at ${o.paced * 100} % of its ${shareOf} maximum …\n`,
      );
      const run = await fresh({
        load: 'paced',
        rate: maximum * o.paced,
        store: true,
        probe: o.chargers,
      });
      runs.push({ ...run, shareOf });
    }
  }
  const bare = runs.find((r) => r.server === 'bare uWS') ?? null;
  if (bare !== null) {
    for (const r of runs) {
      if (r === bare || r.load !== 'load') continue;
      r.ratioToBare = round2(r.framesPerSecond / bare.framesPerSecond);
      r.cpuRatioToBare = round2(r.framesPerServerCpuSecond / bare.framesPerServerCpuSecond);
      if (r.store !== null) {
        r.store.ratioToBare = round2(r.store.framesPerSecond / bare.framesPerSecond);
        // With a broker beside the engine (Kafka mode) its CPU is not in the engine's figure.
        if (Object.keys(r.helperCpuCores).length === 0)
          r.store.engineBudgetUsPerFrame = engineBudget(r.store, bare.framesPerSecond);
      }
    }
  }

  const summary = {
    mode: 'throughput',
    date: new Date().toISOString(),
    node: process.version,
    cores: Number(execFileSync('nproc').toString().trim()),
    loadAverageAtStart: loadAtStart,
    chargers: o.chargers,
    seconds: o.seconds,
    warmupSeconds: o.warmupS,
    generatorProcs: o.procs,
    runs,
  };
  writeJson(o.out, summary);
  console.log(
    `\n${o.chargers} chargers, ${o.procs} generator procs, ${o.warmupS} s warm-up + ${o.seconds} s window, load average at start ${loadAtStart}\n`,
  );
  printTable(
    [
      'server',
      'load',
      'frames/s',
      'p50 ms',
      'p99 ms',
      'max ms',
      'in store/s',
      'to query p99',
      'peak RSS',
      'srv CPU',
      'main thr',
      'helpers',
      'gen CPU',
      'all CPU',
      'frames/CPU-s',
      'errors',
      'engine/bare',
      'store/bare',
      'per CPU-s',
    ],
    runs.map((r) => [
      r.server,
      r.load === 'load'
        ? 'max'
        : `paced ${fmt(r.targetFramesPerSecond ?? 0)}/s${r.shareOf === undefined ? '' : ` (${o.paced} × ${r.shareOf === 'acknowledged' ? 'acked' : 'in store'})`}`,
      fmt(r.framesPerSecond),
      r.ackLatencyMs.p50.toFixed(2),
      r.ackLatencyMs.p99.toFixed(2),
      r.ackLatencyMs.max.toFixed(2),
      r.store === null ? '—' : fmt(r.store.framesPerSecond),
      r.frameToQueryableMs === null ? '—' : `${fmt(Math.round(r.frameToQueryableMs.p99))} ms`,
      `${fmt(r.serverPeakRssMiB)} MiB`,
      r.serverCpuCores.toFixed(2),
      (r.serverThreadCpuCores['main'] ?? 0).toFixed(2),
      Object.values(r.helperCpuCores)
        .reduce((a, b) => a + b, 0)
        .toFixed(2),
      r.generatorCpuCores.toFixed(2),
      r.machineBusyCores.toFixed(2),
      fmt(r.framesPerServerCpuSecond),
      r.callErrors + r.lostSockets === 0
        ? '0'
        : `${r.callErrors} ${JSON.stringify(r.errorCodes)}${r.lostSockets ? ` lost ${r.lostSockets}` : ''}`,
      r.ratioToBare === null ? '—' : r.ratioToBare.toFixed(2),
      r.store?.ratioToBare == null ? '—' : r.store.ratioToBare.toFixed(2),
      r.cpuRatioToBare === null ? '—' : r.cpuRatioToBare.toFixed(2),
    ]),
  );
  for (const r of runs) {
    if (r.store !== null && r.load === 'load') printBudget(r.server, r.store, bare);
  }
  console.log(`\nwritten to ${o.out}`);
}

function perFrame(now: ThreadGroups, before: ThreadGroups, frames: number): ThreadGroups {
  const us = { ...now };
  for (const k of Object.keys(us) as Array<keyof ThreadGroups>)
    us[k] = round2(((now[k] - before[k]) / frames) * 1e6);
  return us;
}

/**
 * The end-to-end figure is bound by CPU: the load and the store's catching up after it keep
 * the machine's cores busy, so frames/s ≈ busy cores ÷ (the engine's + the generators' CPU a
 * frame). Half the bare server's frames/s queryable then allows the engine, in µs of CPU a
 * frame: busy cores ÷ (0.5 × bare frames/s) − the generators' µs a frame.
 */
function engineBudget(store: NonNullable<RunSummary['store']>, bareFramesPerSecond: number) {
  return round2(
    (store.machineBusyCores / (0.5 * bareFramesPerSecond)) * 1e6 - store.generatorCpuUsPerFrame,
  );
}

function printBudget(
  server: string,
  store: NonNullable<RunSummary['store']>,
  bare: RunSummary | null,
): void {
  const bareCost =
    bare === null
      ? ''
      : ` (the bare server ${((bare.serverCpuCores / bare.framesPerSecond) * 1e6).toFixed(1)} µs a frame)`;
  const budget =
    store.engineBudgetUsPerFrame === null
      ? ''
      : `; in ClickHouse ÷ bare ≥ 0.5 would allow the engine ${store.engineBudgetUsPerFrame.toFixed(1)} µs${bareCost}`;
  console.log(
    `\n${server}, CPU a stored frame (load and catching up, the machine ${store.machineBusyCores.toFixed(2)} cores busy): ` +
      `the engine ${store.engineCpuUsPerFrame.toFixed(1)} µs, the generators ${store.generatorCpuUsPerFrame.toFixed(1)} µs${budget}`,
  );
  const t = store.engineCpuUsPerFrameByThreads;
  console.log(
    `  the engine's µs by threads: event loop ${t.eventLoop.toFixed(1)}, worker threads ${t.workers.toFixed(1)}, ` +
      `V8's platform threads and libuv's pool ${t.otherNode.toFixed(1)}, chDB's threads ${t.native.toFixed(1)}`,
  );
}

// ---------------------------------------------------------------------------------------
// Connections, two gateways, boot and reconnect storms

interface ConnectionsSummary {
  server: string;
  connections: number;
  booted: number;
  failed: number;
  errorCodes: Record<string, number>;
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
  extra: { first?: number; addressBase?: number } = {},
): Promise<ConnectionsSummary> {
  checkNofile(server, n + 200);
  await sleep(3_000);
  const before = await steadyRssKb(server.pid);
  const heapBefore = await engineMetric(server, 'chargestream_nodejs_heap_size_used_bytes');
  const generators = await startGenerators(server.url, n, procs, 'idle', 0, 0, extra);
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
      errorCodes: opened.errorCodes,
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

function printConnections(runs: readonly ConnectionsSummary[]): void {
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
      r.failed === 0 ? '0' : `${fmt(r.failed)} ${JSON.stringify(r.errorCodes)}`,
      `${r.openSeconds.toFixed(2)} s`,
      fmt(r.connectionsPerSecond),
      `${r.rssBeforeMiB.toFixed(1)} MiB`,
      `${r.rssAfterMiB.toFixed(1)} MiB`,
      `${r.rssPerConnectionKiB.toFixed(1)} KiB`,
      r.heapUsedPerConnectionKiB === null ? '—' : `${r.heapUsedPerConnectionKiB.toFixed(1)} KiB`,
      r.serverReportedConnections === null ? '—' : fmt(r.serverReportedConnections),
    ]),
  );
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
    { name: 'engine', start: () => startEngine({ chargers: o.connections, fsync: true }) },
  ];
  for (const [t, target] of targets.entries()) {
    process.stderr.write(`gateway-bench: ${o.connections} idle connections to ${target.name} …\n`);
    const server = await target.start();
    try {
      runs.push(
        await holdConnections(server, o.connections, procs, {
          addressBase: ADDRESSES.connections + t * procs,
        }),
      );
    } finally {
      await server.stop();
    }
  }
  writeJson(o.out, {
    mode: 'connections',
    date: new Date().toISOString(),
    node: process.version,
    loadAverageAtStart: loadAtStart,
    generatorProcs: procs,
    runs,
  });
  console.log(
    `\n${o.connections} idle OCPP 1.6 connections (one BootNotification each), ${procs} generator procs\n`,
  );
  printConnections(runs);
  console.log(`\nwritten to ${o.out}`);
}

/**
 * Two gateway processes on one machine (distributed mode: `--role gateway --gateways 2
 * --gateway-index i` on a local Kafka broker), each holding half of the chargers.
 */
async function twoGatewaysMode(o: { connections: number; out: string }): Promise<void> {
  const half = Math.ceil(o.connections / 2);
  const procs = Math.ceil(half / MAX_SOCKETS_PER_GENERATOR);
  process.stderr.write(`gateway-bench: Kafka broker and two gateways …\n`);
  const broker = await startBroker();
  const gateways: Server[] = [];
  try {
    for (let index = 0; index < 2; index++) {
      // Right after the broker starts, the first gateway can fail on topics whose leaders are
      // not elected yet ("not the leader for that topic-partition"): it is started again.
      for (let attempt = 1; ; attempt++) {
        try {
          gateways.push(
            await startEngine({
              chargers: o.connections,
              fsync: true,
              kafka: broker.brokers,
              role: 'gateway',
              gateways: { count: 2, index },
              name: `gateway ${index}`,
            }),
          );
          break;
        } catch (error) {
          if (attempt >= 3) throw error;
          process.stderr.write(`gateway-bench: gateway ${index} did not start, again …\n`);
          await sleep(3_000);
        }
      }
    }
    const started = performance.now();
    const runs = await Promise.all(
      gateways.map((g, index) =>
        holdConnections(g, Math.min(half, o.connections - index * half), procs, {
          first: index * half,
          addressBase: ADDRESSES.twoGateways + index * procs,
        }),
      ),
    );
    const wall = (performance.now() - started) / 1000;
    const held = runs.reduce((n, r) => n + r.booted, 0);
    writeJson(o.out, {
      mode: 'two-gateways',
      date: new Date().toISOString(),
      node: process.version,
      loadAverageAtStart: loadAtStart,
      connections: o.connections,
      held,
      wallSeconds: round2(wall),
      runs,
    });
    console.log(
      `\n${o.connections} idle OCPP 1.6 connections over two gateway processes (Kafka mode): ${fmt(held)} held at once\n`,
    );
    printConnections(runs);
    console.log(`\nwritten to ${o.out}`);
  } finally {
    for (const g of gateways) await g.stop();
    await broker.stop();
  }
}

interface StormSummary {
  server: string;
  phase: 'boot storm' | 'reconnect storm';
  chargers: number;
  booted: number;
  failed: number;
  errorCodes: Record<string, number>;
  /** Attempts refused or dropped and tried again, by reason. */
  retries: Record<string, number>;
  seconds50: number;
  seconds99: number;
  secondsAll: number;
  serverPeakRssMiB: number;
}

/**
 * How fast the engine works off a backlog: the processor and the store alone, no chargers.
 * An engine takes the closed-loop load with its store writes 10 s apart, so its processor
 * stops two batches ahead of the store while the log fills with acknowledged events; it is
 * SIGKILLed at the end of the load. Each run starts a copy of that data folder: the engine
 * replays its log before it listens, and logs how many events and how long. CPU per event is
 * the engine's (all its threads) from its start to the end of the replay, less the CPU of a
 * start on the same network with nothing to replay.
 */
async function replayMode(o: {
  chargers: number;
  seconds: number;
  procs: number;
  runs: number;
  out: string;
}): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'chargestream-replay-bench-'));
  tempDirs.push(dir);
  process.stderr.write(`gateway-bench: loading an engine for ${o.seconds} s …\n`);
  const loaded = await startEngine({
    chargers: o.chargers,
    fsync: true,
    dataDir: join(dir, 'load', 'data'),
    flags: ['--store-interval', '10000'],
  });
  const load = await measure(loaded, o.chargers, o.procs, 1, o.seconds);
  const backlog = (await engineMetric(loaded, 'chargestream_bus_unacknowledged_events')) ?? 0;
  const storedAtKill = await storedFrames(loaded);
  const killed = new Promise((resolve) => loaded.child.once('exit', resolve));
  loaded.child.kill('SIGKILL');
  await killed;

  /** CPU seconds so far by thread group, and in all. */
  const groups = (pid: number) => {
    const { eventLoop, workers, otherNode, native } = threadGroupCpuSeconds(pid);
    const nodeThreads = workers + otherNode;
    return { eventLoop, nodeThreads, chdbThreads: native, all: eventLoop + nodeThreads + native };
  };
  const started = async (name: string, from: string | null) => {
    const dataDir = join(dir, name, 'data');
    if (from === null) mkdirSync(dirname(dataDir), { recursive: true });
    else cpSync(join(dir, from), join(dir, name), { recursive: true });
    const server = await startEngine({ chargers: o.chargers, fsync: true, dataDir, replay: true });
    return { server, cpu: groups(server.pid) };
  };
  const empty = await started('empty', null);
  await empty.server.stop();

  const runs = [];
  for (let i = 1; i <= o.runs; i++) {
    process.stderr.write(`gateway-bench: replay ${i} of ${o.runs} …\n`);
    const { server, cpu } = await started(`run-${i}`, 'load');
    const events = server.replay!.events;
    const seconds = server.replay!.ms / 1000;
    const stored = await storedFrames(server);
    // µs of CPU an event, each group less what a start with nothing to replay used.
    const perEvent = (group: keyof typeof cpu) =>
      round2(((cpu[group] - empty.cpu[group]) / events) * 1e6);
    runs.push({
      events,
      seconds: round2(seconds),
      eventsPerSecond: Math.round(events / seconds),
      engineCores: round2((cpu.all - empty.cpu.all) / seconds),
      cpuUsPerEvent: {
        eventLoop: perEvent('eventLoop'),
        nodeThreads: perEvent('nodeThreads'),
        chdbThreads: perEvent('chdbThreads'),
        all: perEvent('all'),
      },
      framesStored: stored,
    });
    await server.stop();
    rmSync(join(dir, `run-${i}`), { recursive: true, force: true });
  }

  const acknowledged = load.framesAcknowledged;
  console.log(
    `\n${o.chargers} chargers, closed loop for ${o.seconds} s: ${acknowledged.toLocaleString('en')} MeterValues acknowledged, ${storedAtKill.toLocaleString('en')} stored at the SIGKILL, ${backlog.toLocaleString('en')} events in the log's backlog\n`,
  );
  console.log(
    '| run | events replayed | seconds | events/s | engine cores | µs/event: event loop | node threads (workers, libuv pool, V8) | chDB threads | all | frames stored / acknowledged |',
  );
  console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  runs.forEach((r, i) =>
    console.log(
      `| ${i + 1} | ${r.events.toLocaleString('en')} | ${r.seconds} | ${r.eventsPerSecond.toLocaleString('en')} | ${r.engineCores} | ${r.cpuUsPerEvent.eventLoop} | ${r.cpuUsPerEvent.nodeThreads} | ${r.cpuUsPerEvent.chdbThreads} | ${r.cpuUsPerEvent.all} | ${r.framesStored.toLocaleString('en')} / ${acknowledged.toLocaleString('en')} |`,
    ),
  );
  const lost = runs.filter((r) => r.framesStored < acknowledged).length;
  if (lost > 0)
    process.stderr.write(
      `gateway-bench: ${lost} replay(s) stored fewer frames than acknowledged\n`,
    );
  mkdirSync(dirname(o.out), { recursive: true });
  writeFileSync(
    o.out,
    `${JSON.stringify({ mode: 'replay', date: new Date().toISOString(), node: process.version, cores: Number(execFileSync('nproc').toString().trim()), chargers: o.chargers, loadSeconds: o.seconds, acknowledged, storedAtKill, backlog, runs }, null, 2)}\n`,
  );
  console.log(`\nwritten to ${o.out}`);
}

/**
 * Storms: N chargers open their connections and boot all at once (no concurrency limit),
 * then every socket drops at once and every charger comes back at once. Per phase: chargers
 * accepted (BootNotification Accepted), time until 50 %, 99 % and all were, failures by kind.
 */
async function stormMode(o: { connections: number; out: string }): Promise<void> {
  const procs = Math.ceil(o.connections / MAX_SOCKETS_PER_GENERATOR);
  const runs: StormSummary[] = [];
  const targets: { name: string; start: () => Promise<Server> }[] = [
    { name: 'bare', start: () => startBare() },
    { name: 'engine', start: () => startEngine({ chargers: o.connections, fsync: true }) },
  ];
  for (const [t, target] of targets.entries()) {
    process.stderr.write(`gateway-bench: storm of ${o.connections} chargers on ${target.name} …\n`);
    const server = await target.start();
    checkNofile(server, o.connections + 200);
    const generators = await startGenerators(server.url, o.connections, procs, 'idle', 0, 0, {
      concurrency: o.connections,
      addressBase: ADDRESSES.storm + t * procs,
      retryForMs: 60_000,
    });
    try {
      await sleep(2_000);
      for (const phase of ['boot storm', 'reconnect storm'] as const) {
        const opened = await connectAll(
          generators,
          phase === 'boot storm' ? 'connect' : 'reconnect',
        );
        const times = [...opened.bootMs].sort((a, b) => a - b);
        // Shares of all chargers, not of those that made it.
        const at = (q: number) => {
          const rank = Math.ceil(q * o.connections) - 1;
          return rank < times.length ? round2(times[rank]! / 1000) : Number.POSITIVE_INFINITY;
        };
        runs.push({
          server: server.name,
          phase,
          chargers: o.connections,
          booted: opened.booted,
          failed: opened.failed,
          errorCodes: opened.errorCodes,
          retries: opened.retries,
          seconds50: at(0.5),
          seconds99: at(0.99),
          secondsAll: at(1),
          serverPeakRssMiB: Math.round(procStatusKb(server.pid, 'VmHWM') / 1024),
        });
        await sleep(3_000);
      }
    } finally {
      for (const g of generators) if (g.child.connected) g.send({ cmd: 'stop' });
      await Promise.all(generators.map((g) => stopChild(g.child, 10_000)));
      await server.stop();
    }
  }
  writeJson(o.out, {
    mode: 'storm',
    date: new Date().toISOString(),
    node: process.version,
    loadAverageAtStart: loadAtStart,
    generatorProcs: procs,
    runs,
  });
  console.log(`\n${o.connections} chargers booting at once, then reconnecting at once\n`);
  printTable(
    ['server', 'phase', 'accepted', 'failed', 'tried again', '50 %', '99 %', 'all', 'peak RSS'],
    runs.map((r) => [
      r.server,
      r.phase,
      fmt(r.booted),
      r.failed === 0 ? '0' : `${fmt(r.failed)} ${JSON.stringify(r.errorCodes)}`,
      Object.keys(r.retries).length === 0 ? '0' : JSON.stringify(r.retries),
      `${r.seconds50} s`,
      `${r.seconds99} s`,
      `${r.secondsAll} s`,
      `${fmt(r.serverPeakRssMiB)} MiB`,
    ]),
  );
  console.log(`\nwritten to ${o.out}`);
}

// ---------------------------------------------------------------------------------------

let loadAtStart = 0;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      scenario: { type: 'string' },
      chargers: { type: 'string', default: '1000' },
      seconds: { type: 'string', default: '10' },
      procs: { type: 'string', default: '2' },
      warmup: { type: 'string', default: '2' },
      targets: { type: 'string' },
      paced: { type: 'string', default: '0.5' },
      rate: { type: 'string' },
      connections: { type: 'string' },
      runs: { type: 'string', default: '3' },
      'cpu-prof': { type: 'string' },
      out: { type: 'string' },
    },
  });
  loadAtStart = round2(loadavg()[0]!);
  const int = (name: string, text: string, min: number): number => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min) {
      process.stderr.write(`--${name}: must be an integer ≥ ${min}, got ${text}\n`);
      process.exit(2);
    }
    return n;
  };
  const scenario = values.scenario ?? (values.connections !== undefined ? 'connections' : 'steady');
  const SCENARIOS = ['steady', 'kafka', 'connections', 'two-gateways', 'storm', 'replay'];
  if (!SCENARIOS.includes(scenario)) {
    process.stderr.write(`--scenario: one of ${SCENARIOS.join(', ')}, not ${scenario}\n`);
    process.exit(2);
  }
  const chargers = int('chargers', values.chargers, 1);
  const seconds = int('seconds', values.seconds, 1);
  const procs = int('procs', values.procs, 1);
  const warmupS = int('warmup', values.warmup, 0);
  const paced = Number(values.paced);
  if (!(paced >= 0 && paced <= 1)) {
    process.stderr.write(`--paced: a share from 0 to 1, got ${values.paced}\n`);
    process.exit(2);
  }
  const targets = (values.targets ?? (scenario === 'kafka' ? 'bare,on,kafka' : 'bare,on'))
    .split(',')
    .map((t) => t.trim()) as Target[];
  for (const t of targets) {
    if (!['bare', 'on', 'off', 'kafka'].includes(t)) {
      process.stderr.write(`--targets: bare, on, off, kafka; not ${t}\n`);
      process.exit(2);
    }
  }
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

  const out = (name: string) => values.out ?? join(root, 'bench', 'out', `${name}.json`);
  try {
    if (scenario === 'connections') {
      await connectionsMode({
        connections: int('connections', values.connections ?? '19000', 1),
        procs,
        out: out('gateway-bench-connections'),
      });
    } else if (scenario === 'two-gateways') {
      await twoGatewaysMode({
        connections: int('connections', values.connections ?? '38000', 2),
        out: out('gateway-bench-two-gateways'),
      });
    } else if (scenario === 'replay') {
      await replayMode({
        chargers,
        seconds,
        procs,
        runs: int('runs', values.runs, 1),
        out: out('gateway-bench-replay'),
      });
    } else if (scenario === 'storm') {
      await stormMode({
        connections: int('connections', values.connections ?? '19000', 1),
        out: out('gateway-bench-storm'),
      });
    } else {
      await throughputMode({
        chargers,
        seconds,
        procs,
        warmupS,
        cpuProfDir: values['cpu-prof'] ?? null,
        targets,
        paced: scenario === 'kafka' ? 0 : paced,
        rate: values.rate === undefined ? null : int('rate', values.rate, 1),
        out: out(scenario === 'kafka' ? 'gateway-bench-kafka' : 'gateway-bench'),
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

function openSocket(url: string, localAddress?: string): Promise<WebSocket> {
  return new Promise<WebSocket>((resolve, reject) => {
    const ws = new WebSocket(url, ['ocpp1.6'], localAddress === undefined ? {} : { localAddress });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => {
      reject(new Error(`upgrade refused: ${res.statusCode}`));
      ws.terminate();
    });
  });
}

function generator(task: GeneratorTask): void {
  const send = (m: FromGenerator) => process.send!(m);
  const chargers: (Charger | null)[] = [];
  const fail = (error: unknown) => {
    process.stderr.write(`generator: ${String(error)}\n`);
    process.exit(1);
  };
  process.on('message', (raw) => {
    const message = raw as ToGenerator;
    if (message.cmd === 'connect') {
      connect().then(send, fail);
    } else if (message.cmd === 'reconnect') {
      // A reconnect storm: every socket drops at once and every charger comes back at once.
      for (const c of chargers) c?.ws.terminate();
      connect(task.count, task.reconnectAddress).then(send, fail);
    } else if (message.cmd === 'go') {
      run().then((result) => process.send!(result, () => process.exit(0)), fail);
    } else {
      for (const c of chargers) c?.ws.terminate();
      process.exit(0);
    }
  });
  send({ kind: 'loaded', nofile: openFilesLimit('self') });

  async function connect(
    concurrency = task.concurrency ?? OPEN_CONCURRENCY,
    address = task.localAddress,
  ): Promise<FromGenerator> {
    const started = performance.now();
    let booted = 0;
    let failed = 0;
    let firstError: string | null = null;
    const bootMs: number[] = [];
    const errorCodes: Record<string, number> = {};
    const retries: Record<string, number> = {};
    let next = 0;
    const one = async (i: number): Promise<void> => {
      for (let attempt = 0; ; attempt++) {
        try {
          const charger = new Charger(await openSocket(`${task.url}/B${task.first + i}`, address));
          chargers[i] = charger;
          if (task.mode === 'idle') {
            const reply = await charger.call('BootNotification', {
              chargePointVendor: 'Bench',
              chargePointModel: 'Idle',
            });
            if (reply?.[0] !== 3 || (reply[2] as { status?: string }).status !== 'Accepted')
              throw new Error(`BootNotification answered ${JSON.stringify(reply)}`);
            bootMs.push(performance.now() - started);
          }
          booted += 1;
          return;
        } catch (error) {
          chargers[i]?.ws.terminate();
          chargers[i] = null;
          const text = error instanceof Error ? error.message : String(error);
          const code = /^upgrade refused: \d+|^BootNotification|^[A-Z]+/.exec(text)?.[0] ?? text;
          // Storms: a refused charger tries again after a backoff with jitter, as chargers do.
          if (performance.now() - started < (task.retryForMs ?? 0)) {
            retries[code] = (retries[code] ?? 0) + 1;
            await sleep(Math.min(8_000, 1_000 * 2 ** attempt) * (0.5 + Math.random()));
            continue;
          }
          failed += 1;
          errorCodes[code] = (errorCodes[code] ?? 0) + 1;
          firstError ??= text;
          return;
        }
      }
    };
    await Promise.all(
      Array.from({ length: Math.min(concurrency, task.count) }, async () => {
        while (next < task.count) await one(next++);
      }),
    );
    return {
      kind: 'connected',
      openMs: performance.now() - started,
      booted,
      failed,
      firstError,
      bootMs,
      errorCodes,
      retries,
    };
  }

  async function run(): Promise<FromGenerator> {
    const cpu0 = process.cpuUsage();
    const latenciesUs: number[] = [];
    const errorCodes: Record<string, number> = {};
    let frames = 0;
    let allFrames = 0;
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
    const interval = task.mode === 'paced' ? (task.intervalMs ?? 1000) : 0;
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
        // Paced: chargers spread evenly over the interval, each on its own schedule.
        let due = performance.now() + (interval * i) / Math.max(1, chargers.length);
        for (;;) {
          if (interval > 0) {
            const wait = due - performance.now();
            if (wait > 0) await sleep(wait);
            due += interval;
          }
          const sent = performance.now();
          if (sent >= windowEnd) break;
          n += 1;
          const reply = await charger.call('MeterValues', meterValues(transactionId, n));
          const at = performance.now();
          if (!answered(reply)) {
            if (reply === null) return;
            continue;
          }
          allFrames += 1;
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
      allFrames,
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
