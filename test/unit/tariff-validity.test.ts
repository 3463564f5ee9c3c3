import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadNetworkFile, parseNetwork } from '../../src/config/network.js';
import { indexNetwork, resolveTariff, type NetworkIndex } from '../../src/config/network-index.js';
import { ChargestreamError } from '../../src/lib/errors.js';
import { validAt } from '../../src/rating/index.js';
import { beginRating, finalCost, liveCost, observe } from '../../src/sessions/session-rating.js';

const at = (iso: string) => Date.parse(iso);
const Y2027 = at('2027-01-01T00:00:00.000Z');

/** An ENERGY-only tariff at `price` per kWh, VAT 20 %, with optional validity. */
const aTariff = (
  id: string,
  price: string,
  validity: { startDateTime?: string; endDateTime?: string } = {},
) => ({
  id,
  currency: 'EUR',
  ...validity,
  elements: [{ components: [{ type: 'ENERGY', price, vat: '20' }] }],
});

/** A network with every level of R3, each overridable. */
const aNetwork = (over: Record<string, unknown> = {}) => ({
  settings: { defaultTariff: 't-default' },
  organizations: [
    { id: 'cpo', type: 'cpo', tariff: 't-operator' },
    { id: 'roamer', type: 'emp', roamingTariff: 't-roaming' },
    { id: 'home', type: 'emp' },
  ],
  sites: [{ id: 'site', operator: 'cpo', timezone: 'Europe/Ljubljana', tariff: 't-site' }],
  chargers: [
    { id: 'CP1', site: 'site', tariff: 't-charger', connectors: [{ id: 1, maxPowerW: 50000 }] },
  ],
  tariffs: [
    aTariff('t-default', '0.10'),
    aTariff('t-operator', '0.20'),
    aTariff('t-site', '0.30'),
    aTariff('t-charger', '0.40'),
    aTariff('t-roaming', '0.50'),
    aTariff('t-member', '0.60'),
  ],
  ratePlans: [{ id: 'member', tariff: 't-member' }],
  customers: [
    { id: 'local', organization: 'home', paymentType: 'postpaid' },
    { id: 'member', organization: 'home', paymentType: 'postpaid', ratePlan: 'member' },
    { id: 'guest', organization: 'roamer', paymentType: 'postpaid' },
  ],
  ...over,
});

/** aNetwork with some tariffs replaced (same id) by ones with a validity. */
const withValidity = (
  validities: Record<string, { startDateTime?: string; endDateTime?: string }>,
  over: Record<string, unknown> = {},
) => {
  const raw = aNetwork(over);
  return indexNetwork(
    parseNetwork({
      ...raw,
      tariffs: raw.tariffs.map((t) =>
        validities[t.id] === undefined ? t : { ...t, ...validities[t.id] },
      ),
    }),
  );
};

const error = (raw: unknown): string => {
  try {
    parseNetwork(raw);
  } catch (e) {
    expect((e as ChargestreamError).code).toBe('CONFIG_INVALID');
    return (e as Error).message;
  }
  return 'no error';
};

const resolved = (index: NetworkIndex, customer: string, ts: number) =>
  resolveTariff(index, 'CP1', customer, ts)?.id ?? null;

describe('R3 tariff validity: start inclusive, end exclusive, to the millisecond', () => {
  const tariff = aTariff('t', '0.30', {
    startDateTime: '2027-01-01T00:00:00Z',
    endDateTime: '2028-01-01T01:00:00+01:00', // 2028-01-01T00:00:00Z
  });
  const end = at('2028-01-01T00:00:00.000Z');

  it('R3 valid from its start instant and until the millisecond before its end', () => {
    expect(validAt(tariff, Y2027 - 1)).toBe(false);
    expect(validAt(tariff, Y2027)).toBe(true);
    expect(validAt(tariff, end - 1)).toBe(true);
    expect(validAt(tariff, end)).toBe(false);
  });

  it('R3 a tariff without validity is always valid; one bound leaves the other side open', () => {
    expect(validAt(aTariff('t', '0.30'), -8.64e15)).toBe(true);
    expect(validAt(aTariff('t', '0.30', { endDateTime: '2027-01-01T00:00:00Z' }), 0)).toBe(true);
    expect(validAt(aTariff('t', '0.30', { endDateTime: '2027-01-01T00:00:00Z' }), Y2027)).toBe(
      false,
    );
    expect(validAt(aTariff('t', '0.30', { startDateTime: '2027-01-01T00:00:00Z' }), 8.64e15)).toBe(
      true,
    );
  });

  it('R3 resolution reads the validity at the exact millisecond of the session start', () => {
    const index = withValidity({
      't-charger': { startDateTime: '2027-01-01T00:00:00Z', endDateTime: '2027-02-01T00:00:00Z' },
    });
    const feb = at('2027-02-01T00:00:00.000Z');
    expect(resolved(index, 'local', Y2027 - 1)).toBe('t-site');
    expect(resolved(index, 'local', Y2027)).toBe('t-charger');
    expect(resolved(index, 'local', feb - 1)).toBe('t-charger');
    expect(resolved(index, 'local', feb)).toBe('t-site');
  });
});

describe('R3 a level with no valid tariff falls through to the next', () => {
  const expired = { endDateTime: '2027-01-01T00:00:00Z' };
  const now = Y2027;

  it('R3 rate plan → roaming platform → charger → site → operator → default, each passed over when expired', () => {
    const chain = ['t-member', 't-roaming', 't-charger', 't-site', 't-operator', 't-default'];
    for (let n = 0; n < chain.length; n++) {
      const index = withValidity(Object.fromEntries(chain.slice(0, n).map((id) => [id, expired])));
      const customer = n === 0 ? 'member' : n === 1 ? 'guest' : 'local';
      // Before the end every level still holds its own tariff.
      expect(resolved(index, 'member', now - 1)).toBe('t-member');
      expect(resolved(index, 'guest', now - 1)).toBe('t-roaming');
      expect(resolved(index, customer, now)).toBe(chain[n]);
    }
    const member = withValidity(Object.fromEntries(chain.slice(0, 1).map((id) => [id, expired])));
    // A member whose plan's tariff has ended is priced as any customer at this charger.
    expect(resolved(member, 'member', now)).toBe('t-charger');
    const guest = withValidity({ 't-roaming': expired });
    expect(resolved(guest, 'guest', now)).toBe('t-charger');
  });

  it('R3 a tariff not yet valid is passed over the same way', () => {
    const index = withValidity(
      { 't-site': { startDateTime: '2027-01-01T00:00:00Z' } },
      {
        chargers: [{ id: 'CP1', site: 'site', connectors: [{ id: 1, maxPowerW: 50000 }] }],
      },
    );
    expect(resolved(index, 'local', now - 1)).toBe('t-operator');
    expect(resolved(index, 'local', now)).toBe('t-site');
  });

  it('R3 the network default applies when no other level has a valid tariff', () => {
    const index = withValidity(
      Object.fromEntries(['t-charger', 't-site', 't-operator'].map((id) => [id, expired])),
    );
    expect(resolved(index, 'local', now)).toBe('t-default');
    const rating = beginRating(index, 'CP1', 'local', now);
    expect(rating.tariffId).toBe('t-default');
  });

  it('R3 nothing valid and no default (or the default not valid either): the session is free', () => {
    const allExpired = Object.fromEntries(
      ['t-charger', 't-site', 't-operator', 't-default'].map((id) => [id, expired]),
    );
    for (const index of [withValidity(allExpired), withValidity(allExpired, { settings: {} })]) {
      expect(resolved(index, 'local', now)).toBeNull();
      const rating = beginRating(index, 'CP1', 'local', now);
      expect(rating).toMatchObject({ tariffId: '', currency: 'EUR', state: null });
      observe(rating, { ts: now + 3_600_000, energyWh: 20_000, state: 'charging' });
      expect(liveCost(rating).totalInclVat).toBe('0.00');
      expect(finalCost(rating, now + 3_600_000, 'cdr-free')).toEqual({
        money: { currency: 'EUR', totalExclVat: '0.00', totalVat: '0.00', totalInclVat: '0.00' },
        lines: [],
        periods: [],
      });
    }
  });
});

describe('R3 several tariffs on one level, by validity', () => {
  const y2026 = { startDateTime: '2026-01-01T00:00:00Z', endDateTime: '2027-01-01T00:00:00Z' };
  const y2027 = { startDateTime: '2027-01-01T00:00:00Z', endDateTime: '2028-01-01T00:00:00Z' };
  const twoYears = (over: Record<string, unknown> = {}) =>
    aNetwork({
      sites: [
        { id: 'site', operator: 'cpo', timezone: 'Europe/Ljubljana', tariff: ['t-26', 't-27'] },
      ],
      chargers: [{ id: 'CP1', site: 'site', connectors: [{ id: 1, maxPowerW: 50000 }] }],
      tariffs: [
        aTariff('t-default', '0.10'),
        aTariff('t-operator', '0.20'),
        aTariff('t-26', '0.30', y2026),
        aTariff('t-27', '0.40', y2027),
      ],
      organizations: [
        { id: 'cpo', type: 'cpo', tariff: 't-operator' },
        { id: 'home', type: 'emp' },
      ],
      ratePlans: [],
      customers: [{ id: 'local', organization: 'home', paymentType: 'postpaid' }],
      ...over,
    });

  it("R3 the level's tariff valid at the start applies; none valid → the next level", () => {
    const index = indexNetwork(parseNetwork(twoYears()));
    expect(resolved(index, 'local', at('2025-12-31T23:59:59.999Z'))).toBe('t-operator');
    expect(resolved(index, 'local', at('2026-06-01T12:00:00Z'))).toBe('t-26');
    expect(resolved(index, 'local', Y2027 - 1)).toBe('t-26');
    expect(resolved(index, 'local', Y2027)).toBe('t-27');
    expect(resolved(index, 'local', at('2028-01-01T00:00:00Z'))).toBe('t-operator');
  });

  it('R3 a single id keeps working at every level, and a list may be written at every level', () => {
    const index = indexNetwork(
      parseNetwork(
        twoYears({
          settings: { defaultTariff: ['t-26', 't-27'] },
          organizations: [
            { id: 'cpo', type: 'cpo', tariff: ['t-26', 't-27'] },
            { id: 'home', type: 'emp', roamingTariff: ['t-27'] },
          ],
          ratePlans: [{ id: 'member', tariff: ['t-27', 't-26'] }],
        }),
      ),
    );
    // The roaming platform's list holds only t-27: before it, the site's t-26 applies.
    expect(resolved(index, 'local', Y2027 - 1)).toBe('t-26');
    expect(resolved(index, 'local', Y2027)).toBe('t-27');
    expect(index.network.sites[0]?.tariff).toEqual(['t-26', 't-27']);
  });

  it('R3 tariffs of one level whose validities overlap are refused, naming the entry', () => {
    expect(
      error(
        twoYears({
          tariffs: [
            aTariff('t-default', '0.10'),
            aTariff('t-operator', '0.20'),
            aTariff('t-26', '0.30', { ...y2026, endDateTime: '2027-01-01T00:00:00.001Z' }),
            aTariff('t-27', '0.40', y2027),
          ],
        }),
      ),
    ).toBe(
      'network: sites[0].tariff[1]: tariff t-27 is valid at the same time as t-26 (both at 2027-01-01T00:00:00.000Z); give them validities that do not overlap',
    );
    // A tariff without validity overlaps every other.
    expect(
      error(
        twoYears({
          sites: [{ id: 'site', operator: 'cpo', tariff: ['t-27', 't-operator'] }],
        }),
      ),
    ).toContain('sites[0].tariff[1]: tariff t-operator is valid at the same time as t-27');
    expect(error(twoYears({ settings: { defaultTariff: ['t-default', 't-operator'] } }))).toContain(
      'settings.defaultTariff[1]: tariff t-operator is valid at the same time as t-default (both have no startDateTime)',
    );
  });

  it('R3 each listed id must name a tariff; the list is not empty and has no repeats', () => {
    expect(
      error(
        twoYears({
          chargers: [
            {
              id: 'CP1',
              site: 'site',
              tariff: ['t-26', 't-28'],
              connectors: [{ id: 1, maxPowerW: 1 }],
            },
          ],
        }),
      ),
    ).toBe('network: chargers[0].tariff[1]: refers to unknown tariff t-28');
    expect(error(twoYears({ ratePlans: [{ id: 'p', tariff: [] }] }))).toBe(
      'network: ratePlans[0].tariff: must NOT have fewer than 1 items',
    );
    expect(
      error(
        twoYears({
          organizations: [
            { id: 'cpo', type: 'cpo', roamingTariff: ['t-26', 't-26'] },
            { id: 'home', type: 'emp' },
          ],
        }),
      ),
    ).toMatch(/^network: organizations\[0\]\.roamingTariff: must NOT have duplicate items/);
  });
});

describe('R3 the tariff in force at the start prices the whole session', () => {
  // t-26 ends at 2027-01-01T00:00Z, t-27 starts then; both on the site.
  const index = indexNetwork(
    parseNetwork(
      aNetwork({
        organizations: [
          { id: 'cpo', type: 'cpo', tariff: 't-operator' },
          { id: 'home', type: 'emp' },
        ],
        sites: [{ id: 'site', operator: 'cpo', tariff: ['t-26', 't-27'] }],
        chargers: [{ id: 'CP1', site: 'site', connectors: [{ id: 1, maxPowerW: 50000 }] }],
        ratePlans: [],
        customers: [{ id: 'local', organization: 'home', paymentType: 'postpaid' }],
        tariffs: [
          aTariff('t-default', '0.10'),
          aTariff('t-operator', '0.20'),
          aTariff('t-26', '0.30', { endDateTime: '2027-01-01T00:00:00Z' }),
          {
            ...aTariff('t-27', '0.40', { startDateTime: '2027-01-01T00:00:00Z' }),
            elements: [
              { components: [{ type: 'FLAT', price: '1.00', vat: '20' }] },
              { components: [{ type: 'ENERGY', price: '0.40', vat: '20' }] },
            ],
          },
        ],
      }),
    ),
  );
  const MIN = 60_000;

  /** 10 kWh over an hour from `startTs`, rated through the session code the workers use. */
  const session = (startTs: number) => {
    const rating = beginRating(index, 'CP1', 'local', startTs);
    observe(rating, { ts: startTs, energyWh: 0, powerW: 10_000, state: 'charging' });
    for (let m = 15; m <= 60; m += 15)
      observe(rating, { ts: startTs + m * MIN, energyWh: (10_000 * m) / 60, state: 'charging' });
    return { rating, ...finalCost(rating, startTs + 60 * MIN, 'cdr-1') };
  };

  it('R3 a session started the millisecond before the end keeps the old tariff across it', () => {
    const { rating, money, lines } = session(Y2027 - 1);
    expect(rating.tariffId).toBe('t-26');
    // 10 kWh × 0.30 = 3.00, VAT 20 % 0.60: no FLAT, no 0.40 after midnight.
    expect(money).toEqual({
      currency: 'EUR',
      totalExclVat: '3.00',
      totalVat: '0.60',
      totalInclVat: '3.60',
    });
    expect(lines.map((l) => [l.dimension, l.net])).toEqual([['ENERGY', '3.00']]);
  });

  it('R3 a session started 30 min before the end, its running cost and CDR on the old tariff', () => {
    const { rating, money } = session(Y2027 - 30 * MIN);
    expect(rating.tariffId).toBe('t-26');
    expect(liveCost(rating).totalInclVat).toBe('3.60');
    expect(money.totalInclVat).toBe('3.60');
  });

  it('R3 a session started at the end instant is priced by the new tariff', () => {
    const { rating, money } = session(Y2027);
    expect(rating.tariffId).toBe('t-27');
    // FLAT 1.00 + 10 kWh × 0.40 = 5.00, VAT 1.00.
    expect(money).toEqual({
      currency: 'EUR',
      totalExclVat: '5.00',
      totalVat: '1.00',
      totalInclVat: '6.00',
    });
  });
});

describe('R3 bad validity in a network file is refused naming the field (CONFIG_INVALID, exit code 2)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tariff-validity-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const withTariff = (validity: Record<string, unknown>) =>
    aNetwork({
      tariffs: [...aNetwork().tariffs.slice(0, 5), { ...aTariff('t-member', '0.60'), ...validity }],
    });

  it('R3 end not after start', () => {
    expect(
      error(
        withTariff({
          startDateTime: '2027-01-01T00:00:00Z',
          endDateTime: '2027-01-01T01:00:00+01:00',
        }),
      ),
    ).toBe('network: tariffs[5].endDateTime: must be after startDateTime');
    expect(
      error(
        withTariff({
          startDateTime: '2027-01-01T00:00:00Z',
          endDateTime: '2026-12-31T23:59:59.999Z',
        }),
      ),
    ).toBe('network: tariffs[5].endDateTime: must be after startDateTime');
  });

  it('R3 not an instant: no offset, not a date-time, finer than a millisecond', () => {
    expect(error(withTariff({ startDateTime: '2027-01-01T00:00:00' }))).toBe(
      'network: tariffs[5].startDateTime: must match format "date-time"',
    );
    expect(error(withTariff({ endDateTime: '2027-01-01' }))).toBe(
      'network: tariffs[5].endDateTime: must match format "date-time"',
    );
    expect(error(withTariff({ endDateTime: '2027-01-01T00:00:00.0001Z' }))).toBe(
      'network: tariffs[5].endDateTime: must be an RFC 3339 date-time with an offset, to the millisecond at most',
    );
  });

  it('R3 from a YAML network file: CONFIG_INVALID naming the file and the field', () => {
    const path = join(dir, 'network.yaml');
    writeFileSync(
      path,
      [
        'organizations: [ { id: cpo, type: cpo } ]',
        'sites: [ { id: site, operator: cpo, tariff: t } ]',
        'tariffs:',
        '  - id: t',
        '    currency: EUR',
        '    startDateTime: "2027-06-01T00:00:00+02:00"',
        '    endDateTime: "2027-05-31T22:00:00Z"',
        '    elements: [ { components: [ { type: ENERGY, price: "0.30" } ] } ]',
      ].join('\n'),
    );
    let thrown: unknown;
    try {
      loadNetworkFile(path);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(ChargestreamError);
    expect((thrown as ChargestreamError).code).toBe('CONFIG_INVALID');
    expect((thrown as Error).message).toBe(
      `network file ${path}: tariffs[0].endDateTime: must be after startDateTime`,
    );
  });
});

describe('R3 network.example.yaml', () => {
  it("R3 its site's tariff list switches at local midnight in Ljubljana", () => {
    const index = indexNetwork(
      loadNetworkFile(new URL('../../network.example.yaml', import.meta.url).pathname),
    );
    const midnight = at('2027-01-01T00:00:00+01:00');
    expect(resolveTariff(index, 'CP001', '', midnight - 1)?.id).toBe('t-std');
    expect(resolveTariff(index, 'CP001', '', midnight)?.id).toBe('t-std-2027');
    expect(resolveTariff(index, 'CP002', '', midnight)?.id).toBe('t-fast');
  });
});
