import { pino, type Logger } from 'pino';

/** Structured logs to stdout. Nothing on the hot path logs per frame. */
export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'chargestream' } });
}
