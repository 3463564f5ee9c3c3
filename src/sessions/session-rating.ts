import type { Tariff } from '../config/network.js';
import { resolveTariff, type NetworkIndex } from '../config/network-index.js';
import { Big, minorUnits } from '../lib/decimal.js';
import {
  addObservationInPlace,
  compileTariff,
  finish,
  runningTotals,
  startRating,
  type CompiledTariff,
  type Observation,
  type RatingState,
} from '../rating/index.js';
import type { Scope } from './durations.js';

/** What a session row and a CDR show of the money. */
export interface Money {
  readonly currency: string;
  readonly totalExclVat: string;
  readonly totalVat: string;
  readonly totalInclVat: string;
}

export interface CdrLine {
  readonly dimension: string;
  readonly quantity: string;
  readonly unit: string;
  readonly unitPrice: string | null;
  readonly vatRate: string | null;
  readonly net: string;
  readonly vat: string;
}

/**
 * The rating of one session by the OCPI tariff engine: the tariff in force at the start
 * prices the whole session (R3, rating.md); every valid reading and every change of the
 * connector's scope is an observation. Plain data, carried in the session's state.
 *
 * Between batches (the processor's copy, the copies sent to the workers, the state stored
 * with the session) the rating holds its tariff as source text, `tariffSource`, and not in
 * compiled form: the compiled tariff is several times larger and was half of every session
 * row and of every state copied to a worker. A worker compiles each source once.
 */
export interface SessionRating {
  readonly tariffId: string;
  readonly currency: string;
  /** Null for a session no tariff applies to: it is free. */
  state: RatingState | null;
  lastTs: number;
  /** Observations the engine could not take (out of order); counted, never thrown. */
  skipped: number;
  /**
   * `[timeZone, tariff]` as JSON: what `state.tariff` is compiled from. Absent in states
   * stored before it existed, which carry their compiled tariff instead.
   */
  readonly tariffSource?: string;
}

/** Compiled tariffs of this worker by source; sources are few (tariff versions × zones). */
const bySource = new Map<string, CompiledTariff>();
const MAX_COMPILED = 10_000;
/** The source text of each network tariff per zone, so a session start does not stringify. */
const sources = new WeakMap<Tariff, Map<string, string>>();

function compiledFrom(source: string): CompiledTariff {
  let result = bySource.get(source);
  if (result === undefined) {
    const [timeZone, tariff] = JSON.parse(source) as [string, Tariff];
    result = compileTariff(tariff, timeZone);
    if (bySource.size >= MAX_COMPILED) bySource.clear();
    bySource.set(source, result);
  }
  return result;
}

function sourceOf(tariff: Tariff, timeZone: string): string {
  let byZone = sources.get(tariff);
  if (byZone === undefined) sources.set(tariff, (byZone = new Map<string, string>()));
  let source = byZone.get(timeZone);
  if (source === undefined) byZone.set(timeZone, (source = JSON.stringify([timeZone, tariff])));
  return source;
}

/** The rating as it leaves a worker: its compiled tariff left out (see `tariffSource`). */
export function packRating(rating: SessionRating): SessionRating {
  if (rating.state === null || rating.tariffSource === undefined) return rating;
  return { ...rating, state: { ...rating.state, tariff: undefined as unknown as CompiledTariff } };
}

/** The rating as a worker takes it up: its compiled tariff back, from this worker's cache. */
export function unpackRating(rating: SessionRating): void {
  if (rating.state === null || rating.tariffSource === undefined) return;
  if ((rating.state.tariff as CompiledTariff | undefined) !== undefined) return;
  rating.state = { ...rating.state, tariff: compiledFrom(rating.tariffSource) };
}

export function beginRating(
  index: NetworkIndex,
  chargerId: string,
  customerId: string,
  startTs: number,
): SessionRating {
  const settings = index.network.settings;
  // Validity is read at the start only: a tariff that ends mid-session keeps pricing it (R3).
  const tariff = resolveTariff(index, chargerId, customerId, startTs);
  if (tariff === null)
    return { tariffId: '', currency: settings.currency, state: null, lastTs: startTs, skipped: 0 };
  const site = index.sites.get(index.chargers.get(chargerId)?.site ?? '');
  const ratePlanId = index.customers.get(customerId)?.ratePlan;
  const ratePlan = ratePlanId === undefined ? undefined : index.ratePlans.get(ratePlanId);
  const source = sourceOf(tariff, site?.timezone ?? 'UTC');
  return {
    tariffId: tariff.id,
    currency: tariff.currency,
    state: startRating(compiledFrom(source), startTs, ratePlan === undefined ? {} : { ratePlan }),
    lastTs: startTs,
    skipped: 0,
    tariffSource: source,
  };
}

/** Scope of the session for the tariff: fault time is billed as nothing. */
export function ratedState(scope: Scope): Observation['state'] {
  return scope === 'fault' ? 'idle' : scope;
}

/**
 * Adds an observation. Valid readings never go back in time or energy (E3), but a status
 * reported late can: the tariff engine takes only what comes in order, the rest is counted.
 */
export function observe(rating: SessionRating, observation: Observation): void {
  if (rating.state === null) return;
  if (observation.ts < rating.lastTs) {
    rating.skipped += 1;
    return;
  }
  rating.state = addObservationInPlace(rating.state, observation);
  rating.lastTs = observation.ts;
}

/** R5.1: the running cost's totals (without its lines: a CDR's come with `finalCost`). */
export function liveCost(rating: SessionRating): Money {
  return rating.state === null ? zero(rating.currency) : runningTotals(rating.state);
}

export function finalCost(
  rating: SessionRating,
  endTs: number,
  id: string,
): { money: Money; lines: CdrLine[]; periods: CdrPeriod[] } {
  if (rating.state === null) return { money: zero(rating.currency), lines: [], periods: [] };
  const cdr = finish(rating.state, Math.max(endTs, rating.lastTs), { id });
  return {
    money: money(cdr),
    periods: cdr.chargingPeriods.map((p) => ({
      start: new Date(p.startTs).toISOString(),
      end: new Date(p.endTs).toISOString(),
      state: p.state,
      energy_wh: p.energyWh,
      duration_s: p.durationS,
      elements: p.elements,
    })),
    lines: cdr.lines.map((l) => ({
      dimension: l.type,
      quantity: l.quantity,
      unit: l.unit,
      unitPrice: l.unitPrice,
      vatRate: l.vatRate,
      net: l.net,
      vat: l.vat,
    })),
  };
}

/**
 * A charging period of the stored CDR: one state from `start` to `end`, the energy and the
 * billed duration in it, and for each dimension the index of the tariff element that priced
 * it (null: free).
 */
export interface CdrPeriod {
  readonly start: string;
  readonly end: string;
  readonly state: string;
  readonly energy_wh: string;
  readonly duration_s: string;
  readonly elements: Readonly<Record<string, number | null>>;
}

function money(amounts: Money): Money {
  return {
    currency: amounts.currency,
    totalExclVat: amounts.totalExclVat,
    totalVat: amounts.totalVat,
    totalInclVat: amounts.totalInclVat,
  };
}

function zero(currency: string): Money {
  const z = new Big(0).toFixed(minorUnits(currency));
  return { currency, totalExclVat: z, totalVat: z, totalInclVat: z };
}
