import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChdbStore } from '../../src/store/chdb-store.js';
import { tempDir } from '../helpers/engine.js';

let store: ChdbStore;

beforeAll(async () => {
  store = new ChdbStore(join(tempDir(), 'store'));
  await store.migrate();
});

afterAll(async () => {
  await store.close();
});

const row = (offset: number) =>
  JSON.stringify({
    charger_id: 'CP1',
    connector_id: 1,
    ts: '2026-11-20 08:00:00.000',
    measurand: 'Energy.Active.Import.Register',
    phase: '',
    value: offset,
    unit: 'Wh',
    context: '',
    valid: true,
    reject_reason: '',
    session_id: '',
    log_partition: 0,
    log_offset: offset,
  }) + '\n';

describe('chDB store', () => {
  it('migrations run once', async () => {
    expect(await store.migrate()).toBe(0);
    const tables = await store.rows<{ name: string }>(
      'SELECT name FROM system.tables WHERE database = currentDatabase() ORDER BY name',
    );
    expect(tables.map((t) => t.name)).toEqual(
      expect.arrayContaining([
        'cdrs',
        'connector_status',
        'meter_readings',
        'sessions',
        'sessions_log',
      ]),
    );
  });

  it('an insert retried with the same deduplication token writes its rows once', async () => {
    const rows = row(1) + row(2);
    await store.insert('meter_readings', rows, 'test:dedup');
    await store.insert('meter_readings', rows, 'test:dedup');
    await store.insert('meter_readings', row(3), 'test:other');
    const [count] = await store.rows<{ n: string }>(
      'SELECT toString(count()) AS n FROM meter_readings',
    );
    expect(count?.n).toBe('3');
  });

  it('the analyst connection is read-only by ClickHouse itself', async () => {
    await expect(
      store.analystQuery("INSERT INTO meter_readings (charger_id) VALUES ('x')", 'CSV'),
    ).rejects.toThrow(/readonly/i);
    await expect(store.analystQuery('SELECT 1 SETTINGS readonly = 0', 'CSV')).rejects.toThrow();
    expect(await store.analystQuery('SELECT count() FROM meter_readings', 'CSV')).toBe('3\n');
  });
});
