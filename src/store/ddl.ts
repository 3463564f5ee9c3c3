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
 * (a query): the same for every backend. Returns how many ran.
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
  return applied;
}
