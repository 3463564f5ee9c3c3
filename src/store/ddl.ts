import { readdirSync, readFileSync } from 'node:fs';
import { schemaPath } from '../lib/paths.js';

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly statements: readonly string[];
}

/**
 * The versioned migrations in schemas/clickhouse (`NNNN_name.sql`), in order. Statements are
 * separated by a semicolon at the end of a line.
 */
export function migrations(): Migration[] {
  const dir = schemaPath('clickhouse');
  return readdirSync(dir)
    .filter((f) => /^\d{4}_.+\.sql$/.test(f))
    .sort()
    .map((file) => ({
      version: Number.parseInt(file.slice(0, 4), 10),
      name: file,
      statements: readFileSync(`${dir}/${file}`, 'utf8')
        .split(/;\s*$/m)
        .map((s) => s.replace(/^\s*--.*$/gm, '').trim())
        .filter((s) => s.length > 0),
    }));
}

/**
 * Applies the migrations not applied yet, in order, through `run` (a statement) and `rows`
 * (a query): the same for every backend; then the merge setting (tuneMerges). Returns how
 * many migrations ran.
 */
export async function applyMigrations(
  run: (sql: string) => Promise<unknown>,
  rows: <T>(sql: string) => Promise<T[]>,
): Promise<number> {
  await run(
    `CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3))
     ENGINE = MergeTree ORDER BY version`,
  );
  const done = new Set(
    (await rows<{ version: number }>('SELECT version FROM schema_migrations')).map(
      (r) => r.version,
    ),
  );
  let applied = 0;
  for (const migration of migrations()) {
    if (done.has(migration.version)) continue;
    for (const statement of migration.statements) await run(statement);
    await run(
      `INSERT INTO schema_migrations (version, name) VALUES (${migration.version}, '${migration.name}')`,
    );
    applied += 1;
  }
  await tuneMerges(run, rows);
  return applied;
}

/**
 * ClickHouse's merge selector's base (its default 5): how many parts of about one size it lets
 * gather before it merges them. Every store write adds a small part to each table it writes,
 * and every merge reads, sorts and compresses its rows again; a base of 10 has each row merged
 * fewer times, for a few more parts at a time (bench/RESULTS.md: the store's writes at 2,500
 * frames/s, merges 0.13 → 0.08 of a core; 6 → 9 parts of 2.25 M readings).
 */
export const MERGE_SELECTOR_BASE = 10;

/**
 * Sets MERGE_SELECTOR_BASE on every MergeTree table of the database that does not have that
 * value yet, where the server knows the setting (ClickHouse 24.11 and later; an older one
 * keeps its default).
 */
async function tuneMerges(
  run: (sql: string) => Promise<unknown>,
  rows: <T>(sql: string) => Promise<T[]>,
): Promise<void> {
  const known = await rows<{ n: number | string }>(
    "SELECT count() AS n FROM system.merge_tree_settings WHERE name = 'merge_selector_base'",
  );
  if (Number(known[0]?.n ?? 0) === 0) return;
  const tables = await rows<{ name: string }>(
    `SELECT name FROM system.tables WHERE database = currentDatabase() AND engine LIKE '%MergeTree'
       AND position(create_table_query, 'merge_selector_base = ${MERGE_SELECTOR_BASE}') = 0`,
  );
  for (const { name } of tables)
    await run(
      `ALTER TABLE \`${name}\` MODIFY SETTING merge_selector_base = ${MERGE_SELECTOR_BASE}`,
    );
}
