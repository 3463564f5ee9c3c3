import {
  constants,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writevSync,
} from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { Packr } from 'msgpackr';
import { ChargestreamError } from '../lib/errors.js';
import type { ChargerEvent } from '../ocpp/events.js';
import {
  mayHandOver,
  type BatchHandler,
  type Bus,
  type BusStats,
  type EncodedBatch,
  type EncodedBatchHandler,
} from './bus.js';
import { decodeRuns, EventPacker, EventUnpacker } from './event-codec.js';
import { Placements } from './partitioner.js';

export interface EmbeddedLogOptions {
  readonly partitions: number;
  /** Each group commit on disk before acknowledging (segments opened O_DSYNC). */
  readonly fsync: boolean;
  /** Most events handed to the processor in one batch. */
  readonly batchSize: number;
  /** Events accepted but not handled before publishers wait (backpressure to the gateway). */
  readonly maxLag?: number;
  /** Size at which the active segment is rolled; with fsync, each segment is zero-filled to it first. */
  readonly segmentBytes?: number;
  /**
   * Called when a write or sync fails. After a failed fdatasync nothing later can be trusted
   * to be on disk, so the embedded deployment stops (crash-only): a restart replays the log
   * up to its last intact record, and nothing acknowledged is lost.
   */
  readonly onFatal?: (error: Error) => void;
  /** Told the duration of each group commit's write, for /metrics. */
  readonly observeWrite?: (seconds: number) => void;
  /**
   * About the least milliseconds between the starts of two group commits (0: each write as
   * soon as the event loop turns). Frames arriving meanwhile join the next record: fewer,
   * larger writes. Timers count whole milliseconds, and a wait under half a millisecond is
   * not taken; records published while a write rolls the segment follow it at once.
   */
  readonly commitIntervalMs?: number;
  /**
   * About the least milliseconds between two batches of one partition handed to the
   * processor (0: each as soon as the previous one is done). Events arriving meanwhile join
   * the next batch: fewer, larger batches, each session's state and row written once for
   * more of its readings. A full batch (`batchSize`) and a batch with a transaction's stop
   * (a 2.0.1 Ended answer waits for its rating) go at once. The partitions' turns are spread
   * evenly over the interval, so the batches do not all arrive at the workers together.
   */
  readonly batchLingerMs?: number;
}

/**
 * The in-process partitioned log of the embedded deployment: Kafka's role in one process.
 *
 * Appends are group-committed: the events published in one turn of the event loop go into
 * one record, one synchronous write (O_DSYNC) for all of them, so the cost of durability is
 * paid per record, not per event. Writes are spaced about `commitIntervalMs` apart, start to
 * start (the engine's default 2 ms): with many chargers each sending now and then, most turns
 * carry one or two frames, and each write costs this machine 110–160 µs of CPU whatever it
 * holds (10,000 chargers at 2,500 frames/s, without the interval: about 1,500 writes a
 * second, half of the event loop's CPU; bench/RESULTS.md). A record holds events of any
 * partitions; each event carries its partition and its offset in that partition, so a
 * restart replays each partition from the offset the store committed.
 *
 * Segment file layout, one record after another:
 *
 *   ┌────────────┬────────────┬──────────────────────────────────────────────────────────┐
 *   │ length u32 │ crc32  u32 │ body                                                     │
 *   └────────────┴────────────┴──────────────────────────────────────────────────────────┘
 *
 *   body: 0xc1 │ lists length u32 │ lists (JSON, when one grew) │ runs
 *   run:  partition u16 │ first offset f64 │ events u32 │ bytes u32 │ events (EventPacker)
 *
 * A record holds one run of consecutive offsets for each partition it has events of, encoded
 * with the lists of shapes and of readings' words (event-codec.ts; records written before the
 * words list carry the shapes alone); the first record of a segment, and each record after a
 * list grew, carry the whole lists, so a segment decodes on its own. The runs are queued
 * as they were written and reach the processor's workers as bytes, never decoded on the event
 * loop. Records written before runs (a msgpack array of [partition, offset, event], 0xc1 being
 * a byte msgpack never writes) replay too.
 *
 * A torn record at the tail (a crash mid-write) fails its CRC and ends the replay of that
 * segment; it was never acknowledged. Segments whose events are all committed are deleted.
 *
 * With fsync, a segment is created at its full size, zero-filled and synced before its first
 * record (the next one is prepared while the active one fills): a synchronous write then
 * overwrites blocks the file already has, and the file system commits no metadata with it
 * (measured here: 480–500 → 260–290 µs a write, 250 → 160–180 µs of CPU). A zero length ends
 * the records of a segment; no record is empty.
 *
 * The write blocks the event loop for its duration (a quarter to half a millisecond here),
 * as a database's synchronous commit does: frames arriving meanwhile wait in the socket
 * buffers and join the next record, so records grow with the load. Through libuv's pool the
 * same write cost twice the CPU (two thread wake-ups a write on this virtual machine) and
 * waited for a pool thread behind the store's inserts: at 5,000 frames/s the acknowledgement
 * p99 was about twice as high (bench/RESULTS.md). A disk that stalls now stalls the gateway's
 * other answers too (heartbeats, status), for as long as the write takes.
 */
export class EmbeddedLog implements Bus {
  readonly partitions: number;
  readonly #dir: string;
  readonly #options: Required<EmbeddedLogOptions>;
  /** Events into runs' bytes: each shape's keys kept once, in a list the records carry. */
  readonly #packer = new EventPacker();
  readonly #placements: Placements;
  /** Reads records written before runs: msgpackr records, or plain maps before those. */
  readonly #oldRecords = new Packr({ useRecords: true, mapsAsObjects: true, moreTypes: false });
  readonly #next: number[];
  readonly #committed: number[];
  readonly #queues: Array<{
    runs: Run[];
    head: number;
    /** Events of the runs from `head` on. */
    queued: number;
    busy: boolean;
    failures: number;
    /** Batches processed whose rows the store does not hold yet. */
    unstored: number;
    /** With a linger: when the partition's next batch may go (performance.now() time). */
    dueAt: number;
    /** A stop is queued: the next batch goes without waiting for its turn. */
    urgent: boolean;
    /** Drives the partition at its turn. */
    timer: NodeJS.Timeout | null;
  }>;
  readonly #segments: Segment[] = [];
  #active: {
    handle: FileHandle;
    segment: Segment;
    bytes: number;
    /** The lists' version (`listVersion`) the segment's records carry so far (-1: none yet). */
    listVersion: number;
  } | null = null;
  /** The next segment, created and zero-filled while the active one fills (fsync only). */
  #spare: Promise<Spare> | null = null;
  #pending: Array<[partition: number, offset: number, event: ChargerEvent, connector: string]> = [];
  #pendingWaiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  #writing = false;
  #lastWriteAt = -Infinity;
  #handler: EncodedBatchHandler | null = null;
  #lag = 0;
  #capacityWaiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  #closed = false;
  #failure: Error | null = null;
  readonly stats: BusStats = { produced: 0, consumed: 0, parked: 0 };

  private constructor(
    dir: string,
    options: Required<EmbeddedLogOptions>,
    committed: readonly number[],
  ) {
    this.#dir = dir;
    this.#options = options;
    this.partitions = options.partitions;
    this.#placements = new Placements(options.partitions);
    this.#committed = [...committed];
    this.#next = [...committed];
    // The partitions' first turns spread over one linger interval.
    const now = performance.now();
    this.#queues = Array.from({ length: options.partitions }, (_, p) => ({
      runs: [],
      head: 0,
      queued: 0,
      busy: false,
      failures: 0,
      unstored: 0,
      dueAt: now + (p * options.batchLingerMs) / options.partitions,
      urgent: false,
      timer: null,
    }));
  }

  /**
   * Opens the log in `dir` and queues, for each partition, every stored event at or after
   * `committed` (the next offset the store has not seen).
   */
  static async open(
    dir: string,
    options: EmbeddedLogOptions,
    committed: ReadonlyMap<number, number>,
  ): Promise<EmbeddedLog> {
    mkdirSync(dir, { recursive: true });
    checkMeta(dir, options.partitions);
    const full: Required<EmbeddedLogOptions> = {
      maxLag: 200_000,
      segmentBytes: 16 * 1024 * 1024,
      onFatal: () => undefined,
      observeWrite: () => undefined,
      commitIntervalMs: 0,
      batchLingerMs: 0,
      ...options,
    };
    const log = new EmbeddedLog(
      dir,
      full,
      Array.from({ length: options.partitions }, (_, p) => committed.get(p) ?? 0),
    );
    log.#replay();
    await log.#roll();
    return log;
  }

  publish(event: ChargerEvent): Promise<void> {
    return new Promise<void>((resolve, reject) => this.publishThen(event, resolve, reject));
  }

  publishThen(event: ChargerEvent, durable: () => void, failed: (error: Error) => void): void {
    if (this.#closed) {
      queueMicrotask(() =>
        failed(new ChargestreamError('BUS_CLOSED', 'the embedded log is closed')),
      );
      return;
    }
    const failure = this.#failure;
    if (failure !== null) {
      queueMicrotask(() => failed(failure));
      return;
    }
    if (this.#lag >= this.#options.maxLag) {
      this.#capacityWaiters.push({
        resolve: () => this.publishThen(event, durable, failed),
        reject: failed,
      });
      return;
    }
    const { key: connector, partition } = this.#placements.of(event.chargerId, event.connectorId);
    const offset = this.#next[partition]!;
    this.#next[partition] = offset + 1;
    this.#lag += 1;
    this.#pending.push([partition, offset, event, connector]);
    this.#pendingWaiters.push({ resolve: durable, reject: failed });
    if (!this.#writing) {
      this.#writing = true;
      // Let the other frames of this event-loop turn, and of the commit interval, join the
      // same record.
      const wait = this.#lastWriteAt + this.#options.commitIntervalMs - performance.now();
      if (wait >= 0.5) setTimeout(() => void this.#flush(), wait);
      else setImmediate(() => void this.#flush());
    }
  }

  /** Batches as events, decoded here (tests, tools); the engine's processor takes them as bytes. */
  consume(handler: BatchHandler): Promise<void> {
    const unpacker = new EventUnpacker();
    return this.consumeEncoded(async (partition, batch) =>
      handler(partition, decodeRuns(batch, unpacker)),
    );
  }

  /** Batches as the log holds them: the events' bytes, for the workers to decode. */
  consumeEncoded(handler: EncodedBatchHandler): Promise<void> {
    this.#handler = handler;
    for (let p = 0; p < this.partitions; p++) this.#drive(p);
    return Promise.resolve();
  }

  lag(): number {
    return this.#lag;
  }

  partitionLag(): ReadonlyMap<number, number> {
    const lag = new Map<number, number>();
    for (let p = 0; p < this.partitions; p++) lag.set(p, this.#next[p]! - this.#committed[p]!);
    return lag;
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const queue of this.#queues) {
      if (queue.timer !== null) clearTimeout(queue.timer);
      queue.timer = null;
    }
    for (const w of this.#capacityWaiters.splice(0))
      w.reject(new ChargestreamError('BUS_CLOSED', 'the embedded log is closed'));
    while (this.#writing) await new Promise((r) => setTimeout(r, 1));
    await this.#active?.handle.close();
    this.#active = null;
    // The prepared segment holds nothing yet: removed, the next start prepares its own.
    const spare = await this.#spare?.catch(() => null);
    this.#spare = null;
    if (spare != null) {
      await spare.handle.close();
      rmSync(spare.path, { force: true });
    }
  }

  async #flush(): Promise<void> {
    while (this.#pending.length > 0) {
      const records = this.#pending;
      const waiters = this.#pendingWaiters;
      this.#pending = [];
      this.#pendingWaiters = [];
      let runs: Array<[number, Run]>;
      try {
        if (this.#failure !== null) throw this.#failure;
        runs = await this.#write(records);
      } catch (cause) {
        // After a failed write or sync nothing more is appended: these records are not
        // acknowledged, and the owner is told to stop (see onFatal).
        const first = this.#failure === null;
        const error =
          this.#failure ??
          new ChargestreamError('BUS_CLOSED', 'the embedded log could not be written', { cause });
        this.#failure = error;
        this.#lag -= records.length;
        for (const w of waiters) settle(() => w.reject(error));
        if (first) this.#options.onFatal(error);
        continue;
      }
      for (const [partition, run] of runs) this.#enqueue(partition, run);
      this.stats.produced += records.length;
      for (const w of waiters) settle(w.resolve);
      for (const [partition] of runs) this.#drive(partition);
    }
    this.#writing = false;
  }

  /** Writes the records' events as one log record; their runs, to be queued, once it is on disk. */
  async #write(
    records: ReadonlyArray<[number, number, ChargerEvent, string]>,
  ): Promise<Array<[number, Run]>> {
    let active = this.#active;
    if (active === null || active.bytes >= this.#options.segmentBytes) {
      await this.#roll();
      active = this.#active!;
    }
    // Each partition's events are consecutive offsets here: one run each.
    const groups = new Map<number, RunBuilder>();
    for (const [partition, offset, event, connector] of records) {
      let group = groups.get(partition);
      if (group === undefined) groups.set(partition, (group = new RunBuilder(offset)));
      group.add(event, connector);
    }
    const runs: Array<[number, Run]> = [];
    const runParts: Buffer[] = [];
    for (const [partition, group] of groups) {
      for (const run of group.split(this.#options.batchSize, this.#packer)) {
        const head = Buffer.allocUnsafe(RUN_HEADER);
        head.writeUInt16LE(partition, 0);
        head.writeDoubleLE(run.offset, 2);
        head.writeUInt32LE(run.count, 10);
        head.writeUInt32LE(run.bytes.length, 14);
        runParts.push(head, run.bytes);
        runs.push([partition, run]);
      }
    }
    // The lists, in the segment's first record and whenever packing these runs grew one.
    const shapes =
      this.#packer.listVersion === active.listVersion ? null : Buffer.from(this.#packer.shapes);
    const lead = Buffer.allocUnsafe(5);
    lead[0] = RUNS_RECORD;
    lead.writeUInt32LE(shapes?.length ?? 0, 1);
    const parts = shapes === null ? [lead, ...runParts] : [lead, shapes, ...runParts];
    let length = 0;
    let crc = 0;
    for (const part of parts) {
      length += part.length;
      crc = crc32(part, crc);
    }
    const header = Buffer.allocUnsafe(8);
    header.writeUInt32LE(length, 0);
    header.writeUInt32LE(crc, 4);
    // With fsync on, segments are opened O_DSYNC: the write returns once the data is on disk.
    // It is made on the event loop, not on libuv's pool: the hop to a pool thread and back
    // cost about 100 µs of CPU a write here, more than the write itself, and queued the
    // write behind the store's inserts, which run on the same pool (see the class comment).
    const started = performance.now();
    this.#lastWriteAt = started;
    const written = writevSync(active.handle.fd, [header, ...parts], active.bytes);
    this.#options.observeWrite((performance.now() - started) / 1000);
    if (written !== header.length + length) {
      throw new ChargestreamError(
        'BUS_CLOSED',
        `${active.segment.path}: ${written} of a record's ${header.length + length} bytes written`,
      );
    }
    active.bytes += written;
    active.listVersion = this.#packer.listVersion;
    for (const [partition, run] of runs) {
      const max = active.segment.maxOffsets;
      max[partition] = Math.max(max[partition] ?? -1, run.offset + run.count - 1);
    }
    return runs;
  }

  /** Queues a run for its partition's next batch; a stop makes that batch urgent. */
  #enqueue(partition: number, run: Run): void {
    const queue = this.#queues[partition]!;
    queue.runs.push(run);
    queue.queued += run.count;
    if (run.stop) queue.urgent = true;
  }

  /** Hands the partition's next batch to the handler unless one is in flight. */
  #drive(partition: number): void {
    const queue = this.#queues[partition]!;
    const handler = this.#handler;
    if (handler === null || queue.busy || queue.head >= queue.runs.length) return;
    // Processing may run ahead of the store by this many batches, no more. The next batch is
    // full (cut at the batch size, below) exactly when more than a batch is queued; it is
    // taken as holding a stop while one is queued (`urgent`).
    const full = queue.queued > this.#options.batchSize;
    if (!mayHandOver(queue.unstored, { full, stop: queue.urgent })) return;
    if (this.#lingers(partition)) return;
    const start = queue.head;
    // Whole runs (none larger than a batch), up to the batch size.
    let end = start + 1;
    let count = queue.runs[start]!.count;
    while (end < queue.runs.length && count + queue.runs[end]!.count <= this.#options.batchSize) {
      count += queue.runs[end]!.count;
      end += 1;
    }
    // A stop further back than this batch reaches keeps the next one urgent too.
    if (!full) queue.urgent = false;
    const batch = encodeBatch(queue.runs, start, end, count, full, this.#packer.shapes);
    const next = batch.lastOffset + 1;
    queue.head = end;
    queue.queued -= count;
    queue.busy = true;
    handler(partition, batch).then(
      (handled) => {
        queue.busy = false;
        queue.failures = 0;
        // Handled: its events may go (the store's write needs only their rows; a failed batch
        // stays queued, below, to be handed over again). The handled part is cut off once it is
        // half the queue or more: at nearly every batch while the partition keeps up, without
        // copying a long backlog at each one. Kept until 4,096 more had passed on the
        // partition, events held about 50 MiB more at 5,000 frames/s (peak RSS, RESULTS.md).
        if (queue.head * 2 >= queue.runs.length) {
          queue.runs = queue.runs.slice(queue.head);
          queue.head = 0;
        }
        const stored = () => {
          this.#committed[partition] = Math.max(this.#committed[partition]!, next);
          this.stats.consumed += count;
          this.#release(count);
          this.#retire();
        };
        if (handled === undefined) {
          stored();
        } else {
          // The next batch is processed while this one's rows are written; the partition
          // counts as committed only up to what the store holds.
          queue.unstored += 1;
          handled.stored.then(
            () => {
              queue.unstored -= 1;
              stored();
              this.#drive(partition);
            },
            () => undefined, // only when stopping: replayed at the next start
          );
        }
        this.#drive(partition);
      },
      () => {
        // Never skip a batch: the partition stops at it and retries, with backoff, until it
        // goes through (or the log closes; then the next start replays it).
        queue.busy = false;
        if (this.#closed) return;
        queue.head = start;
        queue.queued += count;
        queue.failures += 1;
        const wait = Math.min(10_000, 50 * 2 ** Math.min(queue.failures, 8));
        setTimeout(() => this.#drive(partition), wait).unref();
      },
    );
  }

  /**
   * Whether the partition's batch waits for its turn (batchLingerMs); if so, the partition is
   * driven again then. Turns keep their spacing while the partition is busy; one idle for
   * longer than an interval gets its batch at once and its next turn an interval later.
   */
  #lingers(partition: number): boolean {
    const linger = this.#options.batchLingerMs;
    const queue = this.#queues[partition]!;
    if (linger <= 0 || queue.urgent) return false;
    if (queue.queued >= this.#options.batchSize) return false;
    const now = performance.now();
    if (now < queue.dueAt) {
      queue.timer ??= setTimeout(() => {
        queue.timer = null;
        this.#drive(partition);
      }, queue.dueAt - now).unref();
      return true;
    }
    queue.dueAt = queue.dueAt + linger > now ? queue.dueAt + linger : now + linger;
    return false;
  }

  #release(count: number): void {
    this.#lag -= count;
    // Wake only as many waiting publishers as there are free places.
    const free = this.#options.maxLag - this.#lag;
    for (const w of this.#capacityWaiters.splice(0, Math.max(0, free))) w.resolve();
  }

  /** Deletes segments all of whose events the store has committed. */
  #retire(): void {
    while (this.#segments.length > 1) {
      const oldest = this.#segments[0]!;
      const done = oldest.maxOffsets.every(
        (max, p) => max === undefined || max < this.#committed[p]!,
      );
      if (!done) return;
      rmSync(oldest.path, { force: true });
      this.#segments.shift();
    }
  }

  async #roll(): Promise<void> {
    const sequence = (this.#segments.at(-1)?.sequence ?? 0) + 1;
    let handle: FileHandle;
    let path: string;
    if (this.#options.fsync) {
      ({ handle, path } = await (this.#spare ?? this.#prepare(sequence)));
      this.#spare = this.#prepare(sequence + 1);
      this.#spare.catch(() => undefined); // a failure shows when the segment is needed
    } else {
      path = segmentPath(this.#dir, sequence);
      handle = await open(path, 'a', 0o644);
    }
    await this.#active?.handle.close();
    this.#segments.push({ sequence, path, maxOffsets: [] });
    this.#active = { handle, segment: this.#segments.at(-1)!, bytes: 0, listVersion: -1 };
  }

  /**
   * Creates segment `sequence` at its full size, zeros synced to disk, and opens it for
   * synchronous writes at positions. Its directory entry is durable before anything in it is
   * acknowledged. Zeros are written a megabyte at a time, synced every eight, so that the
   * acknowledgements' writes do not queue behind one large flush.
   */
  async #prepare(sequence: number): Promise<Spare> {
    const path = segmentPath(this.#dir, sequence);
    const zeros = Buffer.alloc(1024 * 1024);
    const fill = await open(path, 'w', 0o644);
    try {
      for (let at = 0; at < this.#options.segmentBytes; at += zeros.length) {
        await fill.write(zeros, 0, Math.min(zeros.length, this.#options.segmentBytes - at), at);
        if ((at / zeros.length) % 8 === 7) await fill.datasync();
      }
      await fill.sync();
    } finally {
      await fill.close();
    }
    await syncDirectory(this.#dir);
    const { O_WRONLY, O_DSYNC } = constants;
    return { path, handle: await open(path, O_WRONLY | O_DSYNC) };
  }

  /** Reads every segment, queues uncommitted events, and learns each partition's next offset. */
  #replay(): void {
    const files = readdirSync(this.#dir)
      .filter((f) => f.endsWith('.seg'))
      .sort();
    // Each partition's uncommitted events, queued as runs once all are read (a new run wherever
    // offsets do not follow on).
    const uncommitted = Array.from({ length: this.partitions }, (): RunBuilder[] => []);
    const unpacker = new EventUnpacker();
    for (const file of files) {
      const path = join(this.#dir, file);
      const segment: Segment = { sequence: Number.parseInt(file, 10), path, maxOffsets: [] };
      const data = readFileSync(path);
      const take = (partition: number, offset: number, event: ChargerEvent) => {
        if (partition >= this.partitions) {
          throw new ChargestreamError(
            'LOG_CORRUPT',
            `${path}: event of partition ${partition}, log has ${this.partitions}`,
          );
        }
        segment.maxOffsets[partition] = Math.max(segment.maxOffsets[partition] ?? -1, offset);
        this.#next[partition] = Math.max(this.#next[partition]!, offset + 1);
        if (offset < this.#committed[partition]!) return;
        const runs = uncommitted[partition]!;
        let run = runs.at(-1);
        if (run === undefined || offset !== run.offset + run.count)
          runs.push((run = new RunBuilder(offset)));
        run.add(event, this.#placements.of(event.chargerId, event.connectorId).key);
        this.#lag += 1;
      };
      let shapes = '[]';
      let at = 0;
      while (at + 8 <= data.length) {
        const length = data.readUInt32LE(at);
        if (length === 0) break; // the zero-filled rest of a segment
        const body = data.subarray(at + 8, at + 8 + length);
        if (body.length < length || crc32(body) !== data.readUInt32LE(at + 4)) break;
        if (body[0] === RUNS_RECORD) {
          const shapesLength = body.readUInt32LE(1);
          if (shapesLength > 0) shapes = body.toString('utf8', 5, 5 + shapesLength);
          for (let r = 5 + shapesLength; r < body.length;) {
            const partition = body.readUInt16LE(r);
            const offset = body.readDoubleLE(r + 2);
            const bytes = body.subarray(r + RUN_HEADER, r + RUN_HEADER + body.readUInt32LE(r + 14));
            unpacker
              .unpack(shapes, bytes)
              .forEach((event, i) => take(partition, offset + i, event));
            r += RUN_HEADER + bytes.length;
          }
        } else {
          const records = this.#oldRecords.unpack(body) as Array<[number, number, ChargerEvent]>;
          for (const [partition, offset, event] of records) take(partition, offset, event);
        }
        at += 8 + length;
      }
      this.#segments.push(segment);
    }
    uncommitted.forEach((builders, partition) => {
      for (const builder of builders) {
        for (const run of builder.split(this.#options.batchSize, this.#packer))
          this.#enqueue(partition, run);
      }
    });
    this.#retire();
  }
}

/** The first byte of a record of runs: one msgpack never writes (records before began with an array). */
const RUNS_RECORD = 0xc1;
/** A run's header in a record: partition u16, first offset f64, events u32, bytes u32. */
const RUN_HEADER = 18;

/** A partition's events of one record, encoded, as queued for the processor. */
interface Run {
  readonly offset: number;
  readonly count: number;
  readonly bytes: Buffer;
  /** The connectors of its events, each once. */
  readonly connectors: readonly string[];
  /** The sessions of its retry events (S8). */
  readonly retries: readonly string[];
  /** It holds a transaction's stop. */
  readonly stop: boolean;
}

/** A partition's consecutive events gathered into runs. */
class RunBuilder {
  readonly offset: number;
  readonly #events: ChargerEvent[] = [];
  /** Each event's connector (connectorKey). */
  readonly #connectors: string[] = [];

  constructor(offset: number) {
    this.offset = offset;
  }

  get count(): number {
    return this.#events.length;
  }

  add(event: ChargerEvent, connector: string): void {
    this.#events.push(event);
    this.#connectors.push(connector);
  }

  /** The events as runs of at most `size` events each (a batch holds whole runs). */
  split(size: number, packer: EventPacker): Run[] {
    const runs: Run[] = [];
    for (let from = 0; from < this.#events.length; from += size) {
      const to = Math.min(this.#events.length, from + size);
      const events =
        to - from === this.#events.length ? this.#events : this.#events.slice(from, to);
      const connectors = new Set<string>();
      const retries: string[] = [];
      let stop = false;
      for (let i = from; i < to; i++) {
        connectors.add(this.#connectors[i]!);
        const event = this.#events[i]!;
        if (event.kind === 'retry') retries.push(event.sessionId);
        else if (event.kind === 'tx_stopped') stop = true;
      }
      runs.push({
        offset: this.offset + from,
        count: events.length,
        // Copied out of the packer's buffer, which its next call reuses.
        bytes: Buffer.from(packer.pack(events)),
        connectors: [...connectors],
        retries,
        stop,
      });
    }
    return runs;
  }
}

/** Runs `start` to `end` of a queue as one batch, their bytes in a buffer of its own. */
function encodeBatch(
  runs: readonly Run[],
  start: number,
  end: number,
  count: number,
  full: boolean,
  shapes: string,
): EncodedBatch {
  let size = 0;
  for (let i = start; i < end; i++) size += runs[i]!.bytes.length;
  const bytes = new Uint8Array(size);
  const spans: Array<[number, number, number]> = [];
  const connectors: string[] = [];
  const retries: string[] = [];
  let at = 0;
  for (let i = start; i < end; i++) {
    const r = runs[i]!;
    bytes.set(r.bytes, at);
    at += r.bytes.length;
    spans.push([r.offset, r.count, at]);
    for (const c of r.connectors) connectors.push(c);
    for (const id of r.retries) retries.push(id);
  }
  const last = runs[end - 1]!;
  return {
    bytes,
    runs: spans,
    shapes,
    count,
    firstOffset: runs[start]!.offset,
    lastOffset: last.offset + last.count - 1,
    connectors,
    retries,
    full,
  };
}

/** A segment created ahead of need, zero-filled and open. */
interface Spare {
  readonly path: string;
  readonly handle: FileHandle;
}

function segmentPath(dir: string, sequence: number): string {
  return join(dir, `${String(sequence).padStart(12, '0')}.seg`);
}

interface Segment {
  readonly sequence: number;
  readonly path: string;
  /** Highest offset per partition written to this segment. */
  readonly maxOffsets: Array<number | undefined>;
}

/** The partition count is fixed for a log: changing it would move connectors between partitions. */
function checkMeta(dir: string, partitions: number): void {
  const path = join(dir, 'meta.json');
  let meta: { partitions?: number } | null = null;
  try {
    meta = JSON.parse(readFileSync(path, 'utf8')) as { partitions?: number };
  } catch {
    writeFileSync(path, JSON.stringify({ partitions }));
    return;
  }
  if (meta.partitions !== partitions) {
    throw new ChargestreamError(
      'CONFIG_INVALID',
      `--partitions: the embedded log in ${dir} has ${String(meta.partitions)} partitions, not ${partitions}`,
    );
  }
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Calls a publisher's callback. One that throws does not keep the others of its record from
 * being called: its error is thrown again on its own, as a promise's reaction would reject.
 */
function settle(callback: () => void): void {
  try {
    callback();
  } catch (error) {
    queueMicrotask(() => {
      throw error;
    });
  }
}
