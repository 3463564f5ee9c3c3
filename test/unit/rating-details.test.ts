import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadNetworkFile, parseNetwork, type PriceComponent } from '../../src/config/network.js';
import { Big } from '../../src/lib/decimal.js';
import { ChargestreamError } from '../../src/lib/errors.js';
import {
  addObservation,
  compileTariff,
  finish,
  rateSession,
  startRating,
  type Cdr,
  type CompiledTariff,
  type DayOfWeek,
  type Observation,
  type TariffDetail,
} from '../../src/rating/index.js';

// domain R2: the seed's tariff details (one_time / daily, priority) compiled to OCPI elements.

const MIN = 60_000;
const H = 60 * MIN;
const DAY_MS = 24 * H;
const utc = (y: number, mo: number, d: number, h = 0, mi = 0) => Date.UTC(y, mo - 1, d, h, mi);

const c = (type: PriceComponent['type'], price: string, vat?: string): PriceComponent =>
  vat === undefined ? { type, price } : { type, price, vat };
const oneTime = (
  start: string,
  stop: string,
  priority: number,
  components: PriceComponent[],
  more: Partial<TariffDetail> = {},
): TariffDetail => ({ recurrence: 'one_time', start, stop, priority, components, ...more });
const daily = (
  priority: number,
  components: PriceComponent[],
  more: Partial<TariffDetail> = {},
): TariffDetail => ({ recurrence: 'daily', priority, components, ...more });
/** Every day, all day, priority 0: the price when nothing else is in force. */
const base = (components: PriceComponent[]) => daily(0, components);
const aTariff = (details: TariffDetail[], zone = 'UTC') =>
  compileTariff({ id: 'D', currency: 'EUR', details }, zone);
const obs = (ts: number, energyWh: number): Observation => ({ ts, energyWh, state: 'charging' });

const DIM = { ENERGY: 0, TIME: 1 } as const;
/** The price the compiled tariff charges for `dim` at instant `t` (null: free), via the rater. */
const priceAt = (tariff: CompiledTariff, t: number, dim: keyof typeof DIM = 'TIME') => {
  const period = rateSession(tariff, [obs(t, 0)], { endTs: t + 1 }).chargingPeriods[0];
  const element = period?.elements[dim] ?? null;
  if (element === null) return null;
  return tariff.elements[element]?.components[DIM[dim]]?.price ?? null;
};
/** Periods as [from, to, TIME price] in UTC "HH:MM". */
const timeline = (tariff: CompiledTariff, cdr: Cdr) =>
  cdr.chargingPeriods.map((p) => {
    const e = p.elements.TIME;
    return [
      new Date(p.startTs).toISOString().slice(11, 16),
      new Date(p.endTs).toISOString().slice(11, 16),
      e === null ? null : (tariff.elements[e]?.components[DIM.TIME]?.price ?? null),
    ];
  });
const charge = (tariff: CompiledTariff, from: number, to: number) =>
  rateSession(tariff, [obs(from, 0)], { endTs: to });
const money = (cdr: Cdr) => [cdr.totalExclVat, cdr.totalVat, cdr.totalInclVat];

describe('R2 one_time: inclusive start, exclusive stop', () => {
  const tariff = aTariff([
    base([c('TIME', '1.00')]),
    oneTime('2025-03-12T10:00', '2025-03-12T12:00', 1, [c('TIME', '3.00')]),
  ]);

  it('the start instant is in, the stop instant is out, to the millisecond', () => {
    expect(priceAt(tariff, utc(2025, 3, 12, 10) - 1)).toBe('1');
    expect(priceAt(tariff, utc(2025, 3, 12, 10))).toBe('3');
    expect(priceAt(tariff, utc(2025, 3, 12, 12) - 1)).toBe('3');
    expect(priceAt(tariff, utc(2025, 3, 12, 12))).toBe('1');
    // Only that date: the same hours a day later are the base price.
    expect(priceAt(tariff, utc(2025, 3, 13, 11))).toBe('1');
  });

  it('a session across the range is cut exactly at start and stop', () => {
    const cdr = charge(tariff, utc(2025, 3, 12, 9), utc(2025, 3, 12, 13));
    expect(timeline(tariff, cdr)).toEqual([
      ['09:00', '10:00', '1'],
      ['10:00', '12:00', '3'],
      ['12:00', '13:00', '1'],
    ]);
    expect(cdr.totalExclVat).toBe('8.00'); // 1 + 2 × 3 + 1
  });

  it('start and stop are local wall-clock times of the site', () => {
    const amsterdam = aTariff(
      [
        base([c('TIME', '1.00')]),
        oneTime('2025-03-12T10:00', '2025-03-12T12:00', 1, [c('TIME', '3.00')]),
      ],
      'Europe/Amsterdam',
    );
    // CET = UTC+1 in March before the 30th.
    expect(priceAt(amsterdam, utc(2025, 3, 12, 9) - 1)).toBe('1');
    expect(priceAt(amsterdam, utc(2025, 3, 12, 9))).toBe('3');
    expect(priceAt(amsterdam, utc(2025, 3, 12, 11))).toBe('1');
  });

  it('a range over several days becomes one element per part: Tuesday 14:00 → Thursday 09:00', () => {
    const details = [
      base([c('TIME', '1.00')]),
      oneTime('2025-03-11T14:00', '2025-03-13T09:00', 1, [c('TIME', '3.00')]),
    ];
    const t = aTariff(details);
    expect(t.elements).toHaveLength(4); // three parts, then the base
    const cases: Array<[number, string]> = [
      [utc(2025, 3, 11, 8), '1'], // Tuesday morning: before the start
      [utc(2025, 3, 11, 14) - 1, '1'],
      [utc(2025, 3, 11, 14), '3'],
      [utc(2025, 3, 12, 3), '3'], // Wednesday night and day: inside
      [utc(2025, 3, 12, 20), '3'],
      [utc(2025, 3, 13, 9) - 1, '3'],
      [utc(2025, 3, 13, 9), '1'],
      [utc(2025, 3, 13, 15), '1'], // Thursday afternoon: a lone 14:00 restriction would match
    ];
    for (const [t0, price] of cases)
      expect([new Date(t0), priceAt(t, t0)]).toEqual([new Date(t0), price]);
    const cdr = charge(t, utc(2025, 3, 11, 13), utc(2025, 3, 13, 10));
    expect(cdr.totalExclVat).toBe('131.00'); // 1 h × 1 + 43 h × 3 + 1 h × 1
  });

  it('whole days from midnight to midnight need one element', () => {
    const t = aTariff([oneTime('2025-03-10T00:00', '2025-03-17T00:00', 0, [c('TIME', '2.00')])]);
    expect(t.elements).toHaveLength(1);
    expect(priceAt(t, utc(2025, 3, 10))).toBe('2');
    expect(priceAt(t, utc(2025, 3, 17) - 1)).toBe('2');
    expect(priceAt(t, utc(2025, 3, 17))).toBeNull(); // no detail in force: free
  });
});

describe('R2 daily: a time frame on chosen days', () => {
  // 2025-03-14 is a Friday.
  const night = aTariff([
    base([c('TIME', '1.00')]),
    daily(1, [c('TIME', '2.00')], { startTime: '22:00', endTime: '06:00', daysOfWeek: ['FRIDAY'] }),
  ]);

  it('a window past midnight belongs to the day it starts on', () => {
    expect(priceAt(night, utc(2025, 3, 14, 22) - 1)).toBe('1');
    expect(priceAt(night, utc(2025, 3, 14, 22))).toBe('2');
    expect(priceAt(night, utc(2025, 3, 15, 2))).toBe('2'); // Saturday 02:00: Friday's night
    expect(priceAt(night, utc(2025, 3, 15, 6) - 1)).toBe('2');
    expect(priceAt(night, utc(2025, 3, 15, 6))).toBe('1');
    expect(priceAt(night, utc(2025, 3, 14, 2))).toBe('1'); // Friday 02:00: Thursday's night
    expect(priceAt(night, utc(2025, 3, 15, 23))).toBe('1'); // Saturday night is not chosen
    expect(priceAt(night, utc(2025, 3, 16, 2))).toBe('1');
  });

  it('a session through the night is priced piecewise', () => {
    const cdr = charge(night, utc(2025, 3, 14, 21), utc(2025, 3, 15, 7));
    // Two elements carry the window (before and after midnight): two periods, one price.
    expect(timeline(night, cdr)).toEqual([
      ['21:00', '22:00', '1'],
      ['22:00', '00:00', '2'],
      ['00:00', '06:00', '2'],
      ['06:00', '07:00', '1'],
    ]);
    expect(cdr.totalExclVat).toBe('18.00');
  });

  it('chosen days without times: whole days; every day with a wrap: one OCPI element', () => {
    const weekend = aTariff([
      base([c('TIME', '1.00')]),
      daily(1, [c('TIME', '0.50')], { daysOfWeek: ['SATURDAY', 'SUNDAY'] }),
    ]);
    expect(priceAt(weekend, utc(2025, 3, 14, 23, 59))).toBe('1');
    expect(priceAt(weekend, utc(2025, 3, 15))).toBe('0.5');
    expect(priceAt(weekend, utc(2025, 3, 16, 23, 59))).toBe('0.5');
    expect(priceAt(weekend, utc(2025, 3, 17))).toBe('1');

    const everyNight = aTariff([
      daily(1, [c('TIME', '2.00')], { startTime: '22:00', endTime: '06:00' }),
      base([c('TIME', '1.00')]),
    ]);
    expect(everyNight.elements).toHaveLength(2);
    expect(priceAt(everyNight, utc(2025, 3, 12, 3))).toBe('2');
    expect(priceAt(everyNight, utc(2025, 3, 12, 12))).toBe('1');
  });

  it('start == end is 24 hours from the start; "00:00" as the end is midnight', () => {
    const t = aTariff([
      base([c('TIME', '1.00')]),
      daily(1, [c('TIME', '2.00')], {
        startTime: '10:00',
        endTime: '10:00',
        daysOfWeek: ['MONDAY'],
      }),
      daily(1, [c('TIME', '3.00')], {
        startTime: '18:00',
        endTime: '00:00',
        daysOfWeek: ['WEDNESDAY'],
      }),
    ]);
    // 2025-03-10 is a Monday.
    expect(priceAt(t, utc(2025, 3, 10, 10) - 1)).toBe('1');
    expect(priceAt(t, utc(2025, 3, 10, 10))).toBe('2');
    expect(priceAt(t, utc(2025, 3, 11, 10) - 1)).toBe('2');
    expect(priceAt(t, utc(2025, 3, 11, 10))).toBe('1');
    expect(priceAt(t, utc(2025, 3, 12, 18))).toBe('3');
    expect(priceAt(t, utc(2025, 3, 13) - 1)).toBe('3');
    expect(priceAt(t, utc(2025, 3, 13))).toBe('1');
  });
});

describe('R2 priority: where details overlap the higher one prices everything', () => {
  it('the higher detail wins and the lower one resumes after it', () => {
    // The list order does not matter, the priority does. 2025-03-12 is a Wednesday.
    const t = aTariff([
      oneTime('2025-03-12T12:00', '2025-03-12T14:00', 5, [c('TIME', '5.00')]),
      base([c('TIME', '1.00')]),
      daily(1, [c('TIME', '2.00')], { startTime: '08:00', endTime: '20:00' }),
    ]);
    const cdr = charge(t, utc(2025, 3, 12, 7), utc(2025, 3, 12, 21));
    expect(timeline(t, cdr)).toEqual([
      ['07:00', '08:00', '1'],
      ['08:00', '12:00', '2'],
      ['12:00', '14:00', '5'],
      ['14:00', '20:00', '2'],
      ['20:00', '21:00', '1'],
    ]);
    expect(cdr.totalExclVat).toBe('32.00'); // 1 + 4 × 2 + 2 × 5 + 6 × 2 + 1
  });

  it('equal priorities: the detail listed first wins', () => {
    const a = oneTime('2025-03-12T10:00', '2025-03-12T12:00', 1, [c('TIME', '4.00')]);
    const b = oneTime('2025-03-12T11:00', '2025-03-12T13:00', 1, [c('TIME', '6.00')]);
    const at = utc(2025, 3, 12, 11, 30);
    expect(priceAt(aTariff([a, b]), at)).toBe('4');
    expect(priceAt(aTariff([b, a]), at)).toBe('6');
    expect(priceAt(aTariff([a, b]), utc(2025, 3, 12, 12, 30))).toBe('6');
  });

  it('a price the winning detail leaves empty is zero, not the lower detail’s', () => {
    const t = aTariff([
      base([c('ENERGY', '0.20'), c('TIME', '1.00')]),
      oneTime('2025-03-12T10:00', '2025-03-12T12:00', 1, [c('ENERGY', '0.40')]),
    ]);
    expect(priceAt(t, utc(2025, 3, 12, 11), 'TIME')).toBe('0');
    expect(priceAt(t, utc(2025, 3, 12, 11), 'ENERGY')).toBe('0.4');
    expect(priceAt(t, utc(2025, 3, 12, 9), 'TIME')).toBe('1');
  });
});

describe('R2 a session crossing a detail boundary', () => {
  // Base: ENERGY 0.20 + TIME 1.00/h, both @21 %. 14:00–16:30: ENERGY 0.40 @21 %, no TIME price.
  const tariff = aTariff([
    base([c('ENERGY', '0.20', '21'), c('TIME', '1.00', '21')]),
    oneTime('2025-03-12T14:00', '2025-03-12T16:30', 1, [c('ENERGY', '0.40', '21')]),
  ]);
  // 13:30 → 15:00 at a steady 6 kW: 3 kWh before 14:00, 6 kWh after.
  const readings = [obs(utc(2025, 3, 12, 13, 30), 0), obs(utc(2025, 3, 12, 15), 9000)];

  it('is priced piecewise with exact amounts', () => {
    const cdr = rateSession(tariff, readings);
    const energy = cdr.lines.find((l) => l.type === 'ENERGY');
    expect(energy?.parts.map((p) => [p.quantity, p.unitPrice])).toEqual([
      ['6000', '0.4'],
      ['3000', '0.2'],
    ]);
    expect(energy?.net).toBe('3.00'); // 6 × 0.40 + 3 × 0.20
    const time = cdr.lines.filter((l) => l.type === 'TIME');
    // The free hour after 14:00 joins the 21 % line: one TIME line, not a VAT-less one.
    expect(time.map((l) => [l.quantity, l.net, l.vatRate])).toEqual([['5400', '0.50', '21']]);
    // VAT on 3.50 at 21 % = 0.735 → 0.74 (R4.2).
    expect(money(cdr)).toEqual(['3.50', '0.74', '4.24']);
  });

  it('incrementally, reading by reading, gives the same CDR', () => {
    let state = startRating(tariff, utc(2025, 3, 12, 13, 30));
    for (let m = 0; m <= 90; m += 5) {
      state = addObservation(state, obs(utc(2025, 3, 12, 13, 30 + m), m * 100));
    }
    expect(money(finish(state, utc(2025, 3, 12, 15)))).toEqual(['3.50', '0.74', '4.24']);
  });
});

describe('R2 daylight saving, Europe/Amsterdam', () => {
  const zone = 'Europe/Amsterdam';
  const nightly = aTariff(
    [
      base([c('TIME', '1.00')]),
      daily(1, [c('TIME', '2.00')], { startTime: '01:00', endTime: '04:00' }),
    ],
    zone,
  );
  const seconds = (cdr: Cdr, price: string) =>
    cdr.chargingPeriods
      .filter((p) => p.elements.TIME !== null)
      .filter((p) => nightly.elements[p.elements.TIME ?? -1]?.components[DIM.TIME]?.price === price)
      .reduce((s, p) => s + Number(p.durationS), 0);

  it('spring: 01:00–04:00 lasts 2 real hours (02:00–03:00 never happens)', () => {
    // 2025-03-30 01:00 UTC: 02:00 CET → 03:00 CEST. 00:00 CET = 23:00 UTC the day before.
    const cdr = charge(nightly, utc(2025, 3, 29, 23), utc(2025, 3, 30, 3));
    expect(seconds(cdr, '2')).toBe(2 * 3600);
    expect(seconds(cdr, '1')).toBe(2 * 3600);
    expect(cdr.totalExclVat).toBe('6.00');
  });

  it('autumn: 01:00–04:00 lasts 4 real hours (02:00–03:00 happens twice)', () => {
    // 2025-10-26 01:00 UTC: 03:00 CEST → 02:00 CET. 01:00 CEST = 23:00 UTC the day before.
    const cdr = charge(nightly, utc(2025, 10, 25, 22), utc(2025, 10, 26, 4));
    expect(timeline(nightly, cdr)).toEqual([
      ['22:00', '23:00', '1'],
      ['23:00', '03:00', '2'],
      ['03:00', '04:00', '1'],
    ]);
  });

  it('a chosen-day window past midnight on the spring night: Saturday 22:00 → 06:00 is 7 h', () => {
    const t = aTariff(
      [
        base([c('TIME', '1.00')]),
        daily(1, [c('TIME', '2.00')], {
          startTime: '22:00',
          endTime: '06:00',
          daysOfWeek: ['SATURDAY'],
        }),
      ],
      zone,
    );
    // 22:00 CET = 21:00 UTC on Saturday the 29th; 06:00 CEST = 04:00 UTC on Sunday.
    const cdr = charge(t, utc(2025, 3, 29, 20), utc(2025, 3, 30, 5));
    expect(timeline(t, cdr)).toEqual([
      ['20:00', '21:00', '1'],
      ['21:00', '23:00', '2'], // local midnight (CET) = 23:00 UTC
      ['23:00', '04:00', '2'],
      ['04:00', '05:00', '1'],
    ]);
  });
});

describe('R2 property: the compiled tariff charges the highest-priority detail in force', () => {
  const WEEKDAYS: readonly DayOfWeek[] = [
    'MONDAY',
    'TUESDAY',
    'WEDNESDAY',
    'THURSDAY',
    'FRIDAY',
    'SATURDAY',
    'SUNDAY',
  ];
  /** Local wall days since 1970 of the window's first day: 2025-03-24 (a Monday), DST on the 30th. */
  const FIRST_DAY = utc(2025, 3, 24) / DAY_MS;
  const QUARTER = 15;
  const two = (n: number) => String(n).padStart(2, '0');
  const hhmm = (minute: number) => `${two(Math.floor(minute / 60))}:${two(minute % 60)}`;
  const wallText = (minutes: number) => {
    const day = Math.floor(minutes / 1440);
    return `${new Date(day * DAY_MS).toISOString().slice(0, 10)}T${hhmm(minutes - day * 1440)}`;
  };

  /** A detail kept with the numbers the reference reads. */
  interface Drawn {
    readonly detail: TariffDetail;
    readonly oneTime: boolean;
    /** one_time: wall minutes since 1970; daily: minutes of the day (end 0 = midnight). */
    readonly from: number;
    readonly to: number;
    /** Bit 0 = Monday. */
    readonly days: number;
  }
  const daysArb = fc.option(fc.subarray([0, 1, 2, 3, 4, 5, 6], { minLength: 1 }), {
    nil: undefined,
  });
  const detailArb = (i: number): fc.Arbitrary<Drawn> =>
    fc
      .record({
        oneTime: fc.boolean(),
        day: fc.integer({ min: 0, max: 13 }),
        fromQ: fc.integer({ min: 0, max: 95 }),
        lengthQ: fc.integer({ min: 1, max: 4 * 96 }),
        toQ: fc.integer({ min: 0, max: 95 }),
        days: daysArb,
        priority: fc.integer({ min: 0, max: 3 }),
        energy: fc.boolean(),
        time: fc.boolean(),
      })
      .map((r) => {
        const components: PriceComponent[] = [];
        if (r.energy) components.push(c('ENERGY', `0.${i + 1}1`));
        if (r.time) components.push(c('TIME', `${i + 1}.5`));
        const daysOfWeek = r.days?.map((d) => WEEKDAYS[d] as DayOfWeek);
        const more = daysOfWeek === undefined ? {} : { daysOfWeek };
        const mask = r.days === undefined ? 0x7f : r.days.reduce((m, d) => m | (1 << d), 0);
        if (r.oneTime) {
          const from = (FIRST_DAY + r.day) * 1440 + r.fromQ * QUARTER;
          const to = from + r.lengthQ * QUARTER;
          return {
            detail: oneTime(wallText(from), wallText(to), r.priority, components, more),
            oneTime: true,
            from,
            to,
            days: mask,
          };
        }
        const from = r.fromQ * QUARTER;
        const to = r.toQ * QUARTER;
        return {
          detail: daily(r.priority, components, {
            startTime: hhmm(from),
            endTime: hhmm(to),
            ...more,
          }),
          oneTime: false,
          from,
          to,
          days: mask,
        };
      });
  const detailsArb = fc
    .integer({ min: 1, max: 4 })
    .chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => detailArb(i))));
  const instantArb = fc
    .record({
      quarter: fc.integer({ min: -96, max: 16 * 96 }),
      nudge: fc.constantFrom(0, -1, 1, 7 * MIN + 13_000),
    })
    .map((r) => utc(2025, 3, 24) - 2 * H + r.quarter * QUARTER * MIN + r.nudge);

  /** The wall clock of `t` in `zone`, read with Intl directly. */
  const wallMs = (zone: string, t: number) => {
    const parts = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    }).formatToParts(t);
    const get = (type: string) => Number(parts.find((p) => p.type === type)?.value);
    const second = Math.floor(t / 1000) * 1000;
    return (
      Date.UTC(
        get('year'),
        get('month') - 1,
        get('day'),
        get('hour'),
        get('minute'),
        get('second'),
      ) +
      (t - second)
    );
  };
  const inForce = (d: Drawn, wall: number): boolean => {
    const day = Math.floor(wall / DAY_MS);
    const weekday = (((day + 3) % 7) + 7) % 7; // 1970-01-01 was a Thursday
    const on = (w: number) => (d.days & (1 << ((w + 7) % 7))) !== 0;
    if (d.oneTime) return on(weekday) && wall >= d.from * MIN && wall < d.to * MIN;
    const tod = wall - day * DAY_MS;
    const from = d.from * MIN;
    const end = d.to === 0 ? DAY_MS : d.to * MIN;
    if (from < end) return on(weekday) && tod >= from && tod < end;
    return (on(weekday) && tod >= from) || (on(weekday - 1) && tod < end);
  };
  const expected = (drawn: readonly Drawn[], zone: string, t: number, type: 'ENERGY' | 'TIME') => {
    const wall = wallMs(zone, t);
    let winner: Drawn | null = null;
    for (const d of drawn) {
      const p = d.detail.priority ?? 0;
      if (inForce(d, wall) && (winner === null || p > (winner.detail.priority ?? 0))) winner = d;
    }
    if (winner === null) return null;
    if (!drawn.some((d) => d.detail.components.some((x) => x.type === type))) return null;
    return winner.detail.components.find((x) => x.type === type)?.price ?? '0';
  };
  const norm = (price: string | null) => (price === null ? null : new Big(price).toFixed());

  it('at random instants, for random details, in UTC and Europe/Amsterdam', () => {
    fc.assert(
      fc.property(
        detailsArb,
        fc.array(instantArb, { minLength: 1, maxLength: 8 }),
        fc.constantFrom('UTC', 'Europe/Amsterdam'),
        (drawn, instants, zone) => {
          const tariff = aTariff(
            drawn.map((d) => d.detail),
            zone,
          );
          for (const t of instants) {
            for (const type of ['ENERGY', 'TIME'] as const) {
              expect([new Date(t).toISOString(), type, priceAt(tariff, t, type)]).toEqual([
                new Date(t).toISOString(),
                type,
                norm(expected(drawn, zone, t, type)),
              ]);
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('R2 bad details are refused, naming the field', () => {
  const refusal = (details: unknown[]) => {
    try {
      compileTariff({ id: 'D', currency: 'EUR', details: details as TariffDetail[] }, 'UTC');
    } catch (e) {
      expect(e).toBeInstanceOf(ChargestreamError);
      expect((e as ChargestreamError).code).toBe('CONFIG_INVALID');
      return (e as Error).message;
    }
    return 'accepted';
  };
  const ok = base([c('TIME', '1.00')]);

  it('stop not after start, unknown recurrence, bad times and dates', () => {
    expect(refusal([ok, oneTime('2025-03-12T12:00', '2025-03-12T10:00', 1, [])])).toContain(
      'details[1].stop: must be after start',
    );
    expect(refusal([ok, oneTime('2025-03-12T10:00', '2025-03-12T10:00', 1, [])])).toContain(
      'details[1].stop: must be after start',
    );
    expect(refusal([{ recurrence: 'weekly', components: [] }])).toContain(
      'details[0].recurrence: must be one of one_time, daily',
    );
    expect(refusal([daily(0, [], { startTime: '24:00' })])).toContain(
      'details[0].startTime: must be "HH:MM"',
    );
    expect(refusal([daily(0, [], { endTime: '7:00' })])).toContain('details[0].endTime');
    expect(refusal([oneTime('2025-03-12 10:00', '2025-03-12T11:00', 0, [])])).toContain(
      'details[0].start: must be a local date-time',
    );
    expect(refusal([oneTime('2025-03-12T10:00', '2025-03-12T11:00Z', 0, [])])).toContain(
      'details[0].stop: must be a local date-time',
    );
    expect(refusal([oneTime('2025-02-29T10:00', '2025-03-12T11:00', 0, [])])).toContain(
      'details[0].start: 2025-02-29T10:00 is not a calendar date',
    );
  });

  it('fields of the other recurrence, missing ones, unknown ones, prices and days', () => {
    expect(
      refusal([{ recurrence: 'one_time', stop: '2025-03-12T11:00', components: [] }]),
    ).toContain('details[0].start: is required');
    expect(refusal([daily(0, [], { start: '2025-03-12T10:00' })])).toContain(
      'details[0].start: only for one_time details',
    );
    expect(
      refusal([oneTime('2025-03-12T10:00', '2025-03-12T11:00', 0, [], { startTime: '10:00' })]),
    ).toContain('details[0].startTime: only for daily details');
    expect(refusal([{ ...ok, colour: 'red' }])).toContain(
      'details[0].colour: is not a known field',
    );
    expect(refusal([daily(0, [c('TIME', 'cheap')])])).toContain(
      'details[0].components[0].price: is not a decimal',
    );
    expect(refusal([daily(0, [], { daysOfWeek: [] })])).toContain('details[0].daysOfWeek');
    expect(refusal([daily(0, [], { daysOfWeek: ['FUNDAY' as DayOfWeek] })])).toContain(
      'details[0].daysOfWeek: unknown weekday FUNDAY',
    );
    expect(refusal([{ ...ok, priority: 1.5 }])).toContain(
      'details[0].priority: must be an integer',
    );
    expect(refusal([])).toContain('details: at least one detail is required');
  });
});

describe('R2 details in the network file', () => {
  const network = (tariff: Record<string, unknown>) => ({
    organizations: [{ id: 'cpo-1', type: 'cpo' }],
    sites: [{ id: 'site-1', operator: 'cpo-1', timezone: 'Europe/Amsterdam', tariff: 't' }],
    chargers: [{ id: 'CP1', site: 'site-1', connectors: [{ id: 1, maxPowerW: 22000 }] }],
    tariffs: [{ id: 't', currency: 'EUR', ...tariff }],
  });
  const error = (raw: unknown) => {
    try {
      parseNetwork(raw);
    } catch (e) {
      return (e as Error).message;
    }
    return 'no error';
  };
  const day = { recurrence: 'daily', components: [{ type: 'ENERGY', price: 0.3, vat: 21 }] };

  it('are compiled to elements at load, numbers kept as decimal text', () => {
    const loaded = parseNetwork(
      network({
        details: [
          day,
          {
            recurrence: 'one_time',
            priority: 2,
            start: '2025-03-12T10:00',
            stop: '2025-03-12T12:00',
            components: [{ type: 'ENERGY', price: 0.45, vat: 21 }],
          },
        ],
      }),
    );
    expect(loaded.tariffs[0]?.elements).toEqual([
      {
        components: [{ type: 'ENERGY', price: '0.45', vat: '21' }],
        restrictions: {
          startDate: '2025-03-12',
          endDate: '2025-03-13',
          startTime: '10:00',
          endTime: '12:00',
        },
      },
      { components: [{ type: 'ENERGY', price: '0.3', vat: '21' }] },
    ]);
    expect(loaded.tariffs[0]).not.toHaveProperty('details');
  });

  it('names the detail and field of a bad one, and refuses elements and details together', () => {
    expect(
      error(
        network({
          details: [
            day,
            {
              recurrence: 'one_time',
              start: '2025-03-12T10:00',
              stop: '2025-03-11T10:00',
              components: [],
            },
          ],
        }),
      ),
    ).toContain('tariffs[0].details[1].stop: must be after start');
    expect(error(network({ details: [{ ...day, recurrence: 'weekly' }] }))).toContain(
      'tariffs[0].details[0].recurrence: must be one of one_time, daily',
    );
    expect(error(network({ details: [{ ...day, endTime: '25:00' }] }))).toContain(
      'tariffs[0].details[0].endTime',
    );
    expect(
      error(
        network({ details: [day], elements: [{ components: [{ type: 'ENERGY', price: 1 }] }] }),
      ),
    ).toContain('tariffs[0]: give elements or details, not both');
    expect(error(network({}))).toContain('tariffs[0].elements: is required (or details)');
  });

  it('network.example.yaml has a details tariff and loads', () => {
    const loaded = loadNetworkFile(new URL('../../network.example.yaml', import.meta.url).pathname);
    expect(loaded.tariffs.some((t) => t.elements.some((e) => e.restrictions !== undefined))).toBe(
      true,
    );
  });
});
