import { readdirSync, readFileSync } from 'node:fs';
import { setPriority } from 'node:os';

/**
 * Scheduling priority of the engine's background threads. The gateway's event loop answers
 * chargers; the worker threads (rating) and the store's native threads (chDB: inserts,
 * merges) do work that may wait. On a machine whose cores are busy the kernel otherwise
 * shares them evenly, and an acknowledgement waits behind a merge. On Linux the nice value is
 * a property of each thread, so a thread can be lowered alone; elsewhere this does nothing.
 */

/** Lowers the calling thread to `nice` (0: unchanged). */
export function lowerThisThread(nice: number): void {
  if (nice === 0 || process.platform !== 'linux') return;
  try {
    setPriority(0, nice);
  } catch {
    // Not permitted here: the thread keeps its priority.
  }
}

const lowered = new Set<number>();

/**
 * Lowers this process's native threads — those Node did not start, i.e. not named `node`
 * (the event loop, the worker threads, which lower themselves, V8's helpers and libuv's pool,
 * which runs chDB's calls and prepares the log's segments, keep theirs: lowering those too
 * made no measurable difference, bench/RESULTS.md). Threads a pool starts later inherit the
 * priority of the thread that starts them, so this is repeated now and then.
 */
export function lowerNativeThreads(nice: number): number {
  if (nice === 0 || process.platform !== 'linux') return 0;
  let count = 0;
  let tasks: string[];
  try {
    tasks = readdirSync('/proc/self/task');
  } catch {
    return 0;
  }
  for (const task of tasks) {
    const tid = Number(task);
    if (lowered.has(tid)) continue;
    try {
      const name = readFileSync(`/proc/self/task/${task}/comm`, 'utf8').trim();
      if (name === 'node' || name.startsWith('libuv')) continue;
      setPriority(tid, nice);
      lowered.add(tid);
      count += 1;
    } catch {
      // The thread ended meanwhile, or this is not permitted: leave it.
    }
  }
  return count;
}
