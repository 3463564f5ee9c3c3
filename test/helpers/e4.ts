import { expect } from 'vitest';
import { E4_SCENARIOS } from '../fixtures/e4-scenarios.js';
import { ADMIN_KEY, tokenOf } from './builders.js';
import { eventually, sql, type RunningEngine } from './engine.js';
import { TestCharger } from './ocpp-client.js';
import { driveSession } from './sessions.js';

/**
 * The nine E4 sessions at once on chargers `<prefix>1` … `<prefix>9` (each with its own card),
 * spread over the gateways, then their energies read through `reader` once all are rated:
 * each must be the table's.
 */
export async function expectE4Energies(
  gateways: readonly RunningEngine[],
  reader: RunningEngine,
  prefix: string,
): Promise<void> {
  await Promise.all(
    E4_SCENARIOS.map(async (s) => {
      const id = `${prefix}${s.n}`;
      const charger = await TestCharger.connect(
        `${gateways[s.n % gateways.length]!.ocppUrl}/${id}`,
      );
      await driveSession(charger, s.readings, { idTag: tokenOf(id) });
      charger.close();
    }),
  );
  const rows = await eventually(
    () =>
      sql<{ charger_id: string; status: string; energy: string }>(
        reader,
        ADMIN_KEY,
        `SELECT charger_id, status, toString(energy_wh) AS energy FROM sessions WHERE charger_id LIKE '${prefix}%' ORDER BY charger_id`,
      ),
    (r) => r.length === 9 && r.every((s) => s.status === 'rated'),
    60_000,
  );
  for (const s of E4_SCENARIOS)
    expect(Number(rows.find((r) => r.charger_id === `${prefix}${s.n}`)?.energy), `E4.${s.n}`).toBe(
      s.energyWh,
    );
}
