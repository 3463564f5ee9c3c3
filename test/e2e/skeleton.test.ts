import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { E4_MAX_POWER_W, E4_SCENARIOS } from '../fixtures/e4-scenarios.js';
import { aBootNotification } from '../helpers/builders.js';
import {
  CLI,
  eventually,
  sql,
  startEngine,
  tempDir,
  writeNetwork,
  type RunningEngine,
} from '../helpers/engine.js';
import { TestCharger } from '../helpers/ocpp-client.js';
import { driveSession } from '../helpers/sessions.js';

const API_KEY = 'e2e-admin-key-0123456789';
const VIEWER_KEY = 'e2e-viewer-key-0123456789';
const PASSWORD = 'a-password-of-24-chars!!';

const network = {
  settings: { currency: 'EUR' },
  organizations: [
    { id: 'cpo-1', type: 'cpo' },
    { id: 'emp-1', type: 'emp', parent: null },
  ],
  sites: [{ id: 'site-1', operator: 'cpo-1', timezone: 'Europe/Ljubljana', tariff: 't-std' }],
  chargers: [
    ...E4_SCENARIOS.map((s) => ({
      id: `E4-${s.n}`,
      site: 'site-1',
      connectors: [{ id: 1, maxPowerW: E4_MAX_POWER_W }],
    })),
    {
      id: 'CP-10K',
      site: 'site-1',
      password: PASSWORD,
      connectors: [
        { id: 1, maxPowerW: 50_000 },
        { id: 2, maxPowerW: 50_000 },
      ],
    },
  ],
  tariffs: [
    {
      id: 't-std',
      currency: 'EUR',
      elements: [{ components: [{ type: 'ENERGY', price: '0.30', vat: '22', stepSize: 1 }] }],
    },
  ],
  customers: [{ id: 'cust-1', organization: 'emp-1', paymentType: 'postpaid' }],
  // The driver's card, and one per E4 charger: those sessions run at once (A2).
  tokens: [
    { id: '04A1B2C3', type: 'RFID', customer: 'cust-1' },
    ...E4_SCENARIOS.map((s) => ({ id: `E4-TAG-${s.n}`, type: 'RFID', customer: 'cust-1' })),
  ],
  apiKeys: [
    { key: API_KEY, role: 'admin', organization: 'cpo-1' },
    { key: VIEWER_KEY, role: 'viewer', organization: 'cpo-1' },
  ],
};

let engine: RunningEngine;
let dir: string;

beforeAll(async () => {
  dir = tempDir();
  engine = await startEngine({ config: writeNetwork(dir, network), dataDir: join(dir, 'data') });
});

afterAll(async () => {
  await engine?.stop();
});

describe('walking skeleton, OCPP 1.6 end to end', () => {
  it('E4 the nine scenarios end with the energies of the table, read back through /api/v1/sql', async () => {
    const ids = new Map<number, number>();
    await Promise.all(
      E4_SCENARIOS.map(async (s) => {
        const charger = await TestCharger.connect(`${engine.ocppUrl}/E4-${s.n}`);
        expect(charger.protocol).toBe('ocpp1.6');
        expect((await charger.call('BootNotification', aBootNotification())).ok).toBe(true);
        ids.set(s.n, await driveSession(charger, s.readings, { idTag: `E4-TAG-${s.n}` }));
        charger.close();
      }),
    );
    const rows = await eventually(
      () =>
        sql<{ charger_id: string; status: string; energy_wh: string }>(
          engine,
          API_KEY,
          "SELECT charger_id, status, toString(energy_wh) AS energy_wh FROM sessions WHERE charger_id LIKE 'E4-%' ORDER BY charger_id",
        ),
      (r) => r.length === 9 && r.every((s) => s.status === 'rated'),
    );
    for (const s of E4_SCENARIOS) {
      const row = rows.find((r) => r.charger_id === `E4-${s.n}`);
      expect(Number(row?.energy_wh), `scenario ${s.n}`).toBe(s.energyWh);
    }
    // N1: one session_started and one session_ended per session, in the stored log.
    const notified = await eventually(
      () =>
        sql<{ event: string; n: string }>(
          engine,
          API_KEY,
          // (E4's readings carry energy only: E5's measurands_missing is raised too, tested apart.)
          "SELECT event, toString(count()) AS n FROM notifications WHERE charger_id LIKE 'E4-%' AND event LIKE 'session_%' GROUP BY event ORDER BY event",
        ),
      (r) => r.length === 2,
    );
    expect(notified).toEqual([
      { event: 'session_ended', n: '9' },
      { event: 'session_started', n: '9' },
    ]);
    // The bold readings are stored, flagged invalid with their reason.
    const rejected = await sql<{ charger_id: string; n: string }>(
      engine,
      API_KEY,
      "SELECT charger_id, toString(count()) AS n FROM meter_readings WHERE charger_id LIKE 'E4-%' AND NOT valid GROUP BY charger_id ORDER BY charger_id",
    );
    expect(Object.fromEntries(rejected.map((r) => [r.charger_id, Number(r.n)]))).toEqual(
      Object.fromEntries(
        E4_SCENARIOS.filter((s) => s.invalid.length > 0).map((s) => [
          `E4-${s.n}`,
          s.invalid.length,
        ]),
      ),
    );
  });

  it('R5 the CDR of a 10 kWh session at 0.30/kWh + 22 % VAT is 3.00 + 0.66 = 3.66', async () => {
    const charger = await TestCharger.connect(`${engine.ocppUrl}/CP-10K`, { password: PASSWORD });
    const transactionId = await driveSession(
      charger,
      [
        [1_000_000, 0],
        [1_005_000, 1800],
        [1_010_000, 3600],
      ],
      { connectorId: 2, idTag: '04A1B2C3' },
    );
    charger.close();
    const [cdr] = await eventually(
      () =>
        sql<Record<string, string>>(
          engine,
          API_KEY,
          `SELECT toString(energy_wh) AS energy, toString(total_excl_vat) AS net, toString(total_vat) AS vat,
                toString(total_incl_vat) AS total, currency, kind
         FROM cdrs WHERE session_id = 'CP-10K-${transactionId}'`,
        ),
      (r) => r.length === 1,
    );
    expect(cdr).toEqual({
      energy: '10000',
      net: '3',
      vat: '0.66',
      total: '3.66',
      currency: 'EUR',
      kind: 'debit',
    });
    // The sink writes sessions after CDRs: wait for the rated version, not the first CDR.
    const [session] = await eventually(
      () =>
        sql<Record<string, string>>(
          engine,
          API_KEY,
          `SELECT status, toString(cost_excl_vat) AS net, toString(vat) AS vat, toString(cost_incl_vat) AS total, customer_id, token_id
           FROM sessions WHERE session_id = 'CP-10K-${transactionId}'`,
        ),
      (rows) => rows[0]?.['status'] === 'rated',
    );
    expect(session).toEqual({
      status: 'rated',
      net: '3',
      vat: '0.66',
      total: '3.66',
      customer_id: 'cust-1',
      token_id: '04A1B2C3',
    });
  });

  it('a malformed frame gets a CALLERROR and the connection keeps working', async () => {
    const charger = await TestCharger.connect(`${engine.ocppUrl}/E4-1`);
    expect(await charger.raw('this is not json', '-1')).toMatchObject({
      ok: false,
      code: 'FormationViolation',
    });
    expect(await charger.raw('[2,"m1","Heartbeat"]', 'm1')).toMatchObject({
      ok: false,
      code: 'FormationViolation',
    });
    expect(await charger.raw('[2,"m2","NoSuchAction",{}]', 'm2')).toMatchObject({
      ok: false,
      code: 'NotImplemented',
    });
    expect(await charger.raw('[2,"m3","StartTransaction",{"connectorId":1}]', 'm3')).toMatchObject({
      ok: false,
      code: 'OccurrenceConstraintViolation',
    });
    expect(
      await charger.raw(
        '[2,"m4","StartTransaction",{"connectorId":"1","idTag":"x","meterStart":0,"timestamp":"2026-11-20T08:00:00Z"}]',
        'm4',
      ),
    ).toMatchObject({ ok: false, code: 'TypeConstraintViolation' });
    expect(
      await charger.raw(
        '[2,"m5","MeterValues",{"connectorId":1,"meterValue":[{"timestamp":"222222017-01-01T00:00:00Z","sampledValue":[{"value":"1"}]}]}]',
        'm5',
      ),
    ).toMatchObject({ ok: false, code: 'PropertyConstraintViolation' });
    expect(await charger.raw('[9,"m6","Heartbeat",{}]', 'm6')).toMatchObject({
      ok: false,
      code: 'ProtocolError',
    });
    expect(charger.isOpen).toBe(true);
    const heartbeat = await charger.call('Heartbeat', {});
    expect(heartbeat.ok).toBe(true);
    charger.close();
  });

  it('refuses unknown chargers, bad credentials and missing subprotocols at the upgrade', async () => {
    await expect(TestCharger.connect(`${engine.ocppUrl}/NOBODY`)).rejects.toThrow('404');
    await expect(TestCharger.connect(`${engine.ocppUrl}/CP-10K`)).rejects.toThrow('401');
    await expect(
      TestCharger.connect(`${engine.ocppUrl}/CP-10K`, { password: 'wrong-password-of-20c' }),
    ).rejects.toThrow('401');
    await expect(
      TestCharger.connect(`${engine.ocppUrl}/CP-10K`, { password: PASSWORD, user: 'E4-1' }),
    ).rejects.toThrow('401');
    await expect(
      TestCharger.connect(`${engine.ocppUrl}/E4-1`, { protocols: ['ocpp1.5'] }),
    ).rejects.toThrow('400');
  });

  it('S8 retry through the API: a key that may, a session that exists, and only a failed one', async () => {
    const retry = (key: string, id: string) =>
      fetch(`${engine.apiUrl}/api/v1/sessions/${encodeURIComponent(id)}/retry`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${key}` },
      });
    expect((await retry(VIEWER_KEY, 'E4-1-1')).status).toBe(403);
    const unknown = await retry(API_KEY, 'NO-SUCH-SESSION');
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ error: { code: 'NOT_FOUND' } });
    const [rated] = await sql<{ session_id: string }>(
      engine,
      API_KEY,
      "SELECT session_id FROM sessions WHERE status = 'rated' LIMIT 1",
    );
    const conflict = await retry(API_KEY, rated!.session_id);
    expect(conflict.status).toBe(409);
    expect(await conflict.json()).toMatchObject({
      error: { code: 'SESSION_NOT_FAILED', message: expect.stringContaining('is rated') as string },
    });
  });

  it('the analyst endpoint needs a key, a role that may, and one read-only statement', async () => {
    const post = (key: string | null, body: string) =>
      fetch(`${engine.apiUrl}/api/v1/sql`, {
        method: 'POST',
        headers: key === null ? {} : { Authorization: `Bearer ${key}` },
        body,
      });
    const noKey = await post(null, 'SELECT 1');
    expect(noKey.status).toBe(401);
    expect(await noKey.json()).toMatchObject({ error: { code: 'UNAUTHORIZED' } });
    expect((await post(VIEWER_KEY, 'SELECT 1')).status).toBe(403);
    for (const statement of [
      'DROP TABLE cdrs',
      'SELECT 1; DROP TABLE cdrs',
      "INSERT INTO cdrs (cdr_id) VALUES ('x')",
      'ALTER TABLE cdrs DELETE WHERE 1',
      'TRUNCATE TABLE cdrs',
      'SYSTEM FLUSH LOGS',
      'SET readonly = 0',
      'CREATE TABLE x (a UInt8) ENGINE = Memory',
    ]) {
      const refused = await post(API_KEY, statement);
      expect(refused.status, statement).toBe(400);
      expect(await refused.json()).toMatchObject({ error: { code: 'SQL_NOT_READ_ONLY' } });
    }
    // ClickHouse itself refuses what slips past the text check: a write hidden in a SELECT.
    // And settings that change state, table functions that read files or URLs, and results
    // past the row limit.
    for (const statement of [
      'SELECT * FROM numbers(1) SETTINGS readonly = 0',
      'SELECT * FROM numbers(1) SETTINGS max_result_rows = 0',
      "SELECT * FROM file('/etc/passwd', 'LineAsString')",
      "SELECT * FROM url('http://127.0.0.1:1/', 'LineAsString')",
      'SELECT number FROM numbers(2000000)',
    ]) {
      const refused = await post(API_KEY, statement);
      expect(refused.status, statement).toBe(400);
      expect(await refused.json(), statement).toMatchObject({ error: { code: 'SQL_FAILED' } });
    }
    const csv = await fetch(`${engine.apiUrl}/api/v1/sql?format=CSV`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${API_KEY}` },
      body: 'SELECT 1 AS one',
    });
    expect(await csv.text()).toBe('1\n');
    const health = await fetch(`${engine.apiUrl}/healthz`);
    expect(health.status).toBe(200);
  });
});

describe('configuration errors', () => {
  it('a bad network file exits with code 2 naming the field', () => {
    const bad = tempDir();
    const path = join(bad, 'network.yaml');
    writeFileSync(
      path,
      'chargers:\n  - id: CP1\n    site: s1\n    connectors: [ { id: 1, maxPowerW: "lots" } ]\n',
    );
    const run = spawnSync(
      process.execPath,
      [CLI, 'start', '--config', path, '--data', join(bad, 'data')],
      { encoding: 'utf8' },
    );
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('chargers[0].connectors[0].maxPowerW');
  });

  it('a bad flag exits with code 2 naming the flag', () => {
    const run = spawnSync(process.execPath, [CLI, 'start', '--ocpp-port', 'eighty'], {
      encoding: 'utf8',
    });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('--ocpp-port');
  });
});
