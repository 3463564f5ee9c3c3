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
