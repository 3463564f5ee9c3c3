import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ChargerEvent, Sample } from '../../src/ocpp/events.js';
import { packEntries, unpackEntries } from '../../src/sessions/held-state.js';
import type { BatchInput } from '../../src/sessions/process-batch.js';

/**
 * A batch's events travel to its worker thread msgpack-encoded (packEntries). The thread must
 * get every event back as the gateway made it: every key, also one set to undefined; every
 * string, short or long (msgpackr reads and writes long ones another way), in any script; NaN
 * for a value that was not a number. Strings are well-formed: the gateway refuses a lone
 * surrogate (rpc.ts). Events are plain objects, as JSON.parse and the handlers make them.
 */
const text = fc.string({ unit: 'binary', maxLength: 200 });
const key = text.filter((k) => k !== '__proto__');
const number = fc.oneof(
  // -0 comes back as 0 (msgpack has one integer zero); no rule tells them apart.
  fc.double().map((x) => x + 0),
  fc.integer(),
  fc.maxSafeInteger(),
  fc.constant(Number.NaN),
);

/** Any JSON-like value with undefined: what a handler could carry over from a payload. */
const value = fc.letrec((tie) => ({
  leaf: fc.oneof(text, number, fc.boolean(), fc.constant(null), fc.constant(undefined)),
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    tie('leaf'),
    fc.array(tie('node'), { maxLength: 4 }),
    fc.dictionary(key, tie('node'), { maxKeys: 5, noNullPrototype: true }),
  ),
})).node;

const sample: fc.Arbitrary<Sample> = fc.record(
  {
    ts: fc.integer({ min: 0, max: 4_102_444_800_000 }),
    measurand: text,
    phase: text,
    value: number,
    unit: text,
    context: text,
    signed: fc.record(
      {
        data: fc.string({ unit: 'binary', maxLength: 2_000 }),
        signingMethod: text,
        encodingMethod: text,
        publicKey: text,
      },
      { noNullPrototype: true },
    ),
  },
  { requiredKeys: ['ts', 'measurand', 'phase', 'value', 'unit', 'context'], noNullPrototype: true },
);

const base = {
  chargerId: text,
  connectorId: fc.nat(65_535),
  receivedAt: fc.integer({ min: 0, max: 4_102_444_800_000 }),
};

/** The gateway's events, in their shapes (src/ocpp/events.ts), and odd ones. */
const event: fc.Arbitrary<ChargerEvent> = fc.oneof(
  fc.record(
    {
      ...base,
      kind: fc.constant('meter_values' as const),
      transactionId: text,
      samples: fc.array(sample, { maxLength: 6 }),
      seqNo: fc.nat(),
      offline: fc.boolean(),
      chargingState: text,
      eventTs: fc.integer({ min: 0, max: 4_102_444_800_000 }),
    },
    {
      requiredKeys: ['chargerId', 'connectorId', 'receivedAt', 'kind', 'transactionId', 'samples'],
      noNullPrototype: true,
    },
  ),
  fc.record(
    {
      ...base,
      kind: fc.constant('retry' as const),
      sessionId: text,
      // A failed session's state as stored: long JSON text.
      state: fc.dictionary(key, value, { maxKeys: 20 }).map((s) => JSON.stringify(s)),
      stale: fc.option(fc.boolean(), { nil: undefined }),
    },
    { noNullPrototype: true },
  ),
  fc
    .record(
      { ...base, kind: fc.constantFrom('status', 'station', 'tx_stopped', 'expire') },
      { noNullPrototype: true },
    )
    .chain((e) =>
      fc
        .dictionary(key, value, { maxKeys: 6, noNullPrototype: true })
        .map((extra) => ({ ...extra, ...e }) as unknown as ChargerEvent),
    ),
);

describe('the events of a batch on their way to a worker thread', () => {
  it('come back as they were sent, whatever their shape', () => {
    fc.assert(
      fc.property(fc.array(event, { maxLength: 40 }), fc.nat(1_000_000), (events, first) => {
        const entries: BatchInput['entries'] = events.map((e, i) => ({
          offset: first + i,
          event: e,
        }));
        expect(unpackEntries(packEntries(entries))).toStrictEqual(entries);
      }),
      { numRuns: 500 },
    );
  });

  it('are bytes of their own, not a view of the encoder buffer the next batch reuses', () => {
    const expired = (chargerId: string): BatchInput['entries'] => [
      {
        offset: 1,
        event: {
          kind: 'expire',
          chargerId,
          connectorId: 1,
          receivedAt: 0,
          transactionId: '1',
          lastEventAt: 0,
        },
      },
    ];
    const one = packEntries(expired('A'));
    const copy = Uint8Array.from(one);
    packEntries(expired('B'));
    expect(one.byteOffset).toBe(0);
    expect(one.buffer.byteLength).toBe(one.byteLength);
    expect(one).toEqual(copy);
  });
});
