import { describe, expect, it } from 'vitest';
import { chTime } from '../../src/lib/time.js';

describe('chTime', () => {
  it('formats epoch milliseconds and date-time text as ClickHouse DateTime64(3) text, alternating instants included', () => {
    const a = Date.parse('2026-11-29T08:00:00.123Z');
    const b = Date.parse('2026-11-29T08:00:01.000Z');
    const c = Date.parse('2026-12-31T23:59:59.999Z');
    const seen = [a, b, a, b, c, a, '2026-11-29T08:00:00.123Z', c].map(chTime);
    expect(seen).toEqual([
      '2026-11-29 08:00:00.123',
      '2026-11-29 08:00:01.000',
      '2026-11-29 08:00:00.123',
      '2026-11-29 08:00:01.000',
      '2026-12-31 23:59:59.999',
      '2026-11-29 08:00:00.123',
      '2026-11-29 08:00:00.123',
      '2026-12-31 23:59:59.999',
    ]);
  });

  it('an instant that cannot be represented becomes the epoch instead of throwing', () => {
    expect(chTime(Number.NaN)).toBe('1970-01-01 00:00:00.000');
    expect(chTime('not a time')).toBe('1970-01-01 00:00:00.000');
    expect(chTime(8.64e15 + 1)).toBe('1970-01-01 00:00:00.000');
  });
});
