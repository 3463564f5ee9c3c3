import { join } from 'node:path';
import type WebSocket from 'ws';
import { afterAll, describe, expect, it } from 'vitest';
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
import { recordFigure } from './figures.js';
import { callRaw, cutSocket, openSocket, reconnect } from './harness.js';

/**
 * R2 (reliability.md): a stop resent because its answer was lost — the connection cut while
 * the answer was due (a 2.0.1 Ended waits for its final cost), or the engine SIGKILLed after
 * the stop was durable — must not store its readings a second time. The first copy ended the
 * transaction and the gateway forgot where it lived, so the copy went to connector 0 as a
 * stop of an unknown transaction, and the Ended event's reading was stored there again. An
 * Updated event without `evse` after a restart lands on its transaction's connector.
 */
const ids = ['RS-CUT', 'RS-FLIGHT', 'RS-KILL', 'RS-UPD', 'RS-16'];
const network = withTokenPerCharger(aNetwork({ chargers: ids.map((id) => aCharger(id)) }));

const engines: RunningEngine[] = [];
afterAll(async () => {
  for (const engine of engines) await engine.stop('SIGKILL');
});

async function anEngine(dir: string): Promise<RunningEngine> {
  const engine = await startEngine({
    config: join(dir, 'network.yaml'),
    dataDir: join(dir, 'data'),
    extraArgs: ['--fsync', 'true'],
  });
  engines.push(engine);
  return engine;
}

const energy = (seconds: number, wh: number) => [
  {
    timestamp: at(seconds),
    sampledValue: [{ value: wh, measurand: 'Energy.Active.Import.Register' }],
  },
];

function started(id: string) {
  return {
    eventType: 'Started',
    timestamp: at(0),
    triggerReason: 'Authorized',
    seqNo: 0,
    transactionInfo: { transactionId: `tx-${id}` },
    evse: { id: 1, connectorId: 1 },
    idToken: { idToken: tokenOf(id), type: 'ISO14443' },
    meterValue: energy(0, 1000),
  };
}

/** An Updated event as chargers send them: without `evse` (the transaction has its EVSE). */
function updated(id: string, seqNo: number) {
  return {
    eventType: 'Updated',
    timestamp: at(60 * seqNo),
    triggerReason: 'MeterValuePeriodic',
    seqNo,
    transactionInfo: { transactionId: `tx-${id}` },
    meterValue: energy(60 * seqNo, 1000 + 100 * seqNo),
  };
}

function ended(id: string, seqNo: number) {
  return {
    eventType: 'Ended',
    timestamp: at(60 * seqNo),
    triggerReason: 'EVDeparted',
    seqNo,
    transactionInfo: { transactionId: `tx-${id}`, stoppedReason: 'EVDisconnected' },
    meterValue: energy(60 * seqNo, 1000 + 100 * seqNo),
  };
}

async function ok(ws: WebSocket, id: string, action: string, payload: object): Promise<void> {
  const answer = await callRaw(ws, id, action, payload);
  expect(answer[0], JSON.stringify(answer)).toBe(3);
}

/**
 * The charger's energy readings by connector and time, once everything sent so far is
 * processed: a status sent last on connectors 0 and 1 is stored after what came before it.
 */
async function readingsOf(
  engine: RunningEngine,
  ws: WebSocket,
  chargerId: string,
): Promise<Array<{ connector_id: number; ts: string; n: string }>> {
  const status = (evseId: number) => ({
    timestamp: at(7200),
    connectorStatus: 'Available',
    evseId,
    connectorId: evseId,
  });
  await ok(ws, 'last-0', 'StatusNotification', status(0));
  await ok(ws, 'last-1', 'StatusNotification', status(1));
  await eventually(
    () =>
      sql<{ n: string }>(
        engine,
        ADMIN_KEY,
        `SELECT toString(count()) AS n FROM connector_status WHERE charger_id = '${chargerId}' AND status = 'Available'`,
      ),
    (r) => r[0]?.n === '2',
    30_000,
  );
  return sql(
    engine,
    ADMIN_KEY,
    `SELECT connector_id, toString(ts) AS ts, toString(count()) AS n FROM meter_readings
     WHERE charger_id = '${chargerId}' AND measurand = 'Energy.Active.Import.Register'
     GROUP BY connector_id, ts ORDER BY ts, connector_id`,
  );
}

function storedTwice(rows: ReadonlyArray<{ ts: string; n: string }>): number {
  const byTs = new Map<string, number>();
  for (const r of rows) byTs.set(r.ts, (byTs.get(r.ts) ?? 0) + Number(r.n));
  return [...byTs.values()].reduce((n, count) => n + count - 1, 0);
}

describe('R2: a resent stop stores its readings once', () => {
  it('2.0.1 Ended resent on a new connection after its answer was lost', async () => {
    const dir = tempDir();
    writeNetwork(dir, network);
    const engine = await anEngine(dir);
    const id = 'RS-CUT';
    const url = `${engine.ocppUrl}/${id}`;
    const first = await openSocket(url, { protocols: ['ocpp2.0.1'] });
    await ok(first, 'te-0', 'TransactionEvent', started(id));
    await ok(first, 'te-1', 'TransactionEvent', updated(id, 1));
    await ok(first, 'te-2', 'TransactionEvent', ended(id, 2));
    // The answer is lost on the way: the charger resends on its next connection.
    cutSocket(first);
    const again = await reconnect(url, { protocols: ['ocpp2.0.1'] });
    await ok(again, 'te-2', 'TransactionEvent', ended(id, 2));
    const rows = await readingsOf(engine, again, id);
    again.close();
    recordFigure(
      2,
      'R2: readings stored twice, 2.0.1 Ended resent after a lost answer',
      storedTwice(rows),
    );
    expect(rows.filter((r) => r.connector_id !== 1)).toEqual([]);
    expect(storedTwice(rows)).toBe(0);
  });

  it('2.0.1 Ended resent while the first is not durable yet', async () => {
    const dir = tempDir();
    writeNetwork(dir, network);
    const engine = await anEngine(dir);
    const id = 'RS-FLIGHT';
    const ws = await openSocket(`${engine.ocppUrl}/${id}`, { protocols: ['ocpp2.0.1'] });
    await ok(ws, 'te-0', 'TransactionEvent', started(id));
    await ok(ws, 'te-1', 'TransactionEvent', updated(id, 1));
    // The charger's own timer fired before the answer came: the copy follows at once.
    const answers = await Promise.all([
      callRaw(ws, 'te-2', 'TransactionEvent', ended(id, 2)),
      callRaw(ws, 'te-2b', 'TransactionEvent', ended(id, 2)),
    ]);
    expect(answers.map((a) => a[0])).toEqual([3, 3]);
    const rows = await readingsOf(engine, ws, id);
    ws.close();
    recordFigure(
      2,
      'R2: readings stored twice, 2.0.1 Ended resent before the first was durable',
      storedTwice(rows),
    );
    expect(rows.filter((r) => r.connector_id !== 1)).toEqual([]);
    expect(storedTwice(rows)).toBe(0);
  });

  it('2.0.1 Ended resent after a SIGKILL; Updated without evse after a restart lands on its connector', async () => {
    const dir = tempDir();
    writeNetwork(dir, network);
    const before = await anEngine(dir);
    const open = (engine: RunningEngine, id: string) =>
      openSocket(`${engine.ocppUrl}/${id}`, { protocols: ['ocpp2.0.1'] });
    const kill = await open(before, 'RS-KILL');
    await ok(kill, 'te-0', 'TransactionEvent', started('RS-KILL'));
    await ok(kill, 'te-1', 'TransactionEvent', updated('RS-KILL', 1));
    await ok(kill, 'te-2', 'TransactionEvent', ended('RS-KILL', 2));
    const upd = await open(before, 'RS-UPD');
    await ok(upd, 'te-0', 'TransactionEvent', started('RS-UPD'));
    await ok(upd, 'te-1', 'TransactionEvent', updated('RS-UPD', 1));
    await before.stop('SIGKILL');

    const after = await anEngine(dir);
    const kill2 = await open(after, 'RS-KILL');
    await ok(kill2, 'te-2', 'TransactionEvent', ended('RS-KILL', 2));
    const upd2 = await open(after, 'RS-UPD');
    await ok(upd2, 'te-1', 'TransactionEvent', updated('RS-UPD', 1));
    await ok(upd2, 'te-2', 'TransactionEvent', updated('RS-UPD', 2));
    await ok(upd2, 'te-3', 'TransactionEvent', ended('RS-UPD', 3));
    const killed = await readingsOf(after, kill2, 'RS-KILL');
    const resumed = await readingsOf(after, upd2, 'RS-UPD');
    kill2.close();
    upd2.close();
    recordFigure(
      2,
      'R2: readings stored twice, 2.0.1 Ended resent after a SIGKILL',
      storedTwice(killed),
    );
    expect(killed.filter((r) => r.connector_id !== 1)).toEqual([]);
    expect(storedTwice(killed)).toBe(0);
    expect(resumed.filter((r) => r.connector_id !== 1)).toEqual([]);
    expect(storedTwice(resumed)).toBe(0);
    expect(resumed).toHaveLength(4);
  });

  it('1.6 StopTransaction with transactionData resent after its answer was lost', async () => {
    const dir = tempDir();
    writeNetwork(dir, network);
    const engine = await anEngine(dir);
    const id = 'RS-16';
    const first = await openSocket(`${engine.ocppUrl}/${id}`);
    const start = await callRaw(
      first,
      's',
      'StartTransaction',
      aStartTransaction({ idTag: tokenOf(id), meterStart: 1000 }),
    );
    const transactionId = (start[2] as { transactionId: number }).transactionId;
    const stop = aStopTransaction({
      transactionId,
      meterStop: 1300,
      timestamp: at(180),
      transactionData: [
        {
          timestamp: at(120),
          sampledValue: [{ value: '1200', measurand: 'Energy.Active.Import.Register', unit: 'Wh' }],
        },
      ],
    });
    await ok(first, 'stop', 'StopTransaction', stop);
    cutSocket(first);
    const again = await reconnect(`${engine.ocppUrl}/${id}`);
    await ok(again, 'stop', 'StopTransaction', stop);
    // 1.6 status notifications name the connector: 0 and 1 as in readingsOf.
    for (const connectorId of [0, 1])
      await ok(again, `last-${connectorId}`, 'StatusNotification', {
        connectorId,
        errorCode: 'NoError',
        status: 'Available',
        timestamp: at(7200),
      });
    await eventually(
      () =>
        sql<{ n: string }>(
          engine,
          ADMIN_KEY,
          `SELECT toString(count()) AS n FROM connector_status WHERE charger_id = '${id}' AND status = 'Available'`,
        ),
      (r) => r[0]?.n === '2',
      30_000,
    );
    const rows = await sql<{ connector_id: number; ts: string; n: string }>(
      engine,
      ADMIN_KEY,
      `SELECT connector_id, toString(ts) AS ts, toString(count()) AS n FROM meter_readings
       WHERE charger_id = '${id}' AND measurand = 'Energy.Active.Import.Register'
       GROUP BY connector_id, ts ORDER BY ts, connector_id`,
    );
    again.close();
    expect(rows.filter((r) => r.connector_id !== 1)).toEqual([]);
    expect(storedTwice(rows)).toBe(0);
  });
});
