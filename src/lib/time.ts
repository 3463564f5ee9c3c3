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
  let text: string;
  if (typeof time === 'number' && Number.isInteger(time) && time >= 0 && time < YEAR_10000) {
    text = inMinute(time);
  } else {
    const date = new Date(time);
    text = Number.isNaN(date.getTime())
      ? '1970-01-01 00:00:00.000'
      : date.toISOString().slice(0, 23).replace('T', ' ');
  }
  lastTimes[1] = lastTimes[0];
  lastTexts[1] = lastTexts[0];
  lastTimes[0] = time;
  lastTexts[0] = text;
  return text;
}

const lastTimes: [number | string, number | string] = [Number.NaN, Number.NaN];
const lastTexts: [string, string] = ['', ''];

/** The first instant whose year has five digits (toISOString writes it `+010000-…`). */
const YEAR_10000 = 253_402_300_800_000;

let minute = Number.NaN;
let minuteText = '';

/**
 * A time of the minute formatted last, as its text and the seconds and milliseconds: a
 * worker's rows run through a few minutes, so most times need no Date and no toISOString
 * (which, with the slice and replace, were about 3 % of a worker's time).
 */
function inMinute(time: number): string {
  const m = Math.floor(time / 60_000);
  if (m !== minute) {
    minute = m;
    minuteText = new Date(m * 60_000).toISOString().slice(0, 17).replace('T', ' ');
  }
  const rest = time - m * 60_000;
  const seconds = Math.floor(rest / 1000);
  const millis = rest - seconds * 1000;
  return `${minuteText}${seconds < 10 ? '0' : ''}${seconds}.${millis < 10 ? '00' : millis < 100 ? '0' : ''}${millis}`;
}

let lastInstantText = '';
let lastInstant = Number.NaN;

/**
 * `Date.parse` of a date-time text, the last one remembered: a frame's timestamp is parsed by
 * its schema check (the `date-time` format) and again where the frame becomes an event, and a
 * parse costs about 0.2 µs here.
 */
export function parseInstant(text: string): number {
  if (text !== lastInstantText) {
    lastInstant = Date.parse(text);
    lastInstantText = text;
  }
  return lastInstant;
}
