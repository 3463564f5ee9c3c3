import { connectorKey } from '../ocpp/events.js';

/**
 * The partition of a key: murmur2 of its UTF-8 bytes, made positive, modulo the partition
 * count — the function Kafka's Java client and kafkajs's default partitioner use, so the
 * embedded log and a Kafka topic with the same count put each connector in the same place.
 */
export function partitionFor(key: string, partitions: number): number {
  return (murmur2(key) & 0x7fffffff) % partitions;
}

/** A string of ASCII characters only: its UTF-8 bytes are its char codes. */
const ASCII = /^[\x00-\x7f]*$/;

/**
 * MurmurHash2, 32-bit, seed 0x9747b28c, as specified for Kafka key hashing, of bytes or of a
 * string's UTF-8 bytes. An ASCII string's bytes are its char codes, read in place: encoding it
 * into a Buffer first was 2.3 % of the event loop's busy time at the closed-loop maximum.
 */
export function murmur2(data: Uint8Array | string): number {
  if (typeof data !== 'string') return murmur2Of(data, (i) => data[i]!);
  if (ASCII.test(data)) return murmur2Of(data, (i) => data.charCodeAt(i));
  const bytes = Buffer.from(data, 'utf8');
  return murmur2Of(bytes, (i) => bytes[i]!);
}

function murmur2Of(data: { readonly length: number }, byteAt: (i: number) => number): number {
  const length = data.length;
  const m = 0x5bd1e995;
  const r = 24;
  let h = (0x9747b28c ^ length) | 0;
  const whole = length & ~3;
  for (let i = 0; i < whole; i += 4) {
    let k =
      (byteAt(i) & 0xff) |
      ((byteAt(i + 1) & 0xff) << 8) |
      ((byteAt(i + 2) & 0xff) << 16) |
      ((byteAt(i + 3) & 0xff) << 24);
    k = Math.imul(k, m);
    k ^= k >>> r;
    k = Math.imul(k, m);
    h = Math.imul(h, m);
    h ^= k;
  }
  switch (length & 3) {
    case 3:
      h ^= (byteAt(whole + 2) & 0xff) << 16;
    // falls through
    case 2:
      h ^= (byteAt(whole + 1) & 0xff) << 8;
    // falls through
    case 1:
      h ^= byteAt(whole) & 0xff;
      h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

/** A connector's key (connectorKey) and the partition its events go to. */
export interface Placement {
  readonly key: string;
  readonly partition: number;
}

/** Connector ids kept per charger; a charger sending higher ones (any UInt16) gets them made anew. */
const KEPT_CONNECTORS = 16;
/** Chargers kept: more than a gateway holds; past it the map starts again. */
const KEPT_CHARGERS = 200_000;

/**
 * Each connector's placement, kept by charger: a frame's is then a lookup by the connection's
 * charger id (whose hash the string keeps) instead of its key made and hashed anew, and the
 * events queued in the log share one key string per connector.
 */
export class Placements {
  readonly #partitions: number;
  readonly #byCharger = new Map<string, Array<Placement | undefined>>();

  constructor(partitions: number) {
    this.#partitions = partitions;
  }

  of(chargerId: string, connectorId: number): Placement {
    if (!(connectorId >= 0 && connectorId < KEPT_CONNECTORS && Number.isInteger(connectorId)))
      return this.#make(chargerId, connectorId);
    let kept = this.#byCharger.get(chargerId);
    if (kept === undefined) {
      if (this.#byCharger.size >= KEPT_CHARGERS) this.#byCharger.clear();
      kept = [];
      this.#byCharger.set(chargerId, kept);
    }
    return (kept[connectorId] ??= this.#make(chargerId, connectorId));
  }

  #make(chargerId: string, connectorId: number): Placement {
    const key = connectorKey(chargerId, connectorId);
    return { key, partition: partitionFor(key, this.#partitions) };
  }
}
