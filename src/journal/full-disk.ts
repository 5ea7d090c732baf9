/**
 * Bringing the journal under the budget the disk allows (the rule is in disk-space.ts), in steps
 * that each fit the room the file system has, so that none of its own writes fails for want of
 * room. Used at open (a journal over its budget: max_bytes lowered, or a disk that filled while
 * the gateway was down), after a write that failed for want of room (journal.reserve released
 * first), and after a commit that found the main file over the budget (something else took
 * space on the disk).
 *
 * One round:
 *   1. a room commit (a group commit with no events, journal.ts) under a step budget: records
 *      are deleted in the size policy's order (published first, then the oldest pending,
 *      counted and announced by an overflow notice committed with them) until the used pages
 *      are down by two thirds of the free pages at most (measured on this layout: a DELETE
 *      writes WAL frames for about 45% of the bytes it deletes);
 *   2. a checkpoint (TRUNCATE): the frames go into pages the main file already has (a delete
 *      never grows it), the WAL's blocks go back to the file system;
 *   3. an incremental vacuum of at most a third of the free pages (about one WAL frame per
 *      page moved), checkpointed at once: the main file shrinks, the disk gets the pages back.
 * Each round frees more than it writes, so the room grows from round to round until the
 * journal's files fit the budget; then journal.reserve is written again when it has room.
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import type { Logger } from "../lib/logger.ts";
import type { CommitContext } from "./commit.ts";
import type { DiskSpace } from "./disk-space.ts";
import type { Maintenance } from "./maintenance.ts";
import { pagesFor, type SizeBudget } from "./size-policy.ts";
import { isIoError, isOutOfRoom, journalError } from "./sqlite-errors.ts";

/** Rounds at most per call: enough to go from a few pages free to a journal of terabytes. */
const MAX_ROUNDS = 64;

export interface RoomWork {
  space: DiskSpace;
  maintenance: Maintenance;
  /** page_count and page_count - freelist_count of the main file, as SQLite sees them. */
  pages(): { total: number; used: number };
  /** One room commit under `budget`: a group commit with no events, settled (journal.ts). */
  commitRoom(budget: SizeBudget): void;
}

/**
 * Rounds until the journal's files fit the measured budget; true when they do. Throws what a
 * step throws (the caller logs it: a file system with no room and no reserve left).
 */
export function regainRoom(work: RoomWork): boolean {
  let last = "";
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const budget = work.space.measure();
    const { total, used } = work.pages();
    // what a room commit needs for its own overflow notice (commit.ts: 2048 bytes)
    const notice = pagesFor(2048, budget.pageSize);
    const overUsed = used + notice > budget.maxPages;
    const overFile = total > budget.maxPages;
    if (!overUsed && !overFile) {
      work.space.keep();
      return true;
    }
    const seen = `${total}/${used}`;
    if (seen === last) return false; // no progress: nothing left that may go
    last = seen;
    const room = Math.floor(Math.min(work.space.free(), 2 ** 40) / budget.pageSize);
    const step = Math.max(4, Math.floor(room / 3));
    if (overUsed) {
      work.commitRoom({
        ...budget,
        maxPages: Math.max(budget.maxPages, used - 2 * step),
        dropRoundPages: 0,
      });
    }
    work.maintenance.checkpoint(0);
    if (overFile || overUsed) work.maintenance.vacuum(64, step);
  }
  return false;
}

/**
 * The journal's side of it (journal.ts holds one): the budget each commit runs under, the hard
 * stop that follows it, what a refused write means, and regainRoom() when it is needed.
 */
export class DiskRoom {
  readonly #ctx: CommitContext;
  readonly #space: DiskSpace;
  readonly #maintenance: Maintenance;
  readonly #log: Logger;
  readonly #commitRoom: (budget: SizeBudget) => void;
  readonly #pageCount: StatementSync;
  readonly #freelist: StatementSync;
  /** max_page_count as asked last, and what SQLite set (never below the file's pages). */
  #maxPagesWanted = 0;
  #maxPagesSet = 0;
  #regaining = false;

  constructor(options: {
    ctx: CommitContext;
    space: DiskSpace;
    maintenance: Maintenance;
    log: Logger;
    /** One room commit under `budget`: a group commit with no events, settled (journal.ts). */
    commitRoom: (budget: SizeBudget) => void;
  }) {
    this.#ctx = options.ctx;
    this.#space = options.space;
    this.#maintenance = options.maintenance;
    this.#log = options.log;
    this.#commitRoom = options.commitRoom;
    const db: DatabaseSync = options.ctx.db;
    this.#pageCount = db.prepare("PRAGMA page_count");
    this.#freelist = db.prepare("PRAGMA freelist_count");
  }

  /** Inside regainRoom(): its room commits must not start another. */
  get regaining(): boolean {
    return this.#regaining;
  }

  /** The budget for the next commit, from a measurement at most `maxAgeMs` old. */
  measure(maxAgeMs: number): void {
    this.#ctx.budget = this.#space.measure(maxAgeMs);
    this.#hardStop();
  }

  /** Whether `err` is a write refused for want of room on a short disk (reserve released). */
  outOfRoom(err: unknown): boolean {
    return (isOutOfRoom(err) || isIoError(err)) && this.#space.release();
  }

  /**
   * After a commit (never throws: the commit stands): `short` when its checkpoint was refused
   * for want of room. Makes room when that happened or the main file is over the budget
   * (something else took room on the disk since), else writes a missing reserve.
   */
  afterCommit(short: boolean): void {
    if (this.#regaining) return;
    try {
      if (short || this.#pages().total > this.#ctx.budget.maxPages) this.regain("after a commit");
      else if (!this.#space.hasReserve) this.#space.keep();
    } catch (err) {
      this.#log.warn(
        { err: journalError("journal: making room", this.#ctx.path, err) },
        "journal: making room after a commit failed (the commit stands)",
      );
    }
  }

  /** regainRoom() under the measured budget; throws what a step throws. */
  regainOrThrow(): void {
    if (this.#regaining) return;
    this.#regaining = true;
    try {
      regainRoom({
        space: this.#space,
        maintenance: this.#maintenance,
        pages: () => this.#pages(),
        commitRoom: this.#commitRoom,
      });
      this.#ctx.budget = this.#space.budget;
      this.#hardStop();
    } finally {
      this.#regaining = false;
    }
  }

  /** regainOrThrow(), a disk with no room left logged instead of thrown. */
  regain(when: string): void {
    try {
      this.regainOrThrow();
    } catch (err) {
      if (!isOutOfRoom(err) && !isIoError(err)) throw err;
      this.#log.error(
        {
          err: journalError("journal: making room", this.#ctx.path, err),
          when,
          free: this.#space.free(),
        },
        "journal: the file system is full and no room could be made (commits fail until there is)",
      );
    }
  }

  #pages(): { total: number; used: number } {
    const total = Number(this.#pageCount.get()?.page_count ?? 0);
    return { total, used: total - Number(this.#freelist.get()?.freelist_count ?? 0) };
  }

  /** PRAGMA max_page_count follows the budget (SQLite never sets it below the file's pages). */
  #hardStop(): void {
    const want = this.#ctx.budget.maxPages;
    if (want === this.#maxPagesWanted && this.#maxPagesSet <= want) return;
    const row = this.#ctx.db.prepare(`PRAGMA max_page_count = ${want}`).get();
    this.#maxPagesWanted = want;
    this.#maxPagesSet = Number(row?.max_page_count ?? want);
  }
}
