import type { NetworkIndex } from '../config/network-index.js';
import type { TransactionRegistry } from '../gateway/transactions.js';
import { Big } from '../lib/decimal.js';
import { parseInstant } from '../lib/time.js';
import type { ChargerEvent, Sample, SignedRecord } from './events.js';
import type { RpcErrorCode } from './rpc.js';
import { violationCode, violationText, type Validator } from './validation.js';

export type RegistrationStatus = 'Accepted' | 'Pending' | 'Rejected';

/** What the gateway lends the protocol handlers to answer a charger's CALL. */
export interface ActionContext {
  readonly index: NetworkIndex;
  readonly transactions: TransactionRegistry;
  /** Seconds between heartbeats asked of chargers in BootNotification. */
  readonly heartbeatIntervalS: number;
  /** The registration status of a charger: it belongs to the charger, not to a connection. */
  readonly registration: (chargerId: string) => RegistrationStatus;
}

export type CallOutcome =
  /** Answered from memory. */
  | { readonly kind: 'reply'; readonly payload: object }
  /** Answered once the event is durable on the bus (acknowledge after durable). */
  | { readonly kind: 'durable'; readonly payload: object; readonly event: ChargerEvent }
  | { readonly kind: 'error'; readonly code: RpcErrorCode; readonly description: string };

export type Payload = Record<string, unknown>;
export type Handler = (
  payload: Payload,
  chargerId: string,
  receivedAt: number,
  ctx: ActionContext,
) => CallOutcome;

/** One protocol version: its handlers, the official schemas, and how it spells its errors. */
export interface ProtocolTable {
  readonly handlers: Readonly<Record<string, Handler>>;
  readonly requests: ReadonlyMap<string, Validator>;
  readonly responses: ReadonlyMap<string, Validator>;
  readonly formation: RpcErrorCode;
}

/** Splits compiled `urn:<Action>.req|conf` validators into requests and responses by action. */
export function protocolTable(
  validators: ReadonlyMap<string, Validator>,
  handlers: Readonly<Record<string, Handler>>,
  formation: RpcErrorCode,
): ProtocolTable {
  const requests = new Map<string, Validator>();
  const responses = new Map<string, Validator>();
  for (const [id, validate] of validators) {
    const match = /^urn:(\w+)\.(req|conf)$/.exec(id);
    if (match === null) continue;
    (match[2] === 'req' ? requests : responses).set(match[1]!, validate);
  }
  return { handlers, requests, responses, formation };
}

/**
 * Validates and answers one CALL from a charger. Never throws for bad input: it returns the
 * CALLERROR the specification names. While a charger is not Accepted, every CALL but
 * BootNotification is refused with SecurityError (1.6 §4.2, 2.0.1 B02).
 */
export function handleCall(
  table: ProtocolTable,
  action: string,
  payload: Payload,
  chargerId: string,
  receivedAt: number,
  ctx: ActionContext,
): CallOutcome {
  const handler = table.handlers[action];
  if (handler === undefined) {
    return table.requests.has(action)
      ? { kind: 'error', code: 'NotSupported', description: `${action} is not supported` }
      : { kind: 'error', code: 'NotImplemented', description: `unknown action ${action}` };
  }
  if (action !== 'BootNotification' && ctx.registration(chargerId) !== 'Accepted') {
    return {
      kind: 'error',
      code: 'SecurityError',
      description: 'the charger is not accepted: send BootNotification first',
    };
  }
  const validate = table.requests.get(action);
  if (validate !== undefined && !validate(payload)) {
    const error = validate.errors?.[0];
    return {
      kind: 'error',
      code: violationCode(error, table.formation),
      description: violationText(error),
    };
  }
  const id = outOfRangeId(payload);
  if (id !== null)
    return {
      kind: 'error',
      code: 'PropertyConstraintViolation',
      description: `${id}: must be 0 to ${MAX_ID}`,
    };
  return handler(payload, chargerId, receivedAt, ctx);
}

/** Connector and EVSE ids are stored as UInt16; the schemas only say "integer". */
const MAX_ID = 65_535;

function outOfRangeId(payload: Payload): string | null {
  const inRange = (v: unknown) =>
    v === undefined || (typeof v === 'number' && v >= 0 && v <= MAX_ID);
  if (!inRange(payload['connectorId'])) return 'connectorId';
  if (!inRange(payload['evseId'])) return 'evseId';
  const evse = payload['evse'] as { id?: unknown } | undefined;
  if (evse !== undefined && !inRange(evse.id)) return 'evse.id';
  return null;
}

/** Units scaled by 1000 to their base unit; the rest are kept as they are. */
const KILO: ReadonlyMap<string, string> = new Map([
  ['kWh', 'Wh'],
  ['kW', 'W'],
  ['kvarh', 'varh'],
  ['kvar', 'var'],
  ['kVA', 'VA'],
]);

/**
 * The base unit of a kilo unit, else undefined. A frame's units are fresh strings: looked up as
 * an object's keys each was first sought in V8's table of internalized strings; most units do
 * not start with a `k` and need no lookup at all.
 */
function baseOf(unit: string): string | undefined {
  return unit.charCodeAt(0) === 0x6b ? KILO.get(unit) : undefined;
}

/**
 * A value normalized to the base unit, scaled in decimal so that 12.345 kWh is exactly
 * 12345 Wh and not 12344.999…; `scale` is the power of ten to the base unit (3 for a kilo
 * unit, plus 2.0.1's unitOfMeasure.multiplier).
 */
function normalizedValue(value: string | number, scale: number): number {
  // A JSON number is finite and already the value (its text would pass the check below; -0
  // went through its text as 0).
  if (typeof value === 'number' && scale === 0) return value === 0 ? 0 : value;
  const text = typeof value === 'number' ? String(value) : value.trim();
  if (!isDecimal(text)) return Number.NaN;
  return scale === 0 ? Number(text) : new Big(text).times(new Big(10).pow(scale)).toNumber();
}

/**
 * Whether `text` is a decimal number, /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/ (no sign `+`, no `.5`,
 * no `5.`, no hex, no Infinity), checked by a scan: the expression took about a quarter of
 * the mapping of a MeterValues (pipeline micro benchmark).
 */
export function isDecimal(text: string): boolean {
  const n = text.length;
  let i = text.charCodeAt(0) === MINUS ? 1 : 0;
  let j = digitsEnd(text, i);
  if (j === i) return false;
  i = j;
  if (i < n && text.charCodeAt(i) === DOT) {
    j = digitsEnd(text, i + 1);
    if (j === i + 1) return false;
    i = j;
  }
  if (i < n && (text.charCodeAt(i) | 0x20) === LOWER_E) {
    i += 1;
    const sign = text.charCodeAt(i);
    if (sign === PLUS || sign === MINUS) i += 1;
    j = digitsEnd(text, i);
    if (j === i) return false;
    i = j;
  }
  return i === n;
}

/** Where the run of digits from `from` ends in `text`. */
function digitsEnd(text: string, from: number): number {
  let j = from;
  while (j < text.length && isDigit(text.charCodeAt(j))) j++;
  return j;
}

const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const LOWER_E = 0x65;
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;

/** A sampled value as both versions carry it; the unit and its exponent are read per version. */
interface SampledValueBase {
  readonly context?: string;
  readonly measurand?: string;
  readonly phase?: string;
}

/**
 * Flattens meterValue[] into samples with values normalized to W, Wh, A, V (E1). `unitOf`
 * reads the unit and its power-of-ten exponent the way the protocol version spells them;
 * `signatureOf` reads a value's signature (R5.2). A signature sent as a value of its own
 * (1.6 `SignedData`) joins the plain value of the same measurand and phase in its meterValue;
 * alone, it stays a sample without a number.
 */
export function toSamples<S extends SampledValueBase & { readonly value: string | number }>(
  meterValues: ReadonlyArray<{ readonly timestamp: string; readonly sampledValue: readonly S[] }>,
  unitOf: (sv: S) => { unit: string | undefined; exponent: number },
  signatureOf: (sv: S) => { record: SignedRecord; alone: boolean } | undefined = () => undefined,
): Sample[] {
  const out: Sample[] = [];
  for (const mv of meterValues) {
    const ts = parseInstant(mv.timestamp);
    const first = out.length;
    let loose: Array<{ sample: Sample; record: SignedRecord }> | null = null;
    for (const sv of mv.sampledValue) {
      const measurand = sv.measurand ?? 'Energy.Active.Import.Register';
      const { unit: given, exponent } = unitOf(sv);
      const unit = given ?? defaultUnit(measurand);
      const base = baseOf(unit);
      const signature = signatureOf(sv);
      const sample: Sample = {
        ts,
        measurand,
        phase: sv.phase ?? '',
        value:
          signature?.alone === true
            ? Number.NaN
            : normalizedValue(sv.value, exponent + (base === undefined ? 0 : 3)),
        unit: base ?? unit,
        context: sv.context ?? 'Sample.Periodic',
      };
      if (signature?.alone === true) (loose ??= []).push({ sample, record: signature.record });
      else {
        if (signature !== undefined) sample.signed = signature.record;
        out.push(sample);
      }
    }
    for (const { sample, record } of loose ?? []) {
      const plain = out.find(
        (o, i) =>
          i >= first &&
          o.signed === undefined &&
          o.measurand === sample.measurand &&
          o.phase === sample.phase,
      );
      if (plain !== undefined) plain.signed = record;
      else out.push({ ...sample, signed: record });
    }
  }
  return out;
}

function defaultUnit(measurand: string): string {
  if (measurand.startsWith('Energy.Active')) return 'Wh';
  if (measurand.startsWith('Power.Active')) return 'W';
  if (measurand.startsWith('Current')) return 'A';
  if (measurand === 'Voltage') return 'V';
  if (measurand === 'SoC') return 'Percent';
  return '';
}
