import { describe, expect, it } from 'vitest';
import { eventually, sql, useEngine } from '../helpers/engine.js';
import { aNetwork, aCharger, ADMIN_KEY } from '../helpers/builders.js';
import { TestCharger } from '../helpers/ocpp-client.js';
import { recordFigure } from './figures.js';

/** reliability.md 5: two hours offline, the queued 2.0.1 events replayed with past timestamps. */
const KEY = ADMIN_KEY;
const network = aNetwork({
  chargers: [aCharger('OFFLINE-1', { connectors: [{ id: 1, maxPowerW: 11_000 }] })],
});

const run = useEngine(network);

describe('offline backlog', () => {
  it('reliability.md 5: hundreds of past events, some lost, all acknowledged in order; the session is flagged and rated', async () => {
    const cs = await TestCharger.connect(`${run.engine.ocppUrl}/OFFLINE-1`, {
      protocols: ['ocpp2.0.1'],
    });
    const t0 = Date.now() - 2 * 3600_000;
    const at = (s: number) => new Date(t0 + s * 1000).toISOString();
    const energy = (wh: number, s: number) => [
      {
        timestamp: at(s),
        sampledValue: [{ value: wh, measurand: 'Energy.Active.Import.Register' }],
      },
    ];
    const base = { transactionInfo: { transactionId: 'offline-tx' }, offline: true };
    const started = performance.now();
    let answered = 0;
    const send = async (payload: object) => {
      const answer = await cs.call('TransactionEvent', { ...base, ...payload });
      expect(answer.ok, JSON.stringify(answer)).toBe(true);
      answered += 1;
    };
    await send({
      eventType: 'Started',
      timestamp: at(0),
      triggerReason: 'Authorized',
      seqNo: 0,
      evse: { id: 1, connectorId: 1 },
      idToken: { idToken: 'TAG', type: 'ISO14443' },
      meterValue: energy(50_000, 0),
    });
    // Every 15 s for two hours, 45 Wh each (10.8 kW); seqNo 100–109 were lost on the charger.
    let seqNo = 1;
    for (let i = 1; i <= 480; i++, seqNo++) {
      if (seqNo >= 100 && seqNo < 110) continue;
      await send({
        eventType: 'Updated',
        timestamp: at(i * 15),
        triggerReason: 'MeterValuePeriodic',
        seqNo,
        meterValue: energy(50_000 + i * 45, i * 15),
      });
    }
    await send({
      eventType: 'Ended',
      timestamp: at(481 * 15),
      triggerReason: 'EVDeparted',
      seqNo,
      meterValue: energy(50_000 + 481 * 45, 481 * 15),
      transactionInfo: { transactionId: 'offline-tx', stoppedReason: 'EVDisconnected' },
    });
    const drainMs = performance.now() - started;
    cs.close();
    const endedToCdr = performance.now();
    const [cdr] = await eventually(
      () =>
        sql<{ energy: string; total: string }>(
          run.engine,
          KEY,
          "SELECT toString(energy_wh) AS energy, toString(total_incl_vat) AS total FROM cdrs WHERE session_id = 'OFFLINE-1-offline-tx'",
        ),
      (rows) => rows.length === 1,
    );
    const cdrMs = performance.now() - endedToCdr;
    recordFigure(5, `drain time of ${answered} backlog events (ms)`, Math.round(drainMs));
    recordFigure(5, 'time Ended → CDR (ms)', Math.round(cdrMs));
    expect(answered).toBe(472);
    // 481 × 45 Wh = 21,645 Wh; × 0.30 = 6.49 (6.4935) + 22 % = 1.43 → 7.92
    expect(cdr).toEqual({ energy: '21645', total: '7.92' });
    // The sink stores CDRs before sessions: wait for the rated version.
    const [session] = await eventually(
      () =>
        sql<{ status: string; flags: string[]; rejected: string }>(
          run.engine,
          KEY,
          "SELECT status, flags, (SELECT toString(countIf(NOT valid)) FROM meter_readings WHERE session_id = 'OFFLINE-1-offline-tx') AS rejected FROM sessions WHERE session_id = 'OFFLINE-1-offline-tx'",
        ),
      (rows) => rows[0]?.status === 'rated',
    );
    expect([...(session?.flags ?? [])].sort()).toEqual(['offline', 'seq_gap']);
    expect(session?.rejected).toBe('0');
  }, 120_000);
});
