import { Big } from '../lib/decimal.js';
import { money, sum } from './money.js';
import type { CdrRecord } from './records.js';

/**
 * Driver (B1) and account (B2) statements, built from the CDRs created in the period
 * [from, to): a debit CDR counts where its session ended, a credit CDR (cancellation, refund)
 * where it was written. A past period therefore never changes, and the statement's totals
 * are the sums of exactly those CDRs (B4). One row per session; a correction written in a
 * later period shows there, as a row of its session with the credit alone.
 */
export interface StatementRow {
  readonly sessionId: string;
  readonly customerId: string;
  readonly chargerId: string;
  readonly siteId: string;
  readonly operatorId: string;
  readonly startedAt: string;
  readonly endedAt: string;
  /** charged, refunded (some credit or Parking Refund), cancelled. */
  readonly status: 'charged' | 'refunded' | 'cancelled';
  readonly currency: string;
  readonly energyWh: string;
  /** Incl. VAT: what the session was charged before any refund. */
  readonly chargingFees: string;
  /** Incl. VAT, ≤ 0: the Parking Refund line, refunds and the cancellation. */
  readonly refunds: string;
  /** Incl. VAT, after refunds (B1's per-row cost). */
  readonly cost: string;
  /** Excl. VAT, before refunds. */
  readonly chargingCostBeforeRefunds: string;
  /** Excl. VAT, ≤ 0. */
  readonly refundsExclVat: string;
  /** Excl. VAT, after refunds (B2's Charging Cost column). */
  readonly chargingCost: string;
  readonly vat: string;
  readonly cdrIds: readonly string[];
  /** The session's debit CDR is in the period (not only a later correction of it). */
  readonly billedInPeriod: boolean;
}

/** Per currency: B1's Total Charging Fees and B2's Total Pre-Tax Amount, refunds deducted. */
export interface StatementTotals {
  readonly currency: string;
  /** Sessions billed in the period and not cancelled. */
  readonly sessions: number;
  readonly energyWh: string;
  readonly totalChargingFees: string;
  readonly totalRefunds: string;
  readonly totalPreTaxAmount: string;
  readonly totalVat: string;
  readonly total: string;
}

export interface Statement {
  readonly kind: 'driver' | 'account';
  /** The customer (driver) or the organization (account). */
  readonly subject: string;
  readonly from: string;
  readonly to: string;
  readonly rows: readonly StatementRow[];
  readonly totals: readonly StatementTotals[];
}

/** The Parking Refund lines of a CDR (R6), net and VAT (both ≤ 0). */
function parkingRefund(cdr: CdrRecord): { net: Big; vat: Big } {
  const lines = cdr.lines.filter((l) => l.dimension === 'Parking Refund');
  return { net: sum(lines.map((l) => l.net)), vat: sum(lines.map((l) => l.vat)) };
}

export function buildStatement(
  kind: Statement['kind'],
  subject: string,
  from: string,
  to: string,
  cdrs: readonly CdrRecord[],
): Statement {
  const ordered = [...cdrs].sort((a, b) =>
    a.createdAt === b.createdAt
      ? compareText(a.cdrId, b.cdrId)
      : compareText(a.createdAt, b.createdAt),
  );
  const bySession = new Map<string, CdrRecord[]>();
  for (const cdr of ordered) {
    const list = bySession.get(cdr.sessionId);
    if (list === undefined) bySession.set(cdr.sessionId, [cdr]);
    else list.push(cdr);
  }
  const rows: StatementRow[] = [];
  for (const list of bySession.values()) {
    const first = list.find((c) => c.kind === 'debit') ?? list[0]!;
    const currency = first.currency;
    let feesNet = new Big(0);
    let feesGross = new Big(0);
    let refundsNet = new Big(0);
    let refundsGross = new Big(0);
    for (const cdr of list) {
      const net = new Big(cdr.totalExclVat);
      const gross = new Big(cdr.totalInclVat);
      if (cdr.kind === 'debit') {
        const refund = parkingRefund(cdr);
        feesNet = feesNet.plus(net).minus(refund.net);
        feesGross = feesGross.plus(gross).minus(refund.net).minus(refund.vat);
        refundsNet = refundsNet.plus(refund.net);
        refundsGross = refundsGross.plus(refund.net).plus(refund.vat);
      } else {
        refundsNet = refundsNet.plus(net);
        refundsGross = refundsGross.plus(gross);
      }
    }
    const cost = feesGross.plus(refundsGross);
    const chargingCost = feesNet.plus(refundsNet);
    rows.push({
      sessionId: first.sessionId,
      customerId: first.customerId,
      chargerId: first.chargerId,
      siteId: first.siteId,
      operatorId: first.operatorId,
      startedAt: first.startedAt,
      endedAt: first.endedAt,
      status: list.some((c) => c.correction === 'cancellation')
        ? 'cancelled'
        : refundsGross.eq(0)
          ? 'charged'
          : 'refunded',
      currency,
      energyWh: sum(list.map((c) => c.energyWh)).toFixed(3),
      chargingFees: money(feesGross, currency),
      refunds: money(refundsGross, currency),
      cost: money(cost, currency),
      chargingCostBeforeRefunds: money(feesNet, currency),
      refundsExclVat: money(refundsNet, currency),
      chargingCost: money(chargingCost, currency),
      vat: money(cost.minus(chargingCost), currency),
      cdrIds: list.map((c) => c.cdrId),
      billedInPeriod: list.some((c) => c.kind === 'debit'),
    });
  }
  rows.sort((a, b) =>
    a.startedAt === b.startedAt
      ? compareText(a.sessionId, b.sessionId)
      : compareText(a.startedAt, b.startedAt),
  );
  const currencies = [...new Set(rows.map((r) => r.currency))].sort();
  const totals = currencies.map((currency) => {
    const of = rows.filter((r) => r.currency === currency);
    return {
      currency,
      sessions: of.filter((r) => r.billedInPeriod && r.status !== 'cancelled').length,
      energyWh: sum(of.map((r) => r.energyWh)).toFixed(3),
      totalChargingFees: money(sum(of.map((r) => r.cost)), currency),
      totalRefunds: money(sum(of.map((r) => r.refunds)), currency),
      totalPreTaxAmount: money(sum(of.map((r) => r.chargingCost)), currency),
      totalVat: money(sum(of.map((r) => r.vat)), currency),
      total: money(sum(of.map((r) => r.cost)), currency),
    };
  });
  return { kind, subject, from, to, rows, totals };
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function csvField(value: string | number): string {
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function csvLine(fields: ReadonlyArray<string | number>): string {
  return fields.map(csvField).join(',') + '\r\n';
}

/**
 * The statement as CSV (RFC 4180): a header, one line per session, an empty line, then the
 * summary lines (label, amount, currency).
 */
export function statementCsv(statement: Statement): string {
  let out = '';
  if (statement.kind === 'driver') {
    out += csvLine([
      'Session',
      'Charger',
      'Site',
      'Started',
      'Ended',
      'Energy (Wh)',
      'Charging Fees',
      'Refunds',
      'Cost',
      'Currency',
      'Status',
    ]);
    for (const r of statement.rows)
      out += csvLine([
        r.sessionId,
        r.chargerId,
        r.siteId,
        r.startedAt,
        r.endedAt,
        r.energyWh,
        r.chargingFees,
        r.refunds,
        r.cost,
        r.currency,
        r.status,
      ]);
    out += '\r\n';
    for (const t of statement.totals) {
      out += csvLine(['Total Charging Fees', t.totalChargingFees, t.currency]);
      out += csvLine(['Total Refunds', t.totalRefunds, t.currency]);
    }
    return out;
  }
  out += csvLine([
    'Session',
    'Customer',
    'Charger',
    'Site',
    'Started',
    'Ended',
    'Energy (Wh)',
    'Charging Cost Before Refunds',
    'Refunds',
    'Charging Cost',
    'VAT',
    'Total',
    'Currency',
    'Status',
  ]);
  for (const r of statement.rows)
    out += csvLine([
      r.sessionId,
      r.customerId,
      r.chargerId,
      r.siteId,
      r.startedAt,
      r.endedAt,
      r.energyWh,
      r.chargingCostBeforeRefunds,
      r.refundsExclVat,
      r.chargingCost,
      r.vat,
      r.cost,
      r.currency,
      r.status,
    ]);
  out += '\r\n';
  for (const t of statement.totals) {
    out += csvLine(['Total Pre-Tax Amount', t.totalPreTaxAmount, t.currency]);
    out += csvLine(['Total VAT', t.totalVat, t.currency]);
    out += csvLine(['Total', t.total, t.currency]);
  }
  return out;
}
