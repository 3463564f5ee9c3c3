/**
 * The soak (`npm run soak -- --minutes 10 [--mode embedded|kafka] [--chargers N]`): the engine
 * built from dist/ as child processes, many simulated chargers (test/reliability/soak/
 * charger.ts) charging without pause, and faults injected at random for the whole time —
 * the engine (or a processor, a gateway, the broker) SIGKILLed and started again, connections
 * cut without a close frame, chargers offline for a while and flushing their backlog. At the
 * end every charger finishes its session and drains its queue, and what the chargers had
 * acknowledged is reconciled against the store: sessions, readings, energies, CDRs and their
 * totals, per charger. The report is printed as a table and written as JSON.
 *
 * Not part of `npm test`: it runs for minutes. The reliability suite holds the short,
 * deterministic version of each fault.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { startLocalBroker, type LocalBroker } from '../../../src/kafka/local-broker.js';
import { ENGINE_NODE_FLAGS } from '../../../src/lib/engine-flags.js';
import { freePort } from '../../../src/lib/free-port.js';
import { SoakCharger } from './charger.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const CLI = join(ROOT, 'dist', 'src', 'cli.js');
const KEY = 'soak-admin-key-0123456789';

const { values: args } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    mode: { type: 'string', default: 'embedded' },
    chargers: { type: 'string', default: '200' },
    'share-201': { type: 'string', default: '0.3' },
    'tick-ms': { type: 'string', default: '500' },
    'fault-every-s': { type: 'string', default: '30' },
    seed: { type: 'string', default: String(Date.now() % 1_000_000) },
    out: { type: 'string' },
  },
});
const MINUTES = Number(args.minutes);
const MODE = args.mode;
const CHARGERS = Number(args.chargers);
const SHARE_201 = Number(args['share-201']);
const TICK_MS = Number(args['tick-ms']);
const FAULT_EVERY_S = Number(args['fault-every-s']);
if (MODE !== 'embedded' && MODE !== 'kafka') throw new Error('--mode: embedded or kafka');
for (const [name, value] of Object.entries({ MINUTES, CHARGERS, TICK_MS, FAULT_EVERY_S }))
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name}: must be a positive number`);

/** mulberry32: a seeded generator, so that a run's faults can be told apart and repeated. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = seeded(Number(args.seed));
const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (text: string) =>
  process.stdout.write(`[${new Date().toISOString().slice(11, 19)}] ${text}\n`);

// ---- the deployment ------------------------------------------------------------------------

interface Proc {
  readonly name: string;
  readonly args: string[];
  child: ChildProcess;
  ocppUrl: string;
  apiUrl: string;
  output: string;
}

const LISTENING =
  /listening \(\w+\): (?:OCPP (wss?):\/\/([\d.]+:\d+)\/ocpp\/\{chargerId\}\s+)?API http:\/\/([\d.]+:\d+)/;
const STORE_LISTENING = /store server: (http:\/\/[\d.]+:\d+)/;

const unexpectedExits: string[] = [];
const killing = new Set<ChildProcess>();

async function launch(name: string, cliArgs: string[]): Promise<Proc> {
  const child = spawn(process.execPath, [...ENGINE_NODE_FLAGS, CLI, ...cliArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const proc: Proc = { name, args: cliArgs, child, ocppUrl: '', apiUrl: '', output: '' };
  const keep = (d: Buffer) => {
    proc.output = (proc.output + d.toString()).slice(-200_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${name} did not start:\n${proc.output}`)),
      120_000,
    );
    const check = () => {
      const engine = LISTENING.exec(proc.output);
      const store = STORE_LISTENING.exec(proc.output);
      if (engine === null && store === null) return;
      clearTimeout(timer);
      child.stdout.off('data', check);
      if (engine !== null) {
        proc.ocppUrl = engine[2] === undefined ? '' : `${engine[1]}://${engine[2]}/ocpp`;
        proc.apiUrl = `http://${engine[3]}`;
      } else proc.apiUrl = store![1]!;
      resolve();
    };
    child.stdout.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code}:\n${proc.output}`));
    });
  });
  child.on('exit', (code, signal) => {
    if (killing.has(child)) return;
    unexpectedExits.push(`${name}: code ${code} signal ${signal}`);
    log(
      `!! ${name} exited on its own (code ${code}, signal ${signal}):\n${proc.output.slice(-2000)}`,
    );
  });
  return proc;
}

async function kill(proc: Proc, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  const child = proc.child;
  if (child.exitCode !== null || child.signalCode !== null) return;
  killing.add(child);
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

async function relaunch(proc: Proc): Promise<number> {
  const t = Date.now();
  await kill(proc);
  const fresh = await launch(proc.name, proc.args);
  proc.child = fresh.child;
  proc.ocppUrl = fresh.ocppUrl;
  proc.apiUrl = fresh.apiUrl;
  proc.output = fresh.output;
  return Date.now() - t;
}

/** Node prints its version after the stack of an uncaught exception or rejection. */
const crashes = (procs: readonly Proc[]) =>
  procs.reduce((n, p) => n + (p.output.match(/^Node\.js v\d/gm) ?? []).length, 0);

const dir = mkdtempSync(join(tmpdir(), 'chargestream-soak-'));
const ids = Array.from({ length: CHARGERS }, (_, i) => `SOAK-${String(i).padStart(5, '0')}`);
const network = {
  settings: { defaultTariff: 't' },
  organizations: [{ id: 'o', type: 'cpo' }],
  sites: [{ id: 's', operator: 'o' }],
  chargers: ids.map((id) => ({ id, site: 's', connectors: [{ id: 1, maxPowerW: 22_000 }] })),
  // 0.30 EUR/kWh + 20 % VAT: with energies in 100 Wh steps the amount before VAT is whole
  // cents and the VAT never falls on a half cent, so the expected total needs no rounding rule.
  tariffs: [
    {
      id: 't',
      currency: 'EUR',
      elements: [{ components: [{ type: 'ENERGY', price: '0.30', vat: '20' }] }],
    },
  ],
  customers: [{ id: 'c', organization: 'o', paymentType: 'postpaid' }],
  tokens: ids.map((id) => ({ id: `TAG-${id}`, type: 'RFID', customer: 'c' })),
  apiKeys: [{ key: KEY, role: 'admin', organization: 'o' }],
};
const config = join(dir, 'network.yaml');
writeFileSync(config, stringify(network));
const listen = ['--config', config, '--host', '127.0.0.1', '--ocpp-port', '0', '--api-port', '0'];
const quiet = ['--log-level', 'warn', '--fsync', 'true'];

interface Fault {
  readonly name: string;
  readonly weight: number;
  run(): Promise<string>;
}

interface Deployment {
  readonly description: string;
  /** The OCPP URL chargers connect to now (it changes when a gateway restarts). */
  ocppUrl(): string;
  /** A process that answers /api/v1/sql. */
  reader(): Proc;
  readonly processes: Proc[];
  readonly faults: Fault[];
  stop(): Promise<void>;
}

async function embedded(): Promise<Deployment> {
  const engine = await launch('engine', [
    'start',
    ...listen,
    '--data',
    join(dir, 'engine'),
    ...quiet,
  ]);
  return {
    description: 'embedded: one engine process (gateway, embedded log, processor, chDB)',
    ocppUrl: () => engine.ocppUrl,
    reader: () => engine,
    processes: [engine],
    faults: [
      {
        name: 'engine SIGKILL + restart',
        weight: 2,
        run: async () => `back in ${await relaunch(engine)} ms`,
      },
    ],
    stop: () => kill(engine, 'SIGTERM'),
  };
}

async function distributed(): Promise<Deployment> {
  const brokerDir = join(dir, 'broker');
  const ports = { port: await freePort(), controllerPort: await freePort() };
  let broker: LocalBroker = await startLocalBroker({ dataDir: brokerDir, ...ports });
  const storePort = await freePort();
  const store = await launch('store-server', [
    'store-server',
    '--data',
    join(dir, 'shared'),
    '--port',
    String(storePort),
  ]);
  const bus = [
    '--kafka',
    broker.brokers,
    '--topic-prefix',
    'soak',
    '--partitions',
    '8',
    '--clickhouse',
    store.apiUrl,
  ];
  const processors = [
    await launch('processor-0', [
      'start',
      ...listen,
      '--role',
      'processor',
      '--data',
      join(dir, 'p0'),
      ...bus,
      ...quiet,
    ]),
    await launch('processor-1', [
      'start',
      ...listen,
      '--role',
      'processor',
      '--data',
      join(dir, 'p1'),
      ...bus,
      ...quiet,
    ]),
  ];
  const gateway = await launch('gateway', [
    'start',
    ...listen,
    '--role',
    'gateway',
    '--data',
    join(dir, 'g0'),
    ...bus,
    ...quiet,
  ]);
  const processes = [store, ...processors, gateway];
  return {
    description: 'Kafka: a local broker, a store-server, two processors in one group, one gateway',
    ocppUrl: () => gateway.ocppUrl,
    reader: () =>
      processors.find((p) => p.child.exitCode === null && p.child.signalCode === null) ??
      processors[0]!,
    processes,
    faults: [
      {
        name: 'processor SIGKILL + restart',
        weight: 2,
        run: async () => {
          const p = pick(processors);
          return `${p.name} back in ${await relaunch(p)} ms`;
        },
      },
      {
        name: 'gateway SIGKILL + restart',
        weight: 1,
        run: async () => `back in ${await relaunch(gateway)} ms`,
      },
      {
        name: 'broker stop + start',
        weight: 1,
        run: async () => {
          const downMs = 5_000 + Math.floor(random() * 10_000);
          await broker.stop();
          await sleep(downMs);
          broker = await startLocalBroker({ dataDir: brokerDir, ...ports });
          return `down ${downMs} ms`;
        },
      },
      {
        name: 'store outage (store-server SIGKILL, restart on its port)',
        weight: 1,
        run: async () => {
          const downMs = 5_000 + Math.floor(random() * 25_000);
          await kill(store);
          await sleep(downMs);
          await relaunch(store);
          return `down ${downMs} ms`;
        },
      },
    ],
    stop: async () => {
      for (const p of [gateway, ...processors, store]) await kill(p, 'SIGTERM');
      await broker.stop();
    },
  };
}

async function sql<T>(reader: Proc, statement: string): Promise<T[]> {
  const response = await fetch(`${reader.apiUrl}/api/v1/sql`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${KEY}` },
    body: statement,
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`sql ${response.status}: ${text}`);
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as T);
}

/** Retries a read while the store or the reader is coming back. */
async function sqlRetrying<T>(deployment: Deployment, statement: string): Promise<T[]> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await sql<T>(deployment.reader(), statement);
    } catch (error) {
      if (attempt >= 60) throw error;
      await sleep(2000);
    }
  }
}

// ---- the run --------------------------------------------------------------------------------

const started = new Date();
log(
  `soak: ${MINUTES} min, ${MODE}, ${CHARGERS} chargers (${Math.round(SHARE_201 * 100)} % 2.0.1), seed ${args.seed}, data ${dir}`,
);
const deployment = MODE === 'kafka' ? await distributed() : await embedded();
log(deployment.description);

const chargers = ids.map(
  (id) =>
    new SoakCharger({
      id,
      protocol: random() < SHARE_201 ? 'ocpp2.0.1' : 'ocpp1.6',
      token: `TAG-${id}`,
      url: () => deployment.ocppUrl(),
      random,
      startTime: Date.now(),
    }),
);
let finished = false;
const producer = setInterval(() => {
  for (const c of chargers) if (random() < 0.8) c.tick();
}, TICK_MS);
const senders = chargers.map((c) => c.run(() => finished));

const faultLog: Array<{ at: string; fault: string; result: string }> = [];
const chargerFaults: Fault[] = [
  {
    name: 'connections cut without a close frame',
    weight: 2,
    run: () => {
      const n = Math.max(1, Math.floor(CHARGERS * (0.05 + random() * 0.25)));
      for (let i = 0; i < n; i++) pick(chargers).cut();
      return Promise.resolve(`${n} cuts`);
    },
  },
  {
    name: 'chargers offline, then flushing their backlog',
    weight: 2,
    run: () => {
      const n = Math.max(1, Math.floor(CHARGERS * (0.05 + random() * 0.1)));
      const ms = 10_000 + Math.floor(random() * 50_000);
      for (let i = 0; i < n; i++) pick(chargers).goOffline(ms);
      return Promise.resolve(`${n} chargers for ${Math.round(ms / 1000)} s`);
    },
  },
];
const faults = [...deployment.faults, ...chargerFaults];
const deadline = Date.now() + MINUTES * 60_000;
const progress = setInterval(() => {
  const acked = chargers.reduce((n, c) => n + c.counters.acked, 0);
  const queued = chargers.reduce((n, c) => n + c.queued, 0);
  log(`acked ${acked}, queued on chargers ${queued}, faults ${faultLog.length}`);
}, 30_000);
while (Date.now() < deadline) {
  await sleep(Math.min(deadline - Date.now(), FAULT_EVERY_S * 1000 * (0.5 + random())));
  if (Date.now() >= deadline) break;
  const total = faults.reduce((n, f) => n + f.weight, 0);
  let r = random() * total;
  const fault = faults.find((f) => (r -= f.weight) < 0) ?? faults[0]!;
  const at = new Date().toISOString();
  try {
    const result = await fault.run();
    faultLog.push({ at, fault: fault.name, result });
    log(`fault: ${fault.name}: ${result}`);
  } catch (error) {
    faultLog.push({ at, fault: fault.name, result: `failed: ${String(error)}` });
    log(`fault ${fault.name} failed: ${String(error)}`);
  }
}

log('time is up: every charger ends its session and drains its queue');
finished = true;
for (const c of chargers) c.finish();
const drainStart = Date.now();
await Promise.race([Promise.all(senders), sleep(15 * 60_000)]);
clearInterval(producer);
const drainMs = Date.now() - drainStart;
const undrained = chargers.filter((c) => !c.drained).map((c) => c.id);
log(`drained in ${drainMs} ms${undrained.length > 0 ? `; NOT drained: ${undrained.length}` : ''}`);

// ---- reconciliation -------------------------------------------------------------------------

interface Expected {
  sessions: number;
  refused: number;
  energyWh: number;
  readings: number;
  totalCents: number;
}
const expected = new Map<string, Expected>();
for (const c of chargers) {
  const e: Expected = { sessions: 0, refused: 0, energyWh: 0, readings: 0, totalCents: 0 };
  for (const s of c.sessions) {
    if (s.meterStop === null) continue;
    if (s.status !== 'Accepted') {
      e.refused += 1;
      continue;
    }
    const wh = s.meterStop - s.meterStart;
    const excl = (wh / 100) * 3; // 0.30 EUR/kWh: 3 cents per 100 Wh
    e.sessions += 1;
    e.energyWh += wh;
    e.readings += s.readings + 2; // the start's and the stop's readings are stored too
    e.totalCents += excl + Math.round(excl / 5); // + 20 % VAT
  }
  expected.set(c.id, e);
}
const want = [...expected.values()].reduce(
  (a, e) => ({
    sessions: a.sessions + e.sessions,
    refused: a.refused + e.refused,
    energyWh: a.energyWh + e.energyWh,
    readings: a.readings + e.readings,
    totalCents: a.totalCents + e.totalCents,
  }),
  { sessions: 0, refused: 0, energyWh: 0, readings: 0, totalCents: 0 },
);

// The last batches reach the store after the last acknowledgement: wait for the CDRs and the
// sessions' last versions (a batch stores its CDRs before its session rows).
const settleStart = Date.now();
for (;;) {
  const [row] = await sqlRetrying<{ cdrs: string; ended: string }>(
    deployment,
    `SELECT toString((SELECT count() FROM cdrs WHERE charger_id LIKE 'SOAK-%')) AS cdrs,
            toString((SELECT count() FROM sessions WHERE charger_id LIKE 'SOAK-%' AND status = 'rated')) AS ended`,
  );
  const done = Number(row?.cdrs) >= want.sessions && Number(row?.ended) >= want.sessions;
  if (done || Date.now() - settleStart > 5 * 60_000) break;
  await sleep(1000);
}
const settleMs = Date.now() - settleStart;

interface StoredRow {
  charger_id: string;
  sessions: string;
  rejected: string;
  energy: string;
  cdrs: string;
  cdr_sessions: string;
  cdr_energy: string;
  cdr_cents: string;
  readings: string;
  reading_rows: string;
  distinct_readings: string;
}
const storedRows = await sqlRetrying<StoredRow>(
  deployment,
  `WITH
     s AS (SELECT charger_id, countIf(status != 'rejected') AS sessions, countIf(status = 'rejected') AS rejected,
                  sumIf(energy_wh, status != 'rejected') AS energy
           FROM sessions WHERE charger_id LIKE 'SOAK-%' GROUP BY charger_id),
     c AS (SELECT charger_id, count() AS cdrs, uniqExact(session_id) AS cdr_sessions, sum(energy_wh) AS cdr_energy,
                  sum(total_incl_vat) * 100 AS cdr_cents
           FROM cdrs WHERE charger_id LIKE 'SOAK-%' GROUP BY charger_id),
     r AS (SELECT charger_id, countIf(valid) AS readings, count() AS reading_rows,
                  uniqExactIf((ts, measurand), valid) AS distinct_readings
           FROM meter_readings WHERE charger_id LIKE 'SOAK-%' AND measurand = 'Energy.Active.Import.Register'
           GROUP BY charger_id)
   SELECT s.charger_id AS charger_id, toString(s.sessions) AS sessions, toString(s.rejected) AS rejected,
          toString(s.energy) AS energy, toString(c.cdrs) AS cdrs, toString(c.cdr_sessions) AS cdr_sessions,
          toString(c.cdr_energy) AS cdr_energy, toString(c.cdr_cents) AS cdr_cents,
          toString(r.readings) AS readings, toString(r.reading_rows) AS reading_rows,
          toString(r.distinct_readings) AS distinct_readings
   FROM s LEFT JOIN c ON c.charger_id = s.charger_id LEFT JOIN r ON r.charger_id = s.charger_id`,
);
const stored = new Map(storedRows.map((r) => [r.charger_id, r]));
const mismatches: Array<{ charger: string; field: string; expected: number; stored: number }> = [];
const got = {
  sessions: 0,
  rejected: 0,
  energyWh: 0,
  cdrs: 0,
  cdrEnergyWh: 0,
  totalCents: 0,
  readings: 0,
  readingRows: 0,
  duplicateReadings: 0,
};
for (const c of chargers) {
  const e = expected.get(c.id)!;
  const r = stored.get(c.id);
  const n = (v: string | undefined) => Number(v ?? 0);
  const s = {
    sessions: n(r?.sessions),
    rejected: n(r?.rejected),
    energyWh: n(r?.energy),
    cdrs: n(r?.cdrs),
    cdrSessions: n(r?.cdr_sessions),
    cdrEnergyWh: n(r?.cdr_energy),
    totalCents: Math.round(n(r?.cdr_cents)),
    readings: n(r?.distinct_readings),
    readingRows: n(r?.reading_rows),
    duplicates: n(r?.readings) - n(r?.distinct_readings),
  };
  got.sessions += s.sessions;
  got.rejected += s.rejected;
  got.energyWh += s.energyWh;
  got.cdrs += s.cdrs;
  got.cdrEnergyWh += s.cdrEnergyWh;
  got.totalCents += s.totalCents;
  got.readings += s.readings;
  got.readingRows += s.readingRows;
  got.duplicateReadings += s.duplicates;
  const check = (field: string, want: number, have: number) => {
    if (want !== have) mismatches.push({ charger: c.id, field, expected: want, stored: have });
  };
  check('sessions', e.sessions, s.sessions);
  check('refused starts', e.refused, s.rejected);
  check('session energy Wh', e.energyWh, s.energyWh);
  check('CDRs', e.sessions, s.cdrs);
  check('sessions with a CDR', e.sessions, s.cdrSessions);
  check('CDR energy Wh', e.energyWh, s.cdrEnergyWh);
  check('CDR total cents', e.totalCents, s.totalCents);
  check('valid readings', e.readings, s.readings);
  check('readings stored twice', 0, s.duplicates);
}
const counters = chargers.reduce(
  (a, c) => {
    for (const [k, v] of Object.entries(c.counters) as Array<[string, number]>)
      a[k] = k === 'peakQueue' ? Math.max(a[k] ?? 0, v) : (a[k] ?? 0) + v;
    return a;
  },
  {} as Record<string, number>,
);
const ackMs = chargers.flatMap((c) => c.ackMs).sort((a, b) => a - b);
const quantile = (q: number) =>
  Math.round(ackMs[Math.min(ackMs.length - 1, Math.floor(q * ackMs.length))] ?? 0);
const latency = { p50: quantile(0.5), p99: quantile(0.99), max: quantile(1) };
const faultCounts: Record<string, number> = {};
for (const f of faultLog) faultCounts[f.fault] = (faultCounts[f.fault] ?? 0) + 1;

const report = {
  started: started.toISOString(),
  ended: new Date().toISOString(),
  minutes: MINUTES,
  mode: MODE,
  deployment: deployment.description,
  seed: Number(args.seed),
  chargers: { total: CHARGERS, ocpp201: chargers.filter((c) => c.protocol === 'ocpp2.0.1').length },
  traffic: counters,
  ackLatencyMs: latency,
  acksPerSecond: Math.round(ackMs.length / (MINUTES * 60)),
  faults: { total: faultLog.length, byKind: faultCounts, log: faultLog },
  drainMs,
  settleMs,
  undrained,
  expected: { ...want, totalEur: (want.totalCents / 100).toFixed(2) },
  stored: { ...got, totalEur: (got.totalCents / 100).toFixed(2) },
  mismatches: mismatches.slice(0, 200),
  mismatchCount: mismatches.length,
  unexpectedExits,
  crashes: crashes(deployment.processes),
  ok:
    mismatches.length === 0 &&
    undrained.length === 0 &&
    unexpectedExits.length === 0 &&
    crashes(deployment.processes) === 0,
};
const out = args.out ?? join(dir, 'soak-report.json');
writeFileSync(out, JSON.stringify(report, null, 2) + '\n');

const rows: Array<[string, string, string]> = [
  ['sessions (rated, one CDR each)', String(want.sessions), String(got.cdrs)],
  ['sessions in the store', String(want.sessions), String(got.sessions)],
  ['refused starts', String(want.refused), String(got.rejected)],
  ['energy, sessions (Wh)', String(want.energyWh), String(got.energyWh)],
  ['energy, CDRs (Wh)', String(want.energyWh), String(got.cdrEnergyWh)],
  ['CDR totals (EUR)', report.expected.totalEur, report.stored.totalEur],
  ['valid readings (distinct)', String(want.readings), String(got.readings)],
  ['readings stored twice', '0', String(got.duplicateReadings)],
  ['chargers not drained', '0', String(undrained.length)],
  ['unexpected process exits', '0', String(unexpectedExits.length)],
  ['process crashes', '0', String(report.crashes)],
];
const width = Math.max(...rows.map((r) => r[0].length));
process.stdout.write(
  [
    '',
    `soak reconciliation (${MINUTES} min, ${MODE}, ${CHARGERS} chargers, ${faultLog.length} faults)`,
    `${'figure'.padEnd(width)}  ${'chargers acked'.padStart(14)}  ${'store'.padStart(14)}`,
    ...rows.map(
      ([name, a, b]) =>
        `${name.padEnd(width)}  ${a.padStart(14)}  ${b.padStart(14)}${a === b ? '' : '  MISMATCH'}`,
    ),
    '',
    `faults: ${Object.entries(faultCounts)
      .map(([k, v]) => `${k} ×${v}`)
      .join('; ')}`,
    `traffic: ${Object.entries(counters)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
    `acknowledgements: ${ackMs.length} (${report.acksPerSecond}/s), latency p50 ${latency.p50} ms, p99 ${latency.p99} ms, max ${latency.max} ms`,
    `per-charger mismatches: ${mismatches.length}${mismatches.length > 0 ? ` (first: ${JSON.stringify(mismatches.slice(0, 5))})` : ''}`,
    `report: ${out}`,
    report.ok ? 'RECONCILED' : 'NOT RECONCILED',
    '',
  ].join('\n'),
);
clearInterval(progress);
await deployment.stop();
process.exit(report.ok ? 0 : 1);
