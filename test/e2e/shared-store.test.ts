import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { E4_MAX_POWER_W, E4_SCENARIOS } from '../fixtures/e4-scenarios.js';
import { ADMIN_KEY, aCharger, aNetwork, withTokenPerCharger } from '../helpers/builders.js';
import {
  CLI,
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
 * The whole distributed deployment on one machine: the real Kafka broker, two gateway
 * processes, two processor processes in one consumer group, an API process, and one shared
 * store reached over ClickHouse's HTTP interface (`chargestream store-server`, chDB behind the
 * HTTP store of @clickhouse/client, since this machine has no ClickHouse server). A processor
 * killed or frozen on the shared store: test/reliability/distributed-faults.test.ts.
 */
const network = withTokenPerCharger(
  aNetwork({
    chargers: [
      ...E4_SCENARIOS.map((s) =>
        aCharger(`S-E4-${s.n}`, { connectors: [{ id: 1, maxPowerW: E4_MAX_POWER_W }] }),
      ),
    ],
  }),
);

const dir = tempDir();
const config = writeNetwork(dir, network);
const prefix = `shared-${randomUUID().slice(0, 8)}`;
let storeServer: ChildProcess;
let storeUrl = '';
const processors: RunningEngine[] = [];
let gateways: RunningEngine[] = [];
let api: RunningEngine;
const everything: RunningEngine[] = [];

const common = () => [
  '--kafka',
  inject('kafkaBrokers'),
  '--topic-prefix',
  prefix,
  '--partitions',
  '4',
  '--clickhouse',
  storeUrl,
];

async function startStoreServer(): Promise<void> {
  storeServer = spawn(
    process.execPath,
    [CLI, 'store-server', '--data', join(dir, 'shared'), '--port', '0'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  storeUrl = await new Promise<string>((resolve, reject) => {
    let out = '';
    storeServer.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /store server: (http:\/\/[\d.]+:\d+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    storeServer.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    storeServer.once('exit', (code) => reject(new Error(`store-server exited ${code}: ${out}`)));
  });
}

beforeAll(async () => {
  await startStoreServer();
  for (const n of [0, 1]) {
    const p = await startEngine({
      config,
      dataDir: join(dir, `processor-${n}`),
      extraArgs: ['--role', 'processor', ...common()],
    });
    processors.push(p);
  }
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
  api = await startEngine({
    config,
    dataDir: join(dir, 'api'),
    extraArgs: ['--role', 'api', ...common()],
  });
  everything.push(...processors, ...gateways, api);
}, 180_000);

afterAll(async () => {
  for (const p of everything) await p.stop('SIGKILL');
  storeServer?.kill('SIGKILL');
});

/** The partitions a processor reports lag for: those the group assigned to it. */
async function assigned(p: RunningEngine): Promise<number[]> {
  const text = await (await fetch(`${p.apiUrl}/metrics`)).text();
  return [...text.matchAll(/^chargestream_bus_consumer_lag_messages\{partition="(\d+)"\}/gm)]
    .map((m) => Number(m[1]))
    .sort();
}

describe('two gateways, two processors and an API process on one shared store', () => {
  it('E4 through both gateways, processed by both processors, read through the API process: the energies of the embedded mode', async () => {
    await expectE4Energies(gateways, api, 'S-E4-');
    // Both processors hold partitions, together all four.
    const shares = await Promise.all(processors.map(assigned));
    console.log(`shared store: partitions per processor ${JSON.stringify(shares)}`);
    expect(shares.every((s) => s.length > 0)).toBe(true);
    expect(shares.flat().sort()).toEqual([0, 1, 2, 3]);
  });

  it('N2 on the bus: every notification of those sessions is on the notifications topic, keyed by its id', async () => {
    const kafka = new Kafka({
      clientId: 'notifications-test',
      brokers: [inject('kafkaBrokers')],
      logLevel: logLevel.NOTHING,
    });
    const consumer = kafka.consumer({ groupId: `${prefix}-test-${randomUUID().slice(0, 6)}` });
    const seen = new Map<string, Record<string, unknown>>();
    await consumer.connect();
    await consumer.subscribe({ topics: [`${prefix}.notifications`], fromBeginning: true });
    await consumer.run({
      eachMessage: ({ message }) => {
        const key = message.key?.toString() ?? '';
        const row = JSON.parse(message.value!.toString()) as Record<string, unknown>;
        if (String(row['charger_id']).startsWith('S-E4-')) seen.set(key, row);
        return Promise.resolve();
      },
    });
    const stored = await sql<{ notification_id: string }>(
      api,
      ADMIN_KEY,
      "SELECT notification_id FROM notifications WHERE charger_id LIKE 'S-E4-%'",
    );
    await eventually(
      () => Promise.resolve(seen.size),
      (n) => n >= stored.length,
      30_000,
    );
    await consumer.disconnect();
    expect(stored.length).toBeGreaterThanOrEqual(18); // started and ended of nine sessions at least
    expect([...seen.keys()].sort()).toEqual(stored.map((n) => n.notification_id).sort());
    for (const [key, n] of seen) expect(n['notification_id']).toBe(key);
  });

  it('configuration API: a tariff and a 2.0.1 charger created at the API process reach the gateways and the processors; its Ended answer carries the final cost from the costs topic', async () => {
    const put = async (path: string, body: object) => {
      const response = await fetch(`${api.apiUrl}/api/v1/${path}`, {
        method: 'PUT',
        headers: { Authorization: `Bearer ${ADMIN_KEY}` },
        body: JSON.stringify(body),
      });
      expect(response.status, await response.text()).toBe(201);
    };
    await put('tariffs/t-dist', {
      currency: 'EUR',
      elements: [{ components: [{ type: 'ENERGY', price: '0.50', vat: '20' }] }],
    });
    await put('tokens/DIST-TAG', { type: 'RFID', customer: 'c' });
    await put('chargers/DIST-201', {
      site: 's',
      tariff: 't-dist',
      connectors: [{ id: 1, maxPowerW: 22_000 }],
    });
    // The gateway hears the changes on the config topic, in order: the charger is refused
    // (404) until its change arrives, and then the token's, sent before it, is there too.
    const cp = await eventually(
      () =>
        TestCharger.connect(`${gateways[1]!.ocppUrl}/DIST-201`, {
          protocols: ['ocpp2.0.1'],
        }).catch(() => null),
      (c) => c !== null,
      30_000,
    );
    cp!.answerCalls(() => ({}));
    const event = (eventType: string, seqNo: number, minutes: number, wh: number) => ({
      eventType,
      timestamp: new Date(Date.UTC(2026, 10, 20, 8, minutes)).toISOString(),
      triggerReason: 'MeterValuePeriodic',
      seqNo,
      transactionInfo: {
        transactionId: 'TX-DIST',
        ...(eventType === 'Ended' ? { stoppedReason: 'Local' } : {}),
      },
      evse: { id: 1, connectorId: 1 },
      idToken: { idToken: 'DIST-TAG', type: 'ISO14443' },
      meterValue: [
        {
          timestamp: new Date(Date.UTC(2026, 10, 20, 8, minutes)).toISOString(),
          sampledValue: [{ value: wh, measurand: 'Energy.Active.Import.Register' }],
        },
      ],
    });
    const started = await cp!.call('TransactionEvent', event('Started', 0, 0, 0));
    expect(started.ok && started.payload['idTokenInfo']).toEqual({ status: 'Accepted' });
    expect((await cp!.call('TransactionEvent', event('Updated', 1, 30, 5_000))).ok).toBe(true);
    const ended = await cp!.call('TransactionEvent', event('Ended', 2, 60, 10_000), 30_000);
    if (!ended.ok) throw new Error(ended.description);
    cp!.close();
    // 10 kWh at 0.50 + 20 %: the API's tariff, in the workers of whichever processor rated it.
    expect(ended.payload['totalCost']).toBe(6);
    const [cdr] = await eventually(
      () =>
        sql<{ total: string }>(
          api,
          ADMIN_KEY,
          "SELECT toString(total_incl_vat) AS total FROM cdrs WHERE session_id = 'DIST-201-TX-DIST'",
        ),
      (rows) => rows.length === 1,
    );
    expect(Number(cdr!.total)).toBe(6);
  });
});
