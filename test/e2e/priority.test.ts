import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { aNetwork } from '../helpers/builders.js';
import {
  eventually,
  startEngine,
  tempDir,
  writeNetwork,
  type RunningEngine,
} from '../helpers/engine.js';

interface Thread {
  readonly tid: number;
  readonly name: string;
  readonly nice: number;
}

/** The process's threads: name and nice value (the 19th field of stat, after the name). */
function threadsOf(pid: number): Thread[] {
  const threads: Thread[] = [];
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${task}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      threads.push({
        tid: Number(task),
        name: readFileSync(`/proc/${pid}/task/${task}/comm`, 'utf8').trim(),
        nice: Number(fields[16]),
      });
    } catch {
      // The thread ended meanwhile.
    }
  }
  return threads;
}

const engines: RunningEngine[] = [];
afterAll(async () => {
  await Promise.all(engines.map((e) => e.stop()));
});

async function started(extraArgs: string[] = []): Promise<number> {
  const dir = tempDir();
  const engine = await startEngine({
    config: writeNetwork(dir, aNetwork()),
    dataDir: join(dir, 'data'),
    extraArgs,
  });
  engines.push(engine);
  return engine.process.pid!;
}

/** A native thread: one Node did not start (chDB's), which the engine lowers. */
const isNative = (t: Thread) => t.name !== 'node' && !t.name.startsWith('libuv');

/**
 * The nice values of the event loop and of the store's native threads, and how many other
 * `node` threads (worker threads; V8's helpers keep theirs) are at `nice`, once there are
 * store threads, all lowered (at start and every few seconds), and a worker thread has
 * lowered itself (as it starts); else the probe times out and the test fails.
 */
async function priorities(pid: number, nice: number) {
  const summary = (threads: Thread[]) => {
    const native = threads.filter(isNative);
    return {
      eventLoop: threads.find((t) => t.tid === pid)?.nice,
      native: [...new Set(native.map((t) => t.nice))],
      lowered: threads.filter((t) => t.name === 'node' && t.tid !== pid && t.nice === nice).length,
    };
  };
  return eventually(
    () => Promise.resolve(summary(threadsOf(pid))),
    (p) => p.native.length === 1 && p.native[0] === nice && p.lowered > 0,
    20_000,
  );
}

/**
 * The engine's background threads run below the gateway's event loop (`--background-nice`,
 * README "Background threads"): the worker threads lower themselves, the store's native
 * threads are lowered by the engine; the event loop keeps its priority. Read from the running
 * process's threads in /proc (Linux).
 */
describe('thread priorities', () => {
  it('by default the worker threads and the store’s threads run at nice 10, the event loop at 0', async () => {
    const p = await priorities(await started(), 10);
    expect(p.eventLoop).toBe(0);
    expect(p.native).toEqual([10]);
    // The worker threads lower themselves (one or more: --workers, by default cores − 1).
    expect(p.lowered).toBeGreaterThanOrEqual(1);
  });

  it('--background-nice sets another value', async () => {
    const p = await priorities(await started(['--background-nice', '7']), 7);
    expect(p.eventLoop).toBe(0);
    expect(p.native).toEqual([7]);
    expect(p.lowered).toBeGreaterThanOrEqual(1);
  });
});
