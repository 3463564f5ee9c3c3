/**
 * A real single-node Apache Kafka broker for development and tests: KRaft combined mode
 * (broker and controller in one JVM, no ZooKeeper, no Docker), listening on 127.0.0.1 only,
 * run from jars that scripts/kafka/assemble.sh takes from Maven Central.
 *
 * Everything a broker owns lives in its data folder, so `chargestream kafka up|down|status`
 * (another process than the one that started it) can find it again:
 *
 *   dataDir/
 *     server.properties   written on every start (ports may change between starts)
 *     log4j.properties    sends the broker's logs to logFile instead of stdout
 *     kafka-logs/         log.dirs and the KRaft metadata log; formatted once
 *     broker.pid          pid of the running JVM (its own process group)
 *     broker.log          default logFile
 *     broker.stdout.log   what the JVM itself prints (crashes, "could not find main class")
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fstatSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
} from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import { errorMessage } from '../lib/errors.js';
import { projectRoot } from '../lib/paths.js';

export type LocalBrokerErrorCode =
  /** scripts/kafka/assemble.sh failed: Maven missing, Central unreachable, bad pom. */
  | 'KAFKA_ASSEMBLY_FAILED'
  /** `java` could not be started (not installed, not on PATH, wrong javaPath). */
  | 'KAFKA_JAVA_NOT_FOUND'
  /** kafka.tools.StorageTool could not format the data folder. */
  | 'KAFKA_FORMAT_FAILED'
  /** Something else already listens on the broker or controller port. */
  | 'KAFKA_PORT_IN_USE'
  /** The data folder already belongs to a running broker. */
  | 'KAFKA_ALREADY_RUNNING'
  /** The broker process ended before it answered. */
  | 'KAFKA_BROKER_EXITED'
  /** The broker did not answer describeCluster within the start timeout. */
  | 'KAFKA_BROKER_NOT_READY'
  /** The broker survived SIGTERM and SIGKILL. */
  | 'KAFKA_STOP_FAILED'
  /** An option is out of range. */
  | 'KAFKA_INVALID_OPTION';

/**
 * The shape of the engine's ChargestreamError (stable `code`, `retriable`, `cause`), kept
 * local because these codes concern a development tool, not the engine's users.
 */
export class LocalBrokerError extends Error {
  readonly code: LocalBrokerErrorCode;
  readonly retriable = false;

  constructor(code: LocalBrokerErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'LocalBrokerError';
    this.code = code;
  }
}

export interface AssembleKafkaOptions {
  /**
   * Where libs/ goes. Default (decided by the script):
   * ${CHARGESTREAM_KAFKA_HOME:-$HOME/.cache/chargestream/kafka}.
   */
  destDir?: string;
}

export interface LocalBrokerOptions {
  /** Client port on 127.0.0.1. Default 9092. */
  port?: number;
  /** KRaft controller port on 127.0.0.1. Default 9093. */
  controllerPort?: number;
  /** Holds the configuration, the partitions, the pid file and (by default) the log. */
  dataDir: string;
  /** Broker log; default dataDir/broker.log. Rolled at 20 MB, two old files kept. */
  logFile?: string;
  /** JVM maximum heap in MB. Default 512. */
  heapMb?: number;
  /** Folder of the broker's jars; default: the result of assembleKafka(). */
  libsDir?: string;
  /** The java executable. Default `java` from PATH. */
  javaPath?: string;
  /** How long to wait for the broker to answer. Default 60 000 ms. */
  readyTimeoutMs?: number;
  /**
   * server.properties entries added after (and overriding) the defaults below; node.id and
   * log.dirs are not among them (the readiness check and the format step rely on both).
   */
  extraProperties?: Readonly<Record<string, string | number | boolean>>;
}

export interface LocalBroker {
  readonly port: number;
  /** Bootstrap list for clients, `127.0.0.1:<port>`. */
  readonly brokers: string;
  readonly pid: number;
  readonly clusterId: string;
  readonly dataDir: string;
  readonly logFile: string;
  /** SIGTERM, wait for a clean shutdown, SIGKILL after 20 s. Safe to call twice. */
  stop(): Promise<void>;
}

export type LocalBrokerStatus =
  | {
      readonly running: true;
      readonly dataDir: string;
      readonly pid: number;
      readonly port: number | undefined;
      readonly brokers: string | undefined;
    }
  | {
      readonly running: false;
      readonly dataDir: string;
      /** Set when a pid file names a process that is gone (or is not this broker). */
      readonly stalePid: number | undefined;
    };

const HOST = '127.0.0.1';
const NODE_ID = 1;
const PID_FILE = 'broker.pid';
const SERVER_PROPERTIES = 'server.properties';
const LOG4J_PROPERTIES = 'log4j.properties';
const STDOUT_LOG = 'broker.stdout.log';
const DEFAULT_LOG = 'broker.log';
const LOG_DIRS = 'kafka-logs';
const STOP_GRACE_MS = 20_000;
const KILL_WAIT_MS = 5_000;

/**
 * Runs scripts/kafka/assemble.sh (a no-op when the jars for the current pom are in place;
 * otherwise Maven downloads them) and returns the absolute path of the libs folder.
 */
export async function assembleKafka(opts: AssembleKafkaOptions = {}): Promise<string> {
  const script = join(projectRoot, 'scripts', 'kafka', 'assemble.sh');
  const args = opts.destDir === undefined ? [script] : [script, resolve(opts.destDir)];
  const result = await run('bash', args);
  if (result.spawnError !== undefined) {
    throw new LocalBrokerError(
      'KAFKA_ASSEMBLY_FAILED',
      `cannot run ${script} with bash: ${result.spawnError.message}`,
      {
        cause: result.spawnError,
      },
    );
  }
  if (result.code !== 0) {
    throw new LocalBrokerError(
      'KAFKA_ASSEMBLY_FAILED',
      `${script} exited with ${describeExit(result.code, result.signal)}:\n${lastLines(result.stderr, 40)}`,
    );
  }
  const libsDir = result.stdout.trim().split('\n').pop()?.trim() ?? '';
  if (libsDir === '' || !existsSync(libsDir)) {
    throw new LocalBrokerError(
      'KAFKA_ASSEMBLY_FAILED',
      `${script} did not print an existing libs folder (got "${libsDir}")`,
    );
  }
  return libsDir;
}

/**
 * Starts a broker detached from this process (it outlives it, as `kafka up` needs) and
 * resolves once it answers describeCluster with the cluster id of its own data folder.
 */
export async function startLocalBroker(opts: LocalBrokerOptions): Promise<LocalBroker> {
  const port = opts.port ?? 9092;
  const controllerPort = opts.controllerPort ?? 9093;
  const heapMb = opts.heapMb ?? 512;
  const readyTimeoutMs = opts.readyTimeoutMs ?? 60_000;
  const javaPath = opts.javaPath ?? 'java';
  checkPort('port', port);
  checkPort('controllerPort', controllerPort);
  if (port === controllerPort)
    throw new LocalBrokerError('KAFKA_INVALID_OPTION', `port and controllerPort are both ${port}`);
  for (const owned of ['node.id', 'log.dirs', 'process.roles']) {
    if (opts.extraProperties !== undefined && Object.hasOwn(opts.extraProperties, owned)) {
      throw new LocalBrokerError('KAFKA_INVALID_OPTION', `extraProperties may not set ${owned}`);
    }
  }
  if (!Number.isInteger(heapMb) || heapMb < 128) {
    throw new LocalBrokerError(
      'KAFKA_INVALID_OPTION',
      `heapMb must be an integer of at least 128, got ${heapMb}`,
    );
  }

  const dataDir = resolve(opts.dataDir);
  const logFile = resolve(opts.logFile ?? join(dataDir, DEFAULT_LOG));
  const logDirs = join(dataDir, LOG_DIRS);
  await mkdir(dataDir, { recursive: true });
  await mkdir(dirname(logFile), { recursive: true });

  const status = await brokerStatus(dataDir);
  if (status.running) {
    const where = status.brokers === undefined ? '' : `, ${status.brokers}`;
    throw new LocalBrokerError(
      'KAFKA_ALREADY_RUNNING',
      `a broker (pid ${status.pid}${where}) already runs from ${dataDir}; stop it first`,
    );
  }
  if (status.stalePid !== undefined) await rm(join(dataDir, PID_FILE), { force: true });

  // Without this check a broker already on the port would answer the readiness probe below
  // (the cluster id comparison would catch it, but only after a confusing wait).
  await assertPortFree(port);
  await assertPortFree(controllerPort);

  const libsDir = resolve(opts.libsDir ?? (await assembleKafka()));
  if (
    !readdirSync(libsDir).some((name) => name.startsWith('kafka_2.13-') && name.endsWith('.jar'))
  ) {
    throw new LocalBrokerError(
      'KAFKA_ASSEMBLY_FAILED',
      `${libsDir} holds no kafka_2.13 jar; run scripts/kafka/assemble.sh`,
    );
  }
  const classpath = join(libsDir, '*'); // expanded by java itself, no shell involved

  const serverProperties = join(dataDir, SERVER_PROPERTIES);
  const log4jProperties = join(dataDir, LOG4J_PROPERTIES);
  await writeFile(
    serverProperties,
    renderServerProperties({ port, controllerPort, logDirs, extra: opts.extraProperties ?? {} }),
  );
  await writeFile(log4jProperties, renderLog4jProperties(logFile));

  const javaOptions = [
    `-Xmx${heapMb}m`,
    // Kafka's own defaults from kafka-run-class.sh: short pauses matter more than throughput.
    '-XX:+UseG1GC',
    '-XX:MaxGCPauseMillis=20',
    '-XX:InitiatingHeapOccupancyPercent=35',
    '-XX:+ExplicitGCInvokesConcurrent',
    // A broker that ran out of heap should die (and be seen as dead), not limp on.
    '-XX:+ExitOnOutOfMemoryError',
    '-Djava.awt.headless=true',
    `-Dlog4j.configuration=${pathToFileURL(log4jProperties).href}`,
  ];

  if (!existsSync(join(logDirs, 'meta.properties'))) {
    await formatStorage({ javaPath, classpath, log4jProperties, serverProperties, logDirs });
  }
  const clusterId = readClusterId(logDirs);

  const child = await spawnBroker({
    javaPath,
    args: [...javaOptions, '-cp', classpath, 'kafka.Kafka', serverProperties],
    dataDir,
  });
  const pid = child.pid;
  if (pid === undefined)
    throw new LocalBrokerError('KAFKA_JAVA_NOT_FOUND', `${javaPath} started without a pid`);
  await writeFile(join(dataDir, PID_FILE), `${pid}\n`);

  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  child.once('exit', (code, signal) => {
    exited = { code, signal };
  });

  const brokers = `${HOST}:${port}`;
  try {
    await waitUntilReady({
      brokers,
      clusterId,
      timeoutMs: readyTimeoutMs,
      hasExited: () => exited,
    });
  } catch (error) {
    // Read before stopPid: our own SIGTERM would otherwise look like a crash.
    const exitedByItself = exited;
    await stopPid(pid, dataDir).catch(() => undefined);
    const tail = logTail(logFile, join(dataDir, STDOUT_LOG));
    if (exitedByItself !== undefined) {
      throw new LocalBrokerError(
        'KAFKA_BROKER_EXITED',
        `the Kafka broker exited with ${describeExit(exitedByItself.code, exitedByItself.signal)} before it answered on ${brokers}; log tail:\n${tail}`,
        { cause: error },
      );
    }
    throw new LocalBrokerError(
      'KAFKA_BROKER_NOT_READY',
      `the Kafka broker did not answer on ${brokers} within ${formatDuration(readyTimeoutMs)} (${errorMessage(error)}); log tail:\n${tail}`,
      { cause: error },
    );
  }

  // The broker outlives this process when nobody calls stop(): that is what `kafka up` wants.
  child.unref();

  let stopping: Promise<void> | undefined;
  return {
    port,
    brokers,
    pid,
    clusterId,
    dataDir,
    logFile,
    stop: () => (stopping ??= stopPid(pid, dataDir)),
  };
}

/** Stops the broker recorded in dataDir/broker.pid. Resolves false when none was running. */
export async function stopLocalBroker(dataDir: string): Promise<boolean> {
  const dir = resolve(dataDir);
  const status = await brokerStatus(dir);
  if (!status.running) {
    if (status.stalePid !== undefined) await rm(join(dir, PID_FILE), { force: true });
    return false;
  }
  await stopPid(status.pid, dir);
  return true;
}

/**
 * Whether a broker runs from dataDir, judged by the pid file and (on Linux) by the process's
 * command line, so a recycled pid belonging to another program is not taken for the broker.
 */
export async function brokerStatus(dataDir: string): Promise<LocalBrokerStatus> {
  const dir = resolve(dataDir);
  const pid = await readPidFile(dir);
  if (pid === undefined) return { running: false, dataDir: dir, stalePid: undefined };
  if (!isBrokerProcess(pid, dir)) return { running: false, dataDir: dir, stalePid: pid };
  const port = await readConfiguredPort(dir);
  return {
    running: true,
    dataDir: dir,
    pid,
    port,
    brokers: port === undefined ? undefined : `${HOST}:${port}`,
  };
}

// ---------------------------------------------------------------------------------------

function renderServerProperties(p: {
  port: number;
  controllerPort: number;
  logDirs: string;
  extra: Readonly<Record<string, string | number | boolean>>;
}): string {
  const entries: Record<string, string | number | boolean> = {
    'process.roles': 'broker,controller',
    'node.id': NODE_ID,
    'controller.quorum.voters': `${NODE_ID}@${HOST}:${p.controllerPort}`,
    listeners: `PLAINTEXT://${HOST}:${p.port},CONTROLLER://${HOST}:${p.controllerPort}`,
    'advertised.listeners': `PLAINTEXT://${HOST}:${p.port}`,
    'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'inter.broker.listener.name': 'PLAINTEXT',
    'controller.listener.names': 'CONTROLLER',
    'log.dirs': p.logDirs,
    // One node: internal topics cannot have more replicas than that.
    'offsets.topic.replication.factor': 1,
    'transaction.state.log.replication.factor': 1,
    'transaction.state.log.min.isr': 1,
    // Tests start consumer groups constantly; the default 3 s delay would be added to each.
    'group.initial.rebalance.delay.ms': 0,
    'num.partitions': 1,
    // Topics are made on purpose (with their partition count), never by a typo in a producer.
    'auto.create.topics.enable': false,
    // Sized for a 2-core machine; Kafka's defaults (3 network, 8 I/O threads) assume a server.
    'num.network.threads': 2,
    'num.io.threads': 4,
    'num.recovery.threads.per.data.dir': 1,
  };
  const lines = ['# Written by src/kafka/local-broker.ts on every start; edits are overwritten.'];
  for (const [key, value] of Object.entries({ ...entries, ...p.extra })) {
    lines.push(`${key}=${escapePropertyValue(String(value))}`);
  }
  return `${lines.join('\n')}\n`;
}

function renderLog4jProperties(logFile: string): string {
  return [
    '# Written by src/kafka/local-broker.ts: the broker logs to a file, never to stdout.',
    'log4j.rootLogger=INFO, file',
    'log4j.appender.file=org.apache.log4j.RollingFileAppender',
    `log4j.appender.file.File=${escapePropertyValue(logFile)}`,
    'log4j.appender.file.MaxFileSize=20MB',
    'log4j.appender.file.MaxBackupIndex=2',
    'log4j.appender.file.layout=org.apache.log4j.PatternLayout',
    'log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n',
    // The loggers Kafka's own log4j.properties keeps out of the main log.
    'log4j.logger.kafka.request.logger=WARN',
    'log4j.logger.state.change.logger=WARN',
    'log4j.logger.kafka.authorizer.logger=WARN',
    'log4j.logger.org.apache.kafka.raft=WARN',
    '',
  ].join('\n');
}

/** java.util.Properties syntax: backslashes escape, leading blanks are dropped. */
function escapePropertyValue(value: string): string {
  if (/[\r\n]/.test(value))
    throw new LocalBrokerError(
      'KAFKA_INVALID_OPTION',
      `a property value contains a line break: ${JSON.stringify(value)}`,
    );
  return value.replace(/\\/g, '\\\\').replace(/^ /, '\\ ');
}

/**
 * A KRaft cluster id is a Uuid in URL-safe base64 without padding (what
 * `kafka.tools.StorageTool random-uuid` prints); made here to save a JVM start. Kafka's own
 * generator also skips ids starting with '-', which command lines mistake for options.
 */
function randomClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

async function formatStorage(p: {
  javaPath: string;
  classpath: string;
  log4jProperties: string;
  serverProperties: string;
  logDirs: string;
}): Promise<void> {
  const result = await run(p.javaPath, [
    '-Xmx256m',
    `-Dlog4j.configuration=${pathToFileURL(p.log4jProperties).href}`,
    '-cp',
    p.classpath,
    'kafka.tools.StorageTool',
    'format',
    '-t',
    randomClusterId(),
    '-c',
    p.serverProperties,
  ]);
  if (result.spawnError !== undefined) throw javaNotFound(p.javaPath, result.spawnError);
  if (result.code !== 0 || !existsSync(join(p.logDirs, 'meta.properties'))) {
    throw new LocalBrokerError(
      'KAFKA_FORMAT_FAILED',
      `kafka.tools.StorageTool format exited with ${describeExit(result.code, result.signal)}:\n${lastLines(`${result.stdout}\n${result.stderr}`, 30)}`,
    );
  }
}

function readClusterId(logDirs: string): string {
  const text = readFileSync(join(logDirs, 'meta.properties'), 'utf8');
  const match = /^cluster\.id=(.+)$/m.exec(text);
  const id = match?.[1]?.trim();
  if (id === undefined || id === '') {
    throw new LocalBrokerError(
      'KAFKA_FORMAT_FAILED',
      `${join(logDirs, 'meta.properties')} names no cluster.id`,
    );
  }
  return id;
}

async function spawnBroker(p: {
  javaPath: string;
  args: string[];
  dataDir: string;
}): Promise<ChildProcess> {
  // Appended, not truncated: the output of an earlier crash stays readable after a restart.
  const out = openSync(join(p.dataDir, STDOUT_LOG), 'a');
  try {
    const child = spawn(p.javaPath, p.args, {
      cwd: p.dataDir,
      // Own process group: Ctrl-C in the terminal that ran `kafka up` does not reach the broker,
      // and stop() can signal the whole group.
      detached: true,
      stdio: ['ignore', out, out],
    });
    await new Promise<void>((resolvePromise, reject) => {
      child.once('spawn', resolvePromise);
      child.once('error', reject);
    }).catch((error: unknown) => {
      throw javaNotFound(p.javaPath, error);
    });
    return child;
  } finally {
    closeSync(out);
  }
}

async function waitUntilReady(p: {
  brokers: string;
  clusterId: string;
  timeoutMs: number;
  hasExited: () => unknown;
}): Promise<void> {
  const kafka = new Kafka({
    clientId: 'chargestream-local-broker-probe',
    brokers: [p.brokers],
    // Refused connections are expected while the JVM starts; they are not worth a log line.
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1_000,
    requestTimeout: 3_000,
    retry: { retries: 0 },
  });
  const deadline = Date.now() + p.timeoutMs;
  let lastError = 'no answer yet';
  for (;;) {
    if (p.hasExited() !== undefined) throw new Error('the broker process exited');
    let foreignClusterId: string | undefined;
    const admin = kafka.admin({ retry: { retries: 0 } });
    try {
      await admin.connect();
      const cluster = await admin.describeCluster();
      if (cluster.clusterId !== p.clusterId) foreignClusterId = cluster.clusterId;
      else if (cluster.brokers.some((b) => b.nodeId === NODE_ID)) return;
      else lastError = 'describeCluster lists no broker yet';
    } catch (error) {
      lastError = errorMessage(error);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
    if (foreignClusterId !== undefined) {
      // Another broker answers on this port: waiting longer would not change that.
      throw new Error(
        `${p.brokers} answers with cluster id ${foreignClusterId}, not ${p.clusterId}`,
      );
    }
    if (Date.now() >= deadline) throw new Error(`last error: ${lastError}`);
    await sleep(250);
  }
}

/** SIGTERM to the broker's process group, SIGKILL after STOP_GRACE_MS, then the pid file goes. */
async function stopPid(pid: number, dataDir: string): Promise<void> {
  if (isAlive(pid)) {
    signalGroup(pid, 'SIGTERM');
    if (!(await waitForExit(pid, STOP_GRACE_MS))) {
      signalGroup(pid, 'SIGKILL');
      if (!(await waitForExit(pid, KILL_WAIT_MS))) {
        throw new LocalBrokerError(
          'KAFKA_STOP_FAILED',
          `the Kafka broker (pid ${pid}) is still alive after SIGTERM and SIGKILL`,
        );
      }
    }
  }
  if ((await readPidFile(dataDir)) === pid) await rm(join(dataDir, PID_FILE), { force: true });
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Not a group leader (started some other way) or already gone: signal the process alone.
    try {
      process.kill(pid, signal);
    } catch {
      // gone
    }
  }
}

async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await sleep(100);
  }
  return !isAlive(pid);
}

/** A zombie (exited, not yet reaped by its parent) counts as gone. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return true; // no /proc (macOS): kill(pid, 0) is all we know
  }
}

function isBrokerProcess(pid: number, dataDir: string): boolean {
  if (!isAlive(pid)) return false;
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return true; // no /proc: trust the pid file
  }
  const args = cmdline.split('\0');
  return args.includes('kafka.Kafka') && args.includes(join(dataDir, SERVER_PROPERTIES));
}

async function readPidFile(dataDir: string): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile(join(dataDir, PID_FILE), 'utf8');
  } catch {
    return undefined;
  }
  const pid = Number.parseInt(text.trim(), 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

async function readConfiguredPort(dataDir: string): Promise<number | undefined> {
  try {
    const text = await readFile(join(dataDir, SERVER_PROPERTIES), 'utf8');
    const match = /^advertised\.listeners=PLAINTEXT:\/\/[^:]+:(\d+)/m.exec(text);
    return match?.[1] === undefined ? undefined : Number(match[1]);
  } catch {
    return undefined;
  }
}

function checkPort(name: string, port: number): void {
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new LocalBrokerError(
      'KAFKA_INVALID_OPTION',
      `${name} must be an integer from 1 to 65535, got ${port}`,
    );
  }
}

async function assertPortFree(port: number): Promise<void> {
  await new Promise<void>((resolvePromise, reject) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) => {
      reject(
        error.code === 'EADDRINUSE'
          ? new LocalBrokerError(
              'KAFKA_PORT_IN_USE',
              `${HOST}:${port} is already in use; choose another port`,
            )
          : error,
      );
    });
    server.listen({ host: HOST, port, exclusive: true }, () =>
      server.close(() => resolvePromise()),
    );
  });
}

function javaNotFound(javaPath: string, cause: unknown): LocalBrokerError {
  return new LocalBrokerError(
    'KAFKA_JAVA_NOT_FOUND',
    `cannot run ${javaPath} (${errorMessage(cause)}); install a JDK 17+ (Debian: apt-get install openjdk-17-jre-headless) or pass javaPath`,
    { cause },
  );
}

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  spawnError: Error | undefined;
}

function run(command: string, args: string[]): Promise<RunResult> {
  return new Promise((resolvePromise) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', (error) =>
      resolvePromise({ code: null, signal: null, stdout, stderr, spawnError: error }),
    );
    child.once('close', (code, signal) =>
      resolvePromise({ code, signal, stdout, stderr, spawnError: undefined }),
    );
  });
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal === null ? `code ${code}` : `signal ${signal}`;
}

function lastLines(text: string, count: number): string {
  return text.trimEnd().split('\n').slice(-count).join('\n');
}

/**
 * What a person needs to see when the broker failed: the ERROR and FATAL lines (the cause;
 * a broker that fails shuts down politely and logs a screenful of INFO after it), then the
 * last lines of each file. Never throws.
 */
function logTail(...files: string[]): string {
  const parts: string[] = [];
  for (const file of files) {
    let lines: string[];
    try {
      // The broker logs its whole configuration at start ("\tkey = value", ~400 lines),
      // which says nothing about why it failed.
      lines = readTailBytes(file, 262_144)
        .split('\n')
        .filter((line) => !/^\t[\w.-]+ = /.test(line));
    } catch {
      continue; // missing or unreadable: nothing to show
    }
    // Each ERROR line with the exception line under it, which holds the actual reason
    // ("Socket server failed to bind to 127.0.0.1:9092: Address already in use").
    const errors: string[] = [];
    lines.forEach((line, i) => {
      if (!/^\[[^\]]+\] (ERROR|FATAL) /.test(line)) return;
      errors.push(line);
      const next = lines[i + 1];
      if (next !== undefined && /^[\w.$]+(Exception|Error)\b/.test(next)) errors.push(`  ${next}`);
    });
    const last = lines.join('\n').trimEnd().split('\n').slice(-15);
    if (errors.length > 0) parts.push(`--- ${file} (errors)\n${errors.slice(-16).join('\n')}`);
    if (last.join('').trim() !== '') parts.push(`--- ${file} (last lines)\n${last.join('\n')}`);
  }
  return parts.length === 0 ? '(no log output)' : parts.join('\n');
}

function readTailBytes(file: string, bytes: number): string {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const buffer = Buffer.alloc(Math.min(size, bytes));
    readSync(fd, buffer, 0, buffer.length, size - buffer.length);
    return buffer.toString('utf8');
  } finally {
    closeSync(fd);
  }
}

function formatDuration(ms: number): string {
  return ms < 10_000 ? `${ms} ms` : `${Math.round(ms / 1000)} s`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolvePromise) => setTimeout(resolvePromise, ms));
}
