import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aBootNotification } from '../helpers/builders.js';
import {
  eventually,
  sql,
  startEngine,
  tempDir,
  writeNetwork,
  type RunningEngine,
} from '../helpers/engine.js';
import { TestCharger } from '../helpers/ocpp-client.js';

const KEY = 'gateway-admin-key-0123456789';
const ANALYST = 'gateway-analyst-key-0123456789';
const PASSWORD = 'gateway-password-0123';
const network = {
  settings: { autoRegisterChargers: true },
  organizations: [{ id: 'o', type: 'cpo' }],
  sites: [{ id: 's', operator: 'o' }],
  chargers: [
    { id: 'OPEN-1', site: 's', connectors: [{ id: 1, maxPowerW: 22_000 }] },
    { id: 'LOCKED-1', site: 's', password: PASSWORD, connectors: [{ id: 1, maxPowerW: 22_000 }] },
    { id: 'CMD-16', site: 's', password: PASSWORD, connectors: [{ id: 1, maxPowerW: 22_000 }] },
    { id: 'CMD-201', site: 's', password: PASSWORD, connectors: [{ id: 1, maxPowerW: 22_000 }] },
  ],
  apiKeys: [
    { key: KEY, role: 'admin', organization: 'o' },
    { key: ANALYST, role: 'analyst', organization: 'o' },
  ],
};

let engine: RunningEngine;
beforeAll(async () => {
  const dir = tempDir();
  engine = await startEngine({ config: writeNetwork(dir, network), dataDir: join(dir, 'data') });
});
afterAll(async () => {
  await engine?.stop();
});

const command = (chargerId: string, action: string, payload: unknown, key = KEY, query = '') =>
  fetch(`${engine.apiUrl}/api/v1/chargers/${chargerId}/commands/${action}${query}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${key}` },
    body: JSON.stringify(payload),
  });

// Registration, identity, takeover, rate limits and half-open sockets (reliability.md 7–10, 12):
// test/reliability/.
describe('gateway: commands', () => {
  it('sends engine-initiated calls one at a time, validates them, and records the results', async () => {
    const cp = await TestCharger.connect(`${engine.ocppUrl}/CMD-16`, { password: PASSWORD });
    cp.answerCalls((action, payload) =>
      action === 'GetConfiguration'
        ? { configurationKey: [], unknownKey: (payload['key'] as string[]) ?? [] }
        : { status: 'Accepted' },
    );
    const reply = await command('CMD-16', 'GetConfiguration', {
      key: ['MeterValueSampleInterval'],
    });
    expect(reply.status).toBe(200);
    expect(await reply.json()).toMatchObject({
      response: { configurationKey: [], unknownKey: ['MeterValueSampleInterval'] },
      responseValid: true,
    });
    // Two at once: the second goes out only after the first is answered.
    const both = await Promise.all([
      command('CMD-16', 'ChangeConfiguration', { key: 'HeartbeatInterval', value: '300' }),
      command('CMD-16', 'Reset', { type: 'Soft' }),
    ]);
    expect(both.map((r) => r.status)).toEqual([200, 200]);
    expect(cp.maxOutstandingCalls).toBe(1);

    expect((await command('CMD-16', 'Reset', { type: 'Sideways' })).status).toBe(400);
    const notCommand = await command('CMD-16', 'SetVariables', { setVariableData: [] });
    expect(notCommand.status).toBe(400);
    expect(await notCommand.json()).toMatchObject({ error: { code: 'NOT_A_COMMAND' } });
    expect((await command('CMD-16', 'Reset', { type: 'Soft' }, ANALYST)).status).toBe(403);
    expect((await command('NOBODY', 'Reset', { type: 'Soft' })).status).toBe(404);
    expect((await command('OPEN-1', 'Reset', { type: 'Soft' })).status).toBe(409);

    cp.answerCalls(() => null); // silent charger
    const timedOut = await command('CMD-16', 'ClearCache', {}, KEY, '?timeoutMs=300');
    expect(timedOut.status).toBe(504);
    cp.close();

    const rows = await sql<{ action: string; status: string }>(
      engine,
      KEY,
      "SELECT action, status FROM charger_commands WHERE charger_id = 'CMD-16' ORDER BY ts",
    );
    expect(rows).toEqual([
      { action: 'GetConfiguration', status: 'accepted' },
      { action: 'ChangeConfiguration', status: 'accepted' },
      { action: 'Reset', status: 'accepted' },
      { action: 'ClearCache', status: 'timeout' },
    ]);
  });

  it('2.0.1 commands use 2.0.1 actions; a CALLERROR answer is a 502', async () => {
    const cs = await TestCharger.connect(`${engine.ocppUrl}/CMD-201`, {
      password: PASSWORD,
      protocols: ['ocpp2.0.1'],
    });
    expect(cs.protocol).toBe('ocpp2.0.1');
    cs.answerCalls((action) =>
      action === 'Reset' ? { status: 'Accepted' } : new Error('NotSupported'),
    );
    expect((await command('CMD-201', 'Reset', { type: 'Immediate' })).status).toBe(200);
    const refused = await command('CMD-201', 'GetBaseReport', {
      requestId: 1,
      reportBase: 'FullInventory',
    });
    expect(refused.status).toBe(502);
    expect(await refused.json()).toMatchObject({ error: { code: 'CHARGER_CALL_ERROR' } });
    cs.close();
  });
});

describe('provisioning (H1)', () => {
  it('H1 an accepted BootNotification is followed by the integration profile, recorded per charger', async () => {
    const cp = await TestCharger.connect(`${engine.ocppUrl}/CMD-16`, { password: PASSWORD });
    const received: Array<Record<string, unknown>> = [];
    cp.answerCalls((action, payload) => {
      if (action === 'ChangeConfiguration') received.push(payload);
      return { status: payload['key'] === 'LocalAuthorizeOffline' ? 'Rejected' : 'Accepted' };
    });
    expect((await cp.call('BootNotification', aBootNotification())).ok).toBe(true);
    await eventually(
      () => Promise.resolve(received.length),
      (n) => n === 8,
      10_000,
    );
    expect(Object.fromEntries(received.map((p) => [p['key'], p['value']]))).toEqual({
      MeterValueSampleInterval: '15',
      MeterValuesSampledData:
        'Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage,SoC',
      ConnectionTimeOut: '25',
      AuthorizeRemoteTxRequests: 'true',
      AuthorizationCacheEnabled: 'false',
      LocalAuthorizeOffline: 'false',
      AllowOfflineTxForUnknownId: 'false',
      TransactionMessageAttempts: '3',
    });
    cp.close();
    // Refusals are visible to operators: the charger's answer is kept.
    const rows = await eventually(
      () =>
        sql<{ response: string }>(
          engine,
          KEY,
          "SELECT response FROM charger_commands WHERE charger_id = 'CMD-16' AND requested_by = 'engine/provisioning' AND request LIKE '%LocalAuthorizeOffline%'",
        ),
      (r) => r.length === 1,
    );
    expect(JSON.parse(rows[0]!.response)).toEqual({ status: 'Rejected' });
  });

  it('H1 a 2.0.1 charger gets the same profile as SetVariables', async () => {
    const cs = await TestCharger.connect(`${engine.ocppUrl}/CMD-201`, {
      password: PASSWORD,
      protocols: ['ocpp2.0.1'],
    });
    let variables: Array<{
      component: { name: string };
      variable: { name: string };
      attributeValue: string;
    }> = [];
    cs.answerCalls((action, payload) => {
      if (action !== 'SetVariables') return null;
      variables = payload['setVariableData'] as typeof variables;
      return {
        setVariableResult: variables.map((v) => ({
          attributeStatus: 'Accepted',
          component: v.component,
          variable: v.variable,
        })),
      };
    });
    expect(
      (
        await cs.call('BootNotification', {
          reason: 'PowerUp',
          chargingStation: { model: 'm', vendorName: 'v' },
        })
      ).ok,
    ).toBe(true);
    await eventually(
      () => Promise.resolve(variables.length),
      (n) => n === 8,
      10_000,
    );
    expect(variables.find((v) => v.variable.name === 'TxUpdatedInterval')?.attributeValue).toBe(
      '15',
    );
    expect(variables.find((v) => v.component.name === 'AuthCacheCtrlr')?.attributeValue).toBe(
      'false',
    );
    cs.close();
  });
});
