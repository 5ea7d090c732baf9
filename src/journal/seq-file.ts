/**
 * The sequence ceiling side file `<dir>/journal.seq`: one line of decimal digits, a number at
 * least as high as every sequence ever committed to any journal file in this folder. It
 * outlives journal.sqlite (a corrupt file moved aside, or one deleted by hand), so a new
 * journal continues above it and sequences never go backwards.
 *
 * Invariant: the ceiling is written (write tmp, fsync, rename, fsync dir) BEFORE a commit that
 * would assign a sequence above it, and it is raised a block at a time, so it costs one fsync
 * per SEQ_RESERVE_BLOCK events. A new journal that starts from it leaves a gap of at most one
 * block: sequences skip, they are never reused.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { join } from "node:path";

/** How far past the needed sequence the ceiling is raised each time. */
export const SEQ_RESERVE_BLOCK = 100_000n;

export function seqFilePath(dir: string): string {
  return join(dir, "journal.seq");
}

/** The stored ceiling; 0n when the file is missing; undefined when it is unreadable garbage. */
export function readSeqCeiling(dir: string): bigint | undefined {
  let text: string;
  try {
    text = readFileSync(seqFilePath(dir), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return 0n;
    throw err;
  }
  const trimmed = text.trim();
  return /^\d{1,20}$/.test(trimmed) ? BigInt(trimmed) : undefined;
}

/** Durably replaces the ceiling. Throws the fs error (ENOSPC, EROFS...) on failure. */
export function writeSeqCeiling(dir: string, ceiling: bigint): void {
  const path = seqFilePath(dir);
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, "w", 0o644);
  try {
    writeSync(fd, `${ceiling}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dirFd = openSync(dir, "r");
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}
