import { Big } from '../lib/decimal.js';
import {
  DIMENSIONS,
  ENERGY,
  FLAT,
  PARKING,
  RESERVATION,
  TIME,
  type CompiledTariff,
  type Dimension,
} from './tariff.js';

/**
 * Money (rating.md R3.1, R4.1–R4.4): from the integer quantities the rater accumulates to
 * invoice lines, VAT and totals, in big.js decimals. Quantities arrive as integer mWh and ms, so
 * every amount is an exact fraction (÷ 10⁶ for kWh, ÷ 3.6·10⁶ for hours) that is rounded once,
 * half-up, to the currency's minor unit per line, by exact integer division rather than by
 * big.js's 12-digit quotient: no double rounding even at a half-cent.
 */

export type LineType = Dimension | 'Parking Refund';

export interface LinePart {
  /** The element whose component priced this part. */
  readonly element: number;
  /** In the line's unit. */
  readonly quantity: string;
  readonly unitPrice: string;
}

export interface InvoiceLine {
  readonly type: LineType;
  /** Billed quantity (after the step-size round-up): Wh, s, sessions, or 15-min blocks. */
  readonly quantity: string;
  readonly unit: 'Wh' | 's' | 'session' | '15min';
  /** Per kWh, per hour, per session or per 15 min; null when several prices contributed. */
  readonly unitPrice: string | null;
  /** Percent, or null when the component states no VAT (or the refund spans several rates). */
  readonly vatRate: string | null;
  /** Rounded half-up to the minor unit; negative for the refund. */
  readonly net: string;
  /** This line's share of the VAT of its rate (shares add up to the VAT of the rate). */
  readonly vat: string;
  readonly parts: readonly LinePart[];
}

export interface VatAmount {
  readonly rate: string | null;
  /** Sum of the rounded nets at this rate, after the refund's share. */
  readonly taxable: string;
  readonly vat: string;
}

export interface MoneyTotals {
  readonly exclVat: string;
  readonly vat: string;
  readonly inclVat: string;
}

/** What a session costs, without the lines: the running cost (R5.1) as sessions show it. */
export interface Totals {
  readonly currency: string;
  readonly totalExclVat: string;
  readonly totalVat: string;
  readonly totalInclVat: string;
}

export interface Amounts extends Totals {
  readonly lines: readonly InvoiceLine[];
  /** Per VAT rate (R4.2). */
  readonly vat: readonly VatAmount[];
  /** The lines before minPrice/maxPrice and the refund. */
  readonly computed: MoneyTotals;
  /** What minPrice/maxPrice added (negative when capped), or null when neither applied. */
  readonly adjustment: { readonly exclVat: string; readonly inclVat: string } | null;
}

/** What the rater hands to pricing: integer quantities per dimension and element. */
export interface Quantities {
  /** rows ENERGY(mWh), TIME, PARKING, FLAT(unused), RESERVATION, IDLE (ms); n+1 columns, the last unpriced. */
  readonly acc: readonly number[];
  /** Per dimension, element of the last period that used it; -1 unpriced; -2 never used. */
  readonly lastElem: readonly number[];
  /** Element whose FLAT component is billed, or -1. */
  readonly flat: number;
}

export const ROWS = 6;
export const IDLE = 5;
const MS_PER_HOUR = new Big(3_600_000);
/** × 10⁻⁶ (mWh × price per kWh) and × 10⁻² (percent) are exact in big.js; divisions are not. */
const MICRO = new Big('0.000001');
const CENTI = new Big('0.01');
const ZERO = new Big(0);
const QUARTER_MS = 900_000;

/**
 * Prices the quantities. `final` applies the step-size round-up (R3.1), which belongs to the
 * end of the session only (R5.1). `refundPer15Min` is the rate plan's charging-time refund.
 */
export function price(
  tariff: CompiledTariff,
  q: Quantities,
  final: boolean,
  refundPer15Min: string | null,
): Amounts {
  return priced(tariff, q, final, refundPer15Min, true);
}

/**
 * The totals `price` gives, without the lines, the VAT per rate and the rest of the detail: a
 * running cost (R5.1) is wanted after every batch of a session, its lines only on the CDR.
 * The same arithmetic, only what the totals do not need left out (about half the work for a
 * tariff of one energy price; bench/RESULTS.md).
 */
export function priceTotals(
  tariff: CompiledTariff,
  q: Quantities,
  refundPer15Min: string | null,
): Totals {
  return priced(tariff, q, false, refundPer15Min, false);
}

/** `price` itself; with `detail` false it builds the totals alone (`priceTotals`). */
function priced(
  tariff: CompiledTariff,
  q: Quantities,
  final: boolean,
  refundPer15Min: string | null,
  detail: true,
): Amounts;
function priced(
  tariff: CompiledTariff,
  q: Quantities,
  final: boolean,
  refundPer15Min: string | null,
  detail: false,
): Totals;
function priced(
  tariff: CompiledTariff,
  q: Quantities,
  final: boolean,
  refundPer15Min: string | null,
  detail: boolean,
): Amounts | Totals {
  const digits = tariff.minorUnits;
  const n = tariff.elements.length;
  const stride = n + 1;
  const total = (row: number): number => {
    let sum = 0;
    for (let e = 0; e <= n; e++) sum += q.acc[row * stride + e] ?? 0;
    return sum;
  };
  const component = (e: number, d: number) => tariff.elements[e]?.components[d] ?? null;

  const drafts: DraftLine[] = [];
  if (q.flat >= 0) {
    const c = component(q.flat, FLAT);
    if (c !== null) {
      drafts.push({
        type: 'FLAT',
        quantity: '1',
        unit: 'session',
        vatRate: c.vat,
        net: dec(c.price).round(digits, Big.roundHalfUp),
        parts: [{ element: q.flat, quantity: '1', unitPrice: c.price }],
      });
    }
  }
  const parkingUsed = total(PARKING) > 0;
  for (const d of [ENERGY, TIME, PARKING, RESERVATION]) {
    const sum = total(d);
    if (sum === 0) continue;
    const qty: number[] = [];
    for (let e = 0; e < n; e++) qty.push(q.acc[d * stride + e] ?? 0);
    const last = q.lastElem[d] ?? -2;
    // R3.1: once per session, on the session total, at the last component's step; with both
    // TIME and PARKING_TIME only parking is rounded.
    if (final && last >= 0 && !(d === TIME && parkingUsed)) {
      const step = (component(last, d)?.stepSize ?? 0) * 1000;
      const rest = sum % step;
      if (step > 0 && rest !== 0) qty[last] = (qty[last] ?? 0) + (step - rest);
    }
    const byRate = new Map<string, { vat: string | null; parts: { e: number; qty: number }[] }>();
    qty.forEach((amount, e) => {
      const c = component(e, d);
      if (amount === 0 || c === null) return;
      const key = c.vat ?? '';
      let group = byRate.get(key);
      if (group === undefined) byRate.set(key, (group = { vat: c.vat, parts: [] }));
      group.parts.push({ e, qty: amount });
    });
    for (const group of byRate.values()) {
      let numerator = ZERO;
      let billed = 0;
      const parts: LinePart[] = [];
      for (const { e, qty: amount } of group.parts) {
        const unitPrice = component(e, d)?.price ?? '0';
        numerator = numerator.plus(dec(unitPrice).times(amount));
        billed += amount;
        if (detail) parts.push({ element: e, quantity: fromMilli(amount), unitPrice });
      }
      drafts.push({
        type: DIMENSIONS[d] ?? 'ENERGY',
        quantity: detail ? fromMilli(billed) : '',
        unit: d === ENERGY ? 'Wh' : 's',
        vatRate: group.vat,
        net:
          d === ENERGY
            ? numerator.times(MICRO).round(digits, Big.roundHalfUp)
            : roundDiv(numerator, MS_PER_HOUR, digits),
        parts,
      });
    }
  }

  // R4.2: VAT per rate on the sum of the rounded nets at that rate.
  const rates = new Map<string, RateGroup>();
  for (const line of drafts) {
    const key = line.vatRate ?? '';
    let g = rates.get(key);
    if (g === undefined) {
      rates.set(key, (g = { rate: line.vatRate, taxable: ZERO, lines: [], vat: ZERO }));
    }
    g.taxable = g.taxable.plus(line.net);
    g.lines.push(line);
  }
  let e0 = ZERO;
  let v0 = ZERO;
  const lineVat = new Map<DraftLine, Big>();
  for (const g of rates.values()) {
    g.vat = vatOf(g.taxable, g.rate, digits);
    e0 = e0.plus(g.taxable);
    v0 = v0.plus(g.vat);
    if (detail) allocateVat(g, digits, lineVat);
  }
  const i0 = e0.plus(v0);

  // R4.3: minPrice raises and maxPrice caps, the excl. and incl. totals each on their own.
  const lim = (x: Big, min: string | null | undefined, max: string | null | undefined): Big => {
    let y = x;
    if (min != null && y.lt(dec(min))) y = dec(min);
    if (max != null && y.gt(dec(max))) y = dec(max);
    return y.round(digits, Big.roundHalfUp);
  };
  const e1 = lim(e0, tariff.minPrice?.exclVat, tariff.maxPrice?.exclVat);
  // A bound without inclVat moves the incl. total with the excl. one at the session's VAT ratio.
  const exclOnlyMoved =
    !e1.eq(e0) &&
    ((tariff.minPrice !== null &&
      tariff.minPrice.inclVat === null &&
      e0.lt(tariff.minPrice.exclVat)) ||
      (tariff.maxPrice !== null &&
        tariff.maxPrice.inclVat === null &&
        e0.gt(tariff.maxPrice.exclVat)));
  const iBase = exclOnlyMoved ? e1.plus(e0.eq(0) ? ZERO : roundDiv(v0.times(e1), e0, digits)) : i0;
  const i1 = lim(iBase, tariff.minPrice?.inclVat, tariff.maxPrice?.inclVat);
  const adjusted = !e1.eq(e0) || !i1.eq(i0);

  // R4.4 / domain R6: the refund, capped at the net total, deducted before VAT.
  // Built field by field (measured: spreading the draft made runningCost 18 µs instead of 10).
  const lines: InvoiceLine[] = !detail
    ? []
    : drafts.map((l) => ({
        type: l.type,
        quantity: l.quantity,
        unit: l.unit,
        unitPrice: samePrice(l.parts),
        vatRate: l.vatRate,
        net: l.net.toFixed(digits),
        vat: (lineVat.get(l) ?? ZERO).toFixed(digits),
        parts: l.parts,
      }));
  let refundNet = ZERO;
  let refundVat = ZERO;
  const chargingMs = total(TIME);
  if (refundPer15Min !== null && chargingMs > 0 && e1.gt(0)) {
    const blocks = Math.ceil(chargingMs / QUARTER_MS);
    const wanted = new Big(refundPer15Min).times(blocks).round(digits, Big.roundHalfUp);
    refundNet = wanted.gt(e1) ? e1 : wanted;
    if (refundNet.gt(0)) {
      if (adjusted) {
        // The lines no longer make the totals: reduce the billed VAT in proportion.
        refundVat = roundDiv(i1.minus(e1).times(refundNet), e1, digits);
      } else {
        refundVat = allocateRefund([...rates.values()], refundNet, e0, digits);
      }
      if (detail) {
        const refundRates = [...rates.values()].filter(
          (g) => g.refund !== undefined && g.refund.gt(0),
        );
        lines.push({
          type: 'Parking Refund',
          quantity: String(blocks),
          unit: '15min',
          unitPrice: new Big(refundPer15Min).toFixed(),
          vatRate: !adjusted && refundRates.length === 1 ? (refundRates[0]?.rate ?? null) : null,
          net: refundNet.neg().toFixed(digits),
          vat: refundVat.neg().toFixed(digits),
          parts: [],
        });
      }
    }
  }
  const totalExcl = e1.minus(refundNet);
  const totalIncl = i1.minus(refundNet).minus(refundVat);
  if (!detail) {
    return {
      currency: tariff.currency,
      totalExclVat: totalExcl.toFixed(digits),
      totalVat: totalIncl.minus(totalExcl).toFixed(digits),
      totalInclVat: totalIncl.toFixed(digits),
    };
  }
  return {
    currency: tariff.currency,
    lines,
    vat: [...rates.values()].map((g) => {
      const taxable = g.taxable.minus(g.refund ?? 0);
      return {
        rate: g.rate,
        taxable: taxable.toFixed(digits),
        vat: (g.refund === undefined ? g.vat : vatOf(taxable, g.rate, digits)).toFixed(digits),
      };
    }),
    computed: { exclVat: e0.toFixed(digits), vat: v0.toFixed(digits), inclVat: i0.toFixed(digits) },
    adjustment: adjusted
      ? { exclVat: e1.minus(e0).toFixed(digits), inclVat: i1.minus(i0).toFixed(digits) }
      : null,
    totalExclVat: totalExcl.toFixed(digits),
    totalVat: totalIncl.minus(totalExcl).toFixed(digits),
    totalInclVat: totalIncl.toFixed(digits),
  };
}

interface DraftLine {
  readonly type: LineType;
  readonly quantity: string;
  readonly unit: InvoiceLine['unit'];
  readonly vatRate: string | null;
  readonly net: Big;
  readonly parts: readonly LinePart[];
}

interface RateGroup {
  readonly rate: string | null;
  taxable: Big;
  vat: Big;
  readonly lines: DraftLine[];
  /** The refund's share of this rate, once allocated. */
  refund?: Big;
}

function vatOf(taxable: Big, rate: string | null, digits: number): Big {
  return rate === null
    ? ZERO
    : taxable.times(dec(rate)).times(CENTI).round(digits, Big.roundHalfUp);
}

/** Each line's VAT at its rate; the rounding difference goes to the largest line. */
function allocateVat(g: RateGroup, digits: number, out: Map<DraftLine, Big>): void {
  let sum = ZERO;
  let largest: DraftLine | undefined;
  for (const line of g.lines) {
    const v = vatOf(line.net, g.rate, digits);
    out.set(line, v);
    sum = sum.plus(v);
    if (largest === undefined || line.net.abs().gt(largest.net.abs())) largest = line;
  }
  if (largest !== undefined) out.set(largest, (out.get(largest) ?? ZERO).plus(g.vat.minus(sum)));
}

/**
 * Splits the refund over the VAT rates in proportion to their nets (largest remainder, in
 * minor units, so the shares add up exactly and none exceeds its rate's net) and returns how
 * much VAT it removes.
 */
function allocateRefund(groups: RateGroup[], refund: Big, nets: Big, digits: number): Big {
  const unit = tenPow(digits);
  const units = refund.times(unit);
  let given = ZERO;
  const shares = groups.map((g) => {
    const exact = units.times(g.taxable).div(nets);
    const floor = floorDiv(units.times(g.taxable), nets);
    given = given.plus(floor);
    return { g, floor, fraction: exact.minus(floor) };
  });
  let left = Number(units.minus(given).toFixed(0));
  [...shares]
    .sort((a, b) => b.fraction.cmp(a.fraction))
    .forEach((s) => {
      if (left > 0 && s.floor.lt(s.g.taxable.times(unit))) {
        s.floor = s.floor.plus(1);
        left -= 1;
      }
    });
  let removed = ZERO;
  for (const s of shares) {
    s.g.refund = s.floor.div(unit);
    removed = removed.plus(s.g.vat.minus(vatOf(s.g.taxable.minus(s.g.refund), s.g.rate, digits)));
  }
  return removed;
}

/** Prices are normalized decimal text (compileTariff), so equal prices are equal strings. */
function samePrice(parts: readonly LinePart[]): string | null {
  const first = parts[0]?.unitPrice ?? null;
  return parts.every((p) => p.unitPrice === first) ? first : null;
}

/** Integer milli-units (mWh, ms) as decimal text of units (Wh, s), exactly. */
export function fromMilli(value: number): string {
  const abs = Math.abs(value);
  const whole = Math.floor(abs / 1000);
  const milli = abs - whole * 1000;
  const sign = value < 0 ? '-' : '';
  if (milli === 0) return `${sign}${whole}`;
  return `${sign}${whole}.${String(milli).padStart(3, '0').replace(/0+$/, '')}`;
}

/**
 * Parsed decimals of the tariffs in use (prices, VAT rates, bounds): the same few strings are
 * priced on every reading, and parsing them is a third of big.js's cost. Big values are
 * immutable, so sharing them is safe; the cap only guards against unbounded growth.
 */
const parsed = new Map<string, Big>();
function dec(text: string): Big {
  let value = parsed.get(text);
  if (value === undefined) {
    if (parsed.size > 10_000) parsed.clear();
    value = new Big(text);
    parsed.set(text, value);
  }
  return value;
}

const TEN_POWERS: Big[] = [];
const TENTH_POWERS: Big[] = [];
/** 10^digits. */
function tenPow(digits: number): Big {
  return (TEN_POWERS[digits] ??= new Big(`1e${digits}`));
}
/** 10^-digits, exact. */
function tenthPow(digits: number): Big {
  return (TENTH_POWERS[digits] ??= new Big(`1e-${digits}`));
}

function floorDiv(n: Big, d: Big): Big {
  let q = n.div(d).round(0, Big.roundDown);
  let r = n.minus(q.times(d));
  while (r.lt(0)) {
    q = q.minus(1);
    r = r.plus(d);
  }
  while (r.gte(d)) {
    q = q.plus(1);
    r = r.minus(d);
  }
  return q;
}

/**
 * n ÷ d rounded half-up (away from zero on ties) to `digits`, exactly: big.js's division stops
 * at 12 digits, so the quotient is corrected with the exact remainder before rounding.
 */
export function roundDiv(n: Big, d: Big, digits: number): Big {
  const negative = n.lt(0) !== d.lt(0);
  const num = n.abs().times(tenPow(digits));
  const den = d.abs();
  let q = floorDiv(num, den);
  const r = num.minus(q.times(den));
  if (r.times(2).gte(den)) q = q.plus(1);
  const result = q.times(tenthPow(digits));
  return negative ? result.neg() : result;
}
