import Big from 'big.js';

/**
 * Exact decimal arithmetic for money and prices (rating.md R4.1). big.js keeps every digit;
 * divisions are the only place precision is chosen, and they carry 12 fractional digits,
 * well above the 6 the rules ask for.
 */
Big.DP = 12;
Big.RM = Big.roundHalfUp;

export { Big };
export type Decimal = Big;

/** Decimal text for a price or amount read from config: numbers are read as their decimal text. */
export function toDecimal(value: string | number): Big {
  return new Big(typeof value === 'number' ? String(value) : value);
}

/** Round half-up to `digits` fractional digits and render with exactly that many. */
export function roundHalfUp(value: Big, digits: number): string {
  return value.round(digits, Big.roundHalfUp).toFixed(digits);
}

/** Minor units of the currencies a network is likely to bill in (ISO 4217); default 2. */
const MINOR_UNITS: Readonly<Record<string, number>> = {
  BHD: 3,
  JOD: 3,
  KWD: 3,
  OMR: 3,
  TND: 3,
  JPY: 0,
  KRW: 0,
  ISK: 0,
  CLP: 0,
  HUF: 2,
};

export function minorUnits(currency: string): number {
  return MINOR_UNITS[currency] ?? 2;
}
