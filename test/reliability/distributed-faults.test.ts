import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  ADMIN_KEY,
  aCharger,
  aNetwork,
  aStartTransaction,
  aStopTransaction,
  at,
  tokenOf,
  withTokenPerCharger,
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
import { driveSessionsUnderLoad } from '../helpers/sessions.js';
import { recordFigure, sized } from './figures.js';
import { crashesIn, metricSum, startStoreServer, type StoreServer } from './harness.js';

/**
 * The distributed deployment under faults, on the real broker: two gateways, two processors
 * in one consumer group, one shared store (`chargestream store-server`). reliability.md 14: a
 * processor SIGKILLed mid-load and started again; a processor frozen (SIGSTOP) past the
 * consumer session timeout (10 s), so the group moves its partitions while its batch is in
 * flight, then thawed. reliability.md 4: every process SIGKILLed and started again, then a
 * 1.6 stop (no connectorId) at the other gateway.
 */
const KILLED = ['DK-1', 'DK-2', 'DK-3', 'DK-4'];
const FROZEN = ['DF-1', 'DF-2', 'DF-3', 'DF-4'];
const READINGS = sized(120, 600);
const network = withTokenPerCharger(
  aNetwork({
    chargers: [
      ...[...KILLED, ...FROZEN].map((id) => aCharger(id)),
      aCharger('ROAMER', {
        connectors: [
          { id: 1, maxPowerW: 22_000 },
          { id: 2, maxPowerW: 22_000 },
        ],
      }),
    ],
  }),
);

const dir = tempDir();
const config = writeNetwork(dir, network);
const prefix = `faults-${randomUUID().slice(0, 8)}`;
let store: StoreServer;
const processors: RunningEngine[] = [];
let gateways: RunningEngine[] = [];
const everything: RunningEngine[] = [];

const common = () => [
  '--kafka',
  inject('kafkaBrokers'),
  '--topic-prefix',
  prefix,
  '--partitions',
  '4',
  '--clickhouse',
  store.url,
];

async function startProcessor(n: number): Promise<RunningEngine> {
  const p = await startEngine({
    config,
    dataDir: join(dir, `processor-${n}`),
    // info: the processor logs each partition it rebuilds, with the time it took.
    extraArgs: ['--role', 'processor', ...common(), '--log-level', 'info'],
  });
  processors[n] = p;
  everything.push(p);
  return p;
}

async function startGateways(): Promise<void> {
  gateways = await Promise.all(
    [0, 1].map((g) =>
      startEngine({
        config,
        dataDir: join(dir, `gateway-${g}`),
        extraArgs: [
          '--role',
          'gateway',
          '--gateways',
          '2',
          '--gateway-index',
          String(g),
          ...common(),
        ],
      }),
    ),
  );
  everything.push(...gateways);
}

/** The partitions a processor reports lag for: those the group assigned to it. */
async function assigned(p: RunningEngine): Promise<number[]> {
  const text = await (await fetch(`${p.apiUrl}/metrics`)).text();
  return [...text.matchAll(/^chargestream_bus_consumer_lag_messages\{partition="(\d+)"\}/gm)]
    .map((m) => Number(m[1]))
    .sort();
}

/** Both processors hold partitions (the group has settled). */
async function settled(): Promise<void> {
  await eventually(
    () => Promise.all(processors.map(assigned)),
    (shares) => shares.every((s) => s.length > 0) && shares.flat().length === 4,
    60_000,
  );
}

/** Rebuild times the processors logged ('partition state rebuilt', ms). */
function rebuildTimes(p: RunningEngine): number[] {
  return [...p.output().matchAll(/"ms":(\d+)[^\n]*partition state rebuilt/g)].map((m) =>
    Number(m[1]),
  );
}

beforeAll(async () => {
  store = await startStoreServer(join(dir, 'shared'));
  await startProcessor(0);
  await startProcessor(1);
  await startGateways();
}, 180_000);

afterAll(async () => {
  for (const p of everything) await p.stop('SIGKILL');
  await store?.stop();
});

/** Sessions exact, one CDR each, no reading row twice, for the chargers `prefix`. */
async function expectExact(
  chargerPrefix: string,
  chargers: number,
  energy: number,
  reader: () => RunningEngine,
): Promise<{ rows: number; distinct: number; cdrsPerSession: number[] }> {
  const cdrs = await eventually(
    () =>
      sql<{ session_id: string; energy: string; n: string }>(
        reader(),
        ADMIN_KEY,
        `SELECT session_id, toString(any(energy_wh)) AS energy, toString(count()) AS n FROM cdrs WHERE charger_id LIKE '${chargerPrefix}%' GROUP BY session_id ORDER BY session_id`,
      ),
    (r) => r.length === chargers,
    120_000,
  );
  for (const cdr of cdrs)
    expect(cdr, cdr.session_id).toMatchObject({ energy: String(energy), n: '1' });
  const [rows] = await sql<{ rows: string; distinct: string }>(
    reader(),
    ADMIN_KEY,
    `SELECT toString(count()) AS rows, toString(uniqExact(charger_id, ts, measurand)) AS distinct FROM meter_readings WHERE charger_id LIKE '${chargerPrefix}%'`,
  );
  return {
    rows: Number(rows?.rows),
    distinct: Number(rows?.distinct),
    cdrsPerSession: cdrs.map((c) => Number(c.n)),
  };
}

describe('distributed mode under faults', () => {
  it('reliability.md 14: a processor SIGKILLed under load and started again; the other rebuilds its partitions from the store; every session exact, no row twice', async () => {
    await settled();
    const chargers = await Promise.all(
      KILLED.map((id, i) => TestCharger.connect(`${gateways[i % 2]!.ocppUrl}/${id}`)),
    );
    let consumedBeforeKill = 0;
    const energy = await driveSessionsUnderLoad(
      chargers.map((cp, i) => ({ cp, token: tokenOf(KILLED[i]!) })),
      READINGS,
      async () => {
        consumedBeforeKill = await metricSum(
          processors[0]!,
          'chargestream_bus_consumed_events_total',
        );
        await processors[0]!.stop('SIGKILL');
        await startProcessor(0);
      },
    );
    const result = await expectExact('DK-', KILLED.length, energy, () => processors[1]!);
    const produced = (
      await Promise.all(gateways.map((g) => metricSum(g, 'chargestream_bus_produced_events_total')))
    ).reduce((a, b) => a + b, 0);
    const consumed = (
      await Promise.all(
        processors.map((p) => metricSum(p, 'chargestream_bus_consumed_events_total')),
      )
    ).reduce((a, b) => a + b, consumedBeforeKill);
    const rebuilt = processors.flatMap(rebuildTimes);
    recordFigure(14, 'SIGKILL: duplicate reading rows', result.rows - result.distinct);
    recordFigure(14, 'SIGKILL: CDRs per session', Math.max(...result.cdrsPerSession));
    recordFigure(
      14,
      'SIGKILL: events processed more than once (redelivered, then deduplicated)',
      Math.max(0, consumed - produced),
    );
    recordFigure(14, 'partition rebuild time, longest (ms)', Math.max(0, ...rebuilt));
    expect(result.rows).toBe(result.distinct);
    expect(result.rows).toBe(KILLED.length * (READINGS + 2)); // start, readings, stop
  }, 300_000);

  it('reliability.md 14: a processor frozen (SIGSTOP) past the session timeout, its partitions moved, then thawed: nothing twice, nothing lost', async () => {
    await settled();
    const chargers = await Promise.all(
      FROZEN.map((id, i) => TestCharger.connect(`${gateways[i % 2]!.ocppUrl}/${id}`)),
    );
    const frozen = processors[1]!;
    let takenOver = false;
    const energy = await driveSessionsUnderLoad(
      chargers.map((cp, i) => ({ cp, token: tokenOf(FROZEN[i]!) })),
      READINGS,
      async () => {
        frozen.process.kill('SIGSTOP');
        // The other takes every partition once the frozen one's session expires (10 s).
        await eventually(
          () => assigned(processors[0]!),
          (p) => p.length === 4,
          60_000,
        );
        takenOver = true;
        frozen.process.kill('SIGCONT');
      },
    );
    const result = await expectExact('DF-', FROZEN.length, energy, () => processors[0]!);
    // What the thawed processor found when it woke: batches of partitions now another's.
    const fenced = (frozen.output().match(/batch fenced/g) ?? []).length;
    recordFigure(14, 'SIGSTOP: batches the thawed processor dropped unwritten (fenced)', fenced);
    recordFigure(
      14,
      'SIGSTOP past the session timeout: duplicate reading rows',
      result.rows - result.distinct,
    );
    recordFigure(
      14,
      'SIGSTOP past the session timeout: CDRs per session',
      Math.max(...result.cdrsPerSession),
    );
    expect(takenOver).toBe(true);
    expect(result.rows).toBe(result.distinct);
    expect(result.rows).toBe(FROZEN.length * (READINGS + 2));
    // The thawed processor goes on (it rejoins the group), it does not crash.
    expect(frozen.process.exitCode).toBeNull();
    expect(crashesIn(frozen.output())).toBe(0);
  }, 300_000);

  it('reliability.md 4: every process SIGKILLed and started again; a 1.6 stop (no connectorId) at the other gateway reaches its session', async () => {
    const cp = await TestCharger.connect(`${gateways[1]!.ocppUrl}/ROAMER`);
    const started = await cp.call(
      'StartTransaction',
      aStartTransaction({ connectorId: 2, idTag: 'TAG', meterStart: 20_000, timestamp: at(7200) }),
    );
    if (!started.ok) throw new Error(started.description);
    const transactionId = started.payload['transactionId'] as number;
    cp.close();
    for (const p of [...gateways, ...processors]) await p.stop('SIGKILL');
    await startProcessor(0);
    await startProcessor(1);
    await startGateways();
    const again = await TestCharger.connect(`${gateways[0]!.ocppUrl}/ROAMER`);
    expect(
      (
        await again.call(
          'StopTransaction',
          aStopTransaction({ transactionId, meterStop: 21_000, timestamp: at(9000) }),
        )
      ).ok,
    ).toBe(true);
    again.close();
    const [cdr] = await eventually(
      () =>
        sql<{ connector: number; energy: string }>(
          processors[0]!,
          ADMIN_KEY,
          `SELECT connector_id AS connector, toString(energy_wh) AS energy FROM cdrs WHERE session_id = 'ROAMER-${transactionId}'`,
        ),
      (r) => r.length === 1,
      90_000,
    );
    const misrouted = cdr?.connector === 2 && cdr.energy === '1000' ? 0 : 1;
    recordFigure(4, 'misrouted stops after every process was SIGKILLed (Kafka mode)', misrouted);
    expect(cdr).toEqual({ connector: 2, energy: '1000' });
  }, 240_000);
});
