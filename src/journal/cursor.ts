/**
 * A sink's progress through the journal (store.ts, `cursors`): `done`, the cursor (every record
 * at or below it is done for the sink), and above it the records handed out, in sequence order,
 * and which of those were acknowledged.
 *
 * Invariants:
 * - The cursor moves only over records acknowledged (or skipped): to the next sequence when it
 *   is acknowledged (sequences above the cursor are consecutive), or, where a salvage left a
 *   hole, to the next record handed out when that one is; acknowledgements may come in any
 *   order, the cursor never passes a record the sink has not finished with.
 * - Records are handed out in sequence order; handing out again from lower down (a new
 *   connection starts over from the cursor) restarts the list, and what was acknowledged above
 *   the cursor stays acknowledged (it is handed out again only to keep the list contiguous,
 *   never sent again).
 * - moveTo(through) (the size policy dropped everything up to there) forgets all at or below.
 * - What is acknowledged above the cursor is saved too (store.ts `acked_ahead`, written by the
 *   group commit when it changed): after a restart an acknowledged record, or one set aside,
 *   is never sent again, whatever order the acknowledgements came in.
 */
export class SinkCursor {
  #done: bigint;
  #handed: bigint[] = [];
  #head = 0;
  /** The handed-out list starts here: it tells holes only once the cursor has reached it. */
  #handedFrom = 0n;
  readonly #acked = new Set<bigint>();
  #aheadChanged = false;

  constructor(done: bigint, ackedAhead: readonly bigint[] = []) {
    this.#done = done;
    for (const sequence of ackedAhead) if (sequence > done) this.#acked.add(sequence);
  }

  /** Whether what is acknowledged above the cursor changed since it was last saved. */
  get aheadChanged(): boolean {
    return this.#aheadChanged;
  }

  /** takeAhead()'s list was not saved after all (the commit failed): offer it again. */
  aheadNotSaved(): void {
    this.#aheadChanged = true;
  }

  /** The acknowledged records above the cursor, when they changed since the last call. */
  takeAhead(): bigint[] | undefined {
    if (!this.#aheadChanged) return undefined;
    this.#aheadChanged = false;
    return [...this.#acked];
  }

  get done(): bigint {
    return this.#done;
  }

  /** The highest sequence handed out since the last restart (the cursor when none). */
  get lastHanded(): bigint {
    return this.#handed.length > this.#head ? this.#handed.at(-1)! : this.#done;
  }

  /** Acknowledged above the cursor, out of order. */
  get ackedAhead(): number {
    return this.#acked.size;
  }

  isAcked(sequence: bigint): boolean {
    return sequence <= this.#done || this.#acked.has(sequence);
  }

  /**
   * Starts the list of handed-out records afresh at `from` (a new connection reads from the
   * cursor; a retry may read from further on, with records below still in flight).
   */
  restart(from: bigint): void {
    this.#handed = [];
    this.#head = 0;
    this.#handedFrom = from;
  }

  /** `sequence` was handed out (ascending). */
  hand(sequence: bigint): void {
    if (sequence > this.lastHanded) this.#handed.push(sequence);
  }

  /** Acknowledges (or skips) records; returns how many the cursor moved over. */
  ack(sequences: readonly bigint[]): number {
    let moved = 0;
    for (const sequence of sequences) {
      if (sequence <= this.#done) continue;
      if (this.#acked.size === 0 && sequence === this.#done + 1n) {
        // in order, nothing ahead (the usual case): the cursor moves, the set stays empty, and
        // the commit leaves acked_ahead alone (clearing it wrote a page per commit)
        this.#done = sequence;
        moved++;
      } else if (!this.#acked.has(sequence)) {
        this.#acked.add(sequence);
        this.#aheadChanged = true;
      }
    }
    const handed = this.#handed;
    for (;;) {
      while (this.#head < handed.length && handed[this.#head]! <= this.#done) this.#head++;
      // a hole (a record missing since a salvage) is passed only when the handed-out list runs
      // from the cursor on: then its next entry is the next record there is
      const coversCursor = this.#handedFrom <= this.#done + 1n;
      const next = this.#acked.has(this.#done + 1n)
        ? this.#done + 1n
        : coversCursor && this.#head < handed.length && this.#acked.has(handed[this.#head]!)
          ? handed[this.#head]!
          : undefined;
      if (next === undefined) break;
      this.#acked.delete(next);
      this.#done = next;
      moved++;
      this.#aheadChanged = true;
    }
    if (this.#head > 1024 && this.#head * 2 > handed.length) {
      this.#handed = handed.slice(this.#head);
      this.#head = 0;
    }
    return moved;
  }

  /** The records up to `through` are gone (dropped): the cursor moves there. */
  moveTo(through: bigint): void {
    if (through <= this.#done) return;
    this.#done = through;
    for (const sequence of this.#acked) if (sequence <= through) this.#acked.delete(sequence);
    this.#aheadChanged = true;
    const rest = this.#handed.slice(this.#head).filter((s) => s > through);
    this.#handed = rest;
    this.#head = 0;
  }
}
