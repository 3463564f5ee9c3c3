import type { Tariff } from '../config/network.js';
import { Big, minorUnits, roundHalfUp, toDecimal } from '../lib/decimal.js';

/**
 * Per-kWh rating with VAT: the walking skeleton's rater, to be replaced by the full OCPI
 * tariff engine. It prices a session's energy with the ENERGY component of the first element
 * that has one (restrictions are not evaluated yet), applies the step size once at the end
 * (rating.md R3.1) and rounds as R4.2 says: the net of the line half-up to the currency's
 * minor unit, the VAT on the rounded net, total = net + VAT exactly.
 */
export interface EnergyPrice {
  readonly tariffId: string;
  readonly currency: string;
  /** Price per kWh excl. VAT, decimal text. */
  readonly pricePerKwh: string;
  /** VAT percent, decimal text; null when the tariff states none (not the same as 0). */
  readonly vatPercent: string | null;
  /** Step in Wh; 0 means no rounding. */
  readonly stepWh: number;
}

export interface InvoiceLine {
  readonly dimension: 'ENERGY';
  /** Billed quantity, kWh. */
  readonly quantity: string;
  readonly unitPrice: string;
  readonly vatRate: string | null;
  readonly net: string;
  readonly vat: string;
}

export interface Amounts {
  readonly currency: string;
  readonly lines: readonly InvoiceLine[];
  readonly totalExclVat: string;
  readonly totalVat: string;
  readonly totalInclVat: string;
}

export function energyPriceOf(tariff: Tariff | null, fallbackCurrency: string): EnergyPrice | null {
  if (tariff === null) return null;
  for (const element of tariff.elements) {
    const component = element.components.find((c) => c.type === 'ENERGY');
    if (component !== undefined) {
      return {
        tariffId: tariff.id,
        currency: tariff.currency || fallbackCurrency,
        pricePerKwh: component.price,
        vatPercent: component.vat ?? null,
        stepWh: component.stepSize ?? 0,
      };
    }
  }
  return null;
}

export function zeroAmounts(currency: string): Amounts {
  const zero = roundHalfUp(new Big(0), minorUnits(currency));
  return { currency, lines: [], totalExclVat: zero, totalVat: zero, totalInclVat: zero };
}

/**
 * The amounts of `energyWh`. `final` applies the step-size round-up, which belongs to the end
 * of a session only (R5.1: the running cost is the cost of a session ending there, unrounded).
 */
export function rateEnergy(
  price: EnergyPrice | null,
  energyWh: number,
  currency: string,
  final: boolean,
): Amounts {
  if (price === null) return zeroAmounts(currency);
  const digits = minorUnits(price.currency);
  let wh = toDecimal(energyWh);
  if (final && price.stepWh > 0) {
    const steps = wh.div(price.stepWh).round(0, Big.roundUp);
    wh = steps.times(price.stepWh);
  }
  const kwh = wh.div(1000);
  const unitPrice = toDecimal(price.pricePerKwh);
  const net = roundHalfUp(kwh.times(unitPrice), digits);
  const vat =
    price.vatPercent === null
      ? roundHalfUp(new Big(0), digits)
      : roundHalfUp(new Big(net).times(price.vatPercent).div(100), digits);
  const total = new Big(net).plus(vat).toFixed(digits);
  return {
    currency: price.currency,
    lines: [
      {
        dimension: 'ENERGY',
        quantity: kwh.toFixed(),
        unitPrice: unitPrice.toFixed(),
        vatRate: price.vatPercent,
        net,
        vat,
      },
    ],
    totalExclVat: net,
    totalVat: vat,
    totalInclVat: total,
  };
}
