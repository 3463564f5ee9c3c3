import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cancellationOf } from '../../src/billing/corrections.js';
import { buildInvoice, invoiceHtml } from '../../src/billing/invoice.js';
import {
  allocate,
  bucketsOf,
  refundLines,
  remainingOf,
  splitRefund,
  sum,
} from '../../src/billing/money.js';
import type { CdrRecord, SessionRecord } from '../../src/billing/records.js';
import { buildStatement, statementCsv } from '../../src/billing/statements.js';
import { Big } from '../../src/lib/decimal.js';
import { compileTariff, creditOf, rateSession, type Cdr } from '../../src/rating/index.js';

const MIN = 60_000;
const T = Date.UTC(2025, 2, 10, 8);

/** rating.md case 5: TIME 3.00/h @10 % step 60 s, PARKING 5.00/h @20 % step 300 s. */
function case5(): Cdr {
  const tariff = compileTariff(
    {
      id: 'T5',
      currency: 'EUR',
      elements: [
        {
          components: [
            { type: 'TIME', price: '3.00', vat: '10', stepSize: 60 },
            { type: 'PARKING_TIME', price: '5.00', vat: '20', stepSize: 300 },
          ],
        },
      ],
    },
    'UTC',
  );
  return rateSession(
    tariff,
    [
      { ts: T, energyWh: 0, state: 'charging' },
      { ts: T + 150 * MIN, energyWh: 40_000, state: 'parking' },
    ],
    { endTs: T + 192 * MIN, id: 'S5-1' },
  );
}

/** A rated CDR as the store holds it (what the API reads back). */
function recordOf(cdr: Cdr, over: Partial<CdrRecord> = {}): CdrRecord {
  return {
    cdrId: cdr.id ?? 'S5-1',
    sessionId: 'S5',
    kind: 'debit',
    correction: '',
    creditReferenceId: '',
    requestId: '',
    requestedBy: '',
    chargerId: 'CP1',
    siteId: 's',
    operatorId: 'o',
    connectorId: 1,
    customerId: 'c',
    tokenId: 'TAG',
    tariffId: 'T5',
    startedAt: new Date(cdr.startTs).toISOString(),
    endedAt: new Date(cdr.endTs).toISOString(),
    energyWh: cdr.quantities.energyWh,
    chargingS: 9000,
    parkingS: 2520,
    totalExclVat: cdr.totalExclVat,
    totalVat: cdr.totalVat,
    totalInclVat: cdr.totalInclVat,
    currency: cdr.currency,
    description: '',
    createdAt: new Date(cdr.endTs).toISOString(),
    lines: cdr.lines.map((l) => ({
      dimension: l.type,
      quantity: l.quantity,
      unit: l.unit,
      unitPrice: l.unitPrice ?? '0',
      vatRate: l.vatRate,
      net: l.net,
      vat: l.vat,
    })),
    ...over,
  };
}

const session = (over: Partial<SessionRecord> = {}): SessionRecord => ({
  sessionId: 'S5',
  chargerId: 'CP1',
  siteId: 's',
  operatorId: 'o',
  connectorId: 1,
  transactionId: '1',
  status: 'rated',
  reason: 'EVDisconnected',
  customerId: 'c',
  tokenId: 'TAG',
  tariffId: 'T5',
  startedAt: '2025-03-10T08:00:00.000Z',
  endedAt: '2025-03-10T11:12:00.000Z',
  energyWh: '40000',
  chargingS: 9000,
  parkingS: 2520,
  faultS: 0,
  reservationS: 0,
  costExclVat: '11.25',
  vat: '1.5',
  costInclVat: '12.75',
  currency: 'EUR',
  flags: [],
  error: '',
  ...over,
});

/** A refund credit as refundSession builds it. */
function refundOf(debit: CdrRecord, earlier: CdrRecord[], amount: string, id: string): CdrRecord {
  const parts = splitRefund(remainingOf(debit, earlier), new Big(amount), debit.currency);
  const net = sum(parts.map((p) => p.net));
  return {
    ...debit,
    cdrId: id,
    kind: 'credit',
    correction: 'refund',
    creditReferenceId: debit.cdrId,
    requestId: id,
    energyWh: '0',
    totalExclVat: net.neg().toFixed(2),
    totalVat: new Big(amount).minus(net).neg().toFixed(2),
    totalInclVat: new Big(amount).neg().toFixed(2),
    description: 'goodwill',
    createdAt: '2025-03-11T09:00:00.000Z',
    lines: refundLines(parts, debit.currency),
  };
}

describe('credit CDR arithmetic (C2, rating.md case 14)', () => {
  it('C2 the cancellation of a stored CDR negates energy, lines and totals as creditOf does', () => {
    const rated = case5();
    const debit = recordOf(rated);
    const frozen = JSON.stringify(debit);
    const credit = cancellationOf(debit, 'duplicate session', Date.UTC(2025, 2, 11), 'admin@o');
    const reference = creditOf(rated, 'duplicate session');
    expect(JSON.stringify(debit)).toBe(frozen);
    expect(credit).toMatchObject({
      kind: 'credit',
      correction: 'cancellation',
      creditReferenceId: 'S5-1',
      description: 'duplicate session',
      energyWh: reference.quantities.energyWh,
      totalExclVat: '-11.25',
      totalVat: '-1.50',
      totalInclVat: '-12.75',
    });
    expect(credit.lines.map((l) => [l.dimension, l.quantity, l.net, l.vat])).toEqual(
      reference.lines.map((l) => [l.type, l.quantity, l.net, l.vat]),
    );
    for (const field of ['totalExclVat', 'totalVat', 'totalInclVat', 'energyWh'] as const)
      expect(new Big(debit[field]).plus(credit[field]).eq(0), field).toBe(true);
    expect(sum(bucketsOf(credit).map((b) => b.net.plus(b.vat))).toFixed(2)).toBe('-12.75');
  });
});

describe('refund arithmetic (C3)', () => {
  it('allocate splits an amount to the cent, in proportion, adding up exactly', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -1_000_000, max: 1_000_000 }),
        fc.array(fc.integer({ min: 0, max: 100_000 }), { minLength: 1, maxLength: 6 }),
        (cents, weights) => {
          const total = new Big(cents).div(100);
          const parts = allocate(
            total,
            weights.map((w) => new Big(w)),
            2,
          );
          expect(sum(parts).eq(total)).toBe(true);
          for (const p of parts) expect(p.eq(p.round(2))).toBe(true);
        },
      ),
    );
  });

  it('C3 a partial refund is split over the VAT rates; nets + VAT = the amount to the cent', () => {
    const debit = recordOf(case5());
    // 12.75 gross: TIME 8.25 @10 %, PARKING 4.50 @20 %.
    const refund = refundOf(debit, [], '5.10', 'R1');
    expect(refund.lines).toEqual([
      expect.objectContaining({ vatRate: '10', net: '-3.00', vat: '-0.30' }),
      expect.objectContaining({ vatRate: '20', net: '-1.50', vat: '-0.30' }),
    ]);
    expect([refund.totalExclVat, refund.totalVat, refund.totalInclVat]).toEqual([
      '-4.50',
      '-0.60',
      '-5.10',
    ]);
  });

  it('C3 refunds in any steps never leave a cent over: the last refund takes exactly what remains', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 600 }), { maxLength: 5 }), (steps) => {
        const debit = recordOf(case5());
        const credits: CdrRecord[] = [];
        let left = new Big('12.75');
        for (const [i, cents] of steps.entries()) {
          const amount = new Big(cents).div(100);
          if (amount.gt(left)) break;
          const refund = refundOf(debit, credits, amount.toFixed(2), `R${i}`);
          expect(sum(refund.lines.map((l) => new Big(l.net).plus(l.vat))).toFixed(2)).toBe(
            amount.neg().toFixed(2),
          );
          credits.push(refund);
          left = left.minus(amount);
        }
        const rest = refundOf(debit, credits, left.toFixed(2), 'last');
        const all = [debit, ...credits, rest];
        expect(sum(all.map((c) => c.totalInclVat)).eq(0)).toBe(true);
        expect(sum(all.map((c) => c.totalExclVat)).eq(0)).toBe(true);
        for (const b of remainingOf(debit, [...credits, rest])) {
          expect(b.net.eq(0)).toBe(true);
          expect(b.vat.eq(0)).toBe(true);
        }
      }),
    );
  });

  it('R4.4 a Parking Refund line spread over several rates is folded into the rates', () => {
    const debit = recordOf(case5(), {
      totalExclVat: '10.25',
      totalVat: '1.35',
      totalInclVat: '11.60',
      lines: [
        ...recordOf(case5()).lines,
        {
          dimension: 'Parking Refund',
          quantity: '1',
          unit: '15min',
          unitPrice: '1.00',
          vatRate: null,
          net: '-1.00',
          vat: '-0.15',
        },
      ],
    });
    const buckets = bucketsOf(debit);
    expect(sum(buckets.map((b) => b.net)).toFixed(2)).toBe('10.25');
    expect(sum(buckets.map((b) => b.vat)).toFixed(2)).toBe('1.35');
  });
});

describe('statements (B1, B2, B4)', () => {
  const debit = recordOf(case5());
  const other = recordOf(case5(), {
    cdrId: 'S6-1',
    sessionId: 'S6',
    startedAt: '2025-03-10T12:00:00.000Z',
  });
  const refund = refundOf(debit, [], '2.55', 'R1');
  const cancel = cancellationOf(other, 'test session', Date.UTC(2025, 2, 11), 'admin@o');
  const cdrs = [debit, other, refund, cancel];

  it('B1 one row per session with its cost after refund; Total Charging Fees deducts refunds', () => {
    const s = buildStatement('driver', 'c', 'from', 'to', cdrs);
    expect(s.rows.map((r) => [r.sessionId, r.chargingFees, r.refunds, r.cost, r.status])).toEqual([
      ['S5', '12.75', '-2.55', '10.20', 'refunded'],
      ['S6', '12.75', '-12.75', '0.00', 'cancelled'],
    ]);
    expect(s.totals).toEqual([
      expect.objectContaining({ currency: 'EUR', totalChargingFees: '10.20', sessions: 1 }),
    ]);
    const csv = statementCsv(s);
    expect(csv).toContain('Total Charging Fees,10.20,EUR');
    expect(csv.split('\r\n')[1]).toBe(
      'S5,CP1,s,2025-03-10T08:00:00.000Z,2025-03-10T11:12:00.000Z,40000.000,12.75,-2.55,10.20,EUR,refunded',
    );
  });

  it('B2 Charging Cost per row and Total Pre-Tax Amount deduct refunds; B4 totals equal the CDR sums', () => {
    const s = buildStatement('account', 'o', 'from', 'to', cdrs);
    expect(
      s.rows.map((r) => [r.chargingCostBeforeRefunds, r.refundsExclVat, r.chargingCost]),
    ).toEqual([
      ['11.25', refund.totalExclVat, new Big('11.25').plus(refund.totalExclVat).toFixed(2)],
      ['11.25', '-11.25', '0.00'],
    ]);
    const [totals] = s.totals;
    expect(totals?.totalPreTaxAmount).toBe(sum(cdrs.map((c) => c.totalExclVat)).toFixed(2));
    expect(totals?.totalVat).toBe(sum(cdrs.map((c) => c.totalVat)).toFixed(2));
    expect(totals?.total).toBe(sum(cdrs.map((c) => c.totalInclVat)).toFixed(2));
    expect(statementCsv(s)).toContain('Total Pre-Tax Amount,');
    // B4: the same CDRs in another order give the same statement.
    expect(buildStatement('account', 'o', 'from', 'to', [...cdrs].reverse())).toEqual(s);
  });
});

describe('invoices (B3)', () => {
  const debit = recordOf(case5());

  it('B3 a partial refund shows its line and the adjusted total; VAT per rate after it', () => {
    const refund = refundOf(debit, [], '5.10', 'R1');
    const invoice = buildInvoice(session(), [debit, refund]);
    expect(invoice.lines.map((l) => [l.label, l.net])).toEqual([
      ['TIME', '7.50'],
      ['PARKING_TIME', '3.75'],
      ['Refund', '-3.00'],
      ['Refund', '-1.50'],
    ]);
    expect(invoice.vat).toEqual([
      { rate: '10', taxable: '4.50', vat: '0.45' },
      { rate: '20', taxable: '2.25', vat: '0.45' },
    ]);
    expect([invoice.originalTotal, invoice.refunded, invoice.totalInclVat]).toEqual([
      '12.75',
      '-5.10',
      '7.65',
    ]);
    const html = invoiceHtml(invoice);
    expect(html).toContain('7.65 EUR');
    expect(html).toContain('Refund: goodwill');
  });

  it('B3 no invoice when refunds offset the whole cost', () => {
    const refund = refundOf(debit, [], '12.75', 'R1');
    expect(() => buildInvoice(session(), [debit, refund])).toThrow(
      expect.objectContaining({ code: 'INVOICE_NOT_ISSUED' }),
    );
  });

  it('B3 the Parking Refund line of a rate plan is its own invoice line', () => {
    const withRefund = recordOf(case5(), {
      totalExclVat: '10.25',
      totalVat: '1.40',
      totalInclVat: '11.65',
      lines: [
        ...debit.lines,
        {
          dimension: 'Parking Refund',
          quantity: '1',
          unit: '15min',
          unitPrice: '1.00',
          vatRate: '20',
          net: '-1.00',
          vat: '-0.10',
        },
      ],
    });
    const invoice = buildInvoice(session(), [withRefund]);
    expect(invoice.lines.at(-1)).toMatchObject({ label: 'Parking Refund', net: '-1.00' });
    expect(invoiceHtml(invoice)).toContain('Parking Refund');
    expect(invoice.totalInclVat).toBe('11.65');
  });
});
