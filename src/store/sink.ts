import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { errorMessage } from '../lib/errors.js';
import { Tally } from '../metrics/registry.js';
import { READING_FRAMES, SESSION_COLUMNS, type Rows, type Store } from './store.js';

/** The rows one processed batch produced, per table as Store.insert takes them (TABLES). */
export interface SinkBatch {
  readonly partition: number;
  readonly firstOffset: number;
  readonly lastOffset: number;
  /** A row for each event's readings of one session (READING_FRAMES). */
  readonly readings: string;
  /** The `meter_readings` rows those make. */
  readonly readingRows: number;
  readonly statuses: string;
  readonly notifications: string;
  readonly sessions: string;
  readonly cdrs: string;
  /**
   * Checked just before the batch's rows go into a write (the bus's fence, distributed
   * mode): a batch whose partition moved to another processor while it waited for the write
   * is left out, and its promise rejects with the fence's error.
   */
  readonly fence?: () => Promise<void>;
}

/** A batch waiting for a write, and its writer's promise. */
interface Pending {
  readonly batch: SinkBatch;
  readonly done: () => void;
  readonly fail: (error: unknown) => void;
}

/**
 * Table order of a write: sessions after the rows they summarize, the partitions' stored
 * offsets last. A crash between two inserts leaves each table with its own high-water mark
 * per partition, which the processor reads back at start to write nothing twice. A table
 * with a column list gets positional rows (see Store.insert).
 */
const TABLES = [
  ['meter_readings', 'readings', READING_FRAMES],
  ['connector_status', 'statuses'],
  ['cdrs', 'cdrs'],
  ['notifications', 'notifications'],
  ['sessions_log', 'sessions', SESSION_COLUMNS],
] as const;

/**
 * Batched writes to the store. Batches finished while a write is in flight are written
 * together next (group commit): one insert per table for all of them. A failed write is
 * retried with backoff and the same deduplication tokens, and the batches' promises stay
 * pending meanwhile — the processor does not commit, the bus fills, the gateway slows its
 * chargers: backpressure instead of loss.
 */
export class Sink {
  readonly #store: Store;
  readonly #log: Logger;
  #pending: Pending[] = [];
  #writing = false;
  #closed = false;
  /** Counters for /metrics and benchmarks: rows and failed inserts by table. */
  readonly stats = {
    writes: 0,
    rows: 0,
    retries: 0,
    rowsByTable: new Tally(),
    failures: new Tally(),
  };
  readonly #insertSeconds: ((table: string, seconds: number) => void) | undefined;
  readonly #intervalMs: number;

  /**
   * `intervalMs`: the least time from the start of one write to the start of the next. Every
   * insert makes a part ClickHouse later merges, so at moderate rates a write as soon as the
   * previous one is done spends more CPU per row, not less; a floor between writes trades a
   * little time-to-queryable for fewer, larger parts.
   */
  constructor(
    store: Store,
    log: Logger,
    insertSeconds?: (table: string, seconds: number) => void,
    intervalMs = 0,
  ) {
    this.#store = store;
    this.#log = log;
    this.#insertSeconds = insertSeconds;
    this.#intervalMs = intervalMs;
    // Every table has its series from the start: a failure shows as a rise, not a new series.
    for (const [table] of TABLES) this.stats.failures.set(table, 0);
    this.stats.failures.set('ingest_offsets', 0);
  }

  /** Batches waiting for the next write (the write buffer), and their rows. */
  buffered(): { batches: number; rows: number } {
    let rows = 0;
    for (const { batch } of this.#pending)
      for (const [, field] of TABLES)
        rows += field === 'readings' ? batch.readingRows : countLines(batch[field]);
    return { batches: this.#pending.length, rows };
  }

  write(batch: SinkBatch): Promise<void> {
    return new Promise<void>((done, fail) => {
      this.#pending.push({ batch, done, fail });
      if (!this.#writing) {
        this.#writing = true;
        void this.#loop();
      }
    });
  }

  close(): void {
    this.#closed = true;
  }

  async #loop(): Promise<void> {
    try {
      while (this.#pending.length > 0 && !this.#closed) {
        const started = performance.now();
        const taken = this.#pending;
        this.#pending = [];
        const group = await this.#stillOwned(taken);
        const written = group.length > 0 ? await this.#writeGroup(group) : [];
        for (const g of written) g.done();
        const rest = this.#intervalMs - (performance.now() - started);
        if (rest > 1) await new Promise((r) => setTimeout(r, rest));
      }
    } catch {
      // Only when closed while retrying: those batches stay uncommitted and are replayed at
      // the next start.
    } finally {
      this.#writing = false;
    }
  }

  /** The pending batches whose fence still passes; the others are failed and left out. */
  async #stillOwned(pending: readonly Pending[]): Promise<Pending[]> {
    const kept = await Promise.all(
      pending.map(async (g) => {
        try {
          await g.batch.fence?.();
          return g;
        } catch (error) {
          g.fail(error);
          return null;
        }
      }),
    );
    return kept.filter((g) => g !== null);
  }

  /**
   * One insert per table for the group, with deduplication tokens of the whole group, so a
   * retry after a failure that did land is dropped by the store. While a table's insert is
   * retried (a store outage), the fences are checked again before each attempt: a batch whose
   * partition moved meanwhile leaves the group for the tables not written yet (the new owner
   * rebuilds from what the store holds) and its writer is told.
   */
  async #writeGroup(group: readonly Pending[]): Promise<Pending[]> {
    const id = createHash('sha1')
      .update(
        group.map(({ batch: b }) => `${b.partition}:${b.firstOffset}-${b.lastOffset}`).join(','),
      )
      .digest('hex');
    let live = [...group];
    // A table's rows as the batches' texts, in order (the store encodes them piece by piece).
    const rowsOf = (field: (typeof TABLES)[number][1] | null): Rows => {
      if (field === 'sessions') return latestSessionRows(live.map(({ batch: b }) => b.sessions));
      if (field !== null) return live.map(({ batch }) => batch[field]).filter((t) => t !== '');
      const offsets = new Map<number, number>();
      for (const { batch: b } of live)
        offsets.set(b.partition, Math.max(offsets.get(b.partition) ?? -1, b.lastOffset));
      return [...offsets].map(([p, o]) => `{"log_partition":${p},"log_offset":${o}}\n`).join('');
    };
    // The partitions' stored offsets last, built from the batches still in the group.
    for (const [table, field, columns] of [...TABLES, ['ingest_offsets', null] as const]) {
      for (let attempt = 0; ; attempt++) {
        if (attempt > 0) live = await this.#stillOwned(live);
        const rows = rowsOf(field);
        if (rows.length === 0) break;
        const started = performance.now();
        try {
          await this.#store.insert(table, rows, `${table}:${id}`, columns);
          this.#insertSeconds?.(table, (performance.now() - started) / 1000);
          const n =
            field === 'readings' ? readingRows(live.map(({ batch }) => batch)) : countLines(rows);
          this.stats.rows += n;
          this.stats.rowsByTable.add(table, n);
          break;
        } catch (error) {
          this.stats.failures.add(table);
          if (this.#closed) throw error;
          this.stats.retries += 1;
          const wait = Math.min(5000, 100 * 2 ** attempt);
          this.#log.warn(
            { table, attempt, wait, err: errorMessage(error) },
            'store write failed; retrying',
          );
          await new Promise((r) => setTimeout(r, wait));
        }
      }
    }
    this.stats.writes += 1;
    return live;
  }
}

/** The `meter_readings` rows of the batches. */
function readingRows(batches: readonly SinkBatch[]): number {
  let n = 0;
  for (const b of batches) n += b.readingRows;
  return n;
}

/** How every session row begins: its session id, then its version (SESSION_COLUMNS). */
const SESSION_ROW = '["';
const VERSION = '",';

/**
 * The session rows of a write without those the store would drop. `sessions_log` is a
 * ReplacingMergeTree ordered by session: ClickHouse merges each inserted block as it stores
 * it, so of one session's rows in one insert only the highest version is kept. A write that
 * groups several batches of a partition holds one progress row per session and batch; the
 * earlier ones are left out here instead of being parsed and dropped by the store (measured:
 * a session row with its state costs chDB about 30 µs of CPU, three readings' worth). A row
 * not in the expected form is kept. Each text is whole rows, each ending in a newline, as the
 * workers write them (JSONEachRow).
 */
export function latestSessionRows(texts: readonly string[]): string {
  // Each row is read where it lies in its batch's text (its id and version at its start): the
  // texts are neither joined nor split into lines unless rows are left out. Splitting took
  // 5–13 ms on the event loop for the 2 MB of session rows of one write (RESULTS.md).
  const rows: Array<{ text: number; start: number; end: number; id: string | null }> = [];
  const latest = new Map<string, { version: number; row: number }>();
  let superseded = false;
  texts.forEach((text, t) => {
    for (let start = 0; start < text.length;) {
      const newline = text.indexOf('\n', start);
      const end = newline === -1 ? text.length : newline + 1;
      const key = sessionKey(text, start, end);
      if (key !== null) {
        const seen = latest.get(key.id);
        if (seen !== undefined) superseded = true;
        if (seen === undefined || key.version >= seen.version)
          latest.set(key.id, { version: key.version, row: rows.length });
      }
      rows.push({ text: t, start, end, id: key?.id ?? null });
      start = end;
    }
  });
  if (!superseded) return texts.join('');
  const kept: string[] = [];
  rows.forEach(({ text, start, end, id }, row) => {
    if (id === null || latest.get(id)!.row === row) kept.push(texts[text]!.slice(start, end));
  });
  return kept.join('');
}

interface SessionKey {
  readonly id: string;
  readonly version: number;
}

/**
 * The session id (as its JSON text) and version the row at `start` (up to `end`) of `text`
 * begins with; null if another form.
 */
function sessionKey(text: string, start: number, end: number): SessionKey | null {
  if (!text.startsWith(SESSION_ROW, start)) return null;
  let close = start + SESSION_ROW.length;
  for (; close < end; close++) {
    const c = text.charCodeAt(close);
    if (c === 0x5c)
      close++; // a backslash escapes the next character
    else if (c === 0x22) break; // the closing quote
  }
  if (close >= end || !text.startsWith(VERSION, close)) return null;
  const from = close + VERSION.length;
  const version = parseInt(text.slice(from, Math.min(end, from + 20)), 10);
  return Number.isSafeInteger(version)
    ? { id: text.slice(start + SESSION_ROW.length, close), version }
    : null;
}

function countLines(rows: Rows): number {
  let n = 0;
  for (const text of typeof rows === 'string' ? [rows] : rows)
    for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++;
  return n;
}
