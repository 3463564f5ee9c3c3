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
      // 150 readings 15 s apart: past an hour, so a reading sent an hour stale (a fault) takes
      // the timestamp of a reading of the connector's previous session.
      [CLI, 'demo', '--data', dir, '--chargers', '40', '--sessions', '2', '--readings', '150'],
      {
        encoding: 'utf8',
        timeout: 120_000,
      },
    );
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/sessions rated\s+80 \(of 80\)/);
    expect(run.stdout).toMatch(/errors\s+none/);
    expect(run.stdout).toMatch(/revenue\s+\d+(\.\d+)? EUR/);
    // The simulator's own totals reconcile with the store: the energy between each start and
    // stop register, and every acknowledged meter value stored (once, whatever was resent).
    const energy = /energy sent \/ stored\s+([\d.]+) kWh \/ ([\d.]+) kWh/.exec(run.stdout);
    expect(energy, run.stdout).not.toBeNull();
    expect(Number(energy![1])).toBeGreaterThan(0);
    expect(energy![2]).toBe(energy![1]);
    const readings = /meter values acked \/ stored\s+(\d+) \/ (\d+)/.exec(run.stdout);
    expect(readings, run.stdout).not.toBeNull();
    expect(readings![1]).toBe('12000');
    expect(readings![2]).toBe(readings![1]);
    expect(existsSync(join(dir, 'demo', 'demo-report.svg'))).toBe(true);
  }, 150_000);
});
