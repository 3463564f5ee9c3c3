import { fork } from 'node:child_process';
import { Histogram } from './histogram.js';
import { simulate, type SimOptions, type SimStats } from './simulator.js';

/** What crosses the IPC channel: the options without callbacks, the stats without classes. */
export type ChildOptions = Omit<SimOptions, 'onSession' | 'onCall'>;
type HistogramJson = ReturnType<Histogram['toJSON']>;
export type WireStats = Omit<SimStats, 'latency' | 'latencyByAction'> & {
  latency: HistogramJson;
  latencyByAction: Record<string, HistogramJson>;
};

export function toWire(stats: SimStats): WireStats {
  const byAction: Record<string, HistogramJson> = {};
  for (const [action, h] of Object.entries(stats.latencyByAction)) byAction[action] = h.toJSON();
  return { ...stats, latency: stats.latency.toJSON(), latencyByAction: byAction };
}

/**
 * Runs the simulation in `processes` child processes (a process holds at most ~19,000
 * sockets here), each with its share of the chargers, and merges what they measured. The
 * timeline's p99 per quarter second is the highest of the processes' (a bound, not a merge).
 */
export async function simulateInProcesses(
  options: ChildOptions,
  processes: number,
  onProgress?: (sessions: number) => void,
): Promise<SimStats> {
  if (processes <= 1) return simulate(options);
  const ids = options.chargerIds;
  const per = Math.ceil(ids.length / processes);
  const started = performance.now();
  const parts = Array.from({ length: processes }, (_, p) => {
    const slice = ids.slice(p * per, (p + 1) * per);
    if (slice.length === 0) return null;
    const passwords: Record<string, string> = {};
    for (const id of slice) {
      const password = options.passwords?.[id];
      if (password !== undefined) passwords[id] = password;
    }
    const child: ChildOptions = {
      ...options,
      chargerIds: slice,
      passwords,
      firstIndex: (options.firstIndex ?? 0) + p * per,
    };
    return startChild(child, onProgress);
  }).filter((part) => part !== null);
  // Every process is up before any starts: a storm (seconds after the start) is then one
  // moment for all of them, and boot times count from about the same start.
  await Promise.all(parts.map((part) => part.ready));
  for (const part of parts) part.go();
  const results = await Promise.all(parts.map((part) => part.done));
  const stats: SimStats = {
    chargers: 0,
    sessions: 0,
    acks: 0,
    readingAcks: 0,
    errors: {},
    latency: new Histogram(),
    latencyByAction: {},
    timeline: [],
    seconds: (performance.now() - started) / 1000,
    bootMs: [],
    stormBootMs: [],
    queuedOffline: 0,
    resent: 0,
    reconnects: 0,
    perCharger: options.perCharger === true ? {} : null,
  };
  const timeline = new Map<number, { acks: number; p99Ms: number }>();
  for (const part of results) {
    stats.chargers += part.chargers;
    stats.sessions += part.sessions;
    stats.acks += part.acks;
    stats.readingAcks += part.readingAcks;
    for (const [code, n] of Object.entries(part.errors))
      stats.errors[code] = (stats.errors[code] ?? 0) + n;
    stats.latency.merge(part.latency);
    for (const [action, h] of Object.entries(part.latencyByAction))
      (stats.latencyByAction[action] ??= new Histogram()).merge(h);
    stats.bootMs.push(...part.bootMs);
    stats.stormBootMs.push(...part.stormBootMs);
    stats.queuedOffline += part.queuedOffline;
    stats.resent += part.resent;
    stats.reconnects += part.reconnects;
    if (stats.perCharger !== null && part.perCharger !== null)
      Object.assign(stats.perCharger, part.perCharger);
    for (const point of part.timeline) {
      const t = timeline.get(point.second) ?? { acks: 0, p99Ms: 0 };
      t.acks += point.acks;
      t.p99Ms = Math.max(t.p99Ms, point.p99Ms);
      timeline.set(point.second, t);
    }
  }
  stats.timeline = [...timeline].sort(([a], [b]) => a - b).map(([second, t]) => ({ second, ...t }));
  return stats;
}

function startChild(
  options: ChildOptions,
  onProgress?: (sessions: number) => void,
): { ready: Promise<void>; go: () => void; done: Promise<WireStats> } {
  const child = fork(new URL('./child.js', import.meta.url), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let result: WireStats | null = null;
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  child.on('message', (raw) => {
    const message = raw as
      { kind: 'ready' } | { kind: 'sessions'; n: number } | { kind: 'done'; stats: WireStats };
    if (message.kind === 'ready') markReady();
    else if (message.kind === 'sessions') onProgress?.(message.n);
    else result = message.stats;
  });
  const done = new Promise<WireStats>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => {
      markReady();
      if (result !== null) resolve(result);
      else reject(new Error(`simulator process exited with ${code} before its report`));
    });
  });
  return { ready, go: () => child.send(options), done };
}
