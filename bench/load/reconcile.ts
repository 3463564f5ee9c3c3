/**
 * Reconciles a simulator report (`chargestream simulate --report FILE`) with the store of the
 * engine it ran against: per charger, the energy of its sessions (meter stop − meter start of
 * each, as the simulator sent them) against the CDRs' `energy_wh`, the sessions against the
 * CDRs, and the periodic meter values it got acknowledged against the distinct ones in
 * `meter_readings` (a value sent again after a drop may be stored twice; it counts once).
 *
 *   node dist/bench/load/reconcile.js --report sim.json --api http://127.0.0.1:8181 --key KEY
 *
 * Exits 0 when everything matches, 1 otherwise (the first mismatches are listed).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface Report {
  perCharger: Record<
    string,
    {
      readingsAcked: number;
      sessions: number;
      stops: Array<{ meterStartWh: number; meterStopWh: number }>;
    }
  > | null;
}

const { values } = parseArgs({
  options: {
    report: { type: 'string' },
    api: { type: 'string', default: 'http://127.0.0.1:8181' },
    key: { type: 'string', default: process.env['CHARGESTREAM_API_KEY'] ?? '' },
  },
});
if (values.report === undefined) {
  process.stderr.write('reconcile: --report FILE (from chargestream simulate --report)\n');
  process.exit(2);
}
const report = JSON.parse(readFileSync(values.report, 'utf8')) as Report;
if (report.perCharger === null) {
  process.stderr.write('reconcile: the report has no per-charger totals\n');
  process.exit(2);
}

async function sql<T>(statement: string): Promise<T[]> {
  const response = await fetch(`${values.api}/api/v1/sql`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${values.key}` },
    body: statement,
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`SQL ${response.status}: ${text}`);
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as T);
}

const ids = Object.keys(report.perCharger);
const list = ids.map((id) => `'${id.replace(/'/g, "''")}'`).join(',');
const cdrs = new Map(
  (
    await sql<{ charger_id: string; n: string; wh: string }>(
      `SELECT charger_id, toString(count()) AS n, toString(sum(energy_wh)) AS wh
         FROM cdrs WHERE kind = 'debit' AND charger_id IN (${list}) GROUP BY charger_id`,
    )
  ).map((r) => [r.charger_id, r]),
);
const readings = new Map(
  (
    await sql<{ charger_id: string; n: string }>(
      `SELECT charger_id, toString(uniqExact(connector_id, ts)) AS n FROM meter_readings
        WHERE charger_id IN (${list}) AND context = 'Sample.Periodic'
          AND measurand = 'Energy.Active.Import.Register' GROUP BY charger_id`,
    )
  ).map((r) => [r.charger_id, Number(r.n)]),
);

const totals = { sessions: [0, 0], energyWh: [0, 0], readings: [0, 0] };
const mismatches: string[] = [];
for (const id of ids) {
  const sent = report.perCharger[id]!;
  const sentWh = sent.stops.reduce((n, s) => n + s.meterStopWh - s.meterStartWh, 0);
  const stored = cdrs.get(id);
  const storedWh = Number(stored?.wh ?? 0);
  const storedSessions = Number(stored?.n ?? 0);
  const storedReadings = readings.get(id) ?? 0;
  totals.sessions[0]! += sent.sessions;
  totals.sessions[1]! += storedSessions;
  totals.energyWh[0]! += sentWh;
  totals.energyWh[1]! += storedWh;
  totals.readings[0]! += sent.readingsAcked;
  totals.readings[1]! += storedReadings;
  if (
    sent.sessions !== storedSessions ||
    Math.abs(sentWh - storedWh) > 1e-6 ||
    sent.readingsAcked !== storedReadings
  ) {
    mismatches.push(
      `${id}: sessions ${sent.sessions}/${storedSessions}, Wh ${sentWh}/${storedWh}, meter values ${sent.readingsAcked}/${storedReadings}`,
    );
  }
}
console.log('                      simulator      store');
for (const [name, [a, b]] of Object.entries(totals))
  console.log(`${name.padEnd(20)} ${String(a).padStart(11)} ${String(b).padStart(10)}`);
console.log(`chargers that differ: ${mismatches.length} of ${ids.length}`);
for (const line of mismatches.slice(0, 20)) console.log(`  ${line}`);
process.exit(mismatches.length === 0 ? 0 : 1);
