/**
 * ClickHouse DateTime64(3, 'UTC') text for epoch milliseconds (or a date-time text). Total: a time that cannot be
 * represented (never expected past the schema check) becomes the epoch instead of throwing in
 * a worker.
 */
export function chTime(time: number | string): string {
  const date = new Date(time);
  return Number.isNaN(date.getTime())
    ? '1970-01-01 00:00:00.000'
    : date.toISOString().slice(0, 23).replace('T', ' ');
}
