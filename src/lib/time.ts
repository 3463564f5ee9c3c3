/**
 * ClickHouse DateTime64(3, 'UTC') text for epoch milliseconds (or a date-time text). Total: a time that cannot be
 * represented (never expected past the schema check) becomes the epoch instead of throwing in
 * a worker.
 */
export function chTime(time: number | string): string {
  // The rows of one frame repeat two instants (the readings' and the arrival), so the last
  // two formatted are kept: most calls are a comparison instead of a Date and a string.
  if (time === lastTimes[0]) return lastTexts[0];
  if (time === lastTimes[1]) return lastTexts[1];
  const date = new Date(time);
  const text = Number.isNaN(date.getTime())
    ? '1970-01-01 00:00:00.000'
    : date.toISOString().slice(0, 23).replace('T', ' ');
  lastTimes[1] = lastTimes[0];
  lastTexts[1] = lastTexts[0];
  lastTimes[0] = time;
  lastTexts[0] = text;
  return text;
}

const lastTimes: [number | string, number | string] = [Number.NaN, Number.NaN];
const lastTexts: [string, string] = ['', ''];
