import { describe, expect, it } from 'vitest';
import {
  ADMIN_KEY,
  aCharger,
  aMeterValues,
  aNetwork,
  aStartTransaction,
  aStopTransaction,
  at,
} from '../helpers/builders.js';
import { eventually, sql, useEngine } from '../helpers/engine.js';
import { TestCharger } from '../helpers/ocpp-client.js';

/**
 * R5.1 (running and final totalCost, CostUpdated) and R5.2 (signed meter values into the
 * store and the CDR), over real OCPP connections to the engine.
 */
const run = useEngine(
  aNetwork({
    settings: { defaultTariff: 't', costUpdatedIntervalS: 1 },
    chargers: [
      aCharger('LC-1'),
      aCharger('LC-FREE', { tariff: 't-free' }),
      aCharger('LC-16'),
      aCharger('LC-NI'),
    ],
    tokens: [
      { id: 'TAG', type: 'RFID', customer: 'c' },
      { id: 'TAG-FREE', type: 'RFID', customer: 'c' },
      { id: 'TAG-16', type: 'RFID', customer: 'c' },
      { id: 'TAG-NI', type: 'RFID', customer: 'c' },
    ],
    tariffs: [
      {
        id: 't',
        currency: 'EUR',
        elements: [{ components: [{ type: 'ENERGY', price: '0.30', vat: '22' }] }],
      },
      {
        id: 't-free',
        currency: 'EUR',
        elements: [{ components: [{ type: 'ENERGY', price: '0.00', vat: '22' }] }],
      },
    ],
  }),
);

/** A 2.0.1 signed meter value, as an Eichrecht meter would send it (texts kept verbatim). */
const signature = (n: number) => ({
  signedMeterData: `T0NNRnx7IkZWIjoiMS4wIiwiUkQiOlt7IlJWIjo${n}In1dfQ==`,
  signingMethod: 'ECDSA-secp256r1-SHA256',
  encodingMethod: 'OCMF',
  publicKey: 'MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE+key/with+slashes==',
});

function transactionEvent(
  eventType: 'Started' | 'Updated' | 'Ended',
  seqNo: number,
  seconds: number,
  wh: number,
  extra: Record<string, unknown> = {},
  signed = false,
) {
  return {
    eventType,
    timestamp: at(seconds),
    triggerReason: eventType === 'Started' ? 'Authorized' : 'MeterValuePeriodic',
    seqNo,
    transactionInfo: {
      transactionId: 'TX-LC',
      ...(eventType === 'Ended' ? { stoppedReason: 'EVDisconnected' } : {}),
    },
    evse: { id: 1, connectorId: 1 },
    meterValue: [
      {
        timestamp: at(seconds),
        sampledValue: [
          {
            value: wh,
            measurand: 'Energy.Active.Import.Register',
            unitOfMeasure: { unit: 'Wh' },
            context:
              eventType === 'Started'
                ? 'Transaction.Begin'
                : eventType === 'Ended'
                  ? 'Transaction.End'
                  : 'Sample.Periodic',
            ...(signed ? { signedMeterValue: signature(seqNo) } : {}),
          },
        ],
      },
    ],
    ...extra,
  };
}

async function connect201(id: string): Promise<TestCharger> {
  const cp = await TestCharger.connect(`${run.engine.ocppUrl}/${id}`, {
    protocols: ['ocpp2.0.1'],
  });
  cp.answerCalls(() => ({}));
  return cp;
}

describe('live cost and signed meter values', () => {
  it('R5.1: Updated answers carry the running totalCost, CostUpdated follows it, Ended carries the final one', async () => {
    const cp = await connect201('LC-1');
    const costUpdates: Array<Record<string, unknown>> = [];
    cp.answerCalls((action, payload) => {
      if (action === 'CostUpdated') costUpdates.push(payload);
      return action === 'CostUpdated' ? {} : { status: 'Accepted' };
    });
    const started = await cp.call(
      'TransactionEvent',
      transactionEvent('Started', 0, 0, 0, { idToken: { idToken: 'TAG', type: 'ISO14443' } }, true),
    );
    expect(started.ok).toBe(true);
    // 5 kWh per reading (20 kW): after each is rated, the running cost is 1.83 € more (0.30 + 22 %).
    const answers: Array<Record<string, unknown>> = [];
    for (let n = 1; n <= 4; n += 1) {
      const updated = await cp.call(
        'TransactionEvent',
        transactionEvent('Updated', n, n * 900, n * 5_000, {}, n === 2),
      );
      if (!updated.ok) throw new Error(updated.description);
      answers.push(updated.payload);
      // Give the processor time to rate the reading before the next one asks for the cost.
      await eventually(
        async () =>
          sql(
            run.engine,
            ADMIN_KEY,
            "SELECT energy_wh FROM sessions WHERE session_id = 'LC-1-TX-LC'",
          ),
        (rows) => Number(rows[0]?.['energy_wh']) >= n * 5_000,
      );
      await new Promise((r) => setTimeout(r, n === 3 ? 1100 : 50));
    }
    // The first Updated answer knows no cost yet; each later one the cost rated before it.
    expect(answers.map((a) => a['totalCost'])).toEqual([undefined, 1.83, 3.66, 5.49]);
    const ended = await cp.call(
      'TransactionEvent',
      transactionEvent('Ended', 5, 4500, 25_000, { triggerReason: 'EVCommunicationLost' }, true),
    );
    if (!ended.ok) throw new Error(ended.description);
    expect(ended.payload['totalCost']).toBe(9.15);
    // CostUpdated went out for the running cost, at most once a second (the setting).
    expect(costUpdates.length).toBeGreaterThanOrEqual(1);
    expect(costUpdates.length).toBeLessThanOrEqual(4);
    for (const update of costUpdates) {
      expect(update['transactionId']).toBe('TX-LC');
      expect([1.83, 3.66, 5.49, 7.32]).toContain(update['totalCost']);
    }
    const [cdr] = await eventually(
      () =>
        sql<Record<string, string>>(
          run.engine,
          ADMIN_KEY,
          "SELECT toString(total_incl_vat) AS total_incl_vat, signed_start, signed_end FROM cdrs WHERE session_id = 'LC-1-TX-LC'",
        ),
      (rows) => rows.length === 1,
    );
    expect(cdr!['total_incl_vat']).toBe('9.15');

    // R5.2: the start and end records, byte for byte, with the time of the reading they sign.
    expect(JSON.parse(cdr!['signed_start']!)).toEqual({
      ts: '2026-11-20 08:00:00.000',
      data: signature(0).signedMeterData,
      signingMethod: signature(0).signingMethod,
      encodingMethod: 'OCMF',
      publicKey: signature(0).publicKey,
    });
    expect(JSON.parse(cdr!['signed_end']!)).toMatchObject({
      ts: '2026-11-20 09:15:00.000',
      data: signature(5).signedMeterData,
    });
    const signedRows = await sql<Record<string, unknown>>(
      run.engine,
      ADMIN_KEY,
      `SELECT value, context, signed_data, signing_method, public_key, valid FROM meter_readings
       WHERE charger_id = 'LC-1' AND signed_data != '' ORDER BY ts`,
    );
    expect(signedRows.map((r) => [r['value'], r['signed_data'], r['valid']])).toEqual([
      [0, signature(0).signedMeterData, true],
      [10_000, signature(2).signedMeterData, true],
      [25_000, signature(5).signedMeterData, true],
    ]);
    expect(signedRows[0]!['public_key']).toBe(signature(0).publicKey);
    cp.close();
  });

  it('rating.md case 15: the Ended answer of a free session carries totalCost 0', async () => {
    const cp = await connect201('LC-FREE');
    const event = (type: 'Started' | 'Ended', seqNo: number, seconds: number, wh: number) => ({
      ...transactionEvent(type, seqNo, seconds, wh),
      transactionInfo: {
        transactionId: 'TX-FREE',
        ...(type === 'Ended' ? { stoppedReason: 'Local' } : {}),
      },
    });
    expect(
      (
        await cp.call('TransactionEvent', {
          ...event('Started', 0, 0, 0),
          idToken: { idToken: 'TAG-FREE', type: 'ISO14443' },
        })
      ).ok,
    ).toBe(true);
    const ended = await cp.call('TransactionEvent', event('Ended', 1, 1800, 7_000));
    if (!ended.ok) throw new Error(ended.description);
    expect(ended.payload).toHaveProperty('totalCost', 0);
    cp.close();
  });

  it('a charger refusing CostUpdated as NotImplemented is not sent it again', async () => {
    const cp = await connect201('LC-NI');
    let asked = 0;
    cp.answerCalls((action) => {
      if (action !== 'CostUpdated') return {};
      asked += 1;
      return new Error('NotImplemented');
    });
    const event = (type: 'Started' | 'Updated', seqNo: number, wh: number) => ({
      ...transactionEvent(type, seqNo, seqNo * 900, wh),
      transactionInfo: { transactionId: 'TX-NI' },
      ...(type === 'Started' ? { idToken: { idToken: 'TAG-NI', type: 'ISO14443' } } : {}),
    });
    expect((await cp.call('TransactionEvent', event('Started', 0, 0))).ok).toBe(true);
    // Running costs more than the interval (1 s) apart: each would be due.
    for (let n = 1; n <= 4; n += 1) {
      expect((await cp.call('TransactionEvent', event('Updated', n, n * 1000))).ok).toBe(true);
      await new Promise((r) => setTimeout(r, 1200));
    }
    expect(asked).toBe(1);
    cp.close();
  });

  it('R5.2: an OCPP 1.6 SignedData value joins the reading it signs and reaches the CDR', async () => {
    const cp = await TestCharger.connect(`${run.engine.ocppUrl}/LC-16`);
    const started = await cp.call(
      'StartTransaction',
      aStartTransaction({ idTag: 'TAG-16', meterStart: 1000 }),
    );
    if (!started.ok) throw new Error(started.description);
    const transactionId = started.payload['transactionId'] as number;
    const ocmf = (wh: number) =>
      `OCMF|{"FV":"1.0","GI":"TEST","RD":[{"TM":"x","RV":${wh / 1000},"RI":"1-b:1.8.0","RU":"kWh"}]}|{"SA":"ECDSA-secp256r1-SHA256","SD":"3045AB"}`;
    const signedSample = (wh: number) => ({
      value: ocmf(wh),
      format: 'SignedData',
      measurand: 'Energy.Active.Import.Register',
      context: 'Sample.Periodic',
    });
    for (const [seconds, wh] of [
      [600, 3000],
      [1200, 5000],
    ] as const) {
      const answer = await cp.call(
        'MeterValues',
        aMeterValues({ transactionId, wh, seconds, extra: [signedSample(wh)] }),
      );
      expect(answer.ok).toBe(true);
    }
    // A signature without its value is kept too, as a row of its own without a number.
    const alone = await cp.call('MeterValues', {
      connectorId: 1,
      transactionId,
      meterValue: [{ timestamp: at(1500), sampledValue: [signedSample(5500)] }],
    });
    expect(alone.ok).toBe(true);
    const stopped = await cp.call(
      'StopTransaction',
      aStopTransaction({ transactionId, meterStop: 6000, timestamp: at(1800) }),
    );
    expect(stopped.ok).toBe(true);
    cp.close();
    const [cdr] = await eventually(
      () =>
        sql<Record<string, string>>(
          run.engine,
          ADMIN_KEY,
          `SELECT energy_wh, signed_start, signed_end FROM cdrs WHERE session_id = 'LC-16-${transactionId}'`,
        ),
      (rows) => rows.length === 1,
    );
    expect(Number(cdr!['energy_wh'])).toBe(5000);
    expect(JSON.parse(cdr!['signed_start']!)).toMatchObject({
      data: ocmf(3000),
      ts: at(600).replace('T', ' ').replace('Z', ''),
    });
    expect(JSON.parse(cdr!['signed_end']!)).toMatchObject({ data: ocmf(5500) });
    const rows = await sql<Record<string, unknown>>(
      run.engine,
      ADMIN_KEY,
      `SELECT value, valid, reject_reason, signed_data FROM meter_readings
       WHERE charger_id = 'LC-16' AND signed_data != '' ORDER BY ts`,
    );
    expect(rows).toEqual([
      { value: 3000, valid: true, reject_reason: '', signed_data: ocmf(3000) },
      { value: 5000, valid: true, reject_reason: '', signed_data: ocmf(5000) },
      { value: 0, valid: false, reject_reason: 'signature_only', signed_data: ocmf(5500) },
    ]);
  });
});
