import { mkdirSync } from 'node:fs';
import { Session, type RawInsertFormat } from 'chdb';
import { ChargestreamError, errorMessage } from '../lib/errors.js';
import { ChdbSessions } from './chdb-sessions.js';
import { applyMigrations } from './ddl.js';
import { ANALYST_LIMITS, insertFormat, parseJsonEachRow, type Store } from './store.js';

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

  constructor(dir: string) {
    mkdirSync(dir, { recursive: true });
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
    return applyMigrations(
      (sql) => this.#run(sql),
      (sql) => this.rows(sql),
    );
  }

  insert(table: string, rows: string, token: string, columns?: readonly string[]): Promise<void> {
    const { format, settings } = insertFormat(token, columns);
    return this.rawInsert(table, Buffer.from(rows), format, settings, columns);
  }

  /**
   * Data in one of ClickHouse's text formats as one block, with the insert's settings; the
   * values of `columns` in order, else of every column.
   */
  async rawInsert(
    table: string,
    data: Buffer,
    format: string,
    settings: Readonly<Record<string, string | number>> = {},
    columns?: readonly string[],
  ): Promise<void> {
    try {
      await this.#writer.insert({
        table,
        values: data,
        format: format as RawInsertFormat,
        settings: { ...settings },
        ...(columns === undefined ? {} : { columns }),
      });
    } catch (cause) {
      throw new ChargestreamError(
        'STORE_UNAVAILABLE',
        `insert into ${table} failed: ${errorMessage(cause)}`,
        { retriable: true, cause },
      );
    }
  }

  async execute(sql: string): Promise<void> {
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
