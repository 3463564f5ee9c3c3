import { closeSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export interface TransactionHome {
  readonly chargerId: string;
  readonly connectorId: number;
}

/** Ids handed out per reservation of the counter file: one synced write per this many starts. */
const BLOCK = 1000;
/** Recent starts remembered so that a resent StartTransaction gets its first id back. */
const RECENT_STARTS = 100_000;

/**
 * OCPP 1.6 transaction ids: 31-bit integers the central system hands out. Ids come from a
 * counter kept in the data folder in blocks (hi/lo), so a restart never hands an id out twice.
 * The registry also remembers where each running transaction lives, because a 1.6
 * StopTransaction carries no connectorId and must still reach its connector's partition.
 */
export class TransactionRegistry {
  readonly #file: string;
  #next: number;
  #limit: number;
  readonly #homes = new Map<string, TransactionHome>();
  readonly #recentStarts = new Map<string, string>();

  constructor(dataDir: string) {
    this.#file = join(dataDir, 'transaction-ids');
    let reserved = 0;
    try {
      reserved = Number.parseInt(readFileSync(this.#file, 'utf8'), 10) || 0;
    } catch {
      // First start: no counter yet.
    }
    this.#next = reserved + 1;
    this.#limit = reserved;
  }

  /**
   * The id for a start; a start already seen (same charger, connector, timestamp, token and
   * meterStart: the charger resending after a lost answer) gets the same id again.
   */
  allocate(startKey: string, home: TransactionHome): string {
    const known = this.#recentStarts.get(startKey);
    if (known !== undefined) return known;
    if (this.#next > this.#limit) this.#reserve();
    const id = String(this.#next++);
    this.remember(id, home);
    this.#recentStarts.set(startKey, id);
    if (this.#recentStarts.size > RECENT_STARTS) {
      const oldest = this.#recentStarts.keys().next().value;
      if (oldest !== undefined) this.#recentStarts.delete(oldest);
    }
    return id;
  }

  /**
   * Where a transaction of this charger lives. Keyed by charger and id: 2.0.1 transaction ids
   * are the charger's own and only unique per charger; a 1.6 id of another charger is not found.
   */
  home(chargerId: string, transactionId: string): TransactionHome | undefined {
    return this.#homes.get(`${chargerId}|${transactionId}`);
  }

  /** Registers a running transaction: a 2.0.1 start, or one recovered after a restart. */
  remember(transactionId: string, home: TransactionHome): void {
    this.#homes.set(`${home.chargerId}|${transactionId}`, home);
  }

  ended(chargerId: string, transactionId: string): void {
    this.#homes.delete(`${chargerId}|${transactionId}`);
  }

  get running(): number {
    return this.#homes.size;
  }

  #reserve(): void {
    const limit = Math.max(this.#limit, this.#next - 1) + BLOCK;
    if (limit > 0x7fffffff) throw new Error('transaction id space exhausted');
    const fd = openSync(this.#file, 'w');
    try {
      writeSync(fd, String(limit));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    this.#limit = limit;
  }
}
