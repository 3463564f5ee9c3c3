import type { Sample } from '../ocpp/events.js';

/**
 * Energy rules E1–E3 of the domain spec, as pure functions over one session's energy state.
 *
 * A session's energy is that of its latest valid reading. Each new register reading is read
 * two ways — absolute (session energy = value − start value) or relative (session energy =
 * value) — and the first interpretation that passes validation E3 is taken, trying the one
 * the session used last first. That single rule covers absolute, relative and mixed meters
 * (E2) without configuring the meter type.
 */

export type ReadingMode = 'absolute' | 'relative';
export type RejectReason = 'stale_time' | 'energy_decrease' | 'exceeds_power';

export interface EnergyState {
  /** The register value at the start (meterStart), Wh; null until known. */
  readonly startWh: number | null;
  /** Timestamp of the latest valid reading, epoch ms. */
  readonly lastTs: number;
  /** Session energy at the latest valid reading, Wh. */
  readonly energyWh: number;
  /** The interpretation the latest valid reading passed under. */
  readonly mode: ReadingMode;
}

export type Verdict =
  | {
      readonly valid: true;
      readonly energyWh: number;
      readonly mode: ReadingMode;
      readonly startWh?: number;
    }
  | { readonly valid: false; readonly reason: RejectReason };

/** `meterStartWh` null: unknown until the first register reading (2.0.1 has no meterStart). */
export function startEnergy(meterStartWh: number | null, ts: number): EnergyState {
  return { startWh: meterStartWh, lastTs: ts, energyWh: 0, mode: 'absolute' };
}

const MS_PER_HOUR = 3_600_000;
/** Slack for binary rounding of Wh values read from decimal text (well below 1 mWh). */
const EPSILON_WH = 1e-6;

/**
 * E3: the reading is not older than the latest valid one, and the energy it adds is at least
 * zero and at most max power × elapsed time (a zero gap allows zero energy only).
 */
function check(
  state: EnergyState,
  energyWh: number,
  ts: number,
  maxPowerW: number,
): RejectReason | null {
  const added = energyWh - state.energyWh;
  if (added < -EPSILON_WH) return 'energy_decrease';
  const allowed = (maxPowerW * (ts - state.lastTs)) / MS_PER_HOUR;
  if (added > allowed + EPSILON_WH) return 'exceeds_power';
  return null;
}

/** Judge a register reading (Energy.Active.Import.Register, normalized to Wh). */
export function judgeRegister(
  state: EnergyState,
  valueWh: number,
  ts: number,
  maxPowerW: number,
): Verdict {
  if (!Number.isFinite(valueWh)) return { valid: false, reason: 'energy_decrease' };
  if (ts < state.lastTs) return { valid: false, reason: 'stale_time' };
  // No start value (2.0.1 has no meterStart): the first register reading is the start.
  if (state.startWh === null)
    return { valid: true, energyWh: 0, mode: 'absolute', startWh: valueWh };
  const order: readonly ReadingMode[] =
    state.mode === 'absolute' ? ['absolute', 'relative'] : ['relative', 'absolute'];
  let firstReason: RejectReason | null = null;
  for (const mode of order) {
    const energyWh = roundWh(mode === 'absolute' ? valueWh - state.startWh : valueWh);
    const reason = check(state, energyWh, ts, maxPowerW);
    if (reason === null) return { valid: true, energyWh, mode };
    firstReason ??= reason;
  }
  // The reason reported is the one of the interpretation the session was using.
  return { valid: false, reason: firstReason ?? 'energy_decrease' };
}

/** Judge an interval reading (Energy.Active.Import.Interval): energy added since the last one. */
export function judgeInterval(
  state: EnergyState,
  intervalWh: number,
  ts: number,
  maxPowerW: number,
): Verdict {
  if (!Number.isFinite(intervalWh)) return { valid: false, reason: 'energy_decrease' };
  if (ts < state.lastTs) return { valid: false, reason: 'stale_time' };
  const energyWh = roundWh(state.energyWh + intervalWh);
  const reason = check(state, energyWh, ts, maxPowerW);
  return reason === null ? { valid: true, energyWh, mode: state.mode } : { valid: false, reason };
}

export function applyVerdict(state: EnergyState, verdict: Verdict, ts: number): EnergyState {
  if (!verdict.valid) return state;
  return {
    startWh: verdict.startWh ?? state.startWh,
    lastTs: ts,
    energyWh: verdict.energyWh,
    mode: verdict.mode,
  };
}

/** Wh values are kept to the milliwatt-hour so that binary noise never reaches a comparison. */
function roundWh(wh: number): number {
  return Math.round(wh * 1000) / 1000;
}

export const REGISTER = 'Energy.Active.Import.Register';
export const INTERVAL = 'Energy.Active.Import.Interval';

export interface EnergyReading {
  readonly kind: 'register' | 'interval';
  readonly valueWh: number;
  readonly ts: number;
}

/**
 * E1: the energy reading among the samples of one meterValue (one timestamp). The register
 * is preferred over the interval; a total (no phase) over per-phase values, which are summed
 * when no total is sent.
 */
export function energyReading(samples: readonly Sample[]): EnergyReading | null {
  return pick(samples, REGISTER, 'register') ?? pick(samples, INTERVAL, 'interval');
}

function pick(
  samples: readonly Sample[],
  measurand: string,
  kind: EnergyReading['kind'],
): EnergyReading | null {
  let phaseSum = 0;
  let phases = 0;
  let ts = 0;
  for (const sample of samples) {
    if (sample.measurand !== measurand) continue;
    // A signature sent without its value (1.6 SignedData alone) is no reading.
    if (sample.signed !== undefined && Number.isNaN(sample.value)) continue;
    if (sample.phase === '') return { kind, valueWh: sample.value, ts: sample.ts };
    // Line-to-neutral and line values are summed; N (the neutral conductor) carries no energy of its own.
    if (sample.phase !== 'N') {
      phaseSum += sample.value;
      phases += 1;
      ts = sample.ts;
    }
  }
  return phases > 0 ? { kind, valueWh: phaseSum, ts } : null;
}
