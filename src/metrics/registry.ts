import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';

/** A gauge read from a live value when Prometheus scrapes: nothing is counted twice. */
export interface Probe {
  readonly name: string;
  readonly help: string;
  readonly read: () => number;
}

/**
 * The engine's Prometheus registry: process metrics plus probes on the stages' own counters,
 * read at scrape time so the hot path only increments plain numbers.
 */
export function createRegistry(probes: readonly Probe[]): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'chargestream_' });
  for (const probe of probes) {
    new Gauge({
      name: probe.name,
      help: probe.help,
      registers: [registry],
      collect() {
        this.set(probe.read());
      },
    });
  }
  return registry;
}
