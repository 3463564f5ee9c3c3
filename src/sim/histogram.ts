/**
 * A latency histogram with buckets 2 % wide from 1 µs to about 2 h: constant memory however
 * many calls are measured, and mergeable across simulator processes by adding counts (a
 * percentile read from it is at most 2 % above the true value).
 */
const GROWTH = 1.02;
const LOG_GROWTH = Math.log(GROWTH);
const BUCKETS = Math.ceil(Math.log(1e10) / LOG_GROWTH) + 1;

export class Histogram {
  readonly counts: Uint32Array;
  count = 0;
  maxUs = 0;

  constructor() {
    this.counts = new Uint32Array(BUCKETS);
  }

  /** One measurement, in milliseconds. */
  record(ms: number): void {
    const us = Math.max(1, ms * 1000);
    const bucket = Math.min(BUCKETS - 1, Math.ceil(Math.log(us) / LOG_GROWTH));
    this.counts[bucket]! += 1;
    this.count += 1;
    if (us > this.maxUs) this.maxUs = us;
  }

  /** The q-quantile (0–1) in milliseconds: the upper bound of its bucket, at most the max. */
  percentile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(GROWTH ** i, this.maxUs) / 1000;
    }
    return this.maxUs / 1000;
  }

  /** Sparse form for JSON and IPC: [bucket, count] pairs and the max. */
  toJSON(): { buckets: Array<[number, number]>; maxUs: number } {
    const buckets: Array<[number, number]> = [];
    for (let i = 0; i < BUCKETS; i++) if (this.counts[i]! > 0) buckets.push([i, this.counts[i]!]);
    return { buckets, maxUs: this.maxUs };
  }

  static fromJSON(json: { buckets: Array<[number, number]>; maxUs: number }): Histogram {
    const h = new Histogram();
    h.merge(json);
    return h;
  }

  merge(json: { buckets: Array<[number, number]>; maxUs: number }): void {
    for (const [i, n] of json.buckets) {
      if (i < 0 || i >= BUCKETS) continue;
      this.counts[i]! += n;
      this.count += n;
    }
    if (json.maxUs > this.maxUs) this.maxUs = json.maxUs;
  }
}

/** Percentiles of a histogram in ms, rounded to µs, for reports. */
export function summary(h: Histogram): {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
} {
  const r = (ms: number) => Math.round(ms * 1000) / 1000;
  return {
    count: h.count,
    p50: r(h.percentile(0.5)),
    p90: r(h.percentile(0.9)),
    p99: r(h.percentile(0.99)),
    p999: r(h.percentile(0.999)),
    max: r(h.maxUs / 1000),
  };
}
