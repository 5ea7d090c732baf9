/**
 * Records set aside: events the broker refused for good (too large, not authorized, topic or
 * payload invalid). The publisher sets such a record aside and goes on with the next one, so one
 * refused event never stalls the rest; the record stays in the journal, visible and replayable.
 *
 * Layout (layout-agnostic on purpose: one table beside the records, keyed by sequence):
 *   set_aside(sequence INTEGER PRIMARY KEY, reason TEXT NOT NULL, at INTEGER NOT NULL)
 * created at open in every journal (store.ts, schema version 2; an older journal gets the
 * table then).
 *
 * Rules:
 * - Journal.setAside(sequence, reason) acknowledges the record for the publisher (its cursor
 *   moves over it like over a published one: the drain and the pending count leave it out) and
 *   adds its set_aside row in the next group commit, with the cursor. The row is written only
 *   for a record still in the journal. Losing both in a crash before the commit only means the
 *   record is sent, and refused, once more.
 * - The set_aside row is what makes a record "set aside" rather than published: queries join
 *   it (records LEFT JOIN set_aside), a set-aside record carries `setAside` and is not
 *   `published`, and the readers' `published` status leaves it out, so a plain replay never
 *   sends it.
 * - Retention and the size policy see a set-aside record as published (it is at or below the
 *   cursor): it leaves the journal with the published records. Its row then is an orphan,
 *   deleted with the next retention run and never counted.
 * - clearSetAside() (replay --set-aside, another process than the daemon) deletes the rows of
 *   records the broker has now acknowledged, in one short write transaction beside the
 *   daemon's (WAL: it waits for the daemon's commit, up to a timeout): they are published from
 *   then on. The daemon keeps no in-memory copy of these rows: its counts follow at once.
 */
import { existsSync } from "node:fs";
import { DatabaseSync, type SQLInputValue, type StatementSync } from "node:sqlite";
import { pathToFileURL } from "node:url";
import { journalError } from "./sqlite-errors.ts";
import type { JournalRecord, SetAsideMark } from "./types.ts";

export const SET_ASIDE_SCHEMA =
  "CREATE TABLE IF NOT EXISTS set_aside (sequence INTEGER PRIMARY KEY, reason TEXT NOT NULL, at INTEGER NOT NULL)";

/** The set-aside columns every record query selects beside the record's own. */
export const SET_ASIDE_COLUMNS =
  "set_aside.reason AS set_aside_reason, set_aside.at AS set_aside_at";
const NO_SET_ASIDE_COLUMNS = "NULL AS set_aside_reason, NULL AS set_aside_at";

/** The FROM clause and columns of a record query, and a condition it must add (if any). */
export interface SetAsideSource {
  from: string;
  columns: string;
  where?: string;
}

/**
 * Where a record query reads from. `only`: set-aside records alone, read from the small
 * set_aside table outwards (never a scan of the records). `hasTable` false: a journal written
 * before the table existed, opened read-only (nothing in it is set aside).
 */
export function setAsideSource(only: boolean, hasTable = true): SetAsideSource {
  if (!hasTable)
    return { from: "records", columns: NO_SET_ASIDE_COLUMNS, ...(only ? { where: "0" } : {}) };
  // CROSS JOIN keeps set_aside the outer loop: its rowid is the sequence, so the order holds
  if (only)
    return { from: "set_aside CROSS JOIN records USING (sequence)", columns: SET_ASIDE_COLUMNS };
  return { from: "records LEFT JOIN set_aside USING (sequence)", columns: SET_ASIDE_COLUMNS };
}

/** The condition "not set aside" on a query from setAsideSource(false, hasTable). */
export function notSetAside(hasTable = true): string {
  return hasTable ? "set_aside.reason IS NULL" : "1";
}

/** Adds the set-aside mark of a row read with SET_ASIDE_COLUMNS to its decoded record. */
export function withSetAside(
  record: JournalRecord,
  row: Record<string, SQLInputValue>,
): JournalRecord {
  const reason = row.set_aside_reason;
  const at = row.set_aside_at;
  if (typeof reason !== "string" || (typeof at !== "number" && typeof at !== "bigint"))
    return record;
  record.setAside = { reason, at: Number(at) };
  delete record.published;
  return record;
}

export class SetAsideStatements {
  readonly #insert: StatementSync;
  readonly #count: StatementSync;
  readonly #orphans: StatementSync;

  constructor(db: DatabaseSync) {
    // only for a record still in the journal (the size policy may have dropped it)
    this.#insert = db.prepare(
      `INSERT OR REPLACE INTO set_aside (sequence, reason, at) SELECT ?, ?, ?
         WHERE EXISTS (SELECT 1 FROM records WHERE sequence = ?)`,
    );
    this.#count = db.prepare(
      `SELECT count(*) AS n FROM set_aside
         WHERE EXISTS (SELECT 1 FROM records WHERE records.sequence = set_aside.sequence)`,
    );
    this.#orphans = db.prepare(
      `DELETE FROM set_aside
         WHERE NOT EXISTS (SELECT 1 FROM records WHERE records.sequence = set_aside.sequence)`,
    );
  }

  /** Inside the commit's transaction, after the size policy. */
  add(sequence: bigint, mark: SetAsideMark): void {
    this.#insert.run(sequence, mark.reason, mark.at, sequence);
  }

  /** Set-aside records still in the journal. */
  count(): number {
    return Number(this.#count.get()?.n ?? 0);
  }

  /** Deletes the rows of records that left the journal (retention, size policy). */
  deleteOrphans(): number {
    return Number(this.#orphans.run().changes);
  }
}

/** Most a clearSetAside() waits for the daemon's write lock, ms. */
const CLEAR_BUSY_TIMEOUT_MS = 5000;

/**
 * For `replay --set-aside`: the broker acknowledged these set-aside records now, so they are
 * published and no longer set aside. Opens `<dir>/journal.sqlite` read-write (never creates
 * it), one transaction, closes. Returns how many were cleared.
 */
export function clearSetAside(path: string, sequences: readonly bigint[], _at: number): number {
  if (sequences.length === 0) return 0;
  if (!existsSync(path))
    throw journalError("clearing set-aside records", path, new Error("no journal"));
  let db: DatabaseSync;
  try {
    const url = pathToFileURL(path);
    url.searchParams.set("mode", "rw");
    db = new DatabaseSync(url, {
      timeout: CLEAR_BUSY_TIMEOUT_MS,
      enableForeignKeyConstraints: false,
    });
  } catch (err) {
    throw journalError("opening the journal to clear set-aside records", path, err);
  }
  try {
    const table = db
      .prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'set_aside'")
      .get();
    if (table === undefined) return 0;
    const remove = db.prepare("DELETE FROM set_aside WHERE sequence = ?");
    let cleared = 0;
    db.exec("BEGIN IMMEDIATE");
    try {
      for (const sequence of sequences) {
        if (remove.run(sequence).changes > 0) cleared++;
      }
      db.exec("COMMIT");
    } catch (err) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw err;
    }
    return cleared;
  } catch (err) {
    throw journalError("clearing set-aside records", path, err);
  } finally {
    db.close();
  }
}
