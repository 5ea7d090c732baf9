/**
 * The backlog between the engine and the broker, as the overload stage and health judge it.
 *
 * - `events`: events waiting to be journaled (the event sink's queue) plus, when a broker is
 *   configured, events journaled and not yet acknowledged by it (the journal's pending). With
 *   no broker the journal is where events end up, so its pending never counts as a backlog.
 * - `waitedMs`: how long the oldest journaled pending event has waited, by the gateway's own
 *   clock (never by the event time, which a PLC clock far off would make look old or new). It
 *   is found from samples of the journal's last sequence taken as time goes by: the oldest
 *   pending sequence is `lastSequence - pending + 1`, and the first sample that had reached it
 *   gives a lower bound of its wait. Samples are kept for `horizonMs` (plus the one just before),
 *   at most one per `horizonMs / 100`, so memory stays bounded. A backlog older than every
 *   sample (one found at start) counts as having waited since the first sample.
 *
 * `RecentCount` turns a running total (events dropped so far) into "how many in the last
 * window", from samples taken at each look.
 */
import type { JournalStats } from "../journal/types.ts";

export interface Backlog {
  /** Events waiting: the sink's queue, plus the journal's pending when a broker is configured. */
  events: number;
  /** At least how long the oldest journaled pending event has waited; undefined when none. */
  waitedMs?: number;
}

interface Mark {
  at: number;
  sequence: number;
}

export class BacklogWatch {
  private readonly horizonMs: number;
  private readonly stepMs: number;
  private readonly marks: Mark[] = [];

  constructor(horizonMs: number) {
    this.horizonMs = horizonMs;
    this.stepMs = Math.max(1, horizonMs / 100);
  }

  /**
   * The backlog now, from the sink's queue and, when a broker is configured, the journal's
   * stats (undefined without a broker).
   */
  look(
    now: number,
    queued: number,
    journal?: Pick<JournalStats, "pending" | "lastSequence">,
  ): Backlog {
    if (journal === undefined) return { events: queued };
    const last = Number(journal.lastSequence);
    this.remember(now, last);
    const backlog: Backlog = { events: queued + journal.pending };
    if (journal.pending > 0) {
      const oldest = last - journal.pending + 1;
      // assigned at or before the first mark that had reached it; after the last one: just now
      const reached = this.marks.find((m) => m.sequence >= oldest);
      backlog.waitedMs = reached === undefined ? 0 : Math.max(0, now - reached.at);
    }
    return backlog;
  }

  private remember(now: number, sequence: number): void {
    const latest = this.marks.at(-1);
    if (latest === undefined || (sequence !== latest.sequence && now - latest.at >= this.stepMs))
      this.marks.push({ at: now, sequence });
    // keep the horizon, plus the one mark before it (it bounds what is older)
    let cut = 0;
    while (cut + 1 < this.marks.length && this.marks[cut + 1]!.at <= now - this.horizonMs) cut++;
    if (cut > 0) this.marks.splice(0, cut);
  }
}

/** How much a running total grew within the last `windowMs`. */
export class RecentCount {
  private readonly windowMs: number;
  private readonly marks: { at: number; total: number }[] = [];

  constructor(windowMs: number) {
    this.windowMs = windowMs;
  }

  /** Records the total now and returns its growth since `windowMs` ago (or the first look). */
  look(now: number, total: number): number {
    const latest = this.marks.at(-1);
    if (latest === undefined || latest.total !== total) this.marks.push({ at: now, total });
    let cut = 0;
    while (cut + 1 < this.marks.length && this.marks[cut + 1]!.at <= now - this.windowMs) cut++;
    if (cut > 0) this.marks.splice(0, cut);
    return total - this.marks[0]!.total;
  }
}
