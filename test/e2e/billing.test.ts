import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ROUTE_ROLES, type RouteId } from '../../src/api/access.js';
import type { Role } from '../../src/config/network.js';
import { Big } from '../../src/lib/decimal.js';
import { eventually, sql, tempDir, useEngine } from '../helpers/engine.js';
import { TestCharger } from '../helpers/ocpp-client.js';

/**
 * Corrections (C1–C3), statements (B1, B2, B4) and invoices (B3) through the real API of the
 * engine started as a process, on chDB; sessions driven over OCPP 1.6. Sessions happen in the
 * current calendar month (C1), a little before now, and one in the month before.
 */
const ROLES: readonly Role[] = ['admin', 'financial_support', 'operator', 'analyst', 'viewer'];
const keyOf = (role: string, org: string) => `key-${role}-${org}-0123456789abcdef`;
const ADMIN = keyOf('admin', 'o');
/** SQL reads the whole store: a key of the top-level CPO organization. */
const SQL_KEY = keyOf('admin', 'grp');
/** A viewer key the network file holds only as its SHA-256. */
const HASHED_KEY = 'hashed-viewer-key-0123456789';

const NOW = Date.now();
const MONTH_START = Date.UTC(new Date(NOW).getUTCFullYear(), new Date(NOW).getUTCMonth(), 1);
/** Sessions of this month start here, one every 3 minutes (clipped to the month's start). */
const BASE = Math.max(MONTH_START + 60_000, NOW - 80 * 60_000);
const LAST_MONTH = MONTH_START - 2 * 86_400_000;

const connectors = [{ id: 1, maxPowerW: 1_000_000 }];
const run = useEngine({
  settings: { defaultTariff: 't' },
  organizations: [
    { id: 'grp', type: 'cpo' },
    { id: 'o', type: 'cpo', parent: 'grp' },
    { id: 'o-sub', type: 'cpo', parent: 'o' },
    { id: 'other', type: 'cpo' },
    { id: 'roam', type: 'emp', parent: 'o', roamingTariff: 't' },
  ],
  sites: [
    { id: 's', operator: 'o' },
    { id: 's2', operator: 'other' },
  ],
  chargers: [
    ...['CP1', 'CP2', 'CP3', 'CP4'].map((id) => ({ id, site: 's', connectors })),
    { id: 'CPX', site: 's2', connectors },
  ],
  tariffs: [
    {
      id: 't',
      currency: 'EUR',
      elements: [
        {
          components: [
            { type: 'FLAT', price: '0.50', vat: '20' },
            { type: 'ENERGY', price: '0.30', vat: '22' },
          ],
        },
      ],
    },
  ],
  ratePlans: [
    { id: 'plan', tariff: 't', chargingTimeRefundPer15Min: '0.20' },
    { id: 'plan-full', tariff: 't', chargingTimeRefundPer15Min: '100.00' },
  ],
  customers: [
    { id: 'c', organization: 'o', paymentType: 'postpaid' },
    { id: 'c-plan', organization: 'o', paymentType: 'postpaid', ratePlan: 'plan' },
    { id: 'c-full', organization: 'o', paymentType: 'postpaid', ratePlan: 'plan-full' },
    { id: 'c-other', organization: 'other', paymentType: 'postpaid' },
    { id: 'c-roam', organization: 'roam', paymentType: 'postpaid' },
  ],
  tokens: [
    { id: 'TAG1', type: 'RFID', customer: 'c' },
    { id: 'TAG2', type: 'RFID', customer: 'c' },
    { id: 'TAG3', type: 'RFID', customer: 'c' },
    { id: 'TAGR', type: 'RFID', customer: 'c-roam' },
    { id: 'TAGP', type: 'RFID', customer: 'c-plan' },
    { id: 'TAGF', type: 'RFID', customer: 'c-full' },
    { id: 'TAGX', type: 'RFID', customer: 'c-other' },
  ],
  apiKeys: [
    ...ROLES.map((role) => ({ key: keyOf(role, 'o'), role, organization: 'o' })),
    { key: keyOf('admin', 'other'), role: 'admin', organization: 'other' },
    // The top-level CPO: its keys may use SQL (the whole store).
    ...ROLES.map((role) => ({ key: keyOf(role, 'grp'), role, organization: 'grp' })),
    // keyHash: the file holds the SHA-256 of the key, not the key.
    {
      keyHash: createHash('sha256').update(HASHED_KEY).digest('hex'),
      role: 'viewer',
      organization: 'o',
    },
    { key: keyOf('financial_support', 'o-sub'), role: 'financial_support', organization: 'o-sub' },
  ],
});

interface Answer {
  status: number;
  body: Record<string, unknown>;
  text: string;
  type: string;
}

async function api(
  method: string,
  path: string,
  key: string | null = ADMIN,
  body?: unknown,
  accept = 'application/json',
): Promise<Answer> {
  const response = await fetch(`${run.engine.apiUrl}${path}`, {
    method,
    headers: {
      ...(key === null ? {} : { Authorization: `Bearer ${key}` }),
      Accept: accept,
      ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await response.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // CSV and HTML bodies
  }
  return {
    status: response.status,
    body: parsed,
    text,
    type: response.headers.get('content-type') ?? '',
  };
}

const code = (a: Answer) => (a.body['error'] as { code?: string } | undefined)?.code;

const chargers = new Map<string, TestCharger>();
async function charger(id: string): Promise<TestCharger> {
  const known = chargers.get(id);
  if (known !== undefined) return known;
  const cp = await TestCharger.connect(`${run.engine.ocppUrl}/${id}`);
  chargers.set(id, cp);
  return cp;
}

let slot = 0;
/** One session of `wh` on a charger, 2 minutes long; returns its id once rated (or rejected). */
async function session(
  chargerId: string,
  idTag: string,
  wh: number,
  options: { startMs?: number; stop?: boolean } = {},
): Promise<string> {
  const start = options.startMs ?? BASE + slot++ * 3 * 60_000;
  const cp = await charger(chargerId);
  const started = await cp.call('StartTransaction', {
    connectorId: 1,
    idTag,
    meterStart: 0,
    timestamp: new Date(start).toISOString(),
  });
  if (!started.ok) throw new Error(started.description);
  const transactionId = started.payload['transactionId'] as number;
  if (options.stop !== false) {
    const stopped = await cp.call('StopTransaction', {
      transactionId,
      meterStop: wh,
      timestamp: new Date(start + 2 * 60_000).toISOString(),
      reason: 'EVDisconnected',
    });
    expect(stopped.ok).toBe(true);
  }
  const wanted = options.stop === false ? ['in_progress'] : ['rated', 'rejected'];
  const [row] = await eventually(
    () =>
      sql<{ session_id: string; status: string }>(
        run.engine,
        SQL_KEY,
        `SELECT session_id, status FROM sessions WHERE charger_id = '${chargerId}' AND transaction_id = '${transactionId}'`,
      ),
    (rows) => rows.length === 1 && wanted.includes(rows[0]!.status),
  );
  return row!.session_id;
}

const cdrSum = async (where: string) =>
  (
    await sql<{ excl: string; vat: string; incl: string }>(
      run.engine,
      SQL_KEY,
      `SELECT toString(sum(total_excl_vat)) AS excl, toString(sum(total_vat)) AS vat, toString(sum(total_incl_vat)) AS incl FROM cdrs WHERE ${where}`,
    )
  )[0]!;

describe('C1/C2 cancellation', () => {
  it('C1 refuses each failed condition with its own error code', async () => {
    const done = await session('CP1', 'TAG1', 10_000);
    const ongoingStart = BASE + slot++ * 3 * 60_000;
    const ongoing = await session('CP2', 'TAG2', 0, { stop: false, startMs: ongoingStart });
    const old = await session('CP3', 'TAG3', 5_000, { startMs: LAST_MONTH });
    const roaming = await session('CP4', 'TAGR', 4_000);
    const rejected = await session('CP4', 'UNKNOWN-TAG', 0);
    const refunded = await session('CP3', 'TAG3', 6_000);
    expect(
      (
        await api('POST', `/api/v1/sessions/${refunded}/refund`, ADMIN, {
          amount: '1.00',
          reason: 'goodwill',
          requestId: 'c1-refund',
        })
      ).status,
    ).toBe(201);
    const cancel = (id: string, key = ADMIN, body: unknown = { reason: 'duplicate session' }) =>
      api('POST', `/api/v1/sessions/${encodeURIComponent(id)}/cancel`, key, body);
    const cases: Array<[string, Promise<Answer>, number, string]> = [
      ['role may not', cancel(done, keyOf('operator', 'o')), 403, 'FORBIDDEN'],
      ['viewer may not', cancel(done, keyOf('viewer', 'o')), 403, 'FORBIDDEN'],
      ['session not found', cancel('NO-SUCH-SESSION'), 404, 'SESSION_NOT_FOUND'],
      ['ongoing', cancel(ongoing), 409, 'SESSION_ONGOING'],
      ['not this month', cancel(old), 409, 'SESSION_NOT_CURRENT_MONTH'],
      ['refunded before', cancel(refunded), 409, 'SESSION_ALREADY_UPDATED'],
      [
        'organization not related',
        cancel(done, keyOf('admin', 'other')),
        403,
        'ORGANIZATION_NOT_RELATED',
      ],
      ['roaming', cancel(roaming), 409, 'ROAMING_SESSION'],
      ['reason missing', cancel(done, ADMIN, {}), 400, 'REASON_REQUIRED'],
      ['reason blank', cancel(done, ADMIN, { reason: '  ' }), 400, 'REASON_REQUIRED'],
      ['never billed', cancel(rejected), 409, 'SESSION_NOT_BILLED'],
    ];
    for (const [what, answer, status, expected] of cases) {
      const a = await answer;
      expect([what, a.status, code(a)]).toEqual([what, status, expected]);
    }
    // Nothing above wrote a credit.
    expect((await cdrSum(`session_id = '${done}'`)).incl).toBe('4.26');

    const ok = await cancel(done, keyOf('financial_support', 'o'), { reason: 'meter fault' });
    expect(ok.status).toBe(201);
    expect(ok.body['cdr']).toMatchObject({
      kind: 'credit',
      correction: 'cancellation',
      creditReferenceId: `${done}-1`,
      description: 'meter fault',
      energyWh: '-10000',
      totalExclVat: '-3.50',
      totalVat: '-0.76',
      totalInclVat: '-4.26',
    });
    const again = await cancel(done);
    expect([again.status, code(again)]).toEqual([409, 'SESSION_ALREADY_CANCELLED']);
    // C2: the original untouched, sums over both zero.
    const cdrs = await sql<{ k: string; energy: string; incl: string }>(
      run.engine,
      SQL_KEY,
      `SELECT toString(kind) AS k, toString(energy_wh) AS energy, toString(total_incl_vat) AS incl FROM cdrs WHERE session_id = '${done}' ORDER BY kind`,
    );
    expect(cdrs).toEqual([
      { k: 'debit', energy: '10000', incl: '4.26' },
      { k: 'credit', energy: '-10000', incl: '-4.26' },
    ]);
    expect(await cdrSum(`session_id = '${done}'`)).toEqual({ excl: '0', vat: '0', incl: '0' });
    // Other roles read the cancellation status.
    const seen = await api('GET', `/api/v1/sessions/${done}`, keyOf('viewer', 'o'));
    expect(seen.status).toBe(200);
    expect(seen.body).toMatchObject({
      status: 'cancelled',
      cancelled: true,
      cancellation: { reason: 'meter fault', requestedBy: 'financial_support@o' },
      remaining: '0.00',
    });
    // The processor goes on with the charger and never writes the cancelled session again.
    await session('CP1', 'TAG1', 1_000);
    expect((await api('GET', `/api/v1/sessions/${done}`)).body['status']).toBe('cancelled');
    await chargers.get('CP2')?.call('StopTransaction', {
      transactionId: Number(
        (await api('GET', `/api/v1/sessions/${ongoing}`)).body['transactionId'],
      ),
      meterStop: 100,
      timestamp: new Date(ongoingStart + 60_000).toISOString(),
      reason: 'Local',
    });
  });

  it("C1 a parent organization may cancel a sub-organization's session; the sub-organization may cancel its parent's", async () => {
    const a = await session('CP1', 'TAG1', 2_000);
    const b = await session('CP1', 'TAG1', 2_000);
    // o-sub cannot read o's session (not its own or below) …
    expect(
      code(await api('GET', `/api/v1/sessions/${a}`, keyOf('financial_support', 'o-sub'))),
    ).toBe('ORGANIZATION_NOT_RELATED');
    // … but C1 lets a sub-organization cancel its parent's, and the parent its child's.
    const bySub = await api(
      'POST',
      `/api/v1/sessions/${a}/cancel`,
      keyOf('financial_support', 'o-sub'),
      {
        reason: 'sub',
      },
    );
    expect(bySub.status).toBe(201);
    const byParent = await api('POST', `/api/v1/sessions/${b}/cancel`, keyOf('admin', 'grp'), {
      reason: 'parent',
    });
    expect(byParent.status).toBe(201);
  });
});

describe('C3 refunds', () => {
  it('C3 idempotent by requestId, capped at what remains charged, exact VAT split', async () => {
    const id = await session('CP2', 'TAG2', 20_000); // 0.50 @20 % + 6.00 @22 %: 0.60 + 7.32 = 7.92
    const refund = (amount: string, requestId: string) =>
      api('POST', `/api/v1/sessions/${id}/refund`, keyOf('financial_support', 'o'), {
        amount,
        reason: 'charger fault',
        requestId,
      });
    const concurrent = await Promise.all([1, 2, 3, 4, 5].map(() => refund('2.00', 'req-1')));
    for (const a of concurrent) expect([a.status, a.text]).toEqual([201, concurrent[0]!.text]);
    expect(new Set(concurrent.map((a) => a.text)).size).toBe(1);
    const first = concurrent[0]!.body['cdr'] as Record<string, unknown>;
    expect(first).toMatchObject({ kind: 'credit', correction: 'refund', totalInclVat: '-2.00' });
    expect(
      new Big(first['totalExclVat'] as string).plus(first['totalVat'] as string).toFixed(2),
    ).toBe('-2.00');
    const repeated = await refund('2.00', 'req-1');
    expect(repeated.text).toBe(concurrent[0]!.text);
    expect(code(await refund('3.00', 'req-1'))).toBe('REQUEST_ID_CONFLICT');
    expect(code(await refund('5.93', 'req-2'))).toBe('REFUND_EXCEEDS_CHARGED');
    expect(code(await refund('-1', 'req-3'))).toBe('INVALID_AMOUNT');
    expect(code(await refund('1.001', 'req-3'))).toBe('INVALID_AMOUNT');
    expect(
      code(
        await api('POST', `/api/v1/sessions/${id}/refund`, ADMIN, { amount: '1.00', reason: 'x' }),
      ),
    ).toBe('REQUEST_ID_REQUIRED');
    expect(code(await refund('1.00', ''))).toBe('REQUEST_ID_REQUIRED');
    expect(
      code(await api('POST', `/api/v1/sessions/${id}/refund`, keyOf('operator', 'o'), {})),
    ).toBe('FORBIDDEN');
    const credits = await sql<{ n: string }>(
      run.engine,
      SQL_KEY,
      `SELECT toString(count()) AS n FROM cdrs WHERE session_id = '${id}' AND kind = 'credit'`,
    );
    expect(credits).toEqual([{ n: '1' }]);
    // B3: a partial refund shows the adjusted total.
    const invoice = await api('GET', `/api/v1/sessions/${id}/invoice`, keyOf('analyst', 'o'));
    expect(invoice.status).toBe(200);
    expect(invoice.body).toMatchObject({
      originalTotal: '7.92',
      refunded: '-2.00',
      totalInclVat: '5.92',
    });
    const invoiceBody = invoice.body as { lines: Array<{ label: string }>; vat: unknown[] };
    expect(invoiceBody.lines.map((l) => l.label)).toEqual(['FLAT', 'ENERGY', 'Refund', 'Refund']);
    expect(invoiceBody.vat).toHaveLength(2);
    // The rest: exactly what remains; then no invoice (B3).
    expect((await refund('5.92', 'req-4')).status).toBe(201);
    expect(await cdrSum(`session_id = '${id}'`)).toEqual({ excl: '0', vat: '0', incl: '0' });
    expect(code(await refund('0.01', 'req-5'))).toBe('REFUND_EXCEEDS_CHARGED');
    const none = await api('GET', `/api/v1/sessions/${id}/invoice`);
    expect([none.status, code(none)]).toEqual([409, 'INVOICE_NOT_ISSUED']);
  });
});

describe('B3 the charging-time refund of a rate plan (R6)', () => {
  it('B3 a partial Parking Refund is its own invoice line and lowers the total; a full one means no invoice', async () => {
    const partial = await session('CP3', 'TAGP', 10_000);
    const full = await session('CP4', 'TAGF', 10_000);
    const invoice = await api('GET', `/api/v1/sessions/${partial}/invoice`);
    expect(invoice.status).toBe(200);
    const lines = invoice.body['lines'] as Array<{ label: string; net: string; vat: string }>;
    const refundLine = lines.find((l) => l.label === 'Parking Refund');
    expect(refundLine?.net).toBe('-0.20');
    // 4.26 before the refund: 0.50 + 3.00 net, 0.10 + 0.66 VAT; the refund lowers the taxable amount.
    expect(new Big(invoice.body['totalInclVat'] as string).lt('4.26')).toBe(true);
    expect(invoice.body['totalExclVat']).toBe('3.30');
    const html = await api(
      'GET',
      `/api/v1/sessions/${partial}/invoice`,
      ADMIN,
      undefined,
      'text/html',
    );
    expect(html.text).toContain('Parking Refund');
    const none = await api('GET', `/api/v1/sessions/${full}/invoice`);
    expect([none.status, code(none)]).toEqual([409, 'INVOICE_NOT_ISSUED']);
    const from = new Date(MONTH_START).toISOString();
    const to = new Date(NOW + 86_400_000).toISOString();
    const statement = await api('GET', `/api/v1/statements/driver/c-plan?from=${from}&to=${to}`);
    const [row] = statement.body['rows'] as Array<Record<string, string>>;
    expect(row).toMatchObject({ sessionId: partial, chargingFees: '4.26', status: 'refunded' });
    expect(new Big(row!['chargingFees']!).plus(row!['refunds']!).toFixed(2)).toBe(row!['cost']);
    const fullStatement = await api(
      'GET',
      `/api/v1/statements/driver/c-full?from=${from}&to=${to}`,
    );
    expect(fullStatement.body['rows']).toEqual([
      expect.objectContaining({
        sessionId: full,
        chargingFees: '4.26',
        refunds: '-4.26',
        cost: '0.00',
      }),
    ]);
  });
});

describe('B1/B2/B4 statements', () => {
  it('B4 statements reconcile with the CDRs to the cent over a period with cancellations and refunds, and repeat', async () => {
    const partial = await session('CP4', 'TAG1', 7_777);
    expect(
      (
        await api('POST', `/api/v1/sessions/${partial}/refund`, ADMIN, {
          amount: '0.99',
          reason: 'slow charging',
          requestId: 'b4-1',
        })
      ).status,
    ).toBe(201);
    const from = new Date(LAST_MONTH - 86_400_000).toISOString();
    const to = new Date(NOW + 86_400_000).toISOString();
    const period = `created_at >= '${from.replace('T', ' ').replace('Z', '')}' AND created_at < '${to.replace('T', ' ').replace('Z', '')}'`;

    const driver = await api(
      'GET',
      `/api/v1/statements/driver/c?from=${from}&to=${to}`,
      keyOf('analyst', 'o'),
    );
    expect(driver.status).toBe(200);
    const expected = await cdrSum(`customer_id = 'c' AND ${period}`);
    const [totals] = driver.body['totals'] as Array<Record<string, string>>;
    expect(new Big(totals!['totalChargingFees']!).eq(expected.incl)).toBe(true);
    expect(new Big(totals!['totalPreTaxAmount']!).eq(expected.excl)).toBe(true);
    const rows = driver.body['rows'] as Array<Record<string, string>>;
    expect(rows.find((r) => r['sessionId'] === partial)).toMatchObject({
      refunds: '-0.99',
      status: 'refunded',
    });
    expect(rows.filter((r) => r['status'] === 'cancelled').every((r) => r['cost'] === '0.00')).toBe(
      true,
    );
    expect(rows.filter((r) => r['status'] === 'cancelled').length).toBeGreaterThanOrEqual(3);
    // Rows add up to the total.
    expect(rows.reduce((s, r) => s.plus(r['cost']!), new Big(0)).eq(expected.incl)).toBe(true);
    // B4: the same query gives the same figures.
    expect((await api('GET', `/api/v1/statements/driver/c?from=${from}&to=${to}`)).text).toBe(
      (await api('GET', `/api/v1/statements/driver/c?from=${from}&to=${to}`)).text,
    );
    const csv = await api(
      'GET',
      `/api/v1/statements/driver/c?from=${from}&to=${to}`,
      ADMIN,
      undefined,
      'text/csv',
    );
    expect(csv.type).toContain('text/csv');
    expect(csv.text).toContain(`Total Charging Fees,${totals!['totalChargingFees']},EUR`);
    expect(csv.text.split('\r\n')[0]).toBe(
      'Session,Charger,Site,Started,Ended,Energy (Wh),Charging Fees,Refunds,Cost,Currency,Status',
    );

    const account = await api('GET', `/api/v1/statements/account/o?from=${from}&to=${to}`);
    expect(account.status).toBe(200);
    const own = await cdrSum(`operator_id = 'o' AND ${period}`);
    const [accountTotals] = account.body['totals'] as Array<Record<string, string>>;
    expect(new Big(accountTotals!['totalPreTaxAmount']!).eq(own.excl)).toBe(true);
    expect(new Big(accountTotals!['total']!).eq(own.incl)).toBe(true);
    const accountCsv = await api(
      'GET',
      `/api/v1/statements/account/o?from=${from}&to=${to}&format=csv`,
    );
    expect(accountCsv.text).toContain(
      `Total Pre-Tax Amount,${accountTotals!['totalPreTaxAmount']},EUR`,
    );

    // The reporting aggregates: a cancellation takes its session away, a refund does not.
    const sessionsOf = (statement: string) =>
      sql<{ n: string }>(run.engine, SQL_KEY, statement).then((rows) => rows[0]?.n);
    expect(
      await sessionsOf(
        "SELECT toString(sum(sessions)) AS n FROM energy_revenue_daily WHERE operator_id = 'o'",
      ),
    ).toBe(
      await sessionsOf(
        "SELECT toString(countIf(kind = 'debit') - countIf(correction = 'cancellation')) AS n FROM cdrs WHERE operator_id = 'o'",
      ),
    );
    expect(code(await api('GET', `/api/v1/statements/account/other?from=${from}&to=${to}`))).toBe(
      'ORGANIZATION_NOT_RELATED',
    );
    expect(code(await api('GET', `/api/v1/statements/driver/c-other?from=${from}&to=${to}`))).toBe(
      'ORGANIZATION_NOT_RELATED',
    );
    expect(code(await api('GET', `/api/v1/statements/driver/nobody?from=${from}&to=${to}`))).toBe(
      'CUSTOMER_NOT_FOUND',
    );
    expect(code(await api('GET', `/api/v1/statements/driver/c?from=${to}&to=${from}`))).toBe(
      'INVALID_PERIOD',
    );
    expect(code(await api('GET', '/api/v1/statements/driver/c'))).toBe('INVALID_PERIOD');
  });
});

describe('sessions and CDRs', () => {
  it("lists sessions in the key's organizations with filters and a cursor", async () => {
    const foreign = await session('CPX', 'TAGX', 3_000);
    const all: string[] = [];
    let cursor: string | null = null;
    do {
      const page: Answer = await api(
        'GET',
        `/api/v1/sessions?limit=2${cursor === null ? '' : `&cursor=${cursor}`}`,
        keyOf('viewer', 'o'),
      );
      expect(page.status).toBe(200);
      const sessions = page.body['sessions'] as Array<{ sessionId: string }>;
      expect(sessions.length).toBeLessThanOrEqual(2);
      all.push(...sessions.map((s) => s.sessionId));
      cursor = page.body['nextCursor'] as string | null;
    } while (cursor !== null);
    expect(new Set(all).size).toBe(all.length);
    expect(all).not.toContain(foreign);
    const [count] = await sql<{ n: string }>(
      run.engine,
      SQL_KEY,
      "SELECT toString(count()) AS n FROM sessions WHERE operator_id IN ('o', 'o-sub', 'roam') OR customer_id IN ('c', 'c-roam')",
    );
    expect(all.length).toBe(Number(count!.n));
    const cancelled = await api('GET', '/api/v1/sessions?status=cancelled&charger=CP1');
    expect((cancelled.body['sessions'] as unknown[]).length).toBeGreaterThanOrEqual(3);
    const flagged = await api('GET', '/api/v1/sessions?flag=no_customer');
    for (const s of flagged.body['sessions'] as Array<{ flags: string[] }>)
      expect(s.flags).toContain('no_customer');
    expect(code(await api('GET', '/api/v1/sessions?cursor=nonsense'))).toBe('BAD_REQUEST');
    // The other operator's key sees its own session only.
    const theirs = await api('GET', '/api/v1/sessions', keyOf('admin', 'other'));
    expect(
      (theirs.body['sessions'] as Array<{ sessionId: string }>).map((s) => s.sessionId),
    ).toEqual([foreign]);
    // CDRs of a session.
    const cdrs = await api('GET', `/api/v1/cdrs?session=${foreign}`, keyOf('admin', 'other'));
    expect((cdrs.body['cdrs'] as Array<{ kind: string }>).map((c) => c.kind)).toEqual(['debit']);
    expect(code(await api('GET', `/api/v1/cdrs?session=${foreign}`))).toBe(
      'ORGANIZATION_NOT_RELATED',
    );
  });
});

describe('B3 invoice page in headless Chromium', () => {
  it('B3 the printable invoice renders to a PNG with its totals on the page', async () => {
    const id = await session('CP2', 'TAG2', 12_345);
    expect(
      (
        await api('POST', `/api/v1/sessions/${id}/refund`, ADMIN, {
          amount: '1.25',
          reason: 'late start',
          requestId: 'html-1',
        })
      ).status,
    ).toBe(201);
    const json = await api('GET', `/api/v1/sessions/${id}/invoice`);
    const html = await api('GET', `/api/v1/sessions/${id}/invoice`, ADMIN, undefined, 'text/html');
    expect(html.type).toContain('text/html');
    const dir = tempDir('chargestream-invoice-');
    const file = join(dir, 'invoice.html');
    const png = join(dir, 'invoice.png');
    writeFileSync(file, html.text);
    const chromium = process.env['CHROMIUM_BIN'] ?? 'chromium';
    const flags = ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars'];
    const exec = promisify(execFile);
    await exec(
      chromium,
      [...flags, `--screenshot=${png}`, '--window-size=900,1200', `file://${file}`],
      {
        timeout: 60_000,
      },
    );
    const image = readFileSync(png);
    expect(image.subarray(1, 4).toString()).toBe('PNG');
    expect(statSync(png).size).toBeGreaterThan(5_000);
    const { stdout } = await exec(chromium, [...flags, '--dump-dom', `file://${file}`], {
      timeout: 60_000,
      maxBuffer: 10 * 1024 * 1024,
    });
    const total = json.body['totalInclVat'] as string;
    expect(json.body['refunded']).toBe('-1.25');
    expect(stdout).toContain(`id="total">${total} EUR`);
    expect(stdout).toContain(`${json.body['originalTotal'] as string} EUR`);
    expect(stdout).toContain('Refund: late start');
  });
});

/** Every route × every role of organization `o` (and no key, a bad key): 401, 403 or through. */
describe('routes × roles', () => {
  const routes: Array<[RouteId, string, string, unknown?]> = [
    ['sql', 'POST', '/api/v1/sql', 'SELECT 1'],
    ['charger.command', 'POST', '/api/v1/chargers/NOPE/commands/Reset', { type: 'Soft' }],
    ['session.retry', 'POST', '/api/v1/sessions/NOPE/retry'],
    ['session.list', 'GET', '/api/v1/sessions'],
    ['session.read', 'GET', '/api/v1/sessions/NOPE'],
    ['cdr.list', 'GET', '/api/v1/cdrs?session=NOPE'],
    ['session.cancel', 'POST', '/api/v1/sessions/NOPE/cancel', { reason: 'x' }],
    [
      'session.refund',
      'POST',
      '/api/v1/sessions/NOPE/refund',
      { amount: '1', reason: 'x', requestId: 'r' },
    ],
    ['statement.driver', 'GET', '/api/v1/statements/driver/c?from=2020-01-01&to=2020-02-01'],
    ['statement.account', 'GET', '/api/v1/statements/account/o?from=2020-01-01&to=2020-02-01'],
    ['session.invoice', 'GET', '/api/v1/sessions/NOPE/invoice'],
    ['config.read', 'GET', '/api/v1/chargers/NOPE'],
    // Customers: the kind every config.write role may write; an invalid one changes nothing.
    ['config.write', 'PUT', '/api/v1/customers/NOPE', { organization: 'o' }],
  ];

  it('every route of the table is in the test', () => {
    expect(new Set(routes.map(([r]) => r))).toEqual(new Set(Object.keys(ROUTE_ROLES)));
  });

  it.each(routes)(
    '%s: 401 without or with a bad key, 403 for the roles the table leaves out',
    async (route, method, path, body) => {
      const send = (key: string | null) =>
        api(method, path, key, typeof body === 'string' ? body : body);
      for (const key of [null, 'not-a-key-0123456789']) {
        const a = await send(key);
        expect([a.status, code(a)]).toEqual([401, 'UNAUTHORIZED']);
      }
      // SQL reads every organization's rows: the top-level CPO's keys; the others' are refused.
      const organization = route === 'sql' ? 'grp' : 'o';
      for (const role of ROLES) {
        const a = await send(keyOf(role, organization));
        const allowed = (ROUTE_ROLES[route] as readonly Role[]).includes(role);
        if (allowed) expect([role, a.status]).not.toEqual([role, 403]);
        else expect([role, a.status, code(a)]).toEqual([role, 403, 'FORBIDDEN']);
        expect(a.status).not.toBe(401);
        expect(a.status).not.toBe(500);
      }
    },
  );

  it('sql: a key of an organization below the top-level CPO is refused (the store holds every organization)', async () => {
    const a = await api('POST', '/api/v1/sql', ADMIN, 'SELECT 1');
    expect([a.status, code(a)]).toEqual([403, 'ORGANIZATION_NOT_RELATED']);
  });

  it("organizations: a key sees its own and its sub-organizations' sessions, not its parent's or a stranger's", async () => {
    const id = await session('CP3', 'TAG3', 1_500);
    const read = (key: string) => api('GET', `/api/v1/sessions/${id}`, key);
    expect((await read(keyOf('viewer', 'o'))).status).toBe(200);
    expect((await read(HASHED_KEY)).status).toBe(200);
    expect((await read(keyOf('admin', 'grp'))).status).toBe(200);
    expect(code(await read(keyOf('admin', 'other')))).toBe('ORGANIZATION_NOT_RELATED');
    expect(code(await read(keyOf('financial_support', 'o-sub')))).toBe('ORGANIZATION_NOT_RELATED');
    for (const path of [`/api/v1/sessions/${id}/invoice`, `/api/v1/cdrs?session=${id}`]) {
      const a = await api('GET', path, keyOf('admin', 'other'));
      expect([a.status, code(a)]).toEqual([403, 'ORGANIZATION_NOT_RELATED']);
    }
    const refund = await api('POST', `/api/v1/sessions/${id}/refund`, keyOf('admin', 'other'), {
      amount: '0.10',
      reason: 'x',
      requestId: 'stranger',
    });
    expect([refund.status, code(refund)]).toEqual([403, 'ORGANIZATION_NOT_RELATED']);
  });
});
