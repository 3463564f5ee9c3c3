import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { packEntries, unpackEntries } from '../../src/sessions/held-state.js';

/**
 * A batch's events travel to its worker thread msgpack-encoded (packEntries). Whatever shape
 * an event has, the thread must get it back as the gateway made it: every key, also one set
 * to undefined, every string (any Unicode), every number the rules read. (Events are plain
 * objects, as JSON.parse and the handlers make them: no null-prototype ones.)
 */
const value = fc.letrec((tie) => ({
  leaf: fc.oneof(
    fc.string({ unit: 'binary' }),
    // -0 comes back as 0 (msgpack has one integer zero); no rule tells them apart.
    fc.double().map((x) => x + 0),
    fc.integer(),
    fc.maxSafeInteger(),
    fc.boolean(),
    fc.constant(null),
    fc.constant(undefined),
  ),
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    tie('leaf'),
    fc.array(tie('node'), { maxLength: 4 }),
    fc.dictionary(
      fc.string({ unit: 'binary' }).filter((k) => k !== '__proto__'),
      tie('node'),
      { maxKeys: 5, noNullPrototype: true },
    ),
  ),
})).node;

const event = fc.record({
  kind: fc.constantFrom('meter_values', 'tx_started', 'tx_stopped', 'status', 'retry'),
  chargerId: fc.string({ unit: 'binary', minLength: 1 }),
  connectorId: fc.nat(10),
  receivedAt: fc.integer({ min: 0, max: 4_102_444_800_000 }),
  extra: fc.dictionary(
    fc.string({ unit: 'binary' }).filter((k) => k !== '__proto__'),
    value,
    {
      maxKeys: 6,
    },
  ),
});

describe('the events of a batch on their way to a worker thread', () => {
  it('come back as they were sent, whatever their shape', () => {
    fc.assert(
      fc.property(fc.array(event, { maxLength: 40 }), fc.nat(1_000_000), (events, first) => {
        const entries = events.map(({ extra, ...rest }, i) => ({
          offset: first + i,
          event: { ...extra, ...rest },
        }));
        const bytes = packEntries(entries as never);
        expect(unpackEntries(bytes)).toStrictEqual(entries);
      }),
      { numRuns: 500 },
    );
  });

  it('are bytes of their own, not a view of the encoder buffer the next batch reuses', () => {
    const one = packEntries([{ offset: 1, event: { kind: 'expire', chargerId: 'A' } as never }]);
    const copy = Uint8Array.from(one);
    packEntries([{ offset: 2, event: { kind: 'expire', chargerId: 'B' } as never }]);
    expect(one.byteOffset).toBe(0);
    expect(one.buffer.byteLength).toBe(one.byteLength);
    expect(one).toEqual(copy);
  });
});
