import type { Logger } from 'pino';

/** A step of the engine's stop: a name for the log, and what it does. */
export interface StopStep {
  readonly name: string;
  run(): Promise<void> | void;
}

export interface StopOutcome {
  /** Steps that threw, or did not finish within the step limit. */
  readonly failed: readonly string[];
}

/**
 * Runs the steps in order, each for at most `stepMs`. A step that overruns is logged by name
 * and left behind; the next one starts. What was acknowledged is in the log or Kafka before
 * the answer goes out, so a stop that gives up on a step loses nothing: the next start
 * replays what was not stored. A stop never hangs on one component.
 */
export async function runStopSteps(
  steps: readonly StopStep[],
  log: Logger,
  stepMs: number,
): Promise<StopOutcome> {
  const failed: string[] = [];
  for (const step of steps) {
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const overrun = new Promise<'overran'>((resolve) => {
      timer = setTimeout(() => resolve('overran'), stepMs);
    });
    const outcome = await Promise.race([
      Promise.resolve()
        .then(() => step.run())
        .then(
          () => 'done' as const,
          (error: unknown) => error,
        ),
      overrun,
    ]);
    clearTimeout(timer);
    const ms = Math.round(performance.now() - started);
    if (outcome === 'done') {
      log.debug({ step: step.name, ms }, 'stop step done');
    } else if (outcome === 'overran') {
      failed.push(step.name);
      log.error({ step: step.name, ms }, 'stop step did not finish in time; going on without it');
    } else {
      failed.push(step.name);
      log.error({ step: step.name, ms, err: String(outcome) }, 'stop step failed; going on');
    }
  }
  return { failed };
}
