import type { ComponentType, PriceComponent } from '../config/network.js';
import { DAY_MS } from './local-time.js';
import type { DayOfWeek, Restrictions } from './tariff.js';

/**
 * Tariff details, the way the seed's roaming tariffs are written (domain R2), compiled to the
 * OCPI element model the rater reads (rating.md R2.1).
 *
 * A detail is a complete price list for a time frame: `one_time` (a local date-time range) or
 * `daily` (a local time window on chosen weekdays), start inclusive, stop exclusive. Where
 * frames overlap, the higher `priority` prices everything; equal priorities: the detail listed
 * first. A price the detail does not give is zero while it is in force (the seed: "empty
 * fields are treated as zero"), so a lower detail never leaks through a higher one.
 *
 * Compilation: details sorted by priority (descending, stable), each becomes one to three
 * elements whose restrictions describe its frame exactly; R2.1 picks, per dimension, the first
 * element whose restrictions hold, which is then the highest-priority detail in force:
 *
 *   one_time 2025-03-11T14:00 → 2025-03-13T09:00          daily 22:00–06:00 on FRIDAY
 *   ┌ startDate 03-11, endDate 03-12, startTime 14:00      ┌ startTime 22:00, daysOfWeek FRIDAY
 *   ├ startDate 03-12, endDate 03-13  (whole days)         └ endTime 06:00, daysOfWeek SATURDAY
 *   └ startDate 03-13, endDate 03-14, endTime 09:00
 *
 * Local times are wall-clock times in the site's zone, read like OCPI restrictions (R2.2): on
 * the autumn night a repeated wall time is in the frame twice, on the spring night a skipped
 * one never is. Minute resolution, as OCPI's "HH:MM".
 */

export type Recurrence = 'one_time' | 'daily';

export interface TariffDetail {
  readonly recurrence: Recurrence;
  /** Higher wins where frames overlap; default 0; equal priorities: the earlier detail. */
  readonly priority?: number;
  /** Same shape as an element's components; a dimension not given is free (price 0). */
  readonly components: readonly PriceComponent[];
  /** one_time: local "YYYY-MM-DDTHH:MM", inclusive. */
  readonly start?: string;
  /** one_time: local "YYYY-MM-DDTHH:MM", exclusive, after `start`. */
  readonly stop?: string;
  /** daily: local "HH:MM", inclusive; default "00:00". */
  readonly startTime?: string;
  /**
   * daily: local "HH:MM", exclusive; default and "00:00": midnight. Not after `startTime`:
   * the window runs past midnight into the next day (equal: 24 hours from `startTime`).
   */
  readonly endTime?: string;
  /**
   * daily: the weekdays on which the window starts (a window past midnight ends the next
   * day); one_time: the weekdays within the range on which it applies. Default: every day.
   */
  readonly daysOfWeek?: readonly DayOfWeek[];
}

type Fail = (field: string, why: string) => never;

/** The restrictions a detail's frame uses (a mapped type, so it is also a plain record). */
export type FrameRestrictions = Pick<
  Restrictions,
  'startTime' | 'endTime' | 'startDate' | 'endDate' | 'daysOfWeek'
>;

/** An element compiled from a detail: an OCPI element the network file could have held. */
export interface DetailElement {
  readonly components: readonly PriceComponent[];
  readonly restrictions?: FrameRestrictions;
}

const DAY_NAMES: readonly DayOfWeek[] = [
  'MONDAY',
  'TUESDAY',
  'WEDNESDAY',
  'THURSDAY',
  'FRIDAY',
  'SATURDAY',
  'SUNDAY',
];
/** Component types in the order elements carry them (the rater's dimension order). */
const TYPES: readonly ComponentType[] = ['ENERGY', 'TIME', 'PARKING_TIME', 'FLAT', 'RESERVATION'];
const DETAIL_KEYS = new Set([
  'recurrence',
  'priority',
  'components',
  'start',
  'stop',
  'startTime',
  'endTime',
  'daysOfWeek',
]);
const ALL_DAYS = 0x7f;
const DAY_MIN = 1440;
const DECIMAL = /^-?[0-9]+(\.[0-9]+)?$/;
const PERCENT = /^[0-9]+(\.[0-9]+)?$/;
const HHMM = /^([01][0-9]|2[0-3]):([0-5][0-9])$/;
const LOCAL_DATE_TIME = /^([0-9]{4})-([0-9]{2})-([0-9]{2})T([01][0-9]|2[0-3]):([0-5][0-9])$/;

/** A detail's frame as element restrictions (disjoint pieces), with what R2.1 needs to order it. */
interface Frame {
  readonly priority: number;
  readonly components: readonly PriceComponent[];
  readonly pieces: readonly FrameRestrictions[];
}

/**
 * The elements `details` compile to, highest priority first. `fail` receives the field
 * (`details[1].stop`) and why; it throws.
 */
export function compileDetails(
  details: readonly TariffDetail[],
  fail: Fail,
): readonly DetailElement[] {
  const list: unknown = details;
  if (!Array.isArray(list) || list.length === 0) {
    return fail('details', 'at least one detail is required');
  }
  const frames = details.map((d, i) =>
    frameOf(d, (field, why) => fail(`details[${i}].${field}`, why)),
  );
  // Array.prototype.sort is stable: equal priorities keep the order of the list.
  const order = [...frames].sort((a, b) => b.priority - a.priority);

  // Every element prices every dimension some detail prices (zero where its detail is
  // silent), so the first element in force wins all dimensions, not only those it names.
  // The filler takes the VAT rate of that dimension's highest-priority component, so a free
  // stretch joins that rate's invoice line instead of opening one of its own.
  const fillers = new Map<ComponentType, PriceComponent>();
  for (const frame of order) {
    for (const c of frame.components) {
      if (fillers.has(c.type)) continue;
      fillers.set(
        c.type,
        c.vat === undefined
          ? { type: c.type, price: '0' }
          : { type: c.type, price: '0', vat: c.vat },
      );
    }
  }
  const elements: DetailElement[] = [];
  for (const frame of order) {
    const own = frame.components;
    const components = [...own];
    for (const type of TYPES) {
      const filler = fillers.get(type);
      if (filler !== undefined && !own.some((c) => c.type === type)) components.push(filler);
    }
    for (const restrictions of frame.pieces) {
      elements.push(
        Object.keys(restrictions).length === 0 ? { components } : { components, restrictions },
      );
    }
  }
  return elements;
}

function frameOf(detail: TariffDetail, fail: Fail): Frame {
  if (detail === null || typeof detail !== 'object')
    return fail('recurrence', 'a detail is an object');
  for (const key of Object.keys(detail)) {
    if (!DETAIL_KEYS.has(key)) fail(key, 'is not a known field');
  }
  const priority = detail.priority ?? 0;
  if (typeof priority !== 'number' || !Number.isInteger(priority)) {
    fail('priority', 'must be an integer');
  }
  const components: unknown = detail.components;
  if (!Array.isArray(components)) fail('components', 'must be a list of price components');
  detail.components.forEach((c, i) =>
    checkComponent(c, (field, why) => fail(`components[${i}].${field}`, why)),
  );
  const days = daysOf(detail.daysOfWeek, fail);
  const recurrence: unknown = detail.recurrence;
  const only = (fields: readonly (keyof TariffDetail)[], why: string) => {
    for (const f of fields) if (detail[f] !== undefined) fail(f, why);
  };
  switch (recurrence) {
    case 'one_time': {
      only(['startTime', 'endTime'], 'only for daily details (one_time uses start and stop)');
      const start = localDateTime(detail.start, 'start', fail);
      const stop = localDateTime(detail.stop, 'stop', fail);
      if (stop <= start) fail('stop', `must be after start (${String(detail.start)})`);
      return { priority, components: detail.components, pieces: oneTime(start, stop, days) };
    }
    case 'daily': {
      only(['start', 'stop'], 'only for one_time details (daily uses startTime and endTime)');
      const from = minutes(detail.startTime, 'startTime', fail);
      const to = minutes(detail.endTime, 'endTime', fail);
      return { priority, components: detail.components, pieces: daily(from, to, days) };
    }
    default:
      return fail('recurrence', 'must be one of one_time, daily');
  }
}

/** `start` ≤ t < `stop` on the local wall clock, in minutes since 1970-01-01 (local). */
function oneTime(start: number, stop: number, days: number): FrameRestrictions[] {
  const d0 = Math.floor(start / DAY_MIN);
  const t0 = start - d0 * DAY_MIN;
  const d1 = Math.floor(stop / DAY_MIN);
  const t1 = stop - d1 * DAY_MIN;
  const week = days === ALL_DAYS ? {} : { daysOfWeek: dayList(days) };
  const span = (
    from: number,
    to: number,
    startTime: number,
    endTime: number,
  ): FrameRestrictions => ({
    startDate: dateText(from),
    endDate: dateText(to),
    ...(startTime > 0 ? { startTime: hhmm(startTime) } : {}),
    ...(endTime > 0 ? { endTime: hhmm(endTime) } : {}),
    ...week,
  });
  // Within one day: a single window (t1 > t0 ≥ 0, so the end is never "00:00").
  if (d0 === d1) return [span(d0, d0 + 1, t0, t1)];
  const pieces: FrameRestrictions[] = [];
  // The first day from t0 to midnight, merged with the whole days after it when t0 is 0.
  let wholeFrom = d0 + 1;
  if (t0 > 0) pieces.push(span(d0, d0 + 1, t0, 0));
  else wholeFrom = d0;
  if (d1 > wholeFrom) pieces.push(span(wholeFrom, d1, 0, 0));
  if (t1 > 0) pieces.push(span(d1, d1 + 1, 0, t1));
  return pieces;
}

/** A window `from` ≤ t < `to` (minutes of the day) that starts on each of `days`. */
function daily(from: number, to: number, days: number): FrameRestrictions[] {
  const end = to === 0 ? DAY_MIN : to;
  const on = (mask: number) => (mask === ALL_DAYS ? {} : { daysOfWeek: dayList(mask) });
  const startTime = from > 0 ? { startTime: hhmm(from) } : {};
  if (from < end) {
    return [{ ...startTime, ...(end < DAY_MIN ? { endTime: hhmm(end) } : {}), ...on(days) }];
  }
  // Past midnight (from ≥ end, so end < a day and is not 0 here). On every day OCPI's own
  // wrap says it in one element (start == end: always); on chosen days the part after
  // midnight belongs to the next weekday.
  if (days === ALL_DAYS)
    return from === end ? [{}] : [{ startTime: hhmm(from), endTime: hhmm(end) }];
  const nextDays = ((days << 1) | (days >> 6)) & ALL_DAYS;
  return [
    { startTime: hhmm(from), ...on(days) },
    { endTime: hhmm(end), ...on(nextDays) },
  ];
}

/** The checks `compileTariff` makes, here so that errors name the detail, not an element. */
function checkComponent(c: PriceComponent, fail: Fail): void {
  if (c === null || typeof c !== 'object' || !TYPES.includes(c.type)) {
    fail('type', `must be one of ${TYPES.join(', ')}`);
  }
  const text = (v: unknown) => (typeof v === 'string' || typeof v === 'number' ? String(v) : '');
  if (!DECIMAL.test(text(c.price))) fail('price', 'is not a decimal');
  if (c.vat !== undefined && c.vat !== null && !PERCENT.test(text(c.vat))) {
    fail('vat', 'is not a percentage');
  }
  const step: unknown = c.stepSize;
  if (step !== undefined && (typeof step !== 'number' || !Number.isInteger(step) || step < 0)) {
    fail('stepSize', 'must be a whole number ≥ 0');
  }
}

function daysOf(value: unknown, fail: Fail): number {
  if (value === undefined) return ALL_DAYS;
  if (!Array.isArray(value) || value.length === 0) {
    return fail('daysOfWeek', 'must be a non-empty list of weekdays');
  }
  let mask = 0;
  for (const name of value as unknown[]) {
    const i = DAY_NAMES.indexOf(name as DayOfWeek);
    if (i < 0) fail('daysOfWeek', `unknown weekday ${String(name)}`);
    mask |= 1 << i;
  }
  return mask;
}

function dayList(mask: number): DayOfWeek[] {
  return DAY_NAMES.filter((_, i) => (mask & (1 << i)) !== 0);
}

/** Minutes of the day of an optional "HH:MM" (absent: 0). */
function minutes(value: unknown, field: string, fail: Fail): number {
  if (value === undefined) return 0;
  const m = typeof value === 'string' ? HHMM.exec(value) : null;
  if (m === null) return fail(field, 'must be "HH:MM"');
  return Number(m[1]) * 60 + Number(m[2]);
}

/** Minutes since 1970-01-01 00:00 on the local wall clock of a required "YYYY-MM-DDTHH:MM". */
function localDateTime(value: unknown, field: string, fail: Fail): number {
  if (value === undefined) return fail(field, 'is required for a one_time detail');
  const m = typeof value === 'string' ? LOCAL_DATE_TIME.exec(value) : null;
  if (m === null) return fail(field, 'must be a local date-time "YYYY-MM-DDTHH:MM" (no offset)');
  const [y, mo, d, h, mi] = m.slice(1).map(Number) as [number, number, number, number, number];
  const day = Date.UTC(y, mo - 1, d);
  // Date.UTC rolls 02-30 over into March: a date that does not exist does not round-trip.
  const back = new Date(day);
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d) {
    return fail(field, `${value as string} is not a calendar date`);
  }
  return (day / DAY_MS) * DAY_MIN + h * 60 + mi;
}

function dateText(day: number): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10);
}

function hhmm(minute: number): string {
  return `${String(Math.floor(minute / 60)).padStart(2, '0')}:${String(minute % 60).padStart(2, '0')}`;
}
