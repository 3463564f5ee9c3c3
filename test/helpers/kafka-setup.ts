import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startLocalBroker, type LocalBroker } from '../../src/kafka/local-broker.js';
import { freePort } from '../../src/lib/free-port.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Bootstrap servers of the real broker the integration and e2e suites share. */
    kafkaBrokers: string;
  }
}

let broker: LocalBroker | undefined;

/**
 * One real Kafka broker (KRaft, single node, loopback) for the whole run; each test makes its
 * own topics and consumer groups, so tests never see each other's data.
 */
export async function setup(project: TestProject): Promise<void> {
  const port = await freePort();
  let controllerPort = await freePort();
  while (controllerPort === port) controllerPort = await freePort();
  broker = await startLocalBroker({
    dataDir: await mkdtemp(join(tmpdir(), 'chargestream-kafka-suite-')),
    port,
    controllerPort,
  });
  project.provide('kafkaBrokers', broker.brokers);
}

export async function teardown(): Promise<void> {
  await broker?.stop();
}
