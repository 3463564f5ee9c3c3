import { createHash } from 'node:crypto';
import { Big, minorUnits } from '../lib/decimal.js';
import { ChargestreamError } from '../lib/errors.js';
import { sqlString, type Store } from '../store/store.js';
import { money, negate, refundLines, remainingOf, splitRefund, sum } from './money.js';
import {
  cdrInsertRow,
  cdrsOfSession,
  readSession,
  type CdrRecord,
  type SessionRecord,
} from './records.js';

/** Who a session belongs to: its charger's operator (CPO) and its customer (EMP). */
export interface Owners {
  readonly operatorId: string;
  readonly customerId: string;
}

export interface CorrectionContext {
  readonly store: Store;
  /** Now, in epoch ms: the credit CDR's creation time and the "current month" of C1. */
  readonly now: number;
  /** Role and organization of the API key asking, kept on the credit CDR. */
  readonly requestedBy: string;
  /** C1: the session's CPO and EMP are the key's organization, below it or above it. */
  readonly mayCorrect: (owners: Owners) => boolean;
  /** The customer's sessions come through a roaming platform (R3). */
  readonly isRoaming: (customerId: string) => boolean;
}

/**
 * Credit CDRs and the cancelled session version carry this partition: the processor's
 * replay guard reads each partition's highest stored offset, and API rows must not move it.
 */
export const CORRECTIONS_PARTITION = 65_535;

/**
 * The version of a cancelled session's row: above any the processor writes (offset × 8 +
 * step), so the cancelled state stays the latest. A rated session gets no later version from
 * the processor (closed sessions leave its memory; a retry only picks up failed ones).
 */
export const CANCELLED_VERSION = '4611686018427387904'; // 2^62

const OPEN = new Set(['ready', 'in_progress', 'ended']);

/**
 * One correction at a time per session in this process, so the checks and the write of one
 * are not interleaved with another's. Across API processes the credit CDR's id and
 * deduplication token are deterministic (a cancellation, or a refund's request id, is
 * written once).
 */
const inFlight = new Map<string, Promise<unknown>>();

async function serialized<T>(sessionId: string, task: () => Promise<T>): Promise<T> {
  const previous = inFlight.get(sessionId) ?? Promise.resolve();
  const run = previous.then(task, task);
  const tail = run.catch(() => undefined);
  inFlight.set(sessionId, tail);
  try {
    return await run;
  } finally {
    if (inFlight.get(sessionId) === tail) inFlight.delete(sessionId);
  }
}

interface Loaded {
  readonly session: SessionRecord;
  readonly debit: CdrRecord | undefined;
  readonly credits: readonly CdrRecord[];
}

async function load(ctx: CorrectionContext, sessionId: string): Promise<Loaded> {
  const session = await readSession(ctx.store, sessionId);
  if (session === null) throw new ChargestreamError('SESSION_NOT_FOUND', `no session ${sessionId}`);
  if (!ctx.mayCorrect({ operatorId: session.operatorId, customerId: session.customerId }))
    throw new ChargestreamError(
      'ORGANIZATION_NOT_RELATED',
      `session ${sessionId}: its operator or customer organization is not the key's organization, a sub-organization or a parent organization of it`,
    );
  const cdrs = await cdrsOfSession(ctx.store, sessionId);
  return {
    session,
    debit: cdrs.find((c) => c.kind === 'debit'),
    credits: cdrs.filter((c) => c.kind === 'credit'),
  };
}

function requireReason(reason: unknown): string {
  if (typeof reason !== 'string' || reason.trim() === '')
    throw new ChargestreamError('REASON_REQUIRED', 'reason: a non-empty text is required');
  if (reason.length > 1000)
    throw new ChargestreamError('BAD_REQUEST', 'reason: at most 1000 characters');
  return reason.trim();
}

function requireCompleted(loaded: Loaded): CdrRecord {
  const { session, debit } = loaded;
  if (OPEN.has(session.status))
    throw new ChargestreamError(
      'SESSION_ONGOING',
      `session ${session.sessionId} is ${session.status}: only completed sessions can be corrected`,
    );
  if (session.status === 'cancelled' || loaded.credits.some((c) => c.correction === 'cancellation'))
    throw new ChargestreamError(
      'SESSION_ALREADY_CANCELLED',
      `session ${session.sessionId} is cancelled already`,
    );
  if (debit === undefined)
    throw new ChargestreamError(
      'SESSION_NOT_BILLED',
      `session ${session.sessionId} is ${session.status} and has no CDR to correct`,
    );
  return debit;
}

/** JSON body of a request: an object, or BAD_REQUEST. */
export function parseBody(body: Buffer): Record<string, unknown> {
  if (body.length === 0) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw new ChargestreamError('BAD_REQUEST', 'the body is not valid JSON');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new ChargestreamError('BAD_REQUEST', 'the body must be a JSON object');
  return parsed as Record<string, unknown>;
}

/**
 * C1/C2: cancels a completed session of the current calendar month (UTC) with a credit CDR
 * negating its debit CDR — energy, every line and every total — and a new version of the
 * session with status `cancelled`. Each failed condition has its own error code.
 */
export async function cancelSession(
  ctx: CorrectionContext,
  sessionId: string,
  body: Record<string, unknown>,
): Promise<CdrRecord> {
  const reason = requireReason(body['reason']);
  return serialized(sessionId, async () => {
    const loaded = await load(ctx, sessionId);
    // A cancellation whose session version was not written (the store failed in between):
    // the credit CDR is the record, the session is brought in line before answering.
    if (
      loaded.session.status !== 'cancelled' &&
      loaded.credits.some((c) => c.correction === 'cancellation')
    )
      await markCancelled(ctx.store, sessionId);
    const debit = requireCompleted(loaded);
    if (ctx.isRoaming(loaded.session.customerId))
      throw new ChargestreamError(
        'ROAMING_SESSION',
        `session ${sessionId} came through a roaming platform: roaming sessions cannot be cancelled yet`,
      );
    if (loaded.credits.length > 0)
      throw new ChargestreamError(
        'SESSION_ALREADY_UPDATED',
        `session ${sessionId} was refunded before (${loaded.credits.map((c) => c.cdrId).join(', ')}): it cannot be cancelled`,
      );
    const ended = loaded.session.endedAt ?? debit.endedAt;
    if (ended.slice(0, 7) !== new Date(ctx.now).toISOString().slice(0, 7))
      throw new ChargestreamError(
        'SESSION_NOT_CURRENT_MONTH',
        `session ${sessionId} ended ${ended}: only sessions of the current calendar month (UTC) can be cancelled`,
      );
    const credit = cancellationOf(debit, reason, ctx.now, ctx.requestedBy);
    await ctx.store.insert(
      'cdrs',
      cdrInsertRow(credit, CORRECTIONS_PARTITION),
      `cancel:${sessionId}`,
    );
    // The credit CDR first: it is the record of the cancellation, the session follows it.
    await markCancelled(ctx.store, sessionId);
    // Another API process may have cancelled it first: what the store holds is the answer.
    const stored = (await cdrsOfSession(ctx.store, sessionId)).find(
      (c) => c.correction === 'cancellation',
    );
    return stored ?? credit;
  });
}

/** C2 / rating.md case 14: the debit CDR with energy, lines and totals negated. */
export function cancellationOf(
  debit: CdrRecord,
  reason: string,
  now: number,
  requestedBy: string,
): CdrRecord {
  return {
    ...debit,
    cdrId: `${debit.sessionId}-cancel`,
    kind: 'credit',
    correction: 'cancellation',
    creditReferenceId: debit.cdrId,
    requestId: '',
    requestedBy,
    energyWh: negate(debit.energyWh),
    totalExclVat: negate(debit.totalExclVat),
    totalVat: negate(debit.totalVat),
    totalInclVat: negate(debit.totalInclVat),
    description: reason,
    createdAt: new Date(now).toISOString(),
    lines: debit.lines.map((l) => ({
      ...l,
      quantity: negate(l.quantity),
      net: negate(l.net),
      vat: negate(l.vat),
    })),
  };
}

async function markCancelled(store: Store, sessionId: string): Promise<void> {
  await store.insert(
    'sessions_log',
    await cancelledVersion(store, sessionId),
    `cancel-session:${sessionId}`,
  );
}

/**
 * The session's latest row again, as `cancelled`, under CANCELLED_VERSION: every column as
 * stored (also those added later), decimals as text so that no amount passes through a float.
 */
async function cancelledVersion(store: Store, sessionId: string): Promise<string> {
  const [row] = await store.rows<Record<string, unknown>>(
    `SELECT * EXCEPT (version, status) FROM sessions_log WHERE session_id = ${sqlString(sessionId)}
     ORDER BY version DESC LIMIT 1 SETTINGS output_format_json_quote_decimals = 1`,
  );
  if (row === undefined)
    throw new ChargestreamError('SESSION_NOT_FOUND', `no session ${sessionId}`);
  return JSON.stringify({ ...row, version: CANCELLED_VERSION, status: 'cancelled' }) + '\n';
}

/**
 * C3: a refund of `amount` (incl. VAT) as a credit CDR, at most what remains charged (the
 * debit CDR less earlier refunds), split over the VAT rates (money.ts). Idempotent by
 * `requestId`: the same request id for the session gives the stored refund back, and one
 * with another amount is refused.
 */
export async function refundSession(
  ctx: CorrectionContext,
  sessionId: string,
  body: Record<string, unknown>,
): Promise<CdrRecord> {
  const requestId = body['requestId'];
  if (typeof requestId !== 'string' || requestId === '' || requestId.length > 200)
    throw new ChargestreamError('REQUEST_ID_REQUIRED', 'requestId: a text of 1 to 200 characters');
  const rawAmount = body['amount'];
  if (typeof rawAmount !== 'string' || !/^\d{1,12}(\.\d{1,6})?$/.test(rawAmount))
    throw new ChargestreamError(
      'INVALID_AMOUNT',
      'amount: a positive decimal string such as "2.50" (incl. VAT)',
    );
  const reason = requireReason(body['reason']);
  return serialized(sessionId, async () => {
    const loaded = await load(ctx, sessionId);
    const earlier = loaded.credits.find((c) => c.requestId === requestId);
    if (earlier !== undefined) return sameRequest(earlier, rawAmount);
    const debit = requireCompleted(loaded);
    const digits = minorUnits(debit.currency);
    const amount = new Big(rawAmount);
    if (amount.lte(0) || !amount.eq(amount.round(digits, Big.roundDown)))
      throw new ChargestreamError(
        'INVALID_AMOUNT',
        `amount: more than 0 with at most ${digits} decimals (${debit.currency})`,
      );
    const remaining = remainingOf(debit, loaded.credits);
    const left = sum(remaining.map((b) => b.net.plus(b.vat)));
    if (amount.gt(left))
      throw new ChargestreamError(
        'REFUND_EXCEEDS_CHARGED',
        `amount ${money(amount, debit.currency)} is more than the ${money(left, debit.currency)} ${debit.currency} that remain charged for session ${sessionId}`,
      );
    const parts = splitRefund(remaining, amount, debit.currency);
    const net = sum(parts.map((p) => p.net));
    const credit: CdrRecord = {
      ...debit,
      cdrId: `${sessionId}-refund-${createHash('sha256').update(requestId).digest('hex').slice(0, 16)}`,
      kind: 'credit',
      correction: 'refund',
      creditReferenceId: debit.cdrId,
      requestId,
      requestedBy: ctx.requestedBy,
      energyWh: '0',
      chargingS: 0,
      parkingS: 0,
      totalExclVat: money(net.neg(), debit.currency),
      totalVat: money(amount.minus(net).neg(), debit.currency),
      totalInclVat: money(amount.neg(), debit.currency),
      description: reason,
      createdAt: new Date(ctx.now).toISOString(),
      lines: refundLines(parts, debit.currency),
    };
    await ctx.store.insert(
      'cdrs',
      cdrInsertRow(credit, CORRECTIONS_PARTITION),
      `refund:${sessionId}:${requestId}`,
    );
    const stored = (await cdrsOfSession(ctx.store, sessionId)).find(
      (c) => c.requestId === requestId,
    );
    return stored === undefined ? credit : sameRequest(stored, rawAmount);
  });
}

function sameRequest(stored: CdrRecord, amount: string): CdrRecord {
  if (!new Big(stored.totalInclVat).neg().eq(amount))
    throw new ChargestreamError(
      'REQUEST_ID_CONFLICT',
      `requestId ${stored.requestId} refunded ${negate(stored.totalInclVat)} ${stored.currency} already (CDR ${stored.cdrId}), not ${amount}`,
    );
  return stored;
}
