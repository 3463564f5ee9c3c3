import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ChdbStore } from './chdb-store.js';
import { ANALYST_LIMITS, type Layout } from './store.js';

/**
 * A stand-in for a ClickHouse server where none can be installed (this machine has none: the
 * Debian package is from 2018): one chDB store served over the part of ClickHouse's HTTP
 * interface that the engine's HTTP store uses, so that several processors and API processes
 * on one machine share one store, and so that the HTTP store is tested against a live peer.
 * It is not a ClickHouse server for production: one process, one database (`default`), no
 * users, no compression.
 *
 * What it speaks: `GET /ping`; `POST /` with the statement in the body, or in the `query`
 * parameter with the data in the body (`INSERT INTO t FORMAT JSONEachRow`, and `INSERT INTO t
 * (…) SELECT … FROM input('…') ARRAY JOIN … FORMAT …` of nested rows); settings as URL
 * parameters — `insert_deduplication_token` and
 * `deduplicate_blocks_in_dependent_materialized_views` on inserts, `readonly=1` (the store's read-only
 * connection, with the analyst limits), `default_format`, and the HTTP transport settings a
 * client may send, which change no result. Errors come back as ClickHouse sends them: status
 * 500 (400 for what this stand-in does not support), `X-ClickHouse-Exception-Code`, and a body
 * `Code: N. DB::Exception: …`.
 */
/** HTTP transport settings a client may send; they change no result. */
const TRANSPORT_SETTINGS = new Set([
  'query_id',
  'session_id',
  'wait_end_of_query',
  'send_progress_in_http_headers',
  'http_headers_progress_interval_ms',
]);

/**
 * Settings of inserts: deduplication of a retried block, in the table and its views; how
 * positional rows are read (insertFormat).
 */
const INSERT_SETTINGS = new Set([
  'insert_deduplication_token',
  'deduplicate_blocks_in_dependent_materialized_views',
  'input_format_json_compact_allow_variable_number_of_columns',
  'input_format_json_read_objects_as_strings',
]);

/** Limits a read-only request carries; the store's read-only connection has them already. */
const ANALYST_SETTINGS = new Set(Object.keys(ANALYST_LIMITS));

/** `INSERT INTO table [(column, …)] FORMAT name`, the rows in the body. */
const INSERT_WITH_DATA =
  /^\s*INSERT\s+INTO\s+([A-Za-z_][\w.]*)\s*(?:\(([\w\s,]+)\))?\s+FORMAT\s+(\w+)\s*$/i;

/**
 * `INSERT INTO table (column, …) SELECT … FROM input('structure') ARRAY JOIN … FORMAT name`,
 * the rows in the body: nested rows (NestedRows), read here from an insert file instead.
 */
const INSERT_SELECT_INPUT =
  /^\s*INSERT\s+INTO\s+([A-Za-z_][\w.]*)\s*\(([\w\s,]+)\)\s+SELECT\s+([\s\S]+?)\s+FROM\s+input\('((?:[^'\\]|\\.)*)'\)\s+(ARRAY\s+JOIN\s[\s\S]+?)\s+FORMAT\s+(\w+)\s*$/i;

/** The table, row format and layout of an insert whose rows are the body; null for another statement. */
function insertWithData(
  statement: string,
): { table: string; format: string; layout: Layout | undefined } | null {
  const plain = INSERT_WITH_DATA.exec(statement);
  if (plain !== null) {
    const [, table, columns, format] = plain;
    return {
      table: table!,
      format: format!,
      layout: columns === undefined ? undefined : list(columns),
    };
  }
  const nested = INSERT_SELECT_INPUT.exec(statement);
  if (nested === null) return null;
  const [, table, columns, select, structure, arrayJoin, format] = nested;
  return {
    table: table!,
    format: format!,
    layout: {
      columns: list(columns!),
      structure: structure!.replace(/\\(.)/g, '$1'),
      select: select!,
      arrayJoin: arrayJoin!,
    },
  };
}

/** `a, b, c` as its names. */
const list = (columns: string): string[] => columns.split(',').map((c) => c.trim());

export class ChdbHttpServer {
  readonly #server: Server;
  readonly #store: ChdbStore;

  private constructor(store: ChdbStore) {
    this.#store = store;
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((error: unknown) => fail(res, 500, 1001, String(error)));
    });
  }

  static async start(options: {
    dir: string;
    host: string;
    port: number;
  }): Promise<ChdbHttpServer> {
    const server = new ChdbHttpServer(new ChdbStore(options.dir));
    await new Promise<void>((resolve, reject) => {
      server.#server.once('error', reject);
      server.#server.listen(options.port, options.host, () => resolve());
    });
    return server;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    await this.#store.close();
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://stand-in');
    if (req.method === 'GET' && (url.pathname === '/ping' || url.pathname === '/')) {
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end('Ok.\n');
      return;
    }
    if (req.method !== 'POST' || url.pathname !== '/') {
      fail(res, 400, 1002, 'this stand-in serves POST / and GET /ping');
      return;
    }
    const body = await readBody(req);
    const params = url.searchParams;
    const insertSettings: Record<string, string> = {};
    let readonly = false;
    let format = 'TabSeparated';
    for (const [name, value] of params) {
      if (name === 'query' || TRANSPORT_SETTINGS.has(name)) continue;
      if (ANALYST_SETTINGS.has(name) && params.get('readonly') === '1') continue;
      if (name === 'database' && value === 'default') continue;
      if (INSERT_SETTINGS.has(name)) insertSettings[name] = value;
      else if (name === 'default_format') format = value;
      else if (name === 'readonly' && value === '1') readonly = true;
      else {
        fail(
          res,
          400,
          115,
          `the stand-in does not support the setting or parameter ${name}=${value}`,
        );
        return;
      }
    }
    const inParams = params.get('query');
    const statement = inParams ?? body.toString('utf8');
    try {
      const insert = inParams === null ? null : insertWithData(statement);
      if (insert !== null) {
        if (readonly)
          throw new Error('Code: 164. DB::Exception: Cannot execute query in readonly mode');
        const { table, format: rowFormat, layout } = insert;
        await this.#store.rawInsert(table, body, rowFormat, insertSettings, layout);
        res.writeHead(200).end();
        return;
      }
      const text = readonly
        ? await this.#store.analystQuery(statement, format)
        : await this.#store.statement(statement, format);
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=UTF-8' }).end(text);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      const code = /Code: (\d+)/.exec(message)?.[1] ?? '1000';
      fail(
        res,
        500,
        Number(code),
        message.includes('DB::Exception') ? message : `DB::Exception: ${message}`,
      );
    }
  }
}

function fail(res: ServerResponse, status: number, code: number, message: string): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const text = message.startsWith('Code:')
    ? message
    : `Code: ${code}. ${message.startsWith('DB::') ? message : `DB::Exception: ${message}`}`;
  res
    .writeHead(status, {
      'Content-Type': 'text/plain; charset=UTF-8',
      'X-ClickHouse-Exception-Code': String(code),
    })
    .end(`${text}\n`);
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
