import WebSocket from 'ws';

/**
 * A charger simulator for load and demos: each simulated charger connects (OCPP 1.6 or
 * 2.0.1), boots, and runs sessions — authorize, start, meter values with a power curve and
 * SoC, parking, stop — one CALL at a time as a real charger does, answering the engine's own
 * calls (provisioning) as accepted. Time is compressed: each charger has a virtual clock that
 * starts now and advances one sample interval per reading, so energy and timestamps agree
 * (the engine's power check holds) while a session takes milliseconds, not hours.
 */
export interface SimOptions {
  /** `ws://host:port/ocpp` (the charger id is appended). */
  readonly url: string;
  readonly chargerIds: readonly string[];
  readonly tokens: readonly string[];
  readonly sessionsPerCharger: number;
  readonly readingsPerSession: number;
  readonly intervalS: number;
  /** Share of chargers speaking 2.0.1 (0–1). */
  readonly share201: number;
  /** Share of readings sent wrong on purpose (a spike or a stale timestamp), 0–1. */
  readonly faults: number;
  /** Connector power in W the simulated cars draw at most. */
  readonly maxPowerW: number;
  readonly password?: (chargerId: string) => string | undefined;
  readonly onSession?: () => void;
  /** Each answered CALL's latency, for live progress. */
  readonly onCall?: (latencyMs: number) => void;
}

export interface SimStats {
  chargers: number;
  sessions: number;
  acks: number;
  errors: Record<string, number>;
  /** Ack latency, ms, of every CALL. */
  latenciesMs: number[];
  /** Per quarter second of wall clock: answered calls (as a rate per second) and p99 latency. */
  timeline: Array<{ second: number; acks: number; p99Ms: number }>;
  seconds: number;
}

export async function simulate(options: SimOptions): Promise<SimStats> {
  const stats: SimStats = {
    chargers: options.chargerIds.length,
    sessions: 0,
    acks: 0,
    errors: {},
    latenciesMs: [],
    timeline: [],
    seconds: 0,
  };
  const started = performance.now();
  const perSecond = new Map<number, number[]>();
  const record = (ms: number, ok: boolean, code: string) => {
    stats.latenciesMs.push(ms);
    const second = Math.floor((performance.now() - started) / 250) / 4;
    let list = perSecond.get(second);
    if (list === undefined) perSecond.set(second, (list = []));
    list.push(ms);
    options.onCall?.(ms);
    if (ok) stats.acks += 1;
    else stats.errors[code] = (stats.errors[code] ?? 0) + 1;
  };
  await Promise.all(
    options.chargerIds.map((id, i) =>
      runCharger(id, i, options, record, () => {
        stats.sessions += 1;
        options.onSession?.();
      }),
    ),
  );
  stats.seconds = (performance.now() - started) / 1000;
  for (const [second, list] of [...perSecond].sort(([a], [b]) => a - b)) {
    list.sort((a, b) => a - b);
    stats.timeline.push({
      second,
      acks: list.length * 4,
      p99Ms: list[Math.floor(list.length * 0.99)] ?? 0,
    });
  }
  return stats;
}

type Recorder = (ms: number, ok: boolean, code: string) => void;

/** Deterministic per-charger randomness, so runs are comparable. */
function random(seed: number): () => number {
  let x = seed * 2654435761 + 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return ((x >>> 0) % 1_000_000) / 1_000_000;
  };
}

async function runCharger(
  id: string,
  index: number,
  o: SimOptions,
  record: Recorder,
  sessionDone: () => void,
): Promise<void> {
  const rand = random(index + 1);
  const v201 = rand() < o.share201;
  const password = o.password?.(id);
  const ws = new WebSocket(`${o.url}/${encodeURIComponent(id)}`, [v201 ? 'ocpp2.0.1' : 'ocpp1.6'], {
    headers:
      password === undefined
        ? {}
        : { Authorization: `Basic ${Buffer.from(`${id}:${password}`).toString('base64')}` },
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) =>
      reject(new Error(`${id}: upgrade refused ${res.statusCode}`)),
    );
  });
  const pending = new Map<string, (frame: unknown[]) => void>();
  ws.on('message', (data: Buffer) => {
    const frame = JSON.parse(data.toString()) as unknown[];
    if (frame[0] === 2) {
      // The engine's own calls (provisioning, CostUpdated): accepted.
      const action = frame[2] as string;
      const payload = frame[3] as {
        setVariableData?: Array<{ component: unknown; variable: unknown }>;
      };
      const answer =
        action === 'CostUpdated'
          ? {}
          : action === 'SetVariables'
            ? {
                setVariableResult: (payload.setVariableData ?? []).map((v) => ({
                  attributeStatus: 'Accepted',
                  component: v.component,
                  variable: v.variable,
                })),
              }
            : { status: 'Accepted' };
      ws.send(JSON.stringify([3, frame[1], answer]));
      return;
    }
    pending.get(String(frame[1]))?.(frame);
  });
  let next = 0;
  const call = (action: string, payload: object): Promise<Record<string, unknown>> =>
    new Promise((resolve) => {
      const messageId = String(++next);
      const sent = performance.now();
      pending.set(messageId, (frame) => {
        pending.delete(messageId);
        const ok = frame[0] === 3;
        record(performance.now() - sent, ok, ok ? '' : String(frame[2]));
        resolve(ok ? (frame[2] as Record<string, unknown>) : {});
      });
      ws.send(JSON.stringify([2, messageId, action, payload]));
    });

  let clock = Date.now();
  const iso = () => new Date(clock).toISOString();
  let register = Math.floor(rand() * 5_000_000); // Wh on the meter before the first session
  const status = (s16: string, s201: string) =>
    v201
      ? call('StatusNotification', {
          timestamp: iso(),
          connectorStatus: s201,
          evseId: 1,
          connectorId: 1,
        })
      : call('StatusNotification', {
          connectorId: 1,
          errorCode: 'NoError',
          status: s16,
          timestamp: iso(),
        });

  await call(
    'BootNotification',
    v201
      ? { reason: 'PowerUp', chargingStation: { model: 'Sim', vendorName: 'chargestream' } }
      : { chargePointVendor: 'chargestream', chargePointModel: 'Sim' },
  );
  await status('Available', 'Available');
  for (let s = 0; s < o.sessionsPerCharger; s++) {
    // The charger's own driver: a token charges one car at a time (A2), so simulated chargers
    // share tokens only when the network has fewer tokens than chargers.
    const token = o.tokens[index % Math.max(1, o.tokens.length)] ?? 'UNKNOWN';
    await call(
      'Authorize',
      v201 ? { idToken: { idToken: token, type: 'ISO14443' } } : { idTag: token },
    );
    await status('Preparing', 'Occupied');
    const soc0 = 10 + Math.floor(rand() * 50);
    const txId = `${id}-${s}-${clock}`;
    let transactionId = 0;
    let seqNo = 0;
    const energyValue = (wh: number, context: string, extra: Array<Record<string, unknown>>) =>
      v201
        ? [
            {
              timestamp: iso(),
              sampledValue: [
                {
                  value: wh,
                  context,
                  measurand: 'Energy.Active.Import.Register',
                  unitOfMeasure: { unit: 'Wh' },
                },
                ...extra,
              ],
            },
          ]
        : [
            {
              timestamp: iso(),
              sampledValue: [
                {
                  value: String(wh),
                  context,
                  measurand: 'Energy.Active.Import.Register',
                  unit: 'Wh',
                },
                ...extra,
              ],
            },
          ];
    if (v201) {
      await call('TransactionEvent', {
        eventType: 'Started',
        timestamp: iso(),
        triggerReason: 'Authorized',
        seqNo: seqNo++,
        transactionInfo: { transactionId: txId },
        evse: { id: 1, connectorId: 1 },
        idToken: { idToken: token, type: 'ISO14443' },
        meterValue: energyValue(register, 'Transaction.Begin', []),
      });
    } else {
      const answer = await call('StartTransaction', {
        connectorId: 1,
        idTag: token,
        meterStart: register,
        timestamp: iso(),
      });
      transactionId = (answer['transactionId'] as number | undefined) ?? 0;
    }
    await status('Charging', 'Occupied');
    for (let k = 0; k < o.readingsPerSession; k++) {
      const soc = Math.min(100, soc0 + ((100 - soc0) * (k + 1)) / o.readingsPerSession);
      // Constant power up to 80 % SoC, then tapering, as a car's charge curve does.
      const powerW = Math.round(
        o.maxPowerW * 0.9 * (soc < 80 ? 1 : Math.max(0.15, (100 - soc) / 20)),
      );
      clock += o.intervalS * 1000;
      register += Math.floor((powerW * o.intervalS) / 3600);
      let sentRegister = register;
      let sentClock = clock;
      const fault = rand() < o.faults;
      if (fault && rand() < 0.5)
        sentRegister = register + 50_000; // a spike no connector can deliver
      else if (fault) sentClock = clock - 3600_000; // a timestamp an hour stale
      const saved = clock;
      clock = sentClock;
      const extra = v201
        ? [
            { value: powerW, measurand: 'Power.Active.Import', unitOfMeasure: { unit: 'W' } },
            { value: Math.round(powerW / 230 / 3), measurand: 'Current.Import', phase: 'L1' },
            { value: 230, measurand: 'Voltage', phase: 'L1-N' },
            { value: Math.round(soc), measurand: 'SoC' },
          ]
        : [
            { value: String(powerW), measurand: 'Power.Active.Import', unit: 'W' },
            {
              value: String(Math.round(powerW / 230 / 3)),
              measurand: 'Current.Import',
              phase: 'L1',
              unit: 'A',
            },
            { value: '230', measurand: 'Voltage', phase: 'L1-N', unit: 'V' },
            { value: String(Math.round(soc)), measurand: 'SoC', unit: 'Percent' },
          ];
      const meterValue = energyValue(sentRegister, 'Sample.Periodic', extra);
      clock = saved;
      if (v201)
        await call('TransactionEvent', {
          eventType: 'Updated',
          timestamp: iso(),
          triggerReason: 'MeterValuePeriodic',
          seqNo: seqNo++,
          transactionInfo: { transactionId: txId },
          meterValue,
        });
      else await call('MeterValues', { connectorId: 1, transactionId, meterValue });
    }
    // The car is full: parking for a few intervals, then it leaves.
    await status('SuspendedEV', 'Occupied');
    clock += o.intervalS * 1000 * (1 + Math.floor(rand() * 8));
    await status('Finishing', 'Occupied');
    if (v201) {
      await call('TransactionEvent', {
        eventType: 'Ended',
        timestamp: iso(),
        triggerReason: 'EVDeparted',
        seqNo: seqNo++,
        transactionInfo: { transactionId: txId, stoppedReason: 'EVDisconnected' },
        meterValue: energyValue(register, 'Transaction.End', []),
      });
    } else {
      await call('StopTransaction', {
        transactionId,
        meterStop: register,
        timestamp: iso(),
        reason: 'EVDisconnected',
        idTag: token,
      });
    }
    await status('Available', 'Available');
    sessionDone();
    clock += o.intervalS * 1000;
  }
  ws.close();
}
