/**
 * Duration scopes of a session (rule S5) from its connector's status timeline. Every moment
 * between start and end belongs to exactly one scope, so the four add up to the session's
 * duration. Status changes are kept sorted by their own timestamps, so a status reported
 * late or out of order lands where it happened.
 */
export type Scope = 'charging' | 'parking' | 'fault' | 'reservation';

/** A status change inside a session: [epoch ms, status]. */
export type StatusChange = readonly [number, string];

/** Most status changes kept per session (a flapping connector must not grow the state). */
const MAX_CHANGES = 500;

export interface Durations {
  readonly chargingS: number;
  readonly parkingS: number;
  readonly faultS: number;
  readonly reservationS: number;
}

/**
 * The scope of a status. 1.6 statuses, and 2.0.1 connector statuses and chargingStates:
 * Reserved → reservation; Faulted → fault; SuspendedEV, Finishing, Idle → parking (the
 * vehicle takes no power); Occupied and EVConnected → parking once the session has charged,
 * charging before (plugged in, waiting for power); Charging, SuspendedEVSE (the charger
 * withholds power, e.g. load management) and everything else → charging.
 */
export function scopeOf(status: string, hasCharged: boolean): Scope {
  switch (status) {
    case 'Reserved':
      return 'reservation';
    case 'Faulted':
      return 'fault';
    case 'SuspendedEV':
    case 'Finishing':
    case 'Idle':
      return 'parking';
    case 'Occupied':
    case 'EVConnected':
      return hasCharged ? 'parking' : 'charging';
    default:
      return 'charging';
  }
}

/** Inserts a status change in time order; repeats of the status in force are not kept. */
export function addStatus(changes: StatusChange[], ts: number, status: string): void {
  let at = changes.length;
  while (at > 0 && changes[at - 1]![0] > ts) at -= 1;
  if (at > 0 && changes[at - 1]![1] === status) return;
  changes.splice(at, 0, [ts, status]);
  if (changes.length > MAX_CHANGES) changes.splice(1, changes.length - MAX_CHANGES);
}

/**
 * The scopes of [start, end] given the status in force at the start and the changes after
 * it. Whole seconds: the boundaries are rounded, not the parts, so the parts add up to the
 * rounded duration exactly.
 */
export function durations(
  start: number,
  end: number,
  initial: string,
  changes: readonly StatusChange[],
): Durations {
  const totals = { charging: 0, parking: 0, fault: 0, reservation: 0 };
  let status = initial;
  let from = start;
  let hasCharged = initial === 'Charging';
  const second = (ms: number) => Math.round((ms - start) / 1000);
  for (const [ts, next] of changes) {
    if (ts <= start) {
      status = next;
      hasCharged ||= next === 'Charging';
      continue;
    }
    if (ts >= end) break;
    totals[scopeOf(status, hasCharged)] += second(ts) - second(from);
    status = next;
    hasCharged ||= next === 'Charging';
    from = ts;
  }
  if (end > from) totals[scopeOf(status, hasCharged)] += second(end) - second(from);
  return {
    chargingS: totals.charging,
    parkingS: totals.parking,
    faultS: totals.fault,
    reservationS: totals.reservation,
  };
}
