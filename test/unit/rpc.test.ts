import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  handleCall as handleWith,
  isDecimal,
  type ActionContext,
  type Payload,
} from '../../src/ocpp/actions.js';
import { V16 } from '../../src/ocpp/v16/actions.js';
import { parseFrame } from '../../src/ocpp/rpc.js';
import { indexNetwork } from '../../src/config/network-index.js';
import { parseNetwork } from '../../src/config/network.js';
import { TransactionRegistry } from '../../src/gateway/transactions.js';
import { authorize } from '../../src/sessions/authorization.js';
import { tempDir } from '../helpers/engine.js';
import { aMeterValues, aStartTransaction, aStopTransaction } from '../helpers/builders.js';

describe('OCPP-J frame parsing', () => {
  it('reads CALL, CALLRESULT and CALLERROR', () => {
    expect(parseFrame('[2,"a","Heartbeat",{}]', 'ocpp1.6')).toEqual({
      ok: true,
      frame: { type: 2, id: 'a', action: 'Heartbeat', payload: {} },
    });
    expect(parseFrame('[3,"a",{"x":1}]', 'ocpp1.6')).toMatchObject({
      ok: true,
      frame: { type: 3, payload: { x: 1 } },
    });
    expect(parseFrame('[4,"a","NotSupported","no",{}]', 'ocpp1.6')).toMatchObject({
      ok: true,
      frame: { type: 4, code: 'NotSupported' },
    });
  });

  it('answers an unreadable messageId with "-1"', () => {
    expect(parseFrame('{oops', 'ocpp1.6')).toMatchObject({
      ok: false,
      id: '-1',
      code: 'FormationViolation',
    });
    expect(parseFrame('[2,7,"Heartbeat",{}]', 'ocpp1.6')).toMatchObject({ ok: false, id: '-1' });
    expect(parseFrame('{oops', 'ocpp2.0.1')).toMatchObject({
      ok: false,
      id: '-1',
      code: 'FormatViolation',
    });
  });

  it('refuses messageIds over 36 characters and unknown message types', () => {
    expect(parseFrame(`[2,"${'x'.repeat(37)}","Heartbeat",{}]`, 'ocpp1.6')).toMatchObject({
      ok: false,
      code: 'ProtocolError',
    });
    expect(parseFrame('[5,"a","Heartbeat",{}]', 'ocpp2.0.1')).toMatchObject({
      ok: false,
      code: 'MessageTypeNotSupported',
    });
  });

  it('refuses a string with a lone UTF-16 surrogate, which UTF-8 and so no store can carry', () => {
    for (const [text, version, code] of [
      ['[2,"a","Authorize",{"idTag":"\\ud800"}]', 'ocpp1.6', 'FormationViolation'],
      ['[2,"a","Authorize",{"idTag":"x\\udc00y"}]', 'ocpp1.6', 'FormationViolation'],
      ['[2,"a","DataTransfer",{"data":{"\\udbff":1}}]', 'ocpp2.0.1', 'FormatViolation'],
      ['[3,"a",["ok","\\ud800\\ud800\\udc00"]]', 'ocpp2.0.1', 'FormatViolation'],
    ] as const) {
      expect(parseFrame(text, version), text).toMatchObject({ ok: false, id: 'a', code });
    }
    // A pair is a character (here U+1F600), escaped or sent as it is; an escaped backslash
    // before "ud800" is no escape of a surrogate.
    for (const text of [
      '[2,"a","Authorize",{"idTag":"\\ud83d\\ude00"}]',
      '[2,"a","Authorize",{"idTag":"\u{1F600}"}]',
      '[2,"a","Authorize",{"idTag":"\\\\ud800"}]',
    ]) {
      expect(parseFrame(text, 'ocpp1.6'), text).toMatchObject({ ok: true });
    }
  });

  it('never throws, whatever the text (fuzzed)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.json(),
          fc.jsonValue().map((v) => JSON.stringify([2, 'id', 'Heartbeat', v])),
        ),
        (text) => {
          const result = parseFrame(text, 'ocpp1.6');
          expect(typeof result.ok).toBe('boolean');
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('OCPP 1.6 actions', () => {
  const network = parseNetwork({
    organizations: [{ id: 'o', type: 'cpo' }],
    sites: [{ id: 's', operator: 'o' }],
    chargers: [{ id: 'CP1', site: 's', connectors: [{ id: 1, maxPowerW: 22000 }] }],
    customers: [{ id: 'c', organization: 'o', paymentType: 'postpaid' }],
    tokens: [
      { id: 'AABB', type: 'RFID', customer: 'c' },
      { id: 'BLOCKED', type: 'RFID', customer: 'c', blocked: true },
    ],
  });
  const handleCall = (
    action: string,
    payload: Payload,
    chargerId: string,
    at: number,
    context: ActionContext,
  ) => handleWith(V16, action, payload, chargerId, at, context);
  const responseValidator = (action: string) => V16.responses.get(action);
  const ctx: ActionContext = {
    registration: () => 'Accepted',
    index: indexNetwork(network),
    transactions: new TransactionRegistry(tempDir()),
    heartbeatIntervalS: 300,
  };
  const now = Date.parse('2026-11-20T09:00:00Z');

  it('answers with payloads valid against the official response schemas', () => {
    const cases: Array<[string, object]> = [
      ['BootNotification', { chargePointVendor: 'v', chargePointModel: 'm' }],
      ['Heartbeat', {}],
      ['Authorize', { idTag: 'AABB' }],
      ['StatusNotification', { connectorId: 1, errorCode: 'NoError', status: 'Available' }],
      ['StartTransaction', aStartTransaction({ idTag: 'AABB' })],
      ['MeterValues', aMeterValues({ transactionId: 1, wh: 10 })],
      ['StopTransaction', aStopTransaction({ idTag: 'AABB' })],
    ];
    for (const [action, payload] of cases) {
      const outcome = handleCall(action, payload as Record<string, unknown>, 'CP1', now, ctx);
      expect(outcome.kind, action).not.toBe('error');
      if (outcome.kind === 'error') continue;
      const validate = responseValidator(action)!;
      expect(validate(outcome.payload), `${action}: ${JSON.stringify(validate.errors)}`).toBe(true);
    }
  });

  it('A2 authorizes from memory: unknown Invalid, blocked Blocked, case-insensitive ids', () => {
    const fresh = { ...ctx, transactions: new TransactionRegistry(tempDir()) };
    const status = (idTag: string) =>
      (
        handleCall('Authorize', { idTag }, 'CP1', now, fresh) as {
          payload: { idTagInfo: { status: string } };
        }
      ).payload.idTagInfo.status;
    expect(status('aabb')).toBe('Accepted');
    expect(status('NOPE')).toBe('Invalid');
    expect(status('BLOCKED')).toBe('Blocked');
  });

  it('A2 ConcurrentTx: a token running on one connector is refused on another, not on a resend, and free after its stop', () => {
    const fresh = { ...ctx, transactions: new TransactionRegistry(tempDir()) };
    const start = (connectorId: number, ts: string) =>
      handleCall(
        'StartTransaction',
        aStartTransaction({ idTag: 'aabb', connectorId, timestamp: ts }),
        'CP1',
        now,
        fresh,
      ) as {
        payload: { transactionId: number; idTagInfo: { status: string } };
        event: { refusal: string };
      };
    const first = start(1, '2026-11-20T08:30:00Z');
    expect(first.payload.idTagInfo.status).toBe('Accepted');
    expect(start(1, '2026-11-20T08:30:00Z').payload.idTagInfo.status).toBe('Accepted'); // resent
    const second = start(2, '2026-11-20T08:31:00Z');
    expect(second.payload.idTagInfo.status).toBe('ConcurrentTx');
    expect(second.event.refusal).toBe('concurrent_tx');
    const authorize = () =>
      (
        handleCall('Authorize', { idTag: 'AABB' }, 'CP1', now, fresh) as {
          payload: { idTagInfo: { status: string } };
        }
      ).payload.idTagInfo.status;
    expect(authorize()).toBe('ConcurrentTx');
    fresh.transactions.ended('CP1', String(first.payload.transactionId));
    expect(authorize()).toBe('Accepted');
    expect(start(2, '2026-11-20T08:40:00Z').payload.idTagInfo.status).toBe('Accepted');
  });

  it('A3 funding: prepaid below the minimum, pay-now without a payment method, postpaid without a contract are Blocked with their own reason', () => {
    const funded = indexNetwork(
      parseNetwork({
        settings: { minimumStartBalance: '5.00' },
        organizations: [{ id: 'o', type: 'cpo' }],
        customers: [
          { id: 'poor', organization: 'o', paymentType: 'prepaid', balance: '4.99' },
          { id: 'rich', organization: 'o', paymentType: 'prepaid', balance: '5.00' },
          { id: 'nocard', organization: 'o', paymentType: 'pay_now', paymentMethod: false },
          { id: 'card', organization: 'o', paymentType: 'pay_now' },
          { id: 'ended', organization: 'o', paymentType: 'postpaid', contractActive: false },
        ],
        tokens: ['poor', 'rich', 'nocard', 'card', 'ended'].map((c) => ({
          id: c.toUpperCase(),
          type: 'RFID',
          customer: c,
        })),
      }),
    );
    const decide = (token: string) => authorize(funded, token, now);
    expect(decide('POOR')).toEqual({
      status: 'Blocked',
      customerId: 'poor',
      reason: 'insufficient_balance',
    });
    expect(decide('RICH').status).toBe('Accepted');
    expect(decide('NOCARD')).toMatchObject({ status: 'Blocked', reason: 'no_payment_method' });
    expect(decide('CARD').status).toBe('Accepted');
    expect(decide('ENDED')).toMatchObject({ status: 'Blocked', reason: 'no_contract' });
    expect(decide('NOBODY')).toMatchObject({ status: 'Invalid', reason: 'token_invalid' });
  });

  it('a resent StartTransaction gets the same transactionId (reliability.md 1)', () => {
    const start = aStartTransaction({ idTag: 'AABB', timestamp: '2026-11-20T08:30:00Z' });
    const first = handleCall('StartTransaction', start, 'CP1', now, ctx);
    const again = handleCall('StartTransaction', start, 'CP1', now + 5000, ctx);
    const other = handleCall('StartTransaction', { ...start, meterStart: 5 }, 'CP1', now, ctx);
    const id = (o: typeof first) =>
      (o as { payload: { transactionId: number } }).payload.transactionId;
    expect(id(again)).toBe(id(first));
    expect(id(other)).not.toBe(id(first));
  });

  it('a stop of an unknown or foreign transaction is acknowledged and parked as an orphan', () => {
    const outcome = handleCall(
      'StopTransaction',
      aStopTransaction({ transactionId: 987654 }),
      'CP1',
      now,
      ctx,
    );
    expect(outcome).toMatchObject({
      kind: 'durable',
      payload: {},
      event: { kind: 'tx_stopped', orphan: true, connectorId: 0 },
    });
  });

  it('normalizes kWh and kW to Wh and W exactly', () => {
    const outcome = handleCall(
      'MeterValues',
      {
        connectorId: 1,
        meterValue: [
          {
            timestamp: '2026-11-20T08:00:00Z',
            sampledValue: [
              { value: '12.345', unit: 'kWh' },
              { value: '7.4', measurand: 'Power.Active.Import', unit: 'kW' },
            ],
          },
        ],
      },
      'CP1',
      now,
      ctx,
    );
    expect(outcome).toMatchObject({
      event: {
        samples: [
          { measurand: 'Energy.Active.Import.Register', value: 12345, unit: 'Wh' },
          { measurand: 'Power.Active.Import', value: 7400, unit: 'W' },
        ],
      },
    });
  });

  it('answers actions it recognizes but does not serve with NotSupported', () => {
    expect(handleCall('GetLocalListVersion', {}, 'CP1', now, ctx)).toMatchObject({
      kind: 'error',
      code: 'NotSupported',
    });
  });
});

describe('values the schemas allow but the engine cannot store', () => {
  const network = parseNetwork({
    organizations: [{ id: 'o', type: 'cpo' }],
    sites: [{ id: 's', operator: 'o' }],
    chargers: [{ id: 'CP1', site: 's', connectors: [{ id: 1, maxPowerW: 22000 }] }],
  });
  const ctx: ActionContext = {
    registration: () => 'Accepted',
    index: indexNetwork(network),
    transactions: new TransactionRegistry(tempDir()),
    heartbeatIntervalS: 300,
  };
  const call = (action: string, payload: Payload) =>
    handleWith(V16, action, payload, 'CP1', Date.now(), ctx);

  it('a leap-second timestamp is a PropertyConstraintViolation, not a NaN time', () => {
    expect(
      call('StartTransaction', aStartTransaction({ timestamp: '2024-06-30T23:59:60Z' })),
    ).toMatchObject({ kind: 'error', code: 'PropertyConstraintViolation' });
  });

  it('connector ids outside 0–65535 are refused', () => {
    expect(
      call('StatusNotification', { connectorId: -1, errorCode: 'NoError', status: 'Available' }),
    ).toMatchObject({ kind: 'error', code: 'PropertyConstraintViolation' });
    expect(call('MeterValues', { ...aMeterValues(), connectorId: 70_000 })).toMatchObject({
      kind: 'error',
      code: 'PropertyConstraintViolation',
    });
  });
});

describe('a sampled value as a decimal number (E1)', () => {
  const DECIMAL = /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/;

  it('isDecimal accepts exactly what the decimal expression does', () => {
    for (const text of ['0', '-12', '12.5', '1e5', '1E-5', '2.5e+3', '007'])
      expect(isDecimal(text)).toBe(true);
    for (const text of ['', '-', '+1', '.5', '5.', '1e', '1e+', '0x10', 'Infinity', '1 ', '--1'])
      expect(isDecimal(text)).toBe(false);
    const chars = fc.constantFrom(...'0123456789-+.eExa '.split(''));
    fc.assert(
      fc.property(fc.array(chars, { maxLength: 12 }), (list) => {
        const text = list.join('');
        expect(isDecimal(text)).toBe(DECIMAL.test(text));
      }),
      { numRuns: 5000 },
    );
  });
});
