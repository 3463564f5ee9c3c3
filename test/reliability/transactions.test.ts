import WebSocket from 'ws';
import { describe, expect, it } from 'vitest';
import {
  aMeterValues,
  aStartTransaction,
  aStopTransaction,
  at,
  aNetwork,
  aCharger,
  ADMIN_KEY,
  tokenOf,
  withTokenPerCharger,
} from '../helpers/builders.js';
import { eventually, sql, useEngine } from '../helpers/engine.js';
import { TestCharger } from '../helpers/ocpp-client.js';
import { recordFigure } from './figures.js';

/** Gateway scenarios of reliability.md about transactions and late answers, with their figures. */
const KEY = ADMIN_KEY;
const network = withTokenPerCharger(
  aNetwork({ chargers: ['T1', 'T2', 'T3', 'T4'].map((id) => aCharger(id)) }),
);

const run = useEngine(network);

async function start(charger: TestCharger, chargerId: string, meterStart = 1000): Promise<number> {
  const answer = await charger.call(
    'StartTransaction',
    aStartTransaction({ idTag: tokenOf(chargerId), meterStart }),
  );
  if (!answer.ok) throw new Error(answer.description);
  return answer.payload['transactionId'] as number;
}

describe('transactions at the gateway', () => {
  it('reliability.md 2: a retried StopTransaction yields exactly one CDR', async () => {
    const cp = await TestCharger.connect(`${run.engine.ocppUrl}/T1`);
    const tx = await start(cp, 'T1');
    const stop = aStopTransaction({ transactionId: tx, meterStop: 3000, timestamp: at(1800) });
    for (let i = 0; i < 3; i++) expect((await cp.call('StopTransaction', stop)).ok).toBe(true);
    cp.close();
    const rows = await eventually(
      () =>
        sql<{ n: string }>(
          run.engine,
          KEY,
          `SELECT toString(count()) AS n FROM cdrs WHERE session_id = 'T1-${tx}'`,
        ),
      (r) => r[0]?.n === '1',
    );
    expect(rows[0]?.n).toBe('1');
    await new Promise((r) => setTimeout(r, 300));
    const [again] = await sql<{ n: string }>(
      run.engine,
      KEY,
      `SELECT toString(count()) AS n FROM cdrs WHERE session_id = 'T1-${tx}'`,
    );
    recordFigure(2, 'CDRs per session after 3 identical stops', Number(again?.n));
    expect(again?.n).toBe('1');
  });

  it("reliability.md 3: -1, unknown and another charger's ids are acknowledged and applied to nothing", async () => {
    const victim = await TestCharger.connect(`${run.engine.ocppUrl}/T2`);
    const running = await start(victim, 'T2');
    const other = await TestCharger.connect(`${run.engine.ocppUrl}/T3`);
    for (const transactionId of [-1, 987_654_321, running]) {
      expect(
        await other.call(
          'StopTransaction',
          aStopTransaction({ transactionId, meterStop: 99_999, timestamp: at(600) }),
        ),
      ).toEqual({ ok: true, payload: {} });
      expect(
        (await other.call('MeterValues', aMeterValues({ transactionId, wh: 99_999, seconds: 600 })))
          .ok,
      ).toBe(true);
    }
    other.close();
    victim.close();
    await eventually(
      () =>
        sql<{ n: string }>(
          run.engine,
          KEY,
          "SELECT toString(count()) AS n FROM meter_readings WHERE charger_id = 'T3'",
        ),
      (r) => Number(r[0]?.n) >= 3,
    );
    const [session] = await sql<{ status: string; energy: string }>(
      run.engine,
      KEY,
      `SELECT status, toString(energy_wh) AS energy FROM sessions WHERE session_id = 'T2-${running}'`,
    );
    const [applied] = await sql<{ n: string }>(
      run.engine,
      KEY,
      "SELECT toString(count()) AS n FROM cdrs WHERE charger_id IN ('T2', 'T3')",
    );
    recordFigure(
      3,
      'cross-charger stops applied (-1, unknown, foreign id)',
      Number(applied?.n) + (session?.status === 'in_progress' && session.energy === '0' ? 0 : 1),
    );
    expect(session).toEqual({ status: 'in_progress', energy: '0' });
    expect(applied?.n).toBe('0');
  });

  it('reliability.md 13: an acknowledgement due after the socket closed neither crashes nor loses the event', async () => {
    const ws = new WebSocket(`${run.engine.ocppUrl}/T4`, ['ocpp1.6']);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    ws.send(
      JSON.stringify([
        2,
        'late-1',
        'StartTransaction',
        aStartTransaction({ idTag: tokenOf('T4'), meterStart: 42 }),
      ]),
    );
    ws.terminate(); // gone before the event is durable
    const rows = await eventually(
      () =>
        sql<{ status: string }>(
          run.engine,
          KEY,
          "SELECT status FROM sessions WHERE charger_id = 'T4'",
        ),
      (r) => r.length === 1,
    );
    expect(rows[0]?.status).toBe('in_progress');
    // Node prints its version after the stack of an uncaught exception or rejection.
    const uncaught = (run.engine.output().match(/^Node\.js v\d/gm) ?? []).length;
    recordFigure(13, 'uncaught exceptions after an ack due on a closed socket', uncaught);
    expect(uncaught).toBe(0);
    expect(run.engine.process.exitCode).toBeNull();
    const again = await TestCharger.connect(`${run.engine.ocppUrl}/T4`);
    expect((await again.call('Heartbeat', {})).ok).toBe(true);
    again.close();
  });

  it('reliability.md 8: identities with ":" and unknown identities are refused at the upgrade', async () => {
    await expect(
      TestCharger.connect(`${run.engine.ocppUrl}/${encodeURIComponent('T1:x')}`),
    ).rejects.toThrow('400');
    await expect(TestCharger.connect(`${run.engine.ocppUrl}/UNKNOWN-9`)).rejects.toThrow('404');
  });
});
