import type { LogEntry } from '../bus/bus.js';
import type { EncodedRuns } from '../bus/event-codec.js';
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
 * A batch as it travels to a worker: the states as their texts; the events as objects (from
 * Kafka) or as the embedded log's bytes, which the worker decodes.
 */
export interface TaskInput extends Omit<BatchInput, 'states' | 'entries'> {
  readonly states: Readonly<Record<string, string>>;
  readonly entries?: BatchInput['entries'];
  readonly encoded?: EncodedRuns;
  /** Sessions whose retry events in the batch are stale (S8: no longer failed). */
  readonly stale?: readonly string[];
}

/** The entries with each retry event of a session in `stale` marked stale (S8). */
export function markStale(
  entries: readonly LogEntry[],
  stale: readonly string[],
): readonly LogEntry[] {
  if (stale.length === 0) return entries;
  return entries.map((entry) =>
    entry.event.kind === 'retry' && stale.includes(entry.event.sessionId)
      ? { offset: entry.offset, event: { ...entry.event, stale: true } }
      : entry,
  );
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
