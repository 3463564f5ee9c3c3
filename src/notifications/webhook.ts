import { chTime } from '../lib/time.js';
import { createHash, createHmac } from 'node:crypto';
import type { Logger } from 'pino';
import type { NotificationRule } from '../config/network.js';
import { errorMessage } from '../lib/errors.js';
import { Tally } from '../metrics/registry.js';
import type { Store } from '../store/store.js';

/** A stored notification row, as the workers write it. */
export interface NotificationRow {
  readonly notification_id: string;
  readonly ts: string;
  readonly event: string;
  readonly scope: string;
  readonly charger_id: string;
  readonly connector_id: number;
  readonly session_id: string;
  readonly customer_id: string;
  readonly rule_id: string;
  readonly publisher: string;
  readonly receiver: string;
  readonly payload: string;
  readonly log_partition: number;
}

export interface WebhookOptions {
  readonly rules: readonly NotificationRule[];
  readonly store: Store;
  readonly log: Logger;
  /** Attempts before a delivery counts as failed (recorded, not retried again). */
  readonly maxAttempts?: number;
  /** First wait between attempts, doubled each time up to a minute. */
  readonly firstBackoffMs?: number;
  readonly timeoutMs?: number;
  readonly concurrency?: number;
}

/**
 * N2's webhook publisher: POSTs each notification a webhook rule selected, once it is stored,
 * as JSON signed with the rule's secret — `X-Chargestream-Signature: t=<unix s>,v1=<hex
 * HMAC-SHA256 of "<t>.<body>">` — with its stable `X-Chargestream-Notification-Id`. A failed
 * attempt (network error, timeout, non-2xx) is retried with doubling backoff; the outcome is
 * recorded in `notification_deliveries`. At start, what a webhook rule selected and that table
 * does not hold is sent again: delivery is at least once, and a receiver drops repeats by id.
 */
export class WebhookPublisher {
  readonly #rules: ReadonlyMap<string, NotificationRule>;
  readonly #store: Store;
  readonly #log: Logger;
  readonly #maxAttempts: number;
  readonly #firstBackoffMs: number;
  readonly #timeoutMs: number;
  readonly #concurrency: number;
  readonly #queue: Array<{ row: NotificationRow; attempts: number }> = [];
  readonly #pending = new Set<string>();
  #active = 0;
  #closed = false;
  #records: string[] = [];
  #flushing: Promise<void> | null = null;
  readonly stats = { sent: new Tally(), failed: new Tally(), attempts: 0 };

  constructor(options: WebhookOptions) {
    this.#rules = new Map(
      options.rules.filter((r) => r.publisher === 'webhook').map((r) => [r.id, r]),
    );
    this.#store = options.store;
    this.#log = options.log;
    this.#maxAttempts = options.maxAttempts ?? 8;
    this.#firstBackoffMs = options.firstBackoffMs ?? 1000;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#concurrency = options.concurrency ?? 8;
  }

  get enabled(): boolean {
    return this.#rules.size > 0;
  }

  /** Notifications a batch stored (JSONEachRow): those of webhook rules are sent. */
  stored(rows: string): void {
    if (!this.enabled || rows === '') return;
    for (const line of rows.split('\n')) {
      if (line === '' || !line.includes('"publisher":"webhook"')) continue;
      this.#enqueue(JSON.parse(line) as NotificationRow);
    }
  }

  /**
   * Sends again what webhook rules selected in these partitions and was not delivered nor
   * given up on (a crash between storing and delivering), stored in the last `days` days.
   */
  async resume(partitions: readonly number[], days = 7): Promise<number> {
    if (!this.enabled || partitions.length === 0) return 0;
    let rows: NotificationRow[];
    try {
      rows = await this.#store.rows<NotificationRow>(
        `SELECT notification_id, ts, event, scope, charger_id, connector_id,
              session_id, customer_id, rule_id, publisher, receiver, payload, log_partition
       FROM notifications
       WHERE publisher = 'webhook' AND stored_at > now64(3) - toIntervalDay(${days})
         AND log_partition IN (${partitions.join(',')})
         AND notification_id NOT IN (SELECT notification_id FROM notification_deliveries)
       ORDER BY ts`,
      );
    } catch (cause) {
      // The engine runs on; these are looked for again at the next start.
      this.#log.warn({ err: errorMessage(cause) }, 'undelivered webhook notifications not read');
      return 0;
    }
    for (const row of rows) this.#enqueue(row);
    if (rows.length > 0) this.#log.info({ count: rows.length }, 'webhook deliveries resumed');
    return rows.length;
  }

  /** Waits for the queue to drain (or `timeoutMs`), then records what was delivered. */
  async close(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((this.#queue.length > 0 || this.#active > 0) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    this.#closed = true;
    await this.#flush();
  }

  #enqueue(row: NotificationRow): void {
    if (this.#closed || this.#pending.has(row.notification_id)) return;
    if (!this.#rules.has(row.rule_id)) return;
    this.#pending.add(row.notification_id);
    this.#queue.push({ row, attempts: 0 });
    this.#pump();
  }

  #pump(): void {
    while (!this.#closed && this.#active < this.#concurrency && this.#queue.length > 0) {
      const item = this.#queue.shift()!;
      this.#active += 1;
      void this.#attempt(item.row, item.attempts + 1).finally(() => {
        this.#active -= 1;
        this.#pump();
      });
    }
  }

  async #attempt(row: NotificationRow, attempt: number): Promise<void> {
    const rule = this.#rules.get(row.rule_id)!;
    const body = JSON.stringify({
      id: row.notification_id,
      event: row.event,
      scope: row.scope,
      ts: row.ts,
      chargerId: row.charger_id,
      connectorId: row.connector_id,
      sessionId: row.session_id,
      customerId: row.customer_id,
      receiver: row.receiver,
      rule: row.rule_id,
      payload: JSON.parse(row.payload) as unknown,
    });
    const t = Math.floor(Date.now() / 1000);
    const signature = createHmac('sha256', rule.secret!).update(`${t}.${body}`).digest('hex');
    this.stats.attempts += 1;
    let status = 0;
    let error = '';
    try {
      const response = await fetch(rule.url!, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          'X-Chargestream-Event': row.event,
          'X-Chargestream-Notification-Id': row.notification_id,
          'X-Chargestream-Signature': `t=${t},v1=${signature}`,
        },
        body,
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      status = response.status;
      await response.arrayBuffer();
      if (response.ok) {
        this.stats.sent.add(row.event);
        this.#record(row, rule, 'delivered', attempt, status, '');
        return;
      }
      error = `HTTP ${status}`;
    } catch (cause) {
      error = errorMessage(cause);
    }
    if (attempt >= this.#maxAttempts || this.#closed) {
      this.stats.failed.add(row.event);
      this.#log.warn(
        { notification: row.notification_id, url: rule.url, attempts: attempt, error },
        'webhook delivery failed',
      );
      this.#record(row, rule, 'failed', attempt, status, error);
      return;
    }
    const wait = Math.min(60_000, this.#firstBackoffMs * 2 ** (attempt - 1));
    setTimeout(() => {
      this.#queue.push({ row, attempts: attempt });
      this.#pump();
    }, wait).unref();
  }

  #record(
    row: NotificationRow,
    rule: NotificationRule,
    status: 'delivered' | 'failed',
    attempts: number,
    httpStatus: number,
    error: string,
  ): void {
    this.#pending.delete(row.notification_id);
    this.#records.push(
      JSON.stringify({
        notification_id: row.notification_id,
        rule_id: rule.id,
        url: rule.url,
        status,
        attempts,
        http_status: httpStatus,
        error,
        at: chTime(Date.now()),
        log_partition: row.log_partition,
      }),
    );
    this.#flushing ??= new Promise<void>((r) => setTimeout(r, 200)).then(() => this.#flush());
  }

  /** Outcomes are written in batches (one insert per burst, not per delivery). */
  async #flush(): Promise<void> {
    const records = this.#records;
    this.#records = [];
    this.#flushing = null;
    if (records.length === 0) return;
    const rows = records.join('\n') + '\n';
    try {
      await this.#store.insert(
        'notification_deliveries',
        rows,
        `deliveries:${createHash('sha1').update(rows).digest('hex')}`,
      );
    } catch (cause) {
      // Not recorded: these are sent again at the next start (receivers drop repeats by id).
      this.#log.warn({ err: errorMessage(cause) }, 'webhook deliveries not recorded');
    }
  }
}
