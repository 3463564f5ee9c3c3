/**
 * Failed-upgrade limiter per source address (reliability.md 10): after `limit` failures within
 * `windowMs`, further upgrades from that address are refused with 429 before any credential is
 * checked, until the window passes. Legitimate chargers from other addresses are unaffected.
 * The table is bounded: when full, entries of past windows are dropped first, then the oldest.
 */
export class FailureLimiter {
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #maxSources: number;
  readonly #failures = new Map<string, { count: number; since: number }>();

  constructor(limit = 20, windowMs = 60_000, maxSources = 100_000) {
    this.#limit = limit;
    this.#windowMs = windowMs;
    this.#maxSources = maxSources;
  }

  blocked(source: string, now: number): boolean {
    const entry = this.#failures.get(source);
    if (entry === undefined) return false;
    if (now - entry.since >= this.#windowMs) {
      this.#failures.delete(source);
      return false;
    }
    return entry.count >= this.#limit;
  }

  failed(source: string, now: number): void {
    const entry = this.#failures.get(source);
    if (entry !== undefined && now - entry.since < this.#windowMs) {
      entry.count += 1;
      return;
    }
    if (this.#failures.size >= this.#maxSources) this.#evict(now);
    this.#failures.set(source, { count: 1, since: now });
  }

  #evict(now: number): void {
    for (const [source, entry] of this.#failures) {
      if (now - entry.since >= this.#windowMs) this.#failures.delete(source);
    }
    if (this.#failures.size >= this.#maxSources) {
      const oldest = this.#failures.keys().next().value;
      if (oldest !== undefined) this.#failures.delete(oldest);
    }
  }
}

/** Token bucket for one connection's CALLs: `rate` per second, bursts up to `burst`. */
export class TokenBucket {
  #tokens: number;
  #at: number;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    now: number,
  ) {
    this.#tokens = burst;
    this.#at = now;
  }

  take(now: number): boolean {
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) / 1000) * this.rate);
    this.#at = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
