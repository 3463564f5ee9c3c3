import type { LiveCost } from '../sessions/process-batch.js';

/** How long a final cost is kept for a repeated Ended event, and a silent running one at all. */
const FINAL_KEPT_MS = 10 * 60_000;
const RUNNING_KEPT_MS = 24 * 3600_000;

interface Running {
  totalCost: string;
  at: number;
  /** When the charger was last told with CostUpdated, or first heard of the cost. */
  toldAt: number;
}

/**
 * R5.1 at the gateway: the costs of the OCPP 2.0.1 transactions of the chargers it holds, as
 * the processor rated them. The running cost answers TransactionEvent Updated (the cost of the
 * readings rated so far: an Updated event is acknowledged once durable, before its own
 * readings are rated) and drives CostUpdated; the final cost answers Ended, which waits for it.
 */
export class LiveCosts {
  readonly #running = new Map<string, Running>();
  readonly #final = new Map<string, { totalCost: string | null; at: number }>();
  readonly #waiting = new Map<string, Array<(totalCost: string | null) => void>>();
  readonly #costUpdatedEveryMs: number;
  #prunedAt = 0;
  readonly stats = { finalTimeouts: 0, costUpdatedSent: 0 };

  /** `costUpdatedIntervalS`: CostUpdated at most this often per transaction; 0 never. */
  constructor(costUpdatedIntervalS: number) {
    this.#costUpdatedEveryMs = costUpdatedIntervalS * 1000;
  }

  /**
   * Takes the costs of a batch (those of chargers this gateway holds). Returns the running
   * costs the charger should now be told with CostUpdated.
   */
  update(costs: readonly LiveCost[], now: number): LiveCost[] {
    const due: LiveCost[] = [];
    for (const cost of costs) {
      const key = keyOf(cost.chargerId, cost.transactionId);
      if (cost.final) {
        this.#running.delete(key);
        this.#final.set(key, { totalCost: cost.totalCost, at: now });
        for (const resolve of this.#waiting.get(key) ?? []) resolve(cost.totalCost);
        this.#waiting.delete(key);
        continue;
      }
      if (cost.totalCost === null || this.#final.has(key)) continue;
      const known = this.#running.get(key);
      const running = known ?? { totalCost: cost.totalCost, at: now, toldAt: now };
      running.totalCost = cost.totalCost;
      running.at = now;
      if (known === undefined) this.#running.set(key, running);
      if (this.#costUpdatedEveryMs > 0 && now - running.toldAt >= this.#costUpdatedEveryMs) {
        running.toldAt = now;
        due.push(cost);
      }
    }
    if (now - this.#prunedAt > 60_000) this.#prune(now);
    return due;
  }

  /** The running cost incl. VAT of a transaction, if one was rated yet. */
  running(chargerId: string, transactionId: string): string | undefined {
    return this.#running.get(keyOf(chargerId, transactionId))?.totalCost;
  }

  /**
   * The final cost of a transaction whose Ended event is durable: at once if known, else when
   * the processor rated it; `undefined` after `timeoutMs` (the processor is behind or down).
   */
  final(
    chargerId: string,
    transactionId: string,
    timeoutMs: number,
  ): Promise<string | null | undefined> {
    const key = keyOf(chargerId, transactionId);
    const known = this.#final.get(key);
    if (known !== undefined) return Promise.resolve(known.totalCost);
    return new Promise((resolve) => {
      const waiters = this.#waiting.get(key) ?? [];
      const timer = setTimeout(() => {
        const left = (this.#waiting.get(key) ?? []).filter((w) => w !== done);
        if (left.length === 0) this.#waiting.delete(key);
        else this.#waiting.set(key, left);
        this.stats.finalTimeouts += 1;
        resolve(undefined);
      }, timeoutMs);
      const done = (totalCost: string | null): void => {
        clearTimeout(timer);
        resolve(totalCost);
      };
      waiters.push(done);
      this.#waiting.set(key, waiters);
    });
  }

  /** Transactions known, running and final (for memory checks). */
  get size(): number {
    return this.#running.size + this.#final.size;
  }

  #prune(now: number): void {
    this.#prunedAt = now;
    for (const [key, f] of this.#final) if (now - f.at > FINAL_KEPT_MS) this.#final.delete(key);
    for (const [key, r] of this.#running)
      if (now - r.at > RUNNING_KEPT_MS) this.#running.delete(key);
  }
}

function keyOf(chargerId: string, transactionId: string): string {
  return `${chargerId}\u0000${transactionId}`;
}
