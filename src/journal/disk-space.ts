/**
 * The journal on a file system that fills up (PRODUCT.md guarantee 5, issue 12.6): a full file
 * system is treated exactly like journal.max_bytes.
 *
 * The rule (the effective budget, size-policy.ts effectiveBudget): before every group commit,
 * and at open, the journal measures
 *   capacity  = the blocks its own files hold (journal.sqlite, -wal, -shm, journal.seq,
 *               journal.reserve) + what the file system has available (statfs f_bavail, so
 *               blocks ext4 keeps for root stay out of it)
 * and runs its size policy on
 *   effective = min(max_bytes, capacity - DISK_SLACK) - reserve
 * Capacity does not change when the journal writes or frees (its files and the free space
 * trade bytes), only when something else on the file system does. So the journal reaches the
 * disk's limit the way it reaches max_bytes: published records are freed first, then the
 * oldest pending ones are dropped (counted, announced by an overflow event), new events go
 * on being committed, and its own writes (WAL frames, the pages a checkpoint copies into the
 * main file) always find the room the budget kept for them. DISK_SLACK (256 KiB) is what the
 * budget does not count: the -shm file's growth, journal.seq's rewrite, rounding.
 *
 * The reserve, `journal.reserve`: a file of `reserve` bytes (size-policy.ts reserveBytes: about
 * one group commit's WAL frames, 256 KiB to 16 MiB), counted inside max_bytes, written with
 * random bytes (a compressing file system cannot make it smaller) and fsync'd. It is the room
 * the journal lives on when the disk fills behind its back (another process took the space
 * between two measurements) or when a gateway starts on a disk that is already full: opening
 * needs room for the -shm file, a commit needs room in the WAL even to DELETE, a checkpoint
 * needs room in the main file for the pages it copies. When a write fails for want of room
 * (SQLITE_FULL or ENOSPC, or an I/O error while the file system has no room left) and the
 * disk has no room for the WAL, the reserve is deleted (release()), the journal is brought
 * under the new budget in steps that fit the room there is (full-disk.ts), and the reserve is
 * written again (keep()) as soon as the file system has room for it beside the budget.
 *
 * Why both, measured on a 3 MiB tmpfs (test/journal/full-disk.test.ts): with the measured
 * budget alone, the journal runs into the disk's limit and goes on, but the first commit
 * after a filler took the last bytes fails for good (nothing can commit even a DELETE), and a
 * journal closed on a full disk does not open (SQLITE_IOERR_SHMSIZE); with the reserve alone,
 * the journal fills the disk, releases the reserve, and has no budget to shrink to: the
 * commit after fails again. A measurement costs about 35 us (statfs and six stats): group
 * commits reuse one up to 100 ms old (journal.ts).
 *
 * When statfs fails (a file system that does not answer it), the disk is not a limit and
 * max_bytes alone applies (logged once). The first measurement that finds the disk, not max_bytes,
 * setting the budget (diskBound) logs a warning (issue 14), with both figures.
 */
import { randomBytes } from "node:crypto";
import {
  closeSync,
  fsyncSync,
  ftruncateSync,
  openSync,
  rmSync,
  statfsSync,
  statSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type { Logger } from "../lib/logger.ts";
import { DISK_SLACK, effectiveBudget, type SizeBudget } from "./size-policy.ts";

/** The reserve file's name, in the journal's folder. */
export function reservePath(dir: string): string {
  return join(dir, "journal.reserve");
}

/** The journal's files that take room on the file system (journal.sqlite is `path`). */
function ownFiles(dir: string, path: string): string[] {
  return [
    path,
    `${path}-wal`,
    `${path}-shm`,
    join(dir, "journal.seq"),
    join(dir, "journal.seq.tmp"),
    reservePath(dir),
  ];
}

/** Bytes the file holds on the disk (allocated blocks), 0 when it does not exist. */
function allocated(path: string): number {
  const s = statSync(path, { throwIfNoEntry: false });
  if (!s) return 0;
  return s.blocks > 0 || s.size === 0 ? s.blocks * 512 : s.size;
}

export interface SpaceReport {
  /** What the file system has available, bytes (Infinity when statfs fails). */
  free: number;
  /** The journal's files plus `free`. */
  capacity: number;
  /** Whether the disk, not max_bytes, sets the budget now. */
  diskBound: boolean;
}

export class DiskSpace {
  readonly #dir: string;
  readonly #path: string;
  readonly #maxBytes: number;
  readonly #log: Logger;
  readonly #reservePath: string;
  #budget: SizeBudget;
  #reserve: number;
  #report: SpaceReport = {
    free: Number.POSITIVE_INFINITY,
    capacity: Number.POSITIVE_INFINITY,
    diskBound: false,
  };
  #statfsFailed = false;
  /** The warning that max_bytes is more than the file system holds: once per open. */
  #warnedSmallDisk = false;
  #measuredAt = Number.NEGATIVE_INFINITY;
  /** Size of journal.reserve as it is now (0: missing). */
  #held = 0;

  constructor(dir: string, path: string, maxBytes: number, log: Logger) {
    this.#dir = dir;
    this.#path = path;
    this.#maxBytes = maxBytes;
    this.#log = log;
    this.#reservePath = reservePath(dir);
    const initial = effectiveBudget(maxBytes, Number.POSITIVE_INFINITY);
    this.#budget = initial.budget;
    this.#reserve = initial.reserve;
    this.#held = statSync(this.#reservePath, { throwIfNoEntry: false })?.size ?? 0;
  }

  /** The budget as last measured. */
  get budget(): SizeBudget {
    return this.#budget;
  }

  /** The reserve's size for the last measured budget, bytes. */
  get reserveBytes(): number {
    return this.#reserve;
  }

  /** The last measurement. */
  get report(): SpaceReport {
    return this.#report;
  }

  /** Bytes journal.reserve holds now (0: released, or not written yet). */
  get reserveHeld(): number {
    return this.#held;
  }

  /** Whether journal.reserve is there (any size). */
  get hasReserve(): boolean {
    return this.#held > 0;
  }

  /** Bytes the file system has available now (Infinity when it cannot say). */
  free(): number {
    if (this.#statfsFailed) return Number.POSITIVE_INFINITY;
    try {
      const s = statfsSync(this.#dir);
      return s.bavail * s.bsize;
    } catch (err) {
      // the folder not made yet: no measure, no limit; a file system that cannot say: never
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return Number.POSITIVE_INFINITY;
      this.#statfsFailed = true;
      this.#log.warn(
        { err, dir: this.#dir },
        "journal: cannot measure the file system (statfs): max_bytes alone bounds the journal",
      );
      return Number.POSITIVE_INFINITY;
    }
  }

  /**
   * Whether the file system is out of room for the journal's writes. At the disk's limit the
   * budget keeps more than this free (the WAL's room, the reserve, the slack), so a write that
   * failed with more free was refused by max_page_count (the size policy's own hard stop).
   */
  short(): boolean {
    return this.free() < this.#budget.walReserveBytes / 2 + DISK_SLACK / 2;
  }

  /**
   * Measures the file system and the journal's files; returns the budget they allow. With
   * `maxAgeMs`, a measurement that recent is reused: capacity moves only when something else
   * writes to the disk (the journal's own writes trade bytes with the free space), and what
   * another process takes meanwhile is what the reserve is for. A measurement costs about
   * 35 us (statfs and six stats), a one-event commit at synchronous=FULL about 250 us.
   */
  measure(maxAgeMs = 0): SizeBudget {
    const now = performance.now();
    if (maxAgeMs > 0 && now - this.#measuredAt < maxAgeMs) return this.#budget;
    this.#measuredAt = now;
    const free = this.free();
    let own = 0;
    if (Number.isFinite(free))
      for (const file of ownFiles(this.#dir, this.#path)) own += allocated(file);
    const capacity = free + own;
    const { budget, reserve, diskBound } = effectiveBudget(this.#maxBytes, capacity);
    this.#budget = budget;
    this.#reserve = reserve;
    this.#report = { free, capacity, diskBound };
    if (!this.#warnedSmallDisk && diskBound) {
      this.#warnedSmallDisk = true;
      this.#log.warn(
        { dir: this.#dir, max_bytes: this.#maxBytes, capacity, free },
        "journal: max_bytes is larger than its file system holds: the disk is the journal's limit (when it fills, published events go first, then the oldest pending ones, announced)",
      );
    }
    return budget;
  }

  /**
   * After a write failed for want of room: when the file system has no room for the WAL,
   * deletes the reserve so the journal can commit, checkpoint and give space back. True when
   * the disk is short (whether or not a reserve was there to delete).
   */
  release(): boolean {
    if (!this.short()) return false;
    const free = this.free();
    if (this.#held > 0) {
      try {
        rmSync(this.#reservePath, { force: true });
        this.#log.warn(
          { path: this.#reservePath, bytes: this.#held, free },
          "journal: the file system is full: reserve released, making room",
        );
        this.#held = 0;
      } catch (err) {
        this.#log.error({ err, path: this.#reservePath }, "journal: cannot delete the reserve");
      }
    }
    return true;
  }

  /**
   * Writes the reserve when it is missing (or smaller than it should be) and the file system
   * has room for it beside the journal's WAL; trims one that is larger. Never throws: a
   * reserve that cannot be written now is tried again after a later commit.
   */
  keep(): void {
    const want = this.#reserve;
    if (this.#held === want) return;
    let fd: number | undefined;
    try {
      if (this.#held > want) {
        fd = openSync(this.#reservePath, "r+");
        ftruncateSync(fd, want);
        this.#held = want;
        return;
      }
      const free = this.free();
      if (free < want - this.#held + this.#budget.walReserveBytes / 2 + DISK_SLACK) return;
      fd = openSync(this.#reservePath, this.#held > 0 ? "r+" : "w", 0o644);
      const chunk = randomBytes(Math.min(1024 * 1024, want));
      for (let at = this.#held; at < want; ) {
        const n = Math.min(chunk.length, want - at);
        writeSync(fd, chunk, 0, n, at);
        at += n;
      }
      fsyncSync(fd);
      const created = this.#held === 0;
      this.#held = want;
      if (created)
        this.#log.info({ path: this.#reservePath, bytes: want }, "journal reserve written");
    } catch (err) {
      // a partial reserve is no reserve: give its bytes back, try again later
      try {
        if (fd !== undefined) closeSync(fd);
        rmSync(this.#reservePath, { force: true });
      } catch {
        // nothing more to do: measure() counts what is left of it
      }
      fd = undefined;
      this.#held = 0;
      this.#log.warn({ err, path: this.#reservePath }, "journal: cannot write the reserve yet");
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }
}
