import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, tempDir } from '../helpers/engine.js';

describe('npm run demo', () => {
  it('runs the engine and simulated chargers (1.6 and 2.0.1, some faulty readings) and reports from the store', () => {
    const dir = tempDir();
    const run = spawnSync(
      process.execPath,
      [CLI, 'demo', '--data', dir, '--chargers', '40', '--sessions', '2', '--readings', '10'],
      {
        encoding: 'utf8',
        timeout: 120_000,
      },
    );
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/sessions rated\s+80 \(of 80\)/);
    expect(run.stdout).toMatch(/errors\s+none/);
    expect(run.stdout).toMatch(/revenue\s+\d+(\.\d+)? EUR/);
    expect(existsSync(join(dir, 'demo', 'demo-report.svg'))).toBe(true);
  }, 150_000);
});
