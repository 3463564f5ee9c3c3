/**
 * Wall-clock time in an IANA zone, for the time-of-day, date and weekday restrictions
 * (rating.md R2.2). Only `Intl` is used, and only when a session crosses a wall-clock boundary
 * (a few times a day), never per reading.
 *
 * A restriction holds or not according to the local wall clock of the instant, so daylight
 * saving needs no special case: on the autumn night the repeated hour shows the same wall
 * times twice and matches twice; on the spring night the skipped hour is never on the wall
 * clock and never matches. Durations are always UTC milliseconds.
 */

export const DAY_MS = 86_400_000;

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** Throws a RangeError for a zone `Intl` does not know. */
export function checkTimeZone(timeZone: string): void {
  formatter(timeZone);
}

/** Local wall clock minus UTC at instant `t` (epoch ms), in ms. Offsets change on whole seconds. */
export function utcOffsetMs(timeZone: string, t: number): number {
  const second = Math.floor(t / 1000) * 1000;
  let year = 1970;
  let month = 1;
  let day = 1;
  let hour = 0;
  let minute = 0;
  let sec = 0;
  for (const part of formatter(timeZone).formatToParts(second)) {
    switch (part.type) {
      case 'year':
        year = Number(part.value);
        break;
      case 'month':
        month = Number(part.value);
        break;
      case 'day':
        day = Number(part.value);
        break;
      case 'hour':
        hour = Number(part.value);
        break;
      case 'minute':
        minute = Number(part.value);
        break;
      case 'second':
        sec = Number(part.value);
        break;
      default:
        break;
    }
  }
  return Date.UTC(year, month - 1, day, hour, minute, sec) - second;
}

/** The wall clock of an instant, split the way restrictions read it. */
export interface WallClock {
  /** Local date as days since 1970-01-01. */
  readonly day: number;
  /** Milliseconds since local midnight. */
  readonly timeOfDay: number;
  /** 0 = Monday … 6 = Sunday. */
  readonly weekday: number;
}

export function wallClockOf(wallMs: number): WallClock {
  const day = Math.floor(wallMs / DAY_MS);
  // 1970-01-01 was a Thursday (3 with Monday = 0).
  return { day, timeOfDay: wallMs - day * DAY_MS, weekday: (((day + 3) % 7) + 7) % 7 };
}

export interface LocalSpan {
  /** The wall clock at the start of the span. */
  readonly wall: WallClock;
  /** First instant (epoch ms) at which the wall clock may cross a boundary or jump. */
  readonly to: number;
}

/**
 * The wall clock at `t` and how long no restriction that reads it can change: until the next
 * wall time in `boundaries` (sorted ms since midnight, starting with 0 for the date change) or
 * the next UTC offset change, whichever comes first. Zones do not change offset twice within a
 * day, so comparing the offset at both ends of a candidate span finds every transition.
 */
export function localSpan(timeZone: string, boundaries: readonly number[], t: number): LocalSpan {
  const offset = utcOffsetMs(timeZone, t);
  const wall = wallClockOf(t + offset);
  let next = DAY_MS;
  for (const b of boundaries) {
    if (b > wall.timeOfDay) {
      next = b;
      break;
    }
  }
  const candidate = t + (next - wall.timeOfDay);
  if (utcOffsetMs(timeZone, candidate) === offset) return { wall, to: candidate };
  // An offset change in (t, candidate]: binary search on whole seconds.
  let lo = Math.floor(t / 1000);
  let hi = Math.floor(candidate / 1000);
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (utcOffsetMs(timeZone, mid * 1000) === offset) lo = mid;
    else hi = mid;
  }
  return { wall, to: hi * 1000 };
}
