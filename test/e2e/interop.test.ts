import { join } from 'node:path';
import { RPCClient } from 'ocpp-rpc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  eventually,
  sql,
  startEngine,
  tempDir,
  writeNetwork,
  type RunningEngine,
} from '../helpers/engine.js';
import { aNetwork, aCharger, ADMIN_KEY } from '../helpers/builders.js';

/**
 * Interop with a third-party OCPP client, `ocpp-rpc`, in strict mode: it validates every
 * request it sends and every response the engine returns against the official schemas of the
 * version negotiated, and rejects the call on any violation.
 */
const KEY = ADMIN_KEY;
const PASSWORD = 'interop-password-0123';
const network = aNetwork({
  chargers: ['RPC16', 'RPC201'].map((id) => aCharger(id, { password: PASSWORD })),
  tokens: [{ id: 'TAG-1', type: 'RFID', customer: 'c' }],
});

let engine: RunningEngine;
beforeAll(async () => {
  const dir = tempDir();
  engine = await startEngine({ config: writeNetwork(dir, network), dataDir: join(dir, 'data') });
});
afterAll(async () => {
  await engine?.stop();
});

function client(identity: string, protocol: 'ocpp1.6' | 'ocpp2.0.1') {
  // ocpp-rpc's typings mark every option required although all but the endpoint default.
  return new RPCClient({
    endpoint: engine.ocppUrl,
    identity,
    password: PASSWORD,
    protocols: [protocol],
    strictMode: true,
    reconnect: false,
  } as ConstructorParameters<typeof RPCClient>[0]);
}

const T0 = Date.parse('2026-11-20T10:00:00Z');
const at = (s: number) => new Date(T0 + s * 1000).toISOString();

describe('interop with ocpp-rpc (strict mode)', () => {
  it('OCPP 1.6: boot, authorize, status, a session with meter values, every answer schema-valid', async () => {
    const cp = client('RPC16', 'ocpp1.6');
    await cp.connect();
    expect(cp.protocol).toBe('ocpp1.6');
    expect(
      await cp.call('BootNotification', { chargePointVendor: 'v', chargePointModel: 'm' }),
    ).toMatchObject({ status: 'Accepted' });
    expect(await cp.call('Heartbeat', {})).toHaveProperty('currentTime');
    expect(await cp.call('Authorize', { idTag: 'TAG-1' })).toEqual({
      idTagInfo: { status: 'Accepted' },
    });
    expect(
      await cp.call('StatusNotification', {
        connectorId: 1,
        errorCode: 'NoError',
        status: 'Charging',
      }),
    ).toEqual({});
    const start = (await cp.call('StartTransaction', {
      connectorId: 1,
      idTag: 'TAG-1',
      meterStart: 100,
      timestamp: at(0),
    })) as {
      transactionId: number;
    };
    await cp.call('MeterValues', {
      connectorId: 1,
      transactionId: start.transactionId,
      meterValue: [
        {
          timestamp: at(60),
          sampledValue: [
            { value: '0.35', unit: 'kWh', measurand: 'Energy.Active.Import.Register' },
          ],
        },
      ],
    });
    expect(
      await cp.call('StopTransaction', {
        transactionId: start.transactionId,
        meterStop: 600,
        timestamp: at(120),
        idTag: 'TAG-1',
      }),
    ).toEqual({ idTagInfo: { status: 'Accepted' } });
    expect(await cp.call('DataTransfer', { vendorId: 'x' })).toEqual({ status: 'UnknownVendorId' });
    await cp.close();
    const [session] = await eventually(
      () =>
        sql<{ status: string; energy: string }>(
          engine,
          KEY,
          "SELECT status, toString(energy_wh) AS energy FROM sessions WHERE charger_id = 'RPC16'",
        ),
      (rows) => rows[0]?.status === 'rated',
    );
    expect(session?.energy).toBe('500');
  });

  it('OCPP 2.0.1: boot, authorize, TransactionEvent Started/Updated/Ended, every answer schema-valid', async () => {
    const cs = client('RPC201', 'ocpp2.0.1');
    await cs.connect();
    expect(cs.protocol).toBe('ocpp2.0.1');
    expect(
      await cs.call('BootNotification', {
        reason: 'PowerUp',
        chargingStation: { model: 'm', vendorName: 'v' },
      }),
    ).toMatchObject({ status: 'Accepted' });
    expect(await cs.call('Authorize', { idToken: { idToken: 'TAG-1', type: 'ISO14443' } })).toEqual(
      { idTokenInfo: { status: 'Accepted' } },
    );
    expect(
      await cs.call('StatusNotification', {
        timestamp: at(0),
        connectorStatus: 'Occupied',
        evseId: 1,
        connectorId: 1,
      }),
    ).toEqual({});
    const energy = (wh: number, s: number, context: string) => ({
      timestamp: at(s),
      sampledValue: [
        {
          value: wh / 1000,
          context,
          measurand: 'Energy.Active.Import.Register',
          unitOfMeasure: { unit: 'kWh' },
        },
      ],
    });
    const base = { transactionInfo: { transactionId: 'tx-201-a' } };
    expect(
      await cs.call('TransactionEvent', {
        ...base,
        eventType: 'Started',
        timestamp: at(0),
        triggerReason: 'Authorized',
        seqNo: 0,
        evse: { id: 1, connectorId: 1 },
        idToken: { idToken: 'TAG-1', type: 'ISO14443' },
        meterValue: [energy(12_000, 0, 'Transaction.Begin')],
      }),
    ).toEqual({ idTokenInfo: { status: 'Accepted' } });
    expect(
      await cs.call('TransactionEvent', {
        ...base,
        eventType: 'Updated',
        timestamp: at(300),
        triggerReason: 'MeterValuePeriodic',
        seqNo: 1,
        meterValue: [energy(13_000, 300, 'Sample.Periodic')],
      }),
    ).toEqual({});
    // seqNo 2 lost (a charger low on memory may drop Updated events): nothing blocks.
    expect(
      await cs.call('TransactionEvent', {
        eventType: 'Ended',
        timestamp: at(600),
        triggerReason: 'EVCommunicationLost',
        seqNo: 3,
        transactionInfo: { transactionId: 'tx-201-a', stoppedReason: 'EVDisconnected' },
        meterValue: [energy(14_500, 600, 'Transaction.End')],
      }),
      // R5.1: the final cost incl. VAT (the session's CDR below), schema-valid for ocpp-rpc.
    ).toEqual({ totalCost: 0.92 });
    await cs.close();
    const [session] = await eventually(
      () =>
        sql<{ status: string; energy: string; reason: string; total: string }>(
          engine,
          KEY,
          "SELECT status, toString(energy_wh) AS energy, reason, toString(cost_incl_vat) AS total FROM sessions WHERE session_id = 'RPC201-tx-201-a'",
        ),
      (rows) => rows[0]?.status === 'rated',
    );
    // 2.5 kWh × 0.30 = 0.75 + 22 % VAT 0.17 (0.165 half-up) = 0.92
    expect(session).toEqual({
      status: 'rated',
      energy: '2500',
      reason: 'EVDisconnected',
      total: '0.92',
    });
  });
});
