import { describe, expect, it } from 'vitest';
import type { PriceComponent, Tariff } from '../../src/config/network.js';
import { ChargestreamError } from '../../src/lib/errors.js';
import {
  addObservation,
  compileTariff,
  finish,
  rateSession,
  runningCost,
  startRating,
  type Cdr,
  type InvoiceLine,
  type Observation,
  type Restrictions,
  type SessionState,
} from '../../src/rating/index.js';

// rating.md R2.1–R2.3 (restrictions as switches), R5.1 (live cost) and the input contract.

const MIN = 60_000;
const H = 60 * MIN;

type Element = { components: PriceComponent[]; restrictions?: Restrictions };
const c = (type: PriceComponent['type'], price: string, stepSize?: number): PriceComponent =>
  stepSize === undefined ? { type, price } : { type, price, stepSize };
const aTariff = (elements: Element[], zone = 'UTC') =>
  compileTariff({ id: 'T', currency: 'EUR', elements }, zone);
const obs = (
  ts: number,
  energyWh: number,
  state: SessionState = 'charging',
  more: Partial<Observation> = {},
): Observation => ({ ts, energyWh, state, ...more });
const parts = (cdr: Cdr, type: InvoiceLine['type']) =>
  cdr.lines.find((l) => l.type === type)?.parts.map((p) => [p.element, p.quantity]) ?? [];
const periods = (cdr: Cdr, dim: 'ENERGY' | 'TIME' | 'PARKING_TIME' | 'RESERVATION') =>
  cdr.chargingPeriods.map((p) => [
    new Date(p.startTs).toISOString().slice(11, 16),
    new Date(p.endTs).toISOString().slice(11, 16),
    p.elements[dim],
  ]);

describe('R2.2 time of day across daylight saving', () => {
  /** Element 0 prices TIME from 02:00 to 03:00 local, element 1 the rest of the day. */
  const twoToThree = (zone: string) =>
    aTariff(
      [
        { components: [c('TIME', '1.00')], restrictions: { startTime: '02:00', endTime: '03:00' } },
        { components: [c('TIME', '0.10')] },
      ],
      zone,
    );
  const charge = (zone: string, fromUtc: number, toUtc: number) =>
    rateSession(twoToThree(zone), [obs(fromUtc, 0)], { endTs: toUtc });

  it('R2.2 Europe/Amsterdam autumn: the repeated 02:00–03:00 matches twice (2 real hours)', () => {
    // 2024-10-27 01:00 UTC: 03:00 CEST → 02:00 CET. 02:00 CEST = 00:00 UTC, 03:00 CET = 02:00 UTC.
    const cdr = charge('Europe/Amsterdam', Date.UTC(2024, 9, 26, 22), Date.UTC(2024, 9, 27, 3));
    expect(parts(cdr, 'TIME')).toEqual([
      [0, '7200'],
      [1, '10800'],
    ]);
    expect(periods(cdr, 'TIME')).toEqual([
      ['22:00', '00:00', 1],
      ['00:00', '02:00', 0],
      ['02:00', '03:00', 1],
    ]);
    expect(cdr.quantities.chargingTimeS).toBe('18000'); // durations are real seconds
  });

  it('R2.2 Europe/Amsterdam spring: the missing 02:00–03:00 never matches', () => {
    // 2025-03-30 01:00 UTC: 02:00 CET → 03:00 CEST.
    const cdr = charge('Europe/Amsterdam', Date.UTC(2025, 2, 29, 23), Date.UTC(2025, 2, 30, 3));
    expect(parts(cdr, 'TIME')).toEqual([[1, '14400']]);
  });

  it('R2.2 America/New_York autumn: the repeated 01:00–02:00 matches twice', () => {
    // 2024-11-03 06:00 UTC: 02:00 EDT → 01:00 EST. 01:00 EDT = 05:00 UTC, 02:00 EST = 07:00 UTC.
    const tariff = aTariff(
      [
        { components: [c('TIME', '1.00')], restrictions: { startTime: '01:00', endTime: '02:00' } },
        { components: [c('TIME', '0.10')] },
      ],
      'America/New_York',
    );
    const cdr = rateSession(tariff, [obs(Date.UTC(2024, 10, 3, 4), 0)], {
      endTs: Date.UTC(2024, 10, 3, 8),
    });
    expect(periods(cdr, 'TIME')).toEqual([
      ['04:00', '05:00', 1],
      ['05:00', '07:00', 0],
      ['07:00', '08:00', 1],
    ]);
  });

  it('R2.2 America/New_York spring: the missing 02:00–03:00 never matches', () => {
    // 2025-03-09 07:00 UTC: 02:00 EST → 03:00 EDT.
    const cdr = charge('America/New_York', Date.UTC(2025, 2, 9, 5), Date.UTC(2025, 2, 9, 9));
    expect(parts(cdr, 'TIME')).toEqual([[1, '14400']]);
  });

  it('R2.2 a night window wrapping past midnight on the spring night lasts 7 real hours', () => {
    const tariff = aTariff(
      [
        { components: [c('TIME', '0.50')], restrictions: { startTime: '22:00', endTime: '06:00' } },
        { components: [c('TIME', '2.00')] },
      ],
      'Europe/Amsterdam',
    );
    // 22:00 CET = 21:00 UTC on the 29th; 06:00 CEST = 04:00 UTC on the 30th.
    const cdr = rateSession(tariff, [obs(Date.UTC(2025, 2, 29, 20), 0)], {
      endTs: Date.UTC(2025, 2, 30, 5),
    });
    expect(parts(cdr, 'TIME')).toEqual([
      [0, '25200'],
      [1, '7200'],
    ]);
  });

  it('R2.2 "00:00" as the end is the end of the day; start inclusive, end exclusive', () => {
    const tariff = aTariff([
      { components: [c('TIME', '3.00')], restrictions: { startTime: '18:00', endTime: '00:00' } },
      { components: [c('TIME', '1.00')] },
    ]);
    const day = Date.UTC(2025, 2, 10);
    const cdr = rateSession(tariff, [obs(day + 17 * H, 0)], { endTs: day + 25 * H });
    expect(periods(cdr, 'TIME')).toEqual([
      ['17:00', '18:00', 1],
      ['18:00', '00:00', 0],
      ['00:00', '01:00', 1],
    ]);
  });
});

describe('R2.2 dates, weekdays, energy, power, current, duration, reservation', () => {
  it('R2.2 daysOfWeek reads the local weekday: Friday → Saturday at local midnight', () => {
    const tariff = aTariff(
      [
        { components: [c('ENERGY', '0.10')], restrictions: { daysOfWeek: ['SATURDAY', 'SUNDAY'] } },
        { components: [c('ENERGY', '0.30')] },
      ],
      'Europe/Amsterdam',
    );
    // Friday 2025-03-14 22:00 UTC = 23:00 local; local midnight = 23:00 UTC; 2 kWh linear.
    const cdr = rateSession(tariff, [
      obs(Date.UTC(2025, 2, 14, 22), 0),
      obs(Date.UTC(2025, 2, 15, 0), 2000),
    ]);
    expect(periods(cdr, 'ENERGY')).toEqual([
      ['22:00', '23:00', 1],
      ['23:00', '00:00', 0],
    ]);
    expect(parts(cdr, 'ENERGY')).toEqual([
      [0, '1000'],
      [1, '1000'],
    ]);
    expect(cdr.totalExclVat).toBe('0.40');
  });

  it('R2.2 startDate inclusive, endDate exclusive, as local dates', () => {
    const tariff = aTariff(
      [
        {
          components: [c('ENERGY', '0.10')],
          restrictions: { startDate: '2025-03-15', endDate: '2025-03-16' },
        },
        { components: [c('ENERGY', '0.30')] },
      ],
      'Europe/Amsterdam',
    );
    const cdr = rateSession(tariff, [
      obs(Date.UTC(2025, 2, 14, 22), 0),
      obs(Date.UTC(2025, 2, 15, 23, 30), 2550),
    ]);
    // 23:00 UTC 14th … 23:00 UTC 15th is local 15 March; 2550 Wh over 25.5 h, 100 Wh per hour.
    expect(periods(cdr, 'ENERGY')).toEqual([
      ['22:00', '23:00', 1],
      ['23:00', '23:00', 0],
      ['23:00', '23:30', 1],
    ]);
    expect(parts(cdr, 'ENERGY')).toEqual([
      [0, '2400'],
      [1, '150'],
    ]);
  });

  it('R2.2 a kWh bound splits the period at the interpolated moment it is crossed', () => {
    const tariff = aTariff([
      { components: [c('ENERGY', '0.30'), c('TIME', '2.00')], restrictions: { maxKwh: '10' } },
      { components: [c('ENERGY', '0.20'), c('TIME', '1.00')] },
    ]);
    const t0 = Date.UTC(2025, 2, 10, 8);
    const cdr = rateSession(tariff, [obs(t0, 0), obs(t0 + 2 * H, 20_000)]);
    expect(cdr.chargingPeriods.map((p) => [p.endTs - t0, p.energyWh, p.elements.ENERGY])).toEqual([
      [H, '10000', 0],
      [2 * H, '10000', 1],
    ]);
    expect(cdr.totalExclVat).toBe('8.00'); // 3.00 + 2.00 energy, 2.00 + 1.00 time
  });

  it('R2.2 a kWh bound crossed in a jump (no time between readings) still splits the energy', () => {
    const tariff = aTariff([
      { components: [c('ENERGY', '0.30')], restrictions: { minKwh: '1' } },
      { components: [c('ENERGY', '0.20')] },
    ]);
    const t0 = Date.UTC(2025, 2, 10, 8);
    const cdr = rateSession(tariff, [obs(t0, 0), obs(t0, 1500)]);
    expect(cdr.chargingPeriods.map((p) => [p.energyWh, p.elements.ENERGY])).toEqual([
      ['1000', 1],
      ['500', 0],
    ]);
  });

  it('R2.2 power band: inactive when the power leaves the band, active again when it returns', () => {
    const tariff = aTariff([
      { components: [c('ENERGY', '0.40')], restrictions: { minPowerKw: '50' } },
      { components: [c('ENERGY', '0.30')] },
    ]);
    const t0 = Date.UTC(2025, 2, 10, 8);
    const cdr = rateSession(tariff, [
      obs(t0, 0, 'charging', { powerW: 60_000 }),
      obs(t0 + MIN, 1000, 'charging', { powerW: 20_000 }),
      obs(t0 + 2 * MIN, 1500, 'charging', { powerW: 50_000 }), // min inclusive
      obs(t0 + 3 * MIN, 2500, 'charging'), // no power reported: 50 kW still holds
      obs(t0 + 4 * MIN, 3500),
    ]);
    expect(cdr.chargingPeriods.map((p) => [p.energyWh, p.elements.ENERGY])).toEqual([
      ['1000', 0],
      ['500', 1],
      ['2000', 0],
    ]);
    expect(cdr.totalExclVat).toBe('1.35');
  });

  it('R2.2 power never reported: a power-restricted element does not apply', () => {
    const tariff = aTariff([
      { components: [c('ENERGY', '0.40')], restrictions: { maxPowerKw: '11' } },
      { components: [c('ENERGY', '0.30')] },
    ]);
    const t0 = Date.UTC(2025, 2, 10, 8);
    expect(parts(rateSession(tariff, [obs(t0, 0), obs(t0 + H, 1000)]), 'ENERGY')).toEqual([
      [1, '1000'],
    ]);
  });

  it('R2.2 current band: max exclusive', () => {
    const tariff = aTariff([
      { components: [c('TIME', '2.00')], restrictions: { maxCurrentA: '16' } },
      { components: [c('TIME', '1.00')] },
    ]);
    const t0 = Date.UTC(2025, 2, 10, 8);
    const cdr = rateSession(
      tariff,
      [obs(t0, 0, 'charging', { currentA: 15.9 }), obs(t0 + H, 1000, 'charging', { currentA: 16 })],
      { endTs: t0 + 2 * H },
    );
    expect(parts(cdr, 'TIME')).toEqual([
      [0, '3600'],
      [1, '3600'],
    ]);
  });

  it('R2.2 duration: maxDurationS exclusive, minDurationS inclusive, in real seconds', () => {
    const tariff = aTariff([
      { components: [c('TIME', '0')], restrictions: { maxDurationS: 900 } },
      { components: [c('TIME', '4.00')], restrictions: { minDurationS: 900 } },
    ]);
    const t0 = Date.UTC(2025, 2, 10, 8);
    const cdr = rateSession(tariff, [obs(t0, 0)], { endTs: t0 + 45 * MIN });
    expect(parts(cdr, 'TIME')).toEqual([
      [0, '900'],
      [1, '1800'],
    ]);
    expect(cdr.totalExclVat).toBe('2.00');
  });

  const reservationTariff = () =>
    aTariff([
      {
        components: [c('FLAT', '1.00'), c('TIME', '12.00')],
        restrictions: { reservation: 'RESERVATION_EXPIRES' },
      },
      {
        components: [c('FLAT', '0.50'), c('TIME', '6.00')],
        restrictions: { reservation: 'RESERVATION' },
      },
      { components: [c('ENERGY', '0.30'), c('TIME', '1.00')] },
    ]);

  it('R2.2 reservation elements price the reservation time (their TIME), not charging', () => {
    const t0 = Date.UTC(2025, 2, 10, 8);
    const cdr = rateSession(reservationTariff(), [
      obs(t0, 0, 'reservation'),
      obs(t0 + 10 * MIN, 0, 'charging'),
      obs(t0 + 70 * MIN, 10_000),
    ]);
    expect(cdr.expiredReservation).toBe(false);
    expect(cdr.lines.map((l) => [l.type, l.quantity, l.net])).toEqual([
      ['FLAT', '1', '0.50'],
      ['ENERGY', '10000', '3.00'],
      ['TIME', '3600', '1.00'],
      ['RESERVATION', '600', '1.00'],
    ]);
  });

  it('R2.2 an expired reservation is priced by the RESERVATION_EXPIRES element', () => {
    const t0 = Date.UTC(2025, 2, 10, 8);
    let state = startRating(reservationTariff(), t0);
    state = addObservation(state, obs(t0, 0, 'reservation'));
    state = addObservation(state, obs(t0 + 5 * MIN, 0, 'reservation'));
    // Live, the reservation may still be used: the RESERVATION element applies.
    expect(runningCost(state).totalExclVat).toBe('1.00');
    const cdr = finish(state, t0 + 10 * MIN);
    expect(cdr.expiredReservation).toBe(true);
    expect(cdr.lines.map((l) => [l.type, l.quantity, l.net])).toEqual([
      ['FLAT', '1', '1.00'],
      ['RESERVATION', '600', '2.00'],
    ]);
  });
});

describe('R5.1 running cost', () => {
  it('R5.1 equals the cost of a session ending at the reading, without the step round-up', () => {
    const tariff = aTariff([
      { components: [c('FLAT', '0.25'), c('ENERGY', '0.30', 1000), c('TIME', '1.20', 900)] },
    ]);
    const t0 = Date.UTC(2025, 2, 10, 8);
    let state = startRating(tariff, t0);
    state = addObservation(state, obs(t0, 0));
    expect(runningCost(state).totalExclVat).toBe('0.25'); // FLAT from the start
    state = addObservation(state, obs(t0 + 10 * MIN, 1500));
    // 1.5 kWh × 0.30 = 0.45; 10 min × 1.20/h = 0.20; + 0.25.
    expect(runningCost(state).totalExclVat).toBe('0.90');
    // At the end: 2 kWh = 0.60 and 15 min = 0.30.
    expect(finish(state, state.ts).totalExclVat).toBe('1.15');
  });
});

describe('input contract', () => {
  const tariff = aTariff([{ components: [c('ENERGY', '0.30')] }]);
  const t0 = Date.UTC(2025, 2, 10, 8);

  it('a reading older than the previous one, or with less energy, is refused (E3 runs first)', () => {
    const state = addObservation(startRating(tariff, t0), obs(t0 + MIN, 100));
    expect(() => addObservation(state, obs(t0, 200))).toThrow(ChargestreamError);
    expect(() => addObservation(state, obs(t0 + 2 * MIN, 50))).toThrow(/below the previous/);
    expect(() => finish(state, t0)).toThrow(/before the latest/);
  });

  it('addObservation is pure: the given state is left unchanged', () => {
    const state = addObservation(startRating(tariff, t0), obs(t0 + MIN, 100));
    const before = JSON.stringify(state);
    addObservation(state, obs(t0 + 2 * MIN, 300, 'parking'));
    finish(state, t0 + H);
    expect(JSON.stringify(state)).toBe(before);
  });

  it('compileTariff names the bad field', () => {
    const bad =
      (restrictions: Record<string, unknown>, zone = 'UTC') =>
      () =>
        compileTariff(
          { id: 'X', currency: 'EUR', elements: [{ components: [c('TIME', '1')], restrictions }] },
          zone,
        );
    expect(bad({ startTime: '25:00' })).toThrow(/tariff X: elements\[0\]\.restrictions\.startTime/);
    expect(bad({ minKwh: 'ten' })).toThrow(/minKwh: is not a decimal/);
    expect(bad({ colour: 'red' })).toThrow(/colour: is not a known restriction/);
    expect(bad({ daysOfWeek: ['FUNDAY'] })).toThrow(/unknown weekday FUNDAY/);
    expect(bad({}, 'Mars/Olympus')).toThrow(/unknown IANA time zone/);
  });

  it('accepts the network file tariff as loaded (loose restrictions, numbers as decimals)', () => {
    const network: Tariff = {
      id: 'net',
      currency: 'EUR',
      elements: [
        { components: [{ type: 'ENERGY', price: '0.25', vat: '21' }], restrictions: { maxKwh: 5 } },
        { components: [{ type: 'ENERGY', price: '0.35', vat: '21' }] },
      ],
      minPrice: { exclVat: '1.00' },
    };
    const compiled = compileTariff(network, 'Europe/Amsterdam');
    const cdr = rateSession(JSON.parse(JSON.stringify(compiled)) as typeof compiled, [
      obs(t0, 0),
      obs(t0 + H, 10_000),
    ]);
    expect(cdr.totalExclVat).toBe('3.00');
    expect(cdr.totalInclVat).toBe('3.63');
  });
});
