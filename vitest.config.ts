import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

/**
 * One config; TEST_SET picks the suite (unit, integration, e2e, reliability) and fails on an
 * unknown value. Unset runs everything. e2e and reliability tests run the built engine
 * (`npm test` builds first).
 */
const SETS: Record<string, string[]> = {
  unit: ['test/unit/**/*.test.ts'],
  integration: ['test/integration/**/*.test.ts'],
  e2e: ['test/e2e/**/*.test.ts'],
  // reliability.md scenarios 1–17 against real processes; each test records its figure.
  reliability: ['test/reliability/**/*.test.ts'],
};
const set = process.env['TEST_SET'];
if (set !== undefined && set !== '' && SETS[set] === undefined) {
  throw new Error(`TEST_SET must be one of ${Object.keys(SETS).join(', ')}; got "${set}"`);
}

// The reliability tests append their figures here; the summary reporter prints them at the end.
const figures = (process.env['CHARGESTREAM_FIGURES'] ??= join(
  tmpdir(),
  `chargestream-figures-${process.pid}.jsonl`,
));

export default defineConfig({
  test: {
    include: set ? SETS[set] : Object.values(SETS).flat(),
    // A real Kafka broker for the suites that talk to one.
    globalSetup: set === 'unit' ? [] : ['./test/helpers/kafka-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    pool: 'forks',
    env: { CHARGESTREAM_FIGURES: figures },
    reporters: ['default', './test/helpers/summary-reporter.ts'],
  },
});
