/**
 * What a device's I/O thread sent that the runner has not taken yet, in the thread's order
 * (io-thread.ts): the polls of each schedule, which the runner takes one by one (nextPoll), and
 * the driver's corrections of readings it already returned (readings put in doubt, which a
 * driver on the main thread hands to the runner at once through subscribe()).
 *
 * Invariants:
 * - A correction is handed on only once every poll the thread sent before it was taken and
 *   given to the runner (or handed on), so it never reaches the runner before a reading it
 *   corrects: the runner delivers in the order it is given things, and a reading after its
 *   correction would stand as good. A correction may come after a newer reading of another
 *   schedule that went to the runner at once: that reading is then bad until the next poll,
 *   never a doubtful one good.
 * - The polls of a schedule that was stopped (a regroup) are handed on in order, as the reads
 *   in progress at a regroup on the main thread are; those of a closed connection are dropped,
 *   as a read that outlives its runner's stop is. Corrections are never dropped.
 */
import type { PolledSamples, TagSample } from "../types.ts";

interface Held {
  seq: number;
  samples: TagSample[];
}

export class PollOutbox {
  #seq = 0;
  /** Polls not taken, by schedule. */
  readonly #polls = new Map<number, { seq: number; poll: PolledSamples }[]>();
  /** Samples to hand on once the polls before them are gone, in order. */
  readonly #after: Held[] = [];
  readonly #handOn: (samples: TagSample[]) => void;

  /** `handOn`: the runner's channel for samples outside a poll (subscribe's callback). */
  constructor(handOn: (samples: TagSample[]) => void) {
    this.#handOn = handOn;
  }

  /** A poll of `schedule` the runner was not waiting for. */
  poll(schedule: number, poll: PolledSamples): void {
    const list = this.#polls.get(schedule) ?? [];
    this.#polls.set(schedule, list);
    list.push({ seq: this.#seq++, poll });
  }

  /** Readings put in doubt: handed on now, or after the polls sent before them. */
  doubt(samples: TagSample[]): void {
    this.#after.push({ seq: this.#seq++, samples });
    this.#release();
  }

  /**
   * The oldest poll of `schedule` not taken yet. The corrections it held back go on only after
   * the caller has handed the poll to the runner (which happens once nextPoll's promise
   * settles, in this turn's microtasks): on the next turn, never before the poll.
   */
  take(schedule: number): PolledSamples | undefined {
    const held = this.#polls.get(schedule)?.shift();
    if (held === undefined) return undefined;
    if (this.#after.length > 0) setImmediate(() => this.#release());
    return held.poll;
  }

  /** A schedule ended: its polls not taken are handed on (`keep`) or dropped. */
  end(schedule: number, keep: boolean): void {
    const list = this.#polls.get(schedule) ?? [];
    this.#polls.delete(schedule);
    if (keep) {
      for (const { seq, poll } of list) this.#after.push({ seq, samples: poll.samples });
      this.#after.sort((a, b) => a.seq - b.seq);
    }
    this.#release();
  }

  /** The connection is closed: the polls go, the corrections are handed on. */
  close(): void {
    this.#polls.clear();
    this.#release();
  }

  #release(): void {
    let oldest = Number.POSITIVE_INFINITY;
    for (const list of this.#polls.values())
      if (list.length > 0) oldest = Math.min(oldest, list[0]!.seq);
    while (this.#after.length > 0 && this.#after[0]!.seq < oldest) {
      this.#handOn(this.#after.shift()!.samples);
    }
  }
}
