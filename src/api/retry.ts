import type { Bus } from '../bus/bus.js';
import { ChargestreamError } from '../lib/errors.js';
import type { Owners } from './access.js';
import { retryOf } from '../processor/processor.js';
import type { SessionState } from '../sessions/process-batch.js';
import { sqlString, type Store } from '../store/store.js';

/**
 * S8, the manual retry: a session whose rating (or billing) failed is sent through the bus to
 * its connector's partition, to be rated again by the processor holding it. 404 for an
 * unknown session, 409 for one that did not fail; 202 once the retry is on the bus.
 */
export async function requestRetry(
  store: Store,
  bus: Bus,
  sessionId: string,
  now: number,
  sees: (owners: Owners) => boolean = () => true,
): Promise<{ status: string; body: object }> {
  const [row] = await store.rows<{
    n: string;
    status: string;
    state: string;
    operator_id: string;
    customer_id: string;
  }>(
    `SELECT toString(count()) AS n, argMax(status, version) AS status, argMax(state, version) AS state,
            argMax(operator_id, version) AS operator_id, argMax(customer_id, version) AS customer_id
     FROM sessions_log WHERE session_id = ${sqlString(sessionId)}`,
  );
  // Another organization's session is answered as unknown: its existence does not leak.
  if (
    row === undefined ||
    row.n === '0' ||
    !sees({ operatorId: row.operator_id, customerId: row.customer_id })
  )
    throw new ChargestreamError('NOT_FOUND', `no session ${sessionId}`);
  if (row.status !== 'rating_failed' && row.status !== 'billing_failed')
    throw new ChargestreamError(
      'SESSION_NOT_FAILED',
      `session ${sessionId} is ${row.status}: only rating_failed or billing_failed sessions are retried`,
    );
  await bus.publish(retryOf(JSON.parse(row.state) as SessionState, row.state, now));
  return { status: '202 Accepted', body: { sessionId, status: 'retry_queued' } };
}
