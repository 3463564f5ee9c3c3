import Big from 'big.js';
import type { NotificationRule } from '../config/network.js';
import type { ThresholdEvent } from '../config/notification-events.js';

/**
 * Pure rules of what a session tells its operator beyond its lifecycle: R7 thresholds and the
 * E5 malfunction signals. The batch run asks; it writes the notifications.
 */

/** What a running session has reached, for its thresholds. */
export interface SessionMeasures {
  readonly energyWh: number;
  readonly chargingS: number;
  readonly parkingS: number;
  readonly faultS: number;
  readonly totalInclVat: string;
  readonly soc: number | null;
}

/**
 * R7: whether a threshold rule's limit is reached. Units: Wh (energy_limit), seconds
 * (charge_time_limit; park_time_limit and park_time_threshold — the end of free parking, when
 * parking fees start; fault_time_limit), the session's currency incl. VAT (monetary_limit),
 * % (soc_limit).
 */
export function thresholdReached(
  event: ThresholdEvent,
  threshold: string,
  m: SessionMeasures,
): boolean {
  const limit = Number(threshold);
  switch (event) {
    case 'energy_limit':
      return m.energyWh >= limit;
    case 'charge_time_limit':
      return m.chargingS >= limit;
    case 'park_time_limit':
    case 'park_time_threshold':
      return m.parkingS >= limit;
    case 'fault_time_limit':
      return m.faultS >= limit;
    case 'monetary_limit':
      return new Big(m.totalInclVat).gte(threshold);
    case 'soc_limit':
      return m.soc !== null && m.soc >= limit;
  }
}

/**
 * The rules selecting an event, but thresholds (raised apart): a rule's `statuses` filter
 * applies to its status_changed notifications only.
 */
export function selectedBy(
  rules: readonly NotificationRule[] | undefined,
  event: string,
  payload: { readonly status?: string },
): NotificationRule[] {
  if (rules === undefined) return [];
  return rules.filter(
    (rule) =>
      rule.threshold === undefined &&
      (event !== 'status_changed' ||
        rule.statuses === undefined ||
        (payload.status !== undefined && rule.statuses.includes(payload.status))),
  );
}

/** E5: how many rejections, stalled readings make a signal. */
export const POWER_REJECTIONS_SUSPECT = 3;
export const STALLED_READINGS = 4;

/** E5 counters a session keeps between readings. */
export interface SignalState {
  powerRejections?: number;
  stalledReadings?: number;
  /** Signals already raised for the session (each once). */
  signals?: string[];
}

export type Signal = 'power_limit_suspect' | 'energy_not_progressing' | 'measurands_missing';

/**
 * E5 from one judged energy reading: `exceeds_power` rejections piling up on a connector
 * (its configured max power is likely too low); energy not moving over several readings
 * while the connector reports charging; energy rising with neither power nor current
 * reported. Returns the signals raised now (each at most once per session).
 */
export function signalsOf(
  s: SignalState,
  reading: {
    readonly valid: boolean;
    readonly reason?: string;
    readonly energyRose: boolean;
    readonly charging: boolean;
    readonly hasPowerOrCurrent: boolean;
  },
): Signal[] {
  const raised: Signal[] = [];
  const raise = (signal: Signal) => {
    s.signals ??= [];
    if (s.signals.includes(signal)) return;
    s.signals.push(signal);
    raised.push(signal);
  };
  if (!reading.valid) {
    if (reading.reason === 'exceeds_power') {
      s.powerRejections = (s.powerRejections ?? 0) + 1;
      if (s.powerRejections >= POWER_REJECTIONS_SUSPECT) raise('power_limit_suspect');
    }
    return raised;
  }
  s.stalledReadings = reading.energyRose || !reading.charging ? 0 : (s.stalledReadings ?? 0) + 1;
  if (s.stalledReadings >= STALLED_READINGS) raise('energy_not_progressing');
  if (reading.energyRose && !reading.hasPowerOrCurrent) raise('measurands_missing');
  return raised;
}
