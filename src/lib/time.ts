/** ClickHouse DateTime64(3, 'UTC') text for epoch milliseconds. */
export function chTime(ms: number): string {
  return new Date(ms).toISOString().slice(0, 23).replace('T', ' ');
}

/** Epoch milliseconds of an RFC 3339 timestamp already checked by the schema, or NaN. */
export function parseTimestamp(text: string): number {
  return Date.parse(text);
}
