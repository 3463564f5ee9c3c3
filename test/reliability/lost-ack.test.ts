import { describe, expect, it } from 'vitest';
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
import { eventually, sql, useEngine } from '../helpers/engine.js';
import { recordFigure, sized } from './figures.js';
import { callRaw, cutSocket, openSocket, reconnect } from './harness.js';

/**
 * reliability.md 1: the CALLRESULT to a start is lost — the connection is cut under the
 * WebSocket (no close frame) right after the start is sent, or the answer arrives and the
 * charger resends anyway — and the charger resends the identical message. One transactionId,
 * one session. 1.6 StartTransaction and 2.0.1 TransactionEvent Started. The same across a
 * SIGKILL: restart.test.ts.
 */
const N16 = sized(20, 100);
const N201 = sized(10, 50);
const ids16 = Array.from({ length: N16 }, (_, i) => `LA16-${i}`);
const ids201 = Array.from({ length: N201 }, (_, i) => `LA201-${i}`);
const run = useEngine(
  withTokenPerCharger(aNetwork({ chargers: [...ids16, ...ids201].map((id) => aCharger(id)) })),
);

describe('lost acknowledgement of a start', () => {
  it('1.6: StartTransaction resent after a cut connection and after a lost answer gets the same transactionId; one session, one CDR', async () => {
    const outcomes = await Promise.all(
      ids16.map(async (id, i) => {
        const start = aStartTransaction({ idTag: tokenOf(id), meterStart: 1000 });
        const first = await openSocket(`${run.engine.ocppUrl}/${id}`);
        first.send(JSON.stringify([2, 'start-1', 'StartTransaction', start]));
        // Cut at once, or a little later (the answer may or may not have gone out).
        await new Promise((r) => setTimeout(r, i % 3 === 0 ? 0 : i % 17));
        cutSocket(first);
        const again = await reconnect(`${run.engine.ocppUrl}/${id}`);
        const resent = await callRaw(again, 'start-1', 'StartTransaction', start);
        // The answer came but the charger resends once more (its own timer fired first).
        const third = await callRaw(again, 'start-2', 'StartTransaction', start);
        const ids = [resent, third].map((f) => (f[2] as { transactionId: number }).transactionId);
        const stopped = await callRaw(
          again,
          'stop',
          'StopTransaction',
          aStopTransaction({ transactionId: ids[0], meterStop: 4000, timestamp: at(1800) }),
        );
        expect(stopped[0]).toBe(3);
        again.close();
        return { id, ids };
      }),
    );
    const differing = outcomes.filter((o) => o.ids[0] !== o.ids[1]);
    const rows = await eventually(
      () =>
        sql<{ charger_id: string; sessions: string; cdrs: string }>(
          run.engine,
          ADMIN_KEY,
          `SELECT charger_id, toString(count()) AS sessions,
                  toString((SELECT count() FROM cdrs AS c WHERE c.charger_id = s.charger_id)) AS cdrs
           FROM sessions AS s WHERE charger_id LIKE 'LA16-%' GROUP BY charger_id`,
        ),
      (r) => r.length === N16 && r.every((x) => x.cdrs === '1'),
      60_000,
    );
    const duplicates = rows.reduce((n, r) => n + Number(r.sessions) - 1, 0) + differing.length;
    recordFigure(
      1,
      `duplicate sessions, 1.6 (${N16} starts resent after a cut or a lost answer)`,
      duplicates,
    );
    expect(differing).toEqual([]);
    expect(duplicates).toBe(0);
  });

  it('2.0.1: TransactionEvent Started resent after a cut connection; one session', async () => {
    const results = await Promise.all(
      ids201.map(async (id, i) => {
        const started = {
          eventType: 'Started',
          timestamp: at(0),
          triggerReason: 'Authorized',
          seqNo: 0,
          transactionInfo: { transactionId: `tx-${id}` },
          evse: { id: 1, connectorId: 1 },
          idToken: { idToken: tokenOf(id), type: 'ISO14443' },
          meterValue: [
            {
              timestamp: at(0),
              sampledValue: [{ value: 1000, measurand: 'Energy.Active.Import.Register' }],
            },
          ],
        };
        const first = await openSocket(`${run.engine.ocppUrl}/${id}`, {
          protocols: ['ocpp2.0.1'],
        });
        first.send(JSON.stringify([2, 'te-0', 'TransactionEvent', started]));
        await new Promise((r) => setTimeout(r, i % 7));
        cutSocket(first);
        const again = await reconnect(`${run.engine.ocppUrl}/${id}`, {
          protocols: ['ocpp2.0.1'],
        });
        const answers = [
          await callRaw(again, 'te-0', 'TransactionEvent', started),
          await callRaw(again, 'te-0b', 'TransactionEvent', started),
          await callRaw(again, 'te-1', 'TransactionEvent', {
            ...started,
            eventType: 'Ended',
            timestamp: at(1800),
            triggerReason: 'EVDeparted',
            seqNo: 1,
            transactionInfo: { transactionId: `tx-${id}`, stoppedReason: 'EVDisconnected' },
            meterValue: [
              {
                timestamp: at(1800),
                sampledValue: [{ value: 4000, measurand: 'Energy.Active.Import.Register' }],
              },
            ],
          }),
        ];
        again.close();
        return answers.every((a) => a[0] === 3);
      }),
    );
    expect(results.every(Boolean)).toBe(true);
    const rows = await eventually(
      () =>
        sql<{ sessions: string; cdrs: string; energy: string }>(
          run.engine,
          ADMIN_KEY,
          `SELECT toString(count()) AS sessions,
                  toString((SELECT count() FROM cdrs WHERE charger_id LIKE 'LA201-%')) AS cdrs,
                  toString((SELECT sum(energy_wh) FROM cdrs WHERE charger_id LIKE 'LA201-%')) AS energy
           FROM sessions WHERE charger_id LIKE 'LA201-%'`,
        ),
      // A CDR is stored before its session's last version (the sink's table order): wait for both.
      (r) => r[0]?.cdrs === String(N201) && Number(r[0]?.sessions) >= N201,
      60_000,
    );
    const duplicates = Number(rows[0]?.sessions) - N201;
    recordFigure(
      1,
      `duplicate sessions, 2.0.1 (${N201} Started events resent after a cut)`,
      duplicates,
    );
    expect(duplicates).toBe(0);
    expect(rows[0]?.energy).toBe(String(N201 * 3000));
  });
});
