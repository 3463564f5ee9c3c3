import { appendFileSync } from 'node:fs';
import { basename } from 'node:path';
import { expect } from 'vitest';

/**
 * Where the reliability tests leave their figures for the summary reporter: one JSON line per
 * figure. The config sets the path for the run (vitest.config.ts); a test run outside it
 * (the variable unset) only prints.
 */
export const FIGURES_ENV = 'CHARGESTREAM_FIGURES';

export interface Figure {
  readonly scenario: number;
  readonly figure: string;
  readonly value: number | string;
  readonly file: string;
}

/** Prints a scenario's figure and records it for the end-of-run summary. */
export function recordFigure(scenario: number, figure: string, value: number | string): void {
  const path = expect.getState().testPath;
  const line: Figure = {
    scenario,
    figure,
    value,
    file: path === undefined ? '' : basename(path),
  };
  console.log(`scenario ${scenario}: ${figure} = ${value}`);
  const file = process.env[FIGURES_ENV];
  if (file !== undefined && file !== '') appendFileSync(file, JSON.stringify(line) + '\n');
}

/**
 * Reduced sizes in CI (CI=true), full sizes otherwise: `sized(500, 3000)`. The long runs with
 * random faults are the soak's (`npm run soak`).
 */
export function sized(ci: number, full: number): number {
  return process.env['CI'] === 'true' ? ci : full;
}
