import type { ConfigService } from '../config/config-changes.js';
import type { EntityKind } from '../config/live-network.js';
import { passwordHashOf, type Network, type Role } from '../config/network.js';
import { ChargestreamError } from '../lib/errors.js';
import { Scope } from './access.js';
import type { Reply, Request } from './billing-api.js';

/**
 * Who may write each kind (reading is open to every role, within the key's organizations):
 * the charging infrastructure and its users are the operator's; prices are finance's.
 */
export const CONFIG_WRITERS: Readonly<Record<EntityKind, readonly Role[]>> = {
  chargers: ['admin', 'operator'],
  sites: ['admin', 'operator'],
  customers: ['admin', 'operator', 'financial_support'],
  tokens: ['admin', 'operator', 'financial_support'],
  tariffs: ['admin', 'financial_support'],
  ratePlans: ['admin', 'financial_support'],
};

type Entity = Readonly<Record<string, unknown>>;

/**
 * The configuration API: `GET /api/v1/{kind}` and `GET/PUT/DELETE /api/v1/{kind}/{id}` for
 * chargers, sites, tariffs, rate plans, customers and tokens. A PUT writes the entity whole
 * (the network file's format for it). Every change is checked against the whole network the
 * way the file is, then stored and applied in every process without a restart.
 *
 * Organization scope: a charger belongs to its site's operator, a site to its operator, a
 * customer to its organization, a token to its customer's; a key sees and changes those of
 * its organization and sub-organizations — before and after the change. Tariffs and rate
 * plans belong to the network: every key reads them, and only a key of a top organization
 * (one without a parent) changes them.
 */
export class ConfigApi {
  readonly #config: ConfigService;

  constructor(config: ConfigService) {
    this.#config = config;
  }

  list(kind: EntityKind, request: Request): Promise<Reply> {
    const network = this.#config.live.network;
    const scope = new Scope(network, request.caller);
    const items = this.#config.live
      .list(kind)
      .filter((e) => ownedBy(kind, e, network, scope))
      .map((e) => shown(kind, e));
    return Promise.resolve(json('200 OK', { [kind]: items }));
  }

  get(kind: EntityKind, request: Request): Promise<Reply> {
    const id = request.params[0]!;
    const found = this.#visible(kind, id, request);
    return Promise.resolve(json('200 OK', shown(kind, found)));
  }

  async put(kind: EntityKind, request: Request): Promise<Reply> {
    const id = request.params[0]!;
    this.#mayWrite(kind, request);
    const doc = parseBody(request.body);
    if (doc['id'] !== undefined && doc['id'] !== id)
      throw new ChargestreamError(
        'BAD_REQUEST',
        `id: is ${JSON.stringify(doc['id'])}, the path says ${id}`,
      );
    const before = this.#config.live.get(kind, id);
    const entity = kind === 'chargers' ? withCredentials(kind, id, doc, before) : { ...doc, id };
    const network = this.#config.live.network;
    const scope = new Scope(network, request.caller);
    if (before !== undefined && !ownedBy(kind, before, network, scope))
      throw notYours(kind, id, scope);
    // The entity after the change must be the key's too (a charger moved to a site of another
    // operator is that operator's to do).
    const after = this.#config.live.check({ kind, id, doc: entity });
    if (!ownedBy(kind, entity, after, new Scope(after, request.caller)))
      throw notYours(kind, id, scope);
    const change = await this.#config.change(kind, id, entity, by(request));
    return json(before === undefined ? '201 Created' : '200 OK', {
      ...shown(kind, entity),
      changed: { seq: change.seq, at: new Date(change.at).toISOString(), by: change.by },
    });
  }

  async delete(kind: EntityKind, request: Request): Promise<Reply> {
    const id = request.params[0]!;
    this.#mayWrite(kind, request);
    this.#visible(kind, id, request);
    const change = await this.#config.change(kind, id, null, by(request));
    return json('200 OK', { id, deleted: true, changed: { seq: change.seq, by: change.by } });
  }

  #visible(kind: EntityKind, id: string, request: Request): Entity {
    const found = this.#config.live.get(kind, id);
    const network = this.#config.live.network;
    const scope = new Scope(network, request.caller);
    if (found === undefined || !ownedBy(kind, found, network, scope))
      throw new ChargestreamError('NOT_FOUND', `${kind}/${id}: no such ${singular(kind)}`);
    return found;
  }

  #mayWrite(kind: EntityKind, request: Request): void {
    const { role, organization } = request.caller;
    if (!CONFIG_WRITERS[kind].includes(role))
      throw new ChargestreamError('FORBIDDEN', `role ${role} may not change ${kind}`);
    if (kind === 'tariffs' || kind === 'ratePlans') {
      const org = this.#config.live.index.organizations.get(organization);
      if (org?.parent != null)
        throw new ChargestreamError(
          'ORGANIZATION_NOT_RELATED',
          `${kind} belong to the network: only a key of a top organization changes them (${organization} has a parent)`,
        );
    }
  }
}

/**
 * A charger's password is write-only: answers say only whether it has one (a password or its
 * hash would let a reader take the charger's connection over).
 */
function shown(kind: EntityKind, e: Entity): Entity {
  if (kind !== 'chargers') return e;
  const { password, passwordHash, ...rest } = e;
  return {
    ...rest,
    credentials: password !== undefined || passwordHash !== undefined ? 'password' : 'none',
  };
}

/**
 * A charger as written by a PUT: a `password` is kept as its hash only (never stored or
 * sent on in clear), `password: null` removes it, and a body without one (e.g. a GET's
 * answer sent back) keeps the charger's current one.
 */
function withCredentials(
  kind: EntityKind,
  id: string,
  doc: Record<string, unknown>,
  before: Entity | undefined,
): Entity {
  const { password, credentials: _shown, ...rest } = doc;
  void _shown;
  if (password === null) {
    const { passwordHash: _gone, ...without } = rest;
    void _gone;
    return { ...without, id };
  }
  if (typeof password === 'string') {
    if (password.length < 16 || password.length > 40)
      throw new ChargestreamError(
        'CONFIG_INVALID',
        `${kind}/${id}: password: must be 16 to 40 characters`,
      );
    return { ...rest, id, passwordHash: passwordHashOf(password) };
  }
  if (password !== undefined)
    throw new ChargestreamError(
      'CONFIG_INVALID',
      `${kind}/${id}: password: must be a string or null`,
    );
  if (rest['passwordHash'] !== undefined || before === undefined) return { ...rest, id };
  const kept =
    typeof before['passwordHash'] === 'string'
      ? before['passwordHash']
      : typeof before['password'] === 'string'
        ? passwordHashOf(before['password'])
        : undefined;
  return kept === undefined ? { ...rest, id } : { ...rest, id, passwordHash: kept };
}

/** Whether an entity is the scope's (tariffs and rate plans: everyone's). */
function ownedBy(kind: EntityKind, e: Entity, network: Network, scope: Scope): boolean {
  if (scope.everything) return true;
  const org = ownerOf(kind, e, network);
  return org === null || scope.own.has(org);
}

function ownerOf(kind: EntityKind, e: Entity, network: Network): string | null {
  const siteOperator = (siteId: unknown) =>
    network.sites.find((s) => s.id === siteId)?.operator ?? '';
  const customerOrg = (customerId: unknown) =>
    network.customers.find((c) => c.id === customerId)?.organization ?? '';
  switch (kind) {
    case 'chargers':
      return siteOperator(e['site']);
    case 'sites':
      return text(e['operator']);
    case 'customers':
      return text(e['organization']);
    case 'tokens':
      return customerOrg(e['customer']);
    case 'tariffs':
    case 'ratePlans':
      return null;
  }
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

function parseBody(body: Buffer): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    throw new ChargestreamError('BAD_REQUEST', 'the body is not JSON');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new ChargestreamError('BAD_REQUEST', 'the body must be a JSON object');
  return doc as Record<string, unknown>;
}

function notYours(kind: EntityKind, id: string, scope: Scope): ChargestreamError {
  return new ChargestreamError(
    'ORGANIZATION_NOT_RELATED',
    `${kind}/${id}: belongs to no organization of the key's organization ${scope.organization}`,
  );
}

function by(request: Request): string {
  return `${request.caller.role}@${request.caller.organization}`;
}

function singular(kind: EntityKind): string {
  return kind === 'ratePlans' ? 'rate plan' : kind.slice(0, -1);
}

function json(status: string, body: object): Reply {
  return { status, type: 'application/json', body: JSON.stringify(body) };
}
