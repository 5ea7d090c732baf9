/**
 * The one way events enter the journal. Pushes are queued in order and appended by a single
 * loop: whatever arrived while the previous append was committing goes into the next one, so
 * order is kept and commits are grouped. When the journal refuses (a full or failing disk),
 * the batch stays at the head of the queue and is retried with backoff: nothing is lost and
 * nothing overtakes it. Only past `maxQueued` events are the oldest dropped, counted and logged.
 */
import type { GatewayEvent } from "../events/types.ts";
import type { Journal } from "../journal/types.ts";
import { sleep, withTimeout } from "../lib/abort.ts";
import { Backoff } from "../lib/backoff.ts";
import { errorMessage } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";

export interface EventSinkOptions {
  journal: Pick<Journal, "append">;
  log: Logger;
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
  private appendedCount = 0;

  constructor(options: EventSinkOptions) {
    this.options = options;
  }

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
    const max = this.options.maxQueued ?? 1_000_000;
    if (this.queue.length > max) {
      const drop = this.queue.length - max;
      this.queue.splice(0, drop);
      this.droppedCount += drop;
      this.options.log.error(
        { dropped: drop, total: this.droppedCount },
        "event queue full while the journal refuses writes: dropped oldest events",
      );
    }
    this.running ??= this.drain().finally(() => {
      this.running = undefined;
      if (this.queue.length > 0 && !this.stopper.signal.aborted) this.push([]);
    });
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

  private async drain(): Promise<void> {
    const maxBatch = this.options.maxBatch ?? 10_000;
    while (this.queue.length > 0 && !this.stopper.signal.aborted) {
      const batch = this.queue.slice(0, maxBatch);
      try {
        await this.options.journal.append(batch);
        this.queue.splice(0, batch.length);
        this.appendedCount += batch.length;
        this.backoff.reset();
      } catch (err) {
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
}
