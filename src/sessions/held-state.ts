import { Packr } from 'msgpackr';
import {
  connectorStateText,
  type BatchInput,
  type BatchOutput,
  type ConnectorState,
  type SessionStatus,
} from './process-batch.js';

/**
 * A connector's state as the processor keeps it between batches: its JSON text, which the
 * worker parses and writes anew, and the few facts of its open session the processor reads
 * itself. A string crosses to a worker thread and back as one copy; an object graph is
 * serialized and rebuilt on the gateway's event loop at every batch (measured on batches of
 * 64 sessions: 8.5 µs an event of the event loop's time for the states, 0.3 µs as text).
 */
export interface HeldState {
  readonly text: string;
  readonly session: OpenSession;
}

/** What the processor reads of an open session: expirations (S2, S3), the gateway's restart. */
export interface OpenSession {
  readonly chargerId: string;
  readonly connectorId: number;
  readonly transactionId: string;
  readonly tokenId: string;
  readonly status: SessionStatus;
  readonly startedAt: number;
  readonly lastEventAt: number;
  readonly startWh: number | null;
}

/**
 * A batch as it travels to a worker: the events msgpack-encoded (packEntries), the states as
 * their texts.
 */
export interface TaskInput extends Omit<BatchInput, 'states' | 'entries'> {
  readonly entries: Uint8Array;
  readonly states: Readonly<Record<string, string>>;
}

/**
 * Records, as the logs write events: each shape's keys once per batch. Measured on 128 events
 * of three shapes (1.6 MeterValues, 2.0.1 TransactionEvent, StatusNotification;
 * bench/micro/pipeline.bench.ts, 3 runs): the worker thread decodes them in 0.75–1.2 µs an
 * event, against 5.0–6.9 µs to rebuild them from a structured clone; the event loop encodes
 * them in 3.3–4.0 µs (one run 7.2), against 2.6–3.0 to serialize them for the clone. About a
 * microsecond more on the event loop for five less on the worker, which at the engine's
 * maximum is the pipeline's busiest thread after it.
 */
const taskPackr = new Packr({ useRecords: true, mapsAsObjects: true, moreTypes: false });

/**
 * A batch's events for a worker: bytes of their own (the encoder's buffer is reused), so
 * that they can be moved to the thread rather than copied.
 */
export function packEntries(entries: BatchInput['entries']): Uint8Array<ArrayBuffer> {
  return new Uint8Array(taskPackr.pack(entries));
}

/** The events of packEntries' bytes (read through a Buffer view: msgpackr reads text faster). */
export function unpackEntries(bytes: Uint8Array): BatchInput['entries'] {
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return taskPackr.unpack(view) as BatchInput['entries'];
}

/** A batch's outcome as it travels back: null for a connector with no open session left. */
export interface TaskOutput extends Omit<BatchOutput, 'states'> {
  readonly states: Readonly<Record<string, HeldState | null>>;
  /** The task's states the worker thread still held as objects, and those it parsed (ResidentStates). */
  readonly statesKept: number;
  readonly statesParsed: number;
}

/** The held form of a connector's state; null without an open session (the store has it). */
export function hold(state: ConnectorState): HeldState | null {
  const s = state.session;
  if (s === null) return null;
  return {
    text: connectorStateText(state),
    session: {
      chargerId: s.chargerId,
      connectorId: s.connectorId,
      transactionId: s.transactionId,
      tokenId: s.tokenId,
      status: s.status,
      startedAt: s.startedAt,
      lastEventAt: s.lastEventAt,
      startWh: s.energy.startWh,
    },
  };
}

/**
 * A worker thread's own copies of the states it handed back, as the objects they were
 * written from. The processor sends each partition's batches to one thread, so a connector's
 * next batch usually brings back the very text this thread wrote, and the object is taken up
 * as it is instead of that text being parsed again (a worker task of one event per session
 * 11–14 % faster, bench/RESULTS.md). The text stays what the processor holds
 * and what the store keeps; any other text (another thread's, a state loaded from the store,
 * a retry) is parsed as before. A batch takes its entries out, so one that throws half-way
 * leaves no changed object behind.
 */
export class ResidentStates {
  readonly #kept = new Map<string, { readonly text: string; readonly state: ConnectorState }>();

  /**
   * The task's states as objects: this thread's own where the text is the one it wrote
   * (`kept` of them), the others parsed (`parsed`; a new instance parses them all).
   */
  take(states: Readonly<Record<string, string>>): {
    states: Record<string, ConnectorState>;
    kept: number;
    parsed: number;
  } {
    const objects: Record<string, ConnectorState> = {};
    let kept = 0;
    let parsed = 0;
    for (const [key, text] of Object.entries(states)) {
      const own = this.#kept.get(key);
      this.#kept.delete(key);
      if (own?.text === text) {
        objects[key] = own.state;
        kept += 1;
      } else {
        objects[key] = JSON.parse(text) as ConnectorState;
        parsed += 1;
      }
    }
    return { states: objects, kept, parsed };
  }

  /** Keeps a batch's output states with the texts they leave as (`held`, from holdAll). */
  keep(
    states: Readonly<Record<string, ConnectorState>>,
    held: Readonly<Record<string, HeldState | null>>,
  ): void {
    for (const [key, h] of Object.entries(held)) {
      if (h === null) this.#kept.delete(key);
      else this.#kept.set(key, { text: h.text, state: states[key]! });
    }
  }

  /** Connectors whose state this thread keeps. */
  get size(): number {
    return this.#kept.size;
  }
}

/** A batch's output states, held (in the worker, before they travel back). */
export function holdAll(
  states: Readonly<Record<string, ConnectorState>>,
): Record<string, HeldState | null> {
  const held: Record<string, HeldState | null> = {};
  for (const [key, state] of Object.entries(states)) held[key] = hold(state);
  return held;
}
