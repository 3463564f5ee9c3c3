import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/lib/errors.js';
import { partitionFor, murmur2, Placements } from '../../src/bus/partitioner.js';
import { connectorKey } from '../../src/ocpp/events.js';

describe('error codes', () => {
  it('every code users can see is documented in docs/errors.md', () => {
    const doc = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'errors.md'), 'utf8');
    for (const code of Object.keys(ERROR_CODES)) expect(doc, code).toContain(`\`${code}\``);
  });
});

describe('partitioner', () => {
  it("matches Kafka's murmur2 on its published test vectors", () => {
    const vectors: Array<[string, number]> = [
      ['21', -973932308],
      ['foobar', -790332482],
      ['a-little-bit-long-string', -985981536],
      ['a-little-bit-longer-string', -1486304829],
      ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
      ['abc', 479470107],
    ];
    for (const [text, hash] of vectors) expect(murmur2(Buffer.from(text))).toBe(hash);
  });

  it('hashes a string as its UTF-8 bytes: ASCII read in place, any other text encoded', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'grapheme' })), (text) => {
        expect(murmur2(text)).toBe(murmur2(Buffer.from(text, 'utf8')));
      }),
      { numRuns: 2000 },
    );
    for (const [text] of [['CP-é/1'], ['充電器/2'], ['']]) {
      expect(murmur2(text!)).toBe(murmur2(Buffer.from(text!, 'utf8')));
    }
  });

  it('puts every event of a connector in one partition within range', () => {
    expect(partitionFor('CP1/1', 16)).toBe(partitionFor('CP1/1', 16));
    for (let i = 0; i < 1000; i++) {
      const p = partitionFor(`CP${i}/1`, 7);
      expect(p).toBeGreaterThanOrEqual(0);
      expect(p).toBeLessThan(7);
    }
  });

  it("keeps a connector's placement: the key and partition made from its charger and id, for kept and unkept ids alike", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.constantFrom('CP1', 'CP2', 'CP-é', '', 'constructor', '__proto__'),
            fc.oneof(fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 65535 })),
          ),
          { maxLength: 60 },
        ),
        fc.integer({ min: 1, max: 32 }),
        (calls, partitions) => {
          const placements = new Placements(partitions);
          for (const [chargerId, connectorId] of calls) {
            const key = connectorKey(chargerId, connectorId);
            expect(placements.of(chargerId, connectorId)).toEqual({
              key,
              partition: partitionFor(key, partitions),
            });
          }
        },
      ),
    );
    const placements = new Placements(16);
    // Kept: the same key string every time; past the kept ids made anew, equal.
    expect(placements.of('CP1', 2)).toBe(placements.of('CP1', 2));
    expect(placements.of('CP1', 300)).toEqual(placements.of('CP1', 300));
  });
});
