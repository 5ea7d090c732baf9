/**
 * The journal's file layout and how a journal file is opened, checked and, when damaged, moved
 * aside. This module holds the recovery rules.
 *
 * File layout, in `<dir>` (gateway.data_dir):
 *   journal.sqlite        SQLite database, WAL mode, synchronous=FULL (a commit survives power
 *                         loss), auto_vacuum=INCREMENTAL, page_size 4096,
 *                         application_id 0x706c6332 ("plc2"), user_version 3:
 *     meta(key, value)    epoch (16 hex chars, random, created with the file), high_water (the
 *                         highest sequence ever assigned in this file, survives retention),
 *                         dropped (events dropped by the size policy, ever), created_at,
 *                         holes_below (after a salvage: sequences at or below it may be missing),
 *                         chain_pruned_through (chain.ts: sequence and hash of the last record
 *                         pruned from the front)
 *     records             one row per event, written once and never updated (but for the one
 *                         replace() of a still pending record): sequence INTEGER PRIMARY KEY,
 *                         id, type, device, subject, time (event time, ms), topic, retain,
 *                         payload (the exact bytes to publish), crc (crc32 of payload), hash
 *                         (32 bytes: the hash chain, chain.ts; NULL on rows of a user_version 2
 *                         journal written before its migration)
 *     chain_segments      where each chain segment starts and why (chain.ts)
 *     acked_ahead(sequence)  records the publisher acknowledged (or set aside) above the
 *                         cursor, out of order; written by a group commit when they changed
 *     set_aside           records the broker refused for good (set-aside.ts): sequence INTEGER
 *                         PRIMARY KEY, reason, at (ms); such a record is at or below the cursor
 *     cursors(sink, done_through)  per northbound sink (the MQTT publisher is `mqtt`): every
 *                         record with sequence <= done_through is done for it (acknowledged,
 *                         set aside, dropped by the size policy, or skipped as corrupt); the
 *                         ones above are pending. Moved forward in the group commits (on its
 *                         own after the commit interval, at least 50 ms), so a crash loses at
 *                         most that much of it (re-sent, same id).
 *     index               records_time(time), for retention and queries by time (events
 *                         arrive in about time order, so it grows at its end: cheap); queries
 *                         by device, tag or type filter what the time range or the primary key
 *                         gives. The drain reads the primary key from the cursor on. (A journal
 *                         of user_version 1 also has a published_at column, no longer written
 *                         or read, and is migrated at open.)
 *   journal.sqlite-wal    the write-ahead log (checkpointed with TRUNCATE to bound its size)
 *   journal.sqlite-shm    SQLite's WAL index (shared memory)
 *   journal.seq           the sequence ceiling (seq-file.ts): >= every committed sequence
 *   journal.reserve       room kept for a full file system (disk-space.ts): random bytes,
 *                         256 KiB to 16 MiB, counted inside max_bytes; deleted when a write
 *                         meets a full disk, written again once the disk has room for it
 *   journal.check-failed  left by a background integrity check that found damage (check.ts):
 *                         the next open runs the full check and its recovery rule
 *   journal.sqlite.corrupt-<time>[-wal|-shm]   damaged files moved aside, never deleted by us
 *
 * Why this layout (issue 12): a row is written once. Publication is a contiguous watermark per
 * sink, not an UPDATE per row, and one index is kept. Measured here (100,000 rows of 420 bytes,
 * 500 a transaction, CPU per row): primary key only 4.0 us, with the time index 4.4, with a
 * (device, subject, time) index too 10.0 (its inserts land all over the tree), with the four
 * indexes of user_version 1 10.7, before the UPDATE that marked each row published.
 *
 * synchronous=FULL vs NORMAL, measured on the dev VM (virtio disk, WAL): 1000 one-row commits
 * took 246 ms vs 16 ms; 20 commits of 1000 rows 55 ms vs 32 ms. Group commit is what makes
 * FULL affordable; cursor moves alone and retention, which may be lost, commit at NORMAL.
 *
 * Recovery rules, at open:
 *   1. A missing or empty journal.sqlite is created: new epoch, high_water = the ceiling in
 *      journal.seq (0 when there is none), so sequences continue above anything ever used.
 *      When journal.seq is unreadable, high_water starts at the time floor (microseconds since
 *      the epoch) instead. Its cursor starts at high_water: nothing is pending.
 *   2. An existing file is checked for what can be checked without reading it whole: that
 *      SQLite opens it, its application_id, tables and epoch (and, when journal.check-failed
 *      is there, with `PRAGMA quick_check`). A file that is not a SQLite database, fails the
 *      check, or is some other application's database is renamed (with its -wal and -shm) to
 *      journal.sqlite.corrupt-<time> and rule 1 applies; the error is logged. Every record
 *      still readable in it is then copied into the new journal with its own sequence and id
 *      (salvage.ts), the new cursor below the first one that was pending; what cannot be read
 *      is counted and logged. high_water is raised over the copied records.
 *      Once the journal is open, `PRAGMA quick_check` runs in a worker thread on a read-only
 *      connection (check.ts), so a gateway with a large backlog is ready in a second, not after
 *      reading the whole file: damage found then is logged, reported by health, and left for
 *      the next open (journal.check-failed). Damage met while reading a record is skipped and
 *      counted at once, as before.
 *   3. A WAL left by a crash is replayed by SQLite: every commit that returned is there.
 *   4. high_water = max(meta.high_water, max(sequence)): sequences never go backwards.
 *   5. A journal of user_version 1 is migrated in one transaction: the cursor is set below its
 *      first unpublished record (published_at IS NULL; a record published out of order above
 *      it is sent again, with its id: a duplicate MQTT allows), the indexes but records_time
 *      are dropped, user_version becomes 2. Every open creates the set_aside table when it is
 *      missing.
 *   5b. A journal of user_version 2 gets the hash column (ALTER TABLE ... ADD COLUMN: no
 *      rewrite, its rows keep a NULL hash) and a chain segment of kind `migrated` starting at
 *      the next sequence, in one transaction; user_version becomes 3. Nothing is read whole.
 *   6. On a full file system the open itself can fail for want of room (SQLite
 *      cannot grow the -shm file: SQLITE_IOERR_SHMSIZE, or a WAL frame: SQLITE_FULL): then
 *      journal.reserve is deleted and the open tried once more. The journal is then brought
 *      under the budget the disk allows (full-disk.ts: published records first, then the
 *      oldest pending, announced) before it takes appends. A folder with no reserve (a first
 *      start, or a journal of an older version) on a disk with no room left cannot open:
 *      JOURNAL_FULL, naming the file.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import type { Logger } from "../lib/logger.ts";
import { addSegment, CHAIN_SEGMENTS_SCHEMA } from "./chain.ts";
import { type SalvageReport, salvageInto } from "./salvage.ts";
import { readSeqCeiling } from "./seq-file.ts";
import { SET_ASIDE_SCHEMA } from "./set-aside.ts";
import { isCorruption, isIoError, isOutOfRoom, journalError } from "./sqlite-errors.ts";

export const APPLICATION_ID = 0x706c6332;
export const SCHEMA_VERSION = 3;
/** The northbound sink whose progress the journal keeps (one row of `cursors`). */
export const MQTT_SINK = "mqtt";
export const PAGE_SIZE = 4096;
/** How long a statement waits for a lock held by another process before failing, ms. */
export const BUSY_TIMEOUT_MS = 250;

export function journalPath(dir: string): string {
  return join(dir, "journal.sqlite");
}

const ACKED_AHEAD_SCHEMA =
  "CREATE TABLE IF NOT EXISTS acked_ahead (sequence INTEGER PRIMARY KEY) WITHOUT ROWID";

const SCHEMA = `
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE records (
  sequence INTEGER PRIMARY KEY,
  id TEXT NOT NULL,
  type TEXT NOT NULL,
  device TEXT NOT NULL,
  subject TEXT NOT NULL,
  time INTEGER NOT NULL,
  topic TEXT NOT NULL,
  retain INTEGER NOT NULL,
  payload TEXT NOT NULL,
  crc INTEGER NOT NULL,
  hash BLOB
);
CREATE INDEX records_time ON records(time);
CREATE TABLE cursors (sink TEXT PRIMARY KEY, done_through INTEGER NOT NULL) WITHOUT ROWID;
${ACKED_AHEAD_SCHEMA};
${SET_ASIDE_SCHEMA};
${CHAIN_SEGMENTS_SCHEMA};
`;

export interface OpenedStore {
  db: DatabaseSync;
  path: string;
  epoch: string;
  highWater: bigint;
  dropped: number;
  /** The MQTT sink's cursor: every record at or below it is done. */
  done: bigint;
  /** Sequences at or below this may be missing (after a salvage); 0 when none. */
  holesBelow: bigint;
  /** Acknowledged (or set aside) above the cursor. */
  ackedAhead: bigint[];
  /** Where a damaged file was moved, when rule 2 applied. */
  movedAside?: string;
  /** What was copied from it (salvage.ts). */
  salvaged?: SalvageReport;
}

class NotAJournal extends Error {}

/**
 * Opens the journal in `dir` (the recovery rules above). `release`: called when the open failed
 * for want of room (a full disk: the -shm file cannot grow, the WAL cannot take a frame); true
 * when the disk is short and room was given back (journal.reserve, disk-space.ts): the open is
 * tried once more.
 */
export function openStore(
  dir: string,
  log: Logger,
  release: () => boolean = () => false,
): OpenedStore {
  try {
    return openOnce(dir, log);
  } catch (err) {
    if (!(isOutOfRoom(err) || isIoError(err)) || !release()) throw err;
    log.warn(
      { err, dir },
      "journal: opening on a full file system: trying again with the reserve's room",
    );
    return openOnce(dir, log);
  }
}

function openOnce(dir: string, log: Logger): OpenedStore {
  const path = journalPath(dir);
  try {
    makeDir(dir, 32);
  } catch (err) {
    throw journalError("creating the journal folder", dir, err);
  }
  const fullCheck = existsSync(checkFailedPath(dir));
  let movedAside: string | undefined;
  let db: DatabaseSync | undefined;
  try {
    db = openChecked(path, fullCheck);
  } catch (err) {
    db = undefined;
    if (!(err instanceof NotAJournal) && !isCorruption(err)) {
      throw journalError("opening the journal", path, err);
    }
    movedAside = moveAside(path);
    log.error({ err, path, moved_to: movedAside }, "journal damaged: moved aside, starting anew");
    try {
      db = openChecked(path, false);
    } catch (again) {
      throw journalError("creating a new journal", path, again);
    }
  }
  if (fullCheck) rmSync(checkFailedPath(dir), { force: true });
  try {
    const state = initialise(db, dir);
    if (movedAside === undefined) return { ...state, db, path };
    const salvaged = salvageInto(movedAside, db, log, state.highWater + 1n);
    log.error(
      { ...salvaged, from: movedAside },
      "journal salvage: records copied from the damaged file",
    );
    const highWater = raiseHighWater(db, state.highWater);
    // the salvaged records sit below the new journal's first sequence, with a gap up to it
    const done = salvaged.copied > 0 ? salvaged.doneThrough : state.done;
    const holesBelow = salvaged.copied > 0 ? state.highWater : 0n;
    setCursorAndHoles(db, done, holesBelow);
    return { ...state, highWater, done, holesBelow, db, path, movedAside, salvaged };
  } catch (err) {
    db.close();
    throw journalError("initialising the journal", path, err);
  }
}

/** The marker a background check leaves when it found damage (check.ts). */
export function checkFailedPath(dir: string): string {
  return join(dir, "journal.check-failed");
}

/** After a salvage: high_water covers the copied records too, so no sequence is used twice. */
function raiseHighWater(db: DatabaseSync, highWater: bigint): bigint {
  const stmt = db.prepare("SELECT max(sequence) AS m FROM records");
  stmt.setReadBigInts(true);
  const max = (stmt.get()?.m as bigint | null) ?? 0n;
  if (max <= highWater) return highWater;
  db.prepare("UPDATE meta SET value = ? WHERE key = 'high_water'").run(max.toString());
  return max;
}

function setCursorAndHoles(db: DatabaseSync, done: bigint, holesBelow: bigint): void {
  db.prepare("INSERT OR REPLACE INTO cursors(sink, done_through) VALUES (?, ?)").run(
    MQTT_SINK,
    done,
  );
  db.prepare("INSERT OR REPLACE INTO meta(key, value) VALUES ('holes_below', ?)").run(
    holesBelow.toString(),
  );
}

/**
 * Opens the file and checks what can be checked without reading it whole (or, `full`, with
 * PRAGMA quick_check): an intact journal, or a new, empty database.
 */
function openChecked(path: string, full: boolean): DatabaseSync {
  const db = new DatabaseSync(path, {
    timeout: BUSY_TIMEOUT_MS,
    enableForeignKeyConstraints: false,
  });
  try {
    if (full) {
      const check = db.prepare("PRAGMA quick_check").all();
      const first = check[0]?.quick_check;
      if (check.length !== 1 || first !== "ok") {
        throw new NotAJournal(`quick_check: ${check.map((r) => String(r.quick_check)).join("; ")}`);
      }
    }
    const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").all();
    if (tables.length > 0) {
      const appId = db.prepare("PRAGMA application_id").get()?.application_id;
      const names = new Set(tables.map((t) => t.name));
      if (appId !== APPLICATION_ID || !names.has("meta") || !names.has("records")) {
        throw new NotAJournal("not a plc2mqtt journal (application_id or tables differ)");
      }
      const epoch = db.prepare("SELECT value FROM meta WHERE key = 'epoch'").get()?.value;
      if (typeof epoch !== "string" || !/^[0-9a-f]{16}$/.test(epoch)) {
        throw new NotAJournal("journal meta has no valid epoch");
      }
      // the first and last pages of the records b-tree: a torn file fails here, cheaply
      db.prepare("SELECT min(sequence), max(sequence) FROM records").get();
    }
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/**
 * Where a new journal's sequence starts when the ceiling file is unreadable, so nothing on disk
 * can say what was used before: microseconds since the epoch, above any sequence this folder
 * can have handed out, so numbers are skipped but never reused.
 */
function timeFloor(): bigint {
  return BigInt(Date.now()) * 1000n;
}

type Initialised = Omit<OpenedStore, "db" | "path">;

function initialise(db: DatabaseSync, dir: string): Initialised {
  const fresh = db.prepare("SELECT count(*) AS n FROM sqlite_schema").get()?.n === 0;
  if (fresh) return create(db, dir);
  db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;");
  const version = Number(db.prepare("PRAGMA user_version").get()?.user_version ?? 0);
  if (version < 2) migrate(db);
  if (version < SCHEMA_VERSION) addChain(db);
  db.exec(`${SET_ASIDE_SCHEMA}; ${ACKED_AHEAD_SCHEMA}`);
  const meta = new Map<string, string>();
  for (const row of db.prepare("SELECT key, value FROM meta").all()) {
    meta.set(String(row.key), String(row.value));
  }
  const bigMeta = (key: string) =>
    /^\d+$/.test(meta.get(key) ?? "") ? BigInt(meta.get(key)!) : 0n;
  const maxStmt = db.prepare("SELECT max(sequence) AS m FROM records");
  maxStmt.setReadBigInts(true);
  const maxSeq = (maxStmt.get()?.m as bigint | null) ?? 0n;
  const stored = bigMeta("high_water");
  const highWater = stored > maxSeq ? stored : maxSeq;
  const cursor = db.prepare("SELECT done_through AS d FROM cursors WHERE sink = ?");
  cursor.setReadBigInts(true);
  const done = (cursor.get(MQTT_SINK)?.d as bigint | undefined) ?? highWater;
  const ahead = db.prepare("SELECT sequence FROM acked_ahead UNION SELECT sequence FROM set_aside");
  ahead.setReadBigInts(true);
  const ackedAhead = ahead
    .all()
    .map((r) => r.sequence as bigint)
    .filter((s) => s > done);
  return {
    ackedAhead,
    epoch: meta.get("epoch")!,
    highWater,
    dropped: Number(meta.get("dropped") ?? "0") || 0,
    done: done > highWater ? highWater : done,
    holesBelow: bigMeta("holes_below"),
  };
}

function create(db: DatabaseSync, dir: string): Initialised {
  const stored = readSeqCeiling(dir);
  // journal.seq exists once anything was ever committed here: missing means a first start
  const ceiling = stored === undefined ? timeFloor() : stored;
  db.exec(`PRAGMA page_size = ${PAGE_SIZE}; PRAGMA auto_vacuum = INCREMENTAL;`);
  db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;");
  const epoch = randomBytes(8).toString("hex");
  db.exec("BEGIN IMMEDIATE");
  try {
    db.exec(SCHEMA);
    db.exec(`PRAGMA application_id = ${APPLICATION_ID}; PRAGMA user_version = ${SCHEMA_VERSION};`);
    const put = db.prepare("INSERT INTO meta(key, value) VALUES (?, ?)");
    put.run("epoch", epoch);
    put.run("high_water", ceiling.toString());
    put.run("dropped", "0");
    put.run("created_at", new Date().toISOString());
    db.prepare("INSERT INTO cursors(sink, done_through) VALUES (?, ?)").run(MQTT_SINK, ceiling);
    addSegment(db, { start: ceiling + 1n, kind: "new" });
    db.exec("COMMIT");
  } catch (err) {
    db.exec("ROLLBACK");
    throw err;
  }
  return { epoch, highWater: ceiling, dropped: 0, done: ceiling, holesBelow: 0n, ackedAhead: [] };
}

/** Recovery rule 5: user_version 1 (a publish mark per row) to 2 (a cursor per sink). */
function migrate(db: DatabaseSync): void {
  const columns = db.prepare("PRAGMA table_info(records)").all();
  const marked = columns.some((c) => c.name === "published_at");
  db.exec("BEGIN IMMEDIATE");
  try {
    const first = db.prepare(
      marked
        ? "SELECT min(sequence) AS m FROM records WHERE published_at IS NULL"
        : "SELECT min(sequence) AS m FROM records",
    );
    first.setReadBigInts(true);
    const last = db.prepare(
      "SELECT max(sequence) AS m, (SELECT value FROM meta WHERE key = 'high_water') AS h FROM records",
    );
    last.setReadBigInts(true);
    const pendingFrom = first.get()?.m as bigint | null;
    const top = last.get();
    const highWater =
      BigInt(String(top?.h ?? 0)) > ((top?.m as bigint | null) ?? 0n)
        ? BigInt(String(top?.h ?? 0))
        : ((top?.m as bigint | null) ?? 0n);
    const done = pendingFrom === null || pendingFrom === undefined ? highWater : pendingFrom - 1n;
    db.exec(
      "CREATE TABLE IF NOT EXISTS cursors (sink TEXT PRIMARY KEY, done_through INTEGER NOT NULL) WITHOUT ROWID",
    );
    // a file that has its cursor already keeps it
    db.prepare("INSERT OR IGNORE INTO cursors(sink, done_through) VALUES (?, ?)").run(
      MQTT_SINK,
      done,
    );
    db.exec(
      "DROP INDEX IF EXISTS records_pending; DROP INDEX IF EXISTS records_type; DROP INDEX IF EXISTS records_device;",
    );
    db.exec("PRAGMA user_version = 2");
    db.exec("COMMIT");
  } catch (err) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw err;
  }
}

/**
 * Recovery rule 5b: user_version 2 to 3 (the hash chain). The column is added without a
 * rewrite; the chain starts at the next sequence (segment `migrated`).
 */
function addChain(db: DatabaseSync): void {
  db.exec("BEGIN IMMEDIATE");
  try {
    const columns = db.prepare("PRAGMA table_info(records)").all();
    if (!columns.some((c) => c.name === "hash"))
      db.exec("ALTER TABLE records ADD COLUMN hash BLOB");
    db.exec(CHAIN_SEGMENTS_SCHEMA);
    const top = db.prepare(
      "SELECT max(sequence) AS m, (SELECT value FROM meta WHERE key = 'high_water') AS h FROM records",
    );
    top.setReadBigInts(true);
    const row = top.get();
    const max = (row?.m as bigint | null) ?? 0n;
    const stored = /^\d+$/.test(String(row?.h ?? "")) ? BigInt(String(row?.h)) : 0n;
    const highWater = stored > max ? stored : max;
    addSegment(db, {
      start: highWater + 1n,
      kind: "migrated",
      prevSequence: row?.m === null ? null : max,
    });
    db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
    db.exec("COMMIT");
  } catch (err) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw err;
  }
}

/** Renames the journal and its -wal/-shm to `<name>.corrupt-<time>`; returns the new name. */
function moveAside(path: string): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const target = `${path}.corrupt-${stamp}`;
  try {
    renameSync(path, target);
    for (const suffix of ["-wal", "-shm"]) {
      if (existsSync(path + suffix)) renameSync(path + suffix, target + suffix);
    }
  } catch (err) {
    throw journalError("moving a damaged journal aside", path, err);
  }
  return target;
}

/**
 * mkdir -p. Not `mkdirSync(dir, { recursive: true })`: on Node 24 that never returns for a
 * path under /proc (the kernel answers ENOENT for a parent that exists, and Node's recursive
 * mkdir retries forever); here a parent is created once, then the error stands.
 */
function makeDir(dir: string, depth: number): void {
  try {
    mkdirSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EEXIST" && statSync(dir).isDirectory()) return;
    const parent = dirname(dir);
    if (code !== "ENOENT" || depth <= 0 || parent === dir) throw err;
    makeDir(parent, depth - 1);
    mkdirSync(dir);
  }
}

/** Size of a file in bytes, 0 when it does not exist. */
export function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}
