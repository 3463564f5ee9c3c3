import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startKey, TransactionRegistry } from '../../src/gateway/transactions.js';
import { tempDir } from '../helpers/engine.js';

const home = { chargerId: 'CP1', connectorId: 1 };

describe('1.6 transaction ids', () => {
  it('are unique across gateway processes (interleaved) and across restarts', () => {
    const dirs = [tempDir(), tempDir(), tempDir()];
    const seen = new Set<string>();
    for (let restart = 0; restart < 2; restart++) {
      for (const [index, dir] of dirs.entries()) {
        const registry = new TransactionRegistry(dir, { index, count: 3 });
        for (let i = 0; i < 1500; i++) {
          const id = registry.allocate(`${restart}-${index}-${i}`, home);
          expect(seen.has(id), id).toBe(false);
          expect(Number(id) % 3).toBe(index);
          expect(Number(id)).toBeLessThanOrEqual(0x7fffffff);
          seen.add(id);
        }
      }
    }
  });

  it('a resent start gets its id back; another start a new one', () => {
    const registry = new TransactionRegistry(tempDir());
    const key = startKey('CP1', 1, 1000, 'TAG', 5);
    const id = registry.allocate(key, home);
    expect(registry.allocate(key, home)).toBe(id);
    expect(registry.allocate(startKey('CP1', 1, 1000, 'TAG', 6), home)).not.toBe(id);
  });

  it('finds a transaction only for its own charger', () => {
    const registry = new TransactionRegistry(tempDir());
    const id = registry.allocate('k', home);
    expect(registry.home('CP1', id)).toEqual(home);
    expect(registry.home('CP2', id)).toBeUndefined();
    registry.ended('CP1', id);
    expect(registry.home('CP1', id)).toBeUndefined();
  });

  it('knows where an ended transaction lived, ended here or journaled elsewhere (R2)', () => {
    const registry = new TransactionRegistry(tempDir());
    registry.remember('tx-a', { chargerId: 'CP1', connectorId: 2 });
    expect(registry.endedOn('CP1', 'tx-a')).toBeUndefined();
    registry.ended('CP1', 'tx-a');
    expect(registry.endedOn('CP1', 'tx-a')).toBe(2);
    expect(registry.endedOn('CP2', 'tx-a')).toBeUndefined();
    registry.apply('CP1', 'tx-b', { chargerId: 'CP1', connectorId: 3 }, null);
    registry.apply('CP1', 'tx-b', null, null);
    expect(registry.endedOn('CP1', 'tx-b')).toBe(3);
    // An id never seen running is not an ended one.
    registry.ended('CP1', 'tx-c');
    expect(registry.endedOn('CP1', 'tx-c')).toBeUndefined();
  });

  it('refuses a damaged counter file instead of starting over at 1', () => {
    const dir = tempDir();
    new TransactionRegistry(dir).allocate('k', home);
    expect(Number(readFileSync(join(dir, 'transaction-ids'), 'utf8'))).toBeGreaterThan(0);
    writeFileSync(join(dir, 'transaction-ids'), 'garbage');
    expect(() => new TransactionRegistry(dir)).toThrow('transaction id counter');
  });
});
