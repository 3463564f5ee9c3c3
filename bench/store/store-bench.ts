/**
 * Store benchmark: rows/s ingested through the store layer (Store.insert: JSON blocks with
 * deduplication tokens, the readings nested as the engine writes them, materialized views
 * included), then the latency of a driver statement and an account statement over the
 * generated data.
 *
 *   npm run build && node dist/bench/store/store-bench.js [--sessions 500000]
 *       [--readings-per-session 20] [--batch 100000] [--backend chdb|http] [--runs 20]
 *
 * The data: `sessions` sessions with one CDR each, spread over 90 days, 5,000 chargers on 250
 * sites of 10 operators, 100,000 customers; `readings-per-session` meter readings per session
 * (10 M with the defaults). `--backend http` runs the same through the HTTP store against the
 * chDB stand-in server in this process.
 */
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ChdbHttpServer } from '../../src/store/chdb-http-server.js';
import { ChdbStore } from '../../src/store/chdb-store.js';
import { ClickHouseHttpStore, parseClickHouseUrl } from '../../src/store/clickhouse-http-store.js';
import { READING_FRAMES, type Layout, type Store } from '../../src/store/store.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const { values } = parseArgs({
  options: {
    sessions: { type: 'string', default: '500000' },
    'readings-per-session': { type: 'string', default: '20' },
    batch: { type: 'string', default: '100000' },
    backend: { type: 'string', default: 'chdb' },
    runs: { type: 'string', default: '20' },
    out: { type: 'string', default: join(root, 'bench', 'out', 'store-bench.json') },
  },
});
const SESSIONS = Number(values.sessions);
const PER_SESSION = Number(values['readings-per-session']);
const BATCH = Number(values.batch);
const RUNS = Number(values.runs);
const CHARGERS = 5_000;
const CUSTOMERS = 100_000;
const DAY = 86_400_000;
const START = Date.UTC(2026, 7, 1);

const ts = (ms: number) => new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
const charger = (s: number) => s % CHARGERS;
const site = (c: number) => Math.floor(c / 20);
const operator = (c: number) => site(c) % 10;
const customer = (s: number) => (s * 7919) % CUSTOMERS;
const startOf = (s: number) => START + Math.floor((s / SESSIONS) * 90 * DAY);

function cdrRows(from: number, to: number): string {
  let out = '';
  for (let s = from; s < to; s++) {
    const c = charger(s);
    const started = startOf(s);
    const ended = started + 3_600_000;
    const wh = 5_000 + (s % 40_000);
    const net = ((wh / 1000) * 0.3).toFixed(4);
    const vat = ((wh / 1000) * 0.3 * 0.22).toFixed(4);
    out +=
      JSON.stringify({
        cdr_id: `S${s}-1`,
        session_id: `S${s}`,
        kind: 'debit',
        credit_reference_id: '',
        charger_id: `CP${c}`,
        site_id: `site-${site(c)}`,
        operator_id: `cpo-${operator(c)}`,
        connector_id: 1,
        customer_id: `cust-${customer(s)}`,
        token_id: `TAG${customer(s)}`,
        tariff_id: 't',
        started_at: ts(started),
        ended_at: ts(ended),
        energy_wh: String(wh),
        charging_s: 3000,
        parking_s: 600,
        total_excl_vat: net,
        total_vat: vat,
        total_incl_vat: (Number(net) + Number(vat)).toFixed(4),
        currency: 'EUR',
        description: '',
        created_at: ts(ended),
        'lines.dimension': ['ENERGY'],
        'lines.quantity': [String(wh / 1000)],
        'lines.unit': ['kWh'],
        'lines.unit_price': ['0.30'],
        'lines.vat_rate': ['22'],
        'lines.net': [net],
        'lines.vat': [vat],
        log_partition: s % 16,
        log_offset: s,
      }) + '\n';
  }
  return out;
}

function readingRows(from: number, to: number): string {
  let out = '';
  for (let s = from; s < to; s++) {
    const c = charger(s);
    const started = startOf(s);
    for (let r = 0; r < PER_SESSION; r++) {
      // As the workers write an event of one reading (READING_FRAMES).
      out +=
        JSON.stringify([
          `CP${c}`,
          1,
          `S${s}`,
          s % 16,
          s * PER_SESSION + r,
          ts(started + r * 180_000),
          [
            [
              'Energy.Active.Import.Register',
              '',
              100_000 + r * 550,
              'Wh',
              'Sample.Periodic',
              r % 97 !== 0,
              r % 97 === 0 ? 'exceeds_power' : '',
            ],
          ],
        ]) + '\n';
    }
  }
  return out;
}

async function ingest(
  store: Store,
  table: string,
  rows: (from: number, to: number) => string,
  perSession: number,
  columns?: Layout,
) {
  const sessionsPerBatch = Math.max(1, Math.floor(BATCH / perSession));
  let rowsDone = 0;
  let insertMs = 0;
  const t0 = performance.now();
  for (let s = 0; s < SESSIONS; s += sessionsPerBatch) {
    const text = rows(s, Math.min(SESSIONS, s + sessionsPerBatch));
    const t = performance.now();
    await store.insert(table, text, `bench:${table}:${s}`, columns);
    insertMs += performance.now() - t;
    rowsDone += (Math.min(SESSIONS, s + sessionsPerBatch) - s) * perSession;
  }
  const wallS = (performance.now() - t0) / 1000;
  return {
    table,
    rows: rowsDone,
    rowsPerSecondInsert: Math.round(rowsDone / (insertMs / 1000)),
    rowsPerSecondWithGeneration: Math.round(rowsDone / wallS),
  };
}

function percentiles(ms: number[]) {
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return { p50: round(at(0.5)), p99: round(at(0.99)), max: round(sorted.at(-1)!) };
}
const round = (n: number) => Math.round(n * 10) / 10;

async function timed(store: Store, sqlFor: (i: number) => string) {
  const ms: number[] = [];
  let rows = 0;
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    const result = await store.rows<Record<string, unknown>>(sqlFor(i));
    ms.push(performance.now() - t);
    rows = result.length;
  }
  return { ...percentiles(ms), rowsLastRun: rows };
}

const dir = mkdtempSync(join(tmpdir(), 'chargestream-store-bench-'));
let server: ChdbHttpServer | null = null;
let store: Store;
if (values.backend === 'http') {
  server = await ChdbHttpServer.start({ dir: join(dir, 'store'), host: '127.0.0.1', port: 0 });
  store = new ClickHouseHttpStore(parseClickHouseUrl(`http://127.0.0.1:${server.port}`));
} else if (values.backend === 'chdb') {
  store = new ChdbStore(join(dir, 'store'));
} else {
  throw new Error(`--backend: chdb or http, not ${values.backend}`);
}
await store.migrate();

console.log(
  `store bench: ${SESSIONS.toLocaleString('en')} sessions, ${(SESSIONS * PER_SESSION).toLocaleString('en')} readings, batches of ${BATCH.toLocaleString('en')} rows, backend ${values.backend}, node ${process.version}`,
);
const cdrs = await ingest(store, 'cdrs', cdrRows, 1);
console.log(JSON.stringify(cdrs));
const readings = await ingest(store, 'meter_readings', readingRows, PER_SESSION, READING_FRAMES);
console.log(JSON.stringify(readings));

// The statements are timed over the data at rest: the merges the inserts started run first
// (right after a fast ingest they would compete with the statements for the cores).
const settling = performance.now();
for (let i = 0; i < 600; i++) {
  const [running] = await store.rows<{ n: string }>(
    'SELECT toString(count()) AS n FROM system.merges',
  );
  if (running?.n === '0') break;
  await new Promise((r) => setTimeout(r, 100));
}
console.log(`merges settled in ${Math.round(performance.now() - settling)} ms`);

// A driver statement (B1): one customer's CDRs of one month, with the totals. An account
// statement (B2): one operator's month, totals per site and VAT rate.
const month = (i: number) => {
  const from = new Date(Date.UTC(2026, 7 + (i % 3), 1));
  const to = new Date(Date.UTC(2026, 8 + (i % 3), 1));
  const d = (x: Date) => x.toISOString().slice(0, 10);
  return `created_at >= '${d(from)}' AND created_at < '${d(to)}'`;
};
const driver = await timed(store, (i) => {
  // A customer who charged, and the calendar month of one of their sessions.
  const s = (i * 7_793) % SESSIONS;
  const started = new Date(startOf(s));
  const from = new Date(Date.UTC(started.getUTCFullYear(), started.getUTCMonth(), 1));
  const to = new Date(Date.UTC(started.getUTCFullYear(), started.getUTCMonth() + 1, 1));
  const d = (x: Date) => x.toISOString().slice(0, 10);
  return `SELECT cdr_id, session_id, kind, charger_id, started_at, ended_at, energy_wh,
            total_excl_vat, total_vat, total_incl_vat, currency
          FROM cdrs WHERE customer_id = 'cust-${customer(s)}'
            AND created_at >= '${d(from)}' AND created_at < '${d(to)}'
          ORDER BY created_at`;
});
console.log(`driver statement  ${JSON.stringify(driver)}`);
const account = await timed(
  store,
  (i) => `SELECT site_id, lines.vat_rate AS vat_rate, count() AS cdrs, sum(energy_wh) AS energy_wh,
            sum(lines.net) AS net, sum(lines.vat) AS vat
          FROM cdrs ARRAY JOIN lines
          WHERE operator_id = 'cpo-${i % 10}' AND ${month(i)}
          GROUP BY site_id, vat_rate ORDER BY site_id`,
);
console.log(`account statement ${JSON.stringify(account)}`);
const report = await timed(
  store,
  (i) => `SELECT day, site_id, sum(sessions) AS sessions, sum(energy_wh) AS energy_wh,
            sum(total_incl_vat) AS revenue
          FROM energy_revenue_daily WHERE operator_id = 'cpo-${i % 10}'
          GROUP BY day, site_id ORDER BY day, site_id`,
);
console.log(`daily revenue report (materialized view) ${JSON.stringify(report)}`);

mkdirSync(dirname(values.out), { recursive: true });
writeFileSync(
  values.out,
  JSON.stringify(
    {
      sessions: SESSIONS,
      readings: SESSIONS * PER_SESSION,
      backend: values.backend,
      cdrs,
      readings_: readings,
      driver,
      account,
      report,
    },
    null,
    2,
  ),
);
await store.close();
await server?.close();
