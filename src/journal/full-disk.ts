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
import type { DiskSpace } from "./disk-space.ts";
import type { Maintenance } from "./maintenance.ts";
import { pagesFor, type SizeBudget } from "./size-policy.ts";

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
