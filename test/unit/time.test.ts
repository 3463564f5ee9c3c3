import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { chTime, parseInstant } from '../../src/lib/time.js';

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

  it('formats any instant as Date does, the minute kept between calls or not', () => {
    const byDate = (t: number) => new Date(t).toISOString().slice(0, 23).replace('T', ' ');
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 253_402_300_799_999 }), { minLength: 1, maxLength: 20 }),
        fc.integer({ min: 0, max: 120_000 }),
        (starts, step) => {
          // Runs of close instants (the same minute, the next) and far ones.
          for (const start of starts)
            for (const t of [start, start + step, start + 59_999, start + 1])
              if (t <= 253_402_300_799_999) expect(chTime(t)).toBe(byDate(t));
        },
      ),
    );
    expect(chTime(253_402_300_799_999)).toBe('9999-12-31 23:59:59.999');
    expect(chTime(0)).toBe('1970-01-01 00:00:00.000');
    expect(chTime(1.5)).toBe('1970-01-01 00:00:00.001');
  });
});

describe('parseInstant', () => {
  it('is Date.parse, the same text twice or alternating with others', () => {
    const texts = fc.oneof(
      fc
        .date({ min: new Date(-8.64e15), max: new Date(8.64e15), noInvalidDate: true })
        .map((d) => d.toISOString()),
      fc.constantFrom('2026-11-29T08:00:00+01:00', '2026-02-30T00:00:00Z', 'not a time', ''),
    );
    fc.assert(
      fc.property(fc.array(texts, { minLength: 1, maxLength: 6 }), (list) => {
        for (const text of [...list, ...list]) expect(parseInstant(text)).toBe(Date.parse(text));
      }),
    );
  });
});
