import { randomBytes } from 'node:crypto';

/**
 * The small built-in network `npm start` runs when there is no `network.yaml`: one operator,
 * two sites, 300 chargers with two 22 kW connectors each, a per-kWh tariff, a driver (and a
 * card) per charger, so that simulated sessions run at once without sharing a card (A2).
 * Its API key is made fresh at every start and printed, so no key lives in the source.
 */
export function demoNetwork(): { network: unknown; apiKey: string } {
  const apiKey = randomBytes(24).toString('base64url');
  const chargers = Array.from({ length: 300 }, (_, i) => ({
    id: `DEMO-${String(i + 1).padStart(3, '0')}`,
    site: i % 2 === 0 ? 'site-ljubljana' : 'site-maribor',
    connectors: [
      { id: 1, maxPowerW: 22_000 },
      { id: 2, maxPowerW: 22_000 },
    ],
  }));
  const customers = Array.from({ length: chargers.length }, (_, i) => ({
    id: `driver-${i + 1}`,
    organization: 'emp-demo',
    paymentType: 'postpaid',
  }));
  const tokens = customers.map((c, i) => ({
    id: `DEMO${String(i + 1).padStart(4, '0')}`,
    type: 'RFID',
    customer: c.id,
  }));
  return {
    apiKey,
    network: {
      settings: { currency: 'EUR', defaultTariff: 't-std' },
      organizations: [
        { id: 'cpo-demo', type: 'cpo' },
        { id: 'emp-demo', type: 'emp', parent: null },
      ],
      sites: [
        { id: 'site-ljubljana', operator: 'cpo-demo', timezone: 'Europe/Ljubljana' },
        { id: 'site-maribor', operator: 'cpo-demo', timezone: 'Europe/Ljubljana' },
      ],
      chargers,
      tariffs: [
        {
          id: 't-std',
          currency: 'EUR',
          elements: [{ components: [{ type: 'ENERGY', price: '0.30', vat: '22', stepSize: 1 }] }],
        },
      ],
      customers,
      tokens,
      apiKeys: [{ key: apiKey, role: 'admin', organization: 'cpo-demo' }],
    },
  };
}
