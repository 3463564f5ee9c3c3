import type { ComponentType, PriceComponent } from '../config/network.js';
import { ChargestreamError } from '../lib/errors.js';
import { Big, minorUnits } from '../lib/decimal.js';
import { checkTimeZone, DAY_MS } from './local-time.js';
import { compileDetails, type TariffDetail } from './tariff-details.js';
import type { TariffValidity } from './validity.js';

/**
 * The tariff the rater reads (OCPI 2.2.1 shape, rating.md "Model") and its compiled form.
 * `compileTariff` parses every decimal, restriction and time once; the result is plain data
 * (numbers, strings, booleans, arrays), so it crosses `postMessage`, Piscina tasks and JSON
 * unchanged and costs nothing to share between sessions.
 */

export type Dimension = ComponentType;
export type DayOfWeek =
  'MONDAY' | 'TUESDAY' | 'WEDNESDAY' | 'THURSDAY' | 'FRIDAY' | 'SATURDAY' | 'SUNDAY';

/** OCPI restrictions; decimals as text (numbers accepted, as the network file allows). */
export interface Restrictions {
  /** Local "HH:MM", inclusive. */
  readonly startTime?: string;
  /** Local "HH:MM", exclusive; before `startTime` wraps past midnight; "00:00" = end of day. */
  readonly endTime?: string;
  /** Local "YYYY-MM-DD", inclusive. */
  readonly startDate?: string;
  /** Local "YYYY-MM-DD", exclusive. */
  readonly endDate?: string;
  readonly minKwh?: string | number;
  readonly maxKwh?: string | number;
  readonly minPowerKw?: string | number;
  readonly maxPowerKw?: string | number;
  readonly minCurrentA?: string | number;
  readonly maxCurrentA?: string | number;
  readonly minDurationS?: number;
  readonly maxDurationS?: number;
  readonly daysOfWeek?: readonly DayOfWeek[];
  readonly reservation?: 'RESERVATION' | 'RESERVATION_EXPIRES';
}

export interface TariffElementInput {
  readonly components: readonly PriceComponent[];
  /** Typed, or the loose record of the network file: both are checked field by field. */
  readonly restrictions?: Restrictions | Readonly<Record<string, unknown>>;
}

/** Validity is not the rater's concern (resolution picks the tariff valid at the start). */
interface TariffHead extends TariffValidity {
  readonly id?: string;
  readonly currency: string;
  readonly minPrice?: { readonly exclVat: string; readonly inclVat?: string };
  readonly maxPrice?: { readonly exclVat: string; readonly inclVat?: string };
}

/** Structurally compatible with the network file's `Tariff`. */
export interface TariffInput extends TariffHead {
  readonly elements: readonly TariffElementInput[];
}

/**
 * A tariff written with the seed's roaming tariff details (domain R2) instead of elements;
 * `compileTariff` compiles them to elements with `compileDetails`.
 */
export interface TariffDetailsInput extends TariffHead {
  readonly details: readonly TariffDetail[];
}

/** Dimension indexes used throughout the compiled form and the rating state. */
export const ENERGY = 0;
export const TIME = 1;
export const PARKING = 2;
export const FLAT = 3;
export const RESERVATION = 4;
export const DIMENSIONS: readonly Dimension[] = [
  'ENERGY',
  'TIME',
  'PARKING_TIME',
  'FLAT',
  'RESERVATION',
];

export interface CompiledComponent {
  /** Price excl. VAT, normalized decimal text: per kWh, per hour or per session. */
  readonly price: string;
  /** VAT percent as decimal text, or null when the tariff states none (not the same as "0"). */
  readonly vat: string | null;
  /** Step in Wh (ENERGY) or s (time dimensions); 0 = no rounding. */
  readonly stepSize: number;
}

/**
 * One element. Absent bounds are ±Number.MAX_VALUE (finite, so JSON keeps them). Energy in
 * integer mWh and durations in ms: the rater's units.
 */
export interface CompiledElement {
  /** Whether any of startTime/endTime/startDate/endDate/daysOfWeek is present. */
  readonly local: boolean;
  readonly startTod: number;
  readonly endTod: number;
  readonly startDay: number;
  readonly endDay: number;
  /** Bit 0 = Monday … bit 6 = Sunday. */
  readonly days: number;
  readonly minMwh: number;
  readonly maxMwh: number;
  readonly minMs: number;
  readonly maxMs: number;
  readonly power: boolean;
  readonly minW: number;
  readonly maxW: number;
  readonly current: boolean;
  readonly minA: number;
  readonly maxA: number;
  /** 0 none, 1 RESERVATION, 2 RESERVATION_EXPIRES. */
  readonly reservation: 0 | 1 | 2;
  /** Indexed by dimension (ENERGY … RESERVATION); null = the element does not price it. */
  readonly components: readonly (CompiledComponent | null)[];
}

export interface CompiledTariff {
  readonly id: string | null;
  readonly currency: string;
  readonly minorUnits: number;
  readonly timeZone: string;
  readonly elements: readonly CompiledElement[];
  /** Per dimension, the elements that carry a component for it, in priority order (R2.1). */
  readonly candidates: readonly (readonly number[])[];
  /** The same with RESERVATION_EXPIRES elements first: for a reservation that expired. */
  readonly candidatesExpired: readonly (readonly number[])[];
  readonly hasLocal: boolean;
  readonly hasExpires: boolean;
  /** Wall times (ms since midnight, sorted, first 0) at which a local restriction may flip. */
  readonly boundaries: readonly number[];
  /** Sorted distinct energy bounds (mWh) and duration bounds (ms) where elements may flip. */
  readonly energyThresholds: readonly number[];
  readonly durationThresholds: readonly number[];
  readonly minPrice: PriceBound | null;
  readonly maxPrice: PriceBound | null;
}

export interface PriceBound {
  readonly exclVat: string;
  readonly inclVat: string | null;
}

const BIG = Number.MAX_VALUE;
const DAY_NAMES: readonly DayOfWeek[] = [
  'MONDAY',
  'TUESDAY',
  'WEDNESDAY',
  'THURSDAY',
  'FRIDAY',
  'SATURDAY',
  'SUNDAY',
];
const RESTRICTION_KEYS = new Set([
  'startTime',
  'endTime',
  'startDate',
  'endDate',
  'minKwh',
  'maxKwh',
  'minPowerKw',
  'maxPowerKw',
  'minCurrentA',
  'maxCurrentA',
  'minDurationS',
  'maxDurationS',
  'daysOfWeek',
  'reservation',
]);
const DECIMAL = /^-?[0-9]+(\.[0-9]+)?$/;
const HHMM = /^([01][0-9]|2[0-3]):([0-5][0-9])$/;
const DATE = /^([0-9]{4})-([0-9]{2})-([0-9]{2})$/;

/**
 * Compiles a tariff for a site's time zone. Throws CONFIG_INVALID naming the field when the
 * tariff cannot be rated (the network schema normally catches these first).
 */
export function compileTariff(
  tariff: TariffInput | TariffDetailsInput,
  timeZone: string,
): CompiledTariff {
  const where = `tariff ${tariff.id ?? '(inline)'}`;
  const fail = (field: string, why: string): never => {
    throw new ChargestreamError('CONFIG_INVALID', `${where}: ${field}: ${why}`);
  };
  try {
    checkTimeZone(timeZone);
  } catch {
    fail('timeZone', `unknown IANA time zone ${timeZone}`);
  }
  if (!/^[A-Z]{3}$/.test(tariff.currency)) fail('currency', 'must be an ISO 4217 code');
  const source = elementsOf(tariff, fail);

  const elements = source.map((element, i) =>
    compileElement(element, (field, why) => fail(`elements[${i}].${field}`, why)),
  );
  const candidates: number[][] = DIMENSIONS.map(() => []);
  const expiresFirst: number[][] = DIMENSIONS.map(() => []);
  const others: number[][] = DIMENSIONS.map(() => []);
  elements.forEach((el, i) => {
    el.components.forEach((c, d) => {
      if (c === null) return;
      candidates[d]?.push(i);
      (el.reservation === 2 ? expiresFirst : others)[d]?.push(i);
    });
  });
  const distinct = (values: number[]) => [...new Set(values)].sort((a, b) => a - b);
  const boundaries = distinct([
    0,
    ...elements.flatMap((e) => (e.local ? [e.startTod % DAY_MS, e.endTod % DAY_MS] : [])),
  ]);
  return {
    id: tariff.id ?? null,
    currency: tariff.currency,
    minorUnits: minorUnits(tariff.currency),
    timeZone,
    elements,
    candidates,
    candidatesExpired: DIMENSIONS.map((_, d) => [...(expiresFirst[d] ?? []), ...(others[d] ?? [])]),
    hasLocal: elements.some((e) => e.local),
    hasExpires: elements.some((e) => e.reservation === 2),
    boundaries,
    energyThresholds: distinct(
      elements.flatMap((e) => [e.minMwh, e.maxMwh]).filter((v) => v > 0 && v < BIG),
    ),
    durationThresholds: distinct(
      elements.flatMap((e) => [e.minMs, e.maxMs]).filter((v) => v > 0 && v < BIG),
    ),
    ...priceBounds(tariff, fail),
  };
}

/** The tariff's elements, or those its details compile to. */
function elementsOf(
  tariff: TariffInput | TariffDetailsInput,
  fail: (field: string, why: string) => never,
): readonly TariffElementInput[] {
  const given = tariff as Partial<TariffInput & TariffDetailsInput>;
  if (given.details !== undefined) {
    if (given.elements !== undefined) fail('details', 'give elements or details, not both');
    return compileDetails(given.details, fail);
  }
  if (given.elements === undefined || given.elements.length === 0) {
    return fail('elements', 'at least one element (or details) is required');
  }
  return given.elements;
}

/** minPrice / maxPrice, refused when they contradict each other (R4.3 could not hold). */
function priceBounds(
  tariff: TariffHead,
  fail: (field: string, why: string) => never,
): { minPrice: PriceBound | null; maxPrice: PriceBound | null } {
  const minPrice = bound(tariff.minPrice, (why) => fail('minPrice', why));
  const maxPrice = bound(tariff.maxPrice, (why) => fail('maxPrice', why));
  for (const [name, b] of [
    ['minPrice', minPrice],
    ['maxPrice', maxPrice],
  ] as const) {
    if (b?.inclVat != null && new Big(b.inclVat).lt(b.exclVat)) {
      fail(`${name}.inclVat`, 'is below exclVat');
    }
  }
  if (minPrice !== null && maxPrice !== null) {
    if (new Big(minPrice.exclVat).gt(maxPrice.exclVat))
      fail('minPrice.exclVat', 'is above maxPrice');
    if (
      minPrice.inclVat !== null &&
      maxPrice.inclVat !== null &&
      new Big(minPrice.inclVat).gt(maxPrice.inclVat)
    ) {
      fail('minPrice.inclVat', 'is above maxPrice');
    }
  }
  return { minPrice, maxPrice };
}

function bound(price: TariffHead['minPrice'], fail: (why: string) => never): PriceBound | null {
  if (price === undefined) return null;
  return {
    exclVat: decimalText(price.exclVat) ?? fail('exclVat is not a decimal'),
    inclVat:
      price.inclVat === undefined
        ? null
        : (decimalText(price.inclVat) ?? fail('inclVat is not a decimal')),
  };
}

function decimalText(value: unknown): string | null {
  const text = typeof value === 'number' ? String(value) : value;
  if (typeof text !== 'string' || !DECIMAL.test(text)) return null;
  return new Big(text).toFixed();
}

function compileElement(
  element: TariffElementInput,
  fail: (field: string, why: string) => never,
): CompiledElement {
  const r = (element.restrictions ?? {}) as Readonly<Record<string, unknown>>;
  for (const key of Object.keys(r)) {
    if (!RESTRICTION_KEYS.has(key)) fail(`restrictions.${key}`, 'is not a known restriction');
  }
  const field = (name: string) => `restrictions.${name}`;
  const text = (name: string): string | null => {
    const v = r[name];
    if (v === undefined || v === null) return null;
    return decimalText(v) ?? fail(field(name), 'is not a decimal');
  };
  const time = (name: string): number | null => {
    const v = r[name];
    if (v === undefined || v === null) return null;
    const m = typeof v === 'string' ? HHMM.exec(v) : null;
    if (m === null) return fail(field(name), 'must be "HH:MM"');
    return (Number(m[1]) * 60 + Number(m[2])) * 60_000;
  };
  const date = (name: string): number | null => {
    const v = r[name];
    if (v === undefined || v === null) return null;
    const m = typeof v === 'string' ? DATE.exec(v) : null;
    const day = m === null ? NaN : Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
    if (Number.isNaN(day)) return fail(field(name), 'must be "YYYY-MM-DD"');
    return day / DAY_MS;
  };
  const seconds = (name: string): number | null => {
    const v = r[name];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
      return fail(field(name), 'must be a whole number of seconds ≥ 0');
    }
    return v * 1000;
  };
  // kWh bounds compare with integer mWh: e ≥ x ⇔ e ≥ ceil(x) for integer e, for min and max.
  const mwh = (name: string): number | null => {
    const t = text(name);
    return t === null ? null : Number(new Big(t).times(1_000_000).round(0, Big.roundUp).toFixed());
  };
  const scaled = (name: string, factor: number): number | null => {
    const t = text(name);
    return t === null ? null : Number(new Big(t).times(factor).toFixed());
  };

  const startTime = time('startTime');
  const endTime = time('endTime');
  const startDay = date('startDate');
  const endDay = date('endDate');
  let days = 0x7f;
  if (r['daysOfWeek'] !== undefined) {
    const list = r['daysOfWeek'];
    if (!Array.isArray(list)) fail(field('daysOfWeek'), 'must be a list of weekdays');
    days = 0;
    for (const name of list as unknown[]) {
      const index = DAY_NAMES.indexOf(name as DayOfWeek);
      if (index < 0) fail(field('daysOfWeek'), `unknown weekday ${String(name)}`);
      days |= 1 << index;
    }
  }
  const reservationValue = r['reservation'];
  let reservation: 0 | 1 | 2 = 0;
  if (reservationValue === 'RESERVATION') reservation = 1;
  else if (reservationValue === 'RESERVATION_EXPIRES') reservation = 2;
  else if (reservationValue !== undefined) {
    fail(field('reservation'), 'must be RESERVATION or RESERVATION_EXPIRES');
  }
  const minW = scaled('minPowerKw', 1000);
  const maxW = scaled('maxPowerKw', 1000);
  const minA = scaled('minCurrentA', 1);
  const maxA = scaled('maxCurrentA', 1);

  const byType = (type: ComponentType): PriceComponent | undefined =>
    element.components.find((c) => c.type === type);
  const compile = (c: PriceComponent | undefined, i: string): CompiledComponent | null => {
    if (c === undefined) return null;
    const stepSize = c.stepSize ?? 0;
    if (!Number.isInteger(stepSize) || stepSize < 0) {
      fail(`components[${i}].stepSize`, 'must be a whole number ≥ 0');
    }
    return {
      price: decimalText(c.price) ?? fail(`components[${i}].price`, 'is not a decimal'),
      vat:
        c.vat === undefined || c.vat === null
          ? null
          : (decimalText(c.vat) ?? fail(`components[${i}].vat`, 'is not a percentage')),
      stepSize,
    };
  };
  // Reservation elements carry FLAT and TIME (rating.md R2.2); their TIME prices the
  // reservation, so it serves the RESERVATION dimension, never charging time.
  const timeComponent = byType('TIME');
  const components = [
    compile(byType('ENERGY'), 'ENERGY'),
    reservation === 0 ? compile(timeComponent, 'TIME') : null,
    compile(byType('PARKING_TIME'), 'PARKING_TIME'),
    compile(byType('FLAT'), 'FLAT'),
    compile(
      byType('RESERVATION') ?? (reservation === 0 ? undefined : timeComponent),
      'RESERVATION',
    ),
  ];
  return {
    local:
      startTime !== null ||
      endTime !== null ||
      startDay !== null ||
      endDay !== null ||
      days !== 0x7f,
    startTod: startTime ?? 0,
    // "00:00" as an end, or no end, is the end of the day.
    endTod: endTime === null || endTime === 0 ? DAY_MS : endTime,
    startDay: startDay ?? -BIG,
    endDay: endDay ?? BIG,
    days,
    minMwh: mwh('minKwh') ?? -BIG,
    maxMwh: mwh('maxKwh') ?? BIG,
    minMs: seconds('minDurationS') ?? -BIG,
    maxMs: seconds('maxDurationS') ?? BIG,
    power: minW !== null || maxW !== null,
    minW: minW ?? -BIG,
    maxW: maxW ?? BIG,
    current: minA !== null || maxA !== null,
    minA: minA ?? -BIG,
    maxA: maxA ?? BIG,
    reservation,
    components,
  };
}

/**
 * Whether the local part of an element's restrictions holds at a wall clock. Start == end
 * (e.g. 10:00–10:00) is read as a 24-hour window, i.e. always.
 */
export function holdsLocally(
  e: CompiledElement,
  day: number,
  timeOfDay: number,
  weekday: number,
): boolean {
  if (day < e.startDay || day >= e.endDay) return false;
  if ((e.days & (1 << weekday)) === 0) return false;
  const s = e.startTod;
  const end = e.endTod;
  if (s < end) return timeOfDay >= s && timeOfDay < end;
  if (s > end) return timeOfDay >= s || timeOfDay < end;
  return true;
}
