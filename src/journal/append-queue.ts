/**
 * The appends waiting for a group commit, in order, and how a group is taken off them: whole
 * batches (a batch is never split across transactions), rendered with the sequences they would
 * get, within the group's event and byte limits. A batch that cannot be rendered, or that could
 * never fit the journal, is rejected on its own and the ones behind it go on.
 */
import { GatewayError } from "../lib/errors.ts";
import { type Batch, type CommitContext, type PreparedBatch, prepareBatch } from "./commit.ts";
import { pagesFor } from "./size-policy.ts";

export class AppendQueue {
  #queue: Batch[] = [];
  #events = 0;

  /** Batches waiting. */
  get size(): number {
    return this.#queue.length;
  }

  /** Events waiting. */
  get events(): number {
    return this.#events;
  }

  push(batch: Batch): void {
    this.#queue.push(batch);
    this.#events += batch.events.length;
  }

  /** Renders batches off the queue into one group within the event and byte limits. */
  takeGroup(ctx: CommitContext, maxEvents: number): PreparedBatch[] {
    const { budget, state } = ctx;
    const group: PreparedBatch[] = [];
    let next = state.highWater + 1n;
    let events = 0;
    let bytes = 0;
    while (this.#queue.length > 0) {
      const batch = this.#queue[0]!;
      if (group.length > 0 && events + batch.events.length > maxEvents) break;
      let prepared: PreparedBatch;
      try {
        prepared = prepareBatch(ctx, batch, next);
      } catch (err) {
        this.#dequeue();
        batch.reject(err);
        continue;
      }
      if (group.length > 0 && bytes + prepared.bytes > budget.groupBytes) break;
      this.#dequeue();
      if (
        prepared.bytes > budget.groupBytes * 2 ||
        pagesFor(prepared.bytes, budget.pageSize) > budget.maxPages / 2
      ) {
        batch.reject(
          new GatewayError(
            "JOURNAL_BATCH",
            `a batch of ${batch.events.length} event(s), about ${Math.round(prepared.bytes)} bytes, is too large for journal ${ctx.path} (max_bytes ${budget.maxBytes})`,
            { details: { path: ctx.path, max_bytes: budget.maxBytes } },
          ),
        );
        continue;
      }
      group.push(prepared);
      next += BigInt(prepared.records.length);
      events += prepared.records.length;
      bytes += prepared.bytes;
    }
    return group;
  }

  #dequeue(): void {
    const batch = this.#queue.shift();
    if (batch) this.#events -= batch.events.length;
  }
}
