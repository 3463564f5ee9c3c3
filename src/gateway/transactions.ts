import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { ChargestreamError } from '../lib/errors.js';

export interface TransactionHome {
  readonly chargerId: string;
  readonly connectorId: number;
  /** The token of an accepted start (upper-cased): in use until the transaction ends (A2). */
  readonly tokenId?: string;
}

/** What identifies a start: a resent StartTransaction repeats all of it. */
export function startKey(
  chargerId: string,
  connectorId: number,
  ts: number,
  tokenId: string,
  meterStartWh: number,
): string {
  return `${chargerId}|${connectorId}|${ts}|${tokenId}|${meterStartWh}`;
}

/** Ids handed out per reservation of the counter file: one synced write per this many starts. */
const BLOCK = 1000;
/** Recent starts remembered so that a resent StartTransaction gets its first id back. */
const RECENT_STARTS = 100_000;
/** Recent ends remembered so that a stop resent after its answer was lost is known (R2). */
const RECENT_ENDS = 100_000;

/**
 * OCPP 1.6 transaction ids: 31-bit integers the central system hands out. Ids come from a
 * counter kept in the data folder in blocks (hi/lo), so a restart never hands an id out twice.
 * The registry also remembers where each running transaction lives, because a 1.6
 * StopTransaction carries no connectorId and must still reach its connector's partition.
 */
export class TransactionRegistry {
  readonly #dir: string;
  readonly #file: string;
  #next: number;
  #limit: number;
  readonly #homes = new Map<string, TransactionHome>();
  /** Running transactions per token, for ConcurrentTx (A2). */
  readonly #tokens = new Map<string, number>();
  readonly #recentStarts = new Map<string, string>();
  /** Where transactions whose stop went through lived: charger|id → connector. */
  readonly #recentEnds = new Map<string, number>();

  readonly #gateway: { readonly index: number; readonly count: number };

  /**
   * `gateway`: this process's index among `count` gateway processes. Ids are interleaved —
   * id = k × count + index — so gateways never hand out the same id without talking to each
   * other, and each has 1/count of the id space for 1/count of the starts.
   */
  constructor(dataDir: string, gateway: { index: number; count: number } = { index: 0, count: 1 }) {
    this.#gateway = gateway;
    mkdirSync(dataDir, { recursive: true });
    this.#dir = dataDir;
    this.#file = join(dataDir, 'transaction-ids');
    let reserved = 0;
    if (existsSync(this.#file)) {
      const text = readFileSync(this.#file, 'utf8').trim();
      reserved = Number(text);
      // Starting over at 1 would hand out ids that sessions already carry: refuse instead.
      if (!/^\d+$/.test(text) || !Number.isSafeInteger(reserved)) {
        throw new ChargestreamError(
          'CONFIG_INVALID',
          `${this.#file}: not a transaction id counter ("${text.slice(0, 20)}")`,
        );
      }
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
    const id = String(this.#next++ * this.#gateway.count + this.#gateway.index);
    this.#setHome(`${home.chargerId}|${id}`, home);
    remember(this.#recentStarts, startKey, id, RECENT_STARTS);
    this.journal(home.chargerId, id, home, startKey);
    return id;
  }

  /**
   * Where a transaction of this charger lives. Keyed by charger and id: 2.0.1 transaction ids
   * are the charger's own and only unique per charger; a 1.6 id of another charger is not found.
   */
  home(chargerId: string, transactionId: string): TransactionHome | undefined {
    return this.#homes.get(`${chargerId}|${transactionId}`);
  }

  /**
   * Registers a running transaction recovered after a restart, with its start, so that a
   * StartTransaction resent across the restart still gets its first id back.
   */
  restore(transactionId: string, home: TransactionHome, start: string | null): void {
    this.apply(home.chargerId, transactionId, home, start);
  }

  /** Registers a running transaction: a 2.0.1 start, or one recovered after a restart. */
  remember(transactionId: string, home: TransactionHome): void {
    const key = `${home.chargerId}|${transactionId}`;
    const known = this.#homes.get(key);
    if (known?.connectorId === home.connectorId && known.tokenId === home.tokenId) return;
    this.#setHome(key, home);
    this.journal(home.chargerId, transactionId, home, null);
  }

  /** The start was accepted: its token is in use until the transaction ends (A2). */
  claimToken(chargerId: string, transactionId: string, tokenId: string): void {
    const home = this.#homes.get(`${chargerId}|${transactionId}`);
    if (home === undefined || home.tokenId === tokenId.toUpperCase()) return;
    this.remember(transactionId, { ...home, tokenId: tokenId.toUpperCase() });
  }

  /** Whether the token is in a running transaction other than this charger's `transactionId`. */
  tokenInUse(tokenId: string, chargerId = '', transactionId = ''): boolean {
    const token = tokenId.toUpperCase();
    const running = this.#tokens.get(token) ?? 0;
    const own = this.#homes.get(`${chargerId}|${transactionId}`)?.tokenId === token ? 1 : 0;
    return running - own > 0;
  }

  /** The transaction's stop is durable: it no longer runs, and a stop resent for it is known. */
  ended(chargerId: string, transactionId: string): void {
    if (this.#endHome(`${chargerId}|${transactionId}`))
      this.journal(chargerId, transactionId, null, null);
  }

  /**
   * The connector of a transaction of this charger whose stop went through (here, or through
   * another gateway that journaled it): a stop of it now is that stop resent (R2).
   */
  endedOn(chargerId: string, transactionId: string): number | undefined {
    return this.#recentEnds.get(`${chargerId}|${transactionId}`);
  }

  /** Applies a change another gateway journaled (distributed mode); not journaled again. */
  apply(
    chargerId: string,
    transactionId: string,
    home: TransactionHome | null,
    start: string | null,
  ): void {
    if (home === null) {
      this.#endHome(`${chargerId}|${transactionId}`);
      return;
    }
    this.#setHome(`${chargerId}|${transactionId}`, home);
    if (start !== null) this.#recentStarts.set(start, transactionId);
  }

  #setHome(key: string, home: TransactionHome): void {
    this.#deleteHome(key);
    this.#homes.set(key, home);
    if (home.tokenId !== undefined)
      this.#tokens.set(home.tokenId, (this.#tokens.get(home.tokenId) ?? 0) + 1);
  }

  #endHome(key: string): boolean {
    const home = this.#deleteHome(key);
    if (home === undefined) return false;
    remember(this.#recentEnds, key, home.connectorId, RECENT_ENDS);
    return true;
  }

  /** Forgets a running transaction; its home, if it was known. */
  #deleteHome(key: string): TransactionHome | undefined {
    const home = this.#homes.get(key);
    if (home === undefined) return undefined;
    this.#homes.delete(key);
    if (home.tokenId !== undefined) {
      const left = (this.#tokens.get(home.tokenId) ?? 1) - 1;
      if (left > 0) this.#tokens.set(home.tokenId, left);
      else this.#tokens.delete(home.tokenId);
    }
    return home;
  }

  /**
   * Where every change is also written (distributed mode: a compacted topic every gateway
   * follows, so a stop reaching another gateway, or any gateway after a restart, finds its
   * transaction). Embedded: nowhere; the open sessions rebuild the registry at start.
   */
  journal: (
    chargerId: string,
    transactionId: string,
    home: TransactionHome | null,
    start: string | null,
  ) => void = () => undefined;

  get running(): number {
    return this.#homes.size;
  }

  #reserve(): void {
    const limit = Math.max(this.#limit, this.#next - 1) + BLOCK;
    if ((limit + 1) * this.#gateway.count > 0x7fffffff)
      throw new Error('transaction id space exhausted');
    // Write aside, sync, rename over, sync the folder: a crash leaves the old or the new value.
    const temporary = `${this.#file}.tmp`;
    const fd = openSync(temporary, 'w');
    try {
      writeSync(fd, String(limit));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, this.#file);
    const dir = openSync(this.#dir, 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
    this.#limit = limit;
  }
}

/** Sets a key of a map kept to `max` entries, the oldest set first out. */
function remember<V>(map: Map<string, V>, key: string, value: V, max: number): void {
  map.set(key, value);
  if (map.size > max) {
    const oldest = map.keys().next().value;
    if (oldest !== undefined) map.delete(oldest);
  }
}
