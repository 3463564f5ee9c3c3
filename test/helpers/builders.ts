/** Builders of OCPP 1.6 payloads with overrides: `aMeterValues({ connectorId: 2 })`. */

export const T0 = Date.parse('2026-11-20T08:00:00.000Z');
export const at = (seconds: number): string => new Date(T0 + seconds * 1000).toISOString();

/**
 * A start `spanMs` ago, that span all in the current calendar month (UTC): for sessions a
 * correction may cancel (C1: only those of the current month). In a month's first `spanMs` it
 * waits until the month is that old.
 */
export async function startInThisMonth(spanMs: number): Promise<number> {
  const now = new Date();
  const monthStart = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
  const wait = monthStart + spanMs + 1_000 - now.getTime();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  return Date.now() - spanMs;
}

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

/** The admin key of `aNetwork()`. */
export const ADMIN_KEY = 'test-admin-key-0123456789';

/** A charger of site `s` with one 22 kW connector unless told otherwise. */
export function aCharger(id: string, overrides: Record<string, unknown> = {}) {
  return { id, site: 's', connectors: [{ id: 1, maxPowerW: 22_000 }], ...overrides };
}

/**
 * A small network: operator `o`, site `s`, tariff `t` (ENERGY 0.30 EUR/kWh + 22 % VAT, the
 * default), customer `c` with token `TAG`, an admin key; overrides replace whole sections.
 */
export function aNetwork(overrides: Record<string, unknown> = {}) {
  return {
    settings: { defaultTariff: 't' },
    organizations: [{ id: 'o', type: 'cpo' }],
    sites: [{ id: 's', operator: 'o' }],
    chargers: [aCharger('CP1')],
    tariffs: [
      {
        id: 't',
        currency: 'EUR',
        elements: [{ components: [{ type: 'ENERGY', price: '0.30', vat: '22' }] }],
      },
    ],
    customers: [{ id: 'c', organization: 'o', paymentType: 'postpaid' }],
    tokens: [{ id: 'TAG', type: 'RFID', customer: 'c' }],
    apiKeys: [{ key: ADMIN_KEY, role: 'admin', organization: 'o' }],
    ...overrides,
  };
}

/** One token per charger, `TAG-<chargerId>` (customer `c`): a token charges one car at a time (A2). */
export const tokenOf = (chargerId: string): string => `TAG-${chargerId}`;

export function withTokenPerCharger(network: ReturnType<typeof aNetwork>) {
  return {
    ...network,
    tokens: [
      ...(network['tokens'] as object[]),
      ...(network['chargers'] as Array<{ id: string }>).map((c) => ({
        id: tokenOf(c.id),
        type: 'RFID',
        customer: 'c',
      })),
    ],
  };
}
