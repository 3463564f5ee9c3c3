import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { indexNetwork } from '../../src/config/network-index.js';
import { parseNetwork } from '../../src/config/network.js';
import type { ChargerEvent, Sample } from '../../src/ocpp/events.js';
import { holdAll, ResidentStates, type HeldState } from '../../src/sessions/held-state.js';
import { processBatch, type HighWater } from '../../src/sessions/process-batch.js';
import { aCharger, aNetwork } from '../helpers/builders.js';

/**
 * A worker thread takes up the state objects it wrote itself instead of parsing their text
 * again (ResidentStates). That is only allowed if it changes nothing: here every batch of a
 * random run goes through both ways — the states parsed from their text, and the states
 * kept in the thread — and every row and every held text must be the same, byte for byte.
 */
const T0 = Date.parse('2026-11-20T08:00:00Z');
const CHARGERS = ['CP1', 'CP2', 'CP3'];
const index = indexNetwork(
  parseNetwork(
    aNetwork({
      sites: [{ id: 's', operator: 'o', timezone: 'Europe/Berlin' }],
      chargers: CHARGERS.map((id) => aCharger(id)),
      tariffs: [
        {
          id: 't',
          currency: 'EUR',
          elements: [
            {
              components: [
                { type: 'ENERGY', price: '0.30', vat: '22' },
                { type: 'TIME', price: '1.20', vat: '22', stepSize: 60 },
              ],
            },
            {
              components: [{ type: 'PARKING_TIME', price: '3.00', vat: '22', stepSize: 300 }],
            },
          ],
        },
      ],
      notificationRules: [
        { id: 'energy', events: ['energy_limit'], threshold: '500', publisher: 'log' },
        { id: 'money', events: ['monetary_limit'], threshold: '0.50', publisher: 'log' },
        { id: 'ended', events: ['session_ended'], publisher: 'log' },
      ],
    }),
  ),
);

type Step =
  | { readonly op: 'start' | 'stop' | 'expire'; readonly charger: number; readonly dt: number }
  | { readonly op: 'values'; readonly charger: number; readonly dt: number; readonly wh: number }
  | {
      readonly op: 'status';
      readonly charger: number;
      readonly dt: number;
      readonly status: string;
    };

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('start' as const),
      charger: fc.nat(2),
      dt: fc.nat(120),
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant('values' as const),
      charger: fc.nat(2),
      dt: fc.nat(900),
      // Mostly forward; sometimes backwards or a jump, so readings get rejected too (E3).
      wh: fc.integer({ min: -50, max: 3_000 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('status' as const),
      charger: fc.nat(2),
      dt: fc.nat(600),
      status: fc.constantFrom('Charging', 'SuspendedEV', 'Finishing', 'Faulted', 'Available'),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('stop' as const), charger: fc.nat(2), dt: fc.nat(300) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('expire' as const),
      charger: fc.nat(2),
      dt: fc.nat(60),
    }),
  },
);

/** The events of a run of steps: per charger its own clock, meter and transaction. */
function eventsOf(steps: readonly Step[]): ChargerEvent[] {
  const clock = CHARGERS.map(() => T0);
  const meter = CHARGERS.map(() => 1_000);
  const tx = CHARGERS.map(() => 0);
  return steps.map((s): ChargerEvent => {
    const chargerId = CHARGERS[s.charger]!;
    clock[s.charger]! += s.dt * 1000;
    const ts = clock[s.charger]!;
    const base = { chargerId, connectorId: 1, receivedAt: ts };
    const transactionId = String(tx[s.charger]);
    const sample = (measurand: string, value: number, unit: string): Sample => ({
      ts,
      measurand,
      phase: '',
      value,
      unit,
      context: 'Sample.Periodic',
    });
    switch (s.op) {
      case 'start':
        tx[s.charger]! += 1;
        return {
          ...base,
          kind: 'tx_started',
          transactionId: String(tx[s.charger]),
          tokenId: 'TAG',
          authorization: 'Accepted',
          customerId: 'c',
          meterStartWh: meter[s.charger]!,
          ts,
        };
      case 'values':
        meter[s.charger]! += s.wh;
        return {
          ...base,
          kind: 'meter_values',
          transactionId,
          samples: [
            sample('Energy.Active.Import.Register', meter[s.charger]!, 'Wh'),
            sample('Power.Active.Import', s.wh * 4, 'W'),
            sample('SoC', 20 + (s.wh % 70), 'Percent'),
          ],
        };
      case 'status':
        return {
          ...base,
          kind: 'status',
          ts,
          status: s.status,
          errorCode: s.status === 'Faulted' ? 'GroundFailure' : 'NoError',
          info: '',
          vendorErrorCode: '',
        };
      case 'stop':
        return {
          ...base,
          kind: 'tx_stopped',
          transactionId,
          tokenId: 'TAG',
          meterStopWh: meter[s.charger]!,
          ts,
          reason: 'Local',
          samples: [],
          orphan: false,
        };
      case 'expire':
        return { ...base, kind: 'expire', transactionId, lastEventAt: ts - 60_000 };
    }
  });
}

const NONE: HighWater = { readings: -1, statuses: -1, cdrs: -1, notifications: -1 };
const rowsOf = (out: ReturnType<typeof processBatch>) => ({
  readings: out.readings,
  statuses: out.statuses,
  notifications: out.notifications,
  sessions: out.sessions,
  cdrs: out.cdrs,
  costs: out.costs,
  valid: out.readingsValid,
  rejected: out.readingsRejected,
});

describe('a worker keeps the states it wrote (ResidentStates)', () => {
  it('processing from the kept objects yields the same rows and texts as from the parsed text', () => {
    // What the runs went through, so the property is known to reach the rules it guards.
    const seen = { taken: 0, cdrs: 0, rejected: 0, fired: 0, parking: 0 };
    fc.assert(
      fc.property(
        fc.array(step, { minLength: 1, maxLength: 120 }),
        fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 40 }),
        // Batches another thread ran: what this thread kept of their connectors is stale.
        fc.array(fc.boolean(), { minLength: 1, maxLength: 40 }),
        (steps, sizes, elsewhere) => {
          const events = eventsOf(steps);
          const resident = new ResidentStates();
          // What the processor holds: the same on both ways if nothing differs.
          let heldParsed = new Map<string, HeldState>();
          let heldResident = new Map<string, HeldState>();
          let offset = 0;
          for (let b = 0; offset < events.length; b++) {
            const size = sizes[b % sizes.length]!;
            const entries = events
              .slice(offset, offset + size)
              .map((event, i) => ({ offset: offset + i, event }));
            offset += entries.length;
            const textsOf = (held: Map<string, HeldState>) => {
              const texts: Record<string, string> = {};
              for (const { event } of entries) {
                const key = `${event.chargerId}/${event.connectorId}`;
                const h = held.get(key);
                if (h !== undefined) texts[key] = h.text;
              }
              return texts;
            };
            const input = { partition: 0, entries, highWater: NONE };
            // A new ResidentStates holds nothing: it parses every text.
            const parse = (texts: Record<string, string>) =>
              new ResidentStates().take(texts).states;
            const parsed = processBatch(index, { ...input, states: parse(textsOf(heldParsed)) });
            const other = elsewhere[b % elsewhere.length]!;
            if (!other) seen.taken += Object.keys(textsOf(heldResident)).length;
            const kept = processBatch(index, {
              ...input,
              states: other
                ? parse(textsOf(heldResident))
                : resident.take(textsOf(heldResident)).states,
            });
            seen.cdrs += parsed.cdrs.split('\n').length - 1;
            seen.rejected += parsed.readingsRejected;
            seen.fired += (parsed.notifications.match(/"rule_id":"(energy|money)"/g) ?? []).length;
            seen.parking += (parsed.cdrs.match(/PARKING_TIME/g) ?? []).length;
            const outParsed = holdAll(parsed.states);
            const outKept = holdAll(kept.states);
            if (!other) resident.keep(kept.states, outKept);
            expect(rowsOf(kept)).toEqual(rowsOf(parsed));
            expect(outKept).toEqual(outParsed);
            const apply = (held: Map<string, HeldState>, out: Record<string, HeldState | null>) => {
              const next = new Map(held);
              for (const [key, h] of Object.entries(out)) {
                if (h === null) next.delete(key);
                else next.set(key, h);
              }
              return next;
            };
            heldParsed = apply(heldParsed, outParsed);
            heldResident = apply(heldResident, outKept);
          }
        },
      ),
      { numRuns: 1000 },
    );

    for (const [what, n] of Object.entries(seen)) expect(n, what).toBeGreaterThan(0);
  });

  it('takes its own object only for the text it wrote, and hands each out once', () => {
    const resident = new ResidentStates();
    const started = processBatch(index, {
      partition: 0,
      entries: eventsOf([{ op: 'start', charger: 0, dt: 0 }]).map((event) => ({
        offset: 0,
        event,
      })),
      states: {},
      highWater: NONE,
    });
    const held = holdAll(started.states);
    resident.keep(started.states, held);
    expect(resident.size).toBe(1);
    const text = held['CP1/1']!.text;
    // The text it wrote: the very object, taken out.
    const first = resident.take({ 'CP1/1': text });
    expect(first.kept).toBe(1);
    expect(first.states['CP1/1']).toBe(started.states['CP1/1']);
    expect(resident.size).toBe(0);
    // Once taken (a batch that then threw keeps nothing), the text is parsed again.
    const second = resident.take({ 'CP1/1': text });
    expect(second.kept).toBe(0);
    const again = second.states['CP1/1'];
    expect(again).not.toBe(started.states['CP1/1']);
    expect(again).toEqual(JSON.parse(text));
    // Another text for the connector (another thread's, the store's) is parsed, not matched.
    resident.keep(started.states, held);
    const other = text.replace('"appliedOffset":0', '"appliedOffset":5');
    expect(resident.take({ 'CP1/1': other }).states['CP1/1']?.appliedOffset).toBe(5);
    // A connector whose session left is forgotten.
    resident.keep(started.states, held);
    resident.keep({}, { 'CP1/1': null });
    expect(resident.size).toBe(0);
  });
});
