import { ChargestreamError } from '../lib/errors.js';
import { indexNetwork, type NetworkIndex } from './network-index.js';
import { parseNetwork, type Network } from './network.js';

/** The network's entities the configuration API reads and changes. */
export const ENTITY_KINDS = [
  'chargers',
  'sites',
  'tariffs',
  'ratePlans',
  'customers',
  'tokens',
] as const;
export type EntityKind = (typeof ENTITY_KINDS)[number];

export function isEntityKind(text: string): text is EntityKind {
  return (ENTITY_KINDS as readonly string[]).includes(text);
}

/** One change of the configuration API: an entity written whole, or deleted (`doc` null). */
export interface ConfigChange {
  /** Orders changes across processes: `<ms, 15 digits>-<origin>-<counter>`. */
  readonly seq: string;
  readonly kind: EntityKind;
  readonly id: string;
  readonly doc: Readonly<Record<string, unknown>> | null;
  readonly at: number;
  /** Who changed it: `<role>@<organization>`. */
  readonly by: string;
}

type Entity = Readonly<Record<string, unknown>>;

/**
 * The network in force, as the network file started it and the configuration API changed
 * it since. Each entity is kept as it was written (file or API body); a change is checked by
 * validating the whole network it leads to — the same schema and references as the file —
 * and only then applied, so the engine never runs on a network the file could not express.
 * Listeners (the gateway's authorization, the processor's workers) get every new index.
 */
export class LiveNetwork {
  #base: Record<string, unknown>;
  readonly #entities = new Map<EntityKind, Map<string, Entity>>();
  #network: Network;
  #index: NetworkIndex;
  #version = 0;
  /** Changes applied, so one heard twice (its own, back from the bus) applies once. */
  readonly #applied = new Set<string>();
  readonly #listeners: Array<(index: NetworkIndex, version: number) => void> = [];

  constructor(network: Network) {
    // The parsed network, written out, is a valid network file again (tested).
    const raw = JSON.parse(JSON.stringify(network)) as Record<string, unknown>;
    for (const kind of ENTITY_KINDS) {
      const items = (raw[kind] ?? []) as Entity[];
      this.#entities.set(kind, new Map(items.map((e) => [keyOf(kind, String(e['id'])), e])));
      delete raw[kind];
    }
    this.#base = raw;
    this.#network = network;
    this.#index = indexNetwork(network);
  }

  get network(): Network {
    return this.#network;
  }

  get index(): NetworkIndex {
    return this.#index;
  }

  /** Bumped by every change applied. */
  get version(): number {
    return this.#version;
  }

  get(kind: EntityKind, id: string): Entity | undefined {
    return this.#entities.get(kind)!.get(keyOf(kind, id));
  }

  list(kind: EntityKind): Entity[] {
    return [...this.#entities.get(kind)!.values()];
  }

  /**
   * The network a change would lead to; throws CONFIG_INVALID naming the field (a bad body,
   * or a reference it breaks — a site still used by chargers cannot be deleted).
   */
  check(change: Pick<ConfigChange, 'kind' | 'id' | 'doc'>): Network {
    const entities = new Map(this.#entities);
    const changed = new Map(entities.get(change.kind));
    const key = keyOf(change.kind, change.id);
    if (change.doc === null) changed.delete(key);
    else changed.set(key, withId(change));
    entities.set(change.kind, changed);
    const raw: Record<string, unknown> = { ...this.#base };
    for (const [kind, items] of entities) raw[kind] = [...items.values()];
    const at = change.doc === null ? -1 : [...changed.keys()].indexOf(key);
    try {
      return parseNetwork(raw, 'network');
    } catch (error) {
      if (!(error instanceof ChargestreamError)) throw error;
      // "network: chargers[12].connectors[0].maxPowerW: …" → "chargers/CP1: connectors[0]…"
      const own = `network: ${change.kind}[${at}]`;
      const message = error.message.startsWith(own)
        ? `${change.kind}/${change.id}${error.message.slice(own.length).replace(/^\./, ': ')}`
        : `${change.kind}/${change.id}: ${change.doc === null ? 'cannot be deleted' : 'breaks the network'}: ${error.message.replace(/^network: /, '')}`;
      throw new ChargestreamError(
        change.doc === null ? 'CONFIG_IN_USE' : 'CONFIG_INVALID',
        message,
      );
    }
  }

  /** Applies a checked change (or one heard from another process, checked again here). */
  apply(change: ConfigChange): void {
    if (this.#applied.has(change.seq)) return;
    const network = this.check(change);
    const items = this.#entities.get(change.kind)!;
    const key = keyOf(change.kind, change.id);
    if (change.doc === null) items.delete(key);
    else items.set(key, withId(change));
    this.#applied.add(change.seq);
    this.#network = network;
    this.#index = indexNetwork(network);
    this.#version += 1;
    for (const listener of this.#listeners) listener(this.#index, this.#version);
  }

  onChange(listener: (index: NetworkIndex, version: number) => void): void {
    this.#listeners.push(listener);
  }
}

/** The entity as written, under the id it was written to. */
function withId(change: Pick<ConfigChange, 'id' | 'doc'>): Entity {
  return { ...change.doc, id: change.id };
}

/** Token ids are matched without case (RFID UIDs in hex), like the authorization does. */
function keyOf(kind: EntityKind, id: string): string {
  return kind === 'tokens' ? id.toUpperCase() : id;
}
