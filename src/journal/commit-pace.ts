/**
 * When the journal's next group commit may run: at most REFILL (1.25) per commit interval on
 * average, and at once for appends that come no more often than one an interval, whatever
 * their phase.
 *
 * A credit grows by REFILL per interval, up to CREDIT_CAP, and each group commit spends one. An
 * append commits at once while the credit is at least one; otherwise the commit waits until the
 * credit reaches one, and never longer than an interval after the append's oldest event was
 * taken in. So commits keep to at most REFILL an interval however fast appends come, and an
 * event waits at most one interval.
 *
 * Why a credit and not "idle for a whole interval since the last commit" (the rule before):
 * appends that come exactly an interval apart, such as the two steps of a poll with
 * `spread_requests: 2` at a poll interval of twice the commit interval, found the journal a
 * fraction of a millisecond short of idle, and each waited a whole interval more (issue 12:
 * p50 60 ms instead of 9). The cap above one absorbs that jitter: a commit a little early
 * borrows from the half interval's credit that a commit a little late left over. The refill
 * is a little faster than one an interval so that a credit spent below one (two steps' first
 * polls at once, at the start) comes back: at exactly one an interval, appends an interval
 * apart would each have waited the same shortfall for good (p50 31 ms in one bench run).
 */

/** Most credit kept, in commits: a commit may come up to half an interval early. */
export const CREDIT_CAP = 1.5;
/** Credit gained per interval, in commits. */
export const REFILL = 1.25;

export class CommitPace {
  readonly #intervalMs: number;
  /** The credit at #at. */
  #saved = CREDIT_CAP;
  #at = Number.NEGATIVE_INFINITY;

  constructor(intervalMs: number) {
    this.#intervalMs = intervalMs;
  }

  /** The credit at `now` (performance.now() time). */
  #credit(now: number): number {
    return Math.min(CREDIT_CAP, this.#saved + (REFILL * (now - this.#at)) / this.#intervalMs);
  }

  /**
   * When to commit appends queued now, the oldest taken in at `heldSince` (default now): `now`
   * for at once, else the later time.
   */
  due(now: number, heldSince = now): number {
    const credit = this.#credit(now);
    if (credit >= 1) return now;
    const latest = Math.min(heldSince, now) + this.#intervalMs;
    return Math.max(now, Math.min(latest, now + ((1 - credit) * this.#intervalMs) / REFILL));
  }

  /** A group commit started at `at` (a cursor save alone spends nothing). */
  spend(at: number): void {
    this.#saved = Math.max(0, this.#credit(at) - 1);
    this.#at = at;
  }
}
