import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Label values and the value of one series. */
export type Series = Iterable<readonly [labels: Readonly<Record<string, string>>, value: number]>;

/** A live value: one number, or one number per label set. */
export type Reading = () => number | Series;

/**
 * Running totals keyed by one label value. The hot path adds to a plain map; Prometheus reads
 * it when it scrapes, so nothing is formatted or hashed per frame.
 */
export class Tally extends Map<string, number> {
  add(key: string, n = 1): void {
    this.set(key, (this.get(key) ?? 0) + n);
  }

  addAll(counts: Readonly<Record<string, number>>): void {
    for (const key in counts) this.add(key, counts[key]);
  }

  /** The tally as series of one label. */
  by(label: string): Series {
    return [...this].map(([value, n]) => [{ [label]: value }, n] as const);
  }
}

/** Seconds, from 1 ms to 10 s: ack latency, task and insert durations. */
export const LATENCY_BUCKETS_S = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/**
 * The engine's Prometheus registry: process metrics (`chargestream_process_*`,
 * `chargestream_nodejs_*`) and the stages' metrics. Counters and gauges read the stages' own
 * numbers at scrape time, so the hot path only increments plain numbers; histograms are
 * observed where the latency is measured.
 */
export class Metrics {
  readonly registry = new Registry();

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'chargestream_' });
  }

  /** A counter whose value is a running total kept by its stage. */
  counter(name: string, help: string, read: Reading, labelNames: readonly string[] = []): void {
    new Counter({
      name,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        this.reset();
        const value = read();
        if (typeof value === 'number') this.inc(value);
        else for (const [labels, n] of value) this.inc(labels, n);
      },
    });
  }

  /** A gauge read from a live value. */
  gauge(name: string, help: string, read: Reading, labelNames: readonly string[] = []): void {
    new Gauge({
      name,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        this.reset();
        const value = read();
        if (typeof value === 'number') this.set(value);
        else for (const [labels, n] of value) this.set(labels, n);
      },
    });
  }

  histogram<L extends string = never>(
    name: string,
    help: string,
    buckets: readonly number[],
    labelNames: readonly L[] = [],
  ): Histogram<L> {
    return new Histogram<L>({
      name,
      help,
      buckets: [...buckets],
      labelNames,
      registers: [this.registry],
    });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
