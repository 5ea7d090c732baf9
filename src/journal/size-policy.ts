/**
 * The size policy: the journal (main file plus WAL) never grows past maxBytes.
 *
 * Budget: the WAL gets a reserve (a quarter of maxBytes, between 256 KiB and 64 MiB) and the
 * main file the rest, enforced as `PRAGMA max_page_count` (a hard stop: SQLite refuses to grow
 * the file past it with SQLITE_FULL, so an estimate that is off can never break the bound).
 * The WAL stays inside its reserve because (a) it is checkpointed with TRUNCATE as soon as it
 * passes a quarter of the reserve, and (b) a group commit's rows are kept under an eighth of
 * the reserve, so one transaction's frames fit in what is left.
 *
 * Room: before a group's rows are inserted (in the same transaction) used pages
 * (page_count - freelist_count) plus the group's estimate must fit maxPages. If not, records
 * are deleted, oldest first, in this order: records the publisher is done with (at or below
 * its cursor); then the oldest pending records (above the cursor), counted as dropped, the
 * cursor moving past them. Once pending events must go, an extra 1/32 of the journal is freed,
 * so a full journal drops in rounds (one overflow notice per round) rather than one event per
 * commit. Freed pages go to the freelist and are reused by the inserts, so the file does not
 * grow. Records acknowledged out of order above the cursor go with their neighbours (the
 * caller does not count those as dropped).
 *
 * Every delete here takes a prefix in sequence order (records done first is the prefix up to
 * the cursor; the oldest pending come only once nothing is left below it), so the hash chain
 * stays whole from the oldest kept record; the last record removed is marked in meta
 * (chain.ts, chain_pruned_through) in the same transaction.
 *
 * Overflow notices: the commit that drops events appends a `plc2mqtt.journal.overflow` event
 * in the same transaction, after the deletes, so it is never lost to its own round. A later
 * round may drop an older notice like any other event; its own notice then counts it and
 * names the oldest sequence kept, so the consumer still learns where the stream resumes.
 *
 * A full file system is the same limit (disk-space.ts has the rule): the budget is
 * sizeBudget(effective), effective = min(max_bytes, capacity - DISK_SLACK) - reserve, where
 * capacity is what the journal's files hold plus what the file system has available, and
 * reserve the size of journal.reserve (reserveBytes below), counted inside max_bytes. So the
 * order above (published first, then the oldest pending, announced) is the order at a full
 * disk too, and the WAL's reserve is room that stays free on the disk.
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { PruneMark } from "./chain.ts";
import { PAGE_SIZE } from "./store.ts";

const KiB = 1024;
const MiB = 1024 * KiB;

export interface SizeBudget {
  maxBytes: number;
  pageSize: number;
  /** Hard stop for the main file (PRAGMA max_page_count). */
  maxPages: number;
  /** Room kept for the WAL beside the main file. */
  walReserveBytes: number;
  /** Pages freed beyond the need once pending records must go (a round; 0: just the need). */
  dropRoundPages: number;
  /** Checkpoint (TRUNCATE) once the WAL is bigger than this. */
  walCheckpointBytes: number;
  /** Estimated row bytes one group commit may insert. */
  groupBytes: number;
  /** Rows one retention transaction deletes. */
  deleteChunkRows: number;
}

export function sizeBudget(maxBytes: number, pageSize = PAGE_SIZE): SizeBudget {
  const walReserve = Math.min(64 * MiB, Math.max(256 * KiB, Math.floor(maxBytes / 4)));
  const reserve = Math.min(walReserve, Math.floor(maxBytes / 2));
  const groupBytes = Math.floor(reserve / 8);
  const maxPages = Math.max(16, Math.floor((maxBytes - reserve) / pageSize));
  return {
    maxBytes,
    pageSize,
    maxPages,
    walReserveBytes: reserve,
    dropRoundPages: Math.ceil(maxPages / 32),
    walCheckpointBytes: Math.floor(reserve / 4),
    groupBytes,
    deleteChunkRows: Math.max(50, Math.min(5000, Math.floor(groupBytes / 200))),
  };
}

/** What the budget leaves outside of it on a full disk: -shm growth, journal.seq, rounding. */
export const DISK_SLACK = 256 * KiB;
/** The smallest budget the disk may set (below it every batch would be refused as too large). */
const MIN_EFFECTIVE = 512 * KiB;

/**
 * The size of journal.reserve (disk-space.ts) for a journal of `maxBytes`: one group commit's
 * WAL frames and room for the -shm file, between 256 KiB and 16 MiB.
 */
export function reserveBytes(maxBytes: number, pageSize = PAGE_SIZE): number {
  const { groupBytes } = sizeBudget(maxBytes, pageSize);
  const bytes = pagesFor(groupBytes, pageSize) * pageSize + 64 * KiB;
  return Math.min(16 * MiB, Math.max(256 * KiB, bytes));
}

/**
 * The budget on a file system that has `capacity` bytes for the journal (its files plus what
 * is available; Infinity: the disk is no limit): max_bytes or the disk, whichever is smaller,
 * less the reserve.
 */
export function effectiveBudget(
  maxBytes: number,
  capacity: number,
  pageSize = PAGE_SIZE,
): { budget: SizeBudget; reserve: number; diskBound: boolean } {
  const reserve = reserveBytes(Math.min(maxBytes, capacity), pageSize);
  const disk = capacity - DISK_SLACK;
  const bound = Math.max(MIN_EFFECTIVE, Math.min(maxBytes, disk) - reserve);
  return { budget: sizeBudget(bound, pageSize), reserve, diskBound: disk < maxBytes };
}

/** Pages an estimated number of row bytes may need (b-tree pages are not full). */
export function pagesFor(bytes: number, pageSize: number): number {
  return Math.ceil((bytes * 1.6) / pageSize) + 4;
}

export interface RoomResult {
  ok: boolean;
  /** Records above the cursor deleted that were not acknowledged: events lost to the policy. */
  dropped: number;
  /** Every record deleted above the cursor (dropped, and acknowledged out of order). */
  deletedAbove: number;
  /** The highest sequence deleted above the cursor (the cursor moves there); else the cursor. */
  droppedThrough: bigint;
}

export interface RoomStatements {
  pageCount: StatementSync;
  freelist: StatementSync;
  /** The last record of the next chunk (the oldest `chunk` records) below a sequence. */
  chunkEndBelow: StatementSync;
  deleteThrough: StatementSync;
  deleteOldestFrom: StatementSync;
  prune: PruneMark;
}

export function roomStatements(db: DatabaseSync): RoomStatements {
  const deleteOldestFrom = db.prepare(
    `DELETE FROM records WHERE sequence IN (SELECT sequence FROM records WHERE sequence >= ?
       ORDER BY sequence LIMIT ?) RETURNING sequence, hash`,
  );
  deleteOldestFrom.setReadBigInts(true);
  // published records go by a range delete that returns nothing: the chain's prune mark needs
  // only the last one (a RETURNING row per record, its hash a buffer of its own, cost a
  // full journal about a microsecond per event; `node test/bench/journal-cost.ts 20 /tmp 50 16`)
  const chunkEndBelow = db.prepare(
    `SELECT sequence, hash FROM records WHERE sequence = (SELECT max(sequence) FROM
       (SELECT sequence FROM records WHERE sequence < ? ORDER BY sequence LIMIT ?))`,
  );
  chunkEndBelow.setReadBigInts(true);
  return {
    pageCount: db.prepare("PRAGMA page_count"),
    freelist: db.prepare("PRAGMA freelist_count"),
    chunkEndBelow,
    deleteThrough: db.prepare("DELETE FROM records WHERE sequence <= ?"),
    deleteOldestFrom,
    prune: new PruneMark(db),
  };
}

export function usedPages(s: RoomStatements): number {
  const pages = Number(s.pageCount.get()?.page_count ?? 0);
  const free = Number(s.freelist.get()?.freelist_count ?? 0);
  return pages - free;
}

/**
 * Deletes records until `needPages` more fit under maxPages. Runs inside the caller's write
 * transaction; the caller rolls back when the result is not ok (nothing fits even empty).
 */
export function makeRoom(
  s: RoomStatements,
  needPages: number,
  budget: SizeBudget,
  chunkRows: number,
  done: bigint,
  acked: (sequence: bigint) => boolean = () => false,
): RoomResult {
  let dropped = 0;
  let deletedAbove = 0;
  let through = done;
  let need = needPages;
  let last: { sequence: bigint; hash: unknown } | undefined;
  const note = (rows: Record<string, unknown>[]) => {
    for (const row of rows) {
      const sequence = row.sequence as bigint;
      if (last === undefined || sequence > last.sequence) last = { sequence, hash: row.hash };
    }
  };
  while (usedPages(s) + need > budget.maxPages) {
    const end = s.chunkEndBelow.get(through + 1n, chunkRows);
    if (end !== undefined) {
      s.deleteThrough.run(end.sequence as bigint);
      note([end]);
      continue;
    }
    if (dropped === 0) need = Math.min(budget.maxPages, needPages + budget.dropRoundPages);
    const gone = s.deleteOldestFrom.all(through + 1n, chunkRows);
    if (gone.length === 0) break;
    note(gone);
    deletedAbove += gone.length;
    for (const row of gone) {
      const sequence = row.sequence as bigint;
      if (!acked(sequence)) dropped++;
      if (sequence > through) through = sequence;
    }
  }
  if (last !== undefined) s.prune.mark(last.sequence, last.hash);
  // Emptied: the group may still fit without the extra round.
  const ok = usedPages(s) + needPages <= budget.maxPages;
  return { ok, dropped, deletedAbove, droppedThrough: through };
}
