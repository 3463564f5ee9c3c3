import { pino } from 'pino';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { runStopSteps } from '../../src/lib/shutdown.js';

function capturedLog(): { log: pino.Logger; lines: () => Array<Record<string, unknown>> } {
  const text: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text.push(chunk.toString());
      done();
    },
  });
  return {
    log: pino({ level: 'debug' }, sink),
    lines: () =>
      text
        .join('')
        .split('\n')
        .filter((l) => l.length > 0)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

describe('the engine stop, step by step', () => {
  it('goes on past a step that never finishes, names it, and runs the steps after it', async () => {
    const { log, lines } = capturedLog();
    const ran: string[] = [];
    const { failed } = await runStopSteps(
      [
        { name: 'bus', run: () => void ran.push('bus') },
        { name: 'worker pools', run: () => new Promise<void>(() => ran.push('pools')) },
        { name: 'store', run: () => Promise.resolve().then(() => void ran.push('store')) },
      ],
      log,
      50,
    );
    expect(ran).toEqual(['bus', 'pools', 'store']);
    expect(failed).toEqual(['worker pools']);
    const overran = lines().filter((l) => l['level'] === 50);
    expect(overran).toHaveLength(1);
    expect(overran[0]).toMatchObject({ step: 'worker pools' });
    expect(overran[0]!['msg']).toMatch(/did not finish in time/);
  });

  it('reports a step that throws, synchronously or not, and still runs the rest', async () => {
    const { log, lines } = capturedLog();
    const ran: string[] = [];
    const { failed } = await runStopSteps(
      [
        {
          name: 'command log',
          run: () => {
            throw new Error('flush refused');
          },
        },
        { name: 'relay', run: () => Promise.reject(new Error('socket gone')) },
        { name: 'store', run: () => void ran.push('store') },
      ],
      log,
      1000,
    );
    expect(failed).toEqual(['command log', 'relay']);
    expect(ran).toEqual(['store']);
    const errors = lines().filter((l) => l['level'] === 50);
    expect(errors.map((l) => l['err'])).toEqual(['Error: flush refused', 'Error: socket gone']);
  });

  it('logs each finished step with its time at debug', async () => {
    const { log, lines } = capturedLog();
    const { failed } = await runStopSteps([{ name: 'bus', run: () => undefined }], log, 1000);
    expect(failed).toEqual([]);
    const [line, ...more] = lines();
    expect(more).toEqual([]);
    expect(line).toMatchObject({ level: 20, step: 'bus', msg: 'stop step done' });
    expect(typeof line!['ms']).toBe('number');
  });
});
