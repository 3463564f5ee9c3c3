import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Sample } from '../../src/ocpp/events.js';
import {
  applyVerdict,
  energyReading,
  judgeInterval,
  judgeRegister,
  startEnergy,
  type EnergyState,
  type Verdict,
} from '../../src/sessions/energy.js';
import { E4_MAX_POWER_W, E4_SCENARIOS } from '../fixtures/e4-scenarios.js';

const T0 = Date.parse('2026-11-20T08:00:00Z');

/** Runs readings [Wh, s] through E2/E3; the first is the start. */
function run(readings: ReadonlyArray<readonly [number, number]>, maxPowerW = E4_MAX_POWER_W) {
  const [first, ...rest] = readings;
  let state = startEnergy(first![0], T0 + first![1] * 1000);
  const verdicts: Verdict[] = [];
  for (const [wh, s] of rest) {
    const ts = T0 + s * 1000;
    const verdict = judgeRegister(state, wh, ts, maxPowerW);
    verdicts.push(verdict);
    state = applyVerdict(state, verdict, ts);
  }
  return { state, verdicts };
}

describe('E4 the nine scenarios of the seed', () => {
  for (const scenario of E4_SCENARIOS) {
    it(`E4.${scenario.n} ends with ${scenario.energyWh} Wh`, () => {
      const { state, verdicts } = run(scenario.readings);
      expect(state.energyWh).toBe(scenario.energyWh);
      const invalid = verdicts.flatMap((v, i) => (v.valid ? [] : [i + 1]));
      expect(invalid).toEqual(scenario.invalid);
    });
  }

  it('E3 names the reason of each rejection', () => {
    expect(run(E4_SCENARIOS[3]!.readings).verdicts[1]).toEqual({
      valid: false,
      reason: 'energy_decrease',
    });
    expect(run(E4_SCENARIOS[5]!.readings).verdicts[0]).toEqual({
      valid: false,
      reason: 'stale_time',
    });
    expect(run(E4_SCENARIOS[6]!.readings).verdicts[1]).toEqual({
      valid: false,
      reason: 'stale_time',
    });
    expect(run(E4_SCENARIOS[7]!.readings).verdicts[0]).toEqual({
      valid: false,
      reason: 'exceeds_power',
    });
  });
});

describe('E2 reading types', () => {
  it('E2 a relative meter is read as relative from its first reading on', () => {
    const { state } = run([
      [5000, 0],
      [100, 30],
      [200, 60],
    ]);
    expect(state).toMatchObject({ energyWh: 200, mode: 'relative' });
  });

  it('E2 a mixed meter returns to absolute at the stop', () => {
    const { state } = run(E4_SCENARIOS[2]!.readings);
    expect(state).toMatchObject({ energyWh: 75, mode: 'absolute' });
  });

  it('E2 the interpretation used last is tried first', () => {
    // 30 Wh after a relative 25 Wh: relative (+5 Wh) wins over absolute (30 − 0 start).
    const state: EnergyState = { startWh: 0, lastTs: T0, energyWh: 25, mode: 'relative' };
    expect(judgeRegister(state, 30, T0 + 30_000, E4_MAX_POWER_W)).toEqual({
      valid: true,
      energyWh: 30,
      mode: 'relative',
    });
  });
});

describe('E3 edge cases', () => {
  const state = startEnergy(1000, T0);

  it('E3.2 a zero time gap allows zero added energy only', () => {
    expect(judgeRegister(state, 1000, T0, E4_MAX_POWER_W).valid).toBe(true);
    expect(judgeRegister(state, 1001, T0, E4_MAX_POWER_W)).toEqual({
      valid: false,
      reason: 'exceeds_power',
    });
  });

  it('E3.2 exactly max power × time is allowed, a milliwatt-hour more is not', () => {
    expect(judgeRegister(state, 1250, T0 + 30_000, E4_MAX_POWER_W).valid).toBe(true);
    expect(judgeRegister(state, 1250.01, T0 + 30_000, E4_MAX_POWER_W).valid).toBe(false);
  });

  it('E3.1 a reading at the same time as the latest valid one is not stale', () => {
    expect(judgeRegister(state, 1000, T0, E4_MAX_POWER_W).valid).toBe(true);
    expect(judgeRegister(state, 1000, T0 - 1, E4_MAX_POWER_W)).toEqual({
      valid: false,
      reason: 'stale_time',
    });
  });

  it('E3 a value that is not a number is rejected, the session unchanged', () => {
    const verdict = judgeRegister(state, Number.NaN, T0 + 1000, E4_MAX_POWER_W);
    expect(verdict.valid).toBe(false);
    expect(applyVerdict(state, verdict, T0 + 1000)).toBe(state);
  });

  it('E1 interval readings add to the session energy and are bounded the same way', () => {
    const first = judgeInterval(state, 100, T0 + 30_000, E4_MAX_POWER_W);
    expect(first).toEqual({ valid: true, energyWh: 100, mode: 'absolute' });
    const next = applyVerdict(state, first, T0 + 30_000);
    expect(judgeInterval(next, 300, T0 + 60_000, E4_MAX_POWER_W)).toEqual({
      valid: false,
      reason: 'exceeds_power',
    });
    expect(judgeInterval(next, -1, T0 + 60_000, E4_MAX_POWER_W)).toEqual({
      valid: false,
      reason: 'energy_decrease',
    });
  });
});

describe('E1 choosing the energy reading of a meterValue', () => {
  const sample = (over: Partial<Sample>): Sample => ({
    ts: T0,
    measurand: 'Energy.Active.Import.Register',
    phase: '',
    value: 0,
    unit: 'Wh',
    context: 'Sample.Periodic',
    ...over,
  });

  it('E1 prefers the register total', () => {
    expect(
      energyReading([
        sample({ measurand: 'Power.Active.Import', value: 7000 }),
        sample({ value: 42 }),
      ]),
    ).toEqual({ kind: 'register', valueWh: 42, ts: T0 });
  });

  it('E1 sums per-phase values when no total is sent (N excluded)', () => {
    const phases = ['L1', 'L2', 'L3', 'N'].map((phase, i) =>
      sample({ phase, value: (i + 1) * 10 }),
    );
    expect(energyReading(phases)).toEqual({ kind: 'register', valueWh: 60, ts: T0 });
  });

  it('E1 falls back to the interval measurand, and finds none without energy', () => {
    expect(
      energyReading([sample({ measurand: 'Energy.Active.Import.Interval', value: 5 })])?.kind,
    ).toBe('interval');
    expect(energyReading([sample({ measurand: 'SoC', value: 50 })])).toBeNull();
  });
});

describe('E3 properties', () => {
  const readings = fc.array(
    fc.tuple(fc.integer({ min: -50_000, max: 200_000 }), fc.integer({ min: -120, max: 600 })),
    { maxLength: 40 },
  );

  it('E3 session energy never decreases and never outruns max power', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 10_000_000 }),
        fc.integer({ min: 1000, max: 350_000 }),
        readings,
        (start, maxPowerW, steps) => {
          let state = startEnergy(start, T0);
          let clock = T0;
          for (const [delta, seconds] of steps) {
            clock += seconds * 1000;
            const before = state;
            const verdict = judgeRegister(state, start + delta, clock, maxPowerW);
            state = applyVerdict(state, verdict, clock);
            if (verdict.valid) {
              expect(state.energyWh).toBeGreaterThanOrEqual(before.energyWh);
              expect(state.lastTs).toBeGreaterThanOrEqual(before.lastTs);
              const allowed = (maxPowerW * (state.lastTs - before.lastTs)) / 3_600_000;
              expect(state.energyWh - before.energyWh).toBeLessThanOrEqual(allowed + 1e-3);
            } else {
              expect(state).toBe(before);
            }
          }
        },
      ),
    );
  });
});
