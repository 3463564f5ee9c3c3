/** Builders of OCPP 1.6 payloads with overrides: `aMeterValues({ connectorId: 2 })`. */

export const T0 = Date.parse('2026-11-20T08:00:00.000Z');
export const at = (seconds: number): string => new Date(T0 + seconds * 1000).toISOString();

export function aStartTransaction(overrides: Record<string, unknown> = {}) {
  return { connectorId: 1, idTag: 'TOKEN-1', meterStart: 0, timestamp: at(0), ...overrides };
}

export function aMeterValues(
  overrides: {
    connectorId?: number;
    transactionId?: number;
    wh?: number;
    seconds?: number;
    extra?: object[];
  } = {},
) {
  const { connectorId = 1, transactionId, wh = 0, seconds = 0, extra = [] } = overrides;
  return {
    connectorId,
    ...(transactionId === undefined ? {} : { transactionId }),
    meterValue: [
      {
        timestamp: at(seconds),
        sampledValue: [
          {
            value: String(wh),
            measurand: 'Energy.Active.Import.Register',
            unit: 'Wh',
            context: 'Sample.Periodic',
          },
          ...extra,
        ],
      },
    ],
  };
}

export function aStopTransaction(overrides: Record<string, unknown> = {}) {
  return {
    transactionId: 1,
    meterStop: 0,
    timestamp: at(60),
    reason: 'EVDisconnected',
    ...overrides,
  };
}

export function aBootNotification(overrides: Record<string, unknown> = {}) {
  return { chargePointVendor: 'chargestream-test', chargePointModel: 'e2e', ...overrides };
}
