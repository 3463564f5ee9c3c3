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
