import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ROUTE_ROLES, Scope, mayUse } from '../../src/api/access.js';
import { ApiKeys } from '../../src/api/auth.js';
import { parseNetwork, type Role } from '../../src/config/network.js';

/** grp ─┬─ o ─┬─ o-sub          other (no parent)
 *       │     └─ emp (EMP of customer c)
 *       └─ o2 */
const network = parseNetwork({
  organizations: [
    { id: 'grp', type: 'cpo' },
    { id: 'o', type: 'cpo', parent: 'grp' },
    { id: 'o-sub', type: 'cpo', parent: 'o' },
    { id: 'emp', type: 'emp', parent: 'o' },
    { id: 'o2', type: 'cpo', parent: 'grp' },
    { id: 'other', type: 'cpo' },
  ],
  customers: [
    { id: 'c', organization: 'emp', paymentType: 'postpaid' },
    { id: 'c2', organization: 'o2', paymentType: 'postpaid' },
  ],
  apiKeys: [
    { key: 'plain-key-0123456789', role: 'admin', organization: 'o' },
    {
      keyHash: createHash('sha256').update('hashed-key-0123456789').digest('hex'),
      role: 'viewer',
      organization: 'o-sub',
    },
  ],
});
const scopeOf = (organization: string, role: Role = 'admin') =>
  new Scope(network, { role, organization });

describe('API keys', () => {
  it('a key or its SHA-256 digest, never both, never neither', () => {
    const keys = new ApiKeys(network);
    expect(keys.caller('Bearer plain-key-0123456789')).toEqual({
      role: 'admin',
      organization: 'o',
    });
    expect(keys.caller('Bearer hashed-key-0123456789')).toEqual({
      role: 'viewer',
      organization: 'o-sub',
    });
    expect(keys.caller('Bearer nope-0123456789')).toBeNull();
    expect(keys.caller('')).toBeNull();
    const bad = (apiKeys: unknown[]) => () =>
      parseNetwork({ organizations: [{ id: 'o', type: 'cpo' }], apiKeys });
    expect(bad([{ role: 'admin', organization: 'o' }])).toThrow(
      /apiKeys\[0\]: give key or keyHash/,
    );
    expect(
      bad([
        { key: 'plain-key-0123456789', keyHash: 'a'.repeat(64), role: 'admin', organization: 'o' },
      ]),
    ).toThrow(/exactly one/);
    expect(bad([{ keyHash: 'xyz', role: 'admin', organization: 'o' }])).toThrow(/keyHash/);
  });
});

describe('route × role table', () => {
  it('C1 cancellations and refunds only for admin and financial_support; viewers read sessions', () => {
    const roles: Role[] = ['admin', 'financial_support', 'operator', 'analyst', 'viewer'];
    expect(roles.filter((r) => mayUse('session.cancel', r))).toEqual([
      'admin',
      'financial_support',
    ]);
    expect(roles.filter((r) => mayUse('session.refund', r))).toEqual([
      'admin',
      'financial_support',
    ]);
    expect(roles.every((r) => mayUse('session.read', r))).toBe(true);
    for (const allowed of Object.values(ROUTE_ROLES)) expect(allowed).toContain('admin');
  });
});

describe('organization scopes', () => {
  it('a key acts for its organization and every organization below it', () => {
    expect([...scopeOf('o').own].sort()).toEqual(['emp', 'o', 'o-sub']);
    expect([...scopeOf('grp').own].sort()).toEqual(['emp', 'grp', 'o', 'o-sub', 'o2']);
    expect(scopeOf('o').ownCustomers()).toEqual(['c']);
    expect(scopeOf('o').sees({ operatorId: 'o-sub', customerId: '' })).toBe(true);
    expect(scopeOf('o').sees({ operatorId: 'other', customerId: 'c' })).toBe(true);
    expect(scopeOf('o').sees({ operatorId: 'grp', customerId: '' })).toBe(false);
    expect(scopeOf('o').sees({ operatorId: 'o2', customerId: 'c2' })).toBe(false);
    expect(scopeOf('other').sees({ operatorId: 'o', customerId: 'c' })).toBe(false);
  });

  it('C1 the CPO and the EMP must each be the organization, below it or above it', () => {
    const sub = scopeOf('o-sub');
    // Sessions of its parent and grandparent (no customer): related upwards.
    expect(sub.mayCorrect({ operatorId: 'o', customerId: '' })).toBe(true);
    expect(sub.mayCorrect({ operatorId: 'grp', customerId: '' })).toBe(true);
    // emp is o's child, not o-sub's parent or child.
    expect(sub.mayCorrect({ operatorId: 'o', customerId: 'c' })).toBe(false);
    expect(scopeOf('o').mayCorrect({ operatorId: 'o', customerId: 'c' })).toBe(true);
    expect(scopeOf('o').mayCorrect({ operatorId: 'o2', customerId: '' })).toBe(false);
    expect(scopeOf('o').mayCorrect({ operatorId: 'other', customerId: 'c' })).toBe(false);
    expect(scopeOf('grp').mayCorrect({ operatorId: 'o-sub', customerId: 'c' })).toBe(true);
  });

  it('a key of an organization unknown to the network acts for that name only', () => {
    const ghost = scopeOf('ghost');
    expect([...ghost.own]).toEqual(['ghost']);
    expect(ghost.sees({ operatorId: 'o', customerId: 'c' })).toBe(false);
  });
});
