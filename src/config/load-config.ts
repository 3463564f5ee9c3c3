import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { ChargestreamError } from '../lib/errors.js';
import { demoNetwork } from './demo-network.js';
import { loadNetworkFile, parseNetwork, type Network } from './network.js';

export type Role = 'all' | 'gateway' | 'processor' | 'api';

/** Everything the engine runs with, validated once and frozen; passed down explicitly. */
export interface EngineConfig {
  readonly host: string;
  readonly ocppPort: number;
  readonly apiPort: number;
  readonly dataDir: string;
  readonly role: Role;
  readonly networkFile: string | null;
  readonly network: Network;
  /** Set when the built-in demo network is used: its freshly made admin key. */
  readonly demoApiKey: string | null;
  readonly kafka: string | null;
  /** Topics are `<prefix>.events`, `.transactions`, `.parking`; the processors' group `<prefix>.processors`. */
  readonly topicPrefix: string;
  readonly clickhouse: string | null;
  /** Partitions of the embedded log (the Kafka topic's count in distributed mode). */
  readonly partitions: number;
  /** Piscina worker threads. */
  readonly workers: number;
  /** Worker threads more, for partitions that are behind (a full batch). */
  readonly catchUpWorkers: number;
  /** Most events one worker task carries. */
  readonly batchSize: number;
  /** About the least milliseconds between two batches of one partition (embedded log). */
  readonly batchLingerMs: number;
  /** Nice value of the worker threads and the store's native threads (0: as the gateway's). */
  readonly backgroundNice: number;
  /** Least milliseconds between the starts of two store writes (fewer, larger parts). */
  readonly storeIntervalMs: number;
  /** About the least milliseconds between the starts of two writes of the embedded log (group commit). */
  readonly commitIntervalMs: number;
  /** fdatasync the embedded log before acknowledging (off: a crash of the OS, not of the process, may lose acks). */
  readonly fsync: boolean;
  readonly logLevel: string;
  /** This gateway process's index among `gateways` (1.6 transaction ids are interleaved). */
  readonly gateway: { readonly index: number; readonly count: number };
  /** Seconds without a frame or pong before a charger's connection counts as dead. */
  readonly idleTimeoutS: number;
  /** Per-frame metrics (frames by action, ack latency histogram); off only to measure their cost. */
  readonly frameMetrics: boolean;
  /** PEM files for wss:// (security profile 2); null: plain ws://. */
  readonly tls: { readonly cert: string; readonly key: string } | null;
}

/** One option: its flag, its environment variable, its default. */
interface Option<T> {
  flag: string;
  env: string;
  parse: (text: string, name: string) => T;
  fallback: T;
}

const port = (text: string, name: string): number => integer(text, name, 0, 65_535);
const positive = (max: number) => (text: string, name: string) => integer(text, name, 1, max);
const str = (text: string): string => text;
const bool = (text: string, name: string): boolean => {
  if (/^(1|true|yes|on)$/i.test(text)) return true;
  if (/^(0|false|no|off)$/i.test(text)) return false;
  throw invalid(name, `must be true or false, got "${text}"`);
};

function integer(text: string, name: string, min: number, max: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || value < min || value > max) {
    throw invalid(name, `must be a whole number from ${min} to ${max}, got "${text}"`);
  }
  return value;
}

function invalid(name: string, why: string): ChargestreamError {
  return new ChargestreamError('CONFIG_INVALID', `${name}: ${why}`);
}

const OPTIONS = {
  host: { flag: '--host', env: 'CHARGESTREAM_HOST', parse: str, fallback: '0.0.0.0' },
  ocppPort: { flag: '--ocpp-port', env: 'CHARGESTREAM_OCPP_PORT', parse: port, fallback: 8180 },
  apiPort: { flag: '--api-port', env: 'CHARGESTREAM_API_PORT', parse: port, fallback: 8181 },
  data: { flag: '--data', env: 'CHARGESTREAM_DATA', parse: str, fallback: './data' },
  config: { flag: '--config', env: 'CHARGESTREAM_CONFIG', parse: str, fallback: '' },
  role: {
    flag: '--role',
    env: 'CHARGESTREAM_ROLE',
    parse: (text: string, name: string): Role => {
      if (text === 'all' || text === 'gateway' || text === 'processor' || text === 'api')
        return text;
      throw invalid(name, `must be one of all, gateway, processor, api, got "${text}"`);
    },
    fallback: 'all',
  },
  kafka: { flag: '--kafka', env: 'CHARGESTREAM_KAFKA', parse: str, fallback: '' },
  topicPrefix: {
    flag: '--topic-prefix',
    env: 'CHARGESTREAM_TOPIC_PREFIX',
    parse: (text: string, name: string) => {
      if (!/^[A-Za-z0-9._-]{1,100}$/.test(text))
        throw invalid(name, `must be letters, digits, '.', '_' or '-', got "${text}"`);
      return text;
    },
    fallback: 'chargestream',
  },
  clickhouse: { flag: '--clickhouse', env: 'CHARGESTREAM_CLICKHOUSE', parse: str, fallback: '' },
  partitions: {
    flag: '--partitions',
    env: 'CHARGESTREAM_PARTITIONS',
    parse: positive(4096),
    fallback: 16,
  },
  workers: {
    flag: '--workers',
    env: 'CHARGESTREAM_WORKERS',
    parse: positive(256),
    fallback: Math.max(1, availableParallelism() - 1),
  },
  catchUpWorkers: {
    flag: '--catch-up-workers',
    env: 'CHARGESTREAM_CATCH_UP_WORKERS',
    parse: (t: string, n: string) => integer(t, n, 0, 256),
    fallback: 1,
  },
  batchSize: {
    flag: '--batch-size',
    env: 'CHARGESTREAM_BATCH_SIZE',
    parse: positive(100_000),
    fallback: 1000,
  },
  batchLinger: {
    flag: '--batch-linger',
    env: 'CHARGESTREAM_BATCH_LINGER',
    parse: (t: string, n: string) => integer(t, n, 0, 10_000),
    // Off: at 6,500–7,500 frames/s 500 ms saved about 6 % of the engine's CPU but raised the
    // ack p99 by a few ms, and the p99 is the nearer of the two targets (bench/RESULTS.md).
    fallback: 0,
  },
  backgroundNice: {
    flag: '--background-nice',
    env: 'CHARGESTREAM_BACKGROUND_NICE',
    parse: (t: string, n: string) => integer(t, n, 0, 19),
    // 19 shortened the ack tail on a machine of its own but starved the store's threads when
    // other processes kept the cores busy (bench/RESULTS.md).
    fallback: 10,
  },
  storeInterval: {
    flag: '--store-interval',
    env: 'CHARGESTREAM_STORE_INTERVAL',
    parse: (t: string, n: string) => integer(t, n, 0, 10_000),
    fallback: 500,
  },
  commitInterval: {
    flag: '--commit-interval',
    env: 'CHARGESTREAM_COMMIT_INTERVAL',
    parse: (t: string, n: string) => integer(t, n, 0, 100),
    fallback: 2,
  },
  fsync: { flag: '--fsync', env: 'CHARGESTREAM_FSYNC', parse: bool, fallback: true },
  logLevel: { flag: '--log-level', env: 'CHARGESTREAM_LOG_LEVEL', parse: str, fallback: 'info' },
  gatewayIndex: {
    flag: '--gateway-index',
    env: 'CHARGESTREAM_GATEWAY_INDEX',
    parse: (t: string, n: string) => integer(t, n, 0, 255),
    fallback: 0,
  },
  gateways: { flag: '--gateways', env: 'CHARGESTREAM_GATEWAYS', parse: positive(256), fallback: 1 },
  idleTimeout: {
    flag: '--idle-timeout',
    env: 'CHARGESTREAM_IDLE_TIMEOUT',
    parse: (t: string, n: string) => integer(t, n, 8, 960),
    fallback: 120,
  },
  frameMetrics: {
    flag: '--frame-metrics',
    env: 'CHARGESTREAM_FRAME_METRICS',
    parse: bool,
    fallback: true,
  },
  tlsCert: { flag: '--tls-cert', env: 'CHARGESTREAM_TLS_CERT', parse: str, fallback: '' },
  tlsKey: { flag: '--tls-key', env: 'CHARGESTREAM_TLS_KEY', parse: str, fallback: '' },
} satisfies Record<string, Option<unknown>>;

export type OptionName = keyof typeof OPTIONS;
export type Flags = Partial<Record<OptionName, string>>;

/** The flags every `start` takes, for the CLI to declare: [name, flag, env]. */
export const START_OPTIONS = Object.entries(OPTIONS).map(([name, o]) => ({
  name: name as OptionName,
  flag: o.flag,
  env: o.env,
}));

function pick<T>(option: Option<T>, flags: Flags, key: OptionName, env: NodeJS.ProcessEnv): T {
  const fromFlag = flags[key];
  if (fromFlag !== undefined) return option.parse(fromFlag, option.flag);
  const fromEnv = env[option.env];
  if (fromEnv !== undefined && fromEnv !== '') return option.parse(fromEnv, option.env);
  return option.fallback;
}

/**
 * Validates flags, environment and the network file into one frozen config. Flags win over
 * the environment; `./network.yaml` is used when present and no file is named; without one,
 * the built-in demo network. Every error names the flag, variable or field (exit code 2).
 */
export function loadConfig(flags: Flags = {}, env: NodeJS.ProcessEnv = process.env): EngineConfig {
  const get = <K extends OptionName>(key: K) =>
    pick(OPTIONS[key] as Option<ReturnType<(typeof OPTIONS)[K]['parse']>>, flags, key, env);

  const named = get('config');
  const networkFile =
    named !== '' ? resolve(named) : existsSync('network.yaml') ? resolve('network.yaml') : null;
  let network: Network;
  let demoApiKey: string | null = null;
  if (networkFile !== null) {
    network = loadNetworkFile(networkFile);
  } else {
    const demo = demoNetwork();
    network = parseNetwork(demo.network, 'built-in demo network');
    demoApiKey = demo.apiKey;
  }

  return Object.freeze({
    host: get('host'),
    ocppPort: get('ocppPort'),
    apiPort: get('apiPort'),
    dataDir: resolve(get('data')),
    role: get('role'),
    networkFile,
    network,
    demoApiKey,
    kafka: get('kafka') || null,
    topicPrefix: get('topicPrefix'),
    clickhouse: get('clickhouse') || null,
    partitions: get('partitions'),
    workers: get('workers'),
    catchUpWorkers: get('catchUpWorkers'),
    batchSize: get('batchSize'),
    batchLingerMs: get('batchLinger'),
    storeIntervalMs: get('storeInterval'),
    backgroundNice: get('backgroundNice'),
    commitIntervalMs: get('commitInterval'),
    fsync: get('fsync'),
    logLevel: get('logLevel'),
    idleTimeoutS: get('idleTimeout'),
    frameMetrics: get('frameMetrics'),
    gateway: gatewayPlace(get('gatewayIndex'), get('gateways')),
    tls: tlsFiles(get('tlsCert'), get('tlsKey')),
  });
}

function gatewayPlace(index: number, count: number): { index: number; count: number } {
  if (index >= count)
    throw invalid('--gateway-index', `must be below --gateways (${count}), got ${index}`);
  return { index, count };
}

function tlsFiles(cert: string, key: string): { cert: string; key: string } | null {
  if (cert === '' && key === '') return null;
  if (cert === '' || key === '')
    throw invalid(cert === '' ? '--tls-cert' : '--tls-key', 'give both --tls-cert and --tls-key');
  for (const [flag, path] of [
    ['--tls-cert', cert],
    ['--tls-key', key],
  ] as const) {
    if (!existsSync(path)) throw invalid(flag, `no such file: ${path}`);
  }
  return { cert: resolve(cert), key: resolve(key) };
}

/** Only this module reads the environment; others ask it. */
export function envValue(name: string): string | undefined {
  return process.env[name];
}
