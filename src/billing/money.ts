import { Big, minorUnits, type Decimal } from '../lib/decimal.js';
import type { CdrLineRecord, CdrRecord } from './records.js';

/** Net and VAT at one VAT rate (null: no rate stated). */
export interface RateBucket {
  readonly rate: string | null;
  readonly net: Decimal;
  readonly vat: Decimal;
}

const ZERO = new Big(0);

export function sum(values: Iterable<Decimal | string>): Decimal {
  let total = ZERO;
  for (const v of values) total = total.plus(v);
  return total;
}

/** Decimal text in the currency's minor unit: '12.5' → '12.50'; no '-0.00'. */
export function money(value: Decimal | string, currency: string): string {
  const text = new Big(value).toFixed(minorUnits(currency));
  return /^-0(\.0*)?$/.test(text) ? text.slice(1) : text;
}

/**
 * Splits `total` over `weights` in proportion, in steps of 10^-digits, so that the parts add
 * up to `total` exactly (largest remainder). Weights ≤ 0 get nothing; with no positive
 * weight everything goes to the first part.
 */
export function allocate(total: Decimal, weights: readonly Decimal[], digits: number): Decimal[] {
  if (weights.length === 0) return [];
  const unit = new Big(1).div(new Big(10).pow(digits));
  const positive = weights.map((w) => (w.gt(0) ? w : ZERO));
  const weightSum = sum(positive);
  if (weightSum.eq(0)) return weights.map((_, i) => (i === 0 ? total : ZERO));
  const sign = total.lt(0) ? -1 : 1;
  const units = total.abs().div(unit).round(0, Big.roundDown);
  const exact = positive.map((w) => units.times(w).div(weightSum));
  const floors = exact.map((e) => e.round(0, Big.roundDown));
  let left = units.minus(sum(floors)).toNumber();
  const order = exact
    .map((e, i) => ({ i, remainder: e.minus(floors[i]!) }))
    .sort((a, b) => b.remainder.cmp(a.remainder) || a.i - b.i);
  const parts = [...floors];
  for (const { i } of order) {
    if (left <= 0) break;
    parts[i] = parts[i]!.plus(1);
    left -= 1;
  }
  // Any amount below one minor unit (not expected from stored money) stays on the first part.
  const rest = total.abs().minus(units.times(unit));
  return parts.map((p, i) =>
    p
      .times(unit)
      .plus(i === 0 ? rest : ZERO)
      .times(sign),
  );
}

function rateKey(rate: string | null): string {
  return rate === null ? '' : new Big(rate).toString();
}

/**
 * A CDR's money per VAT rate, adding up exactly to its totals. Lines are grouped by rate;
 * what the lines do not explain — a Parking Refund spread over several rates, a minPrice or
 * maxPrice adjustment — is spread over the rates in proportion to their nets.
 */
export function bucketsOf(cdr: CdrRecord): RateBucket[] {
  const digits = minorUnits(cdr.currency);
  const groups = new Map<string, { rate: string | null; net: Decimal; vat: Decimal }>();
  for (const line of cdr.lines) {
    if (line.dimension === 'Parking Refund' && line.vatRate === null) continue;
    const key = rateKey(line.vatRate);
    const g = groups.get(key) ?? { rate: line.vatRate, net: ZERO, vat: ZERO };
    groups.set(key, { rate: g.rate, net: g.net.plus(line.net), vat: g.vat.plus(line.vat) });
  }
  const list = [...groups.values()].sort((a, b) => rateKey(a.rate).localeCompare(rateKey(b.rate)));
  if (list.length === 0)
    return [{ rate: null, net: new Big(cdr.totalExclVat), vat: new Big(cdr.totalVat) }];
  const netGap = new Big(cdr.totalExclVat).minus(sum(list.map((g) => g.net)));
  const vatGap = new Big(cdr.totalVat).minus(sum(list.map((g) => g.vat)));
  const weights = list.map((g) => g.net.abs());
  const netShares = allocate(netGap, weights, digits);
  const vatShares = allocate(vatGap, weights, digits);
  return list.map((g, i) => ({
    rate: g.rate,
    net: g.net.plus(netShares[i]!),
    vat: g.vat.plus(vatShares[i]!),
  }));
}

/** Adds bucket lists rate by rate (credits carry negative amounts). */
export function addBuckets(lists: ReadonlyArray<readonly RateBucket[]>): RateBucket[] {
  const byRate = new Map<string, RateBucket>();
  for (const list of lists) {
    for (const b of list) {
      const key = rateKey(b.rate);
      const prev = byRate.get(key);
      byRate.set(
        key,
        prev === undefined
          ? b
          : { rate: prev.rate, net: prev.net.plus(b.net), vat: prev.vat.plus(b.vat) },
      );
    }
  }
  return [...byRate.values()].sort((a, b) => rateKey(a.rate).localeCompare(rateKey(b.rate)));
}

/** What a session still costs per rate: its debit CDR plus every credit against it. */
export function remainingOf(debit: CdrRecord, credits: readonly CdrRecord[]): RateBucket[] {
  return addBuckets([bucketsOf(debit), ...credits.map(bucketsOf)]);
}

/**
 * C3: a refund of `amount` (incl. VAT) split over the VAT rates of what remains charged, in
 * proportion to each rate's gross amount. Each rate's net is its gross share less the VAT the
 * share contains (rounded half-up), so nets + VAT = the amount exactly. Refunding everything
 * that remains gives back exactly the remaining nets and VAT, so the CDRs then sum to zero.
 * Returned amounts are positive (the credit CDR negates them).
 */
export function splitRefund(
  remaining: readonly RateBucket[],
  amount: Decimal,
  currency: string,
): RateBucket[] {
  const digits = minorUnits(currency);
  const gross = remaining.map((b) => b.net.plus(b.vat));
  if (sum(gross).eq(amount)) return remaining.map((b) => ({ ...b }));
  const shares = allocate(amount, gross, digits);
  return remaining.map((b, i) => {
    const share = shares[i]!;
    let net =
      b.rate === null
        ? share
        : share.times(100).div(new Big(100).plus(b.rate)).round(digits, Big.roundHalfUp);
    if (net.gt(b.net)) net = b.net.gt(0) ? b.net : ZERO;
    return { rate: b.rate, net, vat: share.minus(net) };
  });
}

/** The lines of a refund credit CDR: one per VAT rate with a share, amounts negated. */
export function refundLines(parts: readonly RateBucket[], currency: string): CdrLineRecord[] {
  return parts
    .filter((p) => !p.net.eq(0) || !p.vat.eq(0))
    .map((p) => ({
      dimension: 'REFUND',
      quantity: '1',
      unit: 'session',
      unitPrice: money(p.net.plus(p.vat), currency),
      vatRate: p.rate,
      net: money(p.net.neg(), currency),
      vat: money(p.vat.neg(), currency),
    }));
}

/** Negates decimal text; zero stays unsigned. */
export function negate(text: string): string {
  if (/^-?0*(\.0*)?$/.test(text)) return text.replace('-', '');
  return text.startsWith('-') ? text.slice(1) : `-${text}`;
}
