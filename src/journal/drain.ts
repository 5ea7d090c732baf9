/**
 * The publisher's view of the journal: which records are pending for it, in sequence order,
 * handed out from memory when they are fresh (tail.ts) and from SQLite for a backlog; where its
 * cursor stands (cursor.ts); the time of its oldest pending record.
 *
 * Invariants:
 * - unpublished() hands out pending records in sequence order, never one acknowledged or set
 *   aside; a new connection (a call from below what was handed out) starts again at the cursor.
 * - A row that fails its check (records.ts decodeRow) is skipped: reported once, acknowledged at
 *   once (the journal's `skip`), so the cursor moves over it and the drain never spins on it.
 * - The tail follows the commits: records go in after their COMMIT, rewritten ones are
 *   rewritten, dropped ones taken out with the cursor moving past them, and those the cursor
 *   passed (done) taken out at the next commit.
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { SinkCursor } from "./cursor.ts";
import { decodeRow, RECORD_COLUMNS, type Row } from "./records.ts";
import { isCorruption, journalError } from "./sqlite-errors.ts";
import { RecordTail } from "./tail.ts";
import type { JournalRecord } from "./types.ts";

/** The records kept in memory for the publisher (tail.ts). */
const TAIL_RECORDS = 20_000;
const TAIL_BYTES = 8 * 1024 * 1024;

export interface DrainOptions {
  db: DatabaseSync;
  path: string;
  /** The cursor and what was acknowledged above it, as the file holds them. */
  done: bigint;
  ackedAhead: readonly bigint[];
  /** A row found corrupt (its sequence, when readable), or a page SQLite could not read. */
  reportCorrupt: (sequence: bigint | null, err?: unknown) => void;
  /** Acknowledge a record skipped as corrupt (the journal moves its cursor). */
  skip: (sequence: bigint) => void;
}

export class JournalDrain {
  readonly cursor: SinkCursor;
  readonly #tail = new RecordTail(TAIL_RECORDS, TAIL_BYTES);
  readonly #options: DrainOptions;
  readonly #pendingStmt: StatementSync;
  readonly #oldestStmt: StatementSync;
  /** Rows found corrupt above the cursor (reported once, skipped every time). */
  readonly #corrupt = new Set<bigint>();

  constructor(options: DrainOptions) {
    this.#options = options;
    this.cursor = new SinkCursor(options.done, options.ackedAhead);
    this.#pendingStmt = options.db.prepare(
      `SELECT ${RECORD_COLUMNS} FROM records WHERE sequence > ? ORDER BY sequence LIMIT ?`,
    );
    this.#pendingStmt.setReadBigInts(true);
    this.#oldestStmt = options.db.prepare(
      "SELECT time FROM records WHERE sequence > ? ORDER BY sequence LIMIT 1",
    );
  }

  unpublished(after: bigint, max: number): JournalRecord[] {
    const cursor = this.cursor;
    let next = (after > cursor.done ? after : cursor.done) + 1n;
    // a new connection reads from the cursor again: what it handed out before is forgotten
    if (after < cursor.lastHanded) cursor.restart(next);
    const out: JournalRecord[] = [];
    while (out.length < max) {
      const want = max - out.length + cursor.ackedAhead;
      const page = this.#tail.covers(next)
        ? this.#tail.from(next, want)
        : this.#readPending(next - 1n, want);
      if (page.length === 0) break;
      for (const entry of page) {
        const sequence = typeof entry === "bigint" ? entry : entry.sequence;
        cursor.hand(sequence);
        next = sequence + 1n;
        // a corrupt row (a bare sequence) is skipped: acknowledged at once, counted once
        if (typeof entry === "bigint") this.#options.skip(entry);
        else if (!cursor.isAcked(sequence)) out.push(entry);
        if (out.length >= max) break;
      }
    }
    return out;
  }

  /** The event time of the oldest pending record, when there is one. */
  oldestPendingTime(): number | undefined {
    const held = this.#tail.get(this.cursor.done + 1n);
    if (held) return held.time;
    try {
      const time = this.#oldestStmt.get(this.cursor.done)?.time;
      return typeof time === "number" ? time : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * After a COMMIT: its records, in order. What the publisher is done with leaves the tail
   * here: kept longer, every record would outlive V8's young generation and fill the old one
   * with garbage (issue 12: a 20,000-record tail held each record 2 s at 10k events/s).
   */
  committed(records: readonly JournalRecord[]): void {
    this.#tail.dropThrough(this.cursor.done);
    this.#tail.push(records);
  }

  replaced(record: JournalRecord): void {
    this.#tail.replace(record);
  }

  /** The size policy dropped every record up to `through`: the cursor moves past them. */
  dropped(through: bigint): void {
    this.cursor.moveTo(through);
    this.#tail.dropThrough(through);
  }

  /**
   * Pending records from SQLite (a backlog older than the tail), in sequence order; a row that
   * fails its check comes as its bare sequence, reported once.
   */
  #readPending(after: bigint, limit: number): (JournalRecord | bigint)[] {
    const { reportCorrupt, path } = this.#options;
    let rows: Row[];
    try {
      rows = this.#pendingStmt.all(after, limit) as Row[];
    } catch (err) {
      if (!isCorruption(err)) throw journalError("reading pending records", path, err);
      reportCorrupt(null, err);
      return [];
    }
    const out: (JournalRecord | bigint)[] = [];
    for (const row of rows) {
      const decoded = decodeRow(row);
      if (decoded.ok) out.push(decoded.record);
      else if (decoded.sequence !== null) {
        if (!this.#corrupt.has(decoded.sequence)) {
          this.#corrupt.add(decoded.sequence);
          reportCorrupt(decoded.sequence);
        }
        out.push(decoded.sequence);
      } else reportCorrupt(null);
    }
    return out;
  }
}
