/**
 * Housekeeping that keeps the journal inside its bounds: WAL checkpoints (TRUNCATE, so the WAL
 * file shrinks back to zero), retention, and giving freed pages back to the file system.
 *
 * Retention rule (issue 14: deletes are prefixes, so the hash chain stays whole from the oldest
 * kept record, chain.ts): retention deletes the records below the first one, in sequence
 * order, that is either young enough (its EVENT time at or after now - retention) or not yet
 * done by the publisher (above its cursor). So a record may stay a little longer than
 * `retention` (behind a younger one: event times are not strictly in sequence order, a PLC
 * clock may be off), never less; and never before it was published. Event time, not publish
 * time, because replay and queries are by event time; a record published late after a long
 * outage may therefore leave soon after it was published. Pending records are never deleted
 * by retention, only by the size policy.
 * Deletes run in chunks (the next deleteChunkRows records by primary key, cut at the first
 * one that must stay), each its own transaction at synchronous=NORMAL (losing a delete in a
 * power cut only means it runs again) that also writes the chain's pruned-through mark, with a
 * checkpoint between chunks when the WAL grew. A chunk is small: appends never wait long.
 *
 * The budget is the one the journal measured last (disk-space.ts: max_bytes or a full disk).
 * On a full disk vacuum() goes in steps that fit the room there is, each checkpointed at once,
 * so the WAL frames it writes never need more than the file system has (full-disk.ts).
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import type { Logger } from "../lib/logger.ts";
import { PruneMark } from "./chain.ts";
import type { SizeBudget } from "./size-policy.ts";
import { fileSize } from "./store.ts";

export class Maintenance {
  readonly #db: DatabaseSync;
  readonly #walPath: string;
  readonly #budget: () => SizeBudget;
  readonly #log: Logger;
  readonly #front: StatementSync;
  readonly #deleteThrough: StatementSync;
  readonly #prune: PruneMark;
  readonly #freelist: StatementSync;
  readonly #pageCount: StatementSync;

  constructor(db: DatabaseSync, path: string, budget: () => SizeBudget, log: Logger) {
    this.#db = db;
    this.#walPath = `${path}-wal`;
    this.#budget = budget;
    this.#log = log;
    this.#front = db.prepare(
      "SELECT sequence, time, hash FROM records WHERE sequence <= ? ORDER BY sequence LIMIT ?",
    );
    this.#front.setReadBigInts(true);
    this.#deleteThrough = db.prepare("DELETE FROM records WHERE sequence <= ?");
    this.#prune = new PruneMark(db);
    this.#freelist = db.prepare("PRAGMA freelist_count");
    this.#pageCount = db.prepare("PRAGMA page_count");
  }

  walBytes(): number {
    return fileSize(this.#walPath);
  }

  /** Checkpoints and truncates the WAL when it is over `threshold` bytes (default: budget). */
  checkpoint(threshold = this.#budget().walCheckpointBytes): void {
    if (this.walBytes() <= threshold) return;
    const result = this.#db.prepare("PRAGMA wal_checkpoint(TRUNCATE)").get();
    if (Number(result?.busy ?? 0) !== 0) {
      this.#log.warn({ wal: this.#walPath, result }, "journal checkpoint blocked by a reader");
    }
  }

  /**
   * Deletes the prefix of records done (at or below `done`) with event time before `cutoff`,
   * up to the first record that is not (the rule above); how many.
   */
  retention(cutoff: number, done: bigint): number {
    const chunk = this.#budget().deleteChunkRows;
    let deleted = 0;
    this.#relaxed(() => {
      for (;;) {
        this.#db.exec("BEGIN IMMEDIATE");
        let changes = 0;
        let full = false;
        try {
          const rows = this.#front.all(done, chunk);
          let last: Record<string, unknown> | undefined;
          for (const row of rows) {
            if (Number(row.time) >= cutoff) break;
            last = row;
            changes++;
          }
          full = changes === chunk;
          if (last !== undefined) {
            this.#deleteThrough.run(last.sequence as bigint);
            this.#prune.mark(last.sequence as bigint, last.hash);
          }
          this.#db.exec("COMMIT");
        } catch (err) {
          if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
          throw err;
        }
        deleted += changes;
        this.checkpoint();
        if (!full) break;
      }
    });
    if (deleted > 0) this.vacuum();
    return deleted;
  }

  /**
   * Gives free pages back to the file system (auto_vacuum=INCREMENTAL), a step at a time so
   * the WAL stays in its budget. Keeps a little slack for the next group commits. `maxStep`
   * (a full disk): pages moved per step at most, the WAL checkpointed after each.
   */
  vacuum(keepFree = 64, maxStep = Number.POSITIVE_INFINITY): void {
    const budget = this.#budget();
    const tight = Number.isFinite(maxStep);
    const step = Math.max(
      1,
      Math.min(maxStep, Math.max(8, Math.floor(budget.walCheckpointBytes / budget.pageSize))),
    );
    this.#relaxed(() => {
      let lastPages = Number.POSITIVE_INFINITY;
      for (;;) {
        const free = Number(this.#freelist.get()?.freelist_count ?? 0);
        const pages = Number(this.#pageCount.get()?.page_count ?? 0);
        const surplus = Math.max(free - keepFree, pages - budget.maxPages);
        if (surplus <= 0 || free === 0 || pages >= lastPages) break; // done, or no progress
        lastPages = pages;
        this.#db.exec(`PRAGMA incremental_vacuum(${Math.min(step, surplus, free)})`);
        this.checkpoint(tight ? 0 : undefined);
      }
    });
    this.checkpoint(0);
  }

  #relaxed(work: () => void): void {
    this.#db.exec("PRAGMA synchronous = NORMAL");
    try {
      work();
    } finally {
      this.#db.exec("PRAGMA synchronous = FULL");
    }
  }
}
