import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll } from 'vitest';
import { ENGINE_NODE_FLAGS } from '../../src/lib/engine-flags.js';

const ROOT = join(import.meta.dirname, '..', '..');
export const CLI = join(ROOT, 'dist', 'src', 'cli.js');
/** How long a test waits for the engine to stop before it kills it. */
const STOP_WAIT_MS = 75_000;

/** The line the engine prints when it listens; a processor-only process has no OCPP part. */
const LISTENING =
  /listening \(\w+\): (?:OCPP (wss?):\/\/([\d.]+:\d+)\/ocpp\/\{chargerId\}\s+)?API http:\/\/([\d.]+:\d+)/;

export interface RunningEngine {
  readonly ocppUrl: string;
  readonly apiUrl: string;
  readonly dataDir: string;
  readonly process: ChildProcess;
  output(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function tempDir(prefix = 'chargestream-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function writeNetwork(dir: string, network: unknown): string {
  const path = join(dir, 'network.yaml');
  writeFileSync(path, stringify(network));
  return path;
}

/** Starts the built engine as a child process on free ports and waits until it listens. */
export async function startEngine(options: {
  config: string;
  dataDir: string;
  extraArgs?: string[];
}): Promise<RunningEngine> {
  const child = spawn(
    process.execPath,
    [
      ...ENGINE_NODE_FLAGS,
      CLI,
      'start',
      '--config',
      options.config,
      '--data',
      options.dataDir,
      '--ocpp-port',
      '0',
      '--api-port',
      '0',
      '--host',
      '127.0.0.1',
      '--log-level',
      'warn',
      '--fsync',
      'false',
      ...(options.extraArgs ?? []),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const ports = await new Promise<{ scheme: string; ocpp: string; api: string }>(
    (resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`engine did not start:\n${output}`)), 60_000);
      const check = () => {
        const match = LISTENING.exec(output);
        if (match) {
          clearTimeout(timer);
          resolve({ scheme: match[1] ?? 'ws', ocpp: match[2] ?? '', api: match[3]! });
        }
      };
      child.stdout.on('data', check);
      child.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`engine exited with ${code}:\n${output}`));
      });
    },
  );
  return {
    ocppUrl: `${ports.scheme}://${ports.ocpp}/ocpp`,
    apiUrl: `http://${ports.api}`,
    dataDir: options.dataDir,
    process: child,
    output: () => output,
    stop: (signal: NodeJS.Signals = 'SIGTERM') =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
        child.removeAllListeners('exit');
        // The engine bounds its own stop (60 s); past that it is stuck: killed, its output shown.
        const stuck = setTimeout(() => {
          process.stderr.write(`engine did not stop in ${STOP_WAIT_MS} ms:\n${output}\n`);
          child.kill('SIGKILL');
        }, STOP_WAIT_MS);
        child.once('exit', (code) => {
          clearTimeout(stuck);
          if (code !== 0 && signal === 'SIGTERM')
            process.stderr.write(`engine stopped with ${code}:\n${output}\n`);
          resolve(code);
        });
        child.kill(signal);
      }),
  };
}

/** Runs one analyst query through the API; rows from JSONEachRow. */
export async function sql<T = Record<string, unknown>>(
  engine: RunningEngine,
  key: string,
  statement: string,
): Promise<T[]> {
  const response = await fetch(`${engine.apiUrl}/api/v1/sql`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${key}` },
    body: statement,
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`sql failed ${response.status}: ${text}`);
  return text
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as T);
}

/** Polls until `probe` returns a value that `done` accepts, or fails after the timeout. */
export async function eventually<T>(
  probe: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T = await probe();
  while (!done(last)) {
    if (Date.now() > deadline)
      throw new Error(`condition not met in ${timeoutMs} ms; last value: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 100));
    last = await probe();
  }
  return last;
}

/**
 * Starts the engine with `network` before the file's tests and stops it after them; the
 * returned object's `engine` is the running engine.
 */
export function useEngine(
  network: unknown,
  extraArgs: string[] = [],
): { readonly engine: RunningEngine } {
  let running: RunningEngine | undefined;
  beforeAll(async () => {
    const dir = tempDir();
    running = await startEngine({
      config: writeNetwork(dir, network),
      dataDir: join(dir, 'data'),
      extraArgs,
    });
  });
  afterAll(async () => {
    await running?.stop();
  });
  return {
    get engine(): RunningEngine {
      if (running === undefined) throw new Error('the engine is not started yet');
      return running;
    },
  };
}
