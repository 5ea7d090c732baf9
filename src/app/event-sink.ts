/**
 * The one way events enter the journal. Pushes are queued in order and appended by a single
 * loop: whatever arrived while the previous append was committing goes into the next one, so
 * order is kept and commits are grouped.
 *
 * The queue has two parts. The batch in flight (up to `maxBatch` events taken from the head)
 * belongs to the append: it is never dropped and nothing overtakes it. Behind it wait the
 * events pushed since. When the journal refuses a batch:
 * - a disk that fails, is full or is locked (JOURNAL_IO, JOURNAL_FULL) is waited out: the same
 *   batch is retried with backoff, as a unit, so nothing in it is lost;
 * - any other refusal (a batch too large for the journal, an event that cannot be rendered)
 *   is about the batch itself: it is halved and retried at once, down to a single event (what
 *   is not appended yet of the batch stays in flight), and a single event the journal still
 *   refuses is dropped, counted and logged, so that one bad event can never stop the events
 *   behind it.
 * `maxQueued` bounds the events held (in flight plus waiting): past it, the oldest WAITING
 * events are dropped, counted and logged; the batch in flight never is (when it alone holds
 * `maxQueued` or more, every waiting event goes).
 *
 * Gaps: every drop leaves a gap at one place in the stream, right before the next event kept
 * (a refused event: before the event after it; waiting events: before the first waiting event
 * left, or the next one pushed). Gaps with no kept event between them are one gap. Once the
 * event right after a gap is journaled, the gap is announced, like the journal's own size
 * policy does, by its own plc2mqtt.journal.overflow event: `dropped` the events in that gap,
 * `oldest_kept_sequence` the sequence the journal gave to that event. A notice the journal
 * refuses for a disk reason keeps its content and is retried (with backoff) before any further
 * batch; one it refuses otherwise is logged and given up.
 */
import { formatSequence } from "../events/cloudevent.ts";
import { EVENT_TYPES, type GatewayEvent } from "../events/types.ts";
import type { Journal, JournalRecord } from "../journal/index.ts";
import { sleep, withTimeout } from "../lib/abort.ts";
import { Backoff } from "../lib/backoff.ts";
import { errorMessage, isGatewayError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";

export interface EventSinkOptions {
  journal: Pick<Journal, "append">;
  log: Logger;
  /** Dropped events are announced by a plc2mqtt.journal.overflow event of this gateway. */
  gatewayId: string;
  now?: () => number;
  /** Events held, in flight plus waiting, before the oldest waiting ones are dropped. */
  maxQueued?: number;
  /** Most events in one append (default 10,000); the gateway's: its commit_max_events. */
  maxBatch?: number;
}

/**
 * Dropped events at stream positions [from, to): the event at `to` is the first one kept
 * after them (pending, or not pushed yet). Positions count every event ever pushed.
 */
interface Gap {
  from: number;
  to: number;
}

export class EventSink {
  private readonly options: EventSinkOptions;
  /** The batch the append owns; its first event is at stream position `inFlightAt`. */
  private inFlight: GatewayEvent[] = [];
  private inFlightAt = 0;
  /** Events behind it; the first at stream position `waitingAt`. */
  private waiting: GatewayEvent[] = [];
  private waitingAt = 0;
  /** When the first waiting event, and the first of the batch in flight, was pushed. */
  private waitingSince = 0;
  private inFlightSince = 0;
  /** Gaps whose next kept event is not journaled yet, in stream order, never adjacent. */
  private gaps: Gap[] = [];
  /** Overflow events for gaps whose next kept event is journaled, not yet appended. */
  private notices: GatewayEvent[] = [];
  private running: Promise<void> | undefined;
  private readonly stopper = new AbortController();
  private readonly backoff = new Backoff({ baseMs: 100, maxMs: 5000 });
  private droppedCount = 0;
  private appendedCount = 0;

  constructor(options: EventSinkOptions) {
    this.options = options;
  }

  /** Events dropped: waiting past maxQueued, or refused one by one by the journal. */
  get dropped(): number {
    return this.droppedCount;
  }

  get appended(): number {
    return this.appendedCount;
  }

  /** Events held: in flight plus waiting. */
  get queued(): number {
    return this.inFlight.length + this.waiting.length;
  }

  push(events: readonly GatewayEvent[]): void {
    if (events.length === 0) return;
    if (this.waiting.length === 0) this.waitingSince = performance.now();
    for (const event of events) this.waiting.push(event);
    const max = this.options.maxQueued ?? 200_000;
    const drop = Math.min(this.waiting.length, this.queued - max);
    if (drop > 0) {
      this.waiting.splice(0, drop);
      this.addGap(this.waitingAt, drop);
      this.waitingAt += drop;
      this.options.log.error(
        { dropped: drop, total: this.droppedCount, inFlight: this.inFlight.length },
        "event queue full while the journal refuses writes: dropped oldest waiting events",
      );
    }
    this.start();
  }

  /** Resolves once everything pushed so far is committed (or the sink is stopped). */
  async flush(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Waits (bounded) for what is queued to commit, then stops retrying; leftovers are logged. */
  async stop(timeoutMs = 5000): Promise<void> {
    await withTimeout(this.flush(), timeoutMs, () => new Error("flush timed out")).catch(() => {});
    this.stopper.abort();
    await this.running?.catch(() => {});
    if (this.queued > 0) {
      this.options.log.error({ lost: this.queued }, "events not journaled at shutdown");
    }
    const unannounced = this.notices.length + this.gaps.length;
    if (unannounced > 0) {
      const dropped =
        this.notices.reduce((sum, n) => sum + (n.data as { dropped: number }).dropped, 0) +
        this.gaps.reduce((sum, g) => sum + g.to - g.from, 0);
      this.options.log.error({ gaps: unannounced, dropped }, "overflow not announced at shutdown");
    }
  }

  private idle(): boolean {
    return this.inFlight.length === 0 && this.waiting.length === 0 && this.notices.length === 0;
  }

  private start(): void {
    this.running ??= this.drain().finally(() => {
      this.running = undefined;
      // a push that landed after the loop's last look: start again
      if (!this.idle() && !this.stopper.signal.aborted) this.start();
    });
  }

  private async drain(): Promise<void> {
    const maxBatch = this.options.maxBatch ?? 10_000;
    let size = maxBatch;
    while (!this.stopper.signal.aborted) {
      if (this.notices.length > 0 && !(await this.announce())) {
        if (!(await this.pause())) return;
        continue;
      }
      if (this.inFlight.length === 0) {
        if (this.waiting.length === 0) return;
        this.inFlight = this.waiting.splice(0, maxBatch);
        this.inFlightAt = this.waitingAt;
        this.inFlightSince = this.waitingSince;
        this.waitingAt += this.inFlight.length;
        size = maxBatch;
      }
      const batch = this.inFlight.slice(0, size);
      let records: JournalRecord[];
      try {
        // the journal's commit interval counts from the push, not from the append: what came
        // in while the previous append was committing has waited already
        records = await this.options.journal.append(batch, { heldSince: this.inFlightSince });
      } catch (err) {
        if (isDiskRefusal(err)) {
          this.options.log.error(
            { err: errorMessage(err), queued: this.queued, inFlight: batch.length },
            "journal append failed; will retry",
          );
          if (!(await this.pause())) return;
        } else if (batch.length > 1) {
          size = Math.ceil(batch.length / 2);
        } else {
          this.inFlight.shift();
          this.addGap(this.inFlightAt, 1);
          this.inFlightAt += 1;
          this.options.log.error(
            {
              err: errorMessage(err),
              type: batch[0]!.type,
              device: batch[0]!.device,
              subject: batch[0]!.subject,
            },
            "the journal refused an event: dropped it",
          );
          size = maxBatch;
        }
        continue;
      }
      this.inFlight.splice(0, batch.length);
      this.closeGaps(this.inFlightAt, batch.length, records);
      this.inFlightAt += batch.length;
      this.appendedCount += batch.length;
      this.backoff.reset();
      size = maxBatch;
    }
  }

  /** Records a drop of `count` events from stream position `from`, joining adjacent gaps. */
  private addGap(from: number, count: number): void {
    this.droppedCount += count;
    const gap: Gap = { from, to: from + count };
    let i = this.gaps.findIndex((g) => g.from >= gap.to);
    if (i === -1) i = this.gaps.length;
    this.gaps.splice(i, 0, gap);
    // merge with the gap after, then with the one before, when no kept event lies between
    const after = this.gaps[i + 1];
    if (after && after.from === gap.to) {
      gap.to = after.to;
      this.gaps.splice(i + 1, 1);
    }
    const before = this.gaps[i - 1];
    if (before && before.to === gap.from) {
      before.to = gap.to;
      this.gaps.splice(i, 1);
    }
  }

  /** A batch from stream position `at` is journaled: the gaps it ends become notices. */
  private closeGaps(at: number, count: number, records: readonly JournalRecord[]): void {
    while (this.gaps.length > 0 && this.gaps[0]!.to < at + count) {
      const gap = this.gaps.shift()!;
      const record = records[gap.to - at];
      if (gap.to < at || record === undefined) {
        // cannot happen: a gap always ends at an event not journaled yet
        this.options.log.error({ gap, at, count }, "overflow gap out of place: not announced");
        continue;
      }
      this.notices.push(this.overflowEvent(gap.to - gap.from, record.sequence));
    }
  }

  private overflowEvent(dropped: number, oldestKept: bigint): GatewayEvent {
    return {
      type: EVENT_TYPES.journalOverflow,
      device: this.options.gatewayId,
      subject: "journal",
      time: (this.options.now ?? Date.now)(),
      data: { dropped, oldest_kept_sequence: formatSequence(oldestKept) },
      topicClass: "status",
      asset: {},
    };
  }

  /** Appends the pending notices; false when the disk refused them (kept, to retry). */
  private async announce(): Promise<boolean> {
    const notices = this.notices.slice();
    try {
      await this.options.journal.append(notices);
    } catch (err) {
      if (isDiskRefusal(err)) {
        this.options.log.error(
          { err: errorMessage(err), notices: notices.length },
          "cannot journal the overflow event yet",
        );
        return false;
      }
      this.options.log.error(
        { err: errorMessage(err), notices: notices.map((n) => n.data) },
        "the journal refused the overflow event: not announced",
      );
    }
    this.notices.splice(0, notices.length);
    this.backoff.reset();
    return true;
  }

  /** Waits out a refusing disk; false once the sink is stopped. */
  private async pause(): Promise<boolean> {
    try {
      await sleep(this.backoff.next(), this.stopper.signal);
      return true;
    } catch {
      return false;
    }
  }
}

function isDiskRefusal(err: unknown): boolean {
  return isGatewayError(err, "JOURNAL_IO") || isGatewayError(err, "JOURNAL_FULL");
}
