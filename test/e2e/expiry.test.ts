import { describe, expect, it } from 'vitest';
import {
  ADMIN_KEY,
  aCharger,
  aMeterValues,
  aNetwork,
  aStartTransaction,
  tokenOf,
  withTokenPerCharger,
} from '../helpers/builders.js';
import { eventually, sql, useEngine } from '../helpers/engine.js';
import { TestCharger } from '../helpers/ocpp-client.js';

const run = useEngine(
  withTokenPerCharger(
    aNetwork({
      settings: { defaultTariff: 't', ongoingSessionExpirationS: 2, readySessionExpirationS: 1 },
      chargers: [aCharger('QUIET-1'), aCharger('BUSY-1'), aCharger('READY-1'), aCharger('READY-2')],
    }),
  ),
);

describe('ongoing-session expiration', () => {
  it('S3 a session silent for the expiration is rated and closed with its last valid reading (idle_timeout); an active one is not', async () => {
    const quiet = await TestCharger.connect(`${run.engine.ocppUrl}/QUIET-1`);
    const busy = await TestCharger.connect(`${run.engine.ocppUrl}/BUSY-1`);
    const start = async (cp: TestCharger, chargerId: string) => {
      const answer = await cp.call(
        'StartTransaction',
        aStartTransaction({ idTag: tokenOf(chargerId), meterStart: 1000 }),
      );
      if (!answer.ok) throw new Error(answer.description);
      return answer.payload['transactionId'] as number;
    };
    const quietTx = await start(quiet, 'QUIET-1');
    const busyTx = await start(busy, 'BUSY-1');
    expect(
      (
        await quiet.call(
          'MeterValues',
          aMeterValues({ transactionId: quietTx, wh: 3000, seconds: 600 }),
        )
      ).ok,
    ).toBe(true);
    // BUSY-1 keeps reporting every 500 ms for 4 s: longer than the expiration, never silent for it.
    for (let i = 1; i <= 8; i++) {
      expect(
        (
          await busy.call(
            'MeterValues',
            aMeterValues({ transactionId: busyTx, wh: 1000 + i * 10, seconds: i * 10 }),
          )
        ).ok,
      ).toBe(true);
      await new Promise((r) => setTimeout(r, 500));
    }
    const [expired] = await eventually(
      () =>
        sql<{ status: string; reason: string; energy: string; ended: string }>(
          run.engine,
          ADMIN_KEY,
          `SELECT status, reason, toString(energy_wh) AS energy, toString(ended_at) AS ended FROM sessions WHERE session_id = 'QUIET-1-${quietTx}'`,
        ),
      (rows) => rows[0]?.status === 'rated',
      15_000,
    );
    expect(expired).toMatchObject({
      status: 'rated',
      reason: 'idle_timeout',
      energy: '2000',
      ended: '2026-11-20 08:10:00.000',
    });
    const [cdr] = await sql<{ total: string }>(
      run.engine,
      ADMIN_KEY,
      `SELECT toString(total_incl_vat) AS total FROM cdrs WHERE session_id = 'QUIET-1-${quietTx}'`,
    );
    expect(cdr?.total).toBe('0.73');
    const [active] = await sql<{ status: string }>(
      run.engine,
      ADMIN_KEY,
      `SELECT status FROM sessions WHERE session_id = 'BUSY-1-${busyTx}'`,
    );
    expect(active?.status).toBe('in_progress');
    quiet.close();
    busy.close();
  }, 40_000);

  it('S2 an Authorize with no start: a ready session closed start_timeout; with its start: closed started, the session runs', async () => {
    const idle = await TestCharger.connect(`${run.engine.ocppUrl}/READY-1`);
    expect(await idle.call('Authorize', { idTag: tokenOf('READY-1') })).toMatchObject({
      ok: true,
      payload: { idTagInfo: { status: 'Accepted' } },
    });
    const prompt = await TestCharger.connect(`${run.engine.ocppUrl}/READY-2`);
    expect((await prompt.call('Authorize', { idTag: tokenOf('READY-2') })).ok).toBe(true);
    expect(
      (
        await prompt.call(
          'StartTransaction',
          aStartTransaction({ idTag: tokenOf('READY-2'), meterStart: 0 }),
        )
      ).ok,
    ).toBe(true);
    const rows = await eventually(
      () =>
        sql<{ charger_id: string; status: string; reason: string }>(
          run.engine,
          ADMIN_KEY,
          "SELECT charger_id, status, reason FROM sessions WHERE charger_id LIKE 'READY-%' ORDER BY charger_id, started_at, session_id",
        ),
      (r) => r.some((x) => x.charger_id === 'READY-1' && x.status === 'closed'),
      15_000,
    );
    expect(rows).toEqual([
      { charger_id: 'READY-1', status: 'closed', reason: 'start_timeout' },
      { charger_id: 'READY-2', status: 'in_progress', reason: '' },
      { charger_id: 'READY-2', status: 'closed', reason: 'started' },
    ]);
    idle.close();
    prompt.close();
  }, 30_000);
});
