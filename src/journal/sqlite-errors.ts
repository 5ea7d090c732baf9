/**
 * Turns node:sqlite and fs errors into the journal's user-facing GatewayErrors: a full disk
 * (SQLITE_FULL, ENOSPC, a -shm file that cannot grow) or a journal at its size limit is
 * JOURNAL_FULL; anything else the disk refuses (read-only,
 * I/O error, locked by another process, cannot open) is JOURNAL_IO. Each names the file.
 */
import { GatewayError } from "../lib/errors.ts";

/** SQLite primary result codes (https://sqlite.org/rescode.html). */
export const SQLITE = {
  BUSY: 5,
  LOCKED: 6,
  READONLY: 8,
  IOERR: 10,
  CORRUPT: 11,
  FULL: 13,
  CANTOPEN: 14,
  NOTADB: 26,
} as const;

/** The primary SQLite result code of an error thrown by node:sqlite, if it is one. */
export function sqliteCode(err: unknown): number | undefined {
  const errcode = (err as { errcode?: unknown } | null)?.errcode;
  return typeof errcode === "number" ? errcode & 0xff : undefined;
}

export function isCorruption(err: unknown): boolean {
  const code = sqliteCode(err);
  return code === SQLITE.CORRUPT || code === SQLITE.NOTADB;
}

/** SQLITE_IOERR_SHMSIZE: the -shm file could not grow (what a full file system gives at open). */
const IOERR_SHMSIZE = SQLITE.IOERR | (19 << 8);

/** A write refused for want of room: SQLITE_FULL, ENOSPC, or the -shm file unable to grow. */
export function isFull(err: unknown): boolean {
  const errcode = (err as { errcode?: unknown } | null)?.errcode;
  return (
    sqliteCode(err) === SQLITE.FULL ||
    errcode === IOERR_SHMSIZE ||
    (err as NodeJS.ErrnoException | null)?.code === "ENOSPC"
  );
}

/** isFull(), also through a GatewayError made of one (JOURNAL_FULL). */
export function isOutOfRoom(err: unknown): boolean {
  if (err instanceof GatewayError) return err.code === "JOURNAL_FULL" || isOutOfRoom(err.cause);
  return isFull(err);
}

/** Any SQLite I/O error (on a file system with no room left: a full disk in disguise). */
export function isIoError(err: unknown): boolean {
  if (err instanceof GatewayError) return isIoError(err.cause);
  return sqliteCode(err) === SQLITE.IOERR;
}

/** Wraps a storage error for the user: what was being done, on which file, and why. */
export function journalError(action: string, path: string, err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  const reason =
    (err as { errstr?: string } | null)?.errstr ??
    (err instanceof Error ? err.message : String(err));
  const code = sqliteCode(err);
  const details = { path, sqlite_code: code, errno: (err as NodeJS.ErrnoException)?.code };
  if (isFull(err)) {
    return new GatewayError("JOURNAL_FULL", `${action} failed: ${path} is full (${reason})`, {
      cause: err,
      details,
    });
  }
  const hint =
    code === SQLITE.BUSY || code === SQLITE.LOCKED
      ? " (locked by another process?)"
      : code === SQLITE.READONLY
        ? " (read-only file system or file?)"
        : "";
  return new GatewayError("JOURNAL_IO", `${action} failed on ${path}: ${reason}${hint}`, {
    cause: err,
    details,
  });
}
