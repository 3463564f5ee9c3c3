#!/usr/bin/env -S node --max-semi-space-size=64
import { Command, CommanderError, Option } from 'commander';
import { join, resolve } from 'node:path';
import { demoNetwork } from './config/demo-network.js';
import { envValue, loadConfig, START_OPTIONS, type Flags } from './config/load-config.js';
import { parseNetwork } from './config/network.js';
import { ChargestreamError, errorMessage } from './lib/errors.js';
import { createLogger } from './lib/log.js';
import { startEngine } from './main.js';
import { openStore } from './store/open-store.js';

/** Exit codes: 0 done, 1 failure while running, 2 bad flags or configuration. */
const EXIT_CONFIG = 2;
/** The longest a stop may take in all (its steps are bounded one by one too). */
const STOP_LIMIT_MS = 60_000;

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
  const ocpp =
    engine.ocppPort === null
      ? ''
      : `OCPP ${config.tls === null ? 'ws' : 'wss'}://${shown}:${engine.ocppPort}/ocpp/{chargerId}  `;
  process.stdout.write(
    `chargestream listening (${config.role}): ${ocpp}API http://${shown}:${engine.apiPort}\n`,
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
    // Each stop step is bounded (runStopSteps); this bounds the whole, whatever hangs.
    setTimeout(() => {
      log.fatal({ signal, ms: STOP_LIMIT_MS }, 'the stop did not finish; exiting');
      process.exit(1);
    }, STOP_LIMIT_MS);
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
  .description('apply the ClickHouse migrations to the data folder, or to a ClickHouse server')
  .option('--data <dir>', 'data folder (env CHARGESTREAM_DATA)')
  .option('--clickhouse <url>', 'a ClickHouse server instead (env CHARGESTREAM_CLICKHOUSE)')
  .action(async (options: { data?: string; clickhouse?: string }) => {
    const store = openStore(loadConfig(storeFlags(options)));
    try {
      const applied = await store.migrate();
      process.stdout.write(`${applied} migration(s) applied\n`);
    } finally {
      await store.close();
    }
  });

program
  .command('store-server')
  .description(
    "serve a chDB store over ClickHouse's HTTP interface, for processors and API processes on a machine without a ClickHouse server",
  )
  .option('--data <dir>', 'data folder; the store is <dir>/store (env CHARGESTREAM_DATA)')
  .option('--host <host>', 'listen address', '127.0.0.1')
  .option('--port <n>', 'listen port', '8123')
  .action(async (options: { data?: string; host: string; port: string }) => {
    const port = Number(options.port);
    if (!Number.isInteger(port) || port < 0 || port > 65_535)
      throw new ChargestreamError(
        'CONFIG_INVALID',
        `--port: must be a port number, got "${options.port}"`,
      );
    const config = loadConfig(storeFlags(options));
    const { ChdbHttpServer } = await import('./store/chdb-http-server.js');
    const server = await ChdbHttpServer.start({
      dir: join(config.dataDir, 'store'),
      host: options.host,
      port,
    });
    process.stdout.write(
      `store server: http://${options.host}:${server.port} (chDB in ${join(config.dataDir, 'store')})\n`,
    );
    const stop = () => void server.close().then(() => process.exit(0));
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
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
  .option('--clickhouse <url>', 'a ClickHouse server (env CHARGESTREAM_CLICKHOUSE)')
  .option('--format <name>', 'ClickHouse output format', 'PrettyCompact')
  .action(
    async (
      sql: string,
      options: { api?: string; key?: string; data?: string; clickhouse?: string; format: string },
    ) => {
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
      const config = loadConfig(storeFlags(options));
      const { checkReadOnlySql } = await import('./api/sql-guard.js');
      const verdict = checkReadOnlySql(sql);
      if (!verdict.ok) throw new ChargestreamError('CONFIG_INVALID', `sql: ${verdict.reason}`);
      const store = openStore(config);
      try {
        process.stdout.write(await store.analystQuery(verdict.sql, options.format));
      } finally {
        await store.close();
      }
    },
  );

program
  .command('simulate')
  .description('simulated chargers running sessions against an engine (load and demos)')
  .option('--url <url>', 'the OCPP endpoint', 'ws://127.0.0.1:8180/ocpp')
  .option(
    '--config <file>',
    'network file: chargers, tokens and passwords (default: the built-in demo network)',
  )
  .option('--chargers <n>', "how many of the network's chargers to simulate", '100')
  .option('--sessions <n>', 'sessions per charger (0: boot and hold only)', '2')
  .option('--readings <n>', 'meter readings per session', '20')
  .option('--interval <s>', 'seconds between readings (virtual time unless --realtime)', '15')
  .option('--realtime', 'readings every --interval seconds of wall clock')
  .option('--burst <n>', 'readings sent back to back at each interval (--realtime)', '1')
  .option('--ramp <s>', 'open the connections over this many seconds (0: all at once)', '0')
  .option('--share-201 <x>', 'share of chargers speaking OCPP 2.0.1', '0.3')
  .option('--faults <x>', 'share of readings sent wrong on purpose', '0.01')
  .option('--storm <s>', 'reconnect storm: every charger drops and reconnects at once, S s in')
  .option('--offline <x>', 'share of chargers going offline mid-session (backlog)', '0')
  .option('--offline-ms <ms>', 'how long chargers stay offline after a drop')
  .option('--hold <s>', 'keep the connections open this long after the last session', '0')
  .option('--processes <n>', 'simulator processes (≤ 19,000 chargers each)', '1')
  .option('--local-address <list>', 'comma-separated source addresses, e.g. 127.0.0.2,127.0.0.3')
  .option('--report <file>', 'write a JSON report (with per-charger totals) to this file')
  .action(async (options: Record<string, string | boolean | undefined>) => {
    const text = (name: string) =>
      options[name.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase())];
    const number = (name: string, min: number, max: number): number => {
      const value = Number(text(name));
      if (!Number.isFinite(value) || value < min || value > max)
        throw new ChargestreamError(
          'CONFIG_INVALID',
          `--${name}: must be a number from ${min} to ${max}`,
        );
      return value;
    };
    const config = loadConfig(
      options['config'] === undefined ? {} : { config: String(options['config']) },
    );
    const processes = number('processes', 1, 64);
    const wanted = number('chargers', 1, 19_000 * processes);
    const chargers = config.network.chargers.slice(0, wanted);
    if (chargers.length < wanted)
      throw new ChargestreamError(
        'CONFIG_INVALID',
        `--chargers: the network has ${chargers.length} chargers, not ${wanted}`,
      );
    const passwords: Record<string, string> = {};
    for (const c of chargers) if (c.password !== undefined) passwords[c.id] = c.password;
    const stormS = text('storm') === undefined ? null : number('storm', 0, 86_400);
    const offlineMs =
      text('offline-ms') === undefined ? undefined : number('offline-ms', 0, 3_600_000);
    const localAddresses = String(text('local-address') ?? '')
      .split(',')
      .map((a) => a.trim())
      .filter(Boolean);
    const settings = {
      url: String(options['url']),
      chargers: chargers.length,
      sessions: number('sessions', 0, 10_000),
      readings: number('readings', 1, 100_000),
      interval: number('interval', 0.001, 3600),
      realtime: options['realtime'] === true,
      burst: number('burst', 1, 10_000),
      ramp: number('ramp', 0, 3600),
      share201: number('share-201', 0, 1),
      faults: number('faults', 0, 1),
      stormS,
      offline: number('offline', 0, 1),
      offlineMs: offlineMs ?? null,
      hold: number('hold', 0, 86_400),
      processes,
      localAddresses,
    };
    const { simulateInProcesses } = await import('./sim/processes.js');
    const { simReport } = await import('./sim/report.js');
    const reportFile = text('report');
    const stats = await simulateInProcesses(
      {
        url: settings.url,
        chargerIds: chargers.map((c) => c.id),
        tokens: config.network.tokens.map((t) => t.id),
        sessionsPerCharger: settings.sessions,
        readingsPerSession: settings.readings,
        intervalS: settings.interval,
        share201: settings.share201,
        faults: settings.faults,
        maxPowerW: 22_000,
        passwords,
        realtime: settings.realtime,
        burst: settings.burst,
        rampS: settings.ramp,
        stormAfterS: stormS,
        ...(offlineMs === undefined ? {} : { offlineMs }),
        offlineShare: settings.offline,
        holdS: settings.hold,
        localAddresses,
        perCharger: reportFile !== undefined,
      },
      processes,
    );
    const report = simReport(stats, settings) as Record<string, unknown>;
    if (reportFile !== undefined) {
      const { writeFileSync } = await import('node:fs');
      writeFileSync(String(reportFile), JSON.stringify(report, null, 2) + '\n');
    }
    // The summary on stdout; the timeline and per-charger totals only in the report file.
    const shown = { ...report };
    delete shown['timeline'];
    delete shown['perCharger'];
    process.stdout.write(JSON.stringify(shown, null, 2) + '\n');
    process.exit(0);
  });

program
  .command('demo')
  .description('the engine plus simulated chargers, live progress, then a report and a chart')
  .option('--data <dir>', 'data folder (the demo uses <dir>/demo, emptied first)')
  .option('--chargers <n>', 'simulated chargers', '300')
  .option('--sessions <n>', 'sessions per charger', '3')
  .option('--readings <n>', 'meter readings per session', '40')
  .action(
    async (options: { data?: string; chargers: string; sessions: string; readings: string }) => {
      // The demo runs the built-in demo network, whatever network.yaml says.
      const base = loadConfig(options.data === undefined ? {} : { data: options.data });
      const demo = demoNetwork();
      const config = {
        ...base,
        network: parseNetwork(demo.network, 'built-in demo network'),
        demoApiKey: demo.apiKey,
      };
      const { runDemo } = await import('./sim/demo.js');
      await runDemo(config, {
        chargers: Number(options.chargers),
        sessions: Number(options.sessions),
        readings: Number(options.readings),
      });
      process.exit(0);
    },
  );

const kafka = program
  .command('kafka')
  .description(
    'a local single-node Kafka broker (KRaft) assembled from Maven Central, for development and tests',
  );
const kafkaDir = (dir?: string) =>
  resolve(dir ?? join(envValue('CHARGESTREAM_DATA') ?? './data', 'kafka'));
kafka
  .command('up')
  .option('--dir <dir>', 'broker data folder (default ./data/kafka)')
  .option('--port <n>', 'listener port', '9092')
  .option('--controller-port <n>', 'KRaft controller port', '9093')
  .action(async (options: { dir?: string; port: string; controllerPort: string }) => {
    const { startLocalBroker } = await import('./kafka/local-broker.js');
    const port = Number(options.port);
    const controllerPort = Number(options.controllerPort);
    if (!Number.isInteger(port) || port < 1 || port > 65_535)
      throw new ChargestreamError(
        'CONFIG_INVALID',
        `--port: must be a port number, got "${options.port}"`,
      );
    if (!Number.isInteger(controllerPort) || controllerPort < 1 || controllerPort > 65_535) {
      throw new ChargestreamError(
        'CONFIG_INVALID',
        `--controller-port: must be a port number, got "${options.controllerPort}"`,
      );
    }
    const broker = await startLocalBroker({ dataDir: kafkaDir(options.dir), port, controllerPort });
    process.stdout.write(
      `kafka broker up: ${broker.brokers} (pid ${broker.pid}, log ${broker.logFile})\n`,
    );
  });
kafka
  .command('down')
  .option('--dir <dir>', 'broker data folder (default ./data/kafka)')
  .action(async (options: { dir?: string }) => {
    const { stopLocalBroker } = await import('./kafka/local-broker.js');
    const stopped = await stopLocalBroker(kafkaDir(options.dir));
    process.stdout.write(stopped ? 'kafka broker stopped\n' : 'no kafka broker was running\n');
  });
kafka
  .command('status')
  .option('--dir <dir>', 'broker data folder (default ./data/kafka)')
  .action(async (options: { dir?: string }) => {
    const { brokerStatus } = await import('./kafka/local-broker.js');
    const status = await brokerStatus(kafkaDir(options.dir));
    process.stdout.write(
      status.running ? `running: ${status.brokers ?? '?'} (pid ${status.pid})\n` : 'not running\n',
    );
    if (!status.running) process.exitCode = 3;
  });

/** The store flags of a command that only opens the store. */
function storeFlags(options: { data?: string; clickhouse?: string }): Flags {
  return {
    ...(options.data === undefined ? {} : { data: options.data }),
    ...(options.clickhouse === undefined ? {} : { clickhouse: options.clickhouse }),
  };
}

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
