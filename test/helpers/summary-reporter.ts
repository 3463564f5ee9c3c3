import { existsSync, readFileSync, rmSync } from 'node:fs';
import type { Reporter, TestModule } from 'vitest/node';

/** Where the reliability tests append their figures (test/reliability/figures.ts). */
const FIGURES_ENV = 'CHARGESTREAM_FIGURES';

interface Figure {
  readonly scenario: number;
  readonly figure: string;
  readonly value: number | string;
  readonly file: string;
}

/**
 * Ends the run with the figures the reliability scenarios recorded, one line each by scenario,
 * then one plain line, `tests: N passed, N failed, N skipped`, so that a CI reading only the
 * last lines sees the counts without parsing vitest's coloured summary.
 */
export default class SummaryReporter implements Reporter {
  onInit(): void {
    const file = process.env[FIGURES_ENV];
    if (file !== undefined && file !== '') rmSync(file, { force: true });
  }

  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failed++;
        else skipped++;
      }
    }
    process.stdout.write(figuresTable());
    process.stdout.write(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}

/** The recorded figures as a plain table, by scenario; empty when none were recorded. */
function figuresTable(): string {
  const file = process.env[FIGURES_ENV];
  if (file === undefined || file === '' || !existsSync(file)) return '';
  const figures = readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Figure)
    .sort((a, b) => a.scenario - b.scenario || a.file.localeCompare(b.file));
  rmSync(file, { force: true });
  if (figures.length === 0) return '';
  const rows = figures.map((f) => [String(f.scenario), f.figure, String(f.value), f.file]);
  const head = ['#', 'figure', 'value', 'test file'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  return [
    '',
    'reliability figures (../shared/spec/reliability.md)',
    line(head),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
    '',
  ].join('\n');
}
