/**
 * Repeat throttle for log lines: the same line (same key) is let through at most once per
 * interval while its problem lasts, and the line that opens the next interval carries how many
 * repeats were held back. The first occurrence of a problem always passes.
 *
 * Contract, per key:
 * - The first occurrence passes (`0` suppressed before it) and opens a window of `intervalMs`.
 * - Occurrences inside the window are suppressed (`check` returns `false`) and counted.
 * - The first occurrence at or after the window's end passes with the count of the repeats
 *   suppressed since the last line that passed, and opens a new window.
 * - A key belongs to a source (a device, a part of the gateway). `recovered(source)` says the
 *   source's problems ended (it connected again): the next occurrence of any of its keys is
 *   the first of a new problem and passes at once, with the count held back before (issue 13.7:
 *   a broker outage 20 s after the previous one logged nothing, its warning held back by the
 *   previous outage's window).
 * - Memory is bounded: at most `maxKeys` keys (and as many sources) are kept; when full, keys
 *   whose window has ended are forgotten first, then the oldest. A forgotten key starts over
 *   (its count is lost, never a line).
 * The clock is passed in, so the behaviour is exact and testable.
 */

export interface RepeatThrottleOptions {
  intervalMs: number;
  /** Default 1000. */
  maxKeys?: number;
}

interface Window {
  until: number;
  suppressed: number;
  source: string;
  /** When the window opened, on the throttle's own event counter. */
  opened: number;
}

export class RepeatThrottle {
  private readonly intervalMs: number;
  private readonly maxKeys: number;
  private readonly windows = new Map<string, Window>();
  /** The event counter at each source's last recovery. */
  private readonly recoveries = new Map<string, number>();
  private events = 0;

  constructor(options: RepeatThrottleOptions) {
    if (!(options.intervalMs > 0)) throw new RangeError("intervalMs must be positive");
    this.intervalMs = options.intervalMs;
    this.maxKeys = Math.max(1, options.maxKeys ?? 1000);
  }

  /**
   * `false`: suppress this occurrence. A number: log it, with this many repeats held back.
   * `source` names what the key is a problem of (see recovered()).
   */
  check(key: string, now: number, source = ""): number | false {
    const window = this.windows.get(key);
    if (
      window !== undefined &&
      now < window.until &&
      !((this.recoveries.get(window.source) ?? -1) > window.opened)
    ) {
      window.suppressed += 1;
      return false;
    }
    const suppressed = window?.suppressed ?? 0;
    this.windows.delete(key); // re-inserted last: the map stays in window-start order
    this.makeRoom(now);
    this.windows.set(key, {
      until: now + this.intervalMs,
      suppressed: 0,
      source,
      opened: ++this.events,
    });
    return suppressed;
  }

  /** The source's problems are over: the next occurrence of each of its keys passes. */
  recovered(source: string): void {
    this.recoveries.delete(source);
    if (this.recoveries.size >= this.maxKeys) {
      const oldest = this.recoveries.keys().next();
      if (!oldest.done) this.recoveries.delete(oldest.value);
    }
    this.recoveries.set(source, ++this.events);
  }

  /** Keys currently held (for tests). */
  get size(): number {
    return this.windows.size;
  }

  private makeRoom(now: number): void {
    if (this.windows.size < this.maxKeys) return;
    for (const [key, window] of this.windows) {
      if (window.until <= now) this.windows.delete(key);
    }
    while (this.windows.size >= this.maxKeys) {
      const oldest = this.windows.keys().next();
      if (oldest.done) break;
      this.windows.delete(oldest.value);
    }
  }
}
