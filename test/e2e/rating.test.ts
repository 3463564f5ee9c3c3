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

/** The tariff engine in the pipeline: rating.md case 5 driven over OCPP 1.6. */
const run = useEngine(
  aNetwork({
    chargers: [aCharger('TIME-1', { tariff: 't-time' })],
    tariffs: [
      {
        id: 't',
        currency: 'EUR',
        elements: [{ components: [{ type: 'ENERGY', price: '0.30', vat: '22' }] }],
      },
      {
        id: 't-time',
        currency: 'EUR',
        elements: [
          {
            components: [
              { type: 'TIME', price: '3.00', vat: '10', stepSize: 60 },
              { type: 'PARKING_TIME', price: '5.00', vat: '20', stepSize: 300 },
            ],
          },
        ],
      },
    ],
  }),
);

describe('rating in the pipeline', () => {
  it('R1 rating.md case 5: 150 min charging then 42 min parking (from the status timeline) → 11.25 net, 12.75 total', async () => {
    const cp = await TestCharger.connect(`${run.engine.ocppUrl}/TIME-1`);
    const status = (value: string, seconds: number) =>
      cp.call('StatusNotification', {
        connectorId: 1,
        errorCode: 'NoError',
        status: value,
        timestamp: at(seconds),
      });
    const started = await cp.call(
      'StartTransaction',
      aStartTransaction({ idTag: 'TAG', meterStart: 0 }),
    );
    if (!started.ok) throw new Error(started.description);
    const transactionId = started.payload['transactionId'] as number;
    expect((await status('Charging', 0)).ok).toBe(true);
    for (let minute = 15; minute <= 150; minute += 15) {
      expect(
        (
          await cp.call(
            'MeterValues',
            aMeterValues({ transactionId, wh: minute * 100, seconds: minute * 60 }),
          )
        ).ok,
      ).toBe(true);
    }
    expect((await status('SuspendedEV', 150 * 60)).ok).toBe(true);
    expect(
      (
        await cp.call(
          'StopTransaction',
          aStopTransaction({ transactionId, meterStop: 15_000, timestamp: at(192 * 60) }),
        )
      ).ok,
    ).toBe(true);
    cp.close();
    const [cdr] = await eventually(
      () =>
        sql<Record<string, unknown>>(
          run.engine,
          ADMIN_KEY,
          `SELECT toString(total_excl_vat) AS net, toString(total_vat) AS vat, toString(total_incl_vat) AS total,
                  arrayMap(x -> toString(x), lines.net) AS nets, lines.dimension AS dimensions
           FROM cdrs WHERE session_id = 'TIME-1-${transactionId}'`,
        ),
      (rows) => rows.length === 1,
    );
    expect(cdr).toEqual({
      net: '11.25',
      vat: '1.5',
      total: '12.75',
      nets: ['7.5', '3.75'],
      dimensions: ['TIME', 'PARKING_TIME'],
    });
    // The sink writes sessions after CDRs: wait for the rated version, not the first CDR.
    const [session] = await eventually(
      () =>
        sql<{ status: string; charging_s: number; parking_s: number }>(
          run.engine,
          ADMIN_KEY,
          `SELECT status, charging_s, parking_s FROM sessions WHERE session_id = 'TIME-1-${transactionId}'`,
        ),
      (rows) => rows[0]?.status === 'rated',
    );
    expect(session).toEqual({ status: 'rated', charging_s: 9000, parking_s: 2520 });
    // The CDR's charging periods: 150 min charging, then 42 min parking, each with its element.
    const [{ periods }] = (await sql<{ periods: string }>(
      run.engine,
      ADMIN_KEY,
      `SELECT charging_periods AS periods FROM cdrs WHERE session_id = 'TIME-1-${transactionId}'`,
    )) as [{ periods: string }];
    const parsed = JSON.parse(periods) as Array<Record<string, unknown>>;
    expect(parsed.map((p) => [p['start'], p['end'], p['state'], p['duration_s']])).toEqual([
      [at(0), at(150 * 60), 'charging', '9000'],
      [at(150 * 60), at(192 * 60), 'parking', '2520'],
    ]);
    expect(parsed[0]!['elements']).toMatchObject({ TIME: 0, PARKING_TIME: 0 });
  });
});
