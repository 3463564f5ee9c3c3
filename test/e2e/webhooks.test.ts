import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, aBootNotification, aCharger, aNetwork, at } from '../helpers/builders.js';
import {
  eventually,
  sql,
  startEngine,
  tempDir,
  writeNetwork,
  type RunningEngine,
} from '../helpers/engine.js';
import { TestCharger } from '../helpers/ocpp-client.js';
import { driveSession } from '../helpers/sessions.js';

/**
 * N2 end to end: rules in the network file, a webhook receiver in the test that refuses the
 * first attempt of every notification, the engine retrying; each expected notification is
 * taken exactly once, signed; and what was not delivered before a crash goes out after the
 * restart.
 */
const SECRET = 'webhook-secret-0123456789';
interface Received {
  id: string;
  event: string;
  body: Record<string, unknown>;
}
const accepted: Received[] = [];
const attempts = new Map<string, number>();
let refuseAll = false;
let receiver: Server;
let hookUrl = '';

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const id = String(req.headers['x-chargestream-notification-id']);
      const [t, v1] = String(req.headers['x-chargestream-signature'])
        .split(',')
        .map((p) => p.split('=')[1]);
      const expected = createHmac('sha256', SECRET).update(`${t}.${body}`).digest('hex');
      const n = (attempts.get(id) ?? 0) + 1;
      attempts.set(id, n);
      if (v1 !== expected) {
        res.writeHead(401).end('bad signature');
        return;
      }
      // Every notification's first attempt fails; while refuseAll, every attempt does.
      if (n === 1 || refuseAll) {
        res.writeHead(503).end('try later');
        return;
      }
      const parsed = JSON.parse(body) as Record<string, unknown>;
      accepted.push({ id, event: String(parsed['event']), body: parsed });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
  hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks/chargestream`;
});

afterAll(() => {
  receiver.close();
});

const network = () =>
  aNetwork({
    chargers: [aCharger('HOOK-1'), aCharger('HOOK-2')],
    notificationRules: [
      {
        id: 'ops-hook',
        events: ['session_started', 'session_ended', 'status_changed'],
        statuses: ['Faulted'],
        receiver: 'ops@example.org',
        publisher: 'webhook',
        url: hookUrl,
        secret: SECRET,
      },
      {
        id: 'stations',
        events: ['station_connected', 'station_booted', 'station_disconnected'],
        publisher: 'log',
      },
      {
        id: 'driver-energy',
        events: ['energy_limit'],
        threshold: 1000,
        receiver: 'customer',
        publisher: 'webhook',
        url: hookUrl,
        secret: SECRET,
      },
    ],
  });

describe('webhook notifications', () => {
  let engine: RunningEngine;
  const dir = tempDir();

  afterAll(async () => {
    await engine?.stop('SIGKILL');
  });

  it('N2 each expected notification reaches the webhook exactly once, signed, although every first attempt fails', async () => {
    engine = await startEngine({
      config: writeNetwork(dir, network()),
      dataDir: join(dir, 'data'),
    });
    const cp = await TestCharger.connect(`${engine.ocppUrl}/HOOK-1`);
    expect(
      (await cp.call('BootNotification', aBootNotification({ firmwareVersion: '1.2.3' }))).ok,
    ).toBe(true);
    await driveSession(cp, [
      [0, 0],
      [600, 600],
      [1_500, 1200],
      [2_000, 1800],
    ]);
    const faulted = await cp.call('StatusNotification', {
      connectorId: 1,
      status: 'Faulted',
      errorCode: 'GroundFailure',
      timestamp: at(1900),
    });
    expect(faulted.ok).toBe(true);
    cp.close();
    await eventually(
      () => Promise.resolve(accepted.length),
      (n) => n >= 4,
      30_000,
    );
    // Time for any repeat to show up.
    await new Promise((r) => setTimeout(r, 2500));
    expect(accepted.map((a) => a.event).sort()).toEqual([
      'energy_limit',
      'session_ended',
      'session_started',
      'status_changed',
    ]);
    expect(new Set(accepted.map((a) => a.id)).size).toBe(4);
    for (const a of accepted) expect(attempts.get(a.id), a.event).toBe(2);
    const energy = accepted.find((a) => a.event === 'energy_limit')!.body;
    expect(energy).toMatchObject({ rule: 'driver-energy', receiver: 'c', sessionId: 'HOOK-1-1' });
    const status = accepted.find((a) => a.event === 'status_changed')!.body;
    expect(status['payload']).toEqual({
      status: 'Faulted',
      errorCode: 'GroundFailure',
      highlighted: true,
    });
    const deliveries = await eventually(
      () =>
        sql<{ status: string; attempts: number }>(
          engine,
          ADMIN_KEY,
          'SELECT status, attempts FROM notification_deliveries',
        ),
      (rows) => rows.length === 4,
      10_000,
    );
    expect(deliveries.every((d) => d.status === 'delivered' && d.attempts === 2)).toBe(true);
    // N1 charger scope, for the rule that asks: connected, booted (with its details), disconnected.
    const stations = await eventually(
      () =>
        sql<{ event: string; scope: string; payload: string }>(
          engine,
          ADMIN_KEY,
          "SELECT event, scope, payload FROM notifications WHERE rule_id = 'stations' AND charger_id = 'HOOK-1' ORDER BY log_offset",
        ),
      (rows) => rows.length === 3,
      10_000,
    );
    expect(stations.map((r) => r.event)).toEqual([
      'station_connected',
      'station_booted',
      'station_disconnected',
    ]);
    expect(stations.every((r) => r.scope === 'charger')).toBe(true);
    expect(JSON.parse(stations[1]!.payload)).toEqual({
      vendor: 'chargestream-test',
      model: 'e2e',
      firmware: '1.2.3',
    });
  });

  it('N2 a notification not delivered before a crash is delivered after the restart, once', async () => {
    refuseAll = true;
    const cp = await TestCharger.connect(`${engine.ocppUrl}/HOOK-2`);
    await driveSession(cp, [
      [0, 0],
      [400, 600],
    ]);
    cp.close();
    const before = accepted.length;
    // Stored, attempted, refused: then the engine dies.
    await eventually(
      () =>
        sql<{ n: string }>(
          engine,
          ADMIN_KEY,
          "SELECT toString(count()) AS n FROM notifications WHERE charger_id = 'HOOK-2' AND publisher = 'webhook'",
        ),
      (rows) => rows[0]?.n === '2',
      15_000,
    );
    await new Promise((r) => setTimeout(r, 500));
    await engine.stop('SIGKILL');
    refuseAll = false;
    engine = await startEngine({
      config: writeNetwork(dir, network()),
      dataDir: join(dir, 'data'),
    });
    await eventually(
      () => Promise.resolve(accepted.length - before),
      (n) => n >= 2,
      30_000,
    );
    await new Promise((r) => setTimeout(r, 2000));
    const after = accepted.slice(before);
    expect(after.map((a) => `${a.event}/${String(a.body['sessionId'])}`).sort()).toEqual([
      'session_ended/HOOK-2-2',
      'session_started/HOOK-2-2',
    ]);
    // Nothing of the first session went out again.
    expect(new Set(accepted.map((a) => a.id)).size).toBe(accepted.length);
  });
});
