import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { PriceComponent } from '../../src/config/network.js';
import { Big } from '../../src/lib/decimal.js';
import {
  addObservation,
  addObservationInPlace,
  addObservations,
  compileTariff,
  finish,
  rateSession,
  runningCost,
  runningTotals,
  startRating,
  type Cdr,
  type Observation,
  type RatingState,
  type Restrictions,
  type SessionRatingOptions,
  type TariffInput,
} from '../../src/rating/index.js';

// Domain R4 (incremental = from scratch), rating.md R4.2 (nets + VAT = gross), R4.4 / R6
// (refund capped), R5.1 (live cost), on random tariffs and random timelines.

const MIN = 60_000;
const H = 60 * MIN;

const decimal = (max: number, scale: number) =>
  fc.integer({ min: 0, max }).map((n) => new Big(n).div(10 ** scale).toFixed());
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined, freq: 2 });
/** Drops the keys fast-check filled with undefined: absent, as in a JSON tariff. */
function present<T extends object>(value: T): T {
  const out: Partial<T> = {};
  for (const key of Object.keys(value) as (keyof T)[]) {
    if (value[key] !== undefined) out[key] = value[key];
  }
  return out as T;
}

const hhmm = fc.constantFrom(
  '00:00',
  '01:00',
  '02:00',
  '02:30',
  '03:00',
  '06:00',
  '17:00',
  '22:00',
);
const restrictions: fc.Arbitrary<Restrictions> = fc
  .record(
    {
      startTime: maybe(hhmm),
      endTime: maybe(hhmm),
      startDate: maybe(fc.constantFrom('2024-10-27', '2025-03-09', '2025-03-30')),
      endDate: maybe(fc.constantFrom('2024-10-28', '2025-03-10', '2025-03-31')),
      daysOfWeek: maybe(
        fc.subarray(['MONDAY', 'WEDNESDAY', 'SATURDAY', 'SUNDAY'] as const, { minLength: 1 }),
      ),
      minKwh: maybe(fc.constantFrom('0', '0.5', '5', '12.345')),
      maxKwh: maybe(fc.constantFrom('1', '10', '20')),
      minPowerKw: maybe(fc.constantFrom('0', '7.4', '22')),
      maxPowerKw: maybe(fc.constantFrom('11', '50')),
      minCurrentA: maybe(fc.constantFrom('0', '16')),
      maxCurrentA: maybe(fc.constantFrom('32', '64')),
      minDurationS: maybe(fc.constantFrom(0, 600, 1800)),
      maxDurationS: maybe(fc.constantFrom(900, 3600)),
      reservation: fc.option(fc.constantFrom('RESERVATION', 'RESERVATION_EXPIRES' as const), {
        nil: undefined,
        freq: 8,
      }),
    },
    { requiredKeys: [] },
  )
  .map(present);

const component = (type: PriceComponent['type']): fc.Arbitrary<PriceComponent> =>
  fc
    .record({
      type: fc.constant(type),
      price: decimal(5000, 3),
      vat: maybe(fc.constantFrom('0', '7.7', '10', '21')),
      stepSize: maybe(fc.constantFrom(0, 1, 60, 300, 500, 900)),
    })
    .map(present);

const element = fc
  .subarray(['ENERGY', 'TIME', 'PARKING_TIME', 'FLAT', 'RESERVATION'] as const, { minLength: 1 })
  .chain((types) =>
    fc.record({
      components: fc.tuple(...types.map(component)),
      restrictions: maybe(restrictions),
    }),
  )
  .map((e) => (e.restrictions === undefined ? { components: e.components } : e));

/** A price bound whose incl. VAT amount, when given, is not below the excl. one. */
const bound = (from: number) =>
  fc.record({ exclVat: decimal(2000, 2), vat: maybe(decimal(500, 2)) }).map(({ exclVat, vat }) => {
    const excl = new Big(exclVat).plus(from);
    return vat === undefined
      ? { exclVat: excl.toFixed() }
      : { exclVat: excl.toFixed(), inclVat: excl.plus(vat).toFixed() };
  });

const tariffInput: fc.Arbitrary<TariffInput> = fc
  .record({
    currency: fc.constantFrom('EUR', 'EUR', 'JPY', 'KWD'),
    elements: fc.array(element, { minLength: 1, maxLength: 4 }),
    minPrice: maybe(bound(0)),
    maxPrice: maybe(bound(25)),
  })
  .map(present);

const zone = fc.constantFrom(
  'UTC',
  'Europe/Amsterdam',
  'America/New_York',
  'Australia/Lord_Howe', // 30-minute DST shift
  'Asia/Kolkata',
);

/** Starts near DST nights, so sessions cross them. */
const anchors = [
  Date.UTC(2024, 9, 26, 22),
  Date.UTC(2024, 10, 3, 4),
  Date.UTC(2025, 2, 9, 5),
  Date.UTC(2025, 2, 29, 23),
  Date.UTC(2025, 3, 5, 14),
  Date.UTC(2025, 5, 1, 12),
];

interface Session {
  readonly startTs: number;
  readonly timeline: readonly Observation[];
  readonly endTs: number;
}

const session: fc.Arbitrary<Session> = fc
  .record({
    start: fc.tuple(fc.constantFrom(...anchors), fc.integer({ min: 0, max: 6 * H })),
    first: fc.boolean(),
    steps: fc.array(
      fc.record({
        dt: fc.oneof(
          fc.constant(0),
          fc.integer({ min: 1, max: 60_000 }),
          fc.integer({ min: 1, max: 3 * H }),
        ),
        dmWh: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 8_000_000 })),
        powerW: maybe(fc.integer({ min: 0, max: 80_000 })),
        currentA: maybe(fc.double({ min: 0, max: 100, noNaN: true })),
        state: fc.constantFrom('charging', 'charging', 'parking', 'reservation', 'idle'),
      }),
      { maxLength: 30 },
    ),
    tail: fc.integer({ min: 0, max: 2 * H }),
  })
  .map(({ start, first, steps, tail }) => {
    const startTs = start[0] + start[1];
    let ts = startTs;
    let mwh = 0;
    const timeline: Observation[] = [];
    steps.forEach((s, i) => {
      if (i > 0 || !first) ts += s.dt;
      mwh += s.dmWh;
      const o: Observation = { ts, energyWh: mwh / 1000, state: s.state };
      timeline.push({
        ...o,
        ...(s.powerW === undefined ? {} : { powerW: s.powerW }),
        ...(s.currentA === undefined ? {} : { currentA: s.currentA }),
      });
    });
    return { startTs, timeline, endTs: ts + tail };
  });

const ratePlan = maybe(
  fc.record({
    chargingTimeRefundPer15Min: fc.constantFrom('0.10', '0.25', '0.50', '3.00'),
    standardBoost: fc.boolean(),
  }),
);

const roundTrip = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;
const sum = (values: readonly string[]) => values.reduce((a, v) => a.plus(v), new Big(0));

/** Places in a session's timeline where its readings are cut into batches. */
const cutPoints = fc.array(fc.integer({ min: 0, max: 30 }), { maxLength: 6 });

describe('rating properties', () => {
  it('R4 incremental (JSON round trip after every reading) equals rating from scratch', () => {
    fc.assert(
      fc.property(tariffInput, zone, session, ratePlan, (input, tz, s, plan) => {
        const tariff = compileTariff(input, tz);
        const options: SessionRatingOptions = plan === undefined ? {} : { ratePlan: plan };
        const scratch = rateSession(tariff, s.timeline, {
          ...options,
          startTs: s.startTs,
          endTs: s.endTs,
        });
        let state: RatingState = roundTrip(startRating(roundTrip(tariff), s.startTs, options));
        for (const o of s.timeline) {
          state = roundTrip(addObservation(state, o));
          runningCost(state); // R5.1 live cost on every reading, never changing the state
        }
        expect(finish(state, s.endTs)).toEqual(scratch);
      }),
      { numRuns: 300 },
    );
  });

  it('R4 any batching of the same readings gives the same CDR', () => {
    fc.assert(
      fc.property(tariffInput, zone, session, cutPoints, (input, tz, s, cuts) => {
        const tariff = compileTariff(input, tz);
        const scratch = rateSession(tariff, s.timeline, { startTs: s.startTs, endTs: s.endTs });
        const bounds = [
          ...new Set([0, ...cuts.map((c) => Math.min(c, s.timeline.length)), s.timeline.length]),
        ].sort((a, b) => a - b);
        let state = startRating(tariff, s.startTs);
        for (let i = 1; i < bounds.length; i++) {
          state = structuredClone(
            addObservations(state, s.timeline.slice(bounds[i - 1], bounds[i])),
          );
        }
        expect(finish(state, s.endTs)).toEqual(scratch);
      }),
      { numRuns: 300 },
    );
  });

  it('R4 observations added in place give the states added one by one, the first given untouched', () => {
    fc.assert(
      fc.property(tariffInput, zone, session, cutPoints, (input, tz, s, cuts) => {
        const tariff = compileTariff(input, tz);
        // Cuts: where the holder's state is taken over by a new batch (a copy, as a worker's
        // next batch unpacks it), after which the first observation copies again.
        const cutAt = new Set(cuts);
        let pure = startRating(tariff, s.startTs);
        let held = pure;
        let given = structuredClone(held);
        let givenState = held;
        s.timeline.forEach((o, i) => {
          if (cutAt.has(i)) {
            expect(givenState).toEqual(given);
            held = { ...held };
            given = structuredClone(held);
            givenState = held;
          }
          pure = addObservation(pure, o);
          held = addObservationInPlace(held, o);
          expect(held).toEqual(pure);
          expect(runningCost(held)).toEqual(runningCost(pure));
        });
        expect(givenState).toEqual(given);
        expect(finish(held, s.endTs)).toEqual(finish(pure, s.endTs));
      }),
      { numRuns: 300 },
    );
  });

  const check = (cdr: Cdr, digits: number) => {
    const pattern = new RegExp(digits === 0 ? '^-?\\d+$' : `^-?\\d+\\.\\d{${digits}}$`);
    for (const amount of [
      cdr.totalExclVat,
      cdr.totalVat,
      cdr.totalInclVat,
      ...cdr.lines.flatMap((l) => [l.net, l.vat]),
    ]) {
      expect(amount).toMatch(pattern);
    }
    // R4.2: total incl. VAT = nets + VAT, exactly.
    expect(new Big(cdr.totalExclVat).plus(cdr.totalVat).eq(cdr.totalInclVat)).toBe(true);
    // The lines (refund included) add up to the totals, apart from what min/max added.
    const adjExcl = new Big(cdr.adjustment?.exclVat ?? 0);
    const adjVat = new Big(cdr.adjustment?.inclVat ?? 0).minus(adjExcl);
    expect(
      sum(cdr.lines.map((l) => l.net))
        .plus(adjExcl)
        .eq(cdr.totalExclVat),
    ).toBe(true);
    expect(
      sum(cdr.lines.map((l) => l.vat))
        .plus(adjVat)
        .eq(cdr.totalVat),
    ).toBe(true);
    if (cdr.adjustment === null) {
      // VAT per rate on the sum of the rounded nets at that rate, half-up.
      for (const v of cdr.vat) {
        const expected =
          v.rate === null
            ? new Big(0)
            : new Big(v.taxable).times(v.rate).div(100).round(digits, Big.roundHalfUp);
        expect(new Big(v.vat).eq(expected)).toBe(true);
      }
      expect(sum(cdr.vat.map((v) => v.vat)).eq(cdr.totalVat)).toBe(true);
      expect(sum(cdr.vat.map((v) => v.taxable)).eq(cdr.totalExclVat)).toBe(true);
    }
  };

  it('R4.2 nets + VAT = gross exactly; lines and VAT rates reconcile with the totals', () => {
    fc.assert(
      fc.property(tariffInput, zone, session, ratePlan, (input, tz, s, plan) => {
        const tariff = compileTariff(input, tz);
        const cdr = rateSession(tariff, s.timeline, {
          startTs: s.startTs,
          endTs: s.endTs,
          ...(plan === undefined ? {} : { ratePlan: plan }),
        });
        check(cdr, tariff.minorUnits);
      }),
      { numRuns: 300 },
    );
  });

  it('R6 the refund never exceeds the cost and no total is negative', () => {
    fc.assert(
      fc.property(tariffInput, zone, session, ratePlan, (input, tz, s, plan) => {
        const tariff = compileTariff(input, tz);
        const base = { startTs: s.startTs, endTs: s.endTs };
        const without = rateSession(tariff, s.timeline, base);
        const cdr = rateSession(tariff, s.timeline, {
          ...base,
          ratePlan: plan ?? { chargingTimeRefundPer15Min: '0.50' },
        });
        const refund = cdr.lines.find((l) => l.type === 'Parking Refund');
        const refunded = new Big(refund?.net ?? 0).neg();
        expect(refunded.gte(0)).toBe(true);
        expect(refunded.lte(without.totalExclVat)).toBe(true);
        expect(new Big(without.totalExclVat).minus(refunded).eq(cdr.totalExclVat)).toBe(true);
        if (plan?.standardBoost === true) expect(refund).toBeUndefined();
        for (const amount of [cdr.totalExclVat, cdr.totalVat, cdr.totalInclVat]) {
          expect(new Big(amount).gte(0)).toBe(true);
        }
        for (const v of cdr.vat) expect(new Big(v.taxable).gte(0)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('R2.3 periods tile the session: contiguous, energy and time conserved, each a change', () => {
    fc.assert(
      fc.property(tariffInput, zone, session, (input, tz, s) => {
        const cdr = rateSession(compileTariff(input, tz), s.timeline, {
          startTs: s.startTs,
          endTs: s.endTs,
        });
        const periods = cdr.chargingPeriods;
        const energy = s.timeline.at(-1)?.energyWh ?? 0;
        expect(
          sum(periods.map((p) => p.energyWh)).eq(new Big(Math.round(energy * 1000)).div(1000)),
        ).toBe(true);
        expect(
          sum(periods.map((p) => p.durationS))
            .times(1000)
            .eq(s.endTs - s.startTs),
        ).toBe(true);
        periods.forEach((p, i) => {
          const next = periods[i + 1];
          if (next === undefined) return;
          expect(next.startTs).toBe(p.endTs);
          expect(
            next.state !== p.state || JSON.stringify(next.elements) !== JSON.stringify(p.elements),
          ).toBe(true);
        });
      }),
      { numRuns: 300 },
    );
  });

  it('R5.1 without step sizes the running cost at the last reading is the final cost', () => {
    const noSteps = tariffInput.map((t) => ({
      ...t,
      elements: t.elements.map((e) => ({
        ...e,
        components: e.components.map((c) => ({ ...c, stepSize: 0 })),
      })),
    }));
    fc.assert(
      fc.property(noSteps, zone, session, ratePlan, (input, tz, s, plan) => {
        const tariff = compileTariff(input, tz);
        const state = addObservations(
          startRating(tariff, s.startTs, plan === undefined ? {} : { ratePlan: plan }),
          s.timeline,
        );
        const live = runningCost(state);
        const cdr = finish(state, state.ts);
        if (cdr.expiredReservation) return; // re-rated with RESERVATION_EXPIRES at the end
        expect([live.totalExclVat, live.totalVat, live.totalInclVat]).toEqual([
          cdr.totalExclVat,
          cdr.totalVat,
          cdr.totalInclVat,
        ]);
      }),
      { numRuns: 300 },
    );
  });

  it('R5.1 the running totals alone equal the running cost’s totals after every reading', () => {
    fc.assert(
      fc.property(tariffInput, zone, session, ratePlan, (input, tz, s, plan) => {
        const tariff = compileTariff(input, tz);
        let state = startRating(tariff, s.startTs, plan === undefined ? {} : { ratePlan: plan });
        const both = () => {
          const full = runningCost(state);
          expect(runningTotals(state)).toEqual({
            currency: full.currency,
            totalExclVat: full.totalExclVat,
            totalVat: full.totalVat,
            totalInclVat: full.totalInclVat,
          });
        };
        both();
        for (const o of s.timeline) {
          state = addObservation(state, o);
          both();
        }
      }),
      { numRuns: 500 },
    );
  });
});

/**
 * A reference for R2.1/R2.2 written the slow, obvious way: for every minute of the session,
 * read the wall clock with Intl, evaluate every restriction and take the first element per
 * dimension. No spans, no caches, no thresholds. Tariffs without kWh bounds and timelines on
 * whole minutes, so both sides are exact.
 */
const WEEKDAYS = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'];
const DAY_NAMES = ['MONDAY', 'TUESDAY', 'WEDNESDAY', 'THURSDAY', 'FRIDAY', 'SATURDAY', 'SUNDAY'];

function wallClock(tz: string, t: number) {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-GB', {
      timeZone: tz,
      weekday: 'long',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    })
      .formatToParts(t)
      .map((p) => [p.type, p.value]),
  );
  return {
    date: `${parts['year']}-${parts['month']}-${parts['day']}`,
    minutes: Number(parts['hour']) * 60 + Number(parts['minute']),
    weekday: DAY_NAMES[WEEKDAYS.indexOf(parts['weekday'] ?? '')] ?? '',
  };
}

const toMinutes = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3));

function referenceHolds(
  r: Restrictions,
  tz: string,
  t: number,
  sinceStartS: number,
  state: Observation['state'],
  powerW: number | undefined,
  currentA: number | undefined,
): boolean {
  const wall = wallClock(tz, t);
  const start = r.startTime === undefined ? 0 : toMinutes(r.startTime);
  const end = r.endTime === undefined || r.endTime === '00:00' ? 1440 : toMinutes(r.endTime);
  const inWindow =
    start < end
      ? wall.minutes >= start && wall.minutes < end
      : start > end
        ? wall.minutes >= start || wall.minutes < end
        : true;
  const num = (v: string | number | undefined, none: number) =>
    v === undefined ? none : Number(v);
  const inBand = (
    x: number | undefined,
    min: string | number | undefined,
    max: string | number | undefined,
  ) =>
    (min === undefined && max === undefined) ||
    (x !== undefined && x >= num(min, -Infinity) && x < num(max, Infinity));
  return (
    inWindow &&
    (r.startDate === undefined || wall.date >= r.startDate) &&
    (r.endDate === undefined || wall.date < r.endDate) &&
    (r.daysOfWeek === undefined || r.daysOfWeek.includes(wall.weekday as never)) &&
    sinceStartS >= (r.minDurationS ?? -Infinity) &&
    sinceStartS < (r.maxDurationS ?? Infinity) &&
    inBand(powerW === undefined ? undefined : powerW / 1000, r.minPowerKw, r.maxPowerKw) &&
    inBand(currentA, r.minCurrentA, r.maxCurrentA) &&
    (r.reservation === undefined || (r.reservation === 'RESERVATION' && state === 'reservation'))
  );
}

/** Seconds per 'dimension:element' from the reference. */
function referenceTimes(input: TariffInput, tz: string, s: Session): Record<string, number> {
  const out: Record<string, number> = {};
  const dimOf = {
    charging: 'TIME',
    parking: 'PARKING_TIME',
    reservation: 'RESERVATION',
    idle: null,
  } as const;
  const points: Observation[] = [{ ts: s.startTs, energyWh: 0, state: 'charging' }, ...s.timeline];
  let powerW: number | undefined;
  let currentA: number | undefined;
  points.forEach((o, i) => {
    powerW = o.powerW ?? powerW;
    currentA = o.currentA ?? currentA;
    const until = points[i + 1]?.ts ?? s.endTs;
    const dim = dimOf[o.state];
    if (dim === null) return;
    for (let t = o.ts; t < until; t += MIN) {
      const chosen = input.elements.findIndex((e) => {
        const types = e.components.map((c) => c.type);
        const r = (e.restrictions ?? {}) as Restrictions;
        const serves =
          dim === 'RESERVATION'
            ? types.includes('RESERVATION') ||
              (r.reservation !== undefined && types.includes('TIME'))
            : dim === 'TIME'
              ? types.includes('TIME') && r.reservation === undefined
              : types.includes(dim);
        return (
          serves && referenceHolds(r, tz, t, (t - s.startTs) / 1000, o.state, powerW, currentA)
        );
      });
      const key = `${dim}:${chosen}`;
      out[key] = (out[key] ?? 0) + 60;
    }
  });
  return out;
}

describe('rating against a brute-force reference', () => {
  const minuteSession = session.map((s) => {
    const snap = (t: number) => Math.floor(t / MIN) * MIN;
    return {
      startTs: snap(s.startTs),
      timeline: s.timeline.map((o) => ({ ...o, ts: snap(o.ts) })),
      endTs: snap(s.endTs),
    };
  });
  const noKwh = tariffInput.map((t) => ({
    ...t,
    elements: t.elements.map((e) => {
      if (e.restrictions === undefined) return e;
      const rest: Record<string, unknown> = { ...e.restrictions };
      delete rest['minKwh'];
      delete rest['maxKwh'];
      return { ...e, restrictions: rest };
    }),
  }));

  it('R2.1 R2.2 every minute is priced by the element the reference picks (DST zones included)', () => {
    fc.assert(
      fc.property(noKwh, zone, minuteSession, (input, tz, s) => {
        const cdr = rateSession(compileTariff(input, tz), s.timeline, {
          startTs: s.startTs,
          endTs: s.endTs,
        });
        if (cdr.expiredReservation) return;
        const got: Record<string, number> = {};
        for (const p of cdr.chargingPeriods) {
          const dim = {
            charging: 'TIME',
            parking: 'PARKING_TIME',
            reservation: 'RESERVATION',
            idle: null,
          }[p.state];
          if (dim === null || Number(p.durationS) === 0) continue;
          const key = `${dim}:${p.elements[dim as 'TIME'] ?? -1}`;
          got[key] = (got[key] ?? 0) + Number(p.durationS);
        }
        expect(got).toEqual(referenceTimes(input, tz, s));
      }),
      { numRuns: 150 },
    );
  });
});
