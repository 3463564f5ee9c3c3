import { workerData } from 'node:worker_threads';
import type { Network } from '../src/config/network.js';
import { indexNetwork } from '../src/config/network-index.js';
import { packOutput, unpackTask, type TaskInput, type TaskOutput } from '../src/processor/task.js';
import { processBatch } from '../src/sessions/process-batch.js';

/**
 * Piscina task: one partition's batch through the session and rating rules. Thin on purpose:
 * the rules are pure code in src/sessions and src/rating. The network arrives as workerData
 * and is indexed once per thread; a batch carrying a newer version (configuration API) has
 * it indexed again before it runs. The batch comes and goes as msgpack (src/processor/task.ts).
 */
let index = indexNetwork((workerData as { network: Network }).network);
let version = 0;

export default function run(task: TaskInput): TaskOutput {
  const update = task.network;
  if (update !== undefined && update.version !== version) {
    const text = new TextDecoder().decode(new Uint8Array(update.json));
    index = indexNetwork(JSON.parse(text) as Network);
    version = update.version;
  }
  return packOutput(processBatch(index, unpackTask(task)));
}
