/**
 * The one way events enter the journal. Pushes are queued in order and appended by a single
 * loop: whatever arrived while the previous append was committing goes into the next one, so
 * order is kept and commits are grouped.
 *
 * When the journal refuses a batch:
 * - a disk that fails, is full or is locked (JOURNAL_IO, JOURNAL_FULL) is waited out: the batch
 *   stays at the head of the queue and is retried with backoff, so nothing is lost and nothing
 *   overtakes it;
 * - any other refusal (a batch too large for the journal, an event that cannot be rendered)
 *   is about the batch itself: it is halved and retried at once, down to a single event, and a
 *   single event the journal still refuses is dropped, counted and logged, so that one bad
 *   event can never stop the events behind it.
 * Only past `maxQueued` events are the oldest dropped, counted and logged. Whatever was dropped
 * is announced, like the journal's own size policy does, by a plc2mqtt.journal.overflow event
 * appended right after the next batch the journal takes (oldest_kept_sequence: that batch's
 * first record).
 */
import { formatSequence } from "../events/cloudevent.ts";
import { EVENT_TYPES, type GatewayEvent } from "../events/types.ts";
import type { Journal } from "../journal/types.ts";
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
  maxQueued?: number;
  maxBatch?: number;
}

export class EventSink {
  private readonly options: EventSinkOptions;
  private queue: GatewayEvent[] = [];
  private running: Promise<void> | undefined;
  private readonly stopper = new AbortController();
  private readonly backoff = new Backoff({ baseMs: 100, maxMs: 5000 });
  private droppedCount = 0;
  /** Dropped and not yet announced by an overflow event. */
  private unannounced = 0;
  private appendedCount = 0;

  constructor(options: EventSinkOptions) {
    this.options = options;
  }

  /** Events dropped: past maxQueued, or refused one by one by the journal. */
  get dropped(): number {
    return this.droppedCount;
  }

  get appended(): number {
    return this.appendedCount;
  }

  get queued(): number {
    return this.queue.length;
  }

  push(events: readonly GatewayEvent[]): void {
    if (events.length === 0) return;
    this.queue.push(...events);
    const max = this.options.maxQueued ?? 200_000;
    if (this.queue.length > max) {
      const drop = this.queue.length - max;
      this.queue.splice(0, drop);
      this.droppedCount += drop;
      this.unannounced += drop;
      this.options.log.error(
        { dropped: drop, total: this.droppedCount },
        "event queue full while the journal refuses writes: dropped oldest events",
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
    if (this.queue.length > 0) {
      this.options.log.error({ lost: this.queue.length }, "events not journaled at shutdown");
    }
  }

  private start(): void {
    this.running ??= this.drain().finally(() => {
      this.running = undefined;
      // a push that landed after the loop's last look: start again
      if (this.queue.length > 0 && !this.stopper.signal.aborted) this.start();
    });
  }

  private async drain(): Promise<void> {
    const maxBatch = this.options.maxBatch ?? 10_000;
    let size = maxBatch;
    while (this.queue.length > 0 && !this.stopper.signal.aborted) {
      const batch = this.queue.slice(0, size);
      try {
        const records = await this.options.journal.append(batch);
        this.queue.splice(0, batch.length);
        this.appendedCount += batch.length;
        if (this.unannounced > 0 && records[0]) await this.announce(records[0].sequence);
        this.backoff.reset();
        size = maxBatch;
      } catch (err) {
        if (!isGatewayError(err, "JOURNAL_IO") && !isGatewayError(err, "JOURNAL_FULL")) {
          if (batch.length > 1) {
            size = Math.ceil(batch.length / 2);
            continue;
          }
          this.queue.splice(0, 1);
          this.droppedCount += 1;
          this.unannounced += 1;
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
          continue;
        }
        const delay = this.backoff.next();
        this.options.log.error(
          { err: errorMessage(err), queued: this.queue.length, retryInMs: delay },
          "journal append failed; will retry",
        );
        try {
          await sleep(delay, this.stopper.signal);
        } catch {
          return;
        }
      }
    }
  }

  /** Appends the overflow event for what was dropped; kept for the next batch if refused. */
  private async announce(oldestKept: bigint): Promise<void> {
    const dropped = this.unannounced;
    this.unannounced = 0;
    const event: GatewayEvent = {
      type: EVENT_TYPES.journalOverflow,
      device: this.options.gatewayId,
      subject: "journal",
      time: (this.options.now ?? Date.now)(),
      data: { dropped, oldest_kept_sequence: formatSequence(oldestKept) },
      topicClass: "status",
      asset: {},
    };
    try {
      await this.options.journal.append([event]);
    } catch (err) {
      this.unannounced += dropped;
      this.options.log.error({ err: errorMessage(err) }, "cannot journal the overflow event yet");
    }
  }
}
