import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ENGINE_NODE_FLAGS } from '../../src/lib/engine-flags.js';

const ROOT = join(import.meta.dirname, '..', '..');

/**
 * The young generation's size in a node with `flags`, after objects that outlive scavenges
 * (V8 grows it up to its maximum while much of it survives).
 */
function youngGenerationBytes(flags: readonly string[]): number {
  const script = `
    const v8 = require('node:v8');
    const kept = [];
    for (let i = 0; i < 3e6; i++) kept.push({ i });
    const space = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
    process.stdout.write(String(space.space_size));
  `;
  return Number(execFileSync(process.execPath, [...flags, '-e', script], { encoding: 'utf8' }));
}

describe('the Node options the engine runs with', () => {
  it('are on every command line that starts the engine outside the benchmarks and tests', () => {
    const scripts = (
      JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
        scripts: Record<string, string>;
      }
    ).scripts;
    const withFlags = `node ${ENGINE_NODE_FLAGS.join(' ')} dist/src/cli.js`;
    expect(scripts['start']).toBe(`${withFlags} start`);
    expect(scripts['demo']).toContain(`${withFlags} demo`);
    const firstLine = readFileSync(join(ROOT, 'src', 'cli.ts'), 'utf8').split('\n')[0];
    expect(firstLine).toBe(`#!/usr/bin/env -S node ${ENGINE_NODE_FLAGS.join(' ')}`);
  });

  it('let the young generation grow past V8’s default of two 16 MB semi-spaces', () => {
    expect(youngGenerationBytes([])).toBeLessThanOrEqual(32 * 1024 * 1024);
    expect(youngGenerationBytes(ENGINE_NODE_FLAGS)).toBeGreaterThan(64 * 1024 * 1024);
  });
});
