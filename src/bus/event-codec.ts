import { Packr, Unpackr } from 'msgpackr';
import type { ChargerEvent } from '../ocpp/events.js';
import type { LogEntry } from './bus.js';

/**
 * msgpack of events with shared shapes: each object shape's keys are kept in a list this
 * process grows as new shapes appear (msgpackr's shared structures), and the encoded events
 * refer to a shape by its place in the list instead of carrying its keys. So the events of
 * one partition can be encoded on their own and stay small (about 280 bytes a meter value,
 * as with keys written once per log record), and a worker thread decodes them with the list
 * alone: the embedded log's bytes go to the workers as they are, instead of the event
 * objects by structured clone (bench/RESULTS.md).
 *
 * The list only grows, so bytes encoded with a shorter list decode with a longer one. Past
 * `MAX_SHARED_SHAPES` shapes, msgpackr writes a new shape's keys into the bytes themselves.
 */
export class EventPacker {
  readonly #shapes: string[][] = [];
  readonly #packr = new Packr({
    structures: this.#shapes,
    maxSharedStructures: MAX_SHARED_SHAPES,
    mapsAsObjects: true,
    moreTypes: false,
  });
  #json = '[]';
  #jsonShapes = 0;

  /** The events' bytes; a view of the packer's buffer, valid until the next call. */
  pack(events: readonly ChargerEvent[]): Uint8Array {
    return this.#packr.pack(events);
  }

  /** How many shapes the list holds. */
  get shapeCount(): number {
    return this.#shapes.length;
  }

  /** The shapes list as JSON, which `EventUnpacker` decodes with. */
  get shapes(): string {
    if (this.#jsonShapes !== this.#shapes.length) {
      this.#json = JSON.stringify(this.#shapes.map((keys) => [...keys]));
      this.#jsonShapes = this.#shapes.length;
    }
    return this.#json;
  }
}

/** Decodes what an EventPacker encoded, given its shapes list (as JSON) at that time or later. */
export class EventUnpacker {
  #shapes = '';
  #unpackr: Unpackr | null = null;

  unpack(shapes: string, bytes: Uint8Array): ChargerEvent[] {
    if (this.#unpackr === null || shapes !== this.#shapes) {
      this.#unpackr = new Unpackr({
        structures: JSON.parse(shapes) as string[][],
        maxSharedStructures: MAX_SHARED_SHAPES,
        mapsAsObjects: true,
        moreTypes: false,
      });
      this.#shapes = shapes;
    }
    return this.#unpackr.unpack(bytes) as ChargerEvent[];
  }
}

/** Runs of encoded events of one partition, as the embedded log hands them over. */
export interface EncodedRuns {
  /** The runs' bytes, one after the other. */
  readonly bytes: Uint8Array;
  /** Each run: its first offset, its events, where its bytes end in `bytes`. */
  readonly runs: ReadonlyArray<readonly [offset: number, count: number, end: number]>;
  /** The shapes list (JSON) the bytes decode with. */
  readonly shapes: string;
}

/** The events of encoded runs, with their offsets. */
export function decodeRuns(encoded: EncodedRuns, unpacker: EventUnpacker): LogEntry[] {
  const entries: LogEntry[] = [];
  let from = 0;
  for (const [offset, , end] of encoded.runs) {
    const events = unpacker.unpack(encoded.shapes, encoded.bytes.subarray(from, end));
    for (let i = 0; i < events.length; i++) entries.push({ offset: offset + i, event: events[i]! });
    from = end;
  }
  return entries;
}

/** msgpackr's one-byte shape ids: a few kinds of event, each with its optional fields. */
export const MAX_SHARED_SHAPES = 32;
