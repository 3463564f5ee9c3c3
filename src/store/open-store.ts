import { join } from 'node:path';
import { ChdbStore } from './chdb-store.js';
import { ClickHouseHttpStore, parseClickHouseUrl } from './clickhouse-http-store.js';
import type { Store } from './store.js';

/** The store a process uses: a ClickHouse server when `--clickhouse` names one, else chDB in the data folder. */
export function openStore(config: {
  readonly clickhouse: string | null;
  readonly dataDir: string;
}): Store {
  return config.clickhouse === null
    ? new ChdbStore(join(config.dataDir, 'store'))
    : new ClickHouseHttpStore(parseClickHouseUrl(config.clickhouse));
}
