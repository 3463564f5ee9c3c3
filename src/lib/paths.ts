import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The project's root folder, found by walking up from this module. Sources run from `src/`
 * (tests, tsx) and from `dist/src/` (npm start); both reach the same `schemas/` this way.
 */
function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'schemas'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('chargestream: cannot find the project root');
    dir = parent;
  }
}

export const projectRoot = findRoot();

/** True when running from TypeScript sources (tests, tsx) rather than the build. */
export const runningFromSource = import.meta.url.endsWith('.ts');

export function schemaPath(...parts: string[]): string {
  return join(projectRoot, 'schemas', ...parts);
}
