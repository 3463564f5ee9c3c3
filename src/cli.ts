#!/usr/bin/env node
import { Command, CommanderError, Option } from 'commander';
import { join } from 'node:path';
import { envValue, loadConfig, START_OPTIONS, type Flags } from './config/load-config.js';
import { ChargestreamError, errorMessage } from './lib/errors.js';
import { createLogger } from './lib/log.js';
import { startEngine } from './main.js';
import { ChdbStore } from './store/chdb-store.js';

/** Exit codes: 0 done, 1 failure while running, 2 bad flags or configuration. */
const EXIT_CONFIG = 2;

const program = new Command('chargestream')
  .description('OCPP ingest, validation and rating engine for charging networks')
  .exitOverride()
  .configureOutput({ writeErr: (text) => process.stderr.write(text) });

const start = program
  .command('start')
  .description('run the engine (embedded: gateway, log, processor, chDB, API)');
for (const o of START_OPTIONS) {
  start.addOption(new Option(`${o.flag} <value>`, `(env ${o.env})`));
}
start.action(async (options: Record<string, string>) => {
  const flags: Flags = {};
  for (const o of START_OPTIONS) {
    const key = o.flag.slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    if (options[key] !== undefined) flags[o.name] = options[key];
  }
  const config = loadConfig(flags);
  const log = createLogger(config.logLevel);
  const engine = await startEngine(config, log);
  const shown = config.host === '0.0.0.0' ? '127.0.0.1' : config.host;
  process.stdout.write(
    `chargestream listening: OCPP ws://${shown}:${engine.ocppPort}/ocpp/{chargerId}  API http://${shown}:${engine.apiPort}\n`,
  );
  if (config.demoApiKey !== null) {
    process.stdout.write(
      `built-in demo network (no network.yaml); admin API key for this run: ${config.demoApiKey}\n`,
    );
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    engine.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: errorMessage(error) }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
});

program
  .command('migrate')
  .description('apply the ClickHouse migrations to the data folder')
  .option('--data <dir>', 'data folder (env CHARGESTREAM_DATA)')
  .action(async (options: { data?: string }) => {
    const config = loadConfig(options.data === undefined ? {} : { data: options.data });
    const store = new ChdbStore(join(config.dataDir, 'store'));
    const applied = await store.migrate();
    await store.close();
    process.stdout.write(`${applied} migration(s) applied\n`);
  });

program
  .command('query')
  .description(
    "run one read-only SQL statement: through a running engine's API, or on a stopped data folder",
  )
  .argument('<sql>', 'SELECT, WITH, SHOW, DESCRIBE or EXPLAIN')
  .option('--api <url>', "a running engine's API, e.g. http://127.0.0.1:8181 (needs --key)")
  .option('--key <key>', 'API key (env CHARGESTREAM_API_KEY)')
  .option('--data <dir>', 'data folder of a stopped engine (env CHARGESTREAM_DATA)')
  .option('--format <name>', 'ClickHouse output format', 'PrettyCompact')
  .action(
    async (sql: string, options: { api?: string; key?: string; data?: string; format: string }) => {
      if (options.api !== undefined) {
        const key = options.key ?? envValue('CHARGESTREAM_API_KEY') ?? '';
        const response = await fetch(
          `${options.api}/api/v1/sql?format=${encodeURIComponent(options.format)}`,
          {
            method: 'POST',
            headers: { Authorization: `Bearer ${key}` },
            body: sql,
          },
        );
        const text = await response.text();
        if (!response.ok) throw new ChargestreamError('SQL_FAILED', `${response.status}: ${text}`);
        process.stdout.write(text);
        return;
      }
      const config = loadConfig(options.data === undefined ? {} : { data: options.data });
      const { checkReadOnlySql } = await import('./api/sql-guard.js');
      const verdict = checkReadOnlySql(sql);
      if (!verdict.ok) throw new ChargestreamError('CONFIG_INVALID', `sql: ${verdict.reason}`);
      const store = new ChdbStore(join(config.dataDir, 'store'));
      try {
        process.stdout.write(await store.analystQuery(verdict.sql, options.format));
      } finally {
        await store.close();
      }
    },
  );

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    process.exit(error.exitCode === 0 ? 0 : EXIT_CONFIG);
  }
  process.stderr.write(`chargestream: ${errorMessage(error)}\n`);
  process.exit(
    error instanceof ChargestreamError && error.code === 'CONFIG_INVALID' ? EXIT_CONFIG : 1,
  );
}
