import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');

/**
 * A charger in a process of its own (the `ws` package, plain JavaScript), so that a test can
 * SIGSTOP it: its TCP connection stays up — the kernel keeps acknowledging segments — while
 * nothing answers a ping or a CALL, which is what a hung charger or a dead NAT looks like to
 * the engine. It answers the engine's CALLs with `{status: 'Accepted'}` and prints them.
 */
const SCRIPT = `
import WebSocket from 'ws';
const [url, password] = process.argv.slice(1);
const id = decodeURIComponent(url.slice(url.lastIndexOf('/') + 1));
const headers = password ? { Authorization: 'Basic ' + Buffer.from(id + ':' + password).toString('base64') } : {};
const ws = new WebSocket(url, ['ocpp1.6'], { headers });
ws.on('open', () => console.log('open'));
ws.on('unexpected-response', (_q, res) => { console.log('refused ' + res.statusCode); process.exit(3); });
ws.on('message', (data) => {
  const frame = JSON.parse(data.toString());
  if (frame[0] !== 2) return;
  console.log('call ' + frame[2]);
  ws.send(JSON.stringify([3, frame[1], { status: 'Accepted' }]));
});
ws.on('close', (code) => { console.log('closed ' + code); process.exit(0); });
`;

export interface ChargerProcess {
  readonly process: ChildProcess;
  /** Lines the charger printed: `open`, `call <action>`, `closed <code>`. */
  lines(): string[];
  kill(): void;
}

/** Starts the charger process and resolves once its WebSocket is open. */
export async function startChargerProcess(url: string, password = ''): Promise<ChargerProcess> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', SCRIPT, url, password], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`charger process did not open: ${out}`)),
      20_000,
    );
    child.stdout.on('data', () => {
      if (out.includes('open')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`charger process exited ${code}: ${out}`));
    });
  });
  return {
    process: child,
    lines: () => out.split('\n').filter((l) => l !== ''),
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}
