import WebSocket from 'ws';
import { Histogram } from './histogram.js';

/**
 * A charger simulator for load and demos. Each simulated charger connects (OCPP 1.6 or
 * 2.0.1), boots, and runs sessions as a real charger does — authorize, plug in, start, meter
 * values with a CC/CV power curve and the car's SoC, SuspendedEV once the car is nearly full,
 * stop, parking (Finishing / Occupied) until the car leaves — one CALL outstanding at a time,
 * answering the engine's own calls (provisioning, CostUpdated) as accepted.
 *
 * Time: by default compressed — each charger's clock starts now and advances one interval
 * per reading, so energy and timestamps agree (the engine's power check holds) while a
 * session takes milliseconds; with `realtime` a reading is sent every `intervalS` of wall
 * clock (in bursts of `burst` readings, back to back).
 *
 * Connections drop and come back: a charger offline keeps charging and queues its
 * transaction messages (2.0.1 marks them `offline: true`), then boots again and flushes the
 * queue in order before anything new; a message unanswered when the socket dropped is sent
 * again. `stormAt` drops every charger at one moment and reconnects them all at once
 * (a reconnect storm); `offlineShare` takes some chargers offline mid-session (backlogs).
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
  /** Basic-auth passwords by charger id (security profile 1 and 2). */
  readonly passwords?: Readonly<Record<string, string>>;
  /** Position of `chargerIds[0]` in the whole run (seeds, tokens, versions), for child processes. */
  readonly firstIndex?: number;
  /** Readings every `intervalS` of wall clock instead of compressed time. */
  readonly realtime?: boolean;
  /** Readings sent back to back at each interval (realtime); default 1. */
  readonly burst?: number;
  /** Connections opened over this many seconds at the start; 0: all at once (a boot storm). */
  readonly rampS?: number;
  /** Seconds after the start at which every charger drops and reconnects (reconnect storm). */
  readonly stormAfterS?: number | null;
  /** How long chargers stay offline after a drop (storm or `offlineShare`), ms. */
  readonly offlineMs?: number;
  /** Share of chargers that go offline once, in the middle of their first session. */
  readonly offlineShare?: number;
  /** Seconds the connections stay open after the last session (idle chargers). */
  readonly holdS?: number;
  /** Source addresses to spread the sockets over (each has its own ephemeral ports). */
  readonly localAddresses?: readonly string[];
  /** A CALL unanswered this long counts as error `Timeout`; default 60 s. */
  readonly callTimeoutMs?: number;
  /** Keep per-charger totals (for a report reconciled against the store). */
  readonly perCharger?: boolean;
  readonly onSession?: () => void;
  /** Each answered CALL's latency, for live progress. */
  readonly onCall?: (latencyMs: number) => void;
}

/** What one charger sent, for reconciliation against the store. */
export interface ChargerTotals {
  protocol: '1.6' | '2.0.1';
  /** MeterValues frames (1.6) or TransactionEvent Updated frames with meter values (2.0.1). */
  readingsSent: number;
  readingsAcked: number;
  /** Sampled values in those frames (each a row of `meter_readings`). */
  samplesSent: number;
  /** Readings sent wrong on purpose (the engine should reject them). */
  faultySent: number;
  sessions: number;
  /** The energy register at each start and stop, Wh. */
  stops: Array<{ meterStartWh: number; meterStopWh: number }>;
  /** Frames sent again after a drop (at least once: the store may hold them twice). */
  resent: number;
  reconnects: number;
}

export interface SimStats {
  chargers: number;
  sessions: number;
  /** CALLRESULTs received (every action). */
  acks: number;
  /** CALLRESULTs to meter values (MeterValues, TransactionEvent Updated). */
  readingAcks: number;
  /** CALLERRORs by code, plus `Timeout` and upgrade / socket failures (`upgrade_409`, …). */
  errors: Record<string, number>;
  /** Ack latency of every CALL. */
  latency: Histogram;
  /** The same by action (TransactionEvent by eventType: `TransactionEvent.Ended`, …). */
  latencyByAction: Record<string, Histogram>;
  /** Per quarter second of wall clock: answered calls (as a rate per second) and p99 latency. */
  timeline: Array<{ second: number; acks: number; p99Ms: number }>;
  seconds: number;
  /** ms from the start of the run to each charger's first accepted BootNotification. */
  bootMs: number[];
  /** ms from the storm to each charger's accepted BootNotification after it. */
  stormBootMs: number[];
  /** Transaction messages queued while offline, and frames sent again after a drop. */
  queuedOffline: number;
  resent: number;
  reconnects: number;
  perCharger: Record<string, ChargerTotals> | null;
}

/** Transaction-related messages a charger keeps while offline and delivers later. */
const QUEUEABLE = new Set([
  'StartTransaction',
  'StopTransaction',
  'MeterValues',
  'TransactionEvent',
  'StatusNotification',
]);

export async function simulate(options: SimOptions): Promise<SimStats> {
  const stats: SimStats = {
    chargers: options.chargerIds.length,
    sessions: 0,
    acks: 0,
    readingAcks: 0,
    errors: {},
    latency: new Histogram(),
    latencyByAction: {},
    timeline: [],
    seconds: 0,
    bootMs: [],
    stormBootMs: [],
    queuedOffline: 0,
    resent: 0,
    reconnects: 0,
    perCharger: options.perCharger === true ? {} : null,
  };
  const started = performance.now();
  const slots = new Map<number, Histogram>();
  const run: RunContext = {
    options,
    started,
    stormAt: null,
    stats,
    record: (ms, reading, action) => {
      stats.latency.record(ms);
      let byAction = stats.latencyByAction[action];
      if (byAction === undefined) stats.latencyByAction[action] = byAction = new Histogram();
      byAction.record(ms);
      const slot = Math.floor((performance.now() - started) / 250);
      let h = slots.get(slot);
      if (h === undefined) slots.set(slot, (h = new Histogram()));
      h.record(ms);
      options.onCall?.(ms);
      stats.acks += 1;
      if (reading) stats.readingAcks += 1;
    },
    error: (code) => {
      stats.errors[code] = (stats.errors[code] ?? 0) + 1;
    },
  };
  const stormAt = options.stormAfterS == null ? null : Date.now() + options.stormAfterS * 1000;
  const first = options.firstIndex ?? 0;
  run.stormAt = stormAt;
  const rampMs = (options.rampS ?? 0) * 1000;
  const n = options.chargerIds.length;
  await Promise.all(
    options.chargerIds.map(async (id, i) => {
      if (rampMs > 0) await sleep((rampMs * i) / n);
      const charger = new SimCharger(id, first + i, run);
      await charger.run();
    }),
  );
  stats.seconds = (performance.now() - started) / 1000;
  for (const [slot, h] of [...slots].sort(([a], [b]) => a - b)) {
    stats.timeline.push({ second: slot / 4, acks: h.count * 4, p99Ms: h.percentile(0.99) });
  }
  return stats;
}

interface RunContext {
  readonly options: SimOptions;
  readonly started: number;
  /** Epoch ms of the reconnect storm, if any. */
  stormAt: number | null;
  readonly stats: SimStats;
  record(ms: number, reading: boolean, action: string): void;
  error(code: string): void;
}

/** A message on its way: built when sent, so a queued 1.6 message gets its transactionId late. */
interface Outgoing {
  readonly action: string;
  /** The action, for latency by action (TransactionEvent with its eventType). */
  readonly label: string;
  readonly payload: (queued: boolean) => object;
  readonly reading: boolean;
  /** Sent outside the outbox (BootNotification): not sent again after a drop. */
  readonly direct: boolean;
  queued: boolean;
  resent: boolean;
  /** Called with the answer payload (null: CALLERROR or timeout). */
  readonly answered: (payload: Record<string, unknown> | null) => void;
}

/** Deterministic per-charger randomness, so runs are comparable. */
function random(seed: number): () => number {
  let x = (seed * 2654435761 + 1) >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return ((x >>> 0) % 1_000_000) / 1_000_000;
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

class SimCharger {
  readonly #id: string;
  readonly #index: number;
  readonly #run: RunContext;
  readonly #o: SimOptions;
  readonly #rand: () => number;
  readonly #v201: boolean;
  readonly #totals: ChargerTotals;
  #ws: WebSocket | null = null;
  #online = false;
  #connecting = false;
  #finished = false;
  readonly #outbox: Outgoing[] = [];
  #inFlight: { out: Outgoing; id: string; sentAt: number; timer: NodeJS.Timeout } | null = null;
  #nextId = 0;
  #booted: Array<() => void> = [];
  #idle: Array<() => void> = [];
  /** The charger's clock (virtual in compressed time), epoch ms. */
  #clock = Date.now();
  #stormTimer: NodeJS.Timeout | null = null;
  /** Epoch ms of the drop this charger is reconnecting after, for the storm figure. */
  #droppedAt: number | null = null;
  #bootedOnce = false;

  constructor(id: string, index: number, run: RunContext) {
    this.#id = id;
    this.#index = index;
    this.#run = run;
    this.#o = run.options;
    this.#rand = random(index + 1);
    this.#v201 = this.#rand() < this.#o.share201;
    this.#totals = {
      protocol: this.#v201 ? '2.0.1' : '1.6',
      readingsSent: 0,
      readingsAcked: 0,
      samplesSent: 0,
      faultySent: 0,
      sessions: 0,
      stops: [],
      resent: 0,
      reconnects: 0,
    };
    if (run.stats.perCharger !== null) run.stats.perCharger[id] = this.#totals;
  }

  async run(): Promise<void> {
    const stormAt = this.#run.stormAt;
    if (stormAt !== null)
      this.#stormTimer = setTimeout(() => this.#drop('storm'), Math.max(0, stormAt - Date.now()));
    await this.#connect();
    await this.#status('Available', 'Available');
    const offlineSession = this.#rand() < (this.#o.offlineShare ?? 0) ? 0 : -1;
    for (let s = 0; s < this.#o.sessionsPerCharger; s++)
      await this.#session(s, s === offlineSession);
    await this.#drained();
    if ((this.#o.holdS ?? 0) > 0) await sleep((this.#o.holdS ?? 0) * 1000);
    // A storm still to come does not wait for chargers that are done.
    if (this.#stormTimer !== null) clearTimeout(this.#stormTimer);
    this.#finished = true;
    this.#ws?.close();
  }

  // --- connection ---------------------------------------------------------------------------

  /** Connects (again), retrying with backoff, and resolves once a BootNotification is accepted. */
  #connect(): Promise<void> {
    const booted = new Promise<void>((resolve) => this.#booted.push(resolve));
    if (!this.#connecting) {
      this.#connecting = true;
      void this.#connectLoop();
    }
    return booted;
  }

  async #connectLoop(): Promise<void> {
    for (let attempt = 0; !this.#finished; attempt++) {
      try {
        const ws = await this.#open();
        if (await this.#boot(ws)) break;
        ws.terminate();
      } catch (error) {
        this.#run.error(error instanceof UpgradeError ? error.code : 'connect_failed');
      }
      // Backoff with jitter, as chargers do, so that a refused crowd does not come back as one.
      await sleep(Math.min(30_000, 500 * 2 ** Math.min(attempt, 6)) * (0.5 + this.#rand()));
    }
    this.#connecting = false;
    for (const resolve of this.#booted.splice(0)) resolve();
  }

  #open(): Promise<WebSocket> {
    const password = this.#o.passwords?.[this.#id];
    const addresses = this.#o.localAddresses ?? [];
    const localAddress =
      addresses.length > 0 ? addresses[this.#index % addresses.length] : undefined;
    const ws = new WebSocket(
      `${this.#o.url}/${encodeURIComponent(this.#id)}`,
      [this.#v201 ? 'ocpp2.0.1' : 'ocpp1.6'],
      {
        headers:
          password === undefined
            ? {}
            : {
                Authorization: `Basic ${Buffer.from(`${this.#id}:${password}`).toString('base64')}`,
              },
        ...(localAddress === undefined ? {} : { localAddress }),
      },
    );
    return new Promise<WebSocket>((resolve, reject) => {
      ws.once('open', () => resolve(ws));
      ws.once('error', (error: NodeJS.ErrnoException) =>
        reject(new UpgradeError(`connect_${error.code ?? 'error'}`)),
      );
      ws.once('unexpected-response', (_req, res) => {
        reject(new UpgradeError(`upgrade_${res.statusCode ?? 0}`));
        ws.terminate();
      });
    });
  }

  /** BootNotification on a fresh socket, outside the outbox (it goes before any backlog). */
  async #boot(ws: WebSocket): Promise<boolean> {
    this.#ws = ws;
    ws.on('message', (data: Buffer) => this.#frame(ws, data));
    ws.on('error', () => undefined);
    ws.once('close', () => {
      if (this.#ws === ws) this.#drop('lost');
    });
    const answer = await this.#direct(
      'BootNotification',
      this.#v201
        ? { reason: 'PowerUp', chargingStation: { model: 'Sim', vendorName: 'chargestream' } }
        : { chargePointVendor: 'chargestream', chargePointModel: 'Sim' },
    );
    if (answer?.['status'] !== 'Accepted' || this.#ws !== ws) return false;
    const now = Date.now();
    if (!this.#bootedOnce) {
      this.#bootedOnce = true;
      this.#run.stats.bootMs.push(performance.now() - this.#run.started);
    } else if (this.#droppedAt !== null) {
      const storm = this.#run.stormAt;
      if (storm !== null && this.#droppedAt === storm)
        this.#run.stats.stormBootMs.push(now - storm);
      this.#totals.reconnects += 1;
      this.#run.stats.reconnects += 1;
    }
    this.#droppedAt = null;
    this.#online = true;
    this.#pump();
    return true;
  }

  /**
   * The socket is gone — `storm`: every charger drops at the storm's moment; `offline`: this
   * charger loses its connection mid-session; `lost`: the engine closed it. The charger goes
   * offline and reconnects later; the unanswered message is sent again first.
   */
  #drop(why: 'storm' | 'offline' | 'lost'): void {
    if (this.#finished) return;
    if (why === 'storm') this.#stormTimer = null;
    const ws = this.#ws;
    this.#ws = null;
    this.#online = false;
    this.#droppedAt = why === 'storm' ? this.#run.stormAt! : Date.now();
    ws?.terminate();
    const flight = this.#inFlight;
    if (flight !== null) {
      clearTimeout(flight.timer);
      this.#inFlight = null;
      if (flight.out.direct) {
        flight.out.answered(null);
      } else {
        flight.out.resent = true;
        this.#outbox.unshift(flight.out);
      }
    }
    if (this.#connecting) return;
    const offlineMs = this.#o.offlineMs ?? (why === 'offline' ? 2_000 : 0);
    const delay = offlineMs + (why === 'lost' ? 1000 * (0.5 + this.#rand()) : 0);
    setTimeout(() => void this.#connect(), delay);
  }

  #frame(ws: WebSocket, data: Buffer): void {
    let frame: unknown[];
    try {
      frame = JSON.parse(data.toString()) as unknown[];
    } catch {
      this.#run.error('bad_frame');
      return;
    }
    if (frame[0] === 2) {
      ws.send(JSON.stringify([3, frame[1], answerEngineCall(String(frame[2]), frame[3])]));
      return;
    }
    const flight = this.#inFlight;
    if (flight === null || frame[1] !== flight.id) return;
    clearTimeout(flight.timer);
    this.#inFlight = null;
    this.#settle(flight.out, flight.sentAt, frame);
    this.#pump();
  }

  #settle(out: Outgoing, sentAt: number, frame: unknown[] | null): void {
    if (frame !== null && frame[0] === 3) {
      this.#run.record(performance.now() - sentAt, out.reading, out.label);
      if (out.reading) this.#totals.readingsAcked += 1;
      out.answered((frame[2] ?? {}) as Record<string, unknown>);
    } else {
      this.#run.error(frame === null ? 'Timeout' : String(frame[2]));
      out.answered(null);
    }
  }

  // --- calls ---------------------------------------------------------------------------------

  /** Sends now, outside the outbox (boot): the answer, or null. */
  #direct(action: string, payload: object): Promise<Record<string, unknown> | null> {
    return new Promise((resolve) => {
      const out: Outgoing = {
        action,
        label: action,
        payload: () => payload,
        reading: false,
        direct: true,
        queued: false,
        resent: false,
        answered: resolve,
      };
      if (!this.#transmit(out)) resolve(null);
    });
  }

  #transmit(out: Outgoing): boolean {
    const ws = this.#ws;
    if (ws === null || ws.readyState !== WebSocket.OPEN) return false;
    const id = String(++this.#nextId);
    const sentAt = performance.now();
    const timer = setTimeout(() => {
      if (this.#inFlight?.id !== id) return;
      this.#inFlight = null;
      this.#settle(out, sentAt, null);
      this.#pump();
    }, this.#o.callTimeoutMs ?? 60_000);
    this.#inFlight = { out, id, sentAt, timer };
    if (out.resent) {
      this.#totals.resent += 1;
      this.#run.stats.resent += 1;
    }
    ws.send(JSON.stringify([2, id, out.action, out.payload(out.queued)]));
    return true;
  }

  #pump(): void {
    if (!this.#online || this.#inFlight !== null) return;
    const out = this.#outbox.shift();
    if (out === undefined) {
      for (const resolve of this.#idle.splice(0)) resolve();
      return;
    }
    if (!this.#transmit(out)) this.#outbox.unshift(out);
  }

  #drained(): Promise<void> {
    if (this.#online && this.#inFlight === null && this.#outbox.length === 0)
      return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /**
   * A CALL through the outbox, in order. Online: resolves with the answer. Offline, a
   * transaction message is queued and resolves at once (the charger goes on charging; a 1.6
   * message reads its transactionId when it is finally sent); anything else waits to be sent.
   */
  #call(
    action: string,
    payload: (queued: boolean) => object,
    options: {
      reading?: boolean;
      label?: string;
      onAnswer?: (answer: Record<string, unknown> | null) => void;
    } = {},
  ): Promise<Record<string, unknown> | null> {
    return new Promise((resolve) => {
      const queued = !this.#online && QUEUEABLE.has(action);
      const out: Outgoing = {
        action,
        label: options.label ?? action,
        payload,
        reading: options.reading ?? false,
        direct: false,
        queued,
        resent: false,
        answered: (answer) => {
          options.onAnswer?.(answer);
          if (!queued) resolve(answer);
        },
      };
      this.#outbox.push(out);
      if (queued) {
        this.#run.stats.queuedOffline += 1;
        resolve({});
      }
      this.#pump();
    });
  }

  // --- sessions ------------------------------------------------------------------------------

  #iso(at = this.#clock): string {
    return new Date(at).toISOString();
  }

  #status(s16: string, s201: string): Promise<unknown> {
    const at = this.#iso();
    return this.#call('StatusNotification', () =>
      this.#v201
        ? { timestamp: at, connectorStatus: s201, evseId: 1, connectorId: 1 }
        : { connectorId: 1, errorCode: 'NoError', status: s16, timestamp: at },
    );
  }

  /** Waits before the next reading: nothing in compressed time, the interval in realtime. */
  async #tick(k: number): Promise<void> {
    if (this.#o.realtime === true) {
      const burst = Math.max(1, this.#o.burst ?? 1);
      if (k % burst === 0) await sleep(this.#o.intervalS * 1000);
      this.#clock = Date.now();
    } else {
      this.#clock += this.#o.intervalS * 1000;
    }
  }

  async #session(s: number, goesOffline: boolean): Promise<void> {
    const o = this.#o;
    const v201 = this.#v201;
    const rand = this.#rand;
    const tokens = o.tokens;
    // The charger's own driver: a token charges one car at a time (A2), so simulated chargers
    // share tokens only when the network has fewer tokens than chargers.
    const token = tokens[this.#index % Math.max(1, tokens.length)] ?? 'UNKNOWN';
    if (this.#online)
      await this.#call('Authorize', () =>
        v201 ? { idToken: { idToken: token, type: 'ISO14443' } } : { idTag: token },
      );
    await this.#status('Preparing', 'Occupied');
    // The car: SoC at arrival, and a battery sized so that constant current would fill it in
    // about 60 % of the session's readings (the taper above 80 % takes the rest).
    const soc0 = 10 + Math.floor(rand() * 50);
    const ccPowerW = o.maxPowerW * 0.9;
    const capacityWh =
      (ccPowerW * o.intervalS * o.readingsPerSession * 0.6) / 3600 / ((100 - soc0) / 100);
    let soc = soc0;
    let register = this.#totals.stops.at(-1)?.meterStopWh ?? Math.floor(rand() * 5_000_000);
    const meterStartWh = register;
    let fraction = 0;
    const txId = `${this.#id}-${s}-${this.#clock}`;
    const tx = { transactionId: 0 };
    let seqNo = 0;
    const energy = (wh: number, context: string, at: string, extra: object[]) => ({
      timestamp: at,
      sampledValue: [
        v201
          ? {
              value: wh,
              context,
              measurand: 'Energy.Active.Import.Register',
              unitOfMeasure: { unit: 'Wh' },
            }
          : { value: String(wh), context, measurand: 'Energy.Active.Import.Register', unit: 'Wh' },
        ...extra,
      ],
    });
    const startAt = this.#iso();
    const startWh = register;
    if (v201) {
      await this.#call(
        'TransactionEvent',
        (queued) => ({
          eventType: 'Started',
          timestamp: startAt,
          triggerReason: 'Authorized',
          seqNo: 0,
          ...(queued ? { offline: true } : {}),
          transactionInfo: { transactionId: txId, chargingState: 'Charging' },
          evse: { id: 1, connectorId: 1 },
          idToken: { idToken: token, type: 'ISO14443' },
          meterValue: [energy(startWh, 'Transaction.Begin', startAt, [])],
        }),
        { label: 'TransactionEvent.Started' },
      );
      seqNo = 1;
    } else {
      await this.#call(
        'StartTransaction',
        () => ({ connectorId: 1, idTag: token, meterStart: startWh, timestamp: startAt }),
        {
          onAnswer: (answer) => {
            tx.transactionId = (answer?.['transactionId'] as number | undefined) ?? 0;
          },
        },
      );
      await this.#status('Charging', 'Occupied');
    }
    let suspended = false;
    for (let k = 0; k < o.readingsPerSession; k++) {
      if (goesOffline && k === Math.floor(o.readingsPerSession / 2)) this.#drop('offline');
      const before = this.#clock;
      await this.#tick(k);
      const dtS = (this.#clock - before) / 1000;
      // CC/CV: constant power up to 80 % SoC, then tapering towards full, as a car charges.
      const powerW = suspended
        ? 0
        : Math.round(ccPowerW * (soc < 80 ? 1 : Math.max(0.05, (100 - soc) / 20)));
      const addedWh = (powerW * dtS) / 3600 + fraction;
      register += Math.floor(addedWh);
      fraction = addedWh - Math.floor(addedWh);
      soc = Math.min(100, soc + (100 * (powerW * dtS)) / 3600 / capacityWh);
      let sentRegister = register;
      let sentAt = this.#clock;
      const fault = rand() < o.faults;
      if (fault && rand() < 0.5)
        sentRegister = register + 50_000; // a spike no connector can deliver
      else if (fault) sentAt = this.#clock - 3600_000; // a timestamp an hour stale
      if (fault) this.#totals.faultySent += 1;
      const at = this.#iso(sentAt);
      const current = Math.round(powerW / 230 / 3);
      const extra = v201
        ? [
            { value: powerW, measurand: 'Power.Active.Import', unitOfMeasure: { unit: 'W' } },
            { value: current, measurand: 'Current.Import', phase: 'L1' },
            { value: 230, measurand: 'Voltage', phase: 'L1-N' },
            { value: Math.round(soc), measurand: 'SoC' },
          ]
        : [
            { value: String(powerW), measurand: 'Power.Active.Import', unit: 'W' },
            { value: String(current), measurand: 'Current.Import', phase: 'L1', unit: 'A' },
            { value: '230', measurand: 'Voltage', phase: 'L1-N', unit: 'V' },
            { value: String(Math.round(soc)), measurand: 'SoC', unit: 'Percent' },
          ];
      const meterValue = [energy(sentRegister, 'Sample.Periodic', at, extra)];
      this.#totals.readingsSent += 1;
      this.#totals.samplesSent += 1 + extra.length;
      // Nearly full: the car stops drawing (SuspendedEV) and the rest is parking.
      const suspendNow = !suspended && soc >= 97;
      if (v201) {
        const n = seqNo++;
        await this.#call(
          'TransactionEvent',
          (queued) => ({
            eventType: 'Updated',
            timestamp: at,
            triggerReason: suspendNow ? 'ChargingStateChanged' : 'MeterValuePeriodic',
            seqNo: n,
            ...(queued ? { offline: true } : {}),
            transactionInfo: {
              transactionId: txId,
              ...(suspendNow ? { chargingState: 'SuspendedEV' } : {}),
            },
            meterValue,
          }),
          { reading: true, label: 'TransactionEvent.Updated' },
        );
      } else {
        await this.#call(
          'MeterValues',
          () => ({ connectorId: 1, transactionId: tx.transactionId, meterValue }),
          { reading: true },
        );
        if (suspendNow) await this.#status('SuspendedEV', 'Occupied');
      }
      if (suspendNow) suspended = true;
    }
    // The driver comes back and ends the session at the charger.
    await this.#tick(0);
    const stopAt = this.#iso();
    const stopWh = register;
    if (v201) {
      const n = seqNo++;
      await this.#call(
        'TransactionEvent',
        (queued) => ({
          eventType: 'Ended',
          timestamp: stopAt,
          triggerReason: 'StopAuthorized',
          seqNo: n,
          ...(queued ? { offline: true } : {}),
          transactionInfo: { transactionId: txId, stoppedReason: 'Local', chargingState: 'Idle' },
          idToken: { idToken: token, type: 'ISO14443' },
          meterValue: [energy(stopWh, 'Transaction.End', stopAt, [])],
        }),
        { label: 'TransactionEvent.Ended' },
      );
    } else {
      await this.#call('StopTransaction', () => ({
        transactionId: tx.transactionId,
        meterStop: stopWh,
        timestamp: stopAt,
        reason: 'Local',
        idTag: token,
      }));
    }
    this.#totals.stops.push({ meterStartWh, meterStopWh: stopWh });
    // Parking: the cable stays in (Finishing / Occupied) until the car leaves.
    await this.#status('Finishing', 'Occupied');
    if (o.realtime === true) await sleep(o.intervalS * 1000);
    else this.#clock += o.intervalS * 1000 * (1 + Math.floor(rand() * 4));
    await this.#status('Available', 'Available');
    this.#totals.sessions += 1;
    this.#run.stats.sessions += 1;
    o.onSession?.();
    if (o.realtime !== true) this.#clock += o.intervalS * 1000;
  }
}

class UpgradeError extends Error {
  constructor(readonly code: string) {
    super(code);
  }
}

/** The engine's own calls (provisioning, CostUpdated): accepted. */
function answerEngineCall(action: string, request: unknown): object {
  if (action === 'CostUpdated') return {};
  if (action === 'SetVariables') {
    const data =
      (request as { setVariableData?: Array<{ component: unknown; variable: unknown }> })
        .setVariableData ?? [];
    return {
      setVariableResult: data.map((v) => ({
        attributeStatus: 'Accepted',
        component: v.component,
        variable: v.variable,
      })),
    };
  }
  return { status: 'Accepted' };
}
