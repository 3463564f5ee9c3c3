import { Big } from '../lib/decimal.js';
import { ChargestreamError } from '../lib/errors.js';
import { addBuckets, bucketsOf, money, sum } from './money.js';
import type { CdrRecord, SessionRecord } from './records.js';

export interface InvoiceLine {
  /** ENERGY, TIME, PARKING_TIME, FLAT, RESERVATION, Parking Refund, Refund, Cancellation. */
  readonly label: string;
  readonly quantity: string;
  readonly unit: string;
  readonly unitPrice: string | null;
  readonly vatRate: string | null;
  readonly net: string;
  readonly vat: string;
  /** The CDR the line comes from. */
  readonly cdrId: string;
  /** The reason of a correction line. */
  readonly description: string;
}

export interface Invoice {
  readonly invoiceNumber: string;
  /** The newest CDR's creation time: the same invoice for the same CDRs. */
  readonly issuedAt: string;
  readonly sessionId: string;
  readonly customerId: string;
  readonly chargerId: string;
  readonly siteId: string;
  readonly startedAt: string;
  readonly endedAt: string;
  readonly energyWh: string;
  readonly currency: string;
  readonly lines: readonly InvoiceLine[];
  /** Per VAT rate, after refunds (R4.2: VAT on the sum of the rounded nets). */
  readonly vat: ReadonlyArray<{ rate: string | null; taxable: string; vat: string }>;
  /** The debit CDR's total incl. VAT, before any refund through the API. */
  readonly originalTotal: string;
  /** Refund credit CDRs, incl. VAT (≤ 0). */
  readonly refunded: string;
  readonly totalExclVat: string;
  readonly totalVat: string;
  readonly totalInclVat: string;
}

/**
 * B3: the invoice (receipt) of a session — the debit CDR's lines, its Parking Refund line,
 * one line per VAT rate of each refund, the VAT per rate and the adjusted total. None when
 * refunds or a cancellation leave nothing to pay (total 0): INVOICE_NOT_ISSUED.
 */
export function buildInvoice(session: SessionRecord, cdrs: readonly CdrRecord[]): Invoice {
  const debit = cdrs.find((c) => c.kind === 'debit');
  if (debit === undefined)
    throw new ChargestreamError(
      'SESSION_NOT_BILLED',
      `session ${session.sessionId} is ${session.status} and has no CDR to invoice`,
    );
  const credits = cdrs.filter((c) => c.kind === 'credit');
  const currency = debit.currency;
  const total = sum(cdrs.map((c) => c.totalInclVat));
  if (total.eq(0))
    throw new ChargestreamError(
      'INVOICE_NOT_ISSUED',
      credits.length === 0 && !debit.lines.some((l) => l.dimension === 'Parking Refund')
        ? `session ${session.sessionId} cost nothing: no invoice is issued`
        : `session ${session.sessionId}: refunds or the cancellation offset its whole cost, no invoice is issued`,
    );
  const lines: InvoiceLine[] = [];
  for (const cdr of [debit, ...credits]) {
    for (const l of cdr.lines) {
      lines.push({
        label:
          cdr.kind === 'debit'
            ? l.dimension
            : cdr.correction === 'refund'
              ? 'Refund'
              : 'Cancellation',
        quantity: l.quantity,
        unit: l.unit,
        unitPrice: cdr.kind === 'debit' ? l.unitPrice : null,
        vatRate: l.vatRate,
        net: money(l.net, currency),
        vat: money(l.vat, currency),
        cdrId: cdr.cdrId,
        description: cdr.description,
      });
    }
  }
  const buckets = addBuckets(cdrs.map(bucketsOf));
  return {
    invoiceNumber: `INV-${session.sessionId}`,
    issuedAt: cdrs
      .map((c) => c.createdAt)
      .sort()
      .at(-1)!,
    sessionId: session.sessionId,
    customerId: debit.customerId,
    chargerId: debit.chargerId,
    siteId: debit.siteId,
    startedAt: debit.startedAt,
    endedAt: debit.endedAt,
    energyWh: new Big(debit.energyWh).toFixed(3),
    currency,
    lines,
    vat: buckets
      .filter((b) => !b.net.eq(0) || !b.vat.eq(0))
      .map((b) => ({ rate: b.rate, taxable: money(b.net, currency), vat: money(b.vat, currency) })),
    originalTotal: money(debit.totalInclVat, currency),
    refunded: money(sum(credits.map((c) => c.totalInclVat)), currency),
    totalExclVat: money(sum(cdrs.map((c) => c.totalExclVat)), currency),
    totalVat: money(sum(cdrs.map((c) => c.totalVat)), currency),
    totalInclVat: money(total, currency),
  };
}

function escape(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

const LABELS: Readonly<Record<string, string>> = {
  ENERGY: 'Energy',
  TIME: 'Charging time',
  PARKING_TIME: 'Parking time',
  FLAT: 'Session fee',
  RESERVATION: 'Reservation',
};

function quantityText(line: InvoiceLine): string {
  const q = new Big(line.quantity);
  switch (line.unit) {
    case 'Wh':
      return `${q.div(1000).toFixed(3)} kWh`;
    case 's':
      return `${q.div(60).round(2).toString()} min`;
    case '15min':
      return `${q.toString()} × 15 min`;
    default:
      return q.toString();
  }
}

/** B3's printable page: one self-contained HTML document (no scripts, no external files). */
export function invoiceHtml(invoice: Invoice): string {
  const c = escape(invoice.currency);
  const rate = (r: string | null) => (r === null ? '—' : `${escape(new Big(r).toString())} %`);
  const rows = invoice.lines
    .map((l) => {
      const label =
        l.label === 'Refund' || l.label === 'Cancellation'
          ? `${l.label}: ${escape(l.description)}`
          : escape(LABELS[l.label] ?? l.label);
      return `<tr><td>${label}</td><td class="n">${escape(quantityText(l))}</td><td class="n">${rate(l.vatRate)}</td><td class="n">${escape(l.net)}</td><td class="n">${escape(l.vat)}</td></tr>`;
    })
    .join('\n');
  const vatRows = invoice.vat
    .map(
      (v) =>
        `<tr><td>VAT ${rate(v.rate)}</td><td class="n">on ${escape(v.taxable)} ${c}</td><td class="n">${escape(v.vat)} ${c}</td></tr>`,
    )
    .join('\n');
  const adjusted = new Big(invoice.refunded).eq(0)
    ? ''
    : `<tr><td>Original total</td><td></td><td class="n" id="original-total">${escape(invoice.originalTotal)} ${c}</td></tr>
<tr><td>Refunded</td><td></td><td class="n" id="refunded">${escape(invoice.refunded)} ${c}</td></tr>`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Invoice ${escape(invoice.invoiceNumber)}</title>
<style>
  body { font-family: sans-serif; margin: 2em; color: #111; }
  h1 { font-size: 1.4em; margin-bottom: 0.2em; }
  table { border-collapse: collapse; width: 100%; margin-top: 1em; }
  th, td { border-bottom: 1px solid #ccc; padding: 0.35em 0.6em; text-align: left; }
  td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
  .total td { font-weight: bold; border-top: 2px solid #111; }
  dl { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
  dt { color: #555; }
  @media print { body { margin: 0; } }
</style>
</head>
<body>
<h1>Invoice ${escape(invoice.invoiceNumber)}</h1>
<dl>
  <dt>Issued</dt><dd>${escape(invoice.issuedAt)}</dd>
  <dt>Session</dt><dd>${escape(invoice.sessionId)}</dd>
  <dt>Customer</dt><dd>${escape(invoice.customerId)}</dd>
  <dt>Charger</dt><dd>${escape(invoice.chargerId)} (site ${escape(invoice.siteId)})</dd>
  <dt>Period</dt><dd>${escape(invoice.startedAt)} – ${escape(invoice.endedAt)}</dd>
  <dt>Energy</dt><dd>${escape(new Big(invoice.energyWh).div(1000).toFixed(3))} kWh</dd>
</dl>
<table>
<thead><tr><th>Item</th><th class="n">Quantity</th><th class="n">VAT rate</th><th class="n">Net (${c})</th><th class="n">VAT (${c})</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>
<table>
<tbody>
${vatRows}
<tr><td>Total excl. VAT</td><td></td><td class="n" id="total-excl-vat">${escape(invoice.totalExclVat)} ${c}</td></tr>
<tr><td>Total VAT</td><td></td><td class="n" id="total-vat">${escape(invoice.totalVat)} ${c}</td></tr>
${adjusted}
<tr class="total"><td>Total</td><td></td><td class="n" id="total">${escape(invoice.totalInclVat)} ${c}</td></tr>
</tbody>
</table>
</body>
</html>
`;
}
