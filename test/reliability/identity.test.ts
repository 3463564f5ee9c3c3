import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aBootNotification } from '../helpers/builders.js';
import {
  eventually,
  startEngine,
  tempDir,
  writeNetwork,
  type RunningEngine,
} from '../helpers/engine.js';
import { TestCharger } from '../helpers/ocpp-client.js';
import { startChargerProcess, type ChargerProcess } from './charger-process.js';
import { recordFigure } from './figures.js';
import { crashesIn } from './harness.js';

/**
 * reliability.md 7 (before acceptance), 8 (the authentication matrix at the upgrade), 9
 * (same-identity takeover, also while the owner is half-open) and 10 (failed upgrades limited
 * per source), against one engine process.
 */
const KEY = 'identity-admin-key-0123456789';
const PASSWORD = 'identity-password-0123';
const OTHER_PASSWORD = 'another-password-456789';
const network = {
  organizations: [{ id: 'o', type: 'cpo' }],
  sites: [{ id: 's', operator: 'o' }],
  chargers: [
    { id: 'OPEN-1', site: 's', connectors: [{ id: 1, maxPowerW: 22_000 }] },
    { id: 'OPEN-2', site: 's', connectors: [{ id: 1, maxPowerW: 22_000 }] },
    { id: 'LOCKED-1', site: 's', password: PASSWORD, connectors: [{ id: 1, maxPowerW: 22_000 }] },
    { id: 'LOCKED-2', site: 's', password: PASSWORD, connectors: [{ id: 1, maxPowerW: 22_000 }] },
    { id: 'LOCKED-3', site: 's', password: PASSWORD, connectors: [{ id: 1, maxPowerW: 22_000 }] },
    {
      id: 'OTHER-1',
      site: 's',
      password: OTHER_PASSWORD,
      connectors: [{ id: 1, maxPowerW: 22_000 }],
    },
  ],
  apiKeys: [{ key: KEY, role: 'admin', organization: 'o' }],
};

let engine: RunningEngine;
const children: ChargerProcess[] = [];
beforeAll(async () => {
  const dir = tempDir();
  engine = await startEngine({ config: writeNetwork(dir, network), dataDir: join(dir, 'data') });
});
afterAll(async () => {
  for (const c of children) c.kill();
  await engine?.stop();
});

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** The HTTP status of an upgrade attempt: 101 when the engine accepted it. */
async function upgrade(
  identity: string,
  headers: Record<string, string>,
  localAddress: string,
): Promise<number> {
  const key = randomBytes(16).toString('base64');
  const url = `${engine.ocppUrl.replace(/^ws/, 'http')}/${identity}`;
  return new Promise((resolve, reject) => {
    // A connection of its own per attempt, as a WebSocket client makes (no keep-alive reuse).
    const req = request(url, {
      agent: false,
      localAddress,
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': key,
        'Sec-WebSocket-Protocol': 'ocpp1.6',
        ...headers,
      },
    });
    req.once('upgrade', (res, socket) => {
      socket.destroy();
      resolve(res.statusCode ?? 0);
    });
    req.once('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.once('error', reject);
    req.end();
  });
}

const command = (chargerId: string, action: string, payload: unknown) =>
  fetch(`${engine.apiUrl}/api/v1/chargers/${chargerId}/commands/${action}?timeoutMs=2000`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${KEY}` },
    body: JSON.stringify(payload),
  });

describe('reliability.md 7: before acceptance', () => {
  // Pending comes from auto-registration: a charger not in the network is let in to boot and
  // waits for an operator. An engine of its own, so that the others refuse unknown identities.
  let registering: RunningEngine;
  beforeAll(async () => {
    const dir = tempDir();
    registering = await startEngine({
      config: writeNetwork(dir, { ...network, settings: { autoRegisterChargers: true } }),
      dataDir: join(dir, 'data'),
    });
  });
  afterAll(async () => {
    await registering?.stop();
  });

  it('a charger not accepted gets SecurityError for everything but BootNotification; an accepted one reconnecting without a boot is served', async () => {
    // Auto-registered (not in the network): Pending until an operator adds it.
    const stranger = await TestCharger.connect(`${registering.ocppUrl}/NEW-CHARGER-1`);
    const boot = await stranger.call('BootNotification', aBootNotification());
    expect(boot).toMatchObject({ ok: true, payload: { status: 'Pending' } });
    const attempts: Array<[string, object]> = [
      ['Heartbeat', {}],
      ['StatusNotification', { connectorId: 1, errorCode: 'NoError', status: 'Available' }],
      ['Authorize', { idTag: 'TAG' }],
      [
        'StartTransaction',
        { connectorId: 1, idTag: 'TAG', meterStart: 0, timestamp: new Date().toISOString() },
      ],
      [
        'MeterValues',
        {
          connectorId: 1,
          meterValue: [{ timestamp: new Date().toISOString(), sampledValue: [{ value: '1' }] }],
        },
      ],
      ['DataTransfer', { vendorId: 'v' }],
    ];
    let wronglyAccepted = 0;
    for (const [action, payload] of attempts) {
      const answer = await stranger.call(action, payload);
      if (answer.ok || answer.code !== 'SecurityError') wronglyAccepted += 1;
    }
    stranger.close();

    const first = await TestCharger.connect(`${registering.ocppUrl}/LOCKED-1`, {
      password: PASSWORD,
    });
    expect((await first.call('BootNotification', aBootNotification())).ok).toBe(true);
    first.close();
    let wronglyRefused = 0;
    for (let i = 0; i < 3; i++) {
      const again = await TestCharger.connect(`${registering.ocppUrl}/LOCKED-1`, {
        password: PASSWORD,
      });
      const status = await again.call('StatusNotification', {
        connectorId: 1,
        errorCode: 'NoError',
        status: 'Available',
      });
      if (!status.ok) wronglyRefused += 1;
      again.close();
    }
    recordFigure(
      7,
      `messages wrongly accepted before acceptance (of ${attempts.length})`,
      wronglyAccepted,
    );
    recordFigure(7, 'reconnecting chargers wrongly refused (of 3)', wronglyRefused);
    expect(wronglyAccepted).toBe(0);
    expect(wronglyRefused).toBe(0);
  });
});

describe('reliability.md 8: authentication matrix at the upgrade', () => {
  it('every bad attempt is refused before any OCPP; the right credentials are accepted', async () => {
    // From a loopback address of their own: the failures count against that source only.
    const from = '127.0.0.5';
    const cases: Array<[string, string, Record<string, string>, number]> = [
      [
        'wrong password',
        'LOCKED-2',
        { Authorization: basic('LOCKED-2', 'not-the-password-1234') },
        401,
      ],
      [
        'user is not the URL identity',
        'LOCKED-2',
        { Authorization: basic('LOCKED-3', PASSWORD) },
        401,
      ],
      [
        "another charger's own credentials",
        'LOCKED-2',
        { Authorization: basic('OTHER-1', OTHER_PASSWORD) },
        401,
      ],
      [
        'password of another charger',
        'LOCKED-2',
        { Authorization: basic('LOCKED-2', OTHER_PASSWORD) },
        401,
      ],
      ['missing header', 'LOCKED-2', {}, 401],
      ['not Basic', 'LOCKED-2', { Authorization: `Bearer ${PASSWORD}` }, 401],
      ['short password', 'LOCKED-2', { Authorization: basic('LOCKED-2', 'short') }, 401],
      ['empty password', 'LOCKED-2', { Authorization: basic('LOCKED-2', '') }, 401],
      [
        'no colon in the credentials',
        'LOCKED-2',
        { Authorization: `Basic ${Buffer.from('LOCKED-2').toString('base64')}` },
        401,
      ],
      [
        'password with a prefix of the right one',
        'LOCKED-2',
        { Authorization: basic('LOCKED-2', PASSWORD.slice(0, 16)) },
        401,
      ],
      [
        "':' in the identity",
        encodeURIComponent('LOCKED-2:x'),
        { Authorization: basic('LOCKED-2', PASSWORD) },
        400,
      ],
      ['unknown identity', 'NOBODY-1', { Authorization: basic('NOBODY-1', PASSWORD) }, 404],
      ['identity in another case', 'locked-2', { Authorization: basic('locked-2', PASSWORD) }, 404],
      ['identity with a space', encodeURIComponent('LOCKED 2'), {}, 400],
    ];
    const outcomes: Array<{ name: string; status: number; expected: number }> = [];
    for (const [name, identity, headers, expected] of cases) {
      outcomes.push({ name, status: await upgrade(identity, headers, from), expected });
    }
    const accepted = outcomes.filter((o) => o.status === 101);
    const good = await upgrade(
      'LOCKED-2',
      { Authorization: basic('LOCKED-2', PASSWORD) },
      '127.0.0.6',
    );
    recordFigure(8, `bad attempts accepted (of ${cases.length})`, accepted.length);
    expect(accepted).toEqual([]);
    expect(outcomes.map((o) => `${o.name}: ${o.status}`)).toEqual(
      outcomes.map((o) => `${o.name}: ${o.expected}`),
    );
    expect(good).toBe(101);
  });
});

describe('reliability.md 9: same-identity takeover', () => {
  it('a charger without credentials: a second connection is refused while the first lives, also while it is half-open', async () => {
    const hijacks: string[] = [];
    const open = await TestCharger.connect(`${engine.ocppUrl}/OPEN-1`);
    const second = await upgrade('OPEN-1', {}, '127.0.0.7');
    if (second === 101) hijacks.push('OPEN-1 alive');
    expect((await open.call('Heartbeat', {})).ok).toBe(true);
    open.close();

    // Half-open: the owner's process is stopped; its TCP connection stays up.
    const owner = await startChargerProcess(`${engine.ocppUrl}/OPEN-2`);
    children.push(owner);
    owner.process.kill('SIGSTOP');
    const whileStopped = await upgrade('OPEN-2', {}, '127.0.0.7');
    if (whileStopped === 101) hijacks.push('OPEN-2 half-open');
    owner.process.kill('SIGCONT');
    owner.kill();
    recordFigure(9, 'hijacks of a charger without credentials (alive, half-open)', hijacks.length);
    expect({ second, whileStopped }).toEqual({ second: 409, whileStopped: 409 });
    expect(hijacks).toEqual([]);
  });

  it('a charger with credentials, half-open: impostors are refused, commands never reach them, the charger itself takes its identity back', async () => {
    const hijacks: string[] = [];
    const owner = await startChargerProcess(`${engine.ocppUrl}/LOCKED-3`, PASSWORD);
    children.push(owner);
    expect((await command('LOCKED-3', 'ClearCache', {})).status).toBe(200);
    owner.process.kill('SIGSTOP');
    const impostors: Array<[string, Record<string, string>]> = [
      ['no credentials', {}],
      ['wrong password', { Authorization: basic('LOCKED-3', 'guessed-password-000') }],
      ["a sibling's credentials", { Authorization: basic('LOCKED-2', PASSWORD) }],
    ];
    for (const [name, headers] of impostors) {
      const status = await upgrade('LOCKED-3', headers, '127.0.0.8');
      if (status === 101) hijacks.push(name);
    }
    // The owner is stopped and no impostor holds the identity: the command times out.
    const whileStopped = await command('LOCKED-3', 'ClearCache', {});
    if (whileStopped.status === 200) hijacks.push('a command answered while the owner was stopped');
    expect(whileStopped.status).toBe(504);
    // The charger itself (its password) replaces the half-open connection.
    const back = await TestCharger.connect(`${engine.ocppUrl}/LOCKED-3`, { password: PASSWORD });
    back.answerCalls(() => ({ status: 'Accepted' }));
    const reply = await command('LOCKED-3', 'ClearCache', {});
    expect(reply.status).toBe(200);
    owner.process.kill('SIGCONT');
    await eventually(
      () => Promise.resolve(owner.lines()),
      (lines) => lines.some((l) => l.startsWith('closed')),
      10_000,
    );
    // The command sent while the owner was stopped waited in the owner's own socket; the one
    // after the reconnect reached the charger that proved its identity.
    const reachedBack = back.frames.filter((f) => f[0] === 2 && f[2] === 'ClearCache').length;
    back.close();
    recordFigure(
      9,
      `hijacks of a half-open charger with credentials (${impostors.length} impostors)`,
      hijacks.length,
    );
    expect(hijacks).toEqual([]);
    expect(reachedBack).toBe(1);
  });
});

describe('reliability.md 10: brute force', () => {
  it('failed upgrades from one source are refused 429 after the limit; a charger from another source still connects', async () => {
    let failures = 0;
    let limitedAfter = -1;
    const statuses: number[] = [];
    for (let i = 0; i < 100 && limitedAfter < 0; i++) {
      const status = await upgrade(
        'LOCKED-2',
        { Authorization: basic('LOCKED-2', `wrong-password-${String(i).padStart(6, '0')}`) },
        '127.0.0.3',
      );
      statuses.push(status);
      if (status === 429) limitedAfter = failures;
      else if (status === 101) throw new Error('a wrong password was accepted');
      else failures += 1;
    }
    // Even the right password is refused from the blocked source until the window passes.
    const fromBlocked = await upgrade(
      'LOCKED-2',
      { Authorization: basic('LOCKED-2', PASSWORD) },
      '127.0.0.3',
    );
    const t = performance.now();
    const legit = await TestCharger.connect(`${engine.ocppUrl}/LOCKED-2`, { password: PASSWORD });
    const connectMs = performance.now() - t;
    expect((await legit.call('Heartbeat', {})).ok).toBe(true);
    legit.close();
    expect(new Set(statuses)).toEqual(new Set([401, 429]));
    recordFigure(10, 'failed upgrades from one source before 429', limitedAfter);
    recordFigure(
      10,
      'legitimate connect from another source meanwhile (ms)',
      Math.round(connectMs),
    );
    expect(limitedAfter).toBeGreaterThan(0);
    expect(fromBlocked).toBe(429);
    expect(crashesIn(engine.output())).toBe(0);
  });
});
