import type { Network, Role } from '../config/network.js';
import { ChargestreamError } from '../lib/errors.js';
import type { Caller } from './auth.js';

/**
 * Which roles may use each `/api/v1` route: the one table the server checks (docs/api.md
 * shows it). Organization scope is checked per resource, by `Scope` below.
 */
export const ROUTE_ROLES = {
  sql: ['admin', 'analyst', 'financial_support', 'operator'],
  'charger.command': ['admin', 'operator'],
  'session.retry': ['admin', 'operator', 'financial_support'],
  'session.list': ['admin', 'financial_support', 'operator', 'analyst', 'viewer'],
  'session.read': ['admin', 'financial_support', 'operator', 'analyst', 'viewer'],
  'cdr.list': ['admin', 'financial_support', 'operator', 'analyst', 'viewer'],
  'session.cancel': ['admin', 'financial_support'],
  'session.refund': ['admin', 'financial_support'],
  'statement.driver': ['admin', 'financial_support', 'operator', 'analyst'],
  'statement.account': ['admin', 'financial_support', 'operator', 'analyst'],
  'session.invoice': ['admin', 'financial_support', 'operator', 'analyst'],
  // The configuration API; which kinds each role may write: CONFIG_WRITERS in config-api.ts.
  'config.read': ['admin', 'financial_support', 'operator', 'analyst', 'viewer'],
  'config.write': ['admin', 'financial_support', 'operator'],
} as const satisfies Record<string, readonly Role[]>;

export type RouteId = keyof typeof ROUTE_ROLES;

export function mayUse(route: RouteId, role: Role): boolean {
  return (ROUTE_ROLES[route] as readonly Role[]).includes(role);
}

/** Who a session (or CDR) belongs to: its charger's operator (CPO) and its customer (EMP). */
export interface Owners {
  readonly operatorId: string;
  readonly customerId: string;
}

/**
 * The organizations an API key acts for. A key of organization X sees and changes what
 * belongs to X and to its sub-organizations (descendants, at any depth); a cancellation (C1)
 * also accepts X's parent organizations (ancestors). Built per request from the network in
 * force, so a changed network applies at once.
 */
export class Scope {
  readonly #network: Network;
  readonly #organization: string;
  /** X and its descendants. */
  readonly own: ReadonlySet<string>;
  /** X, its descendants and its ancestors. */
  readonly related: ReadonlySet<string>;
  readonly #customerOrg: ReadonlyMap<string, string>;

  constructor(network: Network, caller: Caller) {
    this.#network = network;
    this.#organization = caller.organization;
    const children = new Map<string, string[]>();
    const parent = new Map<string, string>();
    for (const o of network.organizations) {
      if (o.parent == null) continue;
      parent.set(o.id, o.parent);
      const list = children.get(o.parent);
      if (list === undefined) children.set(o.parent, [o.id]);
      else list.push(o.id);
    }
    const own = new Set<string>();
    const stack = [caller.organization];
    while (stack.length > 0) {
      const id = stack.pop()!;
      if (own.has(id)) continue;
      own.add(id);
      stack.push(...(children.get(id) ?? []));
    }
    const related = new Set(own);
    for (let up = parent.get(caller.organization); up !== undefined; up = parent.get(up)) {
      if (related.has(up)) break; // a cycle in a broken file: stop rather than loop
      related.add(up);
    }
    this.own = own;
    this.related = related;
    this.#customerOrg = new Map(network.customers.map((c) => [c.id, c.organization]));
  }

  get organization(): string {
    return this.#organization;
  }

  /** The organization (EMP) of a customer, or undefined for none or an unknown one. */
  customerOrganization(customerId: string): string | undefined {
    return this.#customerOrg.get(customerId);
  }

  /** The key's organizations cover every organization of the network: no filter needed. */
  get everything(): boolean {
    return this.#network.organizations.every((o) => this.own.has(o.id));
  }

  /** Read access: the CPO or the EMP of the session is one of the key's own organizations. */
  sees(owners: Owners): boolean {
    if (this.everything) return true;
    const emp = this.customerOrganization(owners.customerId);
    return this.own.has(owners.operatorId) || (emp !== undefined && this.own.has(emp));
  }

  /**
   * C1: the CPO and the EMP (when the session has a customer) are each the key's
   * organization, a sub-organization or a parent organization of it.
   */
  mayCorrect(owners: Owners): boolean {
    const emp = this.customerOrganization(owners.customerId);
    return (
      (this.related.has(owners.operatorId) || this.everything) &&
      (emp === undefined || this.related.has(emp) || this.everything)
    );
  }

  /** Customers of the key's own organizations (for list filters). */
  ownCustomers(): string[] {
    return this.#network.customers.filter((c) => this.own.has(c.organization)).map((c) => c.id);
  }

  /** Throws ORGANIZATION_NOT_RELATED unless the key sees the resource. */
  requireSees(owners: Owners, what: string): void {
    if (!this.sees(owners))
      throw new ChargestreamError(
        'ORGANIZATION_NOT_RELATED',
        `${what} belongs to no organization of the key's organization ${this.#organization}`,
      );
  }

  /** Throws ORGANIZATION_NOT_RELATED unless `organizationId` is the key's or below it. */
  requireOwnOrganization(organizationId: string): void {
    if (!this.own.has(organizationId))
      throw new ChargestreamError(
        'ORGANIZATION_NOT_RELATED',
        `organization ${organizationId} is not ${this.#organization} or one of its sub-organizations`,
      );
  }
}
