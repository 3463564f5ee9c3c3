/**
 * Tariff validity (OCPI 2.2.1 `start_date_time` / `end_date_time`; rating.md "Model"): the
 * instants a tariff may start a session in, start inclusive, end exclusive. A session is
 * priced by the tariff valid at its start for its whole length (domain R3), so validity is
 * only ever asked about a session's start.
 */
export interface TariffValidity {
  readonly startDateTime?: string;
  readonly endDateTime?: string;
}

/** [from, until) in epoch ms; an absent bound is unbounded (±Infinity). */
export interface ValidityRange {
  readonly from: number;
  readonly until: number;
}

/** RFC 3339 with an offset, at most millisecond precision (session times are whole ms). */
const INSTANT = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,3})?([Zz]|[+-]\d{2}:\d{2})$/;

const ranges = new WeakMap<TariffValidity, ValidityRange>();

/**
 * The range of a tariff, or the problem with its fields (`endDateTime: must be after
 * startDateTime`) — the field first, so a caller can prefix where the tariff is.
 */
export function validityRange(tariff: TariffValidity): ValidityRange | string {
  const from = instant(tariff.startDateTime, -Infinity);
  if (typeof from === 'string') return `startDateTime: ${from}`;
  const until = instant(tariff.endDateTime, Infinity);
  if (typeof until === 'string') return `endDateTime: ${until}`;
  if (until <= from) return 'endDateTime: must be after startDateTime';
  return { from, until };
}

/**
 * Whether the tariff may price a session starting at `ts` (epoch ms). A tariff whose validity
 * does not parse is never valid; the network loader refuses such tariffs before this runs.
 */
export function validAt(tariff: TariffValidity, ts: number): boolean {
  if (tariff.startDateTime === undefined && tariff.endDateTime === undefined) return true;
  let range = ranges.get(tariff);
  if (range === undefined) {
    const parsed = validityRange(tariff);
    range = typeof parsed === 'string' ? { from: Infinity, until: -Infinity } : parsed;
    ranges.set(tariff, range);
  }
  return ts >= range.from && ts < range.until;
}

/** The first instant two ranges share, or null when they are disjoint. */
export function overlapStart(a: ValidityRange, b: ValidityRange): number | null {
  const from = Math.max(a.from, b.from);
  return from < Math.min(a.until, b.until) ? from : null;
}

function instant(text: string | undefined, absent: number): number | string {
  if (text === undefined) return absent;
  const ms = INSTANT.test(text) ? Date.parse(text) : NaN;
  return Number.isFinite(ms)
    ? ms
    : 'must be an RFC 3339 date-time with an offset, to the millisecond at most';
}
