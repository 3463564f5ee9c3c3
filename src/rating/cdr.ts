import { ChargestreamError } from '../lib/errors.js';
import type { Amounts, InvoiceLine } from './pricing.js';
import {
  addObservations,
  finishRating,
  periodElements,
  startRating,
  type Observation,
  type RatingOptions,
  type RatingState,
  type SessionQuantities,
  type SessionState,
} from './rater.js';
import type { CompiledTariff, Dimension } from './tariff.js';
import { fromMilli } from './pricing.js';

/** A charging period of the CDR (R2.3): one state, one active element per dimension. */
export interface ChargingPeriod {
  readonly startTs: number;
  readonly endTs: number;
  readonly state: SessionState;
  readonly energyWh: string;
  /** Billed to the state's dimension: TIME, PARKING_TIME or RESERVATION (idle: none). */
  readonly durationS: string;
  /** Index in `tariff.elements` of the element active for each dimension, null = free. */
  readonly elements: Readonly<Record<Dimension, number | null>>;
}

/**
 * The charge detail record of a rated session: its periods, quantities, invoice lines and
 * totals. `Amounts` gives the money; all amounts are decimal text in the currency's minor unit.
 */
export interface Cdr extends Amounts {
  readonly id: string | null;
  readonly kind: 'debit' | 'credit';
  /** For a credit CDR, the id of the CDR it reverses (R4.5). */
  readonly creditReferenceId: string | null;
  /** For a credit CDR, the reason. */
  readonly description: string | null;
  readonly tariffId: string | null;
  readonly timeZone: string;
  readonly startTs: number;
  readonly endTs: number;
  /** Rated as a reservation that expired (RESERVATION_EXPIRES elements applied). */
  readonly expiredReservation: boolean;
  /** Session totals before the step-size round-up (the lines show what was billed). */
  readonly quantities: SessionQuantities;
  readonly chargingPeriods: readonly ChargingPeriod[];
}

export interface SessionRatingOptions extends RatingOptions {
  /** Session start; default the first observation's time. */
  readonly startTs?: number;
  /** Session end; default the last observation's time. */
  readonly endTs?: number;
  /** The CDR's id. */
  readonly id?: string;
}

/** The CDR of a session ended at `endTs` (≥ the latest observation). */
export function finish(state: RatingState, endTs: number, options: { id?: string } = {}): Cdr {
  const done = finishRating(state, endTs);
  return {
    id: options.id ?? null,
    kind: 'debit',
    creditReferenceId: null,
    description: null,
    tariffId: state.tariff.id,
    timeZone: state.tariff.timeZone,
    startTs: done.startTs,
    endTs: done.endTs,
    expiredReservation: done.expiredReservation,
    quantities: done.quantities,
    chargingPeriods: done.periods.map((p) => ({
      startTs: p.start,
      endTs: p.end,
      state: p.status,
      energyWh: fromMilli(p.mwh),
      durationS: fromMilli(p.ms),
      elements: periodElements(p),
    })),
    ...done.amounts,
  };
}

/** Rates a whole timeline from scratch; the same CDR as feeding it reading by reading. */
export function rateSession(
  tariff: CompiledTariff,
  timeline: readonly Observation[],
  options: SessionRatingOptions = {},
): Cdr {
  const startTs = options.startTs ?? timeline[0]?.ts;
  if (startTs === undefined) {
    throw new ChargestreamError('INTERNAL', 'rating: a session without observations needs startTs');
  }
  const state = addObservations(startRating(tariff, startTs, options), timeline);
  return finish(state, options.endTs ?? state.ts, { id: options.id });
}

/**
 * R4.5 / domain C2: the credit CDR cancelling `original`. The original is not touched; every
 * amount, the energy and the line quantities are negated, so sums over both CDRs are zero.
 */
export function creditOf(original: Cdr, reason: string, options: { id?: string } = {}): Cdr {
  if (original.kind !== 'debit' || original.id === null) {
    throw new ChargestreamError('BAD_REQUEST', 'only a debit CDR with an id can be credited');
  }
  if (reason.trim() === '') throw new ChargestreamError('BAD_REQUEST', 'a reason is required');
  const line = (l: InvoiceLine): InvoiceLine => ({
    ...l,
    quantity: negate(l.quantity),
    net: negate(l.net),
    vat: negate(l.vat),
    parts: l.parts.map((p) => ({ ...p, quantity: negate(p.quantity) })),
  });
  return {
    ...original,
    id: options.id ?? null,
    kind: 'credit',
    creditReferenceId: original.id,
    description: reason,
    quantities: { ...original.quantities, energyWh: negate(original.quantities.energyWh) },
    chargingPeriods: original.chargingPeriods.map((p) => ({
      ...p,
      energyWh: negate(p.energyWh),
    })),
    lines: original.lines.map(line),
    vat: original.vat.map((v) => ({ ...v, taxable: negate(v.taxable), vat: negate(v.vat) })),
    computed: {
      exclVat: negate(original.computed.exclVat),
      vat: negate(original.computed.vat),
      inclVat: negate(original.computed.inclVat),
    },
    adjustment:
      original.adjustment === null
        ? null
        : {
            exclVat: negate(original.adjustment.exclVat),
            inclVat: negate(original.adjustment.inclVat),
          },
    totalExclVat: negate(original.totalExclVat),
    totalVat: negate(original.totalVat),
    totalInclVat: negate(original.totalInclVat),
  };
}

/** Negates decimal text; zero stays unsigned. */
function negate(text: string): string {
  if (/^-?0*(\.0*)?$/.test(text)) return text.replace('-', '');
  return text.startsWith('-') ? text.slice(1) : `-${text}`;
}
