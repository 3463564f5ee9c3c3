import { createRequire } from 'node:module';
import { authorize } from '../../sessions/authorization.js';
import { energyReading } from '../../sessions/energy.js';
import { parseInstant } from '../../lib/time.js';
import {
  protocolTable,
  toSamples,
  type Handler,
  type Payload,
  type ProtocolTable,
} from '../actions.js';
import type { Sample } from '../events.js';
import { compileSchemas } from '../validation.js';

const require = createRequire(import.meta.url);
const schemas = require('ocpp-rpc/lib/schemas/ocpp2_0_1.json') as Array<{ $id: string }>;

const nowIso = (ms: number) => new Date(ms).toISOString();
const ack: Handler = () => ({ kind: 'reply', payload: {} });

interface IdToken {
  idToken: string;
  type: string;
}

const handlers: Readonly<Record<string, Handler>> = {
  BootNotification: (_p, chargerId, at, ctx) => ({
    kind: 'reply',
    payload: {
      currentTime: nowIso(at),
      interval: ctx.heartbeatIntervalS,
      status: ctx.registration(chargerId),
    },
  }),

  Heartbeat: (_p, _c, at) => ({ kind: 'reply', payload: { currentTime: nowIso(at) } }),

  Authorize: (p, _c, at, ctx) => {
    const token = p['idToken'] as IdToken;
    return {
      kind: 'reply',
      payload: {
        idTokenInfo: {
          status: authorize(ctx.index, token.idToken, at, (t) => ctx.transactions.tokenInUse(t))
            .status,
        },
      },
    };
  },

  StatusNotification: (p, chargerId, at) => ({
    kind: 'durable',
    payload: {},
    event: {
      kind: 'status',
      chargerId,
      // A 2.0.1 session belongs to an EVSE: the EVSE is the unit of partitioning.
      connectorId: p['evseId'] as number,
      receivedAt: at,
      ts: parseInstant(p['timestamp'] as string),
      status: p['connectorStatus'] as string,
      errorCode: 'NoError',
      info: `connector ${p['connectorId'] as number}`,
      vendorErrorCode: '',
    },
  }),

  MeterValues: (p, chargerId, at) => ({
    kind: 'durable',
    payload: {},
    event: {
      kind: 'meter_values',
      chargerId,
      connectorId: p['evseId'] as number,
      receivedAt: at,
      transactionId: '',
      samples: samples(p['meterValue'] as MeterValue[]),
    },
  }),

  TransactionEvent: (p, chargerId, at, ctx) => transactionEvent(p, chargerId, at, ctx),

  DataTransfer: () => ({ kind: 'reply', payload: { status: 'UnknownVendorId' } }),
  NotifyReport: ack,
  NotifyEvent: ack,
  SecurityEventNotification: ack,
  FirmwareStatusNotification: ack,
  LogStatusNotification: ack,
};

/**
 * TransactionEvent Started/Updated/Ended onto the version-free events. A TransactionEvent is
 * always acknowledged (2.0.1 cannot reject it): sanity problems are recorded, not refused.
 */
function transactionEvent(p: Payload, chargerId: string, at: number, ctx: Parameters<Handler>[3]) {
  const info = p['transactionInfo'] as { transactionId: string; stoppedReason?: string };
  const transactionId = info.transactionId;
  const evse = p['evse'] as { id: number } | undefined;
  // A Started event may carry no EVSE: later events find the transaction's home (reliability.md).
  const known = ctx.transactions.home(chargerId, transactionId);
  const connectorId = evse?.id ?? known?.connectorId ?? 0;
  const ts = parseInstant(p['timestamp'] as string);
  const token = p['idToken'] as IdToken | undefined;
  const decision =
    token === undefined
      ? null
      : authorize(ctx.index, token.idToken, at, (t) =>
          ctx.transactions.tokenInUse(t, chargerId, transactionId),
        );
  const payload = decision === null ? {} : { idTokenInfo: { status: decision.status } };
  const values = samples((p['meterValue'] as MeterValue[] | undefined) ?? []);
  const chargingState = (p['transactionInfo'] as { chargingState?: string }).chargingState;
  const facts = {
    seqNo: p['seqNo'] as number,
    offline: p['offline'] === true,
    eventTs: ts,
    ...(chargingState === undefined ? {} : { chargingState }),
  };

  switch (p['eventType'] as 'Started' | 'Updated' | 'Ended') {
    case 'Started': {
      if (connectorId > 0) ctx.transactions.remember(transactionId, { chargerId, connectorId });
      if (decision?.status === 'Accepted' && token !== undefined)
        ctx.transactions.claimToken(chargerId, transactionId, token.idToken);
      const atStart = values.filter((s) => s.ts === ts);
      const startReading = energyReading(atStart);
      const startSigned = (
        atStart.find((s) => s.signed !== undefined && s.measurand.startsWith('Energy')) ??
        values.find((s) => s.signed !== undefined)
      )?.signed;
      return {
        kind: 'durable' as const,
        payload,
        event: {
          kind: 'tx_started' as const,
          chargerId,
          connectorId,
          receivedAt: at,
          transactionId,
          tokenId: token?.idToken ?? '',
          // Authorization may follow the start (cable plugged in first); until then the
          // session runs without a customer.
          authorization: decision?.status ?? 'Accepted',
          refusal: decision?.reason ?? '',
          customerId: decision?.customerId ?? '',
          // 2.0.1 has no meterStart: the register reading of the start, if sent, else the
          // first register reading of the transaction.
          meterStartWh: startReading?.kind === 'register' ? startReading.valueWh : null,
          ...(startSigned === undefined ? {} : { meterStartSigned: startSigned }),
          ts,
          ...facts,
        },
      };
    }
    case 'Updated':
      if (evse !== undefined && known === undefined)
        ctx.transactions.remember(transactionId, { chargerId, connectorId });
      return {
        kind: 'durable' as const,
        payload,
        event: {
          kind: 'meter_values' as const,
          chargerId,
          connectorId,
          receivedAt: at,
          transactionId,
          samples: values,
          ...facts,
        },
      };
    case 'Ended':
      return {
        kind: 'durable' as const,
        payload,
        event: {
          kind: 'tx_stopped' as const,
          chargerId,
          connectorId,
          receivedAt: at,
          transactionId,
          tokenId: token?.idToken ?? '',
          // The Ended event's meter values (Transaction.End included) are its samples.
          meterStopWh: null,
          ts,
          reason: info.stoppedReason ?? 'Local',
          samples: values,
          orphan: connectorId === 0,
          ...facts,
        },
      };
  }
}

/** OCPP 2.0.1, charger-initiated calls. */
export const V201: ProtocolTable = protocolTable(
  compileSchemas(schemas),
  handlers,
  'FormatViolation',
);

interface SampledValue {
  value: number;
  context?: string;
  measurand?: string;
  phase?: string;
  unitOfMeasure?: { unit?: string; multiplier?: number };
  signedMeterValue?: {
    signedMeterData: string;
    signingMethod: string;
    encodingMethod: string;
    publicKey: string;
  };
}
interface MeterValue {
  timestamp: string;
  sampledValue: SampledValue[];
}

/** 2.0.1 values are numbers with a unitOfMeasure carrying the unit and a power-of-ten multiplier. */
function samples(meterValues: readonly MeterValue[]): Sample[] {
  return toSamples(
    meterValues,
    (sv) => ({ unit: sv.unitOfMeasure?.unit, exponent: sv.unitOfMeasure?.multiplier ?? 0 }),
    (sv) => {
      const signed = sv.signedMeterValue;
      if (signed === undefined) return undefined;
      const { signedMeterData: data, signingMethod, encodingMethod, publicKey } = signed;
      return { record: { data, signingMethod, encodingMethod, publicKey }, alone: false };
    },
  );
}
