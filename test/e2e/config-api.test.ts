import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ADMIN_KEY,
  aMeterValues,
  aNetwork,
  aStartTransaction,
  aStopTransaction,
  at,
} from '../helpers/builders.js';
import {
  eventually,
  sql,
  startEngine,
  tempDir,
  writeNetwork,
  type RunningEngine,
} from '../helpers/engine.js';
import { TestCharger } from '../helpers/ocpp-client.js';

/**
 * The configuration API against the running engine: changes reach the gateway's
 * authorization and the workers' rating without a restart, are checked like the network
 * file, and survive a restart.
 */
const KEYS = {
  admin: ADMIN_KEY,
  finance: 'test-finance-key-0123456789',
  operator: 'test-operator-key-0123456789',
  analyst: 'test-analyst-key-0123456789',
  viewer: 'test-viewer-key-0123456789',
  subOperator: 'test-sub-operator-key-012345',
};

const network = aNetwork({
  organizations: [
    { id: 'o', type: 'cpo' },
    { id: 'o-sub', type: 'cpo', parent: 'o' },
    { id: 'other', type: 'cpo' },
  ],
  sites: [
    { id: 's', operator: 'o' },
    { id: 's-sub', operator: 'o-sub' },
    { id: 's-other', operator: 'other' },
  ],
  apiKeys: [
    { key: KEYS.admin, role: 'admin', organization: 'o' },
    { key: KEYS.finance, role: 'financial_support', organization: 'o' },
    { key: KEYS.operator, role: 'operator', organization: 'o' },
    { key: KEYS.analyst, role: 'analyst', organization: 'o' },
    { key: KEYS.viewer, role: 'viewer', organization: 'o' },
    { key: KEYS.subOperator, role: 'operator', organization: 'o-sub' },
  ],
});

let engine: RunningEngine;
let configFile: string;
let dataDir: string;

beforeAll(async () => {
  const dir = tempDir();
  configFile = writeNetwork(dir, network);
  dataDir = join(dir, 'data');
  engine = await startEngine({ config: configFile, dataDir });
});

afterAll(async () => {
  await engine?.stop();
});

async function api(
  method: string,
  path: string,
  key: string | null,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${engine.apiUrl}${path}`, {
    method,
    headers: key === null ? {} : { Authorization: `Bearer ${key}` },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

const errorCode = (r: { body: Record<string, unknown> }) =>
  (r.body['error'] as { code?: string } | undefined)?.code;

/** Sessions start an hour apart: an identical StartTransaction would be a resend (scenario 1). */
let sessions = 0;

async function charge(chargerId: string, idTag: string, wh: number): Promise<string> {
  const t0 = 7200 * sessions++;
  const cp = await TestCharger.connect(`${engine.ocppUrl}/${chargerId}`);
  try {
    const started = await cp.call(
      'StartTransaction',
      aStartTransaction({ idTag, meterStart: 0, timestamp: at(t0) }),
    );
    if (!started.ok) throw new Error(started.description);
    const tx = started.payload['transactionId'] as number;
    const reading = aMeterValues({ transactionId: tx, wh, seconds: t0 + 1800 });
    expect((await cp.call('MeterValues', reading)).ok).toBe(true);
    const stop = aStopTransaction({ transactionId: tx, meterStop: wh, timestamp: at(t0 + 3600) });
    expect((await cp.call('StopTransaction', stop)).ok).toBe(true);
    return `${chargerId}-${tx}`;
  } finally {
    cp.close();
  }
}

async function cdrTotal(sessionId: string): Promise<string> {
  const [row] = await eventually(
    () =>
      sql<{ total: string }>(
        engine,
        ADMIN_KEY,
        `SELECT toString(total_incl_vat) AS total FROM cdrs WHERE session_id = '${sessionId}'`,
      ),
    (rows) => rows.length === 1,
  );
  return row!.total;
}

describe('configuration API', () => {
  it('a charger created through the API is accepted at once, and rated by a tariff created through the API', async () => {
    await expect(TestCharger.connect(`${engine.ocppUrl}/NEW-1`)).rejects.toThrow(/404/);
    const tariff = await api('PUT', '/api/v1/tariffs/t-api', KEYS.finance, {
      currency: 'EUR',
      elements: [{ components: [{ type: 'ENERGY', price: '0.50', vat: '20' }] }],
    });
    expect(tariff.status).toBe(201);
    const created = await api('PUT', '/api/v1/chargers/NEW-1', KEYS.operator, {
      site: 's',
      tariff: 't-api',
      connectors: [{ id: 1, maxPowerW: 22_000 }],
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ id: 'NEW-1', site: 's', tariff: 't-api' });
    expect((await api('GET', '/api/v1/chargers/NEW-1', KEYS.viewer)).body).toMatchObject({
      id: 'NEW-1',
      tariff: 't-api',
    });
    // 10 kWh at 0.50 + 20 % = 6.00 (the file's default tariff would give 3.66).
    expect(Number(await cdrTotal(await charge('NEW-1', 'TAG', 10_000)))).toBe(6.0);

    // A new price for the tariff: the next session is rated with it.
    const repriced = await api('PUT', '/api/v1/tariffs/t-api', KEYS.admin, {
      currency: 'EUR',
      elements: [{ components: [{ type: 'ENERGY', price: '0.40', vat: '20' }] }],
    });
    expect(repriced.status).toBe(200);
    expect(Number(await cdrTotal(await charge('NEW-1', 'TAG', 10_000)))).toBe(4.8);
  });

  it('a token created through the API authorizes at once; deleted, it is refused', async () => {
    const cp = await TestCharger.connect(`${engine.ocppUrl}/CP1`);
    const status = async () => {
      const answer = await cp.call('Authorize', { idTag: 'API-TAG' });
      if (!answer.ok) throw new Error(answer.description);
      return (answer.payload['idTagInfo'] as { status: string }).status;
    };
    expect(await status()).toBe('Invalid');
    expect(
      (await api('PUT', '/api/v1/tokens/API-TAG', KEYS.operator, { type: 'RFID', customer: 'c' }))
        .status,
    ).toBe(201);
    expect(await status()).toBe('Accepted');
    expect((await api('DELETE', '/api/v1/tokens/api-tag', KEYS.operator)).status).toBe(200);
    expect(await status()).toBe('Invalid');
    cp.close();
  });

  it('checks a change like the network file, naming the field', async () => {
    const bad = await api('PUT', '/api/v1/chargers/BAD-1', KEYS.operator, {
      site: 's',
      connectors: [{ id: 1, maxPowerW: 'fast' }],
    });
    expect(bad.status).toBe(400);
    expect(errorCode(bad)).toBe('CONFIG_INVALID');
    expect((bad.body['error'] as { message: string }).message).toMatch(
      /^chargers\/BAD-1: connectors\[0\]\.maxPowerW: must be integer/,
    );
    const dangling = await api('PUT', '/api/v1/chargers/BAD-2', KEYS.operator, {
      site: 'no-such-site',
      connectors: [{ id: 1, maxPowerW: 11_000 }],
    });
    expect(dangling.status).toBe(400);
    expect((dangling.body['error'] as { message: string }).message).toContain('no-such-site');
    const inUse = await api('DELETE', '/api/v1/sites/s', KEYS.operator);
    expect(inUse.status).toBe(409);
    expect(errorCode(inUse)).toBe('CONFIG_IN_USE');
    const wrongId = await api('PUT', '/api/v1/sites/x', KEYS.operator, { id: 'y', operator: 'o' });
    expect(wrongId.status).toBe(400);
    const notJson = await fetch(`${engine.apiUrl}/api/v1/sites/x`, {
      method: 'PUT',
      headers: { Authorization: `Bearer ${KEYS.operator}` },
      body: '{',
    });
    expect(notJson.status).toBe(400);
    expect((await api('GET', '/api/v1/chargers/NOPE', KEYS.admin)).status).toBe(404);
    // Nothing of the refused changes was applied.
    expect((await api('GET', '/api/v1/chargers/BAD-1', KEYS.admin)).status).toBe(404);
  });

  it('R3 through the API: a session keeps the tariff in force at its start when the tariff changes under it; a bad validity is refused', async () => {
    expect(
      (
        await api('PUT', '/api/v1/tariffs/t-bad', KEYS.finance, {
          currency: 'EUR',
          startDateTime: '2027-01-01T00:00:00Z',
          endDateTime: '2026-01-01T00:00:00Z',
          elements: [{ components: [{ type: 'ENERGY', price: '0.10', vat: '20' }] }],
        })
      ).body,
    ).toMatchObject({
      error: { code: 'CONFIG_INVALID', message: expect.stringContaining('endDateTime') as string },
    });
    await api('PUT', '/api/v1/tariffs/t-run', KEYS.finance, {
      currency: 'EUR',
      elements: [{ components: [{ type: 'ENERGY', price: '1.00', vat: '20' }] }],
    });
    await api('PUT', '/api/v1/chargers/RUN-1', KEYS.operator, {
      site: 's',
      tariff: 't-run',
      connectors: [{ id: 1, maxPowerW: 22_000 }],
    });
    const cp = await TestCharger.connect(`${engine.ocppUrl}/RUN-1`);
    const t0 = 7200 * sessions++;
    const started = await cp.call(
      'StartTransaction',
      aStartTransaction({ idTag: 'TAG', meterStart: 0, timestamp: at(t0) }),
    );
    if (!started.ok) throw new Error(started.description);
    const tx = started.payload['transactionId'] as number;
    expect(
      (
        await cp.call(
          'MeterValues',
          aMeterValues({ transactionId: tx, wh: 2_000, seconds: t0 + 900 }),
        )
      ).ok,
    ).toBe(true);
    // Repriced while the session runs: it keeps 1.00, the next one pays 0.10.
    await eventually(
      () =>
        sql(engine, ADMIN_KEY, `SELECT energy_wh FROM sessions WHERE session_id = 'RUN-1-${tx}'`),
      (rows) => Number(rows[0]?.['energy_wh']) === 2_000,
    );
    expect(
      (
        await api('PUT', '/api/v1/tariffs/t-run', KEYS.finance, {
          currency: 'EUR',
          elements: [{ components: [{ type: 'ENERGY', price: '0.10', vat: '20' }] }],
        })
      ).status,
    ).toBe(200);
    expect(
      (
        await cp.call(
          'MeterValues',
          aMeterValues({ transactionId: tx, wh: 5_000, seconds: t0 + 1800 }),
        )
      ).ok,
    ).toBe(true);
    expect(
      (
        await cp.call(
          'StopTransaction',
          aStopTransaction({ transactionId: tx, meterStop: 5_000, timestamp: at(t0 + 2700) }),
        )
      ).ok,
    ).toBe(true);
    cp.close();
    // 5 kWh × 1.00 + 20 %.
    expect(Number(await cdrTotal(`RUN-1-${tx}`))).toBe(6);
    expect(Number(await cdrTotal(await charge('RUN-1', 'TAG', 5_000)))).toBe(0.6);
  });

  it('roles and organizations: who reads and who changes what', async () => {
    const site = (operator: string) => ({ operator, timezone: 'Europe/Amsterdam' });
    const table: Array<[string, string, string, unknown, number]> = [
      ['GET', '/api/v1/sites/s', 'none', undefined, 401],
      ['GET', '/api/v1/sites/s', 'viewer', undefined, 200],
      ['GET', '/api/v1/sites/s', 'analyst', undefined, 200],
      ['PUT', '/api/v1/sites/s-new', 'viewer', site('o'), 403],
      ['PUT', '/api/v1/sites/s-new', 'analyst', site('o'), 403],
      ['PUT', '/api/v1/tariffs/t-op', 'operator', { currency: 'EUR', elements: [] }, 403],
      ['PUT', '/api/v1/chargers/FIN-1', 'finance', { site: 's', connectors: [] }, 403],
      // A sub-organization's key: its own site yes, its parent's and a stranger's no.
      ['GET', '/api/v1/sites/s-sub', 'subOperator', undefined, 200],
      ['GET', '/api/v1/sites/s', 'subOperator', undefined, 404],
      ['PUT', '/api/v1/sites/s-sub2', 'subOperator', site('o'), 403],
      ['PUT', '/api/v1/sites/s-sub2', 'subOperator', site('o-sub'), 201],
      ['PUT', '/api/v1/sites/s-other', 'operator', site('o'), 403],
      ['DELETE', '/api/v1/sites/s-sub2', 'subOperator', undefined, 200],
      ['PUT', '/api/v1/sites/s-new', 'operator', site('o'), 201],
      // Prices belong to the network: a sub-organization's key may not change them.
      ['GET', '/api/v1/tariffs/t', 'subOperator', undefined, 200],
    ];
    for (const [method, path, who, body, expected] of table) {
      const key = who === 'none' ? null : KEYS[who as keyof typeof KEYS];
      const answer = await api(method, path, key, body);
      expect(`${method} ${path} as ${who}: ${answer.status}`).toBe(
        `${method} ${path} as ${who}: ${expected}`,
      );
      if (expected >= 400) expect(answer.body).toHaveProperty('error.code');
    }
    const listed = await api('GET', '/api/v1/sites', KEYS.subOperator);
    expect((listed.body['sites'] as Array<{ id: string }>).map((s) => s.id)).toEqual(['s-sub']);
  });

  it('a charger password is write-only: stored and answered as neither clear text nor hash, kept by a round trip', async () => {
    const password = 'a-charger-password-0123';
    const created = await api('PUT', '/api/v1/chargers/PW-1', KEYS.operator, {
      site: 's',
      password,
      connectors: [{ id: 1, maxPowerW: 22_000 }],
    });
    expect(created.status).toBe(201);
    expect(created.body).not.toHaveProperty('password');
    expect(created.body).not.toHaveProperty('passwordHash');
    expect(created.body).toMatchObject({ credentials: 'password' });
    const read = await api('GET', '/api/v1/chargers/PW-1', KEYS.viewer);
    expect(JSON.stringify(read.body)).not.toContain('sha256');
    // The file's own clear password is not answered either.
    const listed = await api('GET', '/api/v1/chargers', KEYS.admin);
    expect(JSON.stringify(listed.body)).not.toMatch(/"password(Hash)?":|sha256/);
    const connect = (secret: string) =>
      TestCharger.connect(`${engine.ocppUrl}/PW-1`, { password: secret }).then(
        (c) => {
          c.close();
          return 'accepted';
        },
        (error: Error) => error.message,
      );
    expect(await connect(password)).toBe('accepted');
    expect(await connect('not-the-password-0000')).toMatch(/401/);
    // What a GET answered, sent back with one change: the password stays.
    const roundTrip = await api('PUT', '/api/v1/chargers/PW-1', KEYS.operator, {
      ...read.body,
      connectors: [{ id: 1, maxPowerW: 11_000 }],
    });
    expect(roundTrip.status).toBe(200);
    expect(await connect(password)).toBe('accepted');
    const stored = await sql<{ doc: string }>(
      engine,
      ADMIN_KEY,
      "SELECT doc FROM config_changes WHERE id = 'PW-1'",
    );
    expect(stored.length).toBe(2);
    for (const { doc } of stored) expect(doc).not.toContain(password);
    expect(
      (
        await api('PUT', '/api/v1/chargers/PW-1', KEYS.operator, {
          ...read.body,
          password: 'short',
        })
      ).status,
    ).toBe(400);
    const removed = await api('PUT', '/api/v1/chargers/PW-1', KEYS.operator, {
      ...read.body,
      password: null,
    });
    expect(removed.body).toMatchObject({ credentials: 'none' });
  });

  it('SQL is for the network operators; a retry is scoped by organization', async () => {
    const sub = await fetch(`${engine.apiUrl}/api/v1/sql`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEYS.subOperator}` },
      body: 'SELECT count() FROM sessions',
    });
    expect(sub.status).toBe(403);
    expect(((await sub.json()) as { error: { code: string } }).error.code).toBe(
      'ORGANIZATION_NOT_RELATED',
    );
    const [session] = await sql<{ session_id: string }>(
      engine,
      KEYS.operator,
      "SELECT session_id FROM sessions WHERE charger_id = 'NEW-1' LIMIT 1",
    );
    const retry = (key: string) =>
      api('POST', `/api/v1/sessions/${session!.session_id}/retry`, key);
    expect((await retry(KEYS.subOperator)).status).toBe(404);
    expect(errorCode(await retry(KEYS.operator))).toBe('SESSION_NOT_FAILED');
  });

  it('changes survive a restart: the network file, then the stored changes over it', async () => {
    await engine.stop();
    engine = await startEngine({ config: configFile, dataDir });
    expect((await api('GET', '/api/v1/chargers/NEW-1', KEYS.admin)).body).toMatchObject({
      tariff: 't-api',
    });
    expect((await api('GET', '/api/v1/tokens/API-TAG', KEYS.admin)).status).toBe(404);
    expect(Number(await cdrTotal(await charge('NEW-1', 'TAG', 5_000)))).toBe(2.4);
    const changes = await sql<{ kind: string; id: string; deleted: boolean; changed_by: string }>(
      engine,
      ADMIN_KEY,
      "SELECT kind, id, deleted, changed_by FROM config_changes WHERE upper(id) IN ('NEW-1', 'API-TAG') ORDER BY seq",
    );
    expect(changes).toEqual([
      { kind: 'chargers', id: 'NEW-1', deleted: false, changed_by: 'operator@o' },
      { kind: 'tokens', id: 'API-TAG', deleted: false, changed_by: 'operator@o' },
      { kind: 'tokens', id: 'api-tag', deleted: true, changed_by: 'operator@o' },
    ]);
  });
});
