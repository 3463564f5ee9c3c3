import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  ADMIN_KEY,
  aCharger,
  aNetwork,
  aStartTransaction,
  aStopTransaction,
  at,
} from '../helpers/builders.js';
import { eventually, sql, useEngine } from '../helpers/engine.js';
import { TestCharger } from '../helpers/ocpp-client.js';
import { recordFigure } from './figures.js';
import { crashesIn } from './harness.js';

/**
 * reliability.md 17 against the running engine: a missing, invalid or malformed key, a role
 * that may not, an organization that may not, and SQL that writes or changes server state
 * through the analyst endpoint. Every such call is refused with its status, and the stored
 * data is unchanged afterwards. The full route × role table: e2e/billing.test.ts.
 */
const KEYS = {
  admin: ADMIN_KEY,
  viewer: 'abuse-viewer-key-0123456789',
  analyst: 'abuse-analyst-key-0123456789',
  operator: 'abuse-operator-key-0123456789',
  otherAdmin: 'abuse-other-admin-key-0123456789',
  otherOperator: 'abuse-other-operator-key-01234567',
  subAnalyst: 'abuse-sub-analyst-key-0123456789',
  empAnalyst: 'abuse-emp-analyst-key-0123456789',
  hashed: 'abuse-hashed-key-0123456789',
};
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const PASSWORD = 'abuse-charger-password-01';
const NEW_PASSWORD = 'abuse-new-charger-password-02';
const run = useEngine(
  aNetwork({
    organizations: [
      { id: 'o', type: 'cpo' },
      { id: 'o-sub', type: 'cpo', parent: 'o' },
      { id: 'emp', type: 'emp' },
      { id: 'other', type: 'cpo' },
    ],
    sites: [
      { id: 's', operator: 'o' },
      { id: 's-other', operator: 'other' },
    ],
    chargers: [aCharger('AB-1', { password: PASSWORD }), aCharger('AB-OTHER', { site: 's-other' })],
    apiKeys: [
      { key: KEYS.admin, role: 'admin', organization: 'o' },
      { key: KEYS.viewer, role: 'viewer', organization: 'o' },
      { key: KEYS.analyst, role: 'analyst', organization: 'o' },
      { key: KEYS.operator, role: 'operator', organization: 'o' },
      { key: KEYS.otherAdmin, role: 'admin', organization: 'other' },
      { key: KEYS.otherOperator, role: 'operator', organization: 'other' },
      { key: KEYS.subAnalyst, role: 'analyst', organization: 'o-sub' },
      { key: KEYS.empAnalyst, role: 'analyst', organization: 'emp' },
      { keyHash: sha256(KEYS.hashed), role: 'admin', organization: 'o' },
    ],
  }),
);

async function call(
  method: string,
  path: string,
  authorization: string | null,
  body?: string,
): Promise<{ status: number; code: string }> {
  const response = await fetch(`${run.engine.apiUrl}${path}`, {
    method,
    headers: authorization === null ? {} : { Authorization: authorization },
    ...(body === undefined ? {} : { body }),
  });
  const text = await response.text();
  let code = '';
  try {
    code = (JSON.parse(text) as { error?: { code?: string } }).error?.code ?? '';
  } catch {
    // not JSON: a successful CSV or NDJSON answer
  }
  return { status: response.status, code };
}

const bearer = (key: string) => `Bearer ${key}`;

/** A rated session of charger AB-1 (organization o), for the organization checks. */
async function aRatedSession(): Promise<string> {
  const cp = await TestCharger.connect(`${run.engine.ocppUrl}/AB-1`, { password: PASSWORD });
  const started = await cp.call(
    'StartTransaction',
    aStartTransaction({ idTag: 'TAG', meterStart: 0 }),
  );
  if (!started.ok) throw new Error(started.description);
  const transactionId = started.payload['transactionId'] as number;
  await cp.call(
    'StopTransaction',
    aStopTransaction({ transactionId, meterStop: 5000, timestamp: at(1800) }),
  );
  cp.close();
  const id = `AB-1-${transactionId}`;
  await eventually(
    () =>
      sql<{ status: string }>(
        run.engine,
        KEYS.admin,
        `SELECT status FROM sessions WHERE session_id = '${id}' AND (SELECT count() FROM cdrs WHERE session_id = '${id}') = 1`,
      ),
    (r) => r[0]?.status === 'rated',
  );
  return id;
}

/**
 * What a forbidden call might change: row counts, the sessions' versions (FINAL: merges of
 * the ReplacingMergeTree shrink the plain count on their own) and statuses.
 */
const snapshot = () =>
  sql<Record<string, string>>(
    run.engine,
    KEYS.admin,
    `SELECT toString((SELECT count() FROM cdrs)) AS cdrs, toString((SELECT count() FROM sessions_log FINAL)) AS session_versions,
            (SELECT toString(groupArray((session_id, status))) FROM (SELECT session_id, status FROM sessions ORDER BY session_id)) AS sessions,
            toString((SELECT count() FROM meter_readings)) AS readings, toString((SELECT count() FROM charger_commands)) AS commands,
            toString((SELECT count() FROM system.tables WHERE database = currentDatabase())) AS tables`,
  );

describe('API abuse', () => {
  it('reliability.md 17: keys, roles, organizations and writing SQL are refused with their status; nothing changes', async () => {
    const session = await aRatedSession();
    // A charger given a password through the configuration API (S1 below).
    const created = await call(
      'PUT',
      '/api/v1/chargers/AB-NEW',
      bearer(KEYS.admin),
      JSON.stringify({
        site: 's',
        password: NEW_PASSWORD,
        connectors: [{ id: 1, maxPowerW: 22000 }],
      }),
    );
    expect(created.status).toBe(201);
    const before = await snapshot();
    const forbidden: Array<
      [string, string, string, string | null, string | undefined, number, string]
    > = [
      // [name, method, path, authorization, body, status, code]
      ['no key', 'POST', '/api/v1/sql', null, 'SELECT 1', 401, 'UNAUTHORIZED'],
      [
        'invalid key',
        'POST',
        '/api/v1/sql',
        bearer('not-a-key-0123456789'),
        'SELECT 1',
        401,
        'UNAUTHORIZED',
      ],
      ['empty bearer', 'POST', '/api/v1/sql', 'Bearer ', 'SELECT 1', 401, 'UNAUTHORIZED'],
      [
        'Basic instead of Bearer',
        'POST',
        '/api/v1/sql',
        `Basic ${Buffer.from(`x:${KEYS.admin}`).toString('base64')}`,
        'SELECT 1',
        401,
        'UNAUTHORIZED',
      ],
      [
        'two keys in one header',
        'POST',
        '/api/v1/sql',
        `Bearer ${KEYS.viewer} ${KEYS.admin}`,
        'SELECT 1',
        401,
        'UNAUTHORIZED',
      ],
      [
        "a key's stored hash as the key",
        'POST',
        '/api/v1/sql',
        bearer(sha256(KEYS.hashed)),
        'SELECT 1',
        401,
        'UNAUTHORIZED',
      ],
      [
        'key with a suffix',
        'POST',
        '/api/v1/sql',
        bearer(`${KEYS.admin}x`),
        'SELECT 1',
        401,
        'UNAUTHORIZED',
      ],
      ['no key on sessions', 'GET', '/api/v1/sessions', null, undefined, 401, 'UNAUTHORIZED'],
      [
        'no key on a command',
        'POST',
        '/api/v1/chargers/AB-1/commands/Reset',
        null,
        '{"type":"Hard"}',
        401,
        'UNAUTHORIZED',
      ],
      [
        'no key on a config change',
        'PUT',
        '/api/v1/chargers/AB-1',
        null,
        '{"site":"s","connectors":[]}',
        401,
        'UNAUTHORIZED',
      ],
      ['viewer: SQL', 'POST', '/api/v1/sql', bearer(KEYS.viewer), 'SELECT 1', 403, 'FORBIDDEN'],
      [
        'viewer: command',
        'POST',
        '/api/v1/chargers/AB-1/commands/Reset',
        bearer(KEYS.viewer),
        '{"type":"Hard"}',
        403,
        'FORBIDDEN',
      ],
      [
        'analyst: command',
        'POST',
        '/api/v1/chargers/AB-1/commands/Reset',
        bearer(KEYS.analyst),
        '{"type":"Hard"}',
        403,
        'FORBIDDEN',
      ],
      [
        'analyst: cancel',
        'POST',
        `/api/v1/sessions/${session}/cancel`,
        bearer(KEYS.analyst),
        '{"reason":"x"}',
        403,
        'FORBIDDEN',
      ],
      [
        'operator: refund',
        'POST',
        `/api/v1/sessions/${session}/refund`,
        bearer(KEYS.operator),
        '{"amount":"0.10","reason":"x","requestId":"r1"}',
        403,
        'FORBIDDEN',
      ],
      [
        'viewer: config change',
        'DELETE',
        '/api/v1/chargers/AB-1',
        bearer(KEYS.viewer),
        undefined,
        403,
        'FORBIDDEN',
      ],
      [
        'analyst: retry',
        'POST',
        `/api/v1/sessions/${session}/retry`,
        bearer(KEYS.analyst),
        undefined,
        403,
        'FORBIDDEN',
      ],
      [
        'other organization: read a session',
        'GET',
        `/api/v1/sessions/${session}`,
        bearer(KEYS.otherAdmin),
        undefined,
        403,
        'ORGANIZATION_NOT_RELATED',
      ],
      [
        'other organization: its CDRs',
        'GET',
        `/api/v1/cdrs?session=${session}`,
        bearer(KEYS.otherAdmin),
        undefined,
        403,
        'ORGANIZATION_NOT_RELATED',
      ],
      [
        'other organization: invoice',
        'GET',
        `/api/v1/sessions/${session}/invoice`,
        bearer(KEYS.otherAdmin),
        undefined,
        403,
        'ORGANIZATION_NOT_RELATED',
      ],
      [
        'other organization: refund',
        'POST',
        `/api/v1/sessions/${session}/refund`,
        bearer(KEYS.otherAdmin),
        '{"amount":"0.10","reason":"x","requestId":"r2"}',
        403,
        'ORGANIZATION_NOT_RELATED',
      ],
      [
        'other organization: cancel',
        'POST',
        `/api/v1/sessions/${session}/cancel`,
        bearer(KEYS.otherAdmin),
        '{"reason":"x"}',
        403,
        'ORGANIZATION_NOT_RELATED',
      ],
      [
        'other organization: account statement',
        'GET',
        '/api/v1/statements/account/o?from=2026-01-01&to=2027-01-01',
        bearer(KEYS.otherAdmin),
        undefined,
        403,
        'ORGANIZATION_NOT_RELATED',
      ],
      [
        'other organization: read a charger',
        'GET',
        '/api/v1/chargers/AB-1',
        bearer(KEYS.otherAdmin),
        undefined,
        404,
        'NOT_FOUND',
      ],
      [
        'other organization: change a charger',
        'PUT',
        '/api/v1/chargers/AB-1',
        bearer(KEYS.otherAdmin),
        '{"site":"s-other","connectors":[{"id":1,"maxPowerW":22000}]}',
        403,
        'ORGANIZATION_NOT_RELATED',
      ],
      [
        'other organization: delete a charger',
        'DELETE',
        '/api/v1/chargers/AB-1',
        bearer(KEYS.otherAdmin),
        undefined,
        404,
        'NOT_FOUND',
      ],
      [
        'other organization: move its charger into o',
        'PUT',
        '/api/v1/chargers/AB-OTHER',
        bearer(KEYS.otherAdmin),
        '{"site":"s","connectors":[{"id":1,"maxPowerW":22000}]}',
        403,
        'ORGANIZATION_NOT_RELATED',
      ],
      [
        'other organization: command a charger',
        'POST',
        '/api/v1/chargers/AB-1/commands/Reset',
        bearer(KEYS.otherOperator),
        '{"type":"Hard"}',
        404,
        'NOT_FOUND',
      ],
      // Security review S2 and S3 (docs/reliability.md): SQL reads every organization's rows,
      // so only keys of a top-level CPO may use it; a retry of another organization's session
      // is answered as unknown.
      [
        'sub-organization: SQL',
        'POST',
        '/api/v1/sql',
        bearer(KEYS.subAnalyst),
        'SELECT count() FROM cdrs',
        403,
        'ORGANIZATION_NOT_RELATED',
      ],
      [
        'EMP organization: SQL',
        'POST',
        '/api/v1/sql',
        bearer(KEYS.empAnalyst),
        'SELECT count() FROM cdrs',
        403,
        'ORGANIZATION_NOT_RELATED',
      ],
      [
        'other organization: retry',
        'POST',
        `/api/v1/sessions/${session}/retry`,
        bearer(KEYS.otherOperator),
        undefined,
        404,
        'NOT_FOUND',
      ],
      [
        'format name with a clause',
        'POST',
        `/api/v1/sql?format=${encodeURIComponent("CSV INTO OUTFILE '/tmp/x'")}`,
        bearer(KEYS.analyst),
        'SELECT 1',
        400,
        'BAD_REQUEST',
      ],
      [
        'body over 1 MiB',
        'POST',
        '/api/v1/sql',
        bearer(KEYS.analyst),
        `SELECT '${'x'.repeat(1_100_000)}'`,
        413,
        'PAYLOAD_TOO_LARGE',
      ],
    ];
    const writing = [
      'DROP TABLE cdrs',
      'SELECT 1; DROP TABLE cdrs',
      'SELECT 1 /* ; */; DROP TABLE cdrs',
      'SELECT 1 -- comment\n; DROP TABLE cdrs',
      "INSERT INTO cdrs (cdr_id) VALUES ('x')",
      "INSERT INTO FUNCTION file('x.csv', 'CSV', 'a UInt8') VALUES (1)",
      'ALTER TABLE cdrs DELETE WHERE 1',
      'ALTER TABLE cdrs UPDATE total_incl_vat = 0 WHERE 1',
      'TRUNCATE TABLE cdrs',
      'OPTIMIZE TABLE sessions_log FINAL',
      'RENAME TABLE cdrs TO cdrs2',
      'DETACH TABLE cdrs',
      'ATTACH TABLE cdrs',
      'CREATE TABLE x (a UInt8) ENGINE = Memory',
      'CREATE USER eve',
      'GRANT ALL ON *.* TO default',
      'KILL QUERY WHERE 1',
      'SYSTEM FLUSH LOGS',
      'SYSTEM SHUTDOWN',
      'SET readonly = 0',
      "SELECT 1 INTO OUTFILE '/tmp/chargestream-abuse.csv'",
    ];
    // Past the text check, ClickHouse's readonly = 1 and the limits refuse them.
    const refusedByClickHouse = [
      'SELECT * FROM numbers(1) SETTINGS readonly = 0',
      'SELECT * FROM numbers(1) SETTINGS max_result_rows = 0',
      'SELECT * FROM numbers(1) SETTINGS max_execution_time = 0',
      "SELECT * FROM file('/etc/passwd', 'LineAsString')",
      "SELECT * FROM url('http://127.0.0.1:1/', 'LineAsString')",
      "SELECT * FROM s3('http://127.0.0.1:1/x', 'CSV', 'a UInt8')",
      "SELECT * FROM remote('127.0.0.1:1', system.one)",
      "SELECT * FROM executable('id', 'TSV', 'a String')",
      "WITH x AS (SELECT 1) SELECT * FROM file('/etc/hostname', 'LineAsString')",
      'SELECT number FROM numbers(2000000)',
    ];
    for (const statement of writing)
      forbidden.push([
        statement,
        'POST',
        '/api/v1/sql',
        bearer(KEYS.analyst),
        statement,
        400,
        'SQL_NOT_READ_ONLY',
      ]);
    for (const statement of refusedByClickHouse)
      forbidden.push([
        statement,
        'POST',
        '/api/v1/sql',
        bearer(KEYS.admin),
        statement,
        400,
        'SQL_FAILED',
      ]);

    // Online, answering every command: a command that got through would be carried out.
    const online = await TestCharger.connect(`${run.engine.ocppUrl}/AB-1`, { password: PASSWORD });
    online.answerCalls(() => ({ status: 'Accepted' }));
    const outcomes: Array<{ name: string; got: string; expected: string }> = [];
    for (const [name, method, path, authorization, body, status, code] of forbidden) {
      const answer = await call(method, path, authorization, body);
      outcomes.push({
        name,
        got: `${answer.status} ${answer.code}`,
        expected: `${status} ${code}`,
      });
    }
    // Security review S1: a charger's password is write-only; no reader gets it back, and the
    // stored configuration changes (readable through SQL) do not hold it.
    const readable = await Promise.all(
      ['/api/v1/chargers/AB-1', '/api/v1/chargers/AB-NEW', '/api/v1/chargers'].map(async (path) =>
        (
          await fetch(`${run.engine.apiUrl}${path}`, {
            headers: { Authorization: bearer(KEYS.viewer) },
          })
        ).text(),
      ),
    );
    const [stored] = await sql<{ n: string }>(
      run.engine,
      KEYS.admin,
      `SELECT toString(count()) AS n FROM config_changes WHERE position(doc, '${NEW_PASSWORD}') > 0`,
    );
    const passwordsShown =
      readable.filter((text) => text.includes(PASSWORD) || text.includes(NEW_PASSWORD)).length +
      Number(stored?.n);
    const reachedCharger = online.frames.filter((f) => f[0] === 2 && f[2] === 'Reset').length;
    online.close();
    const accepted = outcomes.filter((o) => /^2/.test(o.got));
    const after = await snapshot();
    const changed = Object.keys(before[0]!).filter((k) => before[0]![k] !== after[0]![k]);
    recordFigure(
      17,
      `accepted forbidden calls (of ${forbidden.length})`,
      accepted.length + changed.length + reachedCharger + passwordsShown,
    );
    expect(passwordsShown).toBe(0);
    expect(accepted).toEqual([]);
    expect(reachedCharger).toBe(0);
    expect(changed).toEqual([]);
    expect(outcomes.map((o) => `${o.name}: ${o.got}`)).toEqual(
      outcomes.map((o) => `${o.name}: ${o.expected}`),
    );
    // The same calls with a key that may: through (the refusals above are not blanket ones).
    expect((await call('POST', '/api/v1/sql', bearer(KEYS.hashed), 'SELECT 1')).status).toBe(200);
    expect((await call('GET', `/api/v1/sessions/${session}`, bearer(KEYS.viewer))).status).toBe(
      200,
    );
    expect(crashesIn(run.engine.output())).toBe(0);
  });
});
