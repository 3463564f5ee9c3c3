import { mkdirSync } from 'node:fs';
import { Session } from 'chdb';
import { ChargestreamError, errorMessage } from '../lib/errors.js';
import { migrations } from './ddl.js';
import { ANALYST_LIMITS, parseJsonEachRow, type Store } from './store.js';

/**
 * ClickHouse embedded through chDB: the engine in-process, data in a local folder. The
 * writer's connection and the analysts' read-only one share the folder; `readonly = 1` is
 * set on the analysts' connection itself, so ClickHouse — not a text check — refuses writes.
 */
export class ChdbStore implements Store {
  readonly #writer: Session;
  readonly #reader: Session;

  constructor(dir: string) {
    mkdirSync(dir, { recursive: true });
    this.#writer = new Session(dir);
    this.#reader = new Session(dir);
    for (const [name, value] of Object.entries(ANALYST_LIMITS)) {
      this.#reader.query(`SET ${name} = ${typeof value === 'string' ? `'${value}'` : value}`);
    }
    this.#reader.query('SET readonly = 1');
  }

  async migrate(): Promise<number> {
    await this.#run(
      `CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3))
       ENGINE = MergeTree ORDER BY version`,
    );
    const done = new Set(
      (await this.rows<{ version: number }>('SELECT version FROM schema_migrations')).map(
        (r) => r.version,
      ),
    );
    let applied = 0;
    for (const migration of migrations()) {
      if (done.has(migration.version)) continue;
      for (const statement of migration.statements) await this.#run(statement);
      await this.#run(
        `INSERT INTO schema_migrations (version, name) VALUES (${migration.version}, '${migration.name}')`,
      );
      applied += 1;
    }
    return applied;
  }

  async insert(table: string, rows: string, token: string): Promise<void> {
    try {
      await this.#writer.insert({
        table,
        values: Buffer.from(rows),
        format: 'JSONEachRow',
        settings: { insert_deduplication_token: token },
      });
    } catch (cause) {
      throw new ChargestreamError(
        'STORE_UNAVAILABLE',
        `insert into ${table} failed: ${errorMessage(cause)}`,
        { retriable: true, cause },
      );
    }
  }

  async rows<T>(sql: string): Promise<T[]> {
    return parseJsonEachRow<T>(await this.#run(sql, 'JSONEachRow'));
  }

  async analystQuery(sql: string, format: string): Promise<string> {
    try {
      return (await this.#reader.queryAsync(sql, { format })).text();
    } catch (cause) {
      throw new ChargestreamError('SQL_FAILED', errorMessage(cause), { cause });
    }
  }

  close(): Promise<void> {
    this.#reader.close();
    this.#writer.close();
    return Promise.resolve();
  }

  async #run(sql: string, format = 'CSV'): Promise<string> {
    try {
      return (await this.#writer.queryAsync(sql, { format })).text();
    } catch (cause) {
      throw new ChargestreamError('STORE_QUERY_FAILED', errorMessage(cause), { cause });
    }
  }
}
