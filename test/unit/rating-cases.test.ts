import { describe, expect, it } from 'vitest';
import type { PriceComponent } from '../../src/config/network.js';
import { Big } from '../../src/lib/decimal.js';
import {
  addObservation,
  compileTariff,
  creditOf,
  finish,
  rateSession,
  runningCost,
  startRating,
  type Cdr,
  type InvoiceLine,
  type Observation,
  type Restrictions,
  type SessionState,
  type TariffInput,
} from '../../src/rating/index.js';

// rating.md "Worked cases" 1–15, plus the refund (R4.4 / domain R6) and rounding rules.

const MIN = 60_000;
const H = 60 * MIN;
/** Monday 2025-03-10 00:00 UTC. */
const DAY = Date.UTC(2025, 2, 10);
const at = (hh: number, mm = 0) => DAY + hh * H + mm * MIN;

type Element = { components: PriceComponent[]; restrictions?: Restrictions };
const energy = (price: string, more: Partial<PriceComponent> = {}): PriceComponent => ({
  type: 'ENERGY',
  price,
  ...more,
});
const time = (price: string, more: Partial<PriceComponent> = {}): PriceComponent => ({
  type: 'TIME',
  price,
  ...more,
});
const parking = (price: string, more: Partial<PriceComponent> = {}): PriceComponent => ({
  type: 'PARKING_TIME',
  price,
  ...more,
});
const flat = (price: string, more: Partial<PriceComponent> = {}): PriceComponent => ({
  type: 'FLAT',
  price,
  ...more,
});
const aTariff = (elements: Element[], over: Partial<TariffInput> = {}, zone = 'UTC') =>
  compileTariff({ id: 'T1', currency: 'EUR', elements, ...over }, zone);
const obs = (
  ts: number,
  energyWh: number,
  state: SessionState = 'charging',
  more: Partial<Observation> = {},
): Observation => ({ ts, energyWh, state, ...more });

const line = (cdr: Cdr, type: InvoiceLine['type']) => cdr.lines.find((l) => l.type === type);
/** The line's amount before the R4.2 rounding, from its parts. */
const exact = (l: InvoiceLine | undefined): string => {
  if (l === undefined) return 'missing';
  const per = l.unit === 'Wh' ? 1000 : l.unit === 's' ? 3600 : 1;
  return l.parts
    .reduce((sum, p) => sum.plus(new Big(p.quantity).times(p.unitPrice).div(per)), new Big(0))
    .round(6, Big.roundHalfUp)
    .toFixed();
};
const money = (cdr: Cdr) => [cdr.totalExclVat, cdr.totalVat, cdr.totalInclVat];

describe('rating.md worked cases', () => {
  it('R3.1 case 1: ENERGY 0.25/kWh, 115.2 Wh, step 1 / 25 / 500 Wh', () => {
    const cdrFor = (stepSize: number) =>
      rateSession(aTariff([{ components: [energy('0.25', { stepSize })] }]), [
        obs(at(8), 0),
        obs(at(8, 1), 115.2),
      ]);
    const one = line(cdrFor(1), 'ENERGY');
    expect([one?.quantity, exact(one), one?.net]).toEqual(['116', '0.029', '0.03']);
    const five = line(cdrFor(25), 'ENERGY');
    expect([five?.quantity, exact(five), five?.net]).toEqual(['125', '0.03125', '0.03']);
    const big = line(cdrFor(500), 'ENERGY');
    expect([big?.quantity, exact(big), big?.net]).toEqual(['500', '0.125', '0.13']);
    expect(cdrFor(0).lines[0]?.quantity).toBe('115.2');
  });

  it('R4.2 case 2: FLAT 0.50 @20 % + ENERGY 0.25 @10 %, 20 kWh → 5.50 + 0.60 = 6.10', () => {
    const tariff = aTariff([
      { components: [flat('0.50', { vat: '20' }), energy('0.25', { vat: '10' })] },
    ]);
    const cdr = rateSession(tariff, [obs(at(8), 0), obs(at(10), 20_000)]);
    expect(line(cdr, 'FLAT')).toMatchObject({ net: '0.50', vat: '0.10', vatRate: '20' });
    expect(line(cdr, 'ENERGY')).toMatchObject({ net: '5.00', vat: '0.50', vatRate: '10' });
    expect(cdr.vat).toEqual([
      { rate: '20', taxable: '0.50', vat: '0.10' },
      { rate: '10', taxable: '5.00', vat: '0.50' },
    ]);
    expect(money(cdr)).toEqual(['5.50', '0.60', '6.10']);
  });

  it('R4.3 case 3: minPrice 0.50 / 0.55 raises 0.30 / 0.33 (1.2 kWh at 0.25 @10 %)', () => {
    const tariff = aTariff([{ components: [energy('0.25', { vat: '10' })] }], {
      minPrice: { exclVat: '0.50', inclVat: '0.55' },
    });
    const cdr = rateSession(tariff, [obs(at(8), 0), obs(at(9), 1200)]);
    expect(cdr.computed).toEqual({ exclVat: '0.30', vat: '0.03', inclVat: '0.33' });
    expect(cdr.adjustment).toEqual({ exclVat: '0.20', inclVat: '0.22' });
    expect(money(cdr)).toEqual(['0.50', '0.05', '0.55']);
  });

  it('R4.3 a bound without inclVat moves the incl. total at the session VAT ratio', () => {
    const tariff = aTariff([{ components: [energy('0.25', { vat: '10' })] }], {
      minPrice: { exclVat: '0.50' },
    });
    const cdr = rateSession(tariff, [obs(at(8), 0), obs(at(9), 1200)]);
    // 0.30 / 0.33 → 0.50 excl.; VAT 0.03 × 0.50 / 0.30 = 0.05.
    expect(money(cdr)).toEqual(['0.50', '0.05', '0.55']);
  });

  it('R4.3 case 4: maxPrice 10.00 / 11.00 caps 13.00 / 14.35; 8.00 / 8.85 stays', () => {
    const tariff = aTariff(
      [{ components: [flat('0.50', { vat: '20' }), energy('0.25', { vat: '10' })] }],
      { maxPrice: { exclVat: '10.00', inclVat: '11.00' } },
    );
    const fifty = rateSession(tariff, [obs(at(8), 0), obs(at(12), 50_000)]);
    expect(fifty.computed).toEqual({ exclVat: '13.00', vat: '1.35', inclVat: '14.35' });
    expect(money(fifty)).toEqual(['10.00', '1.00', '11.00']);
    const thirty = rateSession(tariff, [obs(at(8), 0), obs(at(11), 30_000)]);
    expect(thirty.adjustment).toBeNull();
    expect(money(thirty)).toEqual(['8.00', '0.85', '8.85']);
  });

  const case5 = () =>
    rateSession(
      aTariff([
        {
          components: [
            time('3.00', { vat: '10', stepSize: 60 }),
            parking('5.00', { vat: '20', stepSize: 300 }),
          ],
        },
      ]),
      [obs(at(8), 0), obs(at(8, 150), 40_000, 'parking')],
      { endTs: at(8, 192), id: 'CDR-5' },
    );

  it('R3.1 case 5: 150 min charging 7.50, 42 → 45 min parking 3.75; 11.25 net, 12.75 total', () => {
    const cdr = case5();
    expect(line(cdr, 'TIME')).toMatchObject({ quantity: '9000', net: '7.50', vat: '0.75' });
    expect(line(cdr, 'PARKING_TIME')).toMatchObject({ quantity: '2700', net: '3.75', vat: '0.75' });
    expect(money(cdr)).toEqual(['11.25', '1.50', '12.75']);
  });

  // Before 17:00 TIME 1.20/h step 1800; from 17:00 TIME 2.40/h step 900; PARKING 1.00/h step 900.
  const eveningTariff = () =>
    aTariff(
      [
        { components: [time('1.20', { stepSize: 1800 })], restrictions: { endTime: '17:00' } },
        { components: [time('2.40', { stepSize: 900 })], restrictions: { startTime: '17:00' } },
        { components: [parking('1.00', { stepSize: 900 })] },
      ],
      {},
      'Europe/Amsterdam',
    );
  /** 16:55 in Amsterdam on 2025-03-10 (CET, UTC+1) is 15:55 UTC. */
  const local = (hh: number, mm: number) => at(hh - 1, mm);

  it('R2.2 R3.1 case 6: 16:55 charge 10 min, park 2 min → 0.10 + 0.20 + 0.25 = 0.55', () => {
    const cdr = rateSession(
      eveningTariff(),
      [obs(local(16, 55), 0), obs(local(17, 5), 3000, 'parking')],
      { endTs: local(17, 7) },
    );
    expect(line(cdr, 'TIME')?.parts).toEqual([
      { element: 0, quantity: '300', unitPrice: '1.2' },
      { element: 1, quantity: '300', unitPrice: '2.4' },
    ]);
    expect(exact(line(cdr, 'TIME'))).toBe('0.3');
    expect(line(cdr, 'PARKING_TIME')).toMatchObject({ quantity: '900', net: '0.25' });
    expect(cdr.chargingPeriods.map((p) => [p.state, p.elements.TIME])).toEqual([
      ['charging', 0],
      ['charging', 1],
      ['parking', 1],
    ]);
    expect(cdr.totalExclVat).toBe('0.55');
  });

  it('R3.1 case 7: 16:35 charge 35 min → 25 min × 1.20 + (10 + 10) min × 2.40 = 1.30', () => {
    const cdr = rateSession(eveningTariff(), [obs(local(16, 35), 0), obs(local(17, 10), 5000)]);
    expect(line(cdr, 'TIME')?.parts).toEqual([
      { element: 0, quantity: '1500', unitPrice: '1.2' },
      { element: 1, quantity: '1200', unitPrice: '2.4' },
    ]);
    expect(cdr.totalExclVat).toBe('1.30');
  });

  it('R3.1 case 8: ENERGY 0.20 then 0.27, step 500 Wh: 5.4 → 5.5 kWh = 1.184', () => {
    const tariff = aTariff([
      { components: [energy('0.20', { stepSize: 500 })], restrictions: { endTime: '17:00' } },
      { components: [energy('0.27', { stepSize: 500 })], restrictions: { startTime: '17:00' } },
    ]);
    const cdr = rateSession(tariff, [obs(at(16), 0), obs(at(17), 4300), obs(at(18), 5400)]);
    const l = line(cdr, 'ENERGY');
    expect(l?.parts.map((p) => p.quantity)).toEqual(['4300', '1200']);
    expect([l?.quantity, exact(l), l?.net, l?.unitPrice]).toEqual(['5500', '1.184', '1.18', null]);
  });

  it('R3.1 case 9: TIME 5/h then 7/h, step 10 min; 6 + 22 min → 30 min = 0.50 + 2.80', () => {
    const tariff = aTariff([
      { components: [time('5', { stepSize: 600 })], restrictions: { endTime: '17:00' } },
      { components: [time('7', { stepSize: 600 })], restrictions: { startTime: '17:00' } },
    ]);
    const cdr = rateSession(tariff, [obs(at(16, 54), 0), obs(at(17, 22), 1000)]);
    expect(line(cdr, 'TIME')?.parts.map((p) => p.quantity)).toEqual(['360', '1440']);
    expect(cdr.totalExclVat).toBe('3.30');
  });

  it('R3.1 case 10: TIME and PARKING both step 10 min: only parking is rounded → 1.0167', () => {
    const tariff = aTariff([
      { components: [time('1.00', { stepSize: 600 }), parking('2.00', { stepSize: 600 })] },
    ]);
    const cdr = rateSession(tariff, [obs(at(8), 0), obs(at(8, 21), 2000, 'parking')], {
      endTs: at(8, 37),
    });
    expect(line(cdr, 'TIME')).toMatchObject({ quantity: '1260', net: '0.35' });
    const park = line(cdr, 'PARKING_TIME');
    expect([park?.quantity, exact(park), park?.net]).toEqual(['1200', '0.666667', '0.67']);
    expect(cdr.totalExclVat).toBe('1.02'); // 0.35 + 0.6667 = 1.0167 before R4.2 rounding
  });

  it('R2.2 case 11: parking free below 1800 s, 3.00/h from 1800 s (min inclusive, max exclusive)', () => {
    const tariff = aTariff([
      { components: [parking('0')], restrictions: { maxDurationS: 1800 } },
      { components: [parking('3.00')], restrictions: { minDurationS: 1800 } },
      { components: [energy('0.25', { vat: '10' })] },
    ]);
    // Parking starting exactly at 1800 s: all of it on the second element.
    const exactly = rateSession(tariff, [obs(at(8), 0), obs(at(8, 30), 10_000, 'parking')], {
      endTs: at(9),
    });
    expect(exactly.chargingPeriods.map((p) => [p.state, p.elements.PARKING_TIME])).toEqual([
      ['charging', 0],
      ['parking', 1],
    ]);
    expect(line(exactly, 'PARKING_TIME')).toMatchObject({ quantity: '1800', net: '1.50' });
    // Parking from 1200 s: 600 s free, then 1800 s at 3.00/h.
    const earlier = rateSession(tariff, [obs(at(8), 0), obs(at(8, 20), 10_000, 'parking')], {
      endTs: at(9),
    });
    expect(line(earlier, 'PARKING_TIME')?.parts).toEqual([
      { element: 0, quantity: '600', unitPrice: '0' },
      { element: 1, quantity: '1800', unitPrice: '3' },
    ]);
    expect(money(earlier)).toEqual(['4.00', '0.25', '4.25']);
  });

  it('R2.3 case 12: FLAT 1.00 over three periods is billed once', () => {
    const tariff = aTariff([
      { components: [flat('1.00')] },
      { components: [energy('0.20')], restrictions: { endTime: '12:00' } },
      { components: [energy('0.30')], restrictions: { startTime: '12:00' } },
    ]);
    const cdr = rateSession(
      tariff,
      [obs(at(11), 0), obs(at(12), 10_000), obs(at(13), 20_000, 'parking')],
      { endTs: at(14) },
    );
    expect(cdr.chargingPeriods).toHaveLength(3);
    expect(line(cdr, 'FLAT')).toMatchObject({ quantity: '1', net: '1.00' });
    expect(cdr.lines.filter((l) => l.type === 'FLAT')).toHaveLength(1);
    expect(cdr.totalExclVat).toBe('6.00');
  });

  it('R2.1 case 13: energy from the first element, time from the second → 3.00 + 1.00', () => {
    const tariff = aTariff([
      { components: [energy('0.30')], restrictions: { startTime: '08:00', endTime: '20:00' } },
      { components: [energy('0.20'), time('1.00')] },
    ]);
    const cdr = rateSession(tariff, [obs(at(10), 0), obs(at(11), 10_000)]);
    expect(cdr.chargingPeriods.map((p) => p.elements)).toEqual([
      { ENERGY: 0, TIME: 1, PARKING_TIME: null, FLAT: null, RESERVATION: null },
    ]);
    expect(line(cdr, 'ENERGY')?.net).toBe('3.00');
    expect(line(cdr, 'TIME')?.net).toBe('1.00');
    expect(cdr.totalExclVat).toBe('4.00');
  });

  it('R4.5 case 14: the cancellation of case 5 is a credit CDR; sums over both are zero', () => {
    const original = case5();
    const frozen = JSON.stringify(original);
    const credit = creditOf(original, 'cancelled by support: duplicate session', { id: 'CR-5' });
    expect(JSON.stringify(original)).toBe(frozen);
    expect(credit).toMatchObject({
      id: 'CR-5',
      kind: 'credit',
      creditReferenceId: 'CDR-5',
      description: 'cancelled by support: duplicate session',
      totalExclVat: '-11.25',
      totalVat: '-1.50',
      totalInclVat: '-12.75',
    });
    expect(credit.quantities.energyWh).toBe('-40000');
    const sum = (f: (c: Cdr) => string) => new Big(f(original)).plus(f(credit)).toFixed(2);
    expect(sum((c) => c.totalExclVat)).toBe('0.00');
    expect(sum((c) => c.totalInclVat)).toBe('0.00');
    expect(sum((c) => c.quantities.energyWh)).toBe('0.00');
    credit.lines.forEach((l, i) => {
      expect(new Big(l.net).plus(original.lines[i]?.net ?? 'x').eq(0)).toBe(true);
      expect(new Big(l.vat).plus(original.lines[i]?.vat ?? 'x').eq(0)).toBe(true);
    });
    expect(() => creditOf(credit, 'again')).toThrow(/debit/);
    expect(() => creditOf(original, ' ')).toThrow(/reason/);
  });

  it('R5.1 case 15: a free session costs 0.00, live and at the end', () => {
    const tariff = aTariff([
      { components: [energy('0.30')], restrictions: { daysOfWeek: ['SATURDAY'] } },
    ]);
    let state = startRating(tariff, at(8));
    state = addObservation(state, obs(at(8), 0));
    expect(runningCost(state).totalInclVat).toBe('0.00');
    state = addObservation(state, obs(at(9), 7000));
    const cdr = finish(state, at(9));
    expect(cdr.lines).toEqual([]);
    expect(money(cdr)).toEqual(['0.00', '0.00', '0.00']);
  });
});

describe('rounding and VAT', () => {
  it('R4.2 a line is rounded once at the end, not per period', () => {
    // 3 periods of 0.004 each: per period 0.00, once at the end 0.012 → 0.01.
    const tariff = aTariff([
      { components: [energy('0.10')], restrictions: { endTime: '09:00' } },
      { components: [energy('0.10')], restrictions: { startTime: '09:00', endTime: '10:00' } },
      { components: [energy('0.10')], restrictions: { startTime: '10:00' } },
    ]);
    const cdr = rateSession(tariff, [
      obs(at(8), 0),
      obs(at(9), 40),
      obs(at(10), 80),
      obs(at(11), 120),
    ]);
    expect(cdr.chargingPeriods).toHaveLength(3);
    expect(cdr.totalExclVat).toBe('0.01');
  });

  it('R4.2 VAT per rate on the sum of rounded nets, half-up; total = nets + VAT exactly', () => {
    // FLAT 0.05 and ENERGY 0.025 (0.1 kWh × 0.25) both at 10 %: 0.05 + 0.03 = 0.08 → VAT 0.008 → 0.01.
    const tariff = aTariff([
      { components: [flat('0.05', { vat: '10' }), energy('0.25', { vat: '10' })] },
    ]);
    const cdr = rateSession(tariff, [obs(at(8), 0), obs(at(9), 100)]);
    expect(cdr.vat).toEqual([{ rate: '10', taxable: '0.08', vat: '0.01' }]);
    expect(cdr.lines.map((l) => l.vat)).toEqual(['0.01', '0.00']);
    expect(money(cdr)).toEqual(['0.08', '0.01', '0.09']);
  });

  it('R1 an absent VAT is not 0 %: no rate on the line, and a separate group from 0 %', () => {
    const tariff = aTariff([{ components: [flat('1.00'), energy('0.30', { vat: '0' })] }]);
    const cdr = rateSession(tariff, [obs(at(8), 0), obs(at(9), 1000)]);
    expect(cdr.vat).toEqual([
      { rate: null, taxable: '1.00', vat: '0.00' },
      { rate: '0', taxable: '0.30', vat: '0.00' },
    ]);
  });

  it('R4.2 uses the minor unit of the currency', () => {
    const jpy = compileTariff(
      { currency: 'JPY', elements: [{ components: [energy('45.5', { vat: '10' })] }] },
      'Asia/Tokyo',
    );
    expect(money(rateSession(jpy, [obs(at(8), 0), obs(at(9), 1000)]))).toEqual(['46', '5', '51']);
  });
});

describe('charging-time refund (domain R6, rating.md R4.4)', () => {
  const tariff = aTariff([
    { components: [flat('1.00', { vat: '20' }), energy('0.30', { vat: '10' })] },
  ]);
  // 40 min of charging (→ 3 blocks of 15 min), 10 kWh: FLAT 1.00 @20 % + ENERGY 3.00 @10 %.
  const session = [obs(at(8), 0), obs(at(8, 40), 10_000, 'parking')];
  const rate = (per15: string, standardBoost = false) =>
    rateSession(tariff, session, {
      endTs: at(9),
      ratePlan: { chargingTimeRefundPer15Min: per15, standardBoost },
    });

  it('R6 refunds per started 15 min of charging as a Parking Refund line, before VAT', () => {
    const cdr = rate('0.50');
    expect(line(cdr, 'Parking Refund')).toMatchObject({
      quantity: '3',
      unit: '15min',
      unitPrice: '0.5',
      net: '-1.50',
      vat: '-0.19',
    });
    // 1.50 of 4.00 split 1.00 : 3.00 → 0.38 @20 % and 1.12 @10 %; VAT 0.12 + 0.19.
    expect(cdr.vat).toEqual([
      { rate: '20', taxable: '0.62', vat: '0.12' },
      { rate: '10', taxable: '1.88', vat: '0.19' },
    ]);
    expect(money(cdr)).toEqual(['2.50', '0.31', '2.81']);
  });

  it('R6 the refund is capped at the cost: the total never goes below zero', () => {
    const cdr = rate('10.00');
    expect(line(cdr, 'Parking Refund')?.net).toBe('-4.00');
    expect(money(cdr)).toEqual(['0.00', '0.00', '0.00']);
  });

  it('R6 standard_boost plans never get the refund', () => {
    const cdr = rate('0.50', true);
    expect(line(cdr, 'Parking Refund')).toBeUndefined();
    expect(money(cdr)).toEqual(['4.00', '0.50', '4.50']);
  });

  it('R6 the refund follows minPrice: the raised total is what gets refunded', () => {
    const raised = aTariff([{ components: [energy('0.30', { vat: '10' })] }], {
      minPrice: { exclVat: '5.00', inclVat: '5.50' },
    });
    const cdr = rateSession(raised, session, {
      endTs: at(9),
      ratePlan: { chargingTimeRefundPer15Min: '1.00' },
    });
    expect(money(cdr)).toEqual(['2.00', '0.20', '2.20']);
  });
});
