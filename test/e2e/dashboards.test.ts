import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/lib/free-port.js';
import { simulate } from '../../src/sim/simulator.js';
import { ADMIN_KEY, aBootNotification, aCharger, aNetwork } from '../helpers/builders.js';
import { eventually, sql, tempDir, useEngine } from '../helpers/engine.js';
import { TestCharger } from '../helpers/ocpp-client.js';
import { panelQueries, metricNames, expandClickHouseMacros } from '../helpers/dashboards.js';

/**
 * Issue 9: the dashboards of grafana/dashboards show data. The engine runs under simulated
 * load (with faulty readings, a malformed frame, a refused upgrade and a faulted connector, so
 * that every labelled series exists); a real Prometheus (Debian package `prometheus`) scrapes
 * it every second; every Prometheus panel expression is evaluated through Prometheus's HTTP
 * API and must return data; every ClickHouse panel query runs against the store through the
 * read-only SQL endpoint and must return rows.
 */
const CHARGERS = Array.from({ length: 40 }, (_, i) => `DASH-${String(i + 1).padStart(3, '0')}`);
const TOKENS = Array.from({ length: 10 }, (_, i) => `DASHTAG${i}`);

const run = useEngine(
  aNetwork({
    chargers: CHARGERS.map((id) => aCharger(id)),
    customers: [{ id: 'c', organization: 'o', paymentType: 'postpaid' }],
    tokens: TOKENS.map((id) => ({ id, type: 'RFID', customer: 'c' })),
  }),
  ['--partitions', '4'],
);

const PROMETHEUS = process.env['PROMETHEUS_BIN'] ?? 'prometheus';
let prometheus: ChildProcess | null = null;
let promUrl = '';
let promOutput = '';

beforeAll(async () => {
  const found = spawnSync(PROMETHEUS, ['--version']);
  if (found.error !== undefined || found.status !== 0)
    throw new Error(
      `no Prometheus binary (${PROMETHEUS}): install the Debian package prometheus, or set PROMETHEUS_BIN`,
    );
  const dir = tempDir('chargestream-prometheus-');
  const port = await freePort();
  const api = new URL(run.engine.apiUrl);
  writeFileSync(
    join(dir, 'prometheus.yml'),
    [
      'global:',
      '  scrape_interval: 1s',
      '  evaluation_interval: 1s',
      'scrape_configs:',
      '  - job_name: chargestream',
      '    static_configs:',
      `      - targets: ['${api.host}']`,
      '',
    ].join('\n'),
  );
  promUrl = `http://127.0.0.1:${port}`;
  prometheus = spawn(
    PROMETHEUS,
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'tsdb')}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  prometheus.stdout?.on('data', (d: Buffer) => (promOutput += d.toString()));
  prometheus.stderr?.on('data', (d: Buffer) => (promOutput += d.toString()));
  await eventually(
    () =>
      fetch(`${promUrl}/-/ready`).then(
        (r) => r.ok,
        () => false,
      ),
    (ready) => ready,
    30_000,
  ).catch(() => {
    throw new Error(`Prometheus did not become ready:\n${promOutput.slice(-2000)}`);
  });
  // Targets are picked up some seconds after start: load before the first scrape is unseen.
  await eventually(
    () => promQuery('up == 1'),
    (result) => result.length > 0,
    30_000,
  );
});

afterAll(() => {
  prometheus?.kill('SIGTERM');
});

async function promQuery(expr: string): Promise<unknown[]> {
  const response = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
  const body = (await response.json()) as {
    status: string;
    error?: string;
    data?: { result: unknown[] };
  };
  if (body.status !== 'success') throw new Error(`${expr}: ${body.error ?? response.status}`);
  return body.data?.result ?? [];
}

/**
 * What an operator's network does in a few seconds, and the rare things every panel needs.
 * Returns a charger left connected (and booted) for the connection panels.
 */
async function driveLoad(): Promise<TestCharger> {
  const stats = await simulate({
    url: run.engine.ocppUrl,
    chargerIds: CHARGERS,
    tokens: TOKENS,
    sessionsPerCharger: 3,
    readingsPerSession: 40,
    intervalS: 15,
    share201: 0.3,
    faults: 0.05,
    maxPowerW: 22_000,
  });
  expect(stats.sessions).toBe(CHARGERS.length * 3);
  // A CALLERROR (malformed frame) and a faulted connector (malfunction panel).
  const cp = await TestCharger.connect(`${run.engine.ocppUrl}/${CHARGERS[0]}`);
  expect((await cp.call('BootNotification', aBootNotification())).ok).toBe(true);
  const unknown = await cp.call('NoSuchAction', {});
  expect(unknown).toMatchObject({ ok: false, code: 'NotImplemented' });
  const faulted = await cp.call('StatusNotification', {
    connectorId: 1,
    status: 'Faulted',
    errorCode: 'GroundFailure',
    timestamp: new Date().toISOString(),
  });
  expect(faulted.ok).toBe(true);
  // An upgrade refused (unknown charger).
  await expect(TestCharger.connect(`${run.engine.ocppUrl}/NOT-IN-NETWORK`)).rejects.toThrow(/404/);
  return cp;
}

describe('Grafana dashboards against a live engine', () => {
  it('every metric a panel uses is exported, every Prometheus panel returns data through a real Prometheus, every ClickHouse panel returns rows', async () => {
    const connected = await driveLoad();

    // Every metric name a Prometheus panel uses is in the engine's /metrics.
    const exposition = await (await fetch(`${run.engine.apiUrl}/metrics`)).text();
    const exported = new Set(
      exposition
        .split('\n')
        .filter((line) => line !== '' && !line.startsWith('#'))
        .map((line) => /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)![0]),
    );
    const queries = panelQueries();
    const prom = queries.filter((q) => q.kind === 'prometheus');
    const used = new Set(prom.flatMap((q) => metricNames(q.query)));
    const missing = [...used].filter((name) => !exported.has(name));
    expect(missing, 'metrics the dashboards use but the engine does not export').toEqual([]);
    // An action the protocol does not have is counted, but not as a label of its own.
    expect(exposition).toContain(
      'chargestream_gateway_frames_total{direction="in",action="unknown"} 1',
    );
    expect(exposition).not.toContain('NoSuchAction');
    expect(used.size).toBeGreaterThan(30);

    // Let Prometheus scrape the state after the load a few times.
    await new Promise((r) => setTimeout(r, 4000));
    const empty: string[] = [];
    for (const q of prom) {
      const expr = q.query.replaceAll('$__rate_interval', '1m');
      const result = await promQuery(expr);
      if (result.length === 0) empty.push(`${q.dashboard} / ${q.panel}: ${expr}`);
    }
    console.log(
      `dashboards: ${prom.length} Prometheus expressions evaluated, ${prom.length - empty.length} with data`,
    );
    expect(empty, `panels without data; Prometheus said:\n${promOutput.slice(-1000)}`).toEqual([]);

    // ClickHouse panels: the store answers every query with rows, through the read-only API.
    const clickhouse = queries.filter((q) => q.kind === 'clickhouse');
    const from = Date.now() - 3600_000;
    const to = Date.now() + 30 * 86_400_000; // the simulator's clocks run ahead of the wall
    const noRows: string[] = [];
    for (const q of clickhouse) {
      const rows = await sql(run.engine, ADMIN_KEY, expandClickHouseMacros(q.query, from, to));
      if (rows.length === 0) noRows.push(`${q.dashboard} / ${q.panel}`);
    }
    console.log(
      `dashboards: ${clickhouse.length} ClickHouse queries run, ${clickhouse.length - noRows.length} with rows`,
    );
    expect(noRows).toEqual([]);
    expect(clickhouse.length).toBeGreaterThanOrEqual(8);
    connected.close();
  });
});
