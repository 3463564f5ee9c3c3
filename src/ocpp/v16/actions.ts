import { createRequire } from 'node:module';
import type { NetworkIndex } from '../../config/network-index.js';
import type { TransactionRegistry } from '../../gateway/transactions.js';
import { Big } from '../../lib/decimal.js';
import { authorize } from '../../sessions/authorization.js';
import type { ChargerEvent, Sample } from '../events.js';
import type { RpcErrorCode } from '../rpc.js';
import { compileSchemas, violationCode, violationText, type Validator } from '../validation.js';

/** What the gateway needs to answer a 1.6 CALL. */
export interface ActionContext {
  readonly index: NetworkIndex;
  readonly transactions: TransactionRegistry;
  /** Seconds between heartbeats asked of chargers in BootNotification. */
  readonly heartbeatIntervalS: number;
}

export type CallOutcome =
  /** Answered from memory. */
  | { readonly kind: 'reply'; readonly payload: object }
  /** Answered once the event is durable on the bus (acknowledge after durable). */
  | { readonly kind: 'durable'; readonly payload: object; readonly event: ChargerEvent }
  | { readonly kind: 'error'; readonly code: RpcErrorCode; readonly description: string };

type Payload = Record<string, unknown>;
type Handler = (
  payload: Payload,
  chargerId: string,
  receivedAt: number,
  ctx: ActionContext,
) => CallOutcome;

const require = createRequire(import.meta.url);
const schemas = require('ocpp-rpc/lib/schemas/ocpp1_6.json') as Array<{ $id: string }>;
const validators = compileSchemas(schemas);

function requestValidator(action: string): Validator | undefined {
  return validators.get(`urn:${action}.req`);
}

/** Validates a response the engine is about to send (tests use it to prove conformance). */
export function responseValidator(action: string): Validator | undefined {
  return validators.get(`urn:${action}.conf`);
}

const nowIso = (ms: number) => new Date(ms).toISOString();

const handlers: Readonly<Record<string, Handler>> = {
  BootNotification: (_p, _c, at, ctx) => ({
    kind: 'reply',
    payload: { status: 'Accepted', currentTime: nowIso(at), interval: ctx.heartbeatIntervalS },
  }),

  Heartbeat: (_p, _c, at) => ({ kind: 'reply', payload: { currentTime: nowIso(at) } }),

  Authorize: (p, _c, at, ctx) => {
    const decision = authorize(ctx.index, p['idTag'] as string, at);
    return { kind: 'reply', payload: { idTagInfo: { status: decision.status } } };
  },

  StatusNotification: (p, chargerId, at) => ({
    kind: 'durable',
    payload: {},
    event: {
      kind: 'status',
      chargerId,
      connectorId: p['connectorId'] as number,
      receivedAt: at,
      ts: typeof p['timestamp'] === 'string' ? Date.parse(p['timestamp']) : at,
      status: p['status'] as string,
      errorCode: p['errorCode'] as string,
      info: (p['info'] as string | undefined) ?? '',
      vendorErrorCode: (p['vendorErrorCode'] as string | undefined) ?? '',
    },
  }),

  StartTransaction: (p, chargerId, at, ctx) => {
    const connectorId = p['connectorId'] as number;
    const tokenId = p['idTag'] as string;
    const ts = Date.parse(p['timestamp'] as string);
    const meterStart = p['meterStart'] as number;
    const decision = authorize(ctx.index, tokenId, at);
    const startKey = `${chargerId}|${connectorId}|${ts}|${tokenId}|${meterStart}`;
    const transactionId = ctx.transactions.allocate(startKey, { chargerId, connectorId });
    return {
      kind: 'durable',
      payload: { transactionId: Number(transactionId), idTagInfo: { status: decision.status } },
      event: {
        kind: 'tx_started',
        chargerId,
        connectorId,
        receivedAt: at,
        transactionId,
        tokenId,
        authorization: decision.status,
        customerId: decision.customerId,
        meterStartWh: meterStart,
        ts,
      },
    };
  },

  MeterValues: (p, chargerId, at) => ({
    kind: 'durable',
    payload: {},
    event: {
      kind: 'meter_values',
      chargerId,
      connectorId: p['connectorId'] as number,
      receivedAt: at,
      transactionId: typeof p['transactionId'] === 'number' ? String(p['transactionId']) : '',
      samples: samples(p['meterValue'] as MeterValue[]),
    },
  }),

  StopTransaction: (p, chargerId, at, ctx) => {
    const transactionId = String(p['transactionId']);
    const home = ctx.transactions.home(chargerId, transactionId);
    const tokenId = (p['idTag'] as string | undefined) ?? '';
    return {
      kind: 'durable',
      // 1.6 §4.10: answered whatever the id; the idTagInfo only when an idTag was sent.
      payload:
        tokenId === '' ? {} : { idTagInfo: { status: authorize(ctx.index, tokenId, at).status } },
      event: {
        kind: 'tx_stopped',
        chargerId,
        // Unknown or foreign ids are parked on the charger's connector 0 (reliability.md 3).
        connectorId: home?.connectorId ?? 0,
        receivedAt: at,
        transactionId,
        tokenId,
        meterStopWh: p['meterStop'] as number,
        ts: Date.parse(p['timestamp'] as string),
        reason: (p['reason'] as string | undefined) ?? 'Local',
        samples: samples((p['transactionData'] as MeterValue[] | undefined) ?? []),
        orphan: home === undefined,
      },
    };
  },
};

/** Actions of the 1.6 Core and Security profiles the engine recognizes but does not serve yet. */
const RECOGNIZED = new Set(
  schemas
    .map((s) => s.$id)
    .filter((id) => id.endsWith('.req'))
    .map((id) => id.slice(4, -4)),
);

/**
 * Validates and answers one 1.6 CALL from a charger. Never throws for bad input: it returns
 * the CALLERROR the specification names.
 */
export function handleCall(
  action: string,
  payload: Payload,
  chargerId: string,
  receivedAt: number,
  ctx: ActionContext,
): CallOutcome {
  const handler = handlers[action];
  if (handler === undefined) {
    return RECOGNIZED.has(action)
      ? { kind: 'error', code: 'NotSupported', description: `${action} is not supported` }
      : { kind: 'error', code: 'NotImplemented', description: `unknown action ${action}` };
  }
  const validate = requestValidator(action);
  if (validate !== undefined && !validate(payload)) {
    const error = validate.errors?.[0];
    return {
      kind: 'error',
      code: violationCode(error, 'FormationViolation'),
      description: violationText(error),
    };
  }
  return handler(payload, chargerId, receivedAt, ctx);
}

interface SampledValue {
  value: string;
  context?: string;
  format?: string;
  measurand?: string;
  phase?: string;
  location?: string;
  unit?: string;
}
interface MeterValue {
  timestamp: string;
  sampledValue: SampledValue[];
}

/** Flattens meterValue[] into samples with values normalized to W, Wh (E1). */
function samples(meterValues: readonly MeterValue[]): Sample[] {
  const out: Sample[] = [];
  for (const mv of meterValues) {
    const ts = Date.parse(mv.timestamp);
    for (const sv of mv.sampledValue) {
      const measurand = sv.measurand ?? 'Energy.Active.Import.Register';
      const unit = sv.unit ?? defaultUnit(measurand);
      out.push({
        ts,
        measurand,
        phase: sv.phase ?? '',
        value: normalizedValue(sv.value, unit),
        unit: KILO[unit] ?? unit,
        context: sv.context ?? 'Sample.Periodic',
      });
    }
  }
  return out;
}

/** Units scaled by 1000 to their base unit; the rest are kept as they are. */
const KILO: Readonly<Record<string, string>> = {
  kWh: 'Wh',
  kW: 'W',
  kvarh: 'varh',
  kvar: 'var',
  kVA: 'VA',
};

function normalizedValue(text: string, unit: string): number {
  if (!/^\s*-?\d+(\.\d+)?([eE][+-]?\d+)?\s*$/.test(text)) return Number.NaN;
  // Scale in decimal so that "12.345" kWh is exactly 12345 Wh, not 12344.999….
  return KILO[unit] === undefined ? Number(text) : new Big(text.trim()).times(1000).toNumber();
}

function defaultUnit(measurand: string): string {
  if (measurand.startsWith('Energy.Active')) return 'Wh';
  if (measurand.startsWith('Power.Active')) return 'W';
  if (measurand.startsWith('Current')) return 'A';
  if (measurand === 'Voltage') return 'V';
  if (measurand === 'SoC') return 'Percent';
  return '';
}
