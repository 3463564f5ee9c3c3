import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LATENCY_BUCKETS_S, Metrics } from '../../src/metrics/registry.js';

/** The lines of one metric in the registry's text, its name's lines only. */
async function linesOf(metrics: Metrics, name: string): Promise<string[]> {
  const text = await metrics.text();
  return text.split('\n').filter((line) => line.includes(name));
}

describe('plain histogram', () => {
  it("reads as prom-client's own histogram of the same observations: buckets, sum, count, help, type", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.double({ min: 0, max: 20, noNaN: true }), { maxLength: 200 }),
        fc.constantFrom(...LATENCY_BUCKETS_S),
        async (observed, onABound) => {
          const plain = new Metrics();
          const reference = new Metrics();
          const a = plain.plainHistogram('x_seconds', 'help text', LATENCY_BUCKETS_S);
          const b = reference.histogram('x_seconds', 'help text', LATENCY_BUCKETS_S);
          // A value equal to a bound belongs to that bound's bucket (le).
          for (const v of [...observed, onABound]) {
            a.observe(v);
            b.observe(v);
          }
          expect(await linesOf(plain, 'x_seconds')).toEqual(await linesOf(reference, 'x_seconds'));
        },
      ),
      { numRuns: 50 },
    );
  });

  it('starts again from zero when the registry resets its metrics', async () => {
    const metrics = new Metrics();
    const h = metrics.plainHistogram('y_seconds', 'help', [0.1, 1]);
    h.observe(0.05);
    h.observe(5);
    expect(await linesOf(metrics, 'y_seconds_count')).toEqual(['y_seconds_count 2']);
    expect(await linesOf(metrics, 'y_seconds_bucket')).toEqual([
      'y_seconds_bucket{le="0.1"} 1',
      'y_seconds_bucket{le="1"} 1',
      'y_seconds_bucket{le="+Inf"} 2',
    ]);
    metrics.registry.resetMetrics();
    h.observe(0.5);
    expect(await linesOf(metrics, 'y_seconds_bucket')).toEqual([
      'y_seconds_bucket{le="0.1"} 0',
      'y_seconds_bucket{le="1"} 1',
      'y_seconds_bucket{le="+Inf"} 1',
    ]);
    expect(await linesOf(metrics, 'y_seconds_sum')).toEqual(['y_seconds_sum 0.5']);
  });
});
