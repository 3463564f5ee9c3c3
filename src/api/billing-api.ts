import { chTime as chTimeText } from '../lib/time.js';
import type { Network } from '../config/network.js';
import { Big } from '../lib/decimal.js';
import { ChargestreamError } from '../lib/errors.js';
import { sqlString, type Store } from '../store/store.js';
import {
  cancelSession,
  parseBody,
  refundSession,
  type CorrectionContext,
} from '../billing/corrections.js';
import { buildInvoice, invoiceHtml } from '../billing/invoice.js';
import { money, sum } from '../billing/money.js';
import {
  cdrsOfSession,
  readCdrs,
  readSession,
  readSessions,
  type SessionRecord,
} from '../billing/records.js';
import { buildStatement, statementCsv } from '../billing/statements.js';
import { Scope } from './access.js';
import type { Caller } from './auth.js';

/** What a handler answers: status line, content type, body. */
export interface Reply {
  readonly status?: string;
  readonly type: string;
  readonly body: string;
}

/** What a route handler needs of its request, copied out of uWS's `req` before any await. */
export interface Request {
  readonly caller: Caller;
  readonly params: readonly string[];
  readonly query: URLSearchParams;
  readonly accept: string;
  readonly body: Buffer;
}

const JSON_TYPE = 'application/json';
const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;

function json(value: unknown, status?: string): Reply {
  return {
    ...(status === undefined ? {} : { status }),
    type: JSON_TYPE,
    body: JSON.stringify(value),
  };
}

function time(value: string | null, field: string): number | null {
  if (value === null || value === '') return null;
  const ms = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(ms))
    throw new ChargestreamError('INVALID_PERIOD', `${field}: not an ISO 8601 time: ${value}`);
  return ms;
}

function period(query: URLSearchParams): { from: number; to: number } {
  const from = time(query.get('from'), 'from');
  const to = time(query.get('to'), 'to');
  if (from === null || to === null)
    throw new ChargestreamError(
      'INVALID_PERIOD',
      'from and to are required (ISO 8601, to exclusive)',
    );
  if (from >= to) throw new ChargestreamError('INVALID_PERIOD', 'from must be before to');
  return { from, to };
}

function chTime(ms: number): string {
  return `toDateTime64(${sqlString(chTimeText(ms))}, 3, 'UTC')`;
}

/** `column IN (…)`; false for no values (never `IN ('')`, which would match empty ids). */
function anyOf(column: string, values: readonly string[]): string {
  return values.length === 0 ? '0' : `${column} IN (${values.map(sqlString).join(', ')})`;
}

/** CDRs or sessions at the chargers of `scope`'s organizations or of their customers. */
function ownedBy(scope: Scope): string {
  return `(${anyOf('operator_id', [...scope.own])} OR ${anyOf('customer_id', scope.ownCustomers())})`;
}

/**
 * The session, CDR, correction, statement and invoice routes (domain C1–C3, B1–B4). Roles
 * are checked by the server before a handler runs (access.ts); organizations here, per
 * resource, with the network in force at the request.
 */
export class BillingApi {
  readonly #store: Store | null;
  readonly #network: () => Network;
  readonly #now: () => number;

  constructor(store: Store | null, network: () => Network, now: () => number = Date.now) {
    this.#store = store;
    this.#network = network;
    this.#now = now;
  }

  get #db(): Store {
    if (this.#store === null)
      throw new ChargestreamError(
        'NOT_FOUND',
        'no store in this process: ask a processor or api process',
      );
    return this.#store;
  }

  #scope(caller: Caller): Scope {
    return new Scope(this.#network(), caller);
  }

  /** The session, or SESSION_NOT_FOUND / ORGANIZATION_NOT_RELATED. */
  async #visibleSession(scope: Scope, sessionId: string): Promise<SessionRecord> {
    const session = await readSession(this.#db, sessionId);
    if (session === null)
      throw new ChargestreamError('SESSION_NOT_FOUND', `no session ${sessionId}`);
    scope.requireSees(
      { operatorId: session.operatorId, customerId: session.customerId },
      `session ${sessionId}`,
    );
    return session;
  }

  /** Filters the scope puts on sessions and CDRs (both have operator_id and customer_id). */
  #scopeFilter(scope: Scope): string {
    if (scope.everything) return '1';
    return ownedBy(scope);
  }

  async listSessions(r: Request): Promise<Reply> {
    const scope = this.#scope(r.caller);
    const q = r.query;
    const where = [this.#scopeFilter(scope)];
    const equal: Array<[string, string]> = [
      ['charger', 'charger_id'],
      ['site', 'site_id'],
      ['customer', 'customer_id'],
      ['status', 'status'],
      ['operator', 'operator_id'],
    ];
    for (const [param, column] of equal) {
      const value = q.get(param);
      if (value !== null && value !== '') where.push(`${column} = ${sqlString(value)}`);
    }
    const flag = q.get('flag');
    if (flag !== null && flag !== '') where.push(`has(flags, ${sqlString(flag)})`);
    const from = time(q.get('from'), 'from');
    const to = time(q.get('to'), 'to');
    if (from !== null) where.push(`started_at >= ${chTime(from)}`);
    if (to !== null) where.push(`started_at < ${chTime(to)}`);
    const limitText = q.get('limit') ?? String(DEFAULT_LIMIT);
    const limit = Number(limitText);
    if (!/^\d+$/.test(limitText) || limit < 1 || limit > MAX_LIMIT)
      throw new ChargestreamError('BAD_REQUEST', `limit: a whole number from 1 to ${MAX_LIMIT}`);
    const cursor = q.get('cursor');
    if (cursor !== null && cursor !== '') {
      const [ts, id] = decodeCursor(cursor);
      where.push(`(started_at, session_id) < (${chTime(ts)}, ${sqlString(id)})`);
    }
    const sessions = await readSessions(
      this.#db,
      where.join(' AND '),
      `ORDER BY started_at DESC, session_id DESC LIMIT ${limit + 1}`,
    );
    const page = sessions.slice(0, limit);
    const last = page.at(-1);
    return json({
      sessions: page,
      nextCursor:
        sessions.length > limit && last !== undefined
          ? encodeCursor(Date.parse(last.startedAt), last.sessionId)
          : null,
    });
  }

  async getSession(r: Request): Promise<Reply> {
    const sessionId = r.params[0]!;
    const session = await this.#visibleSession(this.#scope(r.caller), sessionId);
    const cdrs = await cdrsOfSession(this.#db, sessionId);
    const debit = cdrs.find((c) => c.kind === 'debit');
    const cancellation = cdrs.find((c) => c.correction === 'cancellation');
    const refunds = cdrs.filter((c) => c.correction === 'refund');
    const currency = debit?.currency ?? session.currency;
    return json({
      ...session,
      cancelled: cancellation !== undefined,
      cancellation:
        cancellation === undefined
          ? null
          : {
              cdrId: cancellation.cdrId,
              reason: cancellation.description,
              at: cancellation.createdAt,
              requestedBy: cancellation.requestedBy,
            },
      refunds: refunds.map((c) => ({
        cdrId: c.cdrId,
        requestId: c.requestId,
        amount: money(new Big(c.totalInclVat).neg(), c.currency),
        reason: c.description,
        at: c.createdAt,
        requestedBy: c.requestedBy,
      })),
      charged: debit === undefined ? null : money(debit.totalInclVat, currency),
      remaining: debit === undefined ? null : money(sum(cdrs.map((c) => c.totalInclVat)), currency),
      cdrIds: cdrs.map((c) => c.cdrId),
    });
  }

  async listCdrs(r: Request): Promise<Reply> {
    const sessionId = r.query.get('session');
    if (sessionId === null || sessionId === '')
      throw new ChargestreamError('BAD_REQUEST', 'session: the id of the session is required');
    await this.#visibleSession(this.#scope(r.caller), sessionId);
    return json({ cdrs: await cdrsOfSession(this.#db, sessionId) });
  }

  #corrections(caller: Caller): CorrectionContext {
    const scope = this.#scope(caller);
    const network = this.#network();
    const roaming = new Set(
      network.organizations.filter((o) => o.roamingTariff !== undefined).map((o) => o.id),
    );
    return {
      store: this.#db,
      now: this.#now(),
      requestedBy: `${caller.role}@${caller.organization}`,
      mayCorrect: (owners) => scope.mayCorrect(owners),
      isRoaming: (customerId) => roaming.has(scope.customerOrganization(customerId) ?? ''),
    };
  }

  async cancel(r: Request): Promise<Reply> {
    const body = parseBody(r.body);
    const credit = await cancelSession(this.#corrections(r.caller), r.params[0]!, body);
    return json({ sessionId: credit.sessionId, status: 'cancelled', cdr: credit }, '201 Created');
  }

  async refund(r: Request): Promise<Reply> {
    const body = parseBody(r.body);
    const credit = await refundSession(this.#corrections(r.caller), r.params[0]!, body);
    return json({ sessionId: credit.sessionId, cdr: credit }, '201 Created');
  }

  async invoice(r: Request): Promise<Reply> {
    const sessionId = r.params[0]!;
    const session = await this.#visibleSession(this.#scope(r.caller), sessionId);
    const invoice = buildInvoice(session, await cdrsOfSession(this.#db, sessionId));
    if (wants(r, 'text/html', 'html'))
      return { type: 'text/html; charset=utf-8', body: invoiceHtml(invoice) };
    return json(invoice);
  }

  async driverStatement(r: Request): Promise<Reply> {
    const customerId = r.params[0]!;
    const { from, to } = period(r.query);
    const scope = this.#scope(r.caller);
    const organization = scope.customerOrganization(customerId);
    if (organization === undefined)
      throw new ChargestreamError('CUSTOMER_NOT_FOUND', `no customer ${customerId}`);
    if (!scope.everything) scope.requireOwnOrganization(organization);
    const cdrs = await readCdrs(
      this.#db,
      `customer_id = ${sqlString(customerId)} AND created_at >= ${chTime(from)} AND created_at < ${chTime(to)}`,
    );
    return this.#statement(r, buildStatement('driver', customerId, iso(from), iso(to), cdrs));
  }

  async accountStatement(r: Request): Promise<Reply> {
    const organizationId = r.params[0]!;
    const { from, to } = period(r.query);
    const network = this.#network();
    if (!network.organizations.some((o) => o.id === organizationId))
      throw new ChargestreamError('ORGANIZATION_NOT_FOUND', `no organization ${organizationId}`);
    const scope = this.#scope(r.caller);
    scope.requireOwnOrganization(organizationId);
    const account = new Scope(network, { role: r.caller.role, organization: organizationId });
    const cdrs = await readCdrs(
      this.#db,
      `${ownedBy(account)} AND created_at >= ${chTime(from)} AND created_at < ${chTime(to)}`,
    );
    return this.#statement(r, buildStatement('account', organizationId, iso(from), iso(to), cdrs));
  }

  #statement(r: Request, statement: ReturnType<typeof buildStatement>): Reply {
    if (wants(r, 'text/csv', 'csv'))
      return { type: 'text/csv; charset=utf-8', body: statementCsv(statement) };
    return json(statement);
  }
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** `Accept` names the type (or `?format=` its short name). */
function wants(r: Request, type: string, format: string): boolean {
  return r.query.get('format') === format || r.accept.toLowerCase().includes(type);
}

function encodeCursor(startedAt: number, sessionId: string): string {
  return Buffer.from(JSON.stringify([startedAt, sessionId])).toString('base64url');
}

function decodeCursor(cursor: string): [number, string] {
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (
      Array.isArray(value) &&
      value.length === 2 &&
      Number.isInteger(value[0]) &&
      typeof value[1] === 'string'
    )
      return [value[0] as number, value[1]];
  } catch {
    // falls through to the error below
  }
  throw new ChargestreamError('BAD_REQUEST', 'cursor: not a cursor this API returned');
}
