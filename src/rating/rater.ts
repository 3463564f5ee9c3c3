import { ChargestreamError } from '../lib/errors.js';
import { localSpan } from './local-time.js';
import {
  fromMilli,
  IDLE,
  price,
  priceTotals,
  ROWS,
  type Amounts,
  type Quantities,
  type Totals,
} from './pricing.js';
import {
  DIMENSIONS,
  ENERGY,
  FLAT,
  holdsLocally,
  PARKING,
  RESERVATION,
  TIME,
  type CompiledElement,
  type CompiledTariff,
  type Dimension,
} from './tariff.js';

/**
 * Session rating, incremental and pure (rating.md R2–R5, domain R4). A session is a timeline of
 * observations; each one's state, power and current hold until the next, and energy rises
 * linearly between two observations. Every interval is cut where an element may switch: a
 * wall-clock boundary in the site's zone, a duration bound, or the interpolated moment an
 * energy bound is crossed (R2.2). In each piece every dimension takes the first element whose
 * restrictions hold (R2.1), and a new charging period starts when that choice or the session
 * state changes (R2.3).
 *
 *   obs ──────────── obs ─────── obs ──── finish
 *   │ charging       │ charging   │ parking │
 *   │     17:00┆     │  ┆12 kWh   │         │
 *   └─ period ─┴──── period ─┴─ period ─────┴─ period
 *
 * Quantities are integers — energy in mWh, time in ms — so the hot path is plain number
 * arithmetic and still exact; decimals (big.js) appear only when pricing. The state is plain
 * data: it survives JSON, structured clone and Piscina; `addObservation` never mutates its
 * argument.
 */

export type SessionState = 'charging' | 'parking' | 'reservation' | 'idle';

export interface Observation {
  /** Epoch ms; not before the previous observation. */
  readonly ts: number;
  /** Cumulative session energy (Wh, resolution 1 mWh); not below the previous observation's. */
  readonly energyWh: number;
  /** Instantaneous power; absent = the last reported value still holds. */
  readonly powerW?: number;
  /** Instantaneous current, sum of phases; absent = the last reported value still holds. */
  readonly currentA?: number;
  /** Holds from this observation until the next; 'idle' is not billed as time. */
  readonly state: SessionState;
}

export interface RatingOptions {
  /** The customer's rate plan, for the charging-time refund (domain R6, rating.md R4.4). */
  readonly ratePlan?: {
    readonly chargingTimeRefundPer15Min?: string;
    readonly standardBoost?: boolean;
  };
}

/** A charging period as the state keeps it (integer units). */
export interface PeriodData {
  readonly start: number;
  readonly end: number;
  readonly status: SessionState;
  readonly mwh: number;
  readonly ms: number;
  /** Per dimension (ENERGY, TIME, PARKING_TIME, FLAT, RESERVATION) the active element or -1. */
  readonly sel: readonly number[];
}

export interface RatingState {
  readonly tariff: CompiledTariff;
  readonly startTs: number;
  readonly refundPer15Min: string | null;
  /** Rating a reservation that expired (RESERVATION_EXPIRES elements apply). */
  readonly expired: boolean;
  /** The latest observation: from `ts` on, `status`, `powerW` and `currentA` hold. */
  readonly ts: number;
  readonly mwh: number;
  readonly status: SessionState;
  readonly powerW: number | null;
  readonly currentA: number | null;
  /** The element whose FLAT is billed: the first active in the session; -1 none yet. */
  readonly flat: number;
  readonly periods: readonly PeriodData[];
  readonly open: PeriodData | null;
  /** Closed periods' quantities, see `Quantities.acc`. */
  readonly acc: readonly number[];
  /** See `Quantities.lastElem`, over closed periods. */
  readonly lastElem: readonly number[];
  /** Cache of the local restrictions: they hold as `localOk` for instants in [tzFrom, tzTo). */
  readonly tzFrom: number;
  readonly tzTo: number;
  readonly localOk: readonly boolean[];
  /**
   * While a session is only a reservation (no charging, parking or energy yet) and the tariff
   * has RESERVATION_EXPIRES elements: its observations, to re-rate it as expired at the end.
   */
  readonly reservationLog: readonly Observation[] | null;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
type Open = Mutable<PeriodData>;
type Working = Omit<Mutable<RatingState>, 'open'> & { open: Open | null };

/** A batch works on one copy; arrays the copy shares with its source are copied on first write. */
interface Batch {
  readonly w: Working;
  ownsPeriods: boolean;
}

const NEVER = -2;
const SAFE_END = Number.MAX_SAFE_INTEGER;

function inputError(message: string): ChargestreamError {
  // Readings reach the rater after E3 validation, so a bad one is an engine bug, not user input.
  return new ChargestreamError('INTERNAL', `rating: ${message}`);
}

/** A rating state for a session starting at `startTs`, in state 'charging' with 0 Wh. */
export function startRating(
  tariff: CompiledTariff,
  startTs: number,
  options: RatingOptions = {},
): RatingState {
  if (!Number.isSafeInteger(startTs)) throw inputError(`start ${startTs} is not epoch ms`);
  const plan = options.ratePlan;
  const n = tariff.elements.length;
  return {
    tariff,
    startTs,
    refundPer15Min:
      plan?.chargingTimeRefundPer15Min !== undefined && plan.standardBoost !== true
        ? plan.chargingTimeRefundPer15Min
        : null,
    expired: false,
    ts: startTs,
    mwh: 0,
    status: 'charging',
    powerW: null,
    currentA: null,
    flat: -1,
    periods: [],
    open: null,
    acc: new Array<number>(ROWS * (n + 1)).fill(0),
    lastElem: [NEVER, NEVER, NEVER, NEVER, NEVER],
    tzFrom: 0,
    tzTo: tariff.hasLocal ? 0 : SAFE_END,
    localOk: [],
    reservationLog: tariff.hasExpires ? [] : null,
  };
}

/** The state after one more observation. Pure: `state` is left as it was. */
export function addObservation(state: RatingState, observation: Observation): RatingState {
  const batch = begin(state);
  apply(batch, observation);
  return batch.w;
}

/** The working copies `addObservationInPlace` made, each with its batch. */
const inPlace = new WeakMap<RatingState, Batch>();

/**
 * `addObservation` for a holder that keeps only the latest state, as a session's rating in a
 * worker's batch does: a state this returned takes the next observation in place, so the
 * readings of one session in a batch copy its state once, not once each (the copy was about
 * 4 % of a worker thread's time). The first state given is left as it was, as by
 * `addObservation`; an observation refused (out of order) changes nothing.
 */
export function addObservationInPlace(state: RatingState, observation: Observation): RatingState {
  let batch = inPlace.get(state);
  if (batch === undefined) {
    batch = begin(state);
    inPlace.set(batch.w, batch);
  }
  apply(batch, observation);
  return batch.w;
}

/** The state after several observations, in order; the same as adding them one by one. */
export function addObservations(
  state: RatingState,
  observations: readonly Observation[],
): RatingState {
  if (observations.length === 0) return state;
  const batch = begin(state);
  for (const observation of observations) apply(batch, observation);
  return batch.w;
}

/**
 * R5.1: the cost of a session that ended at the latest observation — FLAT, min/max price and
 * refund included, the step-size round-up not (it applies at the end).
 */
export function runningCost(state: RatingState): Amounts {
  return price(state.tariff, quantitiesOf(state), false, state.refundPer15Min);
}

/** `runningCost`'s totals alone, without its lines: what a session's row and a 2.0.1 answer show. */
export function runningTotals(state: RatingState): Totals {
  return priceTotals(state.tariff, quantitiesOf(state), state.refundPer15Min);
}

/** The session as closed at `endTs` (≥ the latest observation), with the final round-up. */
export function finishRating(state: RatingState, endTs: number): FinishedRating {
  if (!Number.isSafeInteger(endTs) || endTs < state.ts) {
    throw inputError(`end ${endTs} is before the latest observation ${state.ts}`);
  }
  const batch = begin(state);
  const w = batch.w;
  if (endTs > w.ts) advance(batch, endTs, w.mwh);
  w.ts = endTs;
  if (w.open !== null) {
    close(batch, w.open);
    w.open = null;
  }
  const q = quantitiesOf(w);
  const n = w.tariff.elements.length;
  const stride = n + 1;
  const rowTotal = (row: number) => sumRow(q.acc, row, stride);
  if (
    !w.expired &&
    w.reservationLog !== null &&
    rowTotal(RESERVATION) > 0 &&
    rowTotal(TIME) === 0 &&
    rowTotal(PARKING) === 0 &&
    rowTotal(ENERGY) === 0
  ) {
    // The reservation was never used: rate it again with RESERVATION_EXPIRES elements.
    const again = {
      ...startRating(w.tariff, w.startTs),
      refundPer15Min: w.refundPer15Min,
      expired: true,
      reservationLog: null,
    };
    return finishRating(addObservations(again, w.reservationLog), endTs);
  }
  return {
    startTs: w.startTs,
    endTs,
    expiredReservation: w.expired,
    periods: w.periods,
    quantities: {
      energyWh: fromMilli(rowTotal(ENERGY)),
      chargingTimeS: fromMilli(rowTotal(TIME)),
      parkingTimeS: fromMilli(rowTotal(PARKING)),
      reservationTimeS: fromMilli(rowTotal(RESERVATION)),
      idleTimeS: fromMilli(rowTotal(IDLE)),
    },
    amounts: price(w.tariff, q, true, w.refundPer15Min),
  };
}

export interface SessionQuantities {
  readonly energyWh: string;
  readonly chargingTimeS: string;
  readonly parkingTimeS: string;
  readonly reservationTimeS: string;
  readonly idleTimeS: string;
}

export interface FinishedRating {
  readonly startTs: number;
  readonly endTs: number;
  readonly expiredReservation: boolean;
  readonly periods: readonly PeriodData[];
  readonly quantities: SessionQuantities;
  readonly amounts: Amounts;
}

/** The active element per dimension for each period, as the CDR shows it. */
export function periodElements(p: PeriodData): Readonly<Record<Dimension, number | null>> {
  const at = (d: number) => {
    const e = p.sel[d] ?? -1;
    return e < 0 ? null : e;
  };
  return {
    ENERGY: at(ENERGY),
    TIME: at(TIME),
    PARKING_TIME: at(PARKING),
    FLAT: at(FLAT),
    RESERVATION: at(RESERVATION),
  };
}

// ---------------------------------------------------------------------------------------------
// The per-reading path: numbers only, no allocation unless a period closes.

function begin(state: RatingState): Batch {
  const w: Working = { ...state };
  if (state.open !== null) w.open = { ...state.open };
  return { w, ownsPeriods: false };
}

function apply(batch: Batch, obs: Observation): void {
  const w = batch.w;
  const t1 = obs.ts;
  const e1 = Math.round(obs.energyWh * 1000);
  if (!Number.isSafeInteger(t1) || t1 < w.ts) {
    throw inputError(`observation at ${t1} is before the previous one at ${w.ts}`);
  }
  if (!Number.isSafeInteger(e1) || e1 < w.mwh) {
    throw inputError(`energy ${obs.energyWh} Wh at ${t1} is below the previous reading`);
  }
  if (w.reservationLog !== null) {
    const used = e1 > 0 || ((w.status === 'charging' || w.status === 'parking') && t1 > w.ts);
    w.reservationLog = used ? null : [...w.reservationLog, obs];
  }
  if (t1 > w.ts || e1 > w.mwh) advance(batch, t1, e1);
  w.ts = t1;
  w.mwh = e1;
  w.status = obs.state;
  if (obs.powerW !== undefined) w.powerW = obs.powerW;
  if (obs.currentA !== undefined) w.currentA = obs.currentA;
}

/** Scratch for the selection of one piece (never escapes a call). */
const sel = new Int32Array(5);
let holds = new Uint8Array(8);

/** Rates [w.ts, t1) with energy rising linearly from w.mwh to e1. */
function advance(batch: Batch, t1: number, e1: number): void {
  const w = batch.w;
  const tariff = w.tariff;
  const t0 = w.ts;
  const e0 = w.mwh;
  let cur = t0;
  let curE = e0;
  for (;;) {
    if (tariff.hasLocal && (cur >= w.tzTo || cur < w.tzFrom)) refreshLocal(w, cur);
    select(w, cur, curE);
    let tb = t1;
    let eb = e1;
    if (w.tzTo < tb) tb = w.tzTo;
    const nd = nextAbove(tariff.durationThresholds, cur - w.startTs);
    if (nd >= 0 && w.startTs + nd < tb) tb = w.startTs + nd;
    if (tb < t1) {
      eb = e0 + mulDivRound(e1 - e0, tb - t0, t1 - t0);
      if (eb < curE) eb = curE;
    }
    if (e1 > curE) {
      const ne = nextAbove(tariff.energyThresholds, curE);
      if (ne >= 0 && ne <= eb) {
        // The period is split at the interpolated moment the bound is crossed (to the ms).
        let tc = t1 === t0 ? t0 : t0 + mulDivRound(ne - e0, t1 - t0, e1 - e0);
        if (tc < cur) tc = cur;
        if (tc > tb) tc = tb;
        tb = tc;
        eb = ne;
      }
    }
    accrue(batch, cur, tb, eb - curE);
    cur = tb;
    curE = eb;
    if (cur >= t1 && curE >= e1) return;
  }
}

function refreshLocal(w: Working, t: number): void {
  const tariff = w.tariff;
  const span = localSpan(tariff.timeZone, tariff.boundaries, t);
  const { day, timeOfDay, weekday } = span.wall;
  w.tzFrom = t;
  w.tzTo = span.to;
  w.localOk = tariff.elements.map((e) => !e.local || holdsLocally(e, day, timeOfDay, weekday));
}

/** R2.1 at instant `t` with cumulative energy `energy`: fills `sel`. */
function select(w: Working, t: number, energy: number): void {
  const tariff = w.tariff;
  const elements = tariff.elements;
  const n = elements.length;
  if (holds.length < n) holds = new Uint8Array(n);
  const duration = t - w.startTs;
  for (let i = 0; i < n; i++) {
    holds[i] = holdsAt(elements[i] as CompiledElement, w, i, energy, duration) ? 1 : 0;
  }
  const lists = w.expired ? tariff.candidatesExpired : tariff.candidates;
  for (let d = 0; d < 5; d++) {
    const list = lists[d] as readonly number[];
    let chosen = -1;
    for (let k = 0; k < list.length; k++) {
      const i = list[k] as number;
      if (holds[i] === 1) {
        chosen = i;
        break;
      }
    }
    sel[d] = chosen;
  }
}

function holdsAt(
  e: CompiledElement,
  w: Working,
  i: number,
  energy: number,
  duration: number,
): boolean {
  if (e.local && w.localOk[i] !== true) return false;
  if (energy < e.minMwh || energy >= e.maxMwh) return false;
  if (duration < e.minMs || duration >= e.maxMs) return false;
  if (e.power) {
    const p = w.powerW;
    if (p === null || p < e.minW || p >= e.maxW) return false;
  }
  if (e.current) {
    const a = w.currentA;
    if (a === null || a < e.minA || a >= e.maxA) return false;
  }
  if (e.reservation !== 0) {
    if (w.status !== 'reservation') return false;
    if (e.reservation === 2 && !w.expired) return false;
  }
  return true;
}

function accrue(batch: Batch, start: number, end: number, mwh: number): void {
  if (end === start && mwh === 0) return;
  const w = batch.w;
  if (w.flat < 0 && (sel[FLAT] as number) >= 0) w.flat = sel[FLAT] as number;
  const open = w.open;
  if (open !== null && open.status === w.status && sameSelection(open.sel)) {
    open.end = end;
    open.mwh += mwh;
    open.ms += end - start;
    return;
  }
  if (open !== null) close(batch, open);
  w.open = { start, end, status: w.status, mwh, ms: end - start, sel: Array.from(sel) };
}

function sameSelection(s: readonly number[]): boolean {
  for (let d = 0; d < 5; d++) if (s[d] !== sel[d]) return false;
  return true;
}

/** Moves a finished period into the closed list and the closed totals. */
function close(batch: Batch, p: PeriodData): void {
  const w = batch.w;
  if (!batch.ownsPeriods) {
    w.periods = [...w.periods];
    w.acc = [...w.acc];
    w.lastElem = [...w.lastElem];
    batch.ownsPeriods = true;
  }
  (w.periods as PeriodData[]).push(p);
  addPeriod(w.acc as number[], w.lastElem as number[], p, w.tariff.elements.length + 1);
}

function addPeriod(acc: number[], lastElem: number[], p: PeriodData, stride: number): void {
  const unpriced = stride - 1;
  if (p.mwh > 0) {
    const e = p.sel[ENERGY] ?? -1;
    const col = e < 0 ? unpriced : e;
    acc[ENERGY * stride + col] = (acc[ENERGY * stride + col] ?? 0) + p.mwh;
    lastElem[ENERGY] = e;
  }
  if (p.ms > 0) {
    const row = rowOf(p.status);
    const e = row === IDLE ? -1 : (p.sel[row] ?? -1);
    const col = e < 0 ? unpriced : e;
    acc[row * stride + col] = (acc[row * stride + col] ?? 0) + p.ms;
    if (row !== IDLE) lastElem[row] = e;
  }
}

function rowOf(status: SessionState): number {
  switch (status) {
    case 'charging':
      return TIME;
    case 'parking':
      return PARKING;
    case 'reservation':
      return RESERVATION;
    case 'idle':
      return IDLE;
  }
}

function quantitiesOf(state: RatingState): Quantities {
  let flat = state.flat;
  let acc = state.acc;
  let lastElem = state.lastElem;
  if (state.open !== null) {
    const a = [...acc];
    const l = [...lastElem];
    addPeriod(a, l, state.open, state.tariff.elements.length + 1);
    acc = a;
    lastElem = l;
  } else if (state.periods.length === 0 && flat < 0) {
    // Nothing rated yet (a session ending where it starts): FLAT as chosen at this instant.
    const w: Working = { ...state };
    if (state.tariff.hasLocal) refreshLocal(w, state.ts);
    select(w, state.ts, state.mwh);
    flat = sel[FLAT] as number;
  }
  return { acc, lastElem, flat };
}

function sumRow(acc: readonly number[], row: number, stride: number): number {
  let sum = 0;
  for (let e = 0; e < stride; e++) sum += acc[row * stride + e] ?? 0;
  return sum;
}

/** First value in the sorted list above x, or -1. */
function nextAbove(list: readonly number[], x: number): number {
  for (let k = 0; k < list.length; k++) {
    const v = list[k] as number;
    if (v > x) return v;
  }
  return -1;
}

/** round(a × b ÷ c) half-up for non-negative integers, exact (BigInt past 2^53). */
export function mulDivRound(a: number, b: number, c: number): number {
  const p = a * b;
  if (p <= Number.MAX_SAFE_INTEGER) {
    let q = Math.floor(p / c);
    let r = p - q * c;
    if (r < 0) {
      q -= 1;
      r += c;
    } else if (r >= c) {
      q += 1;
      r -= c;
    }
    return 2 * r >= c ? q + 1 : q;
  }
  const bc = BigInt(c);
  const bp = BigInt(a) * BigInt(b);
  const q = bp / bc;
  return Number(2n * (bp - q * bc) >= bc ? q + 1n : q);
}

export { DIMENSIONS };
