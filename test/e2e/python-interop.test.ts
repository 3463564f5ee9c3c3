import { execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  eventually,
  sql,
  startEngine,
  tempDir,
  writeNetwork,
  type RunningEngine,
} from '../helpers/engine.js';
import { aNetwork, aCharger, ADMIN_KEY } from '../helpers/builders.js';

/**
 * Interop with the Python `ocpp` library (PyPI, mobilityhouse): test/interop/python/charger.py
 * runs one full session through its ChargePoint and call classes, which validate every request
 * and every answer of the engine against the library's own copy of the OCPP schemas. Its
 * virtualenv comes from scripts/python-env.sh (cached; .ci/run installs it before the tests).
 */
const ROOT = join(import.meta.dirname, '..', '..');
const CHARGER_PY = join(ROOT, 'test', 'interop', 'python', 'charger.py');
const KEY = ADMIN_KEY;
const PASSWORD = 'python-interop-password-0123';
const TAG = 'PY-TAG-1';
const network = aNetwork({
  chargers: ['PY16', 'PY201'].map((id) => aCharger(id, { password: PASSWORD })),
  tokens: [{ id: TAG, type: 'RFID', customer: 'c' }],
});

interface ChargerReport {
  protocol: string;
  chargerId: string;
  transactionId: number | string;
  statuses: Record<string, string | null>;
  calls: string[];
}

interface ChargerRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

let python: string;
let engine: RunningEngine | undefined;

beforeAll(async () => {
  // The first run creates the virtualenv and installs from PyPI; later runs only check it.
  const { stdout } = await promisify(execFile)('bash', [join(ROOT, 'scripts', 'python-env.sh')], {
    cwd: ROOT,
    timeout: 170_000,
  });
  const lines = stdout.trim().split('\n');
  python = lines[lines.length - 1] ?? '';
  expect(python).toMatch(/python$/);
  const dir = tempDir('chargestream-python-interop-');
  engine = await startEngine({ config: writeNetwork(dir, network), dataDir: join(dir, 'data') });
}, 240_000);

afterAll(async () => {
  await engine?.stop();
});

function runCharger(id: string, protocol: 'ocpp1.6' | 'ocpp2.0.1'): Promise<ChargerRun> {
  const args = [CHARGER_PY, '--url', engine!.ocppUrl, '--id', id, '--protocol', protocol];
  args.push('--password', PASSWORD, '--id-tag', TAG);
  return new Promise((resolve, reject) => {
    const child = spawn(python, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 150_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Exit code 0 and exactly one JSON line on stdout; the charger's log in the failure message. */
function report(run: ChargerRun): ChargerReport {
  const detail = `charger.py exited ${run.code}\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`;
  expect(run.code, detail).toBe(0);
  const lines = run.stdout.trim().split('\n');
  expect(lines, detail).toHaveLength(1);
  return JSON.parse(lines[0]!) as ChargerReport;
}

/** The session's row and its CDR, once rated. */
async function ratedSession(sessionId: string) {
  const [session] = await eventually(
    () =>
      sql<Record<string, string>>(
        engine!,
        KEY,
        `SELECT status, reason, toString(energy_wh) AS energy, toString(cost_excl_vat) AS net,
                toString(vat) AS vat, toString(cost_incl_vat) AS total, currency, token_id
         FROM sessions WHERE session_id = '${sessionId}'`,
      ),
    (rows) => rows[0]?.['status'] === 'rated',
  );
  const cdrs = await eventually(
    () =>
      sql<Record<string, string>>(
        engine!,
        KEY,
        `SELECT kind, toString(energy_wh) AS energy, toString(total_excl_vat) AS net,
                toString(total_vat) AS vat, toString(total_incl_vat) AS total, currency
         FROM cdrs WHERE session_id = '${sessionId}'`,
      ),
    (rows) => rows.length > 0,
  );
  const [readings] = await sql<{ n_valid: string; n_invalid: string }>(
    engine!,
    KEY,
    `SELECT toString(countIf(valid)) AS n_valid, toString(countIf(NOT valid)) AS n_invalid
     FROM meter_readings WHERE session_id = '${sessionId}'`,
  );
  return { session, cdrs, readings };
}

// 2 kWh × 0.30 = 0.60 net + 22 % VAT 0.13 (0.132 half-up) = 0.73 (toString drops the zeros).
const CDR = {
  kind: 'debit',
  energy: '2000',
  net: '0.6',
  vat: '0.13',
  total: '0.73',
  currency: 'EUR',
};
const SESSION_COSTS = { energy: '2000', net: '0.6', vat: '0.13', total: '0.73', currency: 'EUR' };

describe('interop with the Python ocpp library', () => {
  it('OCPP 1.6: a full session (boot, authorize, start, 3 meter values, stop) is rated 0.73 EUR', async () => {
    const result = report(await runCharger('PY16', 'ocpp1.6'));
    expect(result).toEqual({
      protocol: 'ocpp1.6',
      chargerId: 'PY16',
      transactionId: expect.any(Number) as number,
      statuses: { boot: 'Accepted', authorize: 'Accepted', start: 'Accepted', stop: 'Accepted' },
      calls: [
        'BootNotification',
        'Heartbeat',
        'StatusNotification',
        'Authorize',
        'StartTransaction',
        'StatusNotification',
        'MeterValues',
        'MeterValues',
        'MeterValues',
        'StopTransaction',
        'StatusNotification',
      ],
    });
    const { session, cdrs, readings } = await ratedSession(`PY16-${result.transactionId}`);
    expect(session).toMatchObject({ status: 'rated', token_id: TAG, ...SESSION_COSTS });
    expect(cdrs).toEqual([CDR]);
    // meterStart, the three MeterValues and meterStop, all within 22 kW.
    expect(readings).toEqual({ n_valid: '5', n_invalid: '0' });
  });

  it('OCPP 2.0.1: TransactionEvent Started / Updated × 3 / Ended is rated 0.73 EUR', async () => {
    const result = report(await runCharger('PY201', 'ocpp2.0.1'));
    expect(result).toEqual({
      protocol: 'ocpp2.0.1',
      chargerId: 'PY201',
      transactionId: 'py-201-1',
      statuses: { boot: 'Accepted', authorize: 'Accepted', start: 'Accepted', stop: null },
      calls: [
        'BootNotification',
        'Heartbeat',
        'StatusNotification',
        'Authorize',
        'TransactionEvent',
        'TransactionEvent',
        'TransactionEvent',
        'TransactionEvent',
        'TransactionEvent',
        'StatusNotification',
      ],
    });
    const { session, cdrs, readings } = await ratedSession('PY201-py-201-1');
    expect(session).toMatchObject({
      status: 'rated',
      reason: 'EVDisconnected',
      token_id: TAG,
      ...SESSION_COSTS,
    });
    expect(cdrs).toEqual([CDR]);
    // The Started, three Updated and Ended readings, all within 22 kW.
    expect(readings).toEqual({ n_valid: '5', n_invalid: '0' });
  });
});
