import { describe, expect, it } from 'vitest';
import { parseNetwork } from '../../src/config/network.js';
import { loadConfig } from '../../src/config/load-config.js';

const base = {
  organizations: [{ id: 'cpo-1', type: 'cpo' }],
  sites: [{ id: 'site-1', operator: 'cpo-1', timezone: 'Europe/Ljubljana' }],
  chargers: [{ id: 'CP1', site: 'site-1', connectors: [{ id: 1, maxPowerW: 22000 }] }],
  tariffs: [
    {
      id: 't',
      currency: 'EUR',
      elements: [{ components: [{ type: 'ENERGY', price: 0.3, vat: 22 }] }],
    },
  ],
};

const error = (raw: unknown) => {
  try {
    parseNetwork(raw);
  } catch (e) {
    return (e as Error).message;
  }
  return 'no error';
};

describe('network file validation', () => {
  it('accepts the contract example shape and keeps numbers as decimal text', () => {
    const network = parseNetwork(base);
    expect(network.tariffs[0]?.elements[0]?.components[0]).toMatchObject({
      price: '0.3',
      vat: '22',
    });
    expect(network.settings).toMatchObject({
      currency: 'EUR',
      readySessionExpirationS: 30,
      ongoingSessionExpirationS: 3600,
    });
    expect(Object.isFrozen(network.chargers[0])).toBe(true);
  });

  it('names the field of a wrong type, a missing field and an unknown one', () => {
    expect(
      error({
        ...base,
        chargers: [{ id: 'CP1', site: 'site-1', connectors: [{ id: 1, maxPowerW: 'lots' }] }],
      }),
    ).toContain('chargers[0].connectors[0].maxPowerW: must be integer');
    expect(error({ ...base, chargers: [{ id: 'CP1', site: 'site-1' }] })).toContain(
      'chargers[0].connectors: is required',
    );
    expect(error({ ...base, sites: [{ id: 's', operator: 'cpo-1', colour: 'red' }] })).toContain(
      'sites[0].colour: is not a known field',
    );
    expect(
      error({
        ...base,
        tariffs: [
          {
            id: 't',
            currency: 'EUR',
            elements: [{ components: [{ type: 'ENERGY', price: 'cheap' }] }],
          },
        ],
      }),
    ).toContain('tariffs[0].elements[0].components[0].price');
  });

  it('names broken references, duplicates and bad time zones', () => {
    expect(
      error({
        ...base,
        chargers: [{ id: 'CP1', site: 'nowhere', connectors: [{ id: 1, maxPowerW: 1 }] }],
      }),
    ).toContain('chargers[0].site: refers to unknown site nowhere');
    expect(error({ ...base, chargers: [...base.chargers, ...base.chargers] })).toContain(
      'chargers[1].id: duplicate id CP1',
    );
    expect(
      error({ ...base, sites: [{ id: 'site-1', operator: 'cpo-1', timezone: 'Mars/Olympus' }] }),
    ).toContain('sites[0].timezone');
    expect(
      error({
        ...base,
        chargers: [
          { id: 'CP1', site: 'site-1', password: 'short', connectors: [{ id: 1, maxPowerW: 1 }] },
        ],
      }),
    ).toContain('chargers[0].password');
  });

  it('flags and environment: bad values name the flag or the variable', () => {
    expect(() => loadConfig({ ocppPort: '70000' })).toThrow('--ocpp-port: must be a whole number');
    expect(() => loadConfig({}, { CHARGESTREAM_API_PORT: 'x' })).toThrow('CHARGESTREAM_API_PORT');
    expect(() => loadConfig({ role: 'chef' })).toThrow('--role');
    expect(() => loadConfig({ commitInterval: '101' })).toThrow('--commit-interval');
    expect(loadConfig({}).commitIntervalMs).toBe(2);
    expect(loadConfig({}, { CHARGESTREAM_COMMIT_INTERVAL: '0' }).commitIntervalMs).toBe(0);
    expect(() => loadConfig({ batchLinger: '-1' })).toThrow('--batch-linger');
    expect(loadConfig({}).batchLingerMs).toBe(0);
    expect(loadConfig({}, { CHARGESTREAM_BATCH_LINGER: '500' }).batchLingerMs).toBe(500);
    expect(loadConfig({ ocppPort: '9000' }, { CHARGESTREAM_OCPP_PORT: '9100' }).ocppPort).toBe(
      9000,
    );
  });
});
