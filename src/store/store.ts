import { ChargestreamError, errorMessage } from '../lib/errors.js';

/**
 * The store: ClickHouse, embedded (chDB) or a server over HTTP, behind one interface; the
 * same SQL runs on both.
 */
export interface Store {
  /** Applies the migrations not applied yet; returns how many ran. */
  migrate(): Promise<number>;
  /**
   * Inserts rows as one block: without `layout`, JSONEachRow objects; with a column list,
   * positional rows (JSON arrays of those columns' values in order, JSONCompactEachRow), which
   * may end before the last columns (those take their defaults); with NestedRows, rows that
   * each hold several table rows. The rows come as one text or as its pieces in order, each of
   * whole lines. `token` deduplicates a retried insert of the same rows; the insert is atomic
   * (one block).
   */
  insert(table: string, rows: Rows, token: string, layout?: Layout): Promise<void>;
  /** The engine's own queries, rows parsed from JSONEachRow. */
  rows<T>(sql: string): Promise<T[]>;
  /** The engine's own statements that return nothing (DDL, settings of tables). */
  execute(sql: string): Promise<void>;
  /** An analyst's statement, run read-only (ClickHouse's readonly=1) in the given output format. */
  analystQuery(sql: string, format: string): Promise<string>;
  close(): Promise<void>;
}

/**
 * Rows of an insert, one line each: one text, or its pieces in order (each of whole lines; the
 * sink's batches), which a store encodes one after the other instead of joining them first.
 */
export type Rows = string | readonly string[];

/** A failed insert, the same from every store: the sink retries it under the same token. */
export function insertFailed(table: string, cause: unknown): ChargestreamError {
  return new ChargestreamError(
    'STORE_UNAVAILABLE',
    `insert into ${table} failed: ${errorMessage(cause)}`,
    {
      retriable: true,
      cause,
    },
  );
}

/** The rows as one text. */
export function rowsText(rows: Rows): string {
  return typeof rows === 'string' ? rows : rows.join('');
}

/**
 * The rows' pieces joined up to about `size` characters each, in order, one at a time as they
 * are asked for: encoding many batches' rows at once held the event loop for milliseconds.
 */
export function* rowPieces(rows: Rows, size = 256 * 1024): Generator<string> {
  if (typeof rows === 'string') {
    yield rows;
    return;
  }
  let run: string[] = [];
  let length = 0;
  for (const piece of rows) {
    run.push(piece);
    length += piece.length;
    if (length >= size) {
      yield run.join('');
      run = [];
      length = 0;
    }
  }
  if (length > 0) yield run.join('');
}

/**
 * The format and settings of a Store.insert, the same on every backend. Retried under the same
 * token, the table drops the repeated block, and so do the materialized views it feeds (with
 * their own deduplication windows); positional rows may end before the last columns.
 */
export function insertFormat(
  token: string,
  layout?: Layout,
): { format: 'JSONEachRow' | 'JSONCompactEachRow'; settings: Record<string, string | number> } {
  const deduplicated = {
    insert_deduplication_token: token,
    deduplicate_blocks_in_dependent_materialized_views: 1,
  };
  return layout === undefined
    ? { format: 'JSONEachRow', settings: deduplicated }
    : {
        format: 'JSONCompactEachRow',
        settings: {
          ...deduplicated,
          input_format_json_compact_allow_variable_number_of_columns: 1,
          // A session row's state is a JSON object read into a String column as its text.
          input_format_json_read_objects_as_strings: 1,
        },
      };
}

/**
 * Positional rows whose each value fills one of a table's columns, or rows that each fill
 * several of a table's rows through a SELECT (NestedRows).
 */
export type Layout = readonly string[] | NestedRows;

/**
 * Rows that carry what several of a table's rows share once, and the rest as an array: the
 * store reads them as `structure` (JSONCompactEachRow; a row may end before its last
 * columns, which take their type's default) and inserts `SELECT select FROM rows arrayJoin`
 * into `columns`.
 */
export interface NestedRows {
  readonly columns: readonly string[];
  readonly structure: string;
  readonly select: string;
  readonly arrayJoin: string;
}

export function isNested(layout: Layout | undefined): layout is NestedRows {
  return layout !== undefined && !Array.isArray(layout);
}

/** The INSERT … SELECT of nested rows read from `source` (a file() or input() call). */
export function nestedInsert(
  table: string,
  layout: NestedRows,
  source: string,
  settings = '',
): string {
  const { columns, select, arrayJoin } = layout;
  return `INSERT INTO ${table} (${columns.join(', ')})${settings === '' ? '' : ` SETTINGS ${settings}`} SELECT ${select} FROM ${source} ${arrayJoin}`;
}

/**
 * The columns of `meter_readings` the workers' rows fill (READING_FRAMES), in the order of
 * its SELECT; positional rows of readings give them in this order too.
 */
export const READING_COLUMNS = [
  'charger_id',
  'connector_id',
  'session_id',
  'ts',
  'measurand',
  'phase',
  'value',
  'unit',
  'context',
  'valid',
  'reject_reason',
  'log_partition',
  'log_offset',
  'signed_data',
  'signing_method',
  'encoding_method',
  'public_key',
] as const;

/**
 * How the workers write `meter_readings`: a row for each event's readings of one session and
 * time — the charger, connector, session, log position and time once, then `r`, each
 * reading's measurand, phase, value, unit, context, validity and reject reason, and, only
 * where one of them is signed, `s`, each reading's signature (empty for an unsigned one) —
 * expanded by ARRAY JOIN into one table row a reading. The shared columns once instead of at
 * every reading: 719 → 385 bytes a MeterValues of five readings, and less of chDB's CPU a
 * reading row (bench/RESULTS.md).
 */
export const READING_FRAMES: NestedRows = {
  columns: READING_COLUMNS,
  structure:
    "charger_id String, connector_id UInt16, session_id String, log_partition UInt16, log_offset UInt64, ts DateTime64(3, 'UTC'), r Array(Tuple(String, String, Float64, String, String, Bool, String)), s Array(Tuple(String, String, String, String))",
  select:
    'charger_id, connector_id, session_id, ts, x.1.1, x.1.2, x.1.3, x.1.4, x.1.5, x.1.6, x.1.7, log_partition, log_offset, x.2.1, x.2.2, x.2.3, x.2.4',
  arrayJoin: "ARRAY JOIN arrayZip(r, arrayResize(s, length(r), ('', '', '', ''))) AS x",
};

/**
 * The columns of a `sessions_log` row as the workers write it, in order (positional): the
 * session id and version first, which the sink reads to leave out superseded
 * rows (latestSessionRows). A row of values without keys costs chDB about a sixth less to
 * parse (3,000 rows with their state: 30.8 against 25.7 µs of CPU a row).
 */
export const SESSION_COLUMNS = [
  'session_id',
  'version',
  'charger_id',
  'site_id',
  'operator_id',
  'connector_id',
  'transaction_id',
  'status',
  'reason',
  'customer_id',
  'token_id',
  'tariff_id',
  'started_at',
  'ended_at',
  'energy_wh',
  'charging_s',
  'parking_s',
  'fault_s',
  'reservation_s',
  'cost_excl_vat',
  'vat',
  'cost_incl_vat',
  'currency',
  'flags',
  'error',
  'state',
  'log_partition',
] as const;

/**
 * A `sessions_log` row as the workers write it: `values`, the SESSION_COLUMNS before `state`,
 * then the state — the JSON text of an object, or '' for none — then the log partition. The
 * state goes in as the object it is, not as a string holding it: ClickHouse reads an object
 * into a String column as its text, byte for byte (`input_format_json_read_objects_as_strings`,
 * insertFormat). Escaped into a string, the 1.2 KB state of a session took the worker 6.1–6.6
 * µs a row against 1.3–1.8 (bench/RESULTS.md).
 */
export function sessionRowText(
  values: readonly unknown[],
  state: string,
  partition: number,
): string {
  const head = JSON.stringify(values);
  return `${head.slice(0, -1)},${state === '' ? '""' : state},${partition}]`;
}

/** Limits on analyst queries, set on the read-only connection. */
export const ANALYST_LIMITS = {
  max_execution_time: 30,
  max_result_rows: 1_000_000,
  result_overflow_mode: 'throw',
  max_memory_usage: 4_000_000_000,
} as const;

export function parseJsonEachRow<T>(text: string): T[] {
  const rows: T[] = [];
  for (const line of text.split('\n')) if (line.length > 0) rows.push(JSON.parse(line) as T);
  return rows;
}

/**
 * Raw readings older than `days` (by reading time) are deleted in the background by
 * ClickHouse's TTL; 0 keeps them for ever. Run at every start, so a changed setting applies.
 */
export async function applyReadingsRetention(store: Store, days: number): Promise<void> {
  if (days > 0) {
    await store.execute(
      `ALTER TABLE meter_readings MODIFY TTL toDateTime(ts) + toIntervalDay(${Math.floor(days)})`,
    );
    return;
  }
  const [table] = await store.rows<{ engine_full: string }>(
    "SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = 'meter_readings'",
  );
  if (/\sTTL\s/.test(table?.engine_full ?? ''))
    await store.execute('ALTER TABLE meter_readings REMOVE TTL');
}

/** A ClickHouse string literal of `text` (backslashes and quotes escaped). */
export function sqlString(text: string): string {
  return `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}
