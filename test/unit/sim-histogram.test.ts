import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Histogram, summary } from '../../src/sim/histogram.js';

/** The exact q-quantile (nearest rank) of the values, ms. */
function exact(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!;
}

describe('simulator latency histogram', () => {
  it('a percentile is at most 2 % above the exact one, never below it, never above the max', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0.001, max: 60_000, noNaN: true }), {
          minLength: 1,
          maxLength: 500,
        }),
        fc.constantFrom(0.5, 0.9, 0.99, 1),
        (values, q) => {
          const h = new Histogram();
          for (const v of values) h.record(v);
          const got = h.percentile(q);
          const want = exact(values, q);
          expect(got).toBeGreaterThanOrEqual(want * (1 - 1e-9));
          expect(got).toBeLessThanOrEqual(Math.max(want * 1.02, 0.001) + 1e-9);
          expect(got).toBeLessThanOrEqual(Math.max(...values) + 1e-9);
        },
      ),
    );
  });

  it('merges across processes as if every value had been recorded in one', () => {
    const a = new Histogram();
    const b = new Histogram();
    const all = new Histogram();
    for (let i = 1; i <= 1000; i++) {
      (i % 3 === 0 ? a : b).record(i / 10);
      all.record(i / 10);
    }
    const merged = Histogram.fromJSON(a.toJSON());
    merged.merge(JSON.parse(JSON.stringify(b.toJSON())) as ReturnType<Histogram['toJSON']>);
    expect(summary(merged)).toEqual(summary(all));
    expect(merged.count).toBe(1000);
  });
});
