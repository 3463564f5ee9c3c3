import { workerData } from 'node:worker_threads';
import type { Network } from '../src/config/network.js';
import { indexNetwork } from '../src/config/network-index.js';
import { lowerThisThread } from '../src/lib/priority.js';
import {
  holdAll,
  markStale,
  ResidentStates,
  type TaskInput,
  type TaskOutput,
} from '../src/sessions/held-state.js';
import { processBatch } from '../src/sessions/process-batch.js';
import { decodeRuns, EventUnpacker } from '../src/bus/event-codec.js';

/**
 * Piscina task: one partition's batch through the session and rating rules. Thin on purpose:
 * the rules are pure code in src/sessions and src/rating; the events arrive as the embedded
 * log's bytes (decoded here) or as objects (Kafka), the connector states arrive and leave as
 * JSON text (src/sessions/held-state.ts), and the thread keeps the objects they were
 * written from for the partition's next batch (ResidentStates). The network arrives as
 * workerData and is indexed once per thread; a batch carrying a newer version (configuration
 * API) has it indexed again before it runs.
 */
const data = workerData as { network: Network; nice: number };
lowerThisThread(data.nice);
let index = indexNetwork(data.network);
let version = 0;
const resident = new ResidentStates();
const unpacker = new EventUnpacker();

export default function run(input: TaskInput): TaskOutput {
  const update = input.network;
  if (update !== undefined && update.version !== version) {
    const text = new TextDecoder().decode(new Uint8Array(update.json));
    index = indexNetwork(JSON.parse(text) as Network);
    version = update.version;
  }
  const taken = resident.take(input.states);
  const given =
    input.encoded === undefined ? (input.entries ?? []) : decodeRuns(input.encoded, unpacker);
  const entries = markStale(given, input.stale ?? []);
  const output = processBatch(index, {
    partition: input.partition,
    entries,
    states: taken.states,
    highWater: input.highWater,
  });
  const states = holdAll(output.states);
  resident.keep(output.states, states);
  return { ...output, states, statesKept: taken.kept, statesParsed: taken.parsed };
}
