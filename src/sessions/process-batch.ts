import { maxPowerW, roamingPlatformOf, type NetworkIndex } from '../config/network-index.js';
import { chTime } from '../lib/time.js';
import type {
  AuthorizationStatus,
  ChargerEvent,
  ConnectorStatusChanged,
  RatingRetried,
  SessionReady,
  MeterValuesReported,
  Sample,
  SignedRecord,
  TransactionStarted,
  TransactionStopped,
} from '../ocpp/events.js';
import { connectorKey } from '../ocpp/events.js';
import { sessionRowText } from '../store/store.js';
import { addStatus, durations, scopeOf, type Scope, type StatusChange } from './durations.js';
import { selectedBy, signalsOf, thresholdReached, type SignalState } from './alerts.js';
import { THRESHOLD_EVENTS, type NotificationRule, type ThresholdEvent } from '../config/network.js';
import {
  beginRating,
  finalCost,
  liveCost,
  observe,
  packRating,
  unpackRating,
  ratedState,
  type CdrLine,
  type CdrPeriod,
  type Money,
  type SessionRating,
} from './session-rating.js';
import {
  applyVerdict,
  energyReading,
  judgeInterval,
  judgeRegister,
  startEnergy,
  type EnergyState,
  type Verdict,
} from './energy.js';
import type { Observation } from '../rating/index.js';

/**
 * The pure heart of the processor: (connector states, events of one partition in order) →
 * (new states, rows for the store). It runs in the Piscina workers; it reads no clock and does
 * no I/O, so a replay of the same events from the same states yields the same rows.
 */

export type SessionStatus =
  | 'ready'
  | 'in_progress'
  | 'ended'
  | 'rated'
  | 'closed'
  | 'rejected'
  | 'rating_failed'
  | 'billing_failed';

export interface SessionState extends SignalState {
  readonly sessionId: string;
  readonly chargerId: string;
  readonly connectorId: number;
  readonly transactionId: string;
  status: SessionStatus;
  reason: string;
  readonly customerId: string;
  readonly tokenId: string;
  readonly startedAt: number;
  endedAt: number | null;
  energy: EnergyState;
  /** The session's rating by the tariff in force at its start. */
  readonly rating: SessionRating;
  /** The running cost (R5.1), then the final one. */
  cost: Money;
  /** The invoice lines of the final rating. */
  lines: CdrLine[];
  /** The session has been charging (for the scope of Occupied / EVConnected). */
  charged: boolean;
  /** When the session's latest event arrived (gateway time): the ongoing expiration runs from it. */
  lastEventAt: number;
  readonly flags: string[];
  /** Highest 2.0.1 seqNo seen, to flag gaps (a charger low on memory may drop events). */
  lastSeqNo: number | null;
  /** The connector's status at the start, and its changes since (S5). */
  readonly initialStatus: string;
  /** The initial status was reported by the charger (not the default). */
  initialReported?: boolean;
  readonly statuses: StatusChange[];
  /** N2/R7: rules already fired for the session (each once per rule and session). */
  fired?: string[];
  /** The latest state of charge reported, %. */
  soc?: number | null;
  /** S8: why rating failed (the session is then rating_failed), attempts so far, and when. */
  ratingError?: string;
  ratingAttempts?: number;
  failedAt?: number;
  /** What the latest transaction values event was, to know a resend of it (reliability.md 1). */
  lastValuesKey?: string;
  /** R5.2: the session's first and latest signed meter values, for its CDR. */
  signedStart?: SignedAt;
  signedEnd?: SignedAt;
}

/** A signed meter value and the time of the reading it signs. */
export interface SignedAt extends SignedRecord {
  readonly ts: string;
}

export interface ConnectorState {
  /** Offset of the last event applied: a replayed event at or below it is skipped. */
  appliedOffset: number;
  session: SessionState | null;
  /** The connector's latest reported status, for a session that starts later. */
  status?: StatusChange | null;
}

/** Per partition, the highest offset already stored in each append-only table (replay guard). */
export interface HighWater {
  readonly notifications?: number;
  readonly readings: number;
  readonly statuses: number;
  readonly cdrs: number;
}

export interface BatchInput {
  readonly partition: number;
  readonly entries: ReadonlyArray<{ readonly offset: number; readonly event: ChargerEvent }>;
  readonly states: Readonly<Record<string, ConnectorState>>;
  readonly highWater: HighWater;
  /**
   * The network changed through the configuration API since the workers started: its version
   * and its JSON text in shared memory (not copied per batch); a worker behind re-reads it.
   */
  readonly network?: NetworkUpdate;
}

export interface NetworkUpdate {
  readonly version: number;
  readonly json: SharedArrayBuffer;
}

export interface BatchOutput {
  readonly states: Record<string, ConnectorState>;
  /**
   * Rows per table, ready for the store: JSONEachRow, the readings nested (READING_FRAMES)
   * and the sessions positional (SESSION_COLUMNS).
   */
  readonly readings: string;
  /** The `meter_readings` rows `readings` makes. */
  readonly readingRows: number;
  readonly statuses: string;
  readonly notifications: string;
  readonly sessions: string;
  readonly cdrs: string;
  readonly readingsValid: number;
  readonly readingsRejected: number;
  readonly lastOffset: number;
  readonly counters: BatchCounters;
  /** R5.1: the costs of OCPP 2.0.1 transactions this batch changed, for their charger. */
  readonly costs: LiveCost[];
}

/**
 * A 2.0.1 transaction's cost incl. VAT (R5.1), for TransactionEventResponse.totalCost and
 * CostUpdated: running while it charges, then final once (null: the rating failed, S8).
 */
export interface LiveCost {
  readonly chargerId: string;
  readonly transactionId: string;
  readonly totalCost: string | null;
  readonly final: boolean;
}

/** What one batch did, for the workers' metrics (the processor sums them). */
export interface BatchCounters {
  /** Reading rows stored, by reject reason (`valid` for the valid ones). */
  readonly readings: Record<string, number>;
  /** Session state changes, by the status entered. */
  readonly sessions: Record<string, number>;
  /** Notifications stored, by event. */
  readonly notifications: Record<string, number>;
  /** Sessions finalized by the ongoing-session expiration (S3). */
  expirations: number;
  /** Readings rated, and the seconds the rating engine took for them. */
  ratedReadings: number;
  ratingSeconds: number;
  /** Seconds the worker spent on the whole batch. */
  busySeconds: number;
}

export function processBatch(index: NetworkIndex, input: BatchInput): BatchOutput {
  const started = performance.now();
  const run = new BatchRun(index, input);
  for (const { offset, event } of input.entries) run.apply(offset, event);
  const output = run.output();
  output.counters.busySeconds = (performance.now() - started) / 1000;
  return output;
}

class BatchRun {
  readonly #index: NetworkIndex;
  readonly #input: BatchInput;
  readonly #states: Record<string, ConnectorState>;
  readonly #readings: string[] = [];
  readonly #statuses: string[] = [];
  readonly #notifications: string[] = [];
  readonly #sessions: string[] = [];
  readonly #cdrs: string[] = [];
  readonly #costs: LiveCost[] = [];
  /** Sessions changed in this batch but not by a state change: one row each at the end. */
  readonly #touched = new Map<string, { session: SessionState; offset: number }>();
  /** Sessions a retry rated in this batch: a second retry of one does nothing. */
  readonly #retried = new Set<string>();
  /** The event being applied: every row it produces names its charger and connector. */
  #event: ChargerEvent | null = null;
  /** The readings row being built (READING_FRAMES): the event's readings of one session. */
  #frame: ReadingFrame | null = null;
  /** Per session, the start its readings rows share (#rowPrefix). */
  readonly #rowPrefixes = new Map<
    SessionState,
    { chargerId: string; connectorId: number; prefix: string }
  >();
  /** `meter_readings` rows written, for the store's row counts. */
  #readingRows = 0;
  /**
   * The state text of each session's closing row (step 7): nothing changes a session after
   * it, so the text is also its state as it leaves the batch (connectorStateText).
   */
  readonly #closingTexts = new Map<SessionState, string>();
  #valid = 0;
  #rejected = 0;
  #offset = -1;
  readonly #counters: BatchCounters = {
    readings: {},
    sessions: {},
    notifications: {},
    expirations: 0,
    ratedReadings: 0,
    ratingSeconds: 0,
    busySeconds: 0,
  };

  constructor(index: NetworkIndex, input: BatchInput) {
    this.#index = index;
    this.#input = input;
    this.#states = { ...input.states };
    for (const state of Object.values(this.#states)) {
      if (state.session === null) continue;
      // This batch may change the session: a text written of it before no longer holds.
      stateTexts.delete(state.session);
      unpackRating(state.session.rating);
    }
  }

  apply(offset: number, event: ChargerEvent): void {
    this.#offset = offset;
    this.#event = event;
    const key = connectorKey(event.chargerId, event.connectorId);
    const state = (this.#states[key] ??= { appliedOffset: -1, session: null });
    if (offset <= state.appliedOffset) return;
    if (
      event.kind !== 'expire' &&
      event.kind !== 'retry' &&
      event.kind !== 'station' &&
      state.session !== null &&
      isOpen(state.session.status)
    ) {
      state.session.lastEventAt = Math.max(state.session.lastEventAt ?? 0, event.receivedAt);
    }
    switch (event.kind) {
      case 'tx_started':
        this.#start(state, event, offset);
        break;
      case 'meter_values':
        this.#meterValues(state, event, offset);
        break;
      case 'tx_stopped':
        this.#stop(state, event, offset);
        break;
      case 'retry':
        this.#retry(event, offset);
        break;
      case 'ready':
        this.#ready(state, event, offset);
        break;
      case 'station':
        for (const rule of selectedBy(this.#index.rules.get(`station_${event.change}`), '', {}))
          this.#emit(
            event.receivedAt,
            `station_${event.change}`,
            event,
            null,
            offset,
            event.details,
            rule,
          );
        break;
      case 'expire': {
        const session = state.session;
        // Only if nothing arrived since the processor decided (S3): the last valid reading ends it.
        if (
          session !== null &&
          isOpen(session.status) &&
          session.transactionId === event.transactionId &&
          session.lastEventAt === event.lastEventAt
        ) {
          // S2: a ready session whose start never came is closed, not rated.
          if (session.status === 'ready') this.#close(session, 'start_timeout', offset, 2);
          else this.#finish(session, session.energy.lastTs, 'idle_timeout', offset, 2);
          this.#counters.expirations += 1;
        }
        break;
      }
      case 'status': {
        const changed = state.status?.[1] !== event.status;
        this.#status(state, event.ts, event.status, offset);
        const session =
          state.session !== null && isOpen(state.session.status) ? state.session : null;
        if (changed) this.#notifyStatus(event, session, offset);
        if (offset > this.#input.highWater.statuses) {
          this.#statuses.push(
            JSON.stringify({
              charger_id: event.chargerId,
              connector_id: event.connectorId,
              ts: chTime(event.ts),
              status: event.status,
              error_code: event.errorCode,
              info: event.info,
              vendor_error_code: event.vendorErrorCode,
              received_at: chTime(event.receivedAt),
              log_partition: this.#input.partition,
              log_offset: offset,
            }),
          );
        }
        break;
      }
    }
    state.appliedOffset = offset;
  }

  output(): BatchOutput {
    for (const { session, offset } of this.#touched.values()) {
      session.cost = liveCost(session.rating); // R5.1, once per batch, not per reading
      this.#thresholds(session, session.energy.lastTs, offset);
      this.#sessionRow(session, offset, 7);
      if (speaksV201(session) && session.status === 'in_progress')
        this.#costs.push({
          chargerId: session.chargerId,
          transactionId: session.transactionId,
          totalCost: session.cost.totalInclVat,
          final: false,
        });
    }
    // Closed and rejected sessions are no longer tracked: the store holds them. Open ones
    // leave without their compiled tariff (see SessionRating).
    for (const state of Object.values(this.#states)) {
      const session = state.session;
      if (session === null) continue;
      if (!isOpen(session.status)) {
        state.session = null;
        continue;
      }
      const packed = { ...session, rating: packRating(session.rating) };
      const text = this.#closingTexts.get(session);
      if (text !== undefined) stateTexts.set(packed, text);
      state.session = packed;
    }
    this.#endReadingFrame();
    // The run ends here: its row lists are complete (newlineRows adds to them).
    return {
      states: this.#states,
      readings: newlineRows(this.#readings),
      readingRows: this.#readingRows,
      statuses: newlineRows(this.#statuses),
      notifications: newlineRows(this.#notifications),
      sessions: newlineRows(this.#sessions),
      cdrs: newlineRows(this.#cdrs),
      readingsValid: this.#valid,
      readingsRejected: this.#rejected,
      lastOffset: this.#offset,
      counters: this.#counters,
      costs: this.#costs,
    };
  }

  #start(state: ConnectorState, event: TransactionStarted, offset: number): void {
    const last = state.session;
    // S6: a duplicate start (also one resent after its session ended in this same batch).
    if (last !== null && last.transactionId === event.transactionId) return;
    // The session stays in the connector's state until the batch ends, also once rated: only
    // a session still open is superseded by a new transaction.
    if (last !== null && last.status === 'ready') {
      // S1: the awaited start came (another token's start takes the connector over).
      const same = last.tokenId.toUpperCase() === event.tokenId.toUpperCase();
      this.#close(last, same ? 'started' : 'superseded', offset, 0);
    } else if (last !== null && isOpen(last.status)) {
      // A new transaction on a connector whose previous one never reported its stop.
      this.#finish(last, last.energy.lastTs, 'superseded', offset, 0);
    }
    const session = this.#newSession(
      { ...event, initialStatus: state.status?.[1] ?? 'Charging' },
      `${event.chargerId}-${event.transactionId}`,
      event.transactionId,
    );
    if (state.status != null) session.initialReported = true;
    if (event.ts < event.receivedAt - OFFLINE_AFTER_MS) session.flags.push('offline');
    noteFacts(session, event);
    if (event.authorization !== 'Accepted') {
      session.status = 'rejected';
      session.reason = event.refusal || REJECTION[event.authorization];
      session.endedAt = event.ts;
    }
    if (event.meterStartWh !== null)
      this.#reading(
        session,
        offset,
        {
          ts: event.ts,
          measurand: 'Energy.Active.Import.Register',
          phase: '',
          value: event.meterStartWh,
          unit: 'Wh',
          context: 'Transaction.Begin',
          ...(event.meterStartSigned === undefined ? {} : { signed: event.meterStartSigned }),
        },
        null,
      );
    this.#notify(
      event.receivedAt,
      session.status === 'rejected' ? 'session_refused' : 'session_started',
      session,
      offset,
      {
        reason: session.reason,
        tokenId: session.tokenId,
      },
    );
    state.session = session;
    if (event.chargingState !== undefined)
      this.#status(state, event.ts, event.chargingState, offset);
    this.#sessionRow(session, offset, 1);
  }

  /**
   * S1/S2: an authorized start is awaited on this connector: a `ready` session, closed when
   * its start comes (`started`) or when the ready-session expiration passes
   * (`start_timeout`). A remote start for a connector already charging is refused there
   * (S4 `connector_busy`).
   */
  #ready(state: ConnectorState, event: SessionReady, offset: number): void {
    const last = state.session;
    if (event.consumed === true) {
      if (last?.status === 'ready' && last.tokenId.toUpperCase() === event.tokenId.toUpperCase()) {
        if (event.outcome === undefined) this.#close(last, 'started', offset, 1);
        else this.#refuse(last, event.outcome, offset, 1);
      }
      return;
    }
    const session = this.#newSession(
      event,
      `${event.chargerId}-${event.connectorId}-R${offset}`,
      '',
    );
    if (last !== null && last.status === 'in_progress') {
      this.#refuse(session, 'connector_busy', offset, 1);
      return;
    }
    if (last !== null && last.status === 'ready') this.#close(last, 'superseded', offset, 0);
    session.status = 'ready';
    session.reason = event.origin;
    state.session = session;
    this.#sessionRow(session, offset, 1);
  }

  /** A session in progress from `at.ts` (or its arrival), rated by the tariff in force then. */
  #newSession(
    at: {
      readonly chargerId: string;
      readonly connectorId: number;
      readonly customerId: string;
      readonly tokenId: string;
      readonly receivedAt: number;
      readonly ts?: number;
      readonly meterStartWh?: number | null;
      readonly initialStatus?: string;
    },
    sessionId: string,
    transactionId: string,
  ): SessionState {
    const ts = at.ts ?? at.receivedAt;
    const rating = beginRating(this.#index, at.chargerId, at.customerId, ts);
    const initialStatus = at.initialStatus ?? 'Charging';
    return {
      sessionId,
      chargerId: at.chargerId,
      connectorId: at.connectorId,
      transactionId,
      status: 'in_progress',
      reason: '',
      customerId: at.customerId,
      tokenId: at.tokenId,
      startedAt: ts,
      endedAt: null,
      energy: startEnergy(at.meterStartWh ?? null, ts),
      rating,
      cost: liveCost(rating),
      lines: [],
      charged: initialStatus === 'Charging',
      lastEventAt: at.receivedAt,
      flags: [],
      lastSeqNo: null,
      initialStatus,
      statuses: [],
    };
  }

  /** S4: a session that never delivered energy is rejected with its reason (session_refused). */
  #refuse(
    session: SessionState,
    reason: string,
    offset: number,
    step: number,
    endedAt?: number,
  ): void {
    this.#end(session, 'rejected', reason, endedAt);
    this.#notify(session.endedAt!, 'session_refused', session, offset, {
      reason,
      tokenId: session.tokenId,
    });
    this.#sessionRow(session, offset, step);
  }

  /** Ends a session that never charged (ready): closed, not rated, no CDR. */
  #close(session: SessionState, reason: string, offset: number, step: number): void {
    this.#end(session, 'closed', reason);
    this.#sessionRow(session, offset, step);
  }

  /** A session ends without rating, at `endedAt` (the current event's arrival by default). */
  #end(session: SessionState, status: SessionStatus, reason: string, endedAt?: number): void {
    session.status = status;
    session.reason = reason;
    session.endedAt = endedAt ?? this.#event?.receivedAt ?? session.startedAt;
    this.#touched.delete(session.sessionId);
  }

  #meterValues(state: ConnectorState, event: MeterValuesReported, offset: number): void {
    const session = state.session;
    const matches =
      session !== null &&
      session.status === 'in_progress' &&
      (event.transactionId === '' ? false : event.transactionId === session.transactionId);
    // Values without a transaction (clock-aligned, or a connector's main meter) are stored
    // and attributed to the running session, but do not change its energy.
    const owner =
      session !== null &&
      session.status === 'in_progress' &&
      (matches || event.transactionId === '')
        ? session
        : null;
    if (matches) {
      // A resend of the last values (its answer was lost: the event was durable) adds nothing.
      const key = resendKey(event);
      if (key === session.lastValuesKey) {
        count(this.#counters.readings, 'resent', event.samples.length);
        return;
      }
      session.lastValuesKey = key;
      noteFacts(session, event);
      if (event.chargingState !== undefined)
        this.#status(state, event.eventTs ?? event.receivedAt, event.chargingState, offset);
      this.#touched.set(session.sessionId, { session, offset });
    }
    this.#samples(owner, matches ? session : null, event.samples, offset);
  }

  #stop(state: ConnectorState, event: TransactionStopped, offset: number): void {
    const session = state.session;
    if (
      event.orphan ||
      session === null ||
      session.transactionId !== event.transactionId ||
      session.status !== 'in_progress'
    ) {
      // Already stopped (a retried stop), unknown or another charger's transaction: the
      // readings are kept for the record and change no session (reliability.md 2, 3).
      this.#samples(null, null, event.samples, offset);
      return;
    }
    noteFacts(session, event);
    if (event.chargingState !== undefined)
      this.#status(state, event.ts, event.chargingState, offset);
    this.#samples(session, session, event.samples, offset);
    // 1.6 carries meterStop; a 2.0.1 Ended event carries its readings in the samples.
    if (event.meterStopWh !== null) {
      const stopSample: Sample = {
        ts: event.ts,
        measurand: 'Energy.Active.Import.Register',
        phase: '',
        value: event.meterStopWh,
        unit: 'Wh',
        context: 'Transaction.End',
      };
      this.#judgeAndStore(session, [stopSample], offset);
    }
    // E4: a stop whose reading is invalid still ends the session, with the energy of the
    // latest valid reading.
    this.#finish(session, event.ts, event.reason, offset, 2);
  }

  /** A status (or 2.0.1 chargingState) of the connector: kept, and in the open session's timeline. */
  #status(state: ConnectorState, ts: number, status: string, offset: number): void {
    const changed = state.status?.[1] !== status;
    if (state.status == null || ts >= state.status[0]) state.status = [ts, status];
    const session = state.session;
    if (changed && status === 'Available' && session?.status === 'ready') {
      // S4: the awaited start was given up at the charger (the car unplugged, the start cancelled).
      this.#refuse(session, 'cancelled_by_user', offset, 1);
      return;
    }
    if (
      changed &&
      session !== null &&
      isOpen(session.status) &&
      session.charged &&
      scopeOf(status, true) === 'parking'
    ) {
      // N1: the car stopped drawing power; parking (and its fees) may follow.
      this.#notify(ts, 'charging_ended', session, offset, { status });
    }
    if (session !== null && isOpen(session.status) && ts >= session.startedAt) {
      addStatus(session.statuses, ts, status);
      session.charged ||= status === 'Charging';
      // A change of scope is a tariff boundary too (TIME / PARKING_TIME), at the energy so far.
      this.#observe(session, {
        ts,
        energyWh: session.energy.energyWh,
        state: ratedState(currentScope(session)),
      });
      this.#touched.set(session.sessionId, { session, offset });
    }
  }

  /** Ends, rates and writes the CDR of a session: ended → rated, one row each. */
  #finish(
    session: SessionState,
    endedAt: number,
    reason: string,
    offset: number,
    step: number,
  ): void {
    session.endedAt = Math.max(endedAt, session.startedAt);
    const refused = neverDelivered(session);
    if (refused !== null) {
      this.#refuse(session, refused, offset, step, session.endedAt);
      return;
    }
    session.status = 'ended';
    session.reason = reason;
    this.#touched.delete(session.sessionId);
    this.#sessionRow(session, offset, step);
    this.#rate(session, offset, step + 1);
  }

  /**
   * The final rating and the CDR: ended → rated. A rating that throws leaves the session
   * rating_failed with the error (S8), its state kept for a retry; the batch goes on, so one
   * session's failure never holds up its partition.
   */
  #rate(session: SessionState, offset: number, step: number): void {
    let periods: CdrPeriod[] = [];
    try {
      if (session.ratingError !== undefined) throw new Error(session.ratingError);
      // A state read back from the store (a retry) gets its compiled tariff here, inside the
      // try: a tariff source that cannot be compiled fails this session's rating, not the batch.
      unpackRating(session.rating);
      const final = finalCost(session.rating, session.endedAt!, `${session.sessionId}-1`);
      session.cost = final.money;
      session.lines = final.lines;
      periods = final.periods;
    } catch (error) {
      session.status = 'rating_failed';
      session.ratingError = error instanceof Error ? error.message : String(error);
      session.ratingAttempts = (session.ratingAttempts ?? 0) + 1;
      session.failedAt = this.#event?.receivedAt ?? session.endedAt ?? session.startedAt;
      this.#sessionRow(session, offset, step);
      return;
    }
    delete session.ratingError;
    flagInadequate(session);
    this.#thresholds(session, session.endedAt!, offset);
    session.status = 'rated';
    this.#notify(session.endedAt!, 'session_ended', session, offset, {
      reason: session.reason,
      energyWh: session.energy.energyWh,
      totalInclVat: session.cost.totalInclVat,
      currency: session.cost.currency,
    });
    this.#sessionRow(session, offset, step);
    if (offset > this.#input.highWater.cdrs)
      this.#cdrs.push(
        cdrRow(
          session,
          periods,
          placeOf(this.#index, session.chargerId),
          offset,
          this.#input.partition,
        ),
      );
  }

  /** S8: a failed session, as stored, rated again (unless an earlier retry went through). */
  #retry(event: RatingRetried, offset: number): void {
    if (event.stale === true || this.#retried.has(event.sessionId)) return;
    const session = JSON.parse(event.state) as SessionState;
    if (session.status !== 'rating_failed' && session.status !== 'billing_failed') return;
    this.#retried.add(event.sessionId);
    session.status = 'ended';
    // A failure of the final rating is tried again; one while readings came in is not (the
    // running rating missed them: rating again would under-bill), it stays for an operator.
    if (!(session.ratingError ?? '').startsWith('reading: ')) delete session.ratingError;
    this.#rate(session, offset, 3);
  }

  /** R5.1: a reading (or a scope change) into the running rating; a failure marks the session (S8). */
  #observe(session: SessionState, observation: Parameters<typeof observe>[1]): void {
    if (session.ratingError !== undefined) return;
    try {
      observe(session.rating, observation);
    } catch (error) {
      session.ratingError = `reading: ${error instanceof Error ? error.message : String(error)}`;
    }
  }

  /** Stores samples; those of `energyOf` are validated against and may move its energy. */
  #samples(
    owner: SessionState | null,
    energyOf: SessionState | null,
    samples: readonly Sample[],
    offset: number,
  ): void {
    let start = 0;
    while (start < samples.length) {
      let end = start + 1;
      while (end < samples.length && samples[end]!.ts === samples[start]!.ts) end += 1;
      const group = samples.slice(start, end);
      if (energyOf !== null) this.#judgeAndStore(energyOf, group, offset);
      else for (const sample of group) this.#reading(owner, offset, sample, null);
      start = end;
    }
  }

  /** One meterValue (samples of one timestamp): E1 picks its energy reading, E3 judges it. */
  #judgeAndStore(session: SessionState, group: readonly Sample[], offset: number): void {
    const reading = energyReading(group);
    let verdict: Verdict | null = null;
    if (reading !== null) {
      const limit = maxPowerW(this.#index, session.chargerId, session.connectorId);
      verdict =
        reading.kind === 'register'
          ? judgeRegister(session.energy, reading.valueWh, reading.ts, limit)
          : judgeInterval(session.energy, reading.valueWh, reading.ts, limit);
      const before = session.energy.energyWh;
      // Once per reading: the scope the session is in, and power and current sent with it.
      const scope = currentScope(session);
      const powerW = total(group, 'Power.Active.Import');
      const currentA = total(group, 'Current.Import');
      if (verdict.valid) {
        this.#valid += 1;
        session.energy = applyVerdict(session.energy, verdict, reading.ts);
        const soc = total(group, 'SoC');
        if (soc !== undefined) session.soc = soc;
        const rating = performance.now();
        this.#observe(
          session,
          observationOf(reading.ts, session.energy.energyWh, powerW, currentA, ratedState(scope)),
        );
        this.#counters.ratingSeconds += (performance.now() - rating) / 1000;
        this.#counters.ratedReadings += 1;
        this.#touched.set(session.sessionId, { session, offset });
      } else {
        this.#rejected += 1;
      }
      const energyRose = verdict.valid && session.energy.energyWh > before;
      // S7: energy kept rising while the statuses said the car was parked.
      if (energyRose && scope === 'parking') addFlag(session, 'inconsistent_times');
      const signals = signalsOf(session, {
        valid: verdict.valid,
        reason: verdict.valid ? undefined : verdict.reason,
        energyRose,
        charging: scope === 'charging',
        hasPowerOrCurrent: powerW !== undefined || currentA !== undefined,
      });
      for (const signal of signals)
        this.#notify(reading.ts, signal, session, offset, {
          limitW: limit,
          valueWh: reading.valueWh,
        });
    }
    for (const sample of group) {
      const isEnergy =
        reading !== null &&
        sample.measurand.startsWith(
          reading.kind === 'register'
            ? 'Energy.Active.Import.Register'
            : 'Energy.Active.Import.Interval',
        );
      this.#reading(session, offset, sample, isEnergy ? verdict : null);
    }
  }

  #reading(
    session: SessionState | null,
    offset: number,
    sample: Sample,
    verdict: Verdict | null,
  ): void {
    const signed = sample.signed;
    if (session !== null && signed !== undefined) {
      const at = { ts: chTime(sample.ts), ...signed };
      if (session.signedStart === undefined) session.signedStart = at;
      else session.signedEnd = at;
    }
    if (offset <= this.#input.highWater.readings) return;
    const number = Number.isFinite(sample.value);
    const rejectReason = !number
      ? signed === undefined
        ? 'not_a_number'
        : 'signature_only'
      : verdict !== null && !verdict.valid
        ? verdict.reason
        : '';
    count(this.#counters.readings, rejectReason || 'valid');
    // Built as text: an object per reading for JSON.stringify cost 1.6× as much (2.6 against
    // 1.6 µs a row). The event's readings of one session and time make one row
    // (READING_FRAMES).
    const frame = this.#readingFrame(session, offset, sample.ts);
    const reading =
      readingHead(sample.measurand, sample.phase) +
      (number ? sample.value : 0) +
      readingTail(sample.unit, sample.context, rejectReason);
    frame.readings = frame.count === 0 ? reading : `${frame.readings},${reading}`;
    if (signed !== undefined) {
      // The readings before it get empty signatures: `s` runs beside `r`.
      frame.signatures ??= Array<string>(frame.count).fill(UNSIGNED).join(',');
      const signature = `[${q(signed.data)},${q(signed.signingMethod)},${q(signed.encodingMethod)},${q(signed.publicKey)}]`;
      frame.signatures = frame.count === 0 ? signature : `${frame.signatures},${signature}`;
    } else if (frame.signatures !== null) {
      frame.signatures = frame.count === 0 ? UNSIGNED : `${frame.signatures},${UNSIGNED}`;
    }
    frame.count += 1;
    this.#readingRows += 1;
  }

  /**
   * The readings row of the event at `offset`, the session and the readings' time: where it
   * came from (readings of no session, clock-aligned or orphans, still name their charger),
   * its log position, the time. A new one ends the one before.
   */
  #readingFrame(session: SessionState | null, offset: number, ts: number): ReadingFrame {
    const sessionId = session?.sessionId ?? '';
    const last = this.#frame;
    if (last !== null && last.offset === offset && last.ts === ts && last.sessionId === sessionId)
      return last;
    this.#endReadingFrame();
    const frame: ReadingFrame = {
      offset,
      sessionId,
      ts,
      head: `${this.#rowPrefix(session)}${offset},"${chTime(ts)}",[`,
      readings: '',
      signatures: null,
      count: 0,
    };
    this.#frame = frame;
    return frame;
  }

  /**
   * The columns a readings row shares with the session's other rows: charger, connector,
   * session, log partition, quoted once per session and batch instead of at every row.
   */
  #rowPrefix(session: SessionState | null): string {
    const { chargerId, connectorId } = this.#event!;
    const kept = session === null ? undefined : this.#rowPrefixes.get(session);
    // The event's charger and connector: an orphan stop may carry another's.
    if (kept !== undefined && kept.connectorId === connectorId && kept.chargerId === chargerId)
      return kept.prefix;
    const prefix = `[${q(chargerId)},${connectorId},${q(session?.sessionId ?? '')},${this.#input.partition},`;
    if (session !== null) this.#rowPrefixes.set(session, { chargerId, connectorId, prefix });
    return prefix;
  }

  #endReadingFrame(): void {
    const frame = this.#frame;
    if (frame === null) return;
    this.#frame = null;
    this.#readings.push(
      frame.signatures === null
        ? `${frame.head}${frame.readings}]]`
        : `${frame.head}${frame.readings}],[${frame.signatures}]]`,
    );
  }

  /**
   * N1 of a session: the stored log always (rule ''), and every rule selecting the event, once
   * per rule and session.
   */
  #notify(ts: number, event: string, session: SessionState, offset: number, payload: object): void {
    this.#emit(ts, event, session, session, offset, payload, null);
    for (const rule of selectedBy(this.#index.rules.get(event), event, payload)) {
      session.fired ??= [];
      const key = `${rule.id}:${event}`;
      if (session.fired.includes(key)) continue;
      session.fired.push(key);
      this.#emit(ts, event, session, session, offset, payload, rule);
    }
  }

  /** N1 charger scope: a connector's new status, for the rules that ask for it (Faulted highlighted). */
  #notifyStatus(event: ConnectorStatusChanged, session: SessionState | null, offset: number): void {
    const payload = {
      status: event.status,
      errorCode: event.errorCode,
      highlighted: event.status === 'Faulted',
    };
    for (const rule of selectedBy(
      this.#index.rules.get('status_changed'),
      'status_changed',
      payload,
    ))
      this.#emit(event.ts, 'status_changed', event, session, offset, payload, rule);
  }

  /** R7: thresholds of a running session, each rule once. */
  #thresholds(session: SessionState, ts: number, offset: number): void {
    if (!this.#index.hasThresholds) return;
    const measures = (() => {
      const d = scopes(session);
      return {
        energyWh: session.energy.energyWh,
        chargingS: d.chargingS,
        parkingS: d.parkingS,
        faultS: d.faultS,
        totalInclVat: session.cost.totalInclVat,
        soc: session.soc ?? null,
      };
    })();
    // R3: the amount a roaming platform authorized for the session is a monetary limit of the
    // stored log (once), whatever the rules say.
    const authorized = roamingPlatformOf(this.#index, session.customerId)?.maxAuthorizedAmount;
    if (
      authorized !== undefined &&
      !session.fired?.includes(':authorized') &&
      thresholdReached('monetary_limit', authorized, measures)
    ) {
      (session.fired ??= []).push(':authorized');
      this.#emit(
        ts,
        'monetary_limit',
        session,
        session,
        offset,
        { threshold: authorized, authorized: true, ...measures },
        null,
      );
    }
    for (const event of THRESHOLD_EVENTS) {
      for (const rule of this.#index.rules.get(event) ?? []) {
        if (rule.threshold === undefined || session.fired?.includes(`${rule.id}:${event}`))
          continue;
        if (!thresholdReached(event as ThresholdEvent, rule.threshold, measures)) continue;
        (session.fired ??= []).push(`${rule.id}:${event}`);
        this.#emit(
          ts,
          event,
          session,
          session,
          offset,
          { threshold: rule.threshold, ...measures },
          rule,
        );
      }
    }
  }

  /** One notification row: the stored log (rule null), or for one rule and its publisher. */
  #emit(
    ts: number,
    event: string,
    place: { readonly chargerId: string; readonly connectorId: number },
    session: SessionState | null,
    offset: number,
    payload: object,
    rule: NotificationRule | null,
  ): void {
    if (offset <= (this.#input.highWater.notifications ?? -1)) return;
    count(this.#counters.notifications, event);
    const ruleId = rule?.id ?? '';
    this.#notifications.push(
      JSON.stringify({
        notification_id: `${this.#input.partition}-${offset}-${event}-${ruleId || 'log'}`,
        ts: chTime(ts),
        event,
        scope: session === null ? 'charger' : 'session',
        charger_id: place.chargerId,
        connector_id: place.connectorId,
        session_id: session?.sessionId ?? '',
        customer_id: session?.customerId ?? '',
        rule_id: ruleId,
        publisher: rule?.publisher ?? 'log',
        receiver:
          rule?.receiver === 'customer' ? (session?.customerId ?? '') : (rule?.receiver ?? ''),
        payload: JSON.stringify(payload),
        log_partition: this.#input.partition,
        log_offset: offset,
      }),
    );
  }

  /** `step` orders the rows of one event; 7 is the batch's closing progress row. */
  #sessionRow(session: SessionState, offset: number, step: number): void {
    if (step !== 7) count(this.#counters.sessions, session.status);
    if (speaksV201(session) && FINAL_COST[session.status] !== undefined)
      this.#costs.push({
        chargerId: session.chargerId,
        transactionId: session.transactionId,
        totalCost: FINAL_COST[session.status]!(session),
        final: true,
      });
    const state = isOpen(session.status) || isFailed(session.status) ? stateText(session) : '';
    if (step === 7 && state !== '') this.#closingTexts.set(session, state);
    this.#sessions.push(
      sessionRow(
        session,
        placeOf(this.#index, session.chargerId),
        offset * 8 + step,
        this.#input.partition,
        state,
      ),
    );
  }
}

/** The final cost a 2.0.1 charger is told, by the status that ends a session. */
const FINAL_COST: Partial<Record<SessionStatus, (s: SessionState) => string | null>> = {
  rated: (s) => s.cost.totalInclVat,
  // A refused session is free (R5.1: 0.00 for a free session).
  rejected: () => '0.00',
  rating_failed: () => null,
};

/** A session of an OCPP 2.0.1 transaction: only its events carry a seqNo. */
function speaksV201(session: SessionState): boolean {
  return session.transactionId !== '' && session.lastSeqNo !== null;
}

/**
 * S6 and reliability.md 5: a 2.0.1 event that happened offline flags the session `offline`;
 * a jump in seqNo flags `seq_gap` (events lost on the charger) — neither blocks anything.
 */
function noteFacts(session: SessionState, event: { seqNo?: number; offline?: boolean }): void {
  if (event.offline === true) addFlag(session, 'offline');
  if (event.seqNo === undefined) return;
  if (session.lastSeqNo !== null && event.seqNo > session.lastSeqNo + 1)
    addFlag(session, 'seq_gap');
  session.lastSeqNo = Math.max(session.lastSeqNo ?? event.seqNo, event.seqNo);
}

function count(counts: Record<string, number>, key: string, n = 1): void {
  counts[key] = (counts[key] ?? 0) + n;
}

/**
 * What tells a resent transaction values event from the next one: 2.0.1 numbers its events
 * (seqNo); a 1.6 MeterValues resent is the same frame — the same samples, times and values.
 */
function resendKey(event: MeterValuesReported): string {
  if (event.seqNo !== undefined) return `#${event.seqNo}`;
  const samples = event.samples;
  let sum = 0;
  for (const sample of samples) sum += Number.isFinite(sample.value) ? sample.value : 0;
  return `${samples.length}|${samples[0]?.ts ?? 0}|${samples.at(-1)?.ts ?? 0}|${sum}`;
}

function addFlag(session: SessionState, flag: string): void {
  if (!session.flags.includes(flag)) session.flags.push(flag);
}

/** A start more than this far in the past was queued while the charger was offline (S6). */
const OFFLINE_AFTER_MS = 5 * 60_000;

const REJECTION: Readonly<Record<AuthorizationStatus, string>> = {
  Invalid: 'token_invalid',
  Blocked: 'token_blocked',
  Expired: 'token_expired',
  ConcurrentTx: 'concurrent_tx',
  Accepted: '',
};

/** Statuses in which a car is at the connector. */
const CAR_PRESENT = new Set([
  'Charging',
  'SuspendedEV',
  'SuspendedEVSE',
  'Finishing',
  'Occupied',
  'EVConnected',
]);

/**
 * S4 for a session that ends without energy, from its reported statuses: the car held it
 * suspended throughout (`ev_refused`, e.g. a full battery), or no car was ever reported at the
 * connector (`ev_not_connected`). Null when it delivered energy, or when nothing says why
 * (no status reported: it is rated as any session).
 */
function neverDelivered(s: SessionState): string | null {
  const seen = [
    ...(s.initialReported === true ? [s.initialStatus] : []),
    ...s.statuses.map(([, status]) => status),
  ];
  if (s.energy.energyWh !== 0 || seen.length === 0) return null;
  if (seen.includes('Charging')) return null;
  if (seen.includes('SuspendedEV')) return 'ev_refused';
  if (!seen.some((status) => CAR_PRESENT.has(status))) return 'ev_not_connected';
  return null;
}

function isFailed(status: SessionStatus): boolean {
  return status === 'rating_failed' || status === 'billing_failed';
}

function isOpen(status: SessionStatus): boolean {
  return status === 'ready' || status === 'in_progress';
}

/** The scope the session is in now, from its latest status. */
function currentScope(s: SessionState): Scope {
  const latest = s.statuses.at(-1)?.[1] ?? s.initialStatus;
  return scopeOf(latest, s.charged);
}

/**
 * A valid reading as the rating engine observes it, with the power (W) and current (A, phases
 * summed) reported with it where they were, for power and current bands. Literals, not
 * spreads: this runs for every reading.
 */
function observationOf(
  ts: number,
  energyWh: number,
  powerW: number | undefined,
  currentA: number | undefined,
  state: Observation['state'],
): Observation {
  if (powerW === undefined)
    return currentA === undefined ? { ts, energyWh, state } : { ts, energyWh, currentA, state };
  return currentA === undefined
    ? { ts, energyWh, powerW, state }
    : { ts, energyWh, powerW, currentA, state };
}

/** A measurand's total: the value without phase if sent, else the phases summed (N excluded). */
function total(group: readonly Sample[], measurand: string): number | undefined {
  let sum: number | undefined;
  for (const sample of group) {
    if (sample.measurand !== measurand || !Number.isFinite(sample.value)) continue;
    if (sample.phase === '') return sample.value;
    if (sample.phase !== 'N') sum = (sum ?? 0) + sample.value;
  }
  return sum;
}

/** S7: sessions to look at in reports (kept as flags, nothing refused). */
function flagInadequate(s: SessionState): void {
  const end = s.endedAt ?? s.energy.lastTs;
  if (end - s.startedAt < 5 * 60_000) addFlag(s, 'short');
  if (s.energy.energyWh < 5000) addFlag(s, 'low_energy');
  if (s.customerId === '') addFlag(s, 'no_customer');
  if (Number(s.cost.totalInclVat) === 0) addFlag(s, 'no_amount');
}

function scopes(s: SessionState) {
  return durations(
    s.startedAt,
    s.endedAt ?? s.energy.lastTs,
    s.initialStatus ?? 'Charging',
    s.statuses ?? [],
  );
}

/** Where a charger is: its site and the site's operator, stamped on sessions and CDRs. */
interface Place {
  readonly site_id: string;
  readonly operator_id: string;
}

function placeOf(index: NetworkIndex, chargerId: string): Place {
  const site = index.chargers.get(chargerId)?.site ?? '';
  return { site_id: site, operator_id: index.sites.get(site)?.operator ?? '' };
}

/**
 * Rows as one text, each ending in a newline (JSONEachRow). The last newline comes from an
 * empty element added to `rows`, so `join` makes one flat string: `join('\n') + '\n'` left a
 * rope, which the copy to the event loop flattened a second time (bench/micro/pipeline.bench.ts:
 * 350 reading rows built, joined and cloned in 420–480 µs against 480–600). Call it once a
 * list is complete.
 */
export function newlineRows(rows: string[]): string {
  if (rows.length === 0) return '';
  rows.push('');
  return rows.join('\n');
}

/**
 * The JSON text of sessions as their batch's closing row stored them (see output()), kept with
 * the packed session that leaves the batch so the held state is not written a second time.
 */
const stateTexts = new WeakMap<SessionState, string>();

/** A session's state as stored with its row and handed back: its compiled tariff left out. */
function stateText(s: SessionState): string {
  return JSON.stringify({ ...s, rating: packRating(s.rating) });
}

/**
 * A connector state's JSON text, as `JSON.stringify(state)` would write it (same values; the
 * keys in another order): a session that left its batch with a closing row reuses that row's
 * text — the state written once a batch, not twice.
 */
export function connectorStateText(state: ConnectorState): string {
  const text = state.session === null ? undefined : stateTexts.get(state.session);
  if (text === undefined) return JSON.stringify(state);
  const status = state.status === undefined ? '' : `,"status":${JSON.stringify(state.status)}`;
  return `{"appliedOffset":${state.appliedOffset},"session":${text}${status}}`;
}

function sessionRow(
  s: SessionState,
  place: Place,
  version: number,
  partition: number,
  state: string,
): string {
  const d = scopes(s);
  // The values of SESSION_COLUMNS, in order, up to the state.
  return sessionRowText(
    [
      s.sessionId,
      version,
      s.chargerId,
      place.site_id,
      place.operator_id,
      s.connectorId,
      s.transactionId,
      s.status,
      s.reason,
      s.customerId,
      s.tokenId,
      s.rating.tariffId,
      chTime(s.startedAt),
      s.endedAt === null ? null : chTime(s.endedAt),
      s.energy.energyWh.toFixed(3),
      d.chargingS,
      d.parkingS,
      d.faultS,
      d.reservationS,
      s.cost.totalExclVat,
      s.cost.totalVat,
      s.cost.totalInclVat,
      s.cost.currency,
      s.flags,
      s.ratingError ?? '',
    ],
    // Open sessions resume from it after a restart; failed ones are rated again from it (S8).
    state,
    partition,
  );
}

function cdrRow(
  s: SessionState,
  periods: readonly CdrPeriod[],
  place: Place,
  offset: number,
  partition: number,
): string {
  const lines = s.lines;
  const d = scopes(s);
  return JSON.stringify({
    cdr_id: `${s.sessionId}-1`,
    session_id: s.sessionId,
    kind: 'debit',
    credit_reference_id: '',
    charger_id: s.chargerId,
    ...place,
    connector_id: s.connectorId,
    customer_id: s.customerId,
    token_id: s.tokenId,
    tariff_id: s.rating.tariffId,
    started_at: chTime(s.startedAt),
    ended_at: chTime(s.endedAt ?? s.startedAt),
    energy_wh: s.energy.energyWh.toFixed(3),
    charging_s: d.chargingS,
    parking_s: d.parkingS,
    total_excl_vat: s.cost.totalExclVat,
    total_vat: s.cost.totalVat,
    total_incl_vat: s.cost.totalInclVat,
    currency: s.cost.currency,
    description: '',
    // R5.2: the signed start and end records, so the bill can be checked against the meter.
    signed_start: s.signedStart === undefined ? '' : JSON.stringify(s.signedStart),
    signed_end: s.signedEnd === undefined ? '' : JSON.stringify(s.signedEnd),
    charging_periods: JSON.stringify(periods),
    created_at: chTime(s.endedAt ?? s.startedAt),
    'lines.dimension': lines.map((l) => l.dimension),
    'lines.quantity': lines.map((l) => l.quantity),
    'lines.unit': lines.map((l) => l.unit),
    'lines.unit_price': lines.map((l) => l.unitPrice),
    'lines.vat_rate': lines.map((l) => l.vatRate),
    'lines.net': lines.map((l) => l.net),
    'lines.vat': lines.map((l) => l.vat),
    log_partition: partition,
    log_offset: offset,
  });
}

/** A readings row being built (READING_FRAMES): its shared columns, its readings so far. */
interface ReadingFrame {
  readonly offset: number;
  readonly sessionId: string;
  readonly ts: number;
  /** The shared columns and the opening of `r`. */
  readonly head: string;
  /** The readings' tuples, comma-separated. */
  readings: string;
  /** The signatures' tuples (`s`), once one of the readings is signed. */
  signatures: string | null;
  count: number;
}

/** The signature columns of an unsigned reading in a row whose other readings are signed. */
const UNSIGNED = '["","","",""]';

/** A string as a JSON literal. */
const q = (text: string): string => JSON.stringify(text);

/**
 * A reading's text but its value, in two parts: before it, `[measurand,phase,`, and after it,
 * `,unit,context,valid,reason]`, the words quoted. Kept by the words they are made of, a few
 * dozen texts, so a reading is three pieces instead of fifteen: the quoting, the strings made
 * piece by piece and their joining were about a fifth of a worker's time (bench/RESULTS.md).
 * The words are the decoded list's strings (event-codec.ts), whose hashes are kept. Bounded:
 * when chargers' made-up words (a 2.0.1 unit is free text) fill a level, it starts again.
 */
const heads = new Map<string, Map<string, string>>();
const tails = new Map<string, Map<string, Map<string, string>>>();
const MAX_TEXTS = 256;

function readingHead(measurand: string, phase: string): string {
  const byPhase = level(heads, measurand);
  let text = byPhase.get(phase);
  if (text === undefined) {
    text = `[${q(measurand)},${q(phase)},`;
    remember(byPhase, phase, text);
  }
  return text;
}

function readingTail(unit: string, context: string, rejectReason: string): string {
  const byReason = level(level(tails, unit), context);
  let text = byReason.get(rejectReason);
  if (text === undefined) {
    text = `,${q(unit)},${q(context)},${rejectReason === ''},${q(rejectReason)}]`;
    remember(byReason, rejectReason, text);
  }
  return text;
}

/** The map under `key`, made if missing. */
function level<T>(map: Map<string, Map<string, T>>, key: string): Map<string, T> {
  let next = map.get(key);
  if (next === undefined) {
    next = new Map<string, T>();
    remember(map, key, next);
  }
  return next;
}

function remember<T>(map: Map<string, T>, key: string, value: T): void {
  if (map.size >= MAX_TEXTS) map.clear();
  map.set(key, value);
}
