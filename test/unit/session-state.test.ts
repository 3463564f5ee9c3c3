import { describe, expect, it } from 'vitest';
import { sessionRows } from '../helpers/rows.js';
import { indexNetwork } from '../../src/config/network-index.js';
import { parseNetwork, type Tariff } from '../../src/config/network.js';
import type { ChargerEvent } from '../../src/ocpp/events.js';
import { compileTariff } from '../../src/rating/index.js';
import {
  processBatch,
  type ConnectorState,
  type HighWater,
  type SessionState,
} from '../../src/sessions/process-batch.js';

const T0 = Date.parse('2026-11-20T08:00:00Z');
const TARIFF: Tariff = {
  id: 't',
  currency: 'EUR',
  elements: [
    { components: [{ type: 'ENERGY', price: '0.30', vat: '22' }] },
    { components: [{ type: 'TIME', price: '1.20', vat: '22' }] },
  ],
};
const network = parseNetwork({
  settings: { defaultTariff: 't' },
  organizations: [{ id: 'o', type: 'cpo' }],
  sites: [{ id: 's', operator: 'o', timezone: 'Europe/Berlin' }],
  chargers: [{ id: 'CP1', site: 's', connectors: [{ id: 1, maxPowerW: 30000 }] }],
  tariffs: [TARIFF],
});
const index = indexNetwork(network);
const NONE: HighWater = { readings: -1, statuses: -1, cdrs: -1, notifications: -1 };

const events: ChargerEvent[] = [
  {
    kind: 'tx_started',
    chargerId: 'CP1',
    connectorId: 1,
    receivedAt: T0,
    transactionId: '1',
    tokenId: 'T',
    authorization: 'Accepted',
    customerId: 'c',
    meterStartWh: 1000,
    ts: T0,
  },
  ...Array.from({ length: 12 }, (_, i): ChargerEvent => ({
    kind: 'meter_values',
    chargerId: 'CP1',
    connectorId: 1,
    receivedAt: T0 + (i + 1) * 300_000,
    transactionId: '1',
    samples: [
      {
        ts: T0 + (i + 1) * 300_000,
        measurand: 'Energy.Active.Import.Register',
        phase: '',
        value: 1000 + (i + 1) * 1500,
        unit: 'Wh',
        context: 'Sample.Periodic',
      },
    ],
  })),
  {
    kind: 'tx_stopped',
    chargerId: 'CP1',
    connectorId: 1,
    receivedAt: T0 + 3_900_000,
    transactionId: '1',
    tokenId: '',
    meterStopWh: 19_000,
    ts: T0 + 3_900_000,
    reason: 'Local',
    samples: [],
    orphan: false,
  },
];

/** The session's CDR when every event is its own batch, the state crossing `cross` between. */
function cdrWith(
  cross: (states: Record<string, ConnectorState>) => Record<string, ConnectorState>,
) {
  let states: Record<string, ConnectorState> = {};
  let cdrs = '';
  events.forEach((event, offset) => {
    const out = processBatch(index, {
      partition: 0,
      entries: [{ offset, event }],
      states,
      highWater: NONE,
    });
    states = cross(out.states);
    cdrs += out.cdrs;
  });
  return JSON.parse(cdrs) as Record<string, unknown>;
}

describe('session states between batches', () => {
  it('a session rated batch by batch, its state cloned to a worker or stored as JSON in between, gets the CDR of one batch', () => {
    const whole = JSON.parse(
      processBatch(index, {
        partition: 0,
        entries: events.map((event, offset) => ({ offset, event })),
        states: {},
        highWater: NONE,
      }).cdrs,
    ) as Record<string, unknown>;
    expect(whole['total_incl_vat']).not.toBe('0.00');
    const viaWorker = cdrWith((states) => structuredClone(states));
    const viaStore = cdrWith((states) => JSON.parse(JSON.stringify(states)) as typeof states);
    expect(viaWorker).toEqual(whole);
    expect(viaStore).toEqual(whole);
  });

  it('between batches the rating carries its tariff as source text, not compiled', () => {
    const out = processBatch(index, {
      partition: 0,
      entries: events.slice(0, 2).map((event, offset) => ({ offset, event })),
      states: {},
      highWater: NONE,
    });
    const session = out.states['CP1/1']!.session!;
    expect(session.rating.state?.tariff).toBeUndefined();
    expect(JSON.parse(session.rating.tariffSource!)).toEqual(['Europe/Berlin', TARIFF]);
    const stored = sessionRows(out.sessions).at(-1)!;
    expect(stored['state']).not.toContain('"candidates"'); // no compiled tariff in the store
  });

  it('a state stored before, with its compiled tariff inline, is rated on as it is', () => {
    let states: Record<string, ConnectorState> = {};
    let cdrs = '';
    events.forEach((event, offset) => {
      if (offset === 4) {
        // As stored by an earlier version: the compiled tariff inline, no source text.
        const session = states['CP1/1']!.session!;
        const rating = { ...session.rating };
        delete (rating as { tariffSource?: string }).tariffSource;
        const old: SessionState = {
          ...session,
          rating: {
            ...rating,
            state: { ...rating.state!, tariff: compileTariff(TARIFF, 'Europe/Berlin') },
          },
        };
        states = JSON.parse(
          JSON.stringify({ 'CP1/1': { ...states['CP1/1'], session: old } }),
        ) as typeof states;
      }
      const out = processBatch(index, {
        partition: 0,
        entries: [{ offset, event }],
        states,
        highWater: NONE,
      });
      states = out.states;
      cdrs += out.cdrs;
    });
    expect(JSON.parse(cdrs)).toEqual(cdrWith((s) => s));
  });
});
