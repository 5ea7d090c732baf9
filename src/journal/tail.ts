/**
 * The records committed last, kept in memory in sequence order, so that the publisher takes
 * fresh records from here instead of reading back what was just written (issue 12: reading
 * unpublished rows back out of SQLite took a fifth of the durable path's time). SQLite is read
 * only for a backlog older than the tail.
 *
 * Invariants:
 * - The tail holds consecutive sequences (every commit continues where the last one ended); a
 *   push that does not continue it starts it afresh.
 * - It holds at most `maxRecords` records and about `maxBytes` of payload: the oldest go first.
 * - A record rewritten by replace() is rewritten here too; records dropped by the size policy
 *   are taken out (dropThrough).
 */
import type { JournalRecord } from "./types.ts";

export class RecordTail {
  readonly #maxRecords: number;
  readonly #maxBytes: number;
  /** Slots below #head are released (undefined); from #head on, the records held. */
  #records: (JournalRecord | undefined)[] = [];
  #head = 0;
  #bytes = 0;

  constructor(maxRecords: number, maxBytes: number) {
    this.#maxRecords = maxRecords;
    this.#maxBytes = maxBytes;
  }

  get size(): number {
    return this.#records.length - this.#head;
  }

  /** The first sequence held, or undefined when empty. */
  get first(): bigint | undefined {
    return this.size > 0 ? this.#records[this.#head]!.sequence : undefined;
  }

  push(records: readonly JournalRecord[]): void {
    if (records.length === 0) return;
    const last = this.size > 0 ? this.#records.at(-1)!.sequence : undefined;
    if (last !== undefined && records[0]!.sequence !== last + 1n) this.clear();
    for (const record of records) {
      this.#records.push(record);
      this.#bytes += record.payload.length;
    }
    while (this.size > this.#maxRecords || (this.#bytes > this.#maxBytes && this.size > 1)) {
      this.#dropFirst();
    }
    this.#compact();
  }

  /** Whether the records from `sequence` on are all here (or none has been committed yet). */
  covers(sequence: bigint): boolean {
    const first = this.first;
    return first !== undefined && sequence >= first;
  }

  /** Up to `max` records from `sequence` on (covers(sequence) must hold). */
  from(sequence: bigint, max: number): JournalRecord[] {
    const start = this.#head + Number(sequence - this.first!);
    // slots from the head on all hold records
    return this.#records.slice(
      start,
      Math.min(this.#records.length, start + max),
    ) as JournalRecord[];
  }

  /** The record of `sequence`, when held. */
  get(sequence: bigint): JournalRecord | undefined {
    if (!this.covers(sequence)) return undefined;
    return this.#records[this.#head + Number(sequence - this.first!)];
  }

  replace(record: JournalRecord): void {
    if (!this.covers(record.sequence)) return;
    const index = this.#head + Number(record.sequence - this.first!);
    const old = this.#records[index];
    if (old === undefined) return;
    this.#bytes += record.payload.length - old.payload.length;
    this.#records[index] = record;
  }

  /** Takes out every record at or below `sequence`. */
  dropThrough(sequence: bigint): void {
    while (this.size > 0 && this.#records[this.#head]!.sequence <= sequence) {
      this.#dropFirst();
    }
    this.#compact();
  }

  /**
   * The first record leaves, and the array lets go of it at once: a slot kept until the next
   * compaction held each record long enough for V8 to move it to the old generation, whose
   * garbage is what grew the gateway's memory (issue 12).
   */
  #dropFirst(): void {
    const record = this.#records[this.#head]!;
    this.#bytes -= record.payload.length;
    this.#records[this.#head++] = undefined;
  }

  clear(): void {
    this.#records = [];
    this.#head = 0;
    this.#bytes = 0;
  }

  #compact(): void {
    if (this.#head > 4096 && this.#head * 2 > this.#records.length) {
      this.#records = this.#records.slice(this.#head);
      this.#head = 0;
    }
  }
}
