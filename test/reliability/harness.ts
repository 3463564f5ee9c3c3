import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { CLI, type RunningEngine } from '../helpers/engine.js';

/** Small tools the reliability tests share: raw sockets, metrics, the stand-in store server. */

/** A raw `ws` connection to a charger's endpoint; rejects with the HTTP status on refusal. */
export function openSocket(
  url: string,
  options: WebSocket.ClientOptions & { protocols?: string[] } = {},
): Promise<WebSocket> {
  const { protocols = ['ocpp1.6'], ...rest } = options;
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, rest);
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => reject(new Error(String(res.statusCode))));
    ws.once('error', reject);
  });
}

/**
 * Connects again after a cut link, as a charger does: a charger without credentials is
 * refused (409) while the gateway still holds its old socket, so a refused upgrade is tried
 * again after a short back-off until `withinMs` has passed. Any other refusal rejects at once.
 */
export async function reconnect(
  url: string,
  options: WebSocket.ClientOptions & { protocols?: string[] } = {},
  withinMs = 5_000,
): Promise<WebSocket> {
  const until = Date.now() + withinMs;
  for (let backOffMs = 10; ; backOffMs = Math.min(backOffMs * 2, 200)) {
    try {
      return await openSocket(url, options);
    } catch (error) {
      if ((error as Error).message !== '409' || Date.now() > until) throw error;
      await new Promise((r) => setTimeout(r, backOffMs));
    }
  }
}

/** Sends a CALL and resolves with the answer frame carrying its id. */
export function callRaw(
  ws: WebSocket,
  id: string,
  action: string,
  payload: object,
  timeoutMs = 30_000,
): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.off('message', onMessage);
      reject(new Error(`no answer to ${action} ${id}`));
    }, timeoutMs);
    const onMessage = (data: Buffer) => {
      const frame = JSON.parse(data.toString()) as unknown[];
      if (frame[1] !== id || frame[0] === 2) return;
      clearTimeout(timer);
      ws.off('message', onMessage);
      resolve(frame);
    };
    ws.on('message', onMessage);
    ws.send(JSON.stringify([2, id, action, payload]));
  });
}

/**
 * Cuts the TCP connection under a WebSocket without a close frame: the socket is destroyed
 * at once, as when a charger loses power or its modem drops the link.
 */
export function cutSocket(ws: WebSocket): void {
  (ws as unknown as { _socket: { destroy(): void } })._socket.destroy();
}

/** The q-quantile of a list of numbers (0 for none). */
export function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

/** Resident memory of a process in KiB (Linux). */
export function rssKiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
}

/** Sum of one metric's series in an engine's /metrics (0 when absent). */
export async function metricSum(engine: RunningEngine, name: string): Promise<number> {
  const text = await (await fetch(`${engine.apiUrl}/metrics`)).text();
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm')))
    sum += Number(m[1]);
  return sum;
}

/** Node prints its version after the stack of an uncaught exception or rejection. */
export function crashesIn(output: string): number {
  return (output.match(/^Node\.js v\d/gm) ?? []).length;
}

export interface StoreServer {
  readonly url: string;
  readonly port: number;
  readonly process: ChildProcess;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** `chargestream store-server` as a child process (port 0: any free one). */
export async function startStoreServer(dataDir: string, port = 0): Promise<StoreServer> {
  const child = spawn(
    process.execPath,
    [CLI, 'store-server', '--data', dataDir, '--port', String(port)],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`store-server did not start: ${out}`)), 60_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /store server: (http:\/\/[\d.]+:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`store-server exited ${code}: ${out}`));
    });
  });
  return {
    url,
    port: Number(new URL(url).port),
    process: child,
    stop: (signal: NodeJS.Signals = 'SIGKILL') =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.removeAllListeners('exit');
        child.once('exit', () => resolve());
        child.kill(signal);
      }),
  };
}
