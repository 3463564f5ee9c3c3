/**
 * The OCPI tariff engine (rating.md): pure, no I/O and no clock, for the worker threads.
 *
 *   const tariff = compileTariff(networkTariff, site.timezone);   // once per tariff and zone
 *                                     // (OCPI `elements`, or the seed's `details`: R2)
 *   let state = startRating(tariff, startTs, { ratePlan });         // once per session
 *   state = addObservation(state, reading);                         // every valid reading
 *   runningTotals(state).totalInclVat;                              // R5.1 live cost
 *   const cdr = finish(state, endTs, { id });                       // the CDR
 *
 * `rateSession(tariff, timeline)` rates the same timeline from scratch and gives the same CDR.
 */
export {
  compileTariff,
  type CompiledTariff,
  type DayOfWeek,
  type Dimension,
  type Restrictions,
  type TariffDetailsInput,
  type TariffElementInput,
  type TariffInput,
} from './tariff.js';
export { compileDetails, type Recurrence, type TariffDetail } from './tariff-details.js';
export {
  overlapStart,
  validAt,
  validityRange,
  type TariffValidity,
  type ValidityRange,
} from './validity.js';
export {
  addObservation,
  addObservationInPlace,
  addObservations,
  runningCost,
  runningTotals,
  startRating,
  type Observation,
  type RatingOptions,
  type RatingState,
  type SessionQuantities,
  type SessionState,
} from './rater.js';
export {
  creditOf,
  finish,
  rateSession,
  type Cdr,
  type ChargingPeriod,
  type SessionRatingOptions,
} from './cdr.js';
export type {
  Amounts,
  InvoiceLine,
  LinePart,
  LineType,
  MoneyTotals,
  Totals,
  VatAmount,
} from './pricing.js';
