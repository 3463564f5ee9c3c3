/** Names shared by the network file's rules and the workers that raise the events (no I/O here). */

/** Notification events of N1, with the E5 malfunction signals. */
export type NotificationEvent =
  | 'session_started'
  | 'session_refused'
  | 'charging_ended'
  | 'session_ended'
  | ThresholdEvent
  | 'status_changed'
  | 'station_connected'
  | 'station_disconnected'
  | 'station_booted'
  | 'power_limit_suspect'
  | 'energy_not_progressing'
  | 'measurands_missing';

/** R7: events raised when a running session crosses its rule's threshold. */
export type ThresholdEvent =
  | 'energy_limit'
  | 'charge_time_limit'
  | 'park_time_limit'
  | 'park_time_threshold'
  | 'monetary_limit'
  | 'soc_limit'
  | 'fault_time_limit';

export const THRESHOLD_EVENTS: ReadonlySet<string> = new Set<ThresholdEvent>([
  'energy_limit',
  'charge_time_limit',
  'park_time_limit',
  'park_time_threshold',
  'monetary_limit',
  'soc_limit',
  'fault_time_limit',
]);
