import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import {
  addObservation,
  compileTariff,
  finish,
  runningCost,
  runningTotals,
  startRating,
  type CompiledTariff,
  type Observation,
  type TariffInput,
} from '../../src/rating/index.js';

/**
 * Rater micro benchmark: readings per second through the incremental, pure path
 * (`addObservation` per reading, as the workers run it), for a flat ENERGY tariff and for a
 * complex one (time of day, power bands, duration-limited free parking, step sizes).
 * Sessions are 2,000 readings 15 s apart (8 h 20 min), crossing the evening and night
 * switches; the figure is per core (one thread). Also with the running cost after every
 * reading, whole (`runningCost`, lines and VAT per rate) and as totals alone (`runningTotals`,
 * what the workers compute once a batch for each session it touched, R5.1).
 *
 *   npm run build && node dist/bench/micro/rating.bench.js [readings]
 */

const READINGS = Number(process.argv[2] ?? 2_000_000);
const PER_SESSION = 2_000;
const INTERVAL_MS = 15_000;
const ZONE = 'Europe/Amsterdam';

const simple: TariffInput = {
  id: 'simple',
  currency: 'EUR',
  elements: [{ components: [{ type: 'ENERGY', price: '0.30', vat: '21' }] }],
};

const complex: TariffInput = {
  id: 'complex',
  currency: 'EUR',
  elements: [
    // Free parking for the first 30 min, then 6.00/h.
    {
      components: [{ type: 'PARKING_TIME', price: '0', vat: '21' }],
      restrictions: { maxDurationS: 1800 },
    },
    {
      components: [{ type: 'PARKING_TIME', price: '6.00', vat: '21', stepSize: 300 }],
      restrictions: { minDurationS: 1800 },
    },
    // High-power charging in the evening peak.
    {
      components: [
        { type: 'ENERGY', price: '0.69', vat: '21', stepSize: 100 },
        { type: 'TIME', price: '1.20', vat: '21', stepSize: 60 },
      ],
      restrictions: { startTime: '17:00', endTime: '21:00', minPowerKw: '50' },
    },
    // High power outside the peak.
    {
      components: [{ type: 'ENERGY', price: '0.59', vat: '21', stepSize: 100 }],
      restrictions: { minPowerKw: '50' },
    },
    // AC / low power at night.
    {
      components: [
        { type: 'ENERGY', price: '0.29', vat: '21', stepSize: 100 },
        { type: 'TIME', price: '0.60', vat: '21', stepSize: 60 },
      ],
      restrictions: { startTime: '22:00', endTime: '07:00', maxPowerKw: '22' },
    },
    {
      components: [
        { type: 'FLAT', price: '0.35', vat: '21' },
        { type: 'ENERGY', price: '0.45', vat: '21', stepSize: 100 },
        { type: 'TIME', price: '0.90', vat: '21', stepSize: 60 },
      ],
    },
  ],
  maxPrice: { exclVat: '250.00', inclVat: '302.50' },
};

/** Charging with a noisy power curve crossing the 22 and 50 kW bands, parking for the last 20 %. */
function timeline(startTs: number, withPower: boolean): Observation[] {
  const out: Observation[] = [];
  let wh = 0;
  let seed = 42;
  const noise = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
    return seed / 2_147_483_648 - 0.5;
  };
  for (let i = 0; i < PER_SESSION; i++) {
    const parking = i > PER_SESSION * 0.8;
    const powerW = parking ? 0 : Math.max(0, 60_000 - i * 40 + noise() * 8_000);
    const obs: Observation = {
      ts: startTs + i * INTERVAL_MS,
      energyWh: Math.round(wh * 1000) / 1000,
      state: parking ? 'parking' : 'charging',
      ...(withPower ? { powerW, currentA: powerW / 400 } : {}),
    };
    out.push(obs);
    wh += (powerW * INTERVAL_MS) / 3_600_000;
  }
  return out;
}

interface Figures {
  readonly readingsPerSecond: number;
  readonly periodsPerSession: number;
  readonly total: string;
}

function run(
  tariff: CompiledTariff,
  readings: readonly Observation[],
  sessions: number,
  live: 'none' | 'cost' | 'totals',
): Figures {
  const first = readings[0];
  const last = readings.at(-1);
  if (first === undefined || last === undefined) throw new Error('empty timeline');
  let total = '';
  let periods = 0;
  const t0 = performance.now();
  for (let s = 0; s < sessions; s++) {
    let state = startRating(tariff, first.ts);
    for (const reading of readings) {
      state = addObservation(state, reading);
      if (live === 'cost') total = runningCost(state).totalInclVat;
      else if (live === 'totals') total = runningTotals(state).totalInclVat;
    }
    const cdr = finish(state, last.ts + INTERVAL_MS);
    total = cdr.totalInclVat;
    periods = cdr.chargingPeriods.length;
  }
  const seconds = (performance.now() - t0) / 1000;
  return {
    readingsPerSecond: Math.round((sessions * readings.length) / seconds),
    periodsPerSession: periods,
    total,
  };
}

const results: Record<
  string,
  { readingsPerSecond: number; withRunningCost: number; withRunningTotals: number }
> = {};

function bench(name: string, tariff: CompiledTariff, readings: Observation[]): void {
  // Each mode after a warm-up of a tenth as many sessions.
  const measured = (sessions: number, live: Parameters<typeof run>[3]): Figures => {
    run(tariff, readings, Math.max(1, Math.round(sessions / 10)), live);
    return run(tariff, readings, sessions, live);
  };
  const sessions = Math.max(1, Math.round(READINGS / readings.length));
  const liveSessions = Math.max(1, Math.round(sessions / 20));
  const rating = measured(sessions, 'none');
  const live = measured(liveSessions, 'cost');
  const totals = measured(liveSessions, 'totals');
  results[name] = {
    readingsPerSecond: rating.readingsPerSecond,
    withRunningCost: live.readingsPerSecond,
    withRunningTotals: totals.readingsPerSecond,
  };
  const perSecond = (f: Figures) => f.readingsPerSecond.toLocaleString('en').padStart(9);
  console.log(
    `${name.padEnd(8)} ${rating.readingsPerSecond.toLocaleString('en').padStart(11)} readings/s` +
      ` (addObservation)  ${perSecond(live)} readings/s (+ runningCost each)` +
      `  ${perSecond(totals)} readings/s (+ runningTotals each)` +
      `  periods/session ${rating.periodsPerSession}, total ${rating.total}`,
  );
}

// Monday 2025-03-10 15:00 Amsterdam: through the evening peak into the night.
const start = Date.UTC(2025, 2, 10, 14);
console.log(`rater, ${READINGS.toLocaleString('en')} readings per case, node ${process.version}`);
bench('simple', compileTariff(simple, ZONE), timeline(start, false));
bench('complex', compileTariff(complex, ZONE), timeline(start, true));
const out = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bench', 'out');
mkdirSync(out, { recursive: true });
writeFileSync(
  join(out, 'rating-bench.json'),
  `${JSON.stringify({ date: new Date().toISOString(), node: process.version, readings: READINGS, results }, null, 2)}\n`,
);
