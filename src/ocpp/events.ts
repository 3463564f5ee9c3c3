/**
 * The version-free event model. Both protocol versions map their frames onto these shapes,
 * so the bus, the processor and the workers never see OCPP. Every event is keyed by
 * chargerId/connectorId; connectorId 0 holds events that belong to the charger as a whole
 * (and orphans whose connector is unknown).
 *
 * Times are epoch milliseconds (UTC); energies and powers are normalized to Wh and W.
 */

export type AuthorizationStatus = 'Accepted' | 'Blocked' | 'Expired' | 'Invalid' | 'ConcurrentTx';

export interface Sample {
  ts: number;
  measurand: string;
  phase: string;
  /** Normalized value: W, Wh, A, V, % as the measurand says; NaN if the text was not a number. */
  value: number;
  unit: string;
  context: string;
  /** R5.2: the meter's signature of this value, when the charger sent one. */
  signed?: SignedRecord;
}

/**
 * A signed meter value (R5.2), its texts exactly as the charger sent them: OCPP 2.0.1's
 * signedMeterValue, or OCPP 1.6's `SignedData` value (an OCMF record carries its own method
 * and key, so those stay empty).
 */
export interface SignedRecord {
  data: string;
  signingMethod: string;
  encodingMethod: string;
  publicKey: string;
}

interface EventBase {
  chargerId: string;
  connectorId: number;
  /** When the gateway received the frame; workers use it instead of a clock. */
  receivedAt: number;
}

/**
 * 2.0.1 TransactionEvent facts: its sequence number, whether it happened offline, and the
 * charging state it reports (Charging, EVConnected, SuspendedEV, SuspendedEVSE, Idle).
 */
interface TransactionEventFacts {
  seqNo?: number;
  offline?: boolean;
  chargingState?: string;
  /** The TransactionEvent's own timestamp. */
  eventTs?: number;
}

export interface TransactionStarted extends EventBase, TransactionEventFacts {
  kind: 'tx_started';
  transactionId: string;
  tokenId: string;
  authorization: AuthorizationStatus;
  /** Why a refused start was refused (S4: token_invalid, insufficient_balance, …). */
  refusal?: string;
  customerId: string;
  /** Null when the protocol gives none (2.0.1): the first register reading is the start. */
  meterStartWh: number | null;
  /** R5.2: the meter's signature of the start reading (2.0.1 Started events may carry one). */
  meterStartSigned?: SignedRecord;
  ts: number;
}

export interface MeterValuesReported extends EventBase, TransactionEventFacts {
  kind: 'meter_values';
  /** Empty for clock-aligned values outside a transaction. */
  transactionId: string;
  samples: Sample[];
}

export interface TransactionStopped extends EventBase, TransactionEventFacts {
  kind: 'tx_stopped';
  transactionId: string;
  tokenId: string;
  /** Null when the stop carries its readings in `samples` instead (2.0.1). */
  meterStopWh: number | null;
  ts: number;
  reason: string;
  /** transactionData of the stop, applied before the stop reading. */
  samples: Sample[];
  /** The transaction id was not known to the gateway for this charger (reliability.md 3). */
  orphan: boolean;
}

export interface ConnectorStatusChanged extends EventBase {
  kind: 'status';
  ts: number;
  status: string;
  errorCode: string;
  info: string;
  vendorErrorCode: string;
}

/**
 * Decided by the processor, not sent by a charger: a session with no event for the ongoing-
 * session expiration (S3) is to be finalized. Goes through the bus like every event, so it is
 * ordered with the connector's other events, durable and replayed the same way.
 */
export interface SessionExpired extends EventBase {
  kind: 'expire';
  transactionId: string;
  /** The session's last event as the processor saw it: newer activity cancels the expiry. */
  lastEventAt: number;
}

/**
 * S8: rate again a session whose rating failed — from the API (manual) or the processor's
 * retry job — carrying the failed session as stored. `stale`: the processor found the session
 * no longer failed when the batch ran (an earlier retry went through): nothing to do.
 */
export interface RatingRetried extends EventBase {
  kind: 'retry';
  sessionId: string;
  /** The session's stored state (JSON of the worker's session state). */
  state: string;
  stale?: boolean;
}

/**
 * N1 charger scope: the charger's connection opened or closed, or its BootNotification was
 * accepted. Informational: published without holding up the charger, on connector 0.
 */
export interface StationChanged extends EventBase {
  kind: 'station';
  change: 'connected' | 'disconnected' | 'booted';
  details: Record<string, string>;
}

/**
 * S1/S2: a start was authorized (Authorize, or a remote start the charger accepted) and is
 * awaited on this connector (0: the charger's, for an Authorize on a charger of several
 * connectors). `consumed`: the awaited start arrived (on any connector of the charger).
 */
export interface SessionReady extends EventBase {
  kind: 'ready';
  tokenId: string;
  customerId: string;
  /** How the start was authorized: `authorize` or `remote_start`. */
  origin: string;
  consumed?: boolean;
  /** With `consumed`: the wait ended without a start, for this reason (S4 charger_offline). */
  outcome?: string;
}

export type ChargerEvent =
  | TransactionStarted
  | MeterValuesReported
  | TransactionStopped
  | ConnectorStatusChanged
  | SessionExpired
  | RatingRetried
  | StationChanged
  | SessionReady;

/** The partition key of an event: every event of one connector lands in one partition. */
export function connectorKey(chargerId: string, connectorId: number): string {
  return `${chargerId}/${connectorId}`;
}
