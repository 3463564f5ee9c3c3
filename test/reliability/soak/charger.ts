import WebSocket from 'ws';

/**
 * A simulated charger for the soak: it charges on its own clock whether or not it is
 * connected, keeps every transaction message in a queue until the engine acknowledges it
 * (as OCPP chargers do: TransactionMessageAttempts), resends the head of the queue after a
 * lost connection or a CALLERROR, and keeps a ledger of what the engine acknowledged — the
 * truth the store is reconciled against at the end.
 *
 * Energies move in steps of 100 Wh per reading, one reading per simulated minute (6, 12 or
 * 18 kW on 22 kW connectors), so that every session's amount is a whole number of cents
 * before VAT and the expected CDR total needs no rounding choice.
 */

export type Protocol = 'ocpp1.6' | 'ocpp2.0.1';

/** One session as the engine acknowledged it. */
export interface LedgerSession {
  /** The session id the engine gives it: `<charger>-<transactionId>`. */
  sessionId: string;
  meterStart: number;
  meterStop: number | null;
  /** Periodic readings acknowledged (MeterValues or Updated events). */
  readings: number;
  /** The token status the start was answered with (`Accepted` unless refused). */
  status: string;
}

export interface ChargerCounters {
  sent: number;
  acked: number;
  callErrors: number;
  /** Sends that got no answer before the connection closed or the answer timed out. */
  unanswered: number;
  connects: number;
  refusedConnects: number;
  cuts: number;
  offlinePeriods: number;
  /** Most messages queued at once (offline backlogs). */
  peakQueue: number;
}

interface Outgoing {
  readonly action: string;
  /** Built at send time: a 1.6 MeterValues needs the transactionId the start got. */
  readonly payload: () => object;
  readonly acked: (answer: Record<string, unknown>) => void;
  /** The messageId of the first attempt: a resend reuses it. */
  id: string;
}

const SIM_STEP_S = 60;

export class SoakCharger {
  readonly id: string;
  readonly protocol: Protocol;
  readonly token: string;
  readonly sessions: LedgerSession[] = [];
  readonly counters: ChargerCounters = {
    sent: 0,
    acked: 0,
    callErrors: 0,
    unanswered: 0,
    connects: 0,
    refusedConnects: 0,
    cuts: 0,
    offlinePeriods: 0,
    peakQueue: 0,
  };

  /** Milliseconds from sending a transaction message to its CALLRESULT (answered ones). */
  readonly ackMs: number[] = [];

  readonly #url: () => string;
  readonly #random: () => number;
  readonly #queue: Outgoing[] = [];
  #ws: WebSocket | null = null;
  #offlineUntil = 0;
  #nextId = 1;
  #meter = 0;
  #simTime: number;
  /** What the producer does next: start, `left` readings, stop, idle ticks. */
  #phase: { kind: 'idle'; ticks: number } | { kind: 'charging'; left: number; stepWh: number } = {
    kind: 'idle',
    ticks: 0,
  };
  #session: { tx201: string; transactionId: number | null; seqNo: number } | null = null;
  #stopping = false;
  #booted = false;
  #wake: (() => void) | null = null;

  constructor(options: {
    id: string;
    protocol: Protocol;
    token: string;
    url: () => string;
    random: () => number;
    startTime: number;
  }) {
    this.id = options.id;
    this.protocol = options.protocol;
    this.token = options.token;
    this.#url = options.url;
    this.#random = options.random;
    this.#simTime = options.startTime;
    this.#meter = 1000 * Math.floor(this.#random() * 100);
  }

  get queued(): number {
    return this.#queue.length;
  }

  /** One step of the charging process: runs whether or not the charger is connected. */
  tick(): void {
    if (this.#queue.length > 2000) return; // a full memory: the charger waits, as real ones do
    const phase = this.#phase;
    if (phase.kind === 'idle') {
      if (this.#stopping) return;
      if (phase.ticks > 0) {
        phase.ticks -= 1;
        return;
      }
      this.#start();
      this.#phase = {
        kind: 'charging',
        left: 3 + Math.floor(this.#random() * 18),
        stepWh: 100 * (1 + Math.floor(this.#random() * 3)),
      };
      return;
    }
    if (phase.left > 0 && !this.#stopping) {
      phase.left -= 1;
      this.#reading(phase.stepWh);
      return;
    }
    this.#stop();
    this.#phase = { kind: 'idle', ticks: Math.floor(this.#random() * 4) };
  }

  /** Ends the current session (if any) and produces nothing more. */
  finish(): void {
    this.#stopping = true;
    if (this.#phase.kind === 'charging') {
      this.#stop();
      this.#phase = { kind: 'idle', ticks: 0 };
    }
  }

  /** Whether everything produced was acknowledged. */
  get drained(): boolean {
    return this.#queue.length === 0 && this.#phase.kind === 'idle';
  }

  /** Drops the connection without a close frame (the socket destroyed under the WebSocket). */
  cut(): void {
    const ws = this.#ws;
    if (ws === null) return;
    this.counters.cuts += 1;
    (ws as unknown as { _socket?: { destroy(): void } })._socket?.destroy();
  }

  /** Goes offline for `ms`: disconnected, still charging, queueing. */
  goOffline(ms: number): void {
    this.counters.offlinePeriods += 1;
    this.#offlineUntil = Date.now() + ms;
    this.#ws?.terminate();
  }

  /** The sender: connects, sends the head of the queue, waits for its answer; until stopped. */
  async run(done: () => boolean): Promise<void> {
    while (!(done() && this.drained)) {
      if (Date.now() < this.#offlineUntil) {
        await sleep(Math.min(500, this.#offlineUntil - Date.now()));
        continue;
      }
      const ws = await this.#connected();
      if (ws === null) {
        await sleep(300 + this.#random() * 1200);
        continue;
      }
      const head = this.#queue[0];
      if (head === undefined) {
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
          setTimeout(resolve, 200);
        });
        this.#wake = null;
        continue;
      }
      const sentAt = performance.now();
      const answer = await this.#call(ws, head);
      if (answer === null) {
        this.counters.unanswered += 1;
        continue;
      }
      if (answer[0] === 3) {
        this.ackMs.push(performance.now() - sentAt);
        this.#queue.shift();
        this.counters.acked += 1;
        head.acked(answer[2] as Record<string, unknown>);
      } else {
        this.counters.callErrors += 1;
        await sleep(300 + this.#random() * 700);
      }
    }
    this.#ws?.close();
    this.#ws = null;
  }

  #enqueue(action: string, payload: () => object, acked: Outgoing['acked']): void {
    this.#queue.push({ action, payload, acked, id: `${this.#nextId++}` });
    this.counters.peakQueue = Math.max(this.counters.peakQueue, this.#queue.length);
    this.#wake?.();
  }

  #energy(at: number): object {
    return {
      timestamp: new Date(at).toISOString(),
      sampledValue: [
        this.protocol === 'ocpp1.6'
          ? {
              value: String(this.#meter),
              measurand: 'Energy.Active.Import.Register',
              unit: 'Wh',
              context: 'Sample.Periodic',
            }
          : { value: this.#meter, measurand: 'Energy.Active.Import.Register' },
      ],
    };
  }

  #start(): void {
    this.#simTime += SIM_STEP_S * 1000;
    const at = this.#simTime;
    const meterStart = this.#meter;
    const session = {
      tx201: `soak-${this.id}-${at}`,
      transactionId: null as number | null,
      seqNo: 0,
    };
    this.#session = session;
    const ledger: LedgerSession = {
      sessionId: '',
      meterStart,
      meterStop: null,
      readings: 0,
      status: '',
    };
    if (this.protocol === 'ocpp1.6') {
      const payload = {
        connectorId: 1,
        idTag: this.token,
        meterStart,
        timestamp: new Date(at).toISOString(),
      };
      this.#enqueue(
        'StartTransaction',
        () => payload,
        (answer) => {
          session.transactionId = answer['transactionId'] as number;
          ledger.sessionId = `${this.id}-${session.transactionId}`;
          ledger.status = (answer['idTagInfo'] as { status?: string } | undefined)?.status ?? '';
          this.sessions.push(ledger);
        },
      );
    } else {
      const payload = {
        eventType: 'Started',
        timestamp: new Date(at).toISOString(),
        triggerReason: 'Authorized',
        seqNo: session.seqNo++,
        transactionInfo: { transactionId: session.tx201 },
        evse: { id: 1, connectorId: 1 },
        idToken: { idToken: this.token, type: 'ISO14443' },
        meterValue: [this.#energy(at)],
      };
      this.#enqueue(
        'TransactionEvent',
        () => payload,
        (answer) => {
          ledger.sessionId = `${this.id}-${session.tx201}`;
          ledger.status =
            (answer['idTokenInfo'] as { status?: string } | undefined)?.status ?? 'Accepted';
          this.sessions.push(ledger);
        },
      );
    }
    this.#ledger = ledger;
  }

  #ledger: LedgerSession | null = null;

  #reading(stepWh: number): void {
    const session = this.#session!;
    const ledger = this.#ledger!;
    this.#simTime += SIM_STEP_S * 1000;
    this.#meter += stepWh;
    const at = this.#simTime;
    const value = this.#energy(at);
    if (this.protocol === 'ocpp1.6') {
      this.#enqueue(
        'MeterValues',
        () => ({ connectorId: 1, transactionId: session.transactionId, meterValue: [value] }),
        () => (ledger.readings += 1),
      );
    } else {
      const payload = {
        eventType: 'Updated',
        timestamp: new Date(at).toISOString(),
        triggerReason: 'MeterValuePeriodic',
        seqNo: session.seqNo++,
        transactionInfo: { transactionId: session.tx201 },
        meterValue: [value],
      };
      this.#enqueue(
        'TransactionEvent',
        () => payload,
        () => (ledger.readings += 1),
      );
    }
  }

  #stop(): void {
    const session = this.#session!;
    const ledger = this.#ledger!;
    this.#simTime += SIM_STEP_S * 1000;
    const at = this.#simTime;
    const meterStop = this.#meter;
    if (this.protocol === 'ocpp1.6') {
      this.#enqueue(
        'StopTransaction',
        () => ({
          transactionId: session.transactionId,
          meterStop,
          timestamp: new Date(at).toISOString(),
          reason: 'EVDisconnected',
        }),
        () => (ledger.meterStop = meterStop),
      );
    } else {
      const payload = {
        eventType: 'Ended',
        timestamp: new Date(at).toISOString(),
        triggerReason: 'EVDeparted',
        seqNo: session.seqNo++,
        transactionInfo: { transactionId: session.tx201, stoppedReason: 'EVDisconnected' },
        meterValue: [this.#energy(at)],
      };
      this.#enqueue(
        'TransactionEvent',
        () => payload,
        () => (ledger.meterStop = meterStop),
      );
    }
    this.#session = null;
    this.#ledger = null;
  }

  /** The open connection, or a new one; null when the engine refused or is down. */
  async #connected(): Promise<WebSocket | null> {
    if (this.#ws !== null && this.#ws.readyState === WebSocket.OPEN) return this.#ws;
    this.#ws = null;
    const ws = new WebSocket(`${this.#url()}/${this.id}`, [this.protocol]);
    const opened = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        ws.terminate();
        resolve(false);
      }, 10_000);
      ws.once('open', () => {
        clearTimeout(timer);
        resolve(true);
      });
      ws.once('error', () => {
        clearTimeout(timer);
        resolve(false);
      });
      ws.once('unexpected-response', (_req, res) => {
        clearTimeout(timer);
        res.resume();
        ws.terminate();
        resolve(false);
      });
    });
    if (!opened) {
      this.counters.refusedConnects += 1;
      return null;
    }
    ws.on('error', () => undefined);
    // The engine's own CALLs (provisioning after a boot): accepted.
    ws.on('message', (data: Buffer) => {
      const frame = JSON.parse(data.toString()) as unknown[];
      if (frame[0] === 2 && ws.readyState === WebSocket.OPEN)
        ws.send(JSON.stringify([3, frame[1], { status: 'Accepted' }]));
    });
    this.counters.connects += 1;
    this.#ws = ws;
    if (!this.#booted) {
      this.#booted = true;
      const boot =
        this.protocol === 'ocpp1.6'
          ? { chargePointVendor: 'chargestream-soak', chargePointModel: 'soak' }
          : {
              reason: 'PowerUp',
              chargingStation: { model: 'soak', vendorName: 'chargestream-soak' },
            };
      await this.#call(ws, {
        action: 'BootNotification',
        payload: () => boot,
        acked: () => undefined,
        id: 'boot',
      });
    }
    return ws;
  }

  /** Sends one CALL; its answer frame, or null when the connection closed or 30 s passed. */
  #call(ws: WebSocket, message: Outgoing): Promise<unknown[] | null> {
    return new Promise((resolve) => {
      if (ws.readyState !== WebSocket.OPEN) {
        resolve(null);
        return;
      }
      const finish = (frame: unknown[] | null) => {
        clearTimeout(timer);
        ws.off('message', onMessage);
        ws.off('close', onClose);
        resolve(frame);
      };
      const onMessage = (data: Buffer) => {
        const frame = JSON.parse(data.toString()) as unknown[];
        if (frame[0] !== 2 && frame[1] === message.id) finish(frame);
      };
      const onClose = () => finish(null);
      const timer = setTimeout(() => {
        // No answer: the charger gives up on this socket and resends on a new one.
        ws.terminate();
        finish(null);
      }, 30_000);
      ws.on('message', onMessage);
      ws.once('close', onClose);
      this.counters.sent += 1;
      ws.send(JSON.stringify([2, message.id, message.action, message.payload()]));
    });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
