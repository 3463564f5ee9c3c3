import {
  collectDefaultMetrics,
  Counter,
  Gauge,
  Histogram,
  Registry,
  type Metric,
} from 'prom-client';

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

  /**
   * A histogram without labels for a value observed at every frame (the acknowledgement
   * latency): an observation is a scan of the bounds and two additions. prom-client's
   * Histogram hashes the label set and makes a closure at each one, about 1.8 % of the event
   * loop's time at the closed-loop maximum (bench/RESULTS.md). Exposed as a histogram.
   */
  plainHistogram(name: string, help: string, buckets: readonly number[]): PlainHistogram {
    const histogram = new PlainHistogram(name, help, buckets);
    this.registry.registerMetric(histogram as unknown as Metric);
    return histogram;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}

interface HistogramValue {
  readonly metricName: string;
  readonly labels: Readonly<Record<string, string | number>>;
  readonly value: number;
}

/**
 * Counts by bucket, a sum and a count; read by the registry as prom-client reads its own
 * histograms (cumulative `_bucket` series with `le`, then `_sum` and `_count`).
 */
export class PlainHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram' as const;
  readonly aggregator = 'sum' as const;
  readonly #bounds: Float64Array;
  /** Observations by bucket, not cumulative; the last is +Inf. */
  readonly #counts: Float64Array;
  #sum = 0;
  #count = 0;

  constructor(name: string, help: string, buckets: readonly number[]) {
    this.name = name;
    this.help = help;
    this.#bounds = Float64Array.from([...buckets].sort((a, b) => a - b));
    this.#counts = new Float64Array(this.#bounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.#counts[i]! += 1;
    this.#sum += value;
    this.#count += 1;
  }

  reset(): void {
    this.#counts.fill(0);
    this.#sum = 0;
    this.#count = 0;
  }

  /** What prom-client's registry reads of a metric (its own metrics' `get()`). */
  get(): Promise<{
    name: string;
    help: string;
    type: 'histogram';
    aggregator: 'sum';
    values: HistogramValue[];
  }> {
    const values: HistogramValue[] = [];
    let cumulative = 0;
    for (let i = 0; i < this.#counts.length; i++) {
      cumulative += this.#counts[i]!;
      values.push({
        metricName: `${this.name}_bucket`,
        labels: { le: i < this.#bounds.length ? this.#bounds[i]! : '+Inf' },
        value: cumulative,
      });
    }
    values.push({ metricName: `${this.name}_sum`, labels: {}, value: this.#sum });
    values.push({ metricName: `${this.name}_count`, labels: {}, value: this.#count });
    return Promise.resolve({
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values,
    });
  }
}
