import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { E4_MAX_POWER_W, E4_SCENARIOS } from '../fixtures/e4-scenarios.js';
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
import { expectE4Energies } from '../helpers/e4.js';

/**
 * The distributed deployment on the real broker: two gateway processes and a processor
 * process, the same rules as the embedded mode. Processes killed, frozen and restarted
 * (reliability.md 4 and 14): test/reliability/distributed-faults.test.ts.
 */
const network = withTokenPerCharger(
  aNetwork({
    chargers: [
      ...E4_SCENARIOS.map((s) =>
        aCharger(`D-E4-${s.n}`, { connectors: [{ id: 1, maxPowerW: E4_MAX_POWER_W }] }),
      ),
      aCharger('ROAMER-201'),
      aCharger('ROAMER', {
        connectors: [
          { id: 1, maxPowerW: 22_000 },
          { id: 2, maxPowerW: 22_000 },
        ],
      }),
      ...['LOAD-1', 'LOAD-2', 'LOAD-3'].map((id) => aCharger(id)),
    ],
  }),
);

const dir = tempDir();
const config = writeNetwork(dir, network);
const prefix = `dist-${randomUUID().slice(0, 8)}`;
const common = () => [
  '--kafka',
  inject('kafkaBrokers'),
  '--topic-prefix',
  prefix,
  '--partitions',
  '4',
];
const processes: RunningEngine[] = [];
let processor: RunningEngine;
let gateways: RunningEngine[];

const startProcessor = async () => {
  const p = await startEngine({
    config,
    dataDir: join(dir, 'processor'),
    extraArgs: ['--role', 'processor', ...common()],
  });
  processes.push(p);
  return p;
};

beforeAll(async () => {
  processor = await startProcessor();
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
  processes.push(...gateways);
});

afterAll(async () => {
  for (const p of processes) await p.stop('SIGKILL');
});

describe('distributed mode on Kafka', () => {
  it('E4 through two gateways and a processor gives the same energies as the embedded mode', async () => {
    await expectE4Energies(gateways, processor, 'D-E4-');
  });

  it('every role serves /metrics on its API port: gateways their frames and produced events, the processor its consumed events and lag per partition', async () => {
    const series = async (engine: RunningEngine, name: string) => {
      const text = await (await fetch(`${engine.apiUrl}/metrics`)).text();
      return [...text.matchAll(new RegExp(`^${name}(\\{[^}]*\\})? (\\S+)$`, 'gm'))].map((m) => ({
        labels: m[1] ?? '',
        value: Number(m[2]),
      }));
    };
    const sum = (list: Array<{ value: number }>) => list.reduce((a, s) => a + s.value, 0);
    for (const g of gateways) {
      expect(
        sum(await series(g, 'chargestream_gateway_frames_total')),
        'frames through each gateway',
      ).toBeGreaterThan(0);
      const produced = await series(g, 'chargestream_bus_produced_events_total');
      expect(produced[0]?.labels).toBe('{bus="kafka"}');
      expect(produced[0]?.value).toBeGreaterThan(0);
    }
    const consumed = sum(await series(processor, 'chargestream_bus_consumed_events_total'));
    const produced = sum(
      (
        await Promise.all(gateways.map((g) => series(g, 'chargestream_bus_produced_events_total')))
      ).flat(),
    );
    expect(consumed).toBe(produced);
    const lag = await series(processor, 'chargestream_bus_consumer_lag_messages');
    expect(lag.map((s) => s.labels).sort()).toEqual([0, 1, 2, 3].map((p) => `{partition="${p}"}`));
    expect(sum(lag)).toBe(0);
    expect(sum(await series(processor, 'chargestream_readings_total'))).toBeGreaterThan(0);
    // The processor holds no connection: its gateway metrics are absent, not zero.
    expect(await series(processor, 'chargestream_gateway_frames_total')).toEqual([]);
  });

  it('reliability.md 4 across gateways: a start on one gateway, the stop (no connectorId) on the other', async () => {
    const first = await TestCharger.connect(`${gateways[0]!.ocppUrl}/ROAMER`);
    const started = await first.call(
      'StartTransaction',
      aStartTransaction({ connectorId: 2, idTag: 'TAG', meterStart: 10_000 }),
    );
    if (!started.ok) throw new Error(started.description);
    const transactionId = started.payload['transactionId'] as number;
    expect(transactionId % 2).toBe(0); // gateway 0 of 2 hands out even ids
    first.close();
    const second = await TestCharger.connect(`${gateways[1]!.ocppUrl}/ROAMER`);
    expect(
      (
        await second.call(
          'StopTransaction',
          aStopTransaction({ transactionId, meterStop: 12_000, timestamp: at(1800) }),
        )
      ).ok,
    ).toBe(true);
    second.close();
    const [cdr] = await eventually(
      () =>
        sql<{ energy: string; total: string }>(
          processor,
          ADMIN_KEY,
          `SELECT toString(energy_wh) AS energy, toString(total_incl_vat) AS total FROM cdrs WHERE session_id = 'ROAMER-${transactionId}'`,
        ),
      (r) => r.length === 1,
      60_000,
    );
    expect(cdr).toEqual({ energy: '2000', total: '0.73' });
  });

  it('R2 across gateways: a 2.0.1 Updated without evse finds its connector; an Ended resent to the other gateway stores its reading once', async () => {
    const id = 'ROAMER-201';
    const tx = { transactionId: 'tx-roamer' };
    const energy = (seconds: number, wh: number) => [
      {
        timestamp: at(seconds),
        sampledValue: [{ value: wh, measurand: 'Energy.Active.Import.Register' }],
      },
    ];
    const ended = {
      eventType: 'Ended',
      timestamp: at(120),
      triggerReason: 'EVDeparted',
      seqNo: 2,
      transactionInfo: { ...tx, stoppedReason: 'EVDisconnected' },
      meterValue: energy(120, 1200),
    };
    const connect = (g: number) =>
      TestCharger.connect(`${gateways[g]!.ocppUrl}/${id}`, { protocols: ['ocpp2.0.1'] });
    const ok = async (charger: TestCharger, action: string, payload: object) => {
      const answer = await charger.call(action, payload);
      expect(answer.ok, JSON.stringify(answer)).toBe(true);
    };
    const first = await connect(0);
    await ok(first, 'TransactionEvent', {
      eventType: 'Started',
      timestamp: at(0),
      triggerReason: 'Authorized',
      seqNo: 0,
      transactionInfo: tx,
      evse: { id: 1, connectorId: 1 },
      idToken: { idToken: tokenOf(id), type: 'ISO14443' },
      meterValue: energy(0, 1000),
    });
    first.close();
    const second = await connect(1);
    await ok(second, 'TransactionEvent', {
      eventType: 'Updated',
      timestamp: at(60),
      triggerReason: 'MeterValuePeriodic',
      seqNo: 1,
      transactionInfo: tx,
      meterValue: energy(60, 1100),
    });
    await ok(second, 'TransactionEvent', ended);
    second.close();
    // Its answer was lost: the charger resends the Ended through the first gateway.
    const third = await connect(0);
    await ok(third, 'TransactionEvent', ended);
    for (const evseId of [0, 1])
      await ok(third, 'StatusNotification', {
        timestamp: at(7200),
        connectorStatus: 'Available',
        evseId,
        connectorId: evseId,
      });
    third.close();
    await eventually(
      () =>
        sql<{ n: string }>(
          processor,
          ADMIN_KEY,
          `SELECT toString(count()) AS n FROM connector_status WHERE charger_id = '${id}'`,
        ),
      (r) => r[0]?.n === '2',
      60_000,
    );
    const rows = await sql<{ connector: number; ts: string; n: string }>(
      processor,
      ADMIN_KEY,
      `SELECT connector_id AS connector, toString(ts) AS ts, toString(count()) AS n
       FROM meter_readings WHERE charger_id = '${id}' AND measurand = 'Energy.Active.Import.Register'
       GROUP BY connector, ts ORDER BY ts`,
    );
    expect(rows.map((r) => [r.connector, r.n])).toEqual([
      [1, '1'],
      [1, '1'],
      [1, '1'],
    ]);
  });

  it('a command sent through a process without the connection reaches the gateway that holds it', async () => {
    const cp = await TestCharger.connect(`${gateways[1]!.ocppUrl}/LOAD-3`);
    cp.answerCalls((action) => (action === 'Reset' ? { status: 'Accepted' } : null));
    const post = (chargerId: string) =>
      fetch(`${processor.apiUrl}/api/v1/chargers/${chargerId}/commands/Reset`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${ADMIN_KEY}` },
        body: JSON.stringify({ type: 'Soft' }),
      });
    const reply = await post('LOAD-3');
    expect(reply.status).toBe(200);
    expect(await reply.json()).toMatchObject({
      response: { status: 'Accepted' },
      responseValid: true,
    });
    cp.close();
    const offline = await post('LOAD-2');
    expect(offline.status).toBe(409);
    const [recorded] = await sql<{ n: string }>(
      processor,
      ADMIN_KEY,
      "SELECT toString(count()) AS n FROM charger_commands WHERE charger_id = 'LOAD-3' AND status = 'accepted'",
    );
    expect(recorded?.n).toBe('1');
  });
});
