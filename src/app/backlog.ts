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
 *   gives a lower bound of its wait. At most one sample is taken per `resolutionMs`; samples
 *   before the first one that reached the oldest pending sequence are dropped (that sequence
 *   only moves forward), and past 256 samples every other one goes and samples are taken half
 *   as often, so memory stays bounded, the error stays within about the backlog's span / 128,
 *   and a wait is never overstated. A backlog found at start counts from the first sample.
 *
 * `RecentCount` turns a running total (events dropped so far) into "how many in the last
 * window", from samples taken at each look.
 */
import type { JournalStats } from "../journal/index.ts";

export interface Backlog {
  /** Events waiting: the sink's queue, plus the journal's pending when a broker is configured. */
  events: number;
  /** At least how long the oldest journaled pending event has waited; undefined when none. */
  waitedMs?: number;
}

const MAX_MARKS = 256;

interface Mark {
  at: number;
  sequence: number;
}

export class BacklogWatch {
  private readonly resolutionMs: number;
  private stepMs: number;
  private readonly marks: Mark[] = [];

  /** `resolutionMs`: at most one mark per this long while the backlog spans few of them. */
  constructor(resolutionMs: number) {
    this.resolutionMs = Math.max(1, resolutionMs);
    this.stepMs = this.resolutionMs;
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
    const latest = this.marks.at(-1);
    if (latest === undefined || (last !== latest.sequence && now - latest.at >= this.stepMs))
      this.marks.push({ at: now, sequence: last });
    const backlog: Backlog = { events: queued + journal.pending };
    if (journal.pending === 0) {
      // nothing waits: the last mark is all a new backlog needs
      this.marks.splice(0, this.marks.length - 1);
      this.stepMs = this.resolutionMs;
      return backlog;
    }
    // the oldest pending only moves forward: marks before the first that reached it are done
    const oldest = last - journal.pending + 1;
    const reached = this.marks.findIndex((m) => m.sequence >= oldest);
    if (reached > 0) this.marks.splice(0, reached);
    if (this.marks.length > MAX_MARKS) this.thin();
    // assigned at or before the first mark that had reached it; after the last one: just now
    backlog.waitedMs = reached === -1 ? 0 : Math.max(0, now - this.marks[0]!.at);
    return backlog;
  }

  /**
   * Every other mark goes (the first and the last stay) and marks are taken half as often from
   * now on: the spacing stays even, about the backlog's span / 128, and waits stay lower bounds.
   */
  private thin(): void {
    const kept = this.marks.filter((_, i) => i % 2 === 0 || i === this.marks.length - 1);
    this.marks.splice(0, this.marks.length, ...kept);
    this.stepMs *= 2;
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
