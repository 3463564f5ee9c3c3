import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addStatus, durations, type StatusChange } from '../../src/sessions/durations.js';

const T0 = Date.parse('2026-11-20T08:00:00Z');
const m = (minutes: number) => T0 + minutes * 60_000;

describe('S5 duration scopes', () => {
  it('S5 charging, parking after the car is full, the charger withholding power counts as charging', () => {
    const changes: StatusChange[] = [];
    addStatus(changes, m(10), 'SuspendedEVSE');
    addStatus(changes, m(15), 'Charging');
    addStatus(changes, m(60), 'SuspendedEV');
    addStatus(changes, m(70), 'Finishing');
    expect(durations(m(0), m(80), 'Charging', changes)).toEqual({
      chargingS: 3600,
      parkingS: 1200,
      faultS: 0,
      reservationS: 0,
    });
  });

  it('S5 reservation before, a fault in between', () => {
    const changes: StatusChange[] = [];
    addStatus(changes, m(5), 'Charging');
    addStatus(changes, m(20), 'Faulted');
    addStatus(changes, m(25), 'Charging');
    expect(durations(m(0), m(30), 'Reserved', changes)).toEqual({
      chargingS: 1200,
      parkingS: 0,
      faultS: 300,
      reservationS: 300,
    });
  });

  it('S5 a status reported late lands where it happened', () => {
    const changes: StatusChange[] = [];
    addStatus(changes, m(40), 'Finishing');
    addStatus(changes, m(30), 'SuspendedEV'); // arrives after Finishing
    expect(changes.map(([, s]) => s)).toEqual(['SuspendedEV', 'Finishing']);
    expect(durations(m(0), m(50), 'Charging', changes)).toEqual({
      chargingS: 1800,
      parkingS: 1200,
      faultS: 0,
      reservationS: 0,
    });
  });

  it('S5 2.0.1: Occupied before charging is charging time, after charging parking', () => {
    const changes: StatusChange[] = [];
    addStatus(changes, m(5), 'Charging');
    addStatus(changes, m(35), 'EVConnected');
    expect(durations(m(0), m(45), 'Occupied', changes)).toEqual({
      chargingS: 2100,
      parkingS: 600,
      faultS: 0,
      reservationS: 0,
    });
  });

  it('S5 the four scopes always add up to the session duration', () => {
    const statuses = [
      'Charging',
      'SuspendedEV',
      'SuspendedEVSE',
      'Finishing',
      'Faulted',
      'Reserved',
      'Occupied',
      'EVConnected',
      'Idle',
      'Preparing',
    ];
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 86_400_000 }),
        fc.array(
          fc.tuple(fc.integer({ min: -3_600_000, max: 90_000_000 }), fc.constantFrom(...statuses)),
          { maxLength: 60 },
        ),
        fc.constantFrom(...statuses),
        (length, events, initial) => {
          const changes: StatusChange[] = [];
          for (const [offset, status] of events) addStatus(changes, T0 + offset, status);
          for (let i = 1; i < changes.length; i++)
            expect(changes[i]![0]).toBeGreaterThanOrEqual(changes[i - 1]![0]);
          const d = durations(T0, T0 + length, initial, changes);
          expect(d.chargingS + d.parkingS + d.faultS + d.reservationS).toBe(
            Math.round(length / 1000),
          );
          for (const v of Object.values(d)) expect(v).toBeGreaterThanOrEqual(0);
        },
      ),
    );
  });
});
