import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Session, type RawInsertFormat } from 'chdb';
import { ChargestreamError, errorMessage } from '../lib/errors.js';
import { ChdbSessions } from './chdb-sessions.js';
import { applyMigrations } from './ddl.js';
import {
  ANALYST_LIMITS,
  insertFailed,
  insertFormat,
  isNested,
  nestedInsert,
  parseJsonEachRow,
  rowPieces,
  rowsText,
  sqlString,
  type Layout,
  type Rows,
  type Store,
} from './store.js';

/** This process's insert files: `<pid>-<n>`, so a later start can tell a dead process's from its own. */
let insertFiles = 0;

/**
 * ClickHouse embedded through chDB: the engine in-process, data in a local folder. Inserts go
 * through one session; the engine's own queries and the analysts' read-only ones through
 * sessions of their own (see ChdbSessions). `readonly = 1` is set on the analysts' sessions
 * themselves, so ClickHouse — not a text check — refuses writes.
 */
export class ChdbStore implements Store {
  readonly #writer: Session;
  readonly #queries: ChdbSessions;
  readonly #readers: ChdbSessions;
  readonly #insertDir: string;
  /** Per table and column list: the structure `file()` reads the rows with, or null for inline. */
  readonly #structures = new Map<string, string | null>();

  constructor(dir: string) {
    mkdirSync(dir, { recursive: true });
    this.#insertDir = join(dir, 'user_files', 'inserts');
    mkdirSync(this.#insertDir, { recursive: true });
    removeDeadProcessesFiles(this.#insertDir);
    this.#writer = new Session(dir);
    this.#queries = new ChdbSessions(dir, 2);
    this.#readers = new ChdbSessions(dir, 2, (reader) => {
      for (const [name, value] of Object.entries(ANALYST_LIMITS)) {
        reader.query(`SET ${name} = ${typeof value === 'string' ? `'${value}'` : value}`);
      }
      reader.query('SET readonly = 1');
    });
  }

  migrate(): Promise<number> {
    this.#structures.clear();
    return applyMigrations(
      (sql) => this.#run(sql),
      (sql) => this.rows(sql),
    );
  }

  insert(table: string, rows: Rows, token: string, layout?: Layout): Promise<void> {
    const { format, settings } = insertFormat(token, layout);
    return this.rawInsert(table, rows, format, settings, layout);
  }

  /**
   * Data in one of ClickHouse's text formats as one block, with the insert's settings; the
   * values of `columns` in order, else of every column, or nested rows. Used by insert() and
   * by the HTTP stand-in (chdb-http-server.ts), so rows take the same path from either.
   */
  async rawInsert(
    table: string,
    data: Buffer | Rows,
    format: string,
    settings: Readonly<Record<string, string | number>> = {},
    layout?: Layout,
  ): Promise<void> {
    if (isNested(layout)) {
      const structure = sqlString(layout.structure);
      return this.#fromFile(table, data, settings, (file, assignments) =>
        nestedInsert(
          table,
          layout,
          `file(${sqlString(file)}, ${format}, ${structure})`,
          assignments,
        ),
      );
    }
    const columns = layout;
    let structure: string | null = null;
    try {
      if (columns !== undefined) structure = await this.#structure(table, columns);
    } catch (cause) {
      throw insertFailed(table, cause);
    }
    if (columns === undefined || structure === null) {
      return this.#inline(table, data, format, settings, columns);
    }
    // Rows with a column list are read by ClickHouse from a file, with the columns' types less
    // LowCardinality: given inline, chDB parses a reading row in 3.9–4.3 µs of CPU; read with
    // file() and converted column-wise, in about 1.1 (20,000-row inserts into
    // `meter_readings`, merges and views included: 6.5 → 3.4 µs a row; bench/RESULTS.md).
    return this.#fromFile(
      table,
      data,
      settings,
      (file, assignments) =>
        `INSERT INTO ${table} (${columns.join(', ')}) SETTINGS ${assignments}
         SELECT * FROM file(${sqlString(file)}, ${format}, ${sqlString(structure)})`,
    );
  }

  /**
   * The rows written to an insert file, then inserted by the statement `insert` makes of the
   * file's path and the settings. One reading stream (max_threads = 1) cuts the rows into the
   * same block at a retry.
   */
  async #fromFile(
    table: string,
    data: Buffer | Rows,
    settings: Readonly<Record<string, string | number>>,
    insert: (file: string, assignments: string) => string,
  ): Promise<void> {
    const file = join(this.#insertDir, `${process.pid}-${++insertFiles}`);
    const assignments = Object.entries({ ...settings, max_threads: 1 })
      .map(([name, value]) => `${name} = ${typeof value === 'string' ? sqlString(value) : value}`)
      .join(', ');
    try {
      // Piece by piece (rowPieces): the event loop encodes one piece at a time between writes.
      await writeFile(file, Buffer.isBuffer(data) ? data : rowPieces(data));
      await this.#writer.queryAsync(insert(file, assignments));
    } catch (cause) {
      throw insertFailed(table, cause);
    } finally {
      await unlink(file).catch(() => undefined);
    }
  }

  /** The data in the insert itself (chDB's raw insert; it checks the names and the format). */
  async #inline(
    table: string,
    data: Buffer | Rows,
    format: string,
    settings: Readonly<Record<string, string | number>>,
    columns?: readonly string[],
  ): Promise<void> {
    try {
      await this.#writer.insert({
        table,
        values: Buffer.isBuffer(data) ? data : Buffer.from(rowsText(data)),
        format: format as RawInsertFormat,
        settings: { ...settings },
        ...(columns === undefined ? {} : { columns }),
      });
    } catch (cause) {
      throw insertFailed(table, cause);
    }
  }

  /**
   * The structure `file()` reads positional rows of `table` with: each column's type with
   * LowCardinality left out (ClickHouse converts a whole column at once, cheaper than a
   * dictionary lookup per value). A row that ends early gives its last columns their type's
   * default value, so a table whose listed columns have other defaults gets null: its rows go
   * inline, where the table's defaults apply.
   */
  async #structure(table: string, columns: readonly string[]): Promise<string | null> {
    const key = `${table}(${columns.join(',')})`;
    const known = this.#structures.get(key);
    if (known !== undefined) return known;
    const described = new Map(
      (
        await this.rows<{ name: string; type: string; default_expression: string }>(
          `SELECT name, type, default_expression FROM system.columns
           WHERE database = currentDatabase() AND table = ${sqlString(table)}`,
        )
      ).map((c) => [c.name, c]),
    );
    const listed = columns.map((name) => described.get(name));
    const structure = listed.every(
      (c) => c !== undefined && TYPE_DEFAULTS.has(c.default_expression),
    )
      ? listed.map((c) => `${c!.name} ${withoutLowCardinality(c!.type)}`).join(', ')
      : null;
    this.#structures.set(key, structure);
    return structure;
  }

  async execute(sql: string): Promise<void> {
    // A statement may change a table's columns.
    this.#structures.clear();
    await this.#run(sql);
  }

  /** Any statement on the writing connection, its result in `format`. */
  statement(sql: string, format: string): Promise<string> {
    return this.#run(sql, format);
  }

  async rows<T>(sql: string): Promise<T[]> {
    return parseJsonEachRow<T>(await this.#run(sql, 'JSONEachRow'));
  }

  async analystQuery(sql: string, format: string): Promise<string> {
    try {
      return await this.#readers.query(sql, format);
    } catch (cause) {
      throw new ChargestreamError('SQL_FAILED', errorMessage(cause), { cause });
    }
  }

  close(): Promise<void> {
    this.#readers.close();
    this.#queries.close();
    this.#writer.close();
    return Promise.resolve();
  }

  async #run(sql: string, format = 'CSV'): Promise<string> {
    try {
      return await this.#queries.query(sql, format);
    } catch (cause) {
      throw new ChargestreamError('STORE_QUERY_FAILED', errorMessage(cause), { cause });
    }
  }
}

/** Default expressions equal to their type's default value (and none at all). */
const TYPE_DEFAULTS = new Set(['', "''", '0', '[]', 'false', 'NULL']);

/** A ClickHouse type without its LowCardinality wrappers: `Array(LowCardinality(String))` → `Array(String)`. */
export function withoutLowCardinality(type: string): string {
  const start = type.indexOf('LowCardinality(');
  if (start < 0) return type;
  let depth = 0;
  for (let i = start + 'LowCardinality('.length; i < type.length; i++) {
    if (type[i] === '(') depth += 1;
    else if (type[i] === ')' && depth-- === 0) {
      const inner = type.slice(start + 'LowCardinality('.length, i);
      return withoutLowCardinality(type.slice(0, start) + inner + type.slice(i + 1));
    }
  }
  return type;
}

/** Insert files a process that is no longer running left behind (killed between write and insert). */
function removeDeadProcessesFiles(dir: string): void {
  for (const name of readdirSync(dir)) {
    const pid = Number.parseInt(name, 10);
    if (Number.isInteger(pid) && pid > 0 && running(pid)) continue;
    rmSync(join(dir, name), { force: true });
  }
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, as another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
