import type { Logger } from 'pino';
import { ChargestreamError, errorMessage } from '../lib/errors.js';
import { chTime } from '../lib/time.js';
import type { Store } from '../store/store.js';
import type { ConfigChange, EntityKind, LiveNetwork } from './live-network.js';

interface StoredChange {
  seq: string;
  kind: EntityKind;
  id: string;
  doc: string;
  deleted: boolean;
  changed_at: string;
  changed_by: string;
}

export interface ConfigServiceOptions {
  readonly live: LiveNetwork;
  /** Where changes are kept (null in a gateway-only process: it hears them on the bus). */
  readonly store: Store | null;
  /** Tells the other processes (distributed mode); absent in the embedded mode. */
  readonly publish?: (change: ConfigChange) => Promise<void>;
  /** This process, in the changes' order key. */
  readonly origin: string;
  readonly log: Logger;
}

/**
 * The configuration API's changes: checked against the whole network, made durable in the
 * store (`config_changes`, replayed at every start), told to the other processes through
 * the bus, and applied here. The network file stays the way to start; what the API changed
 * since applies over it.
 */
export class ConfigService {
  readonly #options: ConfigServiceOptions;
  #counter = 0;

  constructor(options: ConfigServiceOptions) {
    this.#options = options;
  }

  get live(): LiveNetwork {
    return this.#options.live;
  }

  /**
   * At start: the stored changes, in order, over the network file. One the file no longer
   * allows (it removed what the change referred to) is skipped with a warning.
   */
  async load(): Promise<number> {
    const store = this.#options.store;
    if (store === null) return 0;
    const rows = await store.rows<StoredChange>(
      'SELECT seq, kind, id, doc, deleted, changed_at, changed_by FROM config_changes ORDER BY seq',
    );
    for (const row of rows) this.heard(fromRow(row));
    return rows.length;
  }

  /** An API change: refused with CONFIG_INVALID if the network would not hold. */
  async change(
    kind: EntityKind,
    id: string,
    doc: Readonly<Record<string, unknown>> | null,
    by: string,
  ): Promise<ConfigChange> {
    const at = Date.now();
    this.#counter += 1;
    const change: ConfigChange = {
      seq: `${String(at).padStart(15, '0')}-${this.#options.origin}-${String(this.#counter).padStart(9, '0')}`,
      kind,
      id,
      doc,
      at,
      by,
    };
    this.#options.live.check(change);
    const store = this.#options.store;
    if (store === null)
      throw new ChargestreamError(
        'NOT_FOUND',
        'no store in this process: ask a processor or api process',
      );
    await store.insert('config_changes', JSON.stringify(toRow(change)) + '\n', change.seq);
    await this.#options.publish?.(change);
    this.#options.live.apply(change);
    return change;
  }

  /** A change from the store or another process. */
  heard(change: ConfigChange): void {
    try {
      this.#options.live.apply(change);
    } catch (error) {
      this.#options.log.warn(
        { seq: change.seq, kind: change.kind, id: change.id, err: errorMessage(error) },
        'configuration change no longer applies; skipped',
      );
    }
  }
}

function toRow(change: ConfigChange): StoredChange {
  return {
    seq: change.seq,
    kind: change.kind,
    id: change.id,
    doc: change.doc === null ? '' : JSON.stringify(change.doc),
    deleted: change.doc === null,
    changed_at: chTime(change.at),
    changed_by: change.by,
  };
}

function fromRow(row: StoredChange): ConfigChange {
  return {
    seq: row.seq,
    kind: row.kind,
    id: row.id,
    doc: row.deleted ? null : (JSON.parse(row.doc) as Record<string, unknown>),
    at: Date.parse(row.changed_at.replace(' ', 'T') + 'Z'),
    by: row.changed_by,
  };
}
