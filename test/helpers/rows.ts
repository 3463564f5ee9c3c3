import { expect } from 'vitest';
import { SESSION_COLUMNS } from '../../src/store/store.js';

/**
 * A worker's session rows (positional, SESSION_COLUMNS) as objects, one a row. The state, an
 * object in the row (sessionRowText), is given as the text the store keeps: written by
 * JSON.stringify, it is the same text again.
 */
export function sessionRows(text: string): Array<Record<string, unknown>> {
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const values = JSON.parse(line) as unknown[];
      expect(values, line).toHaveLength(SESSION_COLUMNS.length);
      return Object.fromEntries(
        values.map((v, i) => [
          SESSION_COLUMNS[i],
          SESSION_COLUMNS[i] === 'state' && typeof v === 'object' && v !== null
            ? JSON.stringify(v)
            : v,
        ]),
      ) as Record<string, unknown>;
    });
}
