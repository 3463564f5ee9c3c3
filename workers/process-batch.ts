import { workerData } from 'node:worker_threads';
import type { Network } from '../src/config/network.js';
import { indexNetwork } from '../src/config/network-index.js';
import { processBatch, type BatchInput, type BatchOutput } from '../src/sessions/process-batch.js';

/**
 * Piscina task: one partition's batch through the session and rating rules. Thin on purpose:
 * the rules are pure code in src/sessions and src/rating. The network arrives once, as
 * workerData, and is indexed once per thread.
 */
const index = indexNetwork((workerData as { network: Network }).network);

export default function run(input: BatchInput): BatchOutput {
  return processBatch(index, input);
}
