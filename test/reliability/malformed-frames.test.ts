import { describe, expect, it } from 'vitest';
import { aCharger, aNetwork } from '../helpers/builders.js';
import { useEngine } from '../helpers/engine.js';
import { recordFigure } from './figures.js';
import { callRaw, crashesIn, openSocket } from './harness.js';

/**
 * reliability.md 6, case by case: each malformed frame gets the CALLERROR the specification
 * names (1.6 §4.2.3 and 2.0.1 part 4 §4.3), the answer carries the frame's messageId ("-1"
 * when it cannot be read), and the connection keeps answering. Random and mutated frames:
 * fuzz.test.ts; a frame over the size limit: stress.test.ts.
 */
const run = useEngine(aNetwork({ chargers: [aCharger('MF-16'), aCharger('MF-201')] }));

interface Case {
  readonly name: string;
  readonly text: string | Buffer;
  /** The messageId the answer must carry. */
  readonly id: string;
  readonly code16: string;
  readonly code201: string;
}

const NOW = '2026-11-20T08:00:00.000Z';
const status16 = { connectorId: 1, errorCode: 'NoError', status: 'Available', timestamp: NOW };
const status201 = { timestamp: NOW, connectorStatus: 'Available', evseId: 1, connectorId: 1 };

function cases(version: '16' | '201'): Case[] {
  const status: Record<string, unknown> = version === '16' ? status16 : status201;
  const enumField = version === '16' ? 'status' : 'connectorStatus';
  const requiredField = version === '16' ? 'errorCode' : 'evseId';
  const without = { ...status };
  delete without[requiredField];
  const frame = (id: string, payload: unknown, action = 'StatusNotification') =>
    JSON.stringify([2, id, action, payload]);
  const formation = { code16: 'FormationViolation', code201: 'FormatViolation' };
  return [
    { name: 'not JSON', text: '[2, "x", Heartbeat', id: '-1', ...formation },
    { name: 'JSON, not an array', text: '{"call":"Heartbeat"}', id: '-1', ...formation },
    { name: 'binary frame', text: Buffer.from([2, 0, 1]), id: '-1', ...formation },
    {
      name: 'empty messageId',
      text: JSON.stringify([2, '', 'Heartbeat', {}]),
      id: '-1',
      ...formation,
    },
    {
      name: 'wrong message type',
      text: JSON.stringify([7, 'mt', 'Heartbeat', {}]),
      id: 'mt',
      code16: 'ProtocolError',
      code201: 'MessageTypeNotSupported',
    },
    {
      name: 'messageId over 36 characters',
      text: JSON.stringify([2, 'x'.repeat(37), 'Heartbeat', {}]),
      id: 'x'.repeat(36),
      code16: 'ProtocolError',
      code201: 'RpcFrameworkError',
    },
    {
      name: 'CALL of 5 elements',
      text: JSON.stringify([2, 'c5', 'Heartbeat', {}, {}]),
      id: 'c5',
      ...formation,
    },
    {
      name: 'payload an array',
      text: JSON.stringify([2, 'pa', 'Heartbeat', []]),
      id: 'pa',
      ...formation,
    },
    {
      name: 'unknown action',
      text: frame('ua', {}, 'BrewCoffee'),
      id: 'ua',
      code16: 'NotImplemented',
      code201: 'NotImplemented',
    },
    {
      name: 'required field missing',
      text: frame('rq', without),
      id: 'rq',
      code16: 'OccurrenceConstraintViolation',
      code201: 'OccurrenceConstraintViolation',
    },
    {
      name: 'field of the wrong type',
      text: frame('ty', { ...status, connectorId: 'one' }),
      id: 'ty',
      code16: 'TypeConstraintViolation',
      code201: 'TypeConstraintViolation',
    },
    {
      name: 'value outside its enumeration',
      text: frame('en', { ...status, [enumField]: 'Sleeping' }),
      id: 'en',
      code16: 'PropertyConstraintViolation',
      code201: 'PropertyConstraintViolation',
    },
    {
      name: 'absurd timestamp (year 222222017)',
      text: frame('ts', { ...status, timestamp: '222222017-11-20T08:00:00Z' }),
      id: 'ts',
      code16: 'PropertyConstraintViolation',
      code201: 'PropertyConstraintViolation',
    },
    {
      name: 'field the PDU does not have',
      text: frame('ad', { ...status, surprise: true }),
      id: 'ad',
      ...formation,
    },
    {
      name: 'connectorId out of range',
      text: frame('cr', { ...status, connectorId: 70_000 }),
      id: 'cr',
      code16: 'PropertyConstraintViolation',
      code201: 'PropertyConstraintViolation',
    },
  ];
}

describe('malformed frames, case by case', () => {
  it.each([
    ['1.6', 'MF-16', 'ocpp1.6', '16'],
    ['2.0.1', 'MF-201', 'ocpp2.0.1', '201'],
  ] as const)(
    'reliability.md 6 (%s): the CALLERROR the specification names, and the connection stays',
    async (label, chargerId, protocol, version) => {
      const ws = await openSocket(`${run.engine.ocppUrl}/${chargerId}`, { protocols: [protocol] });
      const table = cases(version);
      const answers: Array<{ name: string; got: string; expected: string }> = [];
      for (const c of table) {
        const answer = new Promise<unknown[]>((resolve) => {
          const onMessage = (data: Buffer) => {
            const frame = JSON.parse(data.toString()) as unknown[];
            if (frame[0] === 2) return; // the engine's own call
            ws.off('message', onMessage);
            resolve(frame);
          };
          ws.on('message', onMessage);
        });
        ws.send(c.text);
        const frame = await answer;
        const expected = `4 ${c.id} ${version === '16' ? c.code16 : c.code201}`;
        answers.push({
          name: c.name,
          got: `${String(frame[0])} ${String(frame[1])} ${String(frame[2])}`,
          expected,
        });
        // Still answering after every bad frame.
        expect((await callRaw(ws, `probe-${answers.length}`, 'Heartbeat', {}))[0], c.name).toBe(3);
      }
      ws.close();
      const conforming = answers.filter((a) => a.got === a.expected).length;
      recordFigure(
        6,
        `error-code conformance, ${label} (${table.length} malformed frames) %`,
        Math.round((conforming / table.length) * 1000) / 10,
      );
      expect(answers.map((a) => `${a.name}: ${a.got}`)).toEqual(
        answers.map((a) => `${a.name}: ${a.expected}`),
      );
      expect(crashesIn(run.engine.output())).toBe(0);
      expect(run.engine.process.exitCode).toBeNull();
    },
  );
});
