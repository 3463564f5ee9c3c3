import { expect } from 'vitest';
import { aMeterValues, aStartTransaction, aStopTransaction, at } from './builders.js';
import type { TestCharger } from './ocpp-client.js';

/**
 * Drives one OCPP 1.6 session: StartTransaction with the first reading as meterStart,
 * MeterValues for the middle ones, StopTransaction with the last as meterStop. Readings are
 * [Wh, seconds after the test epoch]. Returns the transaction id.
 */
export async function driveSession(
  charger: TestCharger,
  readings: ReadonlyArray<readonly [number, number]>,
  options: { connectorId?: number; idTag?: string } = {},
): Promise<number> {
  const { connectorId = 1, idTag = 'TAG' } = options;
  const [first, ...rest] = readings;
  const last = rest.pop()!;
  const started = await charger.call(
    'StartTransaction',
    aStartTransaction({ connectorId, idTag, meterStart: first![0], timestamp: at(first![1]) }),
  );
  if (!started.ok) throw new Error(started.description);
  const transactionId = started.payload['transactionId'] as number;
  for (const [wh, seconds] of rest) {
    expect(
      await charger.call('MeterValues', aMeterValues({ connectorId, transactionId, wh, seconds })),
    ).toEqual({ ok: true, payload: {} });
  }
  const stopped = await charger.call(
    'StopTransaction',
    aStopTransaction({ transactionId, meterStop: last[0], timestamp: at(last[1]) }),
  );
  expect(stopped.ok).toBe(true);
  return transactionId;
}

/**
 * One 1.6 session per charger, all at once: start (meterStart 0, the charger's own token),
 * `readings` MeterValues of 10 Wh every 10 s (3.6 kW), then a stop at `readings × 10 + 10` Wh.
 * `midway` runs once, when the first charger is halfway through (to inject a fault under load).
 * Every call must be acknowledged. Returns the energy each session must end with.
 */
export async function driveSessionsUnderLoad(
  chargers: ReadonlyArray<{ readonly cp: TestCharger; readonly token: string }>,
  readings: number,
  midway: () => Promise<void>,
): Promise<number> {
  const transactions = await Promise.all(
    chargers.map(async ({ cp, token }) => {
      const started = await cp.call(
        'StartTransaction',
        aStartTransaction({ idTag: token, meterStart: 0 }),
      );
      if (!started.ok) throw new Error(started.description);
      return started.payload['transactionId'] as number;
    }),
  );
  let faulted = false;
  await Promise.all(
    chargers.map(async ({ cp }, i) => {
      const transactionId = transactions[i]!;
      for (let n = 1; n <= readings; n++) {
        if (i === 0 && n === readings / 2 && !faulted) {
          faulted = true;
          await midway();
        }
        const answer = await cp.call(
          'MeterValues',
          aMeterValues({ transactionId, wh: n * 10, seconds: n * 10 }),
        );
        expect(answer.ok).toBe(true);
      }
      const end = readings * 10 + 10;
      const stopped = await cp.call(
        'StopTransaction',
        aStopTransaction({ transactionId, meterStop: end, timestamp: at(end) }),
      );
      expect(stopped.ok).toBe(true);
      cp.close();
    }),
  );
  return readings * 10 + 10;
}
