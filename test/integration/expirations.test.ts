import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseNetwork } from '../../src/config/network.js';
import type { Processor } from '../../src/processor/processor.js';
import { hold, type HeldState } from '../../src/sessions/held-state.js';
import type { EnergyState } from '../../src/sessions/energy.js';
import type { SessionState } from '../../src/sessions/process-batch.js';
import { openTestProcessor } from '../helpers/processor.js';

/**
 * S2 and S3 as the processor decides them, with a controllable clock: ready sessions after
 * the ready-session expiration, sessions in progress after the ongoing one, each in force at
 * its charger (its own, its site's, its operator's, the network's).
 */
const network = parseNetwork({
  settings: { readySessionExpirationS: 30, ongoingSessionExpirationS: 3600 },
  organizations: [{ id: 'o', type: 'cpo', ongoingSessionExpirationS: 1200 }],
  sites: [{ id: 's', operator: 'o', readySessionExpirationS: 20 }],
  chargers: [
    { id: 'CP1', site: 's', connectors: [{ id: 1, maxPowerW: 22000 }] },
    {
      id: 'CP2',
      site: 's',
      connectors: [{ id: 1, maxPowerW: 22000 }],
      ongoingSessionExpirationS: 600,
    },
    { id: 'CP3', site: 's', connectors: [{ id: 1, maxPowerW: 22000 }] },
  ],
});
const T = Date.parse('2026-11-20T08:00:00Z');
const state = (chargerId: string, status: 'ready' | 'in_progress'): [string, HeldState] => [
  `${chargerId}/1`,
  hold({
    appliedOffset: 1,
    session: {
      sessionId: `${chargerId}-x`,
      chargerId,
      connectorId: 1,
      transactionId: status === 'ready' ? '' : '7',
      status,
      startedAt: T,
      lastEventAt: T,
      energy: { startWh: null } as EnergyState,
    } as SessionState,
  })!,
];
let processor: Processor;
let close: () => Promise<void>;

beforeAll(async () => {
  ({ processor, close } = await openTestProcessor(network, {
    committed: new Map(),
    highWater: new Map(),
    states: new Map([
      state('CP1', 'ready'),
      state('CP2', 'in_progress'),
      state('CP3', 'in_progress'),
    ]),
  }));
});

afterAll(() => close());

describe('expirations decided by the processor', () => {
  it('S2/S3 each session expires after the expiration in force at its charger, not before', () => {
    const expiring = (afterS: number) =>
      processor
        .expired(T + afterS * 1000)
        .map((e) => e.chargerId)
        .sort();
    expect(expiring(19)).toEqual([]);
    expect(expiring(20)).toEqual(['CP1']); // ready: the site's 20 s
    expect(expiring(599)).toEqual(['CP1']);
    expect(expiring(600)).toEqual(['CP1', 'CP2']); // the charger's own 600 s
    expect(expiring(1199)).toEqual(['CP1', 'CP2']);
    expect(expiring(1200)).toEqual(['CP1', 'CP2', 'CP3']); // the operator's 1,200 s
    const [ready] = processor.expired(T + 20_000);
    expect(ready).toMatchObject({
      kind: 'expire',
      chargerId: 'CP1',
      transactionId: '',
      lastEventAt: T,
    });
  });
});
