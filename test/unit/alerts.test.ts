import { describe, expect, it } from 'vitest';
import { expirationsAt, indexNetwork, resolveTariff } from '../../src/config/network-index.js';
import { parseNetwork } from '../../src/config/network.js';
import type { ChargerEvent, Sample } from '../../src/ocpp/events.js';
import { processBatch, type HighWater } from '../../src/sessions/process-batch.js';
import { sessionRows } from '../helpers/rows.js';

/** E5 malfunction signals, R7 thresholds and N2 rules, as the workers raise them. */
const T0 = Date.parse('2026-11-20T08:00:00Z');
const network = {
  settings: { defaultTariff: 't', ongoingSessionExpirationS: 3600 },
  organizations: [{ id: 'o', type: 'cpo', ongoingSessionExpirationS: 1800 }],
  sites: [
    { id: 's', operator: 'o', ongoingSessionExpirationS: 900 },
    { id: 's2', operator: 'o' },
  ],
  chargers: [
    {
      id: 'CP1',
      site: 's',
      connectors: [{ id: 1, maxPowerW: 30000 }],
      ongoingSessionExpirationS: 600,
    },
    { id: 'CP2', site: 's', connectors: [{ id: 1, maxPowerW: 30000 }] },
    { id: 'CP3', site: 's2', connectors: [{ id: 1, maxPowerW: 30000 }] },
  ],
  tariffs: [
    {
      id: 't',
      currency: 'EUR',
      elements: [{ components: [{ type: 'ENERGY', price: '0.30', vat: '22' }] }],
    },
  ],
  customers: [{ id: 'c', organization: 'o', paymentType: 'postpaid' }],
  notificationRules: [
    {
      id: 'driver-energy',
      events: ['energy_limit'],
      threshold: 1000,
      receiver: 'customer',
      publisher: 'webhook',
      url: 'http://127.0.0.1:1/hook',
      secret: 'a-secret-of-16-chars',
    },
    { id: 'money', events: ['monetary_limit'], threshold: '0.50', publisher: 'log' },
    {
      id: 'faults',
      events: ['status_changed'],
      statuses: ['Faulted'],
      publisher: 'bus',
      receiver: 'ops@example.org',
    },
    {
      id: 'ends',
      events: ['session_ended', 'power_limit_suspect'],
      publisher: 'log',
      receiver: 'ops@example.org',
    },
    { id: 'stations', events: ['station_booted', 'station_disconnected'], publisher: 'log' },
  ],
};
const index = indexNetwork(parseNetwork(network));
const NONE: HighWater = { readings: -1, statuses: -1, cdrs: -1, notifications: -1 };

const sample = (measurand: string, value: number, s: number, unit = 'Wh'): Sample => ({
  ts: T0 + s * 1000,
  measurand,
  phase: '',
  value,
  unit,
  context: 'Sample.Periodic',
});
const start = (): ChargerEvent => ({
  kind: 'tx_started',
  chargerId: 'CP1',
  connectorId: 1,
  receivedAt: T0,
  transactionId: '1',
  tokenId: 'T',
  authorization: 'Accepted',
  customerId: 'c',
  meterStartWh: 0,
  ts: T0,
});
const values = (wh: number, s: number, withPower = true): ChargerEvent => ({
  kind: 'meter_values',
  chargerId: 'CP1',
  connectorId: 1,
  receivedAt: T0 + s * 1000,
  transactionId: '1',
  samples: [
    sample('Energy.Active.Import.Register', wh, s),
    ...(withPower ? [sample('Power.Active.Import', 3600, s, 'W')] : []),
  ],
});
const status = (value: string, s: number, errorCode = 'NoError'): ChargerEvent => ({
  kind: 'status',
  chargerId: 'CP1',
  connectorId: 1,
  receivedAt: T0 + s * 1000,
  ts: T0 + s * 1000,
  status: value,
  errorCode,
  info: '',
  vendorErrorCode: '',
});
const stop = (wh: number, s: number): ChargerEvent => ({
  kind: 'tx_stopped',
  chargerId: 'CP1',
  connectorId: 1,
  receivedAt: T0 + s * 1000,
  transactionId: '1',
  tokenId: '',
  meterStopWh: wh,
  ts: T0 + s * 1000,
  reason: 'Local',
  samples: [],
  orphan: false,
});
const run = (events: ChargerEvent[], highWater = NONE) =>
  processBatch(index, {
    partition: 2,
    entries: events.map((event, offset) => ({ offset, event })),
    states: {},
    highWater,
  });
const notifications = (ndjson: string) =>
  ndjson
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, string | number>);
const events = (ndjson: string) =>
  notifications(ndjson).map((n) => `${n['event']}/${n['rule_id'] || 'log'}`);

describe('E5 malfunction signals', () => {
  it('E5 power_limit_suspect after three exceeds_power rejections, once per session (and to the rules that ask)', () => {
    // 30 kW for 60 s is 500 Wh: jumps of 5 kWh in a minute are over the connector's power.
    const out = run([
      start(),
      values(100, 60),
      values(5_100, 120),
      values(10_100, 180),
      values(15_100, 240),
      values(20_100, 300),
    ]);
    const signals = notifications(out.notifications).filter(
      (n) => n['event'] === 'power_limit_suspect',
    );
    expect(signals.map((n) => n['rule_id'])).toEqual(['', 'ends']);
    expect(signals[0]).toMatchObject({ scope: 'session', session_id: 'CP1-1', charger_id: 'CP1' });
    expect(JSON.parse(String(signals[0]!['payload']))).toMatchObject({ limitW: 30000 });
    expect(signals[1]).toMatchObject({ publisher: 'log', receiver: 'ops@example.org' });
  });

  it('E5 energy_not_progressing after four readings without energy while charging; not while parked', () => {
    const stalled = run([
      start(),
      status('Charging', 1),
      ...[60, 120, 180, 240, 300].map((s) => values(100, s)),
    ]);
    expect(events(stalled.notifications).filter((e) => e.startsWith('energy_not'))).toEqual([
      'energy_not_progressing/log',
    ]);
    const parked = run([
      start(),
      status('SuspendedEV', 1),
      ...[60, 120, 180, 240, 300].map((s) => values(100, s)),
    ]);
    expect(events(parked.notifications).filter((e) => e.startsWith('energy_not'))).toEqual([]);
  });

  it('E5 measurands_missing when energy rises with neither power nor current, once', () => {
    const out = run([start(), values(100, 60, false), values(200, 120, false)]);
    expect(events(out.notifications).filter((e) => e.startsWith('measurands'))).toEqual([
      'measurands_missing/log',
    ]);
    const fine = run([start(), values(100, 60), values(200, 120)]);
    expect(events(fine.notifications).filter((e) => e.startsWith('measurands'))).toEqual([]);
  });
});

describe('R7 thresholds and N2 rules', () => {
  it('R7 energy_limit fires once when the session crosses the rule threshold, to the session customer by webhook', () => {
    const out = run([
      start(),
      values(600, 600),
      values(1_200, 1200),
      values(1_800, 1800),
      stop(2_400, 2400),
    ]);
    const fired = notifications(out.notifications).filter((n) => n['event'] === 'energy_limit');
    expect(fired).toHaveLength(1);
    expect(fired[0]).toMatchObject({
      rule_id: 'driver-energy',
      publisher: 'webhook',
      receiver: 'c',
      customer_id: 'c',
      notification_id: expect.stringMatching(/^2-\d+-energy_limit-driver-energy$/) as string,
    });
    expect(JSON.parse(String(fired[0]!['payload']))).toMatchObject({ threshold: '1000' });
  });

  it('R7 monetary_limit fires once when the running cost incl. VAT reaches it; below it, never', () => {
    // 0.30 EUR/kWh + 22 %: 0.50 EUR incl. VAT at about 1.37 kWh.
    const over = run([start(), values(1_000, 600), values(2_000, 1200), stop(3_000, 1800)]);
    expect(events(over.notifications).filter((e) => e.startsWith('monetary'))).toEqual([
      'monetary_limit/money',
    ]);
    const under = run([start(), values(500, 600), stop(1_000, 1200)]);
    expect(events(under.notifications).filter((e) => e.startsWith('monetary'))).toEqual([]);
  });

  it('N1 status_changed goes to the rules filtering on it (Faulted highlighted), charger scope, not to the log', () => {
    const out = run([
      status('Available', 0),
      status('Faulted', 10, 'GroundFailure'),
      status('Faulted', 20),
      status('Available', 30),
    ]);
    const rows = notifications(out.notifications);
    expect(rows.map((n) => `${n['event']}/${n['rule_id']}`)).toEqual(['status_changed/faults']);
    expect(rows[0]).toMatchObject({
      scope: 'charger',
      publisher: 'bus',
      receiver: 'ops@example.org',
      session_id: '',
    });
    expect(JSON.parse(String(rows[0]!['payload']))).toEqual({
      status: 'Faulted',
      errorCode: 'GroundFailure',
      highlighted: true,
    });
  });

  it('N1 station events go to the rules that select them, charger scope, with their details', () => {
    const station = (change: 'connected' | 'booted' | 'disconnected', s: number): ChargerEvent => ({
      kind: 'station',
      chargerId: 'CP1',
      connectorId: 0,
      receivedAt: T0 + s * 1000,
      change,
      details:
        change === 'booted' ? { vendor: 'v', model: 'm', firmware: '1' } : { protocol: 'ocpp1.6' },
    });
    const rows = notifications(
      run([station('connected', 0), station('booted', 1), station('disconnected', 9)])
        .notifications,
    );
    expect(rows.map((n) => `${n['event']}/${n['rule_id']}`)).toEqual([
      'station_booted/stations',
      'station_disconnected/stations',
    ]);
    expect(rows[0]).toMatchObject({
      scope: 'charger',
      charger_id: 'CP1',
      connector_id: 0,
      session_id: '',
    });
    expect(JSON.parse(String(rows[0]!['payload']))).toEqual({
      vendor: 'v',
      model: 'm',
      firmware: '1',
    });
  });

  it('every rule fires once per session; a replay writes no notification again, ids are stable', () => {
    const batch = [
      start(),
      values(600, 600),
      values(1_200, 1200),
      values(1_800, 1800),
      stop(2_400, 2400),
    ];
    const first = notifications(run(batch).notifications);
    const ids = first.map((n) => n['notification_id']);
    expect(new Set(ids).size).toBe(ids.length);
    expect(events(run(batch).notifications)).toEqual(
      first.map((n) => `${n['event']}/${n['rule_id'] || 'log'}`),
    );
    expect(run(batch, { readings: 9, statuses: 9, cdrs: 9, notifications: 9 }).notifications).toBe(
      '',
    );
    expect(first.filter((n) => n['event'] === 'session_ended').map((n) => n['rule_id'])).toEqual([
      '',
      'ends',
    ]);
  });
});

describe('S2/S3 expirations per operator, site and charger', () => {
  it('the charger own, else its site, else its operator, else the network', () => {
    expect(expirationsAt(index, 'CP1').ongoingS).toBe(600);
    expect(expirationsAt(index, 'CP2').ongoingS).toBe(900);
    expect(expirationsAt(index, 'CP3').ongoingS).toBe(1800);
    expect(expirationsAt(index, 'UNKNOWN').ongoingS).toBe(3600);
    expect(expirationsAt(index, 'CP1').readyS).toBe(30);
  });
});

describe('notification rules in the network file', () => {
  const bad = (rule: object) => {
    try {
      parseNetwork({ ...network, notificationRules: [rule] });
      return 'no error';
    } catch (e) {
      return (e as Error).message;
    }
  };
  it('name the field of a rule that cannot work', () => {
    expect(bad({ id: 'x', events: ['energy_limit'], publisher: 'log' })).toContain(
      'notificationRules[0].threshold: required for energy_limit',
    );
    expect(bad({ id: 'x', events: ['session_ended'], threshold: 5, publisher: 'log' })).toContain(
      'notificationRules[0].threshold: only threshold events',
    );
    expect(
      bad({
        id: 'x',
        events: ['session_ended'],
        publisher: 'webhook',
        secret: 'a-secret-of-16-chars',
      }),
    ).toContain('notificationRules[0].url');
    expect(
      bad({ id: 'x', events: ['session_ended'], publisher: 'webhook', url: 'http://h/x' }),
    ).toContain('notificationRules[0].secret');
    expect(bad({ id: 'x', events: ['no_such_event'], publisher: 'log' })).toContain(
      'notificationRules[0].events[0]',
    );
  });
});

describe('S1/S2 ready sessions', () => {
  const ready = (s: number, connectorId = 1, consumed = false): ChargerEvent => ({
    kind: 'ready',
    chargerId: 'CP1',
    connectorId,
    receivedAt: T0 + s * 1000,
    tokenId: 'tag-1',
    customerId: 'c',
    origin: 'authorize',
    ...(consumed ? { consumed } : {}),
  });
  const statuses = (text: string) =>
    sessionRows(text).map(
      (r) =>
        `${String(r['session_id']).replace(/-R\d+$/, '-R')}:${String(r['status'])}:${String(r['reason'])}`,
    );
  const sessionsOf = (events: ChargerEvent[], states = {}) =>
    processBatch(index, {
      partition: 2,
      entries: events.map((event, offset) => ({ offset, event })),
      states,
      highWater: NONE,
    });

  it('S1 ready → the start comes on its connector: the ready session closes as started, the session runs', () => {
    const out = sessionsOf([ready(0), { ...start(), tokenId: 'TAG-1' } as ChargerEvent]);
    expect(statuses(out.sessions)).toEqual([
      'CP1-1-R:ready:authorize',
      'CP1-1-R:closed:started',
      'CP1-1:in_progress:',
    ]);
  });

  it('S2 ready and no start within the expiration: closed start_timeout, nothing rated', () => {
    const first = sessionsOf([ready(0)]);
    const state = first.states['CP1/1']!;
    expect(state.session?.status).toBe('ready');
    const expired = processBatch(index, {
      partition: 2,
      entries: [
        {
          offset: 5,
          event: {
            kind: 'expire',
            chargerId: 'CP1',
            connectorId: 1,
            receivedAt: T0 + 31_000,
            transactionId: '',
            lastEventAt: state.session!.lastEventAt,
          },
        },
      ],
      states: { 'CP1/1': state },
      highWater: NONE,
    });
    expect(statuses(expired.sessions)).toEqual(['CP1-1-R:closed:start_timeout']);
    expect(expired.cdrs).toBe('');
    expect(expired.states['CP1/1']!.session).toBeNull();
  });

  it('S2 a start on another connector consumes the ready session of connector 0', () => {
    const out = sessionsOf([ready(0, 0), ready(5, 0, true)]);
    expect(statuses(out.sessions)).toEqual(['CP1-0-R:ready:authorize', 'CP1-0-R:closed:started']);
  });

  it('S4 connector_busy: a remote start for a connector already charging is refused there', () => {
    const out = sessionsOf([start(), { ...ready(10), origin: 'remote_start' } as ChargerEvent]);
    expect(statuses(out.sessions)).toEqual([
      'CP1-1:in_progress:',
      'CP1-1-R:rejected:connector_busy',
    ]);
    expect(notifications(out.notifications).map((n) => n['event'])).toContain('session_refused');
    expect(out.states['CP1/1']!.session?.status).toBe('in_progress');
  });
});

describe('S4 rejected reasons of sessions that never delivered energy', () => {
  const outcome = (events: ChargerEvent[]) => {
    const out = run(events);
    const rows = sessionRows(out.sessions);
    const last = rows.at(-1)!;
    return {
      status: `${String(last['status'])}:${String(last['reason'])}`,
      cdrs: out.cdrs,
      refused: notifications(out.notifications).some((n) => n['event'] === 'session_refused'),
    };
  };
  const readyEvent = (s: number, extra: object = {}): ChargerEvent => ({
    kind: 'ready',
    chargerId: 'CP1',
    connectorId: 1,
    receivedAt: T0 + s * 1000,
    tokenId: 'T',
    customerId: 'c',
    origin: 'remote_start',
    ...extra,
  });

  it('S4 ev_refused: the car held the session suspended and took no energy', () => {
    expect(outcome([start(), status('SuspendedEV', 5), values(0, 60), stop(0, 120)])).toEqual({
      status: 'rejected:ev_refused',
      cdrs: '',
      refused: true,
    });
  });

  it('S4 ev_not_connected: no car was ever reported at the connector', () => {
    expect(outcome([status('Preparing', 0), start(), stop(0, 120)])).toMatchObject({
      status: 'rejected:ev_not_connected',
      cdrs: '',
    });
  });

  it('S4 cancelled_by_user: the connector went back to Available while the start was awaited', () => {
    expect(outcome([status('Preparing', 0), readyEvent(1), status('Available', 20)])).toMatchObject(
      {
        status: 'rejected:cancelled_by_user',
        refused: true,
      },
    );
  });

  it('S4 charger_offline: the charger dropped its connection while the start was awaited', () => {
    expect(
      outcome([readyEvent(1), readyEvent(5, { consumed: true, outcome: 'charger_offline' })]),
    ).toMatchObject({ status: 'rejected:charger_offline' });
  });

  it('a session without energy and without any status is rated as any other', () => {
    expect(outcome([start(), stop(0, 120)]).status).toBe('rated:Local');
  });
});

describe('S7 inadequate-session flags', () => {
  it('S7 inconsistent_times: energy kept rising while the connector reported parking', () => {
    const out = run([
      start(),
      status('Charging', 1),
      values(300, 60),
      status('SuspendedEV', 90),
      values(600, 120),
      stop(600, 180),
    ]);
    const last = sessionRows(out.sessions).at(-1)!;
    expect(last['flags']).toContain('inconsistent_times');
    const fine = run([
      start(),
      status('Charging', 1),
      values(300, 60),
      status('SuspendedEV', 90),
      values(300, 120),
      stop(300, 180),
    ]);
    expect(sessionRows(fine.sessions).at(-1)!['flags']).not.toContain('inconsistent_times');
  });
});

describe('R3 tariff resolution and the authorized amount of a roaming platform', () => {
  const tariff = (id: string, price: string) => ({
    id,
    currency: 'EUR',
    elements: [{ components: [{ type: 'ENERGY', price, vat: '0' }] }],
  });
  const r3 = indexNetwork(
    parseNetwork({
      settings: { defaultTariff: 't-default' },
      organizations: [
        { id: 'cpo', type: 'cpo', tariff: 't-operator' },
        { id: 'roamer', type: 'emp', roamingTariff: 't-roaming', maxAuthorizedAmount: '1.00' },
        { id: 'home', type: 'emp' },
      ],
      sites: [
        { id: 'plain', operator: 'cpo' },
        { id: 'priced', operator: 'cpo', tariff: 't-site' },
      ],
      chargers: [
        { id: 'A', site: 'plain', connectors: [{ id: 1, maxPowerW: 50000 }] },
        { id: 'B', site: 'priced', connectors: [{ id: 1, maxPowerW: 50000 }] },
        { id: 'C', site: 'priced', tariff: 't-charger', connectors: [{ id: 1, maxPowerW: 50000 }] },
      ],
      tariffs: ['t-default', 't-operator', 't-roaming', 't-site', 't-charger', 't-member'].map(
        (id, i) => tariff(id, `0.${i + 1}0`),
      ),
      ratePlans: [{ id: 'member', tariff: 't-member' }],
      customers: [
        { id: 'local', organization: 'home', paymentType: 'postpaid' },
        { id: 'member', organization: 'home', paymentType: 'postpaid', ratePlan: 'member' },
        { id: 'guest', organization: 'roamer', paymentType: 'postpaid' },
      ],
    }),
  );

  it('R3 rate plan, roaming platform, charger, site, operator, network default — most specific first', () => {
    const id = (charger: string, customer: string) => resolveTariff(r3, charger, customer, 0)?.id;
    expect(id('A', 'local')).toBe('t-operator');
    expect(id('B', 'local')).toBe('t-site');
    expect(id('C', 'local')).toBe('t-charger');
    expect(id('C', 'guest')).toBe('t-roaming');
    expect(id('C', 'member')).toBe('t-member');
  });

  it('R3 the roaming platform authorized amount raises monetary_limit once in the stored log', () => {
    const guestStart = { ...start(), chargerId: 'A', customerId: 'guest' } as ChargerEvent;
    const reading = (wh: number, s: number) => ({ ...values(wh, s), chargerId: 'A' });
    // t-roaming: 0.30 EUR/kWh, no VAT: 1.00 EUR at 3.34 kWh.
    const out = processBatch(r3, {
      partition: 1,
      entries: [guestStart, reading(2000, 600), reading(4000, 1200), reading(6000, 1800)].map(
        (event, offset) => ({
          offset,
          event,
        }),
      ),
      states: {},
      highWater: NONE,
    });
    const limits = notifications(out.notifications).filter((n) => n['event'] === 'monetary_limit');
    expect(limits).toHaveLength(1);
    expect(limits[0]).toMatchObject({ rule_id: '', publisher: 'log', customer_id: 'guest' });
    expect(JSON.parse(String(limits[0]!['payload']))).toMatchObject({
      threshold: '1.00',
      authorized: true,
    });
  });
});
