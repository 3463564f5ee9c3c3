import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { demoNetwork } from '../../src/config/demo-network.js';
import { LiveNetwork } from '../../src/config/live-network.js';
import { loadNetworkFile, parseNetwork } from '../../src/config/network.js';
import { aNetwork } from '../helpers/builders.js';

const change = (
  seq: string,
  kind: 'chargers' | 'sites' | 'tokens',
  id: string,
  doc: object | null,
) => ({
  seq,
  kind,
  id,
  doc: doc as Record<string, unknown> | null,
  at: 0,
  by: 'admin@o',
});

describe('the network in force (configuration API)', () => {
  it('a parsed network, written out, is a valid network file again (what LiveNetwork relies on)', () => {
    const files = [
      loadNetworkFile('network.example.yaml'),
      parseNetwork(demoNetwork().network),
      parseNetwork(parse(readFileSync('network.example.yaml', 'utf8'))),
    ];
    for (const network of files) {
      const again = parseNetwork(JSON.parse(JSON.stringify(network)));
      expect(
        isDeepStrictEqual(JSON.parse(JSON.stringify(again)), JSON.parse(JSON.stringify(network))),
      ).toBe(true);
    }
  });

  it('applies a change to a new index, tells its listeners, and applies each change once', () => {
    const live = new LiveNetwork(parseNetwork(aNetwork()));
    const heard: number[] = [];
    live.onChange((index, version) => heard.push(version + index.chargers.size * 100));
    const added = change('1', 'chargers', 'CP2', {
      site: 's',
      connectors: [{ id: 1, maxPowerW: 7400 }],
    });
    live.apply(added);
    live.apply(added);
    expect(heard).toEqual([201]);
    expect(live.index.chargers.get('CP2')?.connectors[0]?.maxPowerW).toBe(7400);
    expect(live.get('chargers', 'CP2')).toEqual({ ...added.doc, id: 'CP2' });
    live.apply(change('2', 'tokens', 'abc', { id: 'abc', type: 'RFID', customer: 'c' }));
    expect(live.get('tokens', 'ABC')).toMatchObject({ id: 'abc' });
    live.apply(change('3', 'tokens', 'ABC', null));
    expect(live.index.tokens.has('ABC')).toBe(false);
  });

  it('refuses a change the network file could not express, naming the field, and keeps the network', () => {
    const live = new LiveNetwork(parseNetwork(aNetwork()));
    const before = live.network;
    expect(() =>
      live.apply(
        change('1', 'chargers', 'CP1', {
          id: 'CP1',
          site: 's',
          connectors: [{ id: 1, maxPowerW: -5 }],
        }),
      ),
    ).toThrow(/^chargers\/CP1: connectors\[0\]\.maxPowerW: must be >= 1/);
    expect(() => live.apply(change('2', 'sites', 's', null))).toThrow(
      expect.objectContaining({ code: 'CONFIG_IN_USE' }) as Error,
    );
    expect(live.network).toBe(before);
    expect(live.version).toBe(0);
  });
});
