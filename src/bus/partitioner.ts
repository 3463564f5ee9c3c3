/**
 * The partition of a key: murmur2 of its UTF-8 bytes, made positive, modulo the partition
 * count — the function Kafka's Java client and kafkajs's default partitioner use, so the
 * embedded log and a Kafka topic with the same count put each connector in the same place.
 */
export function partitionFor(key: string, partitions: number): number {
  return (murmur2(Buffer.from(key, 'utf8')) & 0x7fffffff) % partitions;
}

/** MurmurHash2, 32-bit, seed 0x9747b28c, as specified for Kafka key hashing. */
export function murmur2(data: Uint8Array): number {
  const length = data.length;
  const m = 0x5bd1e995;
  const r = 24;
  let h = (0x9747b28c ^ length) | 0;
  const whole = length & ~3;
  for (let i = 0; i < whole; i += 4) {
    let k =
      (data[i]! & 0xff) |
      ((data[i + 1]! & 0xff) << 8) |
      ((data[i + 2]! & 0xff) << 16) |
      ((data[i + 3]! & 0xff) << 24);
    k = Math.imul(k, m);
    k ^= k >>> r;
    k = Math.imul(k, m);
    h = Math.imul(h, m);
    h ^= k;
  }
  switch (length & 3) {
    case 3:
      h ^= (data[whole + 2]! & 0xff) << 16;
    // falls through
    case 2:
      h ^= (data[whole + 1]! & 0xff) << 8;
    // falls through
    case 1:
      h ^= data[whole]! & 0xff;
      h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}
