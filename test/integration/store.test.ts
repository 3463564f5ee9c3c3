import { randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChdbHttpServer } from '../../src/store/chdb-http-server.js';
import { MERGE_SELECTOR_BASE } from '../../src/store/ddl.js';
import { pino } from 'pino';
import { ChargestreamError } from '../../src/lib/errors.js';
import { ChdbStore, withoutLowCardinality } from '../../src/store/chdb-store.js';
import { Sink } from '../../src/store/sink.js';
import { ClickHouseHttpStore, parseClickHouseUrl } from '../../src/store/clickhouse-http-store.js';
import {
  applyReadingsRetention,
  READING_COLUMNS,
  READING_FRAMES,
  rowPieces,
  SESSION_COLUMNS,
  sessionRowText,
  type Store,
} from '../../src/store/store.js';
import { tempDir } from '../helpers/engine.js';

/**
 * One suite, every backend: chDB in-process; the HTTP store (@clickhouse/client) against the
 * chDB stand-in server; and, when CLICKHOUSE_URL is set (http://user:password@host:8123), the
 * HTTP store against that ClickHouse server, in a database of its own for the run.
 */
interface Backend {
  readonly name: string;
  open(): Promise<{ store: Store; close: () => Promise<void> }>;
}

const BACKENDS: Backend[] = [
  {
    name: 'chDB',
    open: () => {
      const store = new ChdbStore(join(tempDir(), 'store'));
      return Promise.resolve({ store, close: () => store.close() });
    },
  },
  {
    name: 'HTTP store on the chDB stand-in server',
    async open() {
      const server = await ChdbHttpServer.start({
        dir: join(tempDir(), 'store'),
        host: '127.0.0.1',
        port: 0,
      });
      const store = new ClickHouseHttpStore(parseClickHouseUrl(`http://127.0.0.1:${server.port}`));
      return {
        store,
        close: async () => {
          await store.close();
          await server.close();
        },
      };
    },
  },
];
const serverUrl = process.env['CLICKHOUSE_URL'];
if (serverUrl !== undefined && serverUrl !== '') {
  BACKENDS.push({
    name: 'HTTP store on the ClickHouse server of CLICKHOUSE_URL',
    open() {
      const url = new URL(serverUrl);
      url.pathname = `/chargestream_test_${randomUUID().slice(0, 8)}`;
      const store = new ClickHouseHttpStore(parseClickHouseUrl(url.toString()));
      return Promise.resolve({ store, close: () => store.close() });
    },
  });
}

/** A reading at `offset`, by column. */
const reading = (offset: number): Record<string, unknown> => ({
  charger_id: 'CP1',
  connector_id: 1,
  ts: '2026-11-20 08:00:00.000',
  measurand: 'Energy.Active.Import.Register',
  phase: '',
  value: offset,
  unit: 'Wh',
  context: '',
  valid: true,
  reject_reason: '',
  session_id: '',
  log_partition: 0,
  log_offset: offset,
});

const row = (offset: number) => JSON.stringify(reading(offset)) + '\n';

/** The same reading as the workers write it (READING_FRAMES), as the sink inserts readings. */
const frameRow = (offset: number) => {
  const r = reading(offset);
  const at = [r['measurand'], r['phase'], r['value'], r['unit'], r['context']];
  const shared = [r['charger_id'], r['connector_id'], r['session_id'], r['log_partition'], offset];
  shared.push(r['ts']);
  return JSON.stringify([...shared, [[...at, r['valid'], r['reject_reason']]]]) + '\n';
};

describe.each(BACKENDS)('store: $name', (backend) => {
  let store: Store;
  let close: () => Promise<void>;

  beforeAll(async () => {
    ({ store, close } = await backend.open());
    expect(await store.migrate()).toBeGreaterThan(0);
  });

  afterAll(async () => {
    await close();
  });

  it('migrations run once', async () => {
    expect(await store.migrate()).toBe(0);
    const tables = await store.rows<{ name: string }>(
      'SELECT name FROM system.tables WHERE database = currentDatabase() ORDER BY name',
    );
    expect(tables.map((t) => t.name)).toEqual(
      expect.arrayContaining([
        'cdrs',
        'connector_status',
        'meter_readings',
        'notifications',
        'sessions',
        'sessions_log',
      ]),
    );
  });

  it('every MergeTree table merges with the base the engine sets, and a later start changes nothing', async () => {
    const untuned = () =>
      store.rows<{ name: string }>(
        `SELECT name FROM system.tables WHERE database = currentDatabase() AND engine LIKE '%MergeTree'
           AND position(create_table_query, 'merge_selector_base = ${MERGE_SELECTOR_BASE}') = 0`,
      );
    const merging = await store.rows<{ name: string }>(
      "SELECT name FROM system.tables WHERE database = currentDatabase() AND engine LIKE '%MergeTree'",
    );
    expect(merging.map((t) => t.name)).toEqual(
      expect.arrayContaining(['meter_readings', 'sessions_log', 'readings_quality_hourly']),
    );
    expect(await untuned()).toEqual([]);
    // A table made by hand (an older data folder's) gets the setting at the next start.
    await store.execute('CREATE TABLE hand_made (k UInt8) ENGINE = MergeTree ORDER BY k');
    expect((await untuned()).map((t) => t.name)).toEqual(['hand_made']);
    expect(await store.migrate()).toBe(0);
    expect(await untuned()).toEqual([]);
    await store.execute('DROP TABLE hand_made');
  });

  it('the same batch inserted twice, and once more after a timeout, is stored once; another token is another batch', async () => {
    const rows = row(1) + row(2);
    await store.insert('meter_readings', rows, 'test:dedup');
    await store.insert('meter_readings', rows, 'test:dedup');
    await store.insert('meter_readings', rows, 'test:dedup'); // the retry after a timeout
    await store.insert('meter_readings', row(3), 'test:other');
    const [count] = await store.rows<{ n: string }>(
      'SELECT toString(count()) AS n FROM meter_readings',
    );
    expect(count?.n).toBe('3');
  });

  it('the analyst connection is read-only by ClickHouse itself: every forbidden statement is refused', async () => {
    const forbidden = [
      "INSERT INTO meter_readings (charger_id) VALUES ('x')",
      'ALTER TABLE meter_readings DELETE WHERE 1',
      'DROP TABLE meter_readings',
      'TRUNCATE TABLE meter_readings',
      'CREATE TABLE x (a UInt8) ENGINE = Memory',
      'SYSTEM FLUSH LOGS',
      'SET max_result_rows = 0',
      'SELECT 1 SETTINGS readonly = 0',
      'SELECT 1 SETTINGS max_execution_time = 100000',
      "SELECT * FROM file('/etc/passwd', 'LineAsString')",
      "SELECT * FROM url('http://127.0.0.1:1/', 'LineAsString')",
    ];
    const refused: string[] = [];
    for (const sql of forbidden) {
      const outcome = await store.analystQuery(sql, 'CSV').then(
        () => 'ran',
        (e: unknown) => (e as { code?: string }).code,
      );
      if (outcome === 'SQL_FAILED') refused.push(sql);
    }
    expect(refused).toEqual(forbidden);
    expect(await store.analystQuery('SELECT count() FROM meter_readings', 'CSV')).toBe('3\n');
    expect(await store.analystQuery('SELECT 1 AS one', 'JSONEachRow')).toBe('{"one":1}\n');
  });

  it('the reporting tables sum CDRs once, credits net out, and a retried insert adds nothing', async () => {
    const cdr = (id: string, kind: 'debit' | 'credit', sign: 1 | -1, offset: number) =>
      JSON.stringify({
        cdr_id: id,
        session_id: id.replace(/-c$/, ''),
        kind,
        credit_reference_id: kind === 'credit' ? id.replace(/-c$/, '') : '',
        charger_id: 'CP1',
        site_id: 'site-1',
        operator_id: 'cpo-1',
        connector_id: 1,
        customer_id: 'cust-1',
        token_id: 'TAG',
        tariff_id: 't',
        started_at: '2026-11-20 08:00:00.000',
        ended_at: '2026-11-20 09:00:00.000',
        energy_wh: String(sign * 10_000),
        charging_s: 3000,
        parking_s: 600,
        total_excl_vat: String(sign * 3),
        total_vat: String(sign * 0.66),
        total_incl_vat: String(sign * 3.66),
        currency: 'EUR',
        description: kind === 'credit' ? 'cancelled: meter fault' : '',
        created_at: '2026-11-20 09:00:00.000',
        log_partition: 0,
        log_offset: offset,
      }) + '\n';
    const first = cdr('S1', 'debit', 1, 10) + cdr('S2', 'debit', 1, 11);
    await store.insert('cdrs', first, 'cdrs:first');
    await store.insert('cdrs', first, 'cdrs:first'); // retried: nothing more
    await store.insert('cdrs', cdr('S1-c', 'credit', -1, 12), 'cdrs:credit');
    const [daily] = await store.rows<Record<string, string>>(
      `SELECT toString(sum(sessions)) AS sessions, toString(sum(energy_wh)) AS wh,
              toString(sum(total_incl_vat)) AS incl FROM energy_revenue_daily
       WHERE operator_id = 'cpo-1' AND site_id = 'site-1' AND day = '2026-11-20'`,
    );
    expect(daily).toEqual({ sessions: '1', wh: '10000', incl: '3.66' });
    const [hourly] = await store.rows<Record<string, string>>(
      "SELECT toString(sum(total_excl_vat)) AS excl FROM energy_revenue_hourly WHERE hour = '2026-11-20 09:00:00'",
    );
    expect(hourly).toEqual({ excl: '3' });
    const [usage] = await store.rows<Record<string, string>>(
      "SELECT toString(sum(sessions)) AS sessions, toString(sum(charging_s)) AS charging FROM charger_usage_daily WHERE charger_id = 'CP1'",
    );
    expect(usage).toEqual({ sessions: '1', charging: '3000' });
    const [quality] = await store.rows<{ n: string }>(
      'SELECT toString(sum(readings)) AS n FROM readings_quality_hourly WHERE valid',
    );
    expect(quality?.n).toBe('3'); // the readings above, their retry not counted
  });

  it('readings retention is a TTL on meter_readings; 0 removes it', async () => {
    const ttl = async () =>
      (
        await store.rows<{ engine_full: string }>(
          "SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = 'meter_readings'",
        )
      )[0]?.engine_full;
    await applyReadingsRetention(store, 400);
    expect(await ttl()).toContain('TTL toDateTime(ts) + toIntervalDay(400)');
    await applyReadingsRetention(store, 0);
    await applyReadingsRetention(store, 0);
    expect(await ttl()).not.toContain('TTL');
  });

  it('a statement over the row limit fails alone: the next answer holds only its own rows', async () => {
    await expect(
      store.analystQuery('SELECT number FROM numbers(2000000)', 'JSONEachRow'),
    ).rejects.toMatchObject({ code: 'SQL_FAILED' });
    for (let i = 0; i < 3; i++)
      expect(await store.analystQuery(`SELECT ${i} AS n`, 'CSV')).toBe(`${i}\n`);
    await expect(
      store.rows('SELECT number FROM numbers(10) WHERE throwIf(number = 5)'),
    ).rejects.toThrow();
    expect(await store.rows('SELECT 7 AS n')).toEqual([{ n: 7 }]);
  });

  it('rows of the engine’s own queries come back parsed', async () => {
    const rows = await store.rows<{ log_offset: string; value: number }>(
      'SELECT toString(log_offset) AS log_offset, value FROM meter_readings ORDER BY log_offset',
    );
    expect(rows).toEqual([
      { log_offset: '1', value: 1 },
      { log_offset: '2', value: 2 },
      { log_offset: '3', value: 3 },
    ]);
  });

  it('positional rows (as the workers write readings): every column in order, a row ending early takes the defaults, a retry is dropped', async () => {
    const signed = [
      ...['CP9', 2, 'CP9-1', '2026-11-20 08:00:00.000', 'Energy.Active.Import.Register', ''],
      ...[10.5, 'Wh', 'Sample.Periodic', true, '', 5, 7],
      ...['OCMF|{"RD":[]}\n\ttab', 'ECDSA', 'OCMF', 'k\\ey'],
    ];
    const unsigned = [
      ...['CP9', 2, 'CP9-1', '2026-11-20 08:00:01.000', 'Power.Active.Import', 'L1"'],
      ...[3.5, 'W', 'Sample.Periodic', false, 'exceeds_power', 5, 8],
    ];
    const rows = `${JSON.stringify(signed)}\n${JSON.stringify(unsigned)}\n`;
    await store.insert('meter_readings', rows, 'test:positional', READING_COLUMNS);
    await store.insert('meter_readings', rows, 'test:positional', READING_COLUMNS);
    const stored = await store.rows<Record<string, unknown>>(
      `SELECT ${READING_COLUMNS.join(', ')} FROM meter_readings
       WHERE charger_id = 'CP9' ORDER BY log_offset`,
    );
    const expected = (values: unknown[]) =>
      Object.fromEntries(READING_COLUMNS.map((c, i) => [c, values[i] ?? '']));
    // A UInt64 may come quoted (output_format_json_quote_64bit_integers).
    const offsets = stored.map((r) => ({ ...r, log_offset: Number(r['log_offset']) }));
    expect(offsets).toEqual([expected(signed), expected(unsigned)]);
  });

  it('readings rows (READING_FRAMES, as the workers write them): a table row for each reading with the shared columns, signatures where given, a retry dropped in the table and its view', async () => {
    const t0 = '2026-11-20 09:00:00.000';
    const signedRow = [
      ...['CP8', 2, 'CP8-1', 5, 7, t0],
      [
        ['Energy.Active.Import.Register', '', 10.5, 'Wh', 'Sample.Periodic', true, ''],
        ['Power.Active.Import', 'L1"', 3.5, 'W', 'Sample.Periodic', false, 'exceeds_power'],
      ],
      [
        ['OCMF|{"RD":[]}\n\ttab', 'ECDSA', 'OCMF', 'k\\ey'],
        ['', '', '', ''],
      ],
    ];
    const unsignedRow = [
      ...['CP8', 2, '', 5, 8, '2026-11-20 09:00:01.000'],
      [['Voltage', 'L1-N', 230.1, 'V', 'Clock', true, '']],
    ];
    const rows = `${JSON.stringify(signedRow)}\n${JSON.stringify(unsignedRow)}\n`;
    await store.insert('meter_readings', rows, 'test:frames', READING_FRAMES);
    await store.insert('meter_readings', [rows], 'test:frames', READING_FRAMES);
    const stored = await store.rows<Record<string, unknown>>(
      `SELECT ${READING_COLUMNS.map((c) => (c === 'log_offset' ? 'toString(log_offset) AS log_offset' : c)).join(', ')}
       FROM meter_readings WHERE charger_id = 'CP8' ORDER BY log_offset, measurand`,
    );
    const row = (values: unknown[]) =>
      Object.fromEntries(READING_COLUMNS.map((c, i) => [c, values[i] ?? '']));
    expect(stored).toEqual([
      row([
        ...['CP8', 2, 'CP8-1', t0, 'Energy.Active.Import.Register', ''],
        ...[10.5, 'Wh', 'Sample.Periodic', true, '', 5, '7'],
        ...['OCMF|{"RD":[]}\n\ttab', 'ECDSA', 'OCMF', 'k\\ey'],
      ]),
      row([
        ...['CP8', 2, 'CP8-1', t0, 'Power.Active.Import', 'L1"'],
        ...[3.5, 'W', 'Sample.Periodic', false, 'exceeds_power', 5, '7'],
      ]),
      row([
        ...['CP8', 2, '', '2026-11-20 09:00:01.000', 'Voltage', 'L1-N'],
        ...[230.1, 'V', 'Clock', true, '', 5, '8'],
      ]),
    ]);
    const quality = await store.rows<{ readings: string }>(
      "SELECT toString(sum(readings)) AS readings FROM readings_quality_hourly WHERE charger_id = 'CP8'",
    );
    expect(quality).toEqual([{ readings: '3' }]);
  });

  it('rows given as pieces (the sink’s batches) are stored as the same rows given as one text', async () => {
    const row = (offset: number) =>
      JSON.stringify([
        ...['CP7', 1, 'CP7-1', '2026-11-20 08:00:00.000', 'Voltage', ''],
        ...[230 + offset, 'V', 'Sample.Periodic', true, '', 2, offset],
      ]) + '\n';
    const pieces = [row(1) + row(2), row(3), row(4) + row(5) + row(6)];
    await store.insert('meter_readings', pieces, 'test:pieces', READING_COLUMNS);
    await store.insert('meter_readings', pieces.join(''), 'test:pieces', READING_COLUMNS);
    const stored = await store.rows<{ value: number; log_offset: string }>(
      "SELECT value, toString(log_offset) AS log_offset FROM meter_readings WHERE charger_id = 'CP7' ORDER BY log_offset",
    );
    expect(stored).toEqual(
      [1, 2, 3, 4, 5, 6].map((o) => ({ value: 230 + o, log_offset: String(o) })),
    );
  });

  it('positional session rows (as the workers write them): every column in order, the state (an object in the row) byte for byte, a retry dropped, the highest version the session', async () => {
    const state = JSON.stringify({
      note: 'a "quoted"\n\ttext \\ é',
      nested: { n: [1, 2.5, null] },
    });
    const session = (version: number, status: string, endedAt: string | null) =>
      sessionRowText(
        [
          ...['S9-1', version, 'CP9', 'site-9', 'op-9', 2, 'tx-9', status, 'Local', 'c9', 'T9'],
          ...['t9', '2026-11-20 08:00:00.000', endedAt, '1234.500', 60, 5, 0, 0, '1.2300'],
          ...['0.2700', '1.5000', 'EUR', ['short', 'offline'], ''],
        ],
        status === 'rated' ? '' : state,
        3,
      );
    const open = session(15, 'in_progress', null) + '\n';
    await store.insert('sessions_log', open, 'test:sessions:15', SESSION_COLUMNS);
    await store.insert('sessions_log', open, 'test:sessions:15', SESSION_COLUMNS);
    const text = (c: string) => `toString(${c}) AS ${c}`;
    const stored = await store.rows<Record<string, string | null>>(
      `SELECT ${SESSION_COLUMNS.map(text).join(', ')} FROM sessions_log WHERE session_id = 'S9-1'`,
    );
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({
      version: '15',
      site_id: 'site-9',
      connector_id: '2',
      status: 'in_progress',
      ended_at: null,
      energy_wh: '1234.5',
      charging_s: '60',
      parking_s: '5',
      cost_incl_vat: '1.5',
      flags: "['short','offline']",
      state,
      log_partition: '3',
    });
    const rated = session(23, 'rated', '2026-11-20 08:05:00.000') + '\n';
    await store.insert('sessions_log', rated, 'test:sessions:23', SESSION_COLUMNS);
    const [latest] = await store.rows<{ status: string }>(
      "SELECT status FROM sessions WHERE session_id = 'S9-1'",
    );
    expect(latest?.status).toBe('rated');
  });
});

describe('chDB: positional rows read by ClickHouse from a file', () => {
  const dir = join(tempDir(), 'store');
  const inserts = join(dir, 'user_files', 'inserts');
  let store: ChdbStore;

  beforeAll(async () => {
    // Left by a process that no longer runs (pid 2^22 + 1 is above Linux's pid_max), and by
    // this one: only the first goes at open.
    mkdirSync(inserts, { recursive: true });
    writeFileSync(join(inserts, '4194305-1'), '["left over"]\n');
    writeFileSync(join(inserts, `${process.pid}-999999`), '["in flight"]\n');
    store = new ChdbStore(dir);
    await store.migrate();
  });
  afterAll(() => store.close());

  it('a dead process’s insert file is removed at open, a running one’s kept', () => {
    expect(readdirSync(inserts)).toEqual([`${process.pid}-999999`]);
  });

  it('the file goes once the insert is done, and when it fails; the failure names the column', async () => {
    const row = (offset: number, ts: string) =>
      JSON.stringify(['CP8', 1, 'S8', ts, 'Energy.Active.Import.Register', '', 1, 'Wh'])
        .slice(0, -1)
        .concat(`,"Sample.Periodic",true,"",0,${offset}]\n`);
    await store.insert(
      'meter_readings',
      row(1, '2026-11-20 08:00:00.000'),
      'file:1',
      READING_COLUMNS,
    );
    expect(readdirSync(inserts)).toEqual([`${process.pid}-999999`]);
    const failed = store.insert('meter_readings', row(2, 'not a time'), 'file:2', READING_COLUMNS);
    await expect(failed).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE', retriable: true });
    await expect(failed).rejects.toThrow(/value of key ts/);
    expect(readdirSync(inserts)).toEqual([`${process.pid}-999999`]);
    const [stored] = await store.rows<{ n: string }>(
      "SELECT toString(count()) AS n FROM meter_readings WHERE charger_id = 'CP8'",
    );
    expect(stored?.n).toBe('1');
  });

  it('a table whose listed columns have defaults of their own gets its rows inline: a short row takes those defaults', async () => {
    await store.execute(
      'CREATE TABLE defaults_kept (a String, b UInt32 DEFAULT 42, c LowCardinality(String)) ENGINE = MergeTree ORDER BY a',
    );
    await store.insert('defaults_kept', '["x"]\n["y",7,"z"]\n', 'defaults:1', ['a', 'b', 'c']);
    expect(await store.rows('SELECT a, b, c FROM defaults_kept ORDER BY a')).toEqual([
      { a: 'x', b: 42, c: '' },
      { a: 'y', b: 7, c: 'z' },
    ]);
  });

  it('pieces are joined in order up to the size asked, a text passes whole', () => {
    const pieces = ['a\n', 'bb\n', 'ccc\n', 'dddd\n', 'e\n'];
    expect([...rowPieces(pieces, 6)]).toEqual(['a\nbb\nccc\n', 'dddd\ne\n']);
    expect([...rowPieces(pieces, 6)].join('')).toBe(pieces.join(''));
    expect([...rowPieces('whole\ntext\n', 1)]).toEqual(['whole\ntext\n']);
    expect([...rowPieces([], 6)]).toEqual([]);
  });

  it('the structure leaves LowCardinality out, at any depth', () => {
    expect(withoutLowCardinality('LowCardinality(String)')).toBe('String');
    expect(withoutLowCardinality('Array(LowCardinality(String))')).toBe('Array(String)');
    expect(withoutLowCardinality('LowCardinality(Nullable(String))')).toBe('Nullable(String)');
    expect(withoutLowCardinality('Map(LowCardinality(String), LowCardinality(String))')).toBe(
      'Map(String, String)',
    );
    expect(withoutLowCardinality("DateTime64(3, 'UTC')")).toBe("DateTime64(3, 'UTC')");
  });
});

describe('--clickhouse URL', () => {
  it('names the user, password and database; a bad one names the flag', () => {
    expect(parseClickHouseUrl('http://grafana:s%40cret@db.example:8123/analytics')).toEqual({
      url: 'http://db.example:8123',
      username: 'grafana',
      password: 's@cret',
      database: 'analytics',
    });
    expect(parseClickHouseUrl('https://db.example:8443')).toMatchObject({
      username: 'default',
      database: 'default',
    });
    expect(() => parseClickHouseUrl('db.example:8123')).toThrow(/--clickhouse/);
    expect(() => parseClickHouseUrl('tcp://db.example:9000')).toThrow(/http:\/\/ or https:\/\//);
    expect(() => parseClickHouseUrl('http://db.example:8123/bad-name')).toThrow(/database/);
  });
});

describe('store outage (HTTP store, stand-in server stopped and started again)', () => {
  /** The HTTP store on a stand-in server of its own, migrated; the server restarts on `port`. */
  async function outageStore() {
    const dir = join(tempDir(), 'store');
    const server = await ChdbHttpServer.start({ dir, host: '127.0.0.1', port: 0 });
    const port = server.port;
    const store = new ClickHouseHttpStore(parseClickHouseUrl(`http://127.0.0.1:${port}`));
    await store.migrate();
    return { dir, port, server, store };
  }
  /** A partition's batch of `n` readings from offset `first`, nothing else. */
  const readingsBatch = (partition: number, first: number, n: number) => ({
    partition,
    firstOffset: first,
    lastOffset: first + n - 1,
    readings: Array.from({ length: n }, (_, i) => frameRow(first + i)).join(''),
    readingRows: n,
    statuses: '',
    notifications: '',
    sessions: '',
    cdrs: '',
  });

  it('writes failing for a while: the sink retries with the same tokens; nothing lost, nothing doubled', async () => {
    const opened = await outageStore();
    const { dir, port, store } = opened;
    let server = opened.server;
    const sink = new Sink(store, pino({ level: 'silent' }));
    const batch = (first: number, n: number) => readingsBatch(0, first, n);
    await sink.write(batch(0, 100));
    await server.close(); // the store goes away
    const during = [sink.write(batch(100, 100)), sink.write(batch(200, 100))];
    await new Promise((r) => setTimeout(r, 1500));
    expect(sink.stats.retries).toBeGreaterThan(0);
    server = await ChdbHttpServer.start({ dir, host: '127.0.0.1', port });
    await Promise.all(during);
    await sink.write(batch(200, 100)); // a replayed batch after recovery: its rows exist already
    const [count] = await store.rows<{ n: string; distinct: string }>(
      'SELECT toString(count()) AS n, toString(uniqExact(log_offset)) AS distinct FROM meter_readings',
    );
    console.log(`store outage: ${sink.stats.retries} retries, ${count?.n} rows stored of 300`);
    expect(count).toEqual({ n: '300', distinct: '300' });
    const [offset] = await store.rows<{ o: string }>(
      'SELECT toString(max(log_offset)) AS o FROM ingest_offsets WHERE log_partition = 0',
    );
    expect(offset?.o).toBe('299');
    sink.close();
    await store.close();
    await server.close();
  }, 60_000);

  it('a batch whose partition moves while its write is retried is left out; the others are written once', async () => {
    const opened = await outageStore();
    const { dir, port, store } = opened;
    let server = opened.server;
    // Writes at least 1 s apart: the two batches below wait for the same write.
    const sink = new Sink(store, pino({ level: 'silent' }), undefined, 1000);
    let owned = true;
    const batch = (partition: number, first: number, n: number) => ({
      ...readingsBatch(partition, first, n),
      fence: () =>
        partition === 1 && !owned
          ? Promise.reject(new ChargestreamError('PARTITION_REVOKED', 'moved meanwhile'))
          : Promise.resolve(),
    });
    await sink.write(batch(2, 5000, 1)); // a write just done: the next waits for the interval
    const kept = sink.write(batch(0, 0, 50));
    const moved = sink.write(batch(1, 1000, 50));
    await server.close(); // the store goes away before their write starts
    const movedOutcome = moved.then(
      () => 'written',
      (error: unknown) => (error instanceof ChargestreamError ? error.code : 'other'),
    );
    await new Promise((r) => setTimeout(r, 1800));
    expect(sink.stats.retries).toBeGreaterThan(0); // their write started and is retried
    owned = false; // a rebalance during the outage: partition 1 is another processor's now
    server = await ChdbHttpServer.start({ dir, host: '127.0.0.1', port });
    await kept;
    expect(await movedOutcome).toBe('PARTITION_REVOKED');
    const rows = await store.rows<{ p: number; n: string }>(
      'SELECT log_partition AS p, toString(count()) AS n FROM meter_readings GROUP BY p ORDER BY p',
    );
    expect(rows).toEqual([{ p: 0, n: '51' }]); // the first write's row, and the kept batch
    const offsets = await store.rows<{ p: number }>(
      'SELECT DISTINCT log_partition AS p FROM ingest_offsets ORDER BY p',
    );
    expect(offsets).toEqual([{ p: 0 }, { p: 2 }]);
    sink.close();
    await store.close();
    await server.close();
  }, 60_000);
});
