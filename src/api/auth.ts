import { createHash } from 'node:crypto';
import type { ApiKey, Network, Role } from '../config/network.js';

export interface Caller {
  readonly role: Role;
  readonly organization: string;
}

/**
 * API keys, held only as SHA-256 digests: a key is looked up by the digest of what the caller
 * sent, so the plain keys of the network file are not kept in memory past start.
 */
export class ApiKeys {
  readonly #byDigest = new Map<string, Caller>();
  /** The network the keys came from: organizations and customers for scopes (access.ts). */
  readonly network: Network;

  constructor(network: Network) {
    this.network = network;
    for (const k of network.apiKeys) this.add(k);
  }

  add(key: ApiKey): void {
    const hex = key.keyHash?.toLowerCase() ?? digest(key.key ?? '');
    this.#byDigest.set(hex, { role: key.role, organization: key.organization });
  }

  /** The caller of an `Authorization: Bearer <key>` header, or null. */
  caller(authorization: string): Caller | null {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (match === null) return null;
    return this.#byDigest.get(digest(match[1]!)) ?? null;
  }
}

function digest(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}
