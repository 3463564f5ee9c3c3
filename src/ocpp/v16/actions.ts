import { createRequire } from 'node:module';
import { startKey } from '../../gateway/transactions.js';
import { authorize } from '../../sessions/authorization.js';
import { parseInstant } from '../../lib/time.js';
import { protocolTable, toSamples, type Handler, type ProtocolTable } from '../actions.js';
import type { Sample } from '../events.js';
import { compileSchemas } from '../validation.js';

const require = createRequire(import.meta.url);
const schemas = require('ocpp-rpc/lib/schemas/ocpp1_6.json') as Array<{ $id: string }>;

const nowIso = (ms: number) => new Date(ms).toISOString();
const ack: Handler = () => ({ kind: 'reply', payload: {} });

const handlers: Readonly<Record<string, Handler>> = {
  BootNotification: (_p, chargerId, at, ctx) => ({
    kind: 'reply',
    payload: {
      status: ctx.registration(chargerId),
      currentTime: nowIso(at),
      interval: ctx.heartbeatIntervalS,
    },
  }),

  Heartbeat: (_p, _c, at) => ({ kind: 'reply', payload: { currentTime: nowIso(at) } }),

  Authorize: (p, _c, at, ctx) => {
    const decision = authorize(ctx.index, p['idTag'] as string, at, (t) =>
      ctx.transactions.tokenInUse(t),
    );
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
      ts: typeof p['timestamp'] === 'string' ? parseInstant(p['timestamp']) : at,
      status: p['status'] as string,
      errorCode: p['errorCode'] as string,
      info: (p['info'] as string | undefined) ?? '',
      vendorErrorCode: (p['vendorErrorCode'] as string | undefined) ?? '',
    },
  }),

  StartTransaction: (p, chargerId, at, ctx) => {
    const connectorId = p['connectorId'] as number;
    const tokenId = p['idTag'] as string;
    const ts = parseInstant(p['timestamp'] as string);
    const meterStart = p['meterStart'] as number;
    const transactionId = ctx.transactions.allocate(
      startKey(chargerId, connectorId, ts, tokenId, meterStart),
      {
        chargerId,
        connectorId,
      },
    );
    // A2: the token may not run on another connector (a resent start is not "another").
    const decision = authorize(ctx.index, tokenId, at, (t) =>
      ctx.transactions.tokenInUse(t, chargerId, transactionId),
    );
    if (decision.status === 'Accepted')
      ctx.transactions.claimToken(chargerId, transactionId, tokenId);
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
        refusal: decision.reason,
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
    // -1 (the charger never got an id), unknown and foreign ids are answered as valid and
    // parked on the charger's connector 0 (reliability.md: protocol facts, scenario 3).
    const transactionId = String(p['transactionId']);
    const home = ctx.transactions.home(chargerId, transactionId);
    const tokenId = (p['idTag'] as string | undefined) ?? '';
    return {
      kind: 'durable',
      // 1.6 §4.10: idTagInfo only when an idTag was sent.
      payload:
        tokenId === '' ? {} : { idTagInfo: { status: authorize(ctx.index, tokenId, at).status } },
      event: {
        kind: 'tx_stopped',
        chargerId,
        connectorId: home?.connectorId ?? 0,
        receivedAt: at,
        transactionId,
        tokenId,
        meterStopWh: p['meterStop'] as number,
        ts: parseInstant(p['timestamp'] as string),
        reason: (p['reason'] as string | undefined) ?? 'Local',
        samples: samples((p['transactionData'] as MeterValue[] | undefined) ?? []),
        orphan: home === undefined,
      },
    };
  },

  // Notifications the engine takes note of; their records come with charger management.
  DataTransfer: () => ({ kind: 'reply', payload: { status: 'UnknownVendorId' } }),
  DiagnosticsStatusNotification: ack,
  FirmwareStatusNotification: ack,
  SecurityEventNotification: ack,
  LogStatusNotification: ack,
  SignedFirmwareStatusNotification: ack,
  // Certificates are signed by the operator's CA, which the engine does not hold (yet).
  SignCertificate: () => ({ kind: 'reply', payload: { status: 'Rejected' } }),
};

/** OCPP 1.6J (Core and Security extension), charger-initiated calls. */
export const V16: ProtocolTable = protocolTable(
  compileSchemas(schemas),
  handlers,
  'FormationViolation',
);

interface SampledValue {
  value: string;
  context?: string;
  format?: 'Raw' | 'SignedData';
  measurand?: string;
  phase?: string;
  unit?: string;
}
interface MeterValue {
  timestamp: string;
  sampledValue: SampledValue[];
}

/**
 * 1.6 values are decimal text with the unit as a field; a `SignedData` value is a signed
 * record (OCMF) of the plain value beside it.
 */
function samples(meterValues: readonly MeterValue[]): Sample[] {
  return toSamples(
    meterValues,
    (sv) => ({ unit: sv.unit, exponent: 0 }),
    (sv) =>
      sv.format === 'SignedData'
        ? {
            record: { data: sv.value, signingMethod: '', encodingMethod: '', publicKey: '' },
            alone: true,
          }
        : undefined,
  );
}
