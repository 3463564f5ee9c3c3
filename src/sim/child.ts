/**
 * A simulator child process (see processes.ts): takes its options over IPC, runs its share of
 * the chargers, reports finished sessions twice a second and then its stats, and exits.
 */
import { toWire, type ChildOptions } from './processes.js';
import { simulate } from './simulator.js';

process.send!({ kind: 'ready' });
process.once('message', (raw) => {
  const options = raw as ChildOptions;
  let sessions = 0;
  const progress = setInterval(() => {
    if (sessions === 0) return;
    process.send!({ kind: 'sessions', n: sessions });
    sessions = 0;
  }, 500);
  simulate({ ...options, onSession: () => (sessions += 1) }).then(
    (stats) => {
      clearInterval(progress);
      if (sessions > 0) process.send!({ kind: 'sessions', n: sessions });
      process.send!({ kind: 'done', stats: toWire(stats) }, () => process.exit(0));
    },
    (error: unknown) => {
      process.stderr.write(`simulator process: ${String(error)}\n`);
      process.exit(1);
    },
  );
});
