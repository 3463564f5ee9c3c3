import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { indexNetwork } from '../../src/config/network-index.js';
import { parseNetwork } from '../../src/config/network.js';
import type { ChargerEvent, MeterValuesReported, Sample } from '../../src/ocpp/events.js';
import { hold } from '../../src/sessions/held-state.js';
import { latestSessionRows } from '../../src/store/sink.js';
import { READING_COLUMNS } from '../../src/store/store.js';
import { sessionRows } from '../helpers/rows.js';
import {
  newlineRows,
  processBatch,
  type BatchInput,
  type ConnectorState,
  type HighWater,
} from '../../src/sessions/process-batch.js';

const T0 = Date.parse('2026-11-20T08:00:00Z');
const index = indexNetwork(
  parseNetwork({
    settings: { defaultTariff: 't' },
    organizations: [{ id: 'o', type: 'cpo' }],
    sites: [{ id: 's', operator: 'o' }],
    chargers: [{ id: 'CP1', site: 's', connectors: [{ id: 1, maxPowerW: 30000 }] }],
    tariffs: [
      {
        id: 't',
        currency: 'EUR',
        elements: [{ components: [{ type: 'ENERGY', price: '0.30', vat: '22' }] }],
      },
    ],
  }),
);

const energy = (wh: number, s: number): Sample => ({
  ts: T0 + s * 1000,
  measurand: 'Energy.Active.Import.Register',
  phase: '',
  value: wh,
  unit: 'Wh',
  context: 'Sample.Periodic',
});
const power = (w: number, s: number): Sample => ({
  ts: T0 + s * 1000,
  measurand: 'Power.Active.Import',
  phase: '',
  value: w,
  unit: 'W',
  context: 'Sample.Periodic',
});
const start = (tx = '1', wh = 2000): ChargerEvent => ({
  kind: 'tx_started',
  chargerId: 'CP1',
  connectorId: 1,
  receivedAt: T0,
  transactionId: tx,
  tokenId: 'T',
  authorization: 'Accepted',
  customerId: 'c',
  meterStartWh: wh,
  ts: T0,
});
const values = (wh: number, s: number, tx = '1'): ChargerEvent => ({
  kind: 'meter_values',
  chargerId: 'CP1',
  connectorId: 1,
  receivedAt: T0 + s * 1000,
  transactionId: tx,
  samples: [energy(wh, s)],
});
const stop = (wh: number, s: number, tx = '1', connectorId = 1, orphan = false): ChargerEvent => ({
  kind: 'tx_stopped',
  chargerId: 'CP1',
  connectorId,
  receivedAt: T0 + s * 1000,
  transactionId: tx,
  tokenId: '',
  meterStopWh: wh,
  ts: T0 + s * 1000,
  reason: 'Local',
  samples: [],
  orphan,
});

const NONE: HighWater = { readings: -1, statuses: -1, cdrs: -1, notifications: -1 };
const batch = (
  events: ChargerEvent[],
  states: Record<string, ConnectorState> = {},
  from = 0,
  highWater = NONE,
): BatchInput => ({
  partition: 3,
  entries: events.map((event, i) => ({ offset: from + i, event })),
  states,
  highWater,
});
const lines = (ndjson: string) =>
  ndjson
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

/**
 * The `meter_readings` rows the workers' readings rows (READING_FRAMES) make, as objects of
 * their columns; the signature's columns only on a signed reading.
 */
const readingRows = (text: string) =>
  text
    .split('\n')
    .filter(Boolean)
    .flatMap((l) => {
      const row = JSON.parse(l) as unknown[];
      expect(Array.isArray(row), l).toBe(true);
      expect(row.length, l).toBeGreaterThanOrEqual(7);
      expect(row.length, l).toBeLessThanOrEqual(8);
      const [chargerId, connectorId, sessionId, partition, offset, ts, readings, signatures] =
        row as [
          string,
          number,
          string,
          number,
          number,
          string,
          unknown[][],
          unknown[][] | undefined,
        ];
      if (signatures !== undefined) expect(signatures.length, l).toBe(readings.length);
      return readings.map((reading, i) => {
        expect(reading.length, l).toBe(7);
        const signature = signatures?.[i];
        const signed = signature !== undefined && signature.some((v) => v !== '');
        return Object.fromEntries(
          [chargerId, connectorId, sessionId, ts, ...reading, partition, offset]
            .concat(signed ? signature : [])
            .map((v, c) => [READING_COLUMNS[c], v]),
        ) as Record<string, unknown>;
      });
    });

describe('rows as text', () => {
  it('each row ends in a newline, in order; no rows, no text', () => {
    expect(newlineRows([])).toBe('');
    expect(newlineRows(['["a",1]'])).toBe('["a",1]\n');
    expect(newlineRows(['["a",1]', '["b",2]', '["c",3]'])).toBe('["a",1]\n["b",2]\n["c",3]\n');
  });
});

describe('session processing of a batch', () => {
  it('S1 start → in_progress, stop → ended → rated, with one CDR', () => {
    const out = processBatch(index, batch([start(), values(2025, 30), stop(2050, 60)]));
    expect(sessionRows(out.sessions).map((r) => r['status'])).toEqual([
      'in_progress',
      'ended',
      'rated',
    ]);
    const [cdr] = lines(out.cdrs);
    expect(cdr).toMatchObject({
      session_id: 'CP1-1',
      energy_wh: '50.000',
      kind: 'debit',
      log_partition: 3,
      log_offset: 2,
    });
    expect(out.states['CP1/1']).toEqual({ appliedOffset: 2, session: null });
  });

  it('versions grow with every row of a session', () => {
    const out = processBatch(index, batch([start(), values(2025, 30), stop(2050, 60)]));
    const versions = sessionRows(out.sessions).map((r) => r['version'] as number);
    expect([...versions].sort((a, b) => a - b)).toEqual(versions);
    expect(new Set(versions).size).toBe(versions.length);
  });

  it('S6 a duplicate start is ignored; a retried stop adds no second CDR (reliability.md 2)', () => {
    const out = processBatch(
      index,
      batch([start(), start(), values(2025, 30), stop(2050, 60), stop(2050, 60)]),
    );
    expect(lines(out.cdrs)).toHaveLength(1);
    expect(
      sessionRows(out.sessions).filter((r) => r['status'] === 'in_progress').length,
    ).toBeLessThanOrEqual(2);
  });

  it('reliability.md 1: values resent after a lost answer add no reading rows (1.6 by content, 2.0.1 by seqNo)', () => {
    const resent = values(2025, 30);
    const out = processBatch(
      index,
      batch([start(), resent, resent, values(2040, 45), values(2040, 45), stop(2050, 60)]),
    );
    expect(readingRows(out.readings).map((r) => [r['value'], r['valid']])).toEqual([
      [2000, true],
      [2025, true],
      [2040, true],
      [2050, true],
    ]);
    expect(out.counters.readings['resent']).toBe(2);
    // The next batch: a resend of the last values of the previous one is still known.
    const first = processBatch(index, batch([start(), values(2025, 30)]));
    const second = processBatch(index, batch([values(2025, 30)], first.states, 2));
    expect(readingRows(second.readings)).toEqual([]);
    const updated = (seqNo: number, wh: number, s: number): ChargerEvent => ({
      ...(values(wh, s) as MeterValuesReported),
      seqNo,
      offline: false,
      eventTs: T0 + s * 1000,
    });
    const v201 = processBatch(
      index,
      batch([start(), updated(1, 2025, 30), updated(1, 2025, 30), updated(2, 2025, 30)]),
    );
    // The same seqNo twice is a resend; a new seqNo with the same values is a reading again.
    expect(readingRows(v201.readings)).toHaveLength(3);
    expect(v201.counters.readings['resent']).toBe(1);
  });

  it('orphan and foreign stops change no session (reliability.md 3)', () => {
    const first = processBatch(index, batch([start()]));
    const out = processBatch(
      index,
      batch([stop(9999, 60, '77'), stop(9999, 60, '1', 0, true)], first.states, 1),
    );
    expect(lines(out.cdrs)).toHaveLength(0);
    expect(out.states['CP1/1']?.session?.status).toBe('in_progress');
  });

  it('a replay writes nothing twice: events at or below the applied offset and the high-water marks are skipped', () => {
    const events = [start(), values(2025, 30), stop(2050, 60)];
    const once = processBatch(index, batch(events));
    // After a crash: the readings and CDR of offsets 0–2 are stored, the state was not committed.
    const replay = processBatch(index, batch(events, {}, 0, { readings: 2, statuses: 2, cdrs: 2 }));
    expect(replay.readings).toBe('');
    expect(replay.cdrs).toBe('');
    // Session rows are replayed with the same versions: ReplacingMergeTree keeps one.
    expect(replay.sessions).toBe(once.sessions);
    // An open session whose state already includes offset 1 ignores offsets 0 and 1.
    const partial = processBatch(index, batch(events.slice(0, 2)));
    const resumed = processBatch(
      index,
      batch(events, partial.states, 0, { readings: 1, statuses: 1, cdrs: 1 }),
    );
    expect(lines(resumed.cdrs)).toHaveLength(1);
    expect(lines(resumed.cdrs)[0]?.['energy_wh']).toBe('50.000');
  });

  it('rejected readings are stored with their reason and counted', () => {
    const out = processBatch(index, batch([start(), values(2500, 30), stop(2050, 60)]));
    const rows = readingRows(out.readings);
    expect(rows.find((r) => r['value'] === 2500)).toMatchObject({
      valid: false,
      reject_reason: 'exceeds_power',
      session_id: 'CP1-1',
    });
    expect(out.readingsRejected).toBe(1);
  });

  it('readings rows (READING_FRAMES) make a row of every column for each reading: signed values, text that needs escaping', () => {
    const signed = {
      data: 'OCMF|{"RD":[{"RV":"2.025"}]}\n',
      signingMethod: '',
      encodingMethod: 'OCMF',
      publicKey: 'k\\ey',
    };
    const event: ChargerEvent = {
      ...(values(2025, 30) as MeterValuesReported),
      samples: [
        { ...energy(2025, 30), signed },
        { ...power(0, 30), value: Number.NaN, phase: 'L1"', unit: 'W\t' },
      ],
    };
    const out = processBatch(index, batch([start(), event]));
    const ts = '2026-11-20 08:00:30.000';
    // After the start's Transaction.Begin reading:
    expect(readingRows(out.readings).slice(1)).toEqual([
      {
        charger_id: 'CP1',
        connector_id: 1,
        session_id: 'CP1-1',
        ts,
        measurand: 'Energy.Active.Import.Register',
        phase: '',
        value: 2025,
        unit: 'Wh',
        context: 'Sample.Periodic',
        valid: true,
        reject_reason: '',
        signed_data: signed.data,
        signing_method: '',
        encoding_method: 'OCMF',
        public_key: 'k\\ey',
        log_partition: 3,
        log_offset: 1,
      },
      {
        charger_id: 'CP1',
        connector_id: 1,
        session_id: 'CP1-1',
        ts,
        measurand: 'Power.Active.Import',
        phase: 'L1"',
        value: 0,
        unit: 'W\t',
        context: 'Sample.Periodic',
        valid: false,
        reject_reason: 'not_a_number',
        log_partition: 3,
        log_offset: 1,
      },
    ]);
  });

  it('an event’s readings of one session and time are one row: shared columns once, the signatures beside the readings only where one is signed', () => {
    const signed = { data: 'sig', signingMethod: 'ECDSA', encodingMethod: 'OCMF', publicKey: 'pk' };
    const event: ChargerEvent = {
      ...(values(2025, 30) as MeterValuesReported),
      samples: [power(7000, 30), { ...energy(2025, 30), signed }, power(7100, 30)],
    };
    const out = processBatch(index, batch([start(), values(2000, 20), event]));
    const rows = out.readings
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as unknown[]);
    // The start's reading, then one row an event.
    expect(rows.map((r) => r.slice(0, 6))).toEqual([
      ['CP1', 1, 'CP1-1', 3, 0, '2026-11-20 08:00:00.000'],
      ['CP1', 1, 'CP1-1', 3, 1, '2026-11-20 08:00:20.000'],
      ['CP1', 1, 'CP1-1', 3, 2, '2026-11-20 08:00:30.000'],
    ]);
    expect(rows[1]).toHaveLength(7); // no signature: `s` left out
    expect((rows[2]![6] as unknown[]).map((r) => (r as unknown[])[0])).toEqual([
      'Power.Active.Import',
      'Energy.Active.Import.Register',
      'Power.Active.Import',
    ]);
    expect(rows[2]![7]).toEqual([
      ['', '', '', ''],
      ['sig', 'ECDSA', 'OCMF', 'pk'],
      ['', '', '', ''],
    ]);
    expect(out.readingRows).toBe(1 + (values(2000, 20) as MeterValuesReported).samples.length + 3);
  });

  it('reading rows keep every word a charger sends, also past the few hundred whose quotes are kept', () => {
    // 400 made-up measurands and units, needing escapes, sent twice: more than the kept
    // quotes hold, so they are dropped and kept again on the way.
    const words = Array.from({ length: 400 }, (_, i) => `Made.Up"${i}\\\u00e9\n`);
    const sample = (word: string, s: number): Sample => ({
      ...power(100, s),
      measurand: word,
      unit: word,
    });
    const event = (s: number): ChargerEvent => ({
      ...(values(2025, s) as MeterValuesReported),
      samples: words.map((w) => sample(w, s)),
    });
    const out = processBatch(index, batch([start(), event(30), event(31)]));
    const rows = readingRows(out.readings).slice(1);
    expect(rows).toHaveLength(800);
    expect(rows.map((r) => r['measurand'])).toEqual([...words, ...words]);
    expect(rows.map((r) => r['unit'])).toEqual([...words, ...words]);
  });

  it('S4 a start refused by authorization becomes a rejected session with its reason', () => {
    const refused: ChargerEvent = {
      ...(start() as Extract<ChargerEvent, { kind: 'tx_started' }>),
      authorization: 'Invalid',
    };
    const out = processBatch(index, batch([refused]));
    expect(sessionRows(out.sessions)[0]).toMatchObject({
      status: 'rejected',
      reason: 'token_invalid',
    });
    expect(out.states['CP1/1']?.session).toBeNull();
  });

  it('readings of no session still name their charger and connector (E1, reliability.md 3)', () => {
    const out = processBatch(
      index,
      batch([{ ...(values(2025, 30, '') as Extract<ChargerEvent, { kind: 'meter_values' }>) }]),
    );
    expect(readingRows(out.readings)[0]).toMatchObject({
      charger_id: 'CP1',
      connector_id: 1,
      session_id: '',
    });
  });

  it('a session without meterStart survives a restart: its state round-trips through JSON', () => {
    const noStart: ChargerEvent = {
      ...(start() as Extract<ChargerEvent, { kind: 'tx_started' }>),
      meterStartWh: null,
    };
    const first = processBatch(index, batch([noStart]));
    const restored = JSON.parse(JSON.stringify(first.states)) as Record<string, ConnectorState>;
    const out = processBatch(
      index,
      batch([values(5000, 30), values(5100, 60), stop(5200, 90)], restored, 1),
    );
    expect(lines(out.cdrs)[0]?.['energy_wh']).toBe('200.000');
    expect(out.readingsRejected).toBe(0);
  });

  it('the held state is the state: written once a batch (from the closing row), it reads back as JSON.stringify writes it', () => {
    const status: ChargerEvent = {
      kind: 'status',
      chargerId: 'CP1',
      connectorId: 1,
      receivedAt: T0 + 20_000,
      ts: T0 + 20_000,
      status: 'Charging',
      errorCode: 'NoError',
      info: '',
      vendorErrorCode: '',
    };
    const first = processBatch(index, batch([start(), status, values(2100, 30)]));
    const second = processBatch(
      index,
      batch(
        [values(2200, 60)],
        JSON.parse(JSON.stringify(first.states)) as Record<string, ConnectorState>,
        3,
      ),
    );
    for (const out of [first, second]) {
      const state = out.states['CP1/1']!;
      const text = hold(state)!.text;
      expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(state)));
      expect((JSON.parse(text) as ConnectorState).status).toEqual([T0 + 20_000, 'Charging']);
      // The text is the closing row's state, not a second rendering of it.
      const rows = sessionRows(out.sessions);
      expect(text).toContain(rows.at(-1)!['state'] as string);
    }
    // A state no closing row wrote (here: rebuilt from its text) is written whole.
    const untouched = JSON.parse(JSON.stringify(second.states['CP1/1'])) as ConnectorState;
    expect(JSON.parse(hold(untouched)!.text)).toEqual(JSON.parse(JSON.stringify(untouched)));
  });

  it('a write of several batches sends each session’s latest row only, the one ClickHouse keeps', () => {
    const first = processBatch(index, batch([start(), values(2100, 30)]));
    const second = processBatch(
      index,
      batch(
        [values(2200, 60), stop(2300, 90), start('2', 2300), values(2400, 120, '2')],
        JSON.parse(JSON.stringify(first.states)) as Record<string, ConnectorState>,
        2,
      ),
    );
    const all = sessionRows(first.sessions + second.sessions);
    const newest = new Map<unknown, number>();
    for (const r of all)
      newest.set(
        r['session_id'],
        Math.max(newest.get(r['session_id']) ?? -1, r['version'] as number),
      );
    const kept = sessionRows(latestSessionRows([first.sessions, second.sessions]));
    expect(all.length).toBeGreaterThan(kept.length);
    expect(kept.map((r) => [r['session_id'], r['version']])).toEqual([...newest]);
    // Ids that need escaping, equal versions (the later row wins, as in ClickHouse), and a row
    // of another form (kept).
    const odd = [
      '["a\\"b",5,1]',
      '["a\\"b",3,2]',
      '["a\\\\",7,3]',
      '["a\\\\",7,4]',
      '{"other":1}',
    ].join('\n');
    expect(
      latestSessionRows([odd + '\n'])
        .split('\n')
        .filter(Boolean)
        .map((l) => {
          const row = JSON.parse(l) as unknown[] | { other: number };
          return Array.isArray(row) ? row[2] : row.other;
        }),
    ).toEqual([1, 4, 1]);
  });

  it('the latest session rows of a write, for any rows over any batches: each session’s highest version (the later of equal ones), other rows kept, in order', () => {
    const row = fc.oneof(
      fc.record({
        id: fc.array(fc.constantFrom('a', 'b', '"', '\\', 'é', '\n'), {
          minLength: 1,
          maxLength: 3,
        }),
        version: fc.integer({ min: 0, max: 5 }),
      }),
      fc.constantFrom('{"other":1}', '[1,2]', '["x"]', '["x","y"]'),
    );
    fc.assert(
      fc.property(
        fc.array(row, { maxLength: 30 }),
        fc.array(fc.nat(), { maxLength: 4 }),
        (generated, cuts) => {
          const lines = generated.map((r, k) =>
            typeof r === 'string' ? r : JSON.stringify([r.id.join(''), r.version, k]),
          );
          // The reference: every row parsed whole.
          const keyOf = (line: string): string | null => {
            const value = JSON.parse(line) as unknown;
            return Array.isArray(value) &&
              typeof value[0] === 'string' &&
              Number.isInteger(value[1])
              ? value[0]
              : null;
          };
          const best = new Map<string, { version: number; at: number }>();
          lines.forEach((line, at) => {
            const id = keyOf(line);
            if (id === null) return;
            const version = (JSON.parse(line) as [string, number])[1];
            const seen = best.get(id);
            if (seen === undefined || version >= seen.version) best.set(id, { version, at });
          });
          const expected = lines
            .filter((line, at) => {
              const id = keyOf(line);
              return id === null || best.get(id)!.at === at;
            })
            .map((line) => `${line}\n`)
            .join('');
          // The same rows as the texts of up to five batches.
          const bounds = [...new Set(cuts.map((c) => c % (lines.length + 1)))].sort(
            (x, y) => x - y,
          );
          const texts = [0, ...bounds].map((from, i) =>
            lines
              .slice(from, [...bounds, lines.length][i])
              .map((line) => `${line}\n`)
              .join(''),
          );
          expect(latestSessionRows(texts)).toBe(expected);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('S1 two sessions one after the other in one batch: two CDRs, nothing superseded', () => {
    const out = processBatch(
      index,
      batch([
        start('1', 2000),
        values(2025, 30),
        stop(2050, 60),
        start('2', 2050),
        values(2100, 90, '2'),
        stop(2150, 120, '2'),
      ]),
    );
    const cdrs = lines(out.cdrs);
    expect(cdrs.map((c) => [c['session_id'], c['energy_wh']])).toEqual([
      ['CP1-1', '50.000'],
      ['CP1-2', '100.000'],
    ]);
    expect(sessionRows(out.sessions).some((r) => r['reason'] === 'superseded')).toBe(false);
  });

  it('S5 the connector status timeline splits the session into charging and parking time', () => {
    const statusAt = (status: string, s: number): ChargerEvent => ({
      kind: 'status',
      chargerId: 'CP1',
      connectorId: 1,
      receivedAt: T0 + s * 1000,
      ts: T0 + s * 1000,
      status,
      errorCode: 'NoError',
      info: '',
      vendorErrorCode: '',
    });
    const out = processBatch(
      index,
      batch([
        statusAt('Preparing', -10),
        start(),
        statusAt('Charging', 0),
        values(2025, 30),
        statusAt('SuspendedEV', 40),
        statusAt('Finishing', 50),
        stop(2025, 60),
      ]),
    );
    const rated = sessionRows(out.sessions).find((r) => r['status'] === 'rated');
    expect(rated).toMatchObject({ charging_s: 40, parking_s: 20, fault_s: 0, reservation_s: 0 });
  });

  it('S7 inadequate sessions are flagged: short, little energy, no customer, no amount', () => {
    const anonymous: ChargerEvent = {
      ...(start() as Extract<ChargerEvent, { kind: 'tx_started' }>),
      customerId: '',
    };
    const out = processBatch(index, batch([anonymous, stop(2000, 60)]));
    const rated = sessionRows(out.sessions).find((r) => r['status'] === 'rated');
    expect([...(rated?.['flags'] as string[])].sort()).toEqual([
      'low_energy',
      'no_amount',
      'no_customer',
      'short',
    ]);
  });

  it('S3 an expiry finalizes the session with its last valid reading, unless something arrived since', () => {
    const first = processBatch(index, batch([start(), values(2025, 30)]));
    const lastEventAt = first.states['CP1/1']!.session!.lastEventAt;
    const expire = (seen: number): ChargerEvent => ({
      kind: 'expire',
      chargerId: 'CP1',
      connectorId: 1,
      receivedAt: T0 + 7_200_000,
      transactionId: '1',
      lastEventAt: seen,
    });
    const stale = processBatch(
      index,
      batch(
        [expire(lastEventAt - 1)],
        JSON.parse(JSON.stringify(first.states)) as Record<string, ConnectorState>,
        2,
      ),
    );
    expect(lines(stale.cdrs)).toHaveLength(0);
    const out = processBatch(
      index,
      batch(
        [expire(lastEventAt)],
        JSON.parse(JSON.stringify(first.states)) as Record<string, ConnectorState>,
        2,
      ),
    );
    expect(lines(out.cdrs)[0]).toMatchObject({
      energy_wh: '25.000',
      ended_at: '2026-11-20 08:00:30.000',
    });
    expect(sessionRows(out.sessions).at(-1)).toMatchObject({
      status: 'rated',
      reason: 'idle_timeout',
    });
  });

  it('N1 notifications: started, charging ended (parking follows), ended — once each; none again on replay', () => {
    const statusAt = (status: string, s: number): ChargerEvent => ({
      kind: 'status',
      chargerId: 'CP1',
      connectorId: 1,
      receivedAt: T0 + s * 1000,
      ts: T0 + s * 1000,
      status,
      errorCode: 'NoError',
      info: '',
      vendorErrorCode: '',
    });
    const events = [
      start(),
      statusAt('Charging', 0),
      // A meter value as the H1 profile asks for it: energy with power (E5 stays quiet).
      { ...values(2025, 30), samples: [energy(2025, 30), power(3000, 30)] } as ChargerEvent,
      statusAt('SuspendedEV', 40),
      statusAt('SuspendedEV', 45),
      stop(2025, 60),
    ];
    const out = processBatch(index, batch(events));
    expect(lines(out.notifications).map((n) => n['event'])).toEqual([
      'session_started',
      'charging_ended',
      'session_ended',
    ]);
    const replay = processBatch(
      index,
      batch(events, {}, 0, { readings: 5, statuses: 5, cdrs: 5, notifications: 5 }),
    );
    expect(replay.notifications).toBe('');
  });
});

describe('S8 rating failures and retries', () => {
  const running = () => {
    const out = processBatch(index, batch([start(), values(2025, 30)]));
    return structuredClone(out.states['CP1/1']!);
  };
  const failedSession = () => {
    const state = running();
    const good = structuredClone(state.session!.rating);
    // A rating state that cannot be finished: the final rating throws.
    (state.session!.rating as { state: unknown }).state = { broken: true };
    const out = processBatch(index, batch([stop(2050, 60)], { 'CP1/1': state }, 2));
    return { out, good };
  };
  const retry = (stateJson: string, sessionId = 'CP1-1', stale = false): ChargerEvent => ({
    kind: 'retry',
    chargerId: 'CP1',
    connectorId: 1,
    receivedAt: T0 + 600_000,
    sessionId,
    state: stateJson,
    ...(stale ? { stale } : {}),
  });

  it('S8 a final rating that throws leaves the session rating_failed with the error and its state; no CDR; the partition goes on', () => {
    const { out } = failedSession();
    const rows = sessionRows(out.sessions);
    expect(rows.map((r) => r['status'])).toEqual(['ended', 'rating_failed']);
    expect(rows[1]!['error']).not.toBe('');
    expect(rows[1]!['state']).not.toBe('');
    expect(out.cdrs).toBe('');
    expect(out.states['CP1/1']!.session).toBeNull(); // the connector is free for the next session
  });

  it('S8 a retry with a rating that now works rates the session once; a second retry in the batch, or a stale one, does nothing', () => {
    const { out, good } = failedSession();
    const stored = JSON.parse(String(sessionRows(out.sessions)[1]!['state'])) as Record<
      string,
      unknown
    >;
    expect(stored['ratingAttempts']).toBe(1);
    const fixed = JSON.stringify({ ...stored, rating: good });
    const retried = processBatch(
      index,
      batch([retry(fixed), retry(fixed), retry(fixed, 'CP1-1', true)], {}, 10),
    );
    expect(sessionRows(retried.sessions).map((r) => r['status'])).toEqual(['rated']);
    expect(lines(retried.cdrs)).toHaveLength(1);
    expect(lines(retried.cdrs)[0]).toMatchObject({ session_id: 'CP1-1', energy_wh: '50.000' });
    const stale = processBatch(index, batch([retry(fixed, 'CP1-1', true)], {}, 20));
    expect(stale.sessions).toBe('');
  });

  it('S8 a retry that fails again counts the attempt; a failure while readings came in is not retried into a wrong amount', () => {
    const { out } = failedSession();
    const stored = String(sessionRows(out.sessions)[1]!['state']);
    const again = processBatch(index, batch([retry(stored)], {}, 10));
    const row = sessionRows(again.sessions)[0]!;
    expect(row['status']).toBe('rating_failed');
    expect((JSON.parse(String(row['state'])) as { ratingAttempts: number }).ratingAttempts).toBe(2);
    const state = running();
    (state.session!.rating as { state: unknown }).state = { broken: true };
    const midway = processBatch(
      index,
      batch([values(2040, 45), stop(2050, 60)], { 'CP1/1': state }, 2),
    );
    const failed = sessionRows(midway.sessions).at(-1)!;
    expect(failed['status']).toBe('rating_failed');
    expect(String(failed['error'])).toMatch(/^reading: /);
    const stillFailed = processBatch(index, batch([retry(String(failed['state']))], {}, 10));
    expect(sessionRows(stillFailed.sessions)[0]!['status']).toBe('rating_failed');
    expect(stillFailed.cdrs).toBe('');
  });
});
