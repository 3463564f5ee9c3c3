import { Readable } from 'node:stream';
import {
  ClickHouseLogLevel,
  createClient,
  type ClickHouseClient,
  type ClickHouseSettings,
  type DataFormat,
} from '@clickhouse/client';
import { ChargestreamError, errorMessage } from '../lib/errors.js';
import { applyMigrations } from './ddl.js';
import {
  ANALYST_LIMITS,
  insertFailed,
  insertFormat,
  isNested,
  nestedInsert,
  rowPieces,
  sqlString,
  type Layout,
  type Rows,
  type Store,
} from './store.js';

/** Where a ClickHouse server is, from `--clickhouse http://user:password@host:8123/database`. */
export interface ClickHouseTarget {
  readonly url: string;
  readonly username: string;
  readonly password: string;
  readonly database: string;
}

export function parseClickHouseUrl(text: string): ClickHouseTarget {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ChargestreamError(
      'CONFIG_INVALID',
      `--clickhouse: not a URL: "${text}" (http://user:password@host:8123/database)`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new ChargestreamError(
      'CONFIG_INVALID',
      `--clickhouse: the HTTP interface is http:// or https://, not ${url.protocol}`,
    );
  const database = decodeURIComponent(url.pathname.replace(/^\/+|\/+$/g, '')) || 'default';
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(database))
    throw new ChargestreamError('CONFIG_INVALID', `--clickhouse: bad database name "${database}"`);
  return {
    url: `${url.protocol}//${url.host}`,
    username: decodeURIComponent(url.username) || 'default',
    password: decodeURIComponent(url.password),
    database,
  };
}

/**
 * The store on a ClickHouse server over its HTTP interface (`@clickhouse/client`): the same
 * migrations, the same SQL and the same deduplication tokens as the embedded store, so that
 * any number of processors and API processes share one store. Analyst statements run with
 * `readonly = 1` and the limits as settings of their own request.
 */
export class ClickHouseHttpStore implements Store {
  readonly #client: ClickHouseClient;
  readonly #target: ClickHouseTarget;

  constructor(target: ClickHouseTarget) {
    this.#target = target;
    this.#client = createClient({
      url: target.url,
      username: target.username,
      password: target.password,
      database: target.database,
      compression: { request: false, response: false },
      // Longer than the analysts' max_execution_time; progress headers keep a proxy between
      // from closing an idle-looking long query.
      request_timeout: 120_000,
      clickhouse_settings: {
        send_progress_in_http_headers: 1,
        http_headers_progress_interval_ms: '60000',
      },
      max_open_connections: 16,
      // Failures surface as errors of this store, which the sink and the API log once.
      log: { level: ClickHouseLogLevel.OFF },
    });
  }

  async migrate(): Promise<number> {
    if (this.#target.database !== 'default') await this.#createDatabase();
    return applyMigrations(
      (sql) => this.#command(sql),
      (sql) => this.rows(sql),
    );
  }

  async insert(table: string, rows: Rows, token: string, layout?: Layout): Promise<void> {
    const { format, settings } = insertFormat(token, layout);
    const query = isNested(layout)
      ? `${nestedInsert(table, layout, `input(${sqlString(layout.structure)})`)} FORMAT ${format}`
      : `INSERT INTO ${table}${layout === undefined ? '' : ` (${layout.join(', ')})`} FORMAT ${format}`;
    try {
      // exec, not insert: the rows are text already, sent as the body unchanged (the
      // client's insert would encode each chunk of a stream as one JSON row).
      const { stream } = await this.#client.exec({
        query,
        values: Readable.from(encoded(rowPieces(rows))),
        clickhouse_settings: settings,
      });
      await drain(stream);
    } catch (cause) {
      throw insertFailed(table, cause);
    }
  }

  async rows<T>(sql: string): Promise<T[]> {
    try {
      const result = await this.#client.query({ query: sql, format: 'JSONEachRow' });
      return await result.json<T>();
    } catch (cause) {
      throw new ChargestreamError('STORE_QUERY_FAILED', errorMessage(cause), { cause });
    }
  }

  execute(sql: string): Promise<void> {
    return this.#command(sql);
  }

  async analystQuery(sql: string, format: string): Promise<string> {
    try {
      const { stream } = await this.#client.exec({
        query: sql,
        // The limits first, readonly last: the request's own settings, checked by the server.
        clickhouse_settings: {
          ...(Object.fromEntries(
            Object.entries(ANALYST_LIMITS).map(([name, value]) => [name, String(value)]),
          ) as ClickHouseSettings),
          default_format: format as DataFormat,
          // The status then says whether the whole result came (an error past the row limit
          // would otherwise arrive inside a 200 response, after rows already sent).
          wait_end_of_query: 1,
          readonly: '1',
        },
      });
      return (await drain(stream)).toString('utf8');
    } catch (cause) {
      throw new ChargestreamError('SQL_FAILED', errorMessage(cause), { cause });
    }
  }

  close(): Promise<void> {
    return this.#client.close();
  }

  async #command(sql: string): Promise<void> {
    try {
      await this.#client.command({ query: sql });
    } catch (cause) {
      throw new ChargestreamError('STORE_QUERY_FAILED', errorMessage(cause), { cause });
    }
  }

  /** The named database, created through a connection to `default` (it may not exist yet). */
  async #createDatabase(): Promise<void> {
    const admin = createClient({
      url: this.#target.url,
      username: this.#target.username,
      password: this.#target.password,
      compression: { request: false, response: false },
    });
    try {
      await admin.command({ query: `CREATE DATABASE IF NOT EXISTS ${this.#target.database}` });
    } catch (cause) {
      throw new ChargestreamError('STORE_QUERY_FAILED', errorMessage(cause), { cause });
    } finally {
      await admin.close();
    }
  }
}

async function drain(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Each piece as UTF-8 bytes, encoded as the request's body asks for it. */
function* encoded(pieces: Iterable<string>): Generator<Buffer> {
  for (const piece of pieces) yield Buffer.from(piece);
}
