import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aBootNotification } from '../helpers/builders.js';
import { startEngine, tempDir, writeNetwork, type RunningEngine } from '../helpers/engine.js';
import { TestCharger } from '../helpers/ocpp-client.js';

/** Security profile 2: HTTP Basic over TLS (wss://), with a certificate made for the test. */
const PASSWORD = 'tls-profile-2-password';
let engine: RunningEngine;
let ca: string;

beforeAll(async () => {
  const dir = tempDir();
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
  ca = readFileSync(cert, 'utf8');
  const network = {
    organizations: [{ id: 'o', type: 'cpo' }],
    sites: [{ id: 's', operator: 'o' }],
    chargers: [
      { id: 'TLS-1', site: 's', password: PASSWORD, connectors: [{ id: 1, maxPowerW: 22_000 }] },
    ],
  };
  engine = await startEngine({
    config: writeNetwork(dir, network),
    dataDir: join(dir, 'data'),
    extraArgs: ['--tls-cert', cert, '--tls-key', key],
  });
});
afterAll(async () => {
  await engine?.stop();
});

describe('security profile 2', () => {
  it('serves wss:// with Basic credentials; wrong credentials are refused over TLS too', async () => {
    expect(engine.ocppUrl.startsWith('wss://')).toBe(true);
    const charger = await TestCharger.connect(`${engine.ocppUrl}/TLS-1`, {
      password: PASSWORD,
      ca,
    });
    expect(await charger.call('BootNotification', aBootNotification())).toMatchObject({
      ok: true,
      payload: { status: 'Accepted' },
    });
    charger.close();
    await expect(
      TestCharger.connect(`${engine.ocppUrl}/TLS-1`, { password: 'wrong-password-0000', ca }),
    ).rejects.toThrow('401');
  });
});
