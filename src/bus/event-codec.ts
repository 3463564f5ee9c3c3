import { Packr, Unpackr } from 'msgpackr';
import type { ChargerEvent, Sample } from '../ocpp/events.js';
import type { LogEntry } from './bus.js';

/**
 * msgpack of events with shared shapes and words: each object shape's keys are kept in a list
 * this process grows as new shapes appear (msgpackr's shared structures), and the encoded
 * events refer to a shape by its place in the list instead of carrying its keys. So the events
 * of one partition can be encoded on their own and stay small, and a worker thread decodes
 * them with the list alone: the embedded log's bytes go to the workers as they are, instead of
 * the event objects by structured clone (bench/RESULTS.md).
 *
 * The readings' words — measurand, phase, unit, context — are kept the same way, in a second
 * list: a sample is written as a flat run of numbers, each word its place in the list
 * (`[ts, measurand, phase, value, unit, context, signed]` a sample, `signed` nil when unsigned),
 * about 120 bytes a meter value of five readings instead of 280. Decoded, the samples of every
 * event share the list's strings: a worker's lookups by word (the words quoted for the store's
 * rows) find their hash computed instead of hashing a fresh string at each reading, and the
 * strings are not decoded and collected at each event.
 *
 * The lists only grow, so bytes encoded with shorter lists decode with longer ones. Past
 * `MAX_SHARED_SHAPES` shapes, msgpackr writes a new shape's keys into the bytes themselves;
 * past `MAX_WORDS` words, a new word is written in its sample as text.
 */
export class EventPacker {
  readonly #shapes: string[][] = [];
  readonly #packr = new Packr({
    structures: this.#shapes,
    maxSharedStructures: MAX_SHARED_SHAPES,
    mapsAsObjects: true,
    moreTypes: false,
  });
  readonly #words: string[] = [];
  readonly #wordIds = new Map<string, number>();
  #json = '{"s":[],"w":[]}';
  #jsonVersion = 0;

  /** Flat runs reused from call to call: msgpackr copies them into its buffer. */
  readonly #flats: Flat[] = [];
  /** The events whose samples a call swapped for flat runs, and those samples. */
  readonly #lent: Array<{ samples: Sample[] }> = [];
  readonly #lentSamples: Sample[][] = [];
  /** The word last seen at each slot of a flat run and its place: frames repeat their order. */
  readonly #slotWords: string[] = [];
  readonly #slotIds: Array<number | string> = [];

  /**
   * The events' bytes; a view of the packer's buffer, valid until the next call. The events are
   * lent: their samples are swapped for flat runs while msgpackr writes them and put back
   * before this returns, so a call allocates no copy of an event, of its samples or of a run.
   */
  pack(events: readonly ChargerEvent[]): Uint8Array {
    let lent = 0;
    try {
      for (const event of events) {
        if (!('samples' in event) || event.samples.length === 0) continue;
        // Already lent: the same event twice in one call.
        if (typeof event.samples[0] !== 'object') continue;
        this.#lent[lent] = event;
        this.#lentSamples[lent] = event.samples;
        event.samples = this.#flat(lent, event.samples) as unknown as Sample[];
        lent += 1;
      }
      return this.#packr.pack(events);
    } finally {
      for (let i = 0; i < lent; i++) {
        this.#lent[i]!.samples = this.#lentSamples[i]!;
        this.#lentSamples[i] = NO_SAMPLES;
        this.#lent[i] = NO_OWNER;
      }
    }
  }

  /** How many shapes the list holds. */
  get shapeCount(): number {
    return this.#shapes.length;
  }

  /** Grows with either list: the lists (`shapes`) are to be written again when it changed. */
  get listVersion(): number {
    return this.#shapes.length + this.#words.length;
  }

  /** The shapes and words lists as JSON, which `EventUnpacker` decodes with. */
  get shapes(): string {
    if (this.#jsonVersion !== this.listVersion) {
      this.#json = JSON.stringify({ s: this.#shapes.map((keys) => [...keys]), w: this.#words });
      this.#jsonVersion = this.listVersion;
    }
    return this.#json;
  }

  #flat(index: number, samples: readonly Sample[]): Flat {
    const flat = (this.#flats[index] ??= []);
    flat.length = samples.length * SLOTS;
    let k = 0;
    for (const sample of samples) {
      flat[k] = sample.ts;
      flat[k + 1] = this.#word(sample.measurand, k + 1);
      flat[k + 2] = this.#word(sample.phase, k + 2);
      flat[k + 3] = sample.value;
      flat[k + 4] = this.#word(sample.unit, k + 4);
      flat[k + 5] = this.#word(sample.context, k + 5);
      flat[k + 6] = sample.signed ?? null;
      k += SLOTS;
    }
    return flat;
  }

  /**
   * The word's place in the list (the word itself past MAX_WORDS). A frame's words are fresh
   * strings, so a lookup by them hashes each: the word last seen at the same slot is compared
   * first, and chargers send their measurands in the same order frame after frame.
   */
  #word(word: string, slot: number): number | string {
    if (this.#slotWords[slot] === word) return this.#slotIds[slot]!;
    let id: number | string | undefined = this.#wordIds.get(word);
    if (id === undefined) {
      if (this.#words.length >= MAX_WORDS) return word;
      id = this.#words.length;
      this.#words.push(word);
      this.#wordIds.set(word, id);
    }
    if (slot < MAX_SLOT_CACHE) {
      this.#slotWords[slot] = word;
      this.#slotIds[slot] = id;
    }
    return id;
  }
}

type Flat = Array<number | string | Sample['signed'] | null>;
const NO_SAMPLES: Sample[] = [];
const NO_OWNER = { samples: NO_SAMPLES };
/** A sample's slots in the flat run: ts, measurand, phase, value, unit, context, signed. */
const SLOTS = 7;
/** Slots of the first samples of an event whose last word is remembered. */
const MAX_SLOT_CACHE = 16 * SLOTS;

/** Decodes what an EventPacker encoded, given its lists (as JSON) at that time or later. */
export class EventUnpacker {
  #shapes = '';
  #unpackr: Unpackr | null = null;
  #words: readonly string[] = [];

  unpack(shapes: string, bytes: Uint8Array): ChargerEvent[] {
    if (this.#unpackr === null || shapes !== this.#shapes) {
      const lists = JSON.parse(shapes) as string[][] | { s: string[][]; w: string[] };
      // Records written before the words list carry the shapes list alone.
      const structures = Array.isArray(lists) ? lists : lists.s;
      this.#words = Array.isArray(lists) ? [] : lists.w;
      this.#unpackr = new Unpackr({
        structures,
        maxSharedStructures: MAX_SHARED_SHAPES,
        mapsAsObjects: true,
        moreTypes: false,
      });
      this.#shapes = shapes;
    }
    const events = this.#unpackr.unpack(bytes) as ChargerEvent[];
    for (const event of events) {
      if (!('samples' in event)) continue;
      const flat = event.samples as unknown[];
      // Samples as objects: written before the words list.
      if (flat.length > 0 && typeof flat[0] === 'number') event.samples = this.#samples(flat);
    }
    return events;
  }

  #samples(flat: readonly unknown[]): Sample[] {
    const words = this.#words;
    const word = (x: unknown) => (typeof x === 'number' ? words[x]! : (x as string));
    const samples = new Array<Sample>(flat.length / SLOTS);
    for (let k = 0, i = 0; k < flat.length; k += SLOTS, i++) {
      const sample: Sample = {
        ts: flat[k] as number,
        measurand: word(flat[k + 1]),
        phase: word(flat[k + 2]),
        value: flat[k + 3] as number,
        unit: word(flat[k + 4]),
        context: word(flat[k + 5]),
      };
      const signed = flat[k + 6] as Sample['signed'] | null;
      if (signed !== null) sample.signed = signed;
      samples[i] = sample;
    }
    return samples;
  }
}

/** Words shared by their place in the list; chargers' made-up words past it go as text. */
export const MAX_WORDS = 4096;

/** Runs of encoded events of one partition, as the embedded log hands them over. */
export interface EncodedRuns {
  /** The runs' bytes, one after the other. */
  readonly bytes: Uint8Array;
  /** Each run: its first offset, its events, where its bytes end in `bytes`. */
  readonly runs: ReadonlyArray<readonly [offset: number, count: number, end: number]>;
  /** The shapes and words lists (JSON) the bytes decode with. */
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
