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
  readonly #maxBytes: number;
  /**
   * A ring of `maxRecords` slots, allocated once: a slot is emptied the moment its record
   * leaves. An array that grew by push() and was compacted by slice() left its old backing
   * stores behind in V8's old generation still pointing at the records held then; the
   * scavenger takes such pointers as roots until the next full collection, so every record
   * they reached was moved to the old generation too (issue 12: with the in-flight Maps,
   * lib/id-slots.ts, 5.3 MB/s promoted at 10k events/s and a full collection every 1.3 s).
   */
  readonly #slots: (JournalRecord | undefined)[];
  /** The slot of the first record held. */
  #start = 0;
  #count = 0;
  #bytes = 0;

  constructor(maxRecords: number, maxBytes: number) {
    this.#maxBytes = maxBytes;
    this.#slots = new Array<JournalRecord | undefined>(Math.max(1, maxRecords)).fill(undefined);
  }

  get size(): number {
    return this.#count;
  }

  /** The first sequence held, or undefined when empty. */
  get first(): bigint | undefined {
    return this.#count > 0 ? this.#slots[this.#start]!.sequence : undefined;
  }

  push(records: readonly JournalRecord[]): void {
    if (records.length === 0) return;
    const last = this.#count > 0 ? this.#at(this.#count - 1).sequence : undefined;
    if (last !== undefined && records[0]!.sequence !== last + 1n) this.clear();
    const capacity = this.#slots.length;
    for (const record of records) {
      if (this.#count === capacity) this.#dropFirst();
      this.#slots[(this.#start + this.#count) % capacity] = record;
      this.#count++;
      this.#bytes += record.payload.length;
    }
    while (this.#bytes > this.#maxBytes && this.#count > 1) this.#dropFirst();
  }

  /** Whether the records from `sequence` on are all here (or none has been committed yet). */
  covers(sequence: bigint): boolean {
    const first = this.first;
    return first !== undefined && sequence >= first;
  }

  /** Up to `max` records from `sequence` on (covers(sequence) must hold). */
  from(sequence: bigint, max: number): JournalRecord[] {
    const offset = Number(sequence - this.first!);
    const end = Math.min(this.#count, offset + max);
    const out: JournalRecord[] = [];
    for (let i = offset; i < end; i++) out.push(this.#at(i));
    return out;
  }

  /** The record of `sequence`, when held. */
  get(sequence: bigint): JournalRecord | undefined {
    if (!this.covers(sequence)) return undefined;
    const offset = Number(sequence - this.first!);
    return offset < this.#count ? this.#at(offset) : undefined;
  }

  replace(record: JournalRecord): void {
    if (!this.covers(record.sequence)) return;
    const offset = Number(record.sequence - this.first!);
    if (offset >= this.#count) return;
    const slot = (this.#start + offset) % this.#slots.length;
    this.#bytes += record.payload.length - this.#slots[slot]!.payload.length;
    this.#slots[slot] = record;
  }

  /** Takes out every record at or below `sequence`. */
  dropThrough(sequence: bigint): void {
    while (this.#count > 0 && this.#slots[this.#start]!.sequence <= sequence) this.#dropFirst();
  }

  clear(): void {
    while (this.#count > 0) this.#dropFirst();
    this.#start = 0;
  }

  /** The record `offset` places after the first (offset < size). */
  #at(offset: number): JournalRecord {
    return this.#slots[(this.#start + offset) % this.#slots.length]!;
  }

  /** The first record leaves, and its slot lets go of it at once. */
  #dropFirst(): void {
    const record = this.#slots[this.#start]!;
    this.#bytes -= record.payload.length;
    this.#slots[this.#start] = undefined;
    this.#start = (this.#start + 1) % this.#slots.length;
    this.#count--;
  }
}
