import { summary } from './histogram.js';
import type { SimStats } from './simulator.js';

/** Time until a share of the values (ms after some moment) was reached, in seconds. */
function reached(values: readonly number[], q: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const at = sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
  return Math.round(at) / 1000;
}

/**
 * The simulator's JSON report: what it saw (acks/s, latency percentiles, errors by code,
 * boots and storm reconnects), and what each charger sent — readings sent and acknowledged,
 * sessions, the energy register at every start and stop — so that a run can be reconciled
 * against the store (`meter_readings`, `sessions`, `cdrs`).
 */
export function simReport(stats: SimStats, settings: Record<string, unknown>): object {
  const chargers = Object.values(stats.perCharger ?? {});
  const sum = (f: (c: (typeof chargers)[number]) => number) =>
    chargers.reduce((n, c) => n + f(c), 0);
  const expected = Number(settings['chargers'] ?? stats.chargers);
  return {
    date: new Date().toISOString(),
    settings,
    chargers: stats.chargers,
    sessions: stats.sessions,
    seconds: Math.round(stats.seconds * 100) / 100,
    acks: stats.acks,
    acksPerSecond: Math.round(stats.acks / stats.seconds),
    readingAcks: stats.readingAcks,
    readingAcksPerSecond: Math.round(stats.readingAcks / stats.seconds),
    ackLatencyMs: summary(stats.latency),
    ackLatencyMsByAction: Object.fromEntries(
      Object.entries(stats.latencyByAction)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([action, h]) => [action, summary(h)]),
    ),
    errors: stats.errors,
    boot: {
      booted: stats.bootMs.length,
      of: expected,
      // From the start of the run (all at once unless --ramp).
      seconds50: reached(stats.bootMs, 0.5),
      seconds99: reached(stats.bootMs, 0.99),
      secondsAll: reached(stats.bootMs, 1),
    },
    storm:
      settings['stormS'] == null
        ? null
        : {
            reconnected: stats.stormBootMs.length,
            seconds50: reached(stats.stormBootMs, 0.5),
            seconds99: reached(stats.stormBootMs, 0.99),
            secondsAll: reached(stats.stormBootMs, 1),
          },
    offline: {
      queued: stats.queuedOffline,
      resent: stats.resent,
      reconnects: stats.reconnects,
    },
    totals:
      stats.perCharger === null
        ? null
        : {
            readingsSent: sum((c) => c.readingsSent),
            readingsAcked: sum((c) => c.readingsAcked),
            samplesSent: sum((c) => c.samplesSent),
            faultySent: sum((c) => c.faultySent),
            sessions: sum((c) => c.sessions),
            energyWh: sum((c) => c.stops.reduce((n, s) => n + s.meterStopWh - s.meterStartWh, 0)),
          },
    timeline: stats.timeline,
    perCharger: stats.perCharger,
  };
}
