import type { NetworkIndex } from '../config/network-index.js';
import type { AuthorizationStatus } from '../ocpp/events.js';
import { toDecimal } from '../lib/decimal.js';

export interface AuthorizationDecision {
  readonly status: AuthorizationStatus;
  readonly customerId: string;
  /** Why a start is refused, for the rejected session (S4): empty when accepted. */
  readonly reason: string;
}

/**
 * Authorization from memory (A1–A4): the same decision for Authorize, StartTransaction and
 * remote starts. `inUse` says whether the (upper-cased) token is in a running session on some
 * other connector. Funding (A3): prepaid needs the minimum start balance, pay-now a payment
 * method on file, postpaid an active contract; absent flags count as on file / active. A
 * funding refusal is OCPP `Blocked`, with its own reason.
 */
export function authorize(
  index: NetworkIndex,
  tokenId: string,
  now: number,
  inUse: (tokenId: string) => boolean = () => false,
): AuthorizationDecision {
  const token = index.tokens.get(tokenId.toUpperCase());
  if (token === undefined) return { status: 'Invalid', customerId: '', reason: 'token_invalid' };
  const customerId = token.customer;
  const refuse = (status: AuthorizationStatus, reason: string) => ({ status, customerId, reason });
  if (token.blocked === true) return refuse('Blocked', 'token_blocked');
  if (token.expiresAt !== undefined && Date.parse(token.expiresAt) <= now)
    return refuse('Expired', 'token_expired');
  if (inUse(token.id.toUpperCase())) return refuse('ConcurrentTx', 'concurrent_tx');
  const customer = index.customers.get(customerId);
  if (customer?.paymentType === 'prepaid') {
    const balance = toDecimal(customer.balance ?? '0');
    if (balance.lt(toDecimal(index.network.settings.minimumStartBalance)))
      return refuse('Blocked', 'insufficient_balance');
  }
  if (customer?.paymentType === 'pay_now' && customer.paymentMethod === false)
    return refuse('Blocked', 'no_payment_method');
  if (customer?.paymentType === 'postpaid' && customer.contractActive === false)
    return refuse('Blocked', 'no_contract');
  return { status: 'Accepted', customerId, reason: '' };
}
