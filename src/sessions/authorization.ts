import type { NetworkIndex } from '../config/network-index.js';
import type { AuthorizationStatus } from '../ocpp/events.js';
import { toDecimal } from '../lib/decimal.js';

export interface AuthorizationDecision {
  readonly status: AuthorizationStatus;
  readonly customerId: string;
}

/**
 * Authorization from memory (A1–A4): the same decision for Authorize, StartTransaction and
 * remote starts. `activeTokens` holds the tokens in a running session on some connector.
 */
export function authorize(
  index: NetworkIndex,
  tokenId: string,
  now: number,
  activeTokens: ReadonlySet<string> = new Set(),
): AuthorizationDecision {
  const token = index.tokens.get(tokenId.toUpperCase());
  if (token === undefined) return { status: 'Invalid', customerId: '' };
  const customerId = token.customer;
  if (token.blocked === true) return { status: 'Blocked', customerId };
  if (token.expiresAt !== undefined && Date.parse(token.expiresAt) <= now)
    return { status: 'Expired', customerId };
  if (activeTokens.has(token.id.toUpperCase())) return { status: 'ConcurrentTx', customerId };
  const customer = index.customers.get(customerId);
  if (customer?.paymentType === 'prepaid') {
    const balance = toDecimal(customer.balance ?? '0');
    if (balance.lt(toDecimal(index.network.settings.minimumStartBalance)))
      return { status: 'Blocked', customerId };
  }
  return { status: 'Accepted', customerId };
}
