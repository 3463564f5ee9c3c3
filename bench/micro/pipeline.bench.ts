import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { crc32 } from 'node:zlib';
import { Packr } from 'msgpackr';
import { decodeRuns, EventPacker, EventUnpacker } from '../../src/bus/event-codec.js';
import { partitionFor, Placements } from '../../src/bus/partitioner.js';
import { indexNetwork } from '../../src/config/network-index.js';
import { parseNetwork } from '../../src/config/network.js';
import { TransactionRegistry } from '../../src/gateway/transactions.js';
import { handleCall, type ActionContext } from '../../src/ocpp/actions.js';
import { connectorKey, type ChargerEvent } from '../../src/ocpp/events.js';
import { parseFrame } from '../../src/ocpp/rpc.js';
import { V16 } from '../../src/ocpp/v16/actions.js';
import { V201 } from '../../src/ocpp/v201/actions.js';
import { applyVerdict, judgeRegister, startEnergy } from '../../src/sessions/energy.js';
import {
  holdAll,
  ResidentStates,
  type HeldState,
  type TaskInput,
  type TaskOutput,
} from '../../src/sessions/held-state.js';
import {
  newlineRows,
  processBatch,
  type ConnectorState,
} from '../../src/sessions/process-batch.js';
import { sessionRowText } from '../../src/store/store.js';
import { meterValues, T0 } from '../load/frames.js';

/**
 * Micro benchmarks of the per-frame and per-reading stages, one thread each:
 *
 * - frame: JSON.parse + frame checks (`parseFrame`) of the load benches' 1.6 MeterValues
 *   (~420 bytes), also with one `\u` escape in a string (its strings then checked for lone
 *   surrogates), then the action's schema check and mapping to an event (`handleCall`);
 *   the same for a 2.0.1 TransactionEvent Updated;
 * - partition: the connector key's partition (murmur2, as Kafka's clients), per event;
 * - log: msgpackr encoding (+ CRC) of a group-commit record of 1,000 such events, as the
 *   embedded log writes it, and its decoding, as a replay reads it;
 * - energy: the E2/E3 rules per register reading (`judgeRegister` + `applyVerdict`);
 * - batch: a whole worker task (`processBatch`) — energy rules, session state, durations,
 *   rating, the rows as JSONEachRow — per event: 10 sessions of 100 events each, and batches
 *   as the engine under the steady load bench hands them over (64 sessions of 1–2 events,
 *   the task and its outcome structured-cloned as on the way to a worker and back, the
 *   states as JSON text, the thread keeping the objects it wrote them from), and the same
 *   with every state parsed, as before the thread kept them;
 * - session row: a `sessions_log` row as the worker writes it (`sessionRowText`: the values,
 *   then the session's state as a JSON object), against the state escaped into a string of the
 *   row (the form before cdbc5d0), for a session's state after ten readings.
 *
 * The store's insert is measured by bench/store/store-bench.ts.
 *
 *   npm run build && node dist/bench/micro/pipeline.bench.js [--seconds 2] [--out FILE]
 */

const here = fileURLToPath(import.meta.url);
const root = join(dirname(here), '..', '..', '..');
const args = process.argv.slice(2);
const arg = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? (args[i + 1] ?? fallback) : fallback;
};
const SECONDS = Number(arg('seconds', '2'));
const OUT = arg('out', join(root, 'bench', 'out', 'pipeline-bench.json'));

const CHARGERS = 64;
const network = parseNetwork({
  settings: { defaultTariff: 't' },
  organizations: [{ id: 'o', type: 'cpo' }],
  sites: [{ id: 's', operator: 'o' }],
  chargers: Array.from({ length: CHARGERS }, (_, i) => ({
    id: `B${i}`,
    site: 's',
    connectors: [{ id: 1, maxPowerW: 22_000 }],
  })),
  tariffs: [
    {
      id: 't',
      currency: 'EUR',
      elements: [{ components: [{ type: 'ENERGY', price: '0.30', vat: '22' }] }],
    },
  ],
  customers: [{ id: 'c', organization: 'o', paymentType: 'postpaid' }],
  tokens: Array.from({ length: CHARGERS }, (_, i) => ({
    id: `BENCH${i}`,
    type: 'RFID',
    customer: 'c',
  })),
});
const index = indexNetwork(network);
const dir = mkdtempSync(join(tmpdir(), 'chargestream-pipeline-bench-'));
const ctx: ActionContext = {
  index,
  transactions: new TransactionRegistry(dir),
  heartbeatIntervalS: 300,
  registration: () => 'Accepted',
};

/** Runs `fn` repeatedly for about SECONDS (after a warm-up of a fifth of it): calls per second. */
function rate(fn: () => void, perCall = 1): number {
  const until = (ms: number) => {
    const end = performance.now() + ms;
    let n = 0;
    while (performance.now() < end) {
      for (let i = 0; i < 100; i++) fn();
      n += 100;
    }
    return n;
  };
  until(SECONDS * 200);
  const t0 = performance.now();
  const n = until(SECONDS * 1000);
  return Math.round((n * perCall) / ((performance.now() - t0) / 1000));
}

const results: Record<string, number> = {};
const show = (name: string, perSecond: number, unit: string) => {
  results[name] = perSecond;
  const us = 1e6 / perSecond;
  console.log(
    `${name.padEnd(34)} ${perSecond.toLocaleString('en').padStart(12)} ${unit}/s   ${us.toFixed(3).padStart(8)} µs each`,
  );
};

console.log(`pipeline micro benchmarks, node ${process.version}, ${SECONDS} s per case`);

// --- frame: parse + validate + map, 1.6 --------------------------------------------------
const started = handleCall(
  V16,
  'StartTransaction',
  { connectorId: 1, idTag: 'BENCH0', meterStart: 0, timestamp: new Date(T0).toISOString() },
  'B0',
  T0,
  ctx,
);
const transactionId =
  started.kind === 'durable' ? (started.payload as { transactionId: number }).transactionId : 1;
const frame16 = JSON.stringify([2, '12345', 'MeterValues', meterValues(transactionId, 7)]);
show(
  '1.6 MeterValues: parseFrame',
  rate(() => parseFrame(frame16, 'ocpp1.6')),
  'frames',
);
// One \u escape in a string: the frame's strings are checked for lone surrogates.
const escaped16 = frame16.replace('"Sample.Periodic"', '"Sample.Periodic\\u00e9"');
show(
  '1.6 MeterValues, a \\u escape: parseFrame',
  rate(() => parseFrame(escaped16, 'ocpp1.6')),
  'frames',
);
let lastEvent: ChargerEvent | null = null;
show(
  '1.6 MeterValues: parse+validate+map',
  rate(() => {
    const parsed = parseFrame(frame16, 'ocpp1.6');
    if (!parsed.ok || parsed.frame.type !== 2) throw new Error('bad frame');
    const outcome = handleCall(
      V16,
      parsed.frame.action,
      parsed.frame.payload,
      'B0',
      T0 + 7000,
      ctx,
    );
    if (outcome.kind !== 'durable') throw new Error(`not durable: ${JSON.stringify(outcome)}`);
    lastEvent = outcome.event;
  }),
  'frames',
);
const frame201 = JSON.stringify([
  2,
  '12345',
  'TransactionEvent',
  {
    eventType: 'Updated',
    timestamp: new Date(T0 + 7000).toISOString(),
    triggerReason: 'MeterValuePeriodic',
    seqNo: 7,
    transactionInfo: { transactionId: 'B1-0' },
    meterValue: [
      {
        timestamp: new Date(T0 + 7000).toISOString(),
        sampledValue: [
          {
            value: 35,
            context: 'Sample.Periodic',
            measurand: 'Energy.Active.Import.Register',
            unitOfMeasure: { unit: 'Wh' },
          },
          { value: 18000, measurand: 'Power.Active.Import', unitOfMeasure: { unit: 'W' } },
          { value: 26, measurand: 'Current.Import', phase: 'L1' },
          { value: 230.1, measurand: 'Voltage', phase: 'L1-N' },
          { value: 27, measurand: 'SoC' },
        ],
      },
    ],
  },
]);
show(
  '2.0.1 TransactionEvent: parse+validate+map',
  rate(() => {
    const parsed = parseFrame(frame201, 'ocpp2.0.1');
    if (!parsed.ok || parsed.frame.type !== 2) throw new Error('bad frame');
    const outcome = handleCall(
      V201,
      parsed.frame.action,
      parsed.frame.payload,
      'B1',
      T0 + 7000,
      ctx,
    );
    if (outcome.kind === 'error') throw new Error(outcome.description);
  }),
  'frames',
);

// --- placement of a published event: its connector's key and partition --------------------
const chargerIds = Array.from({ length: 1000 }, (_, i) => `CP${String(i).padStart(5, '0')}`);
let keyAt = 0;
show(
  'connector key made and hashed (16)',
  rate(() => partitionFor(connectorKey(chargerIds[keyAt++ % 1000]!, 1), 16)),
  'events',
);
const placements = new Placements(16);
show(
  'placement kept by charger (Placements)',
  rate(() => placements.of(chargerIds[keyAt++ % 1000]!, 1).partition),
  'events',
);

// --- log: a record of 1,000 events ---------------------------------------------------------
const event = lastEvent as ChargerEvent | null;
if (event === null) throw new Error('no event');
const record: Array<[number, number, ChargerEvent]> = Array.from({ length: 1000 }, (_, i) => [
  i % 16,
  i,
  { ...event, receivedAt: event.receivedAt + i },
]);
// As the embedded log packs: one run a partition, the shapes shared (event-codec.ts); the
// worker decodes a run.
{
  const packer = new EventPacker();
  const unpacker = new EventUnpacker();
  const runs = Array.from({ length: 16 }, (_, p) =>
    record.filter(([partition]) => partition === p).map(([, , e]) => e),
  );
  let bytes = 0;
  show(
    'log record (runs, shapes shared): pack + crc32',
    rate(() => {
      bytes = 0;
      for (const run of runs) {
        const packed = packer.pack(run);
        crc32(packed);
        bytes += packed.length;
      }
    }, record.length),
    'events',
  );
  const packed = runs.map((run) => Buffer.from(packer.pack(run)));
  show(
    'log record (runs, shapes shared): unpack',
    rate(() => {
      for (const run of packed) unpacker.unpack(packer.shapes, run);
    }, record.length),
    'events',
  );
  console.log(`  (${Math.round(bytes / record.length)} bytes an event)`);
}
// As it did before: one record of every partition (msgpackr records), plain maps before that.
for (const [name, packr] of [
  ['records', new Packr({ useRecords: true, mapsAsObjects: true, moreTypes: false })],
  ['plain maps', new Packr({ useRecords: false, moreTypes: false })],
] as const) {
  let packed = packr.pack(record);
  show(
    `log record (${name}): pack + crc32`,
    rate(() => {
      packed = packr.pack(record);
      crc32(packed);
    }, record.length),
    'events',
  );
  show(
    `log record (${name}): unpack`,
    rate(() => {
      packr.unpack(packed);
    }, record.length),
    'events',
  );
  console.log(`  (${Math.round(packed.length / record.length)} bytes an event)`);
}

// --- energy rules --------------------------------------------------------------------------
let energy = startEnergy(0, T0);
let k = 0;
show(
  'energy: judgeRegister + applyVerdict',
  rate(() => {
    k += 1;
    const ts = T0 + k * 1000;
    energy = applyVerdict(energy, judgeRegister(energy, k * 5, ts, 22_000), ts);
  }),
  'readings',
);

// --- a whole worker task ---------------------------------------------------------------
/**
 * Batches of `chargers` × `perCharger` events: per charger a start, then meter values; the
 * states carried from batch to batch.
 */
function batchesOf(
  chargers: number,
  perCharger: number,
): Array<Array<{ offset: number; event: ChargerEvent }>> {
  let reading = 0;
  const sessionOf = new Map<string, string>();
  const nextBatch = () => {
    const entries: Array<{ offset: number; event: ChargerEvent }> = [];
    reading += 1;
    for (let i = 0; i < chargers * perCharger; i++) {
      const chargerId = `B${i % chargers}`;
      const n = reading * perCharger + Math.floor(i / chargers);
      let tx = sessionOf.get(chargerId);
      let e: ChargerEvent;
      if (tx === undefined) {
        tx = `${chargerId}-tx`;
        sessionOf.set(chargerId, tx);
        e = {
          kind: 'tx_started',
          chargerId,
          connectorId: 1,
          receivedAt: T0,
          transactionId: tx,
          tokenId: `BENCH${i % chargers}`,
          authorization: 'Accepted',
          customerId: 'c',
          meterStartWh: 0,
          ts: T0,
        };
      } else {
        const base = event as ChargerEvent & { kind: 'meter_values' };
        e = {
          ...base,
          chargerId,
          transactionId: tx,
          receivedAt: T0 + n * 1000,
          samples: base.samples.map((s) => ({
            ...s,
            ts: T0 + n * 1000,
            value: s.measurand === 'Energy.Active.Import.Register' ? n * 5 : s.value,
          })),
        };
      }
      entries.push({ offset: 0, event: e });
    }
    return entries;
  };
  return Array.from({ length: 50 }, nextBatch);
}

/** A worker task run over and over on the rules alone (processBatch, states as objects). */
function batchCase(name: string, chargers: number, perCharger: number): void {
  const batches = batchesOf(chargers, perCharger);
  const size = chargers * perCharger;
  let states: Record<string, ConnectorState> = {};
  let b = 0;
  show(
    name,
    rate(() => {
      const at = b++ % batches.length;
      if (at === 0) states = {}; // the first batch starts the sessions again
      const entries = batches[at]!.map((e, i) => ({ offset: b * size + i, event: e.event }));
      states = processBatch(index, { partition: 0, entries, states, highWater: NOTHING }).states;
    }, size),
    'events',
  );
}

/**
 * A worker task as the engine runs it: the task copied to the worker and its outcome back
 * (structured clone, as Piscina's hand-over does), the events as the embedded log's bytes
 * (packed when the log wrote them, so not counted here) decoded by the worker, the states as
 * their JSON text both ways;
 * `kept`: the thread takes up the objects it wrote the texts from (ResidentStates), as the
 * engine does, else it parses every text (as before).
 */
function taskCase(name: string, chargers: number, perCharger: number, kept = true): void {
  const batches = batchesOf(chargers, perCharger);
  const size = chargers * perCharger;
  const packer = new EventPacker();
  const unpacker = new EventUnpacker();
  const packed = batches.map((batch) => Buffer.from(packer.pack(batch.map((e) => e.event))));
  let held = new Map<string, HeldState>();
  let resident = new ResidentStates();
  let b = 0;
  show(
    name,
    rate(() => {
      const at = b++ % batches.length;
      if (at === 0) {
        // the first batch starts the sessions again
        held = new Map();
        resident = new ResidentStates();
      }
      const bytes = packed[at]!;
      const texts = Object.fromEntries([...held].map(([key, h]) => [key, h.text]));
      const task: TaskInput = structuredClone({
        partition: 0,
        encoded: {
          bytes,
          runs: [[b * size, size, bytes.length]],
          shapes: packer.shapes,
        },
        states: texts,
        highWater: NOTHING,
      });
      const entries = decodeRuns(task.encoded!, unpacker);
      // Not kept: a new instance, which parses every state.
      const taken = (kept ? resident : new ResidentStates()).take(task.states);
      const out = processBatch(index, {
        partition: 0,
        entries,
        states: taken.states,
        highWater: NOTHING,
      });
      const leaving = holdAll(out.states);
      if (kept) resident.keep(out.states, leaving);
      const back: TaskOutput = structuredClone({
        ...out,
        states: leaving,
        statesKept: taken.kept,
        statesParsed: taken.parsed,
      });
      for (const [key, h] of Object.entries(back.states)) {
        if (h === null) held.delete(key);
        else held.set(key, h);
      }
    }, size),
    'events',
  );
}
const NOTHING = { readings: -1, statuses: -1, cdrs: -1, notifications: -1 };
batchCase('worker task: processBatch (10 sessions × 100 events)', 10, 100);
// As the steady load bench feeds it: 1,000 chargers on 16 partitions, 4,000 frames/s, a
// batch every 500 ms — about 64 sessions of 2 events each.
taskCase('worker task as handed over (64 sessions × 2 events)', 64, 2);
taskCase('the same, one event a session (64 × 1)', 64, 1);
taskCase('the same, every state parsed (no states kept)', 64, 1, false);

// --- a session row -------------------------------------------------------------------------
{
  let states: Record<string, ConnectorState> = {};
  batchesOf(1, 1)
    .slice(0, 10)
    .forEach((batch, b) => {
      const entries = batch.map(({ event }) => ({ offset: b, event }));
      states = processBatch(index, { partition: 0, entries, states, highWater: NOTHING }).states;
    });
  const held = Object.values(holdAll(states))[0]!;
  // The state as the worker writes it into the row: the session's part of the held text.
  const state = JSON.stringify((JSON.parse(held.text) as ConnectorState).session);
  // The values of SESSION_COLUMNS up to the state, as an open session's row has them.
  const values: unknown[] = [
    ...['S1', 81, 'B0', 's', 'o', 1, 'B0-tx', 'in_progress', '', 'c', 'BENCH0', 't'],
    ...['2026-11-20 08:00:00.000', null, '50.000', 10, 0, 0, 0, '0.02', '0.00', '0.02'],
    ...['EUR', [], ''],
  ];
  console.log(`  (a state of ${state.length} bytes)`);
  show(
    'session row (sessionRowText)',
    rate(() => sessionRowText(values, state, 0)),
    'rows',
  );
  show(
    'the same, the state escaped in a string',
    rate(() => JSON.stringify([...values, state, 0])),
    'rows',
  );
}

// --- a batch's rows as text, copied to the event loop ---------------------------------------
{
  // 350 reading rows of 5 readings, each built piece by piece as the worker builds them.
  const readingRows = (): string[] =>
    Array.from({ length: 350 }, (_, i) => {
      let row = `["B${i % 64}",1,"B${i % 64}-tx",0,${i},"2026-11-20 08:00:0${i % 10}.000",[`;
      for (let r = 0; r < 5; r++)
        row += `${r === 0 ? '' : ','}["Energy.Active.Import.Register","",${i * 5 + r},"Wh","Sample.Periodic",true,""]`;
      return `${row}]]`;
    });
  show(
    '350 reading rows: newlineRows, cloned',
    rate(() => structuredClone(newlineRows(readingRows()))),
    'batches',
  );
  show(
    "the same, join('\\n') + '\\n'",
    rate(() => structuredClone(readingRows().join('\n') + '\n')),
    'batches',
  );
}

rmSync(dir, { recursive: true, force: true });
mkdirSync(dirname(OUT), { recursive: true });
writeFileSync(
  OUT,
  `${JSON.stringify({ date: new Date().toISOString(), node: process.version, perSecond: results }, null, 2)}\n`,
);
console.log(`written to ${OUT}`);
