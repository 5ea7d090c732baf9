/**
 * The journal's file layout and how a journal file is opened, checked and, when damaged, moved
 * aside. This module holds the recovery rules.
 *
 * File layout, in `<dir>` (gateway.data_dir):
 *   journal.sqlite        SQLite database, WAL mode, synchronous=FULL (a commit survives power
 *                         loss), auto_vacuum=INCREMENTAL, page_size 4096,
 *                         application_id 0x706c6332 ("plc2"), user_version 2:
 *     meta(key, value)    epoch (16 hex chars, random, created with the file), high_water (the
 *                         highest sequence ever assigned in this file, survives retention),
 *                         dropped (events dropped by the size policy, ever), created_at
 *     records             one row per event: sequence INTEGER PRIMARY KEY, id, type, device,
 *                         subject, time (event time, ms), topic, retain, payload (the exact
 *                         bytes to publish), crc (crc32 of payload), published_at (ms; NULL while
 *                         pending; 0 = skipped as corrupt)
 *     set_aside           records the broker refused for good (set-aside.ts): sequence INTEGER
 *                         PRIMARY KEY, reason, at (ms); such a record's published_at is `at`
 *     indexes             records_pending(sequence) WHERE published_at IS NULL (the drain),
 *                         records_device(device, subject, time), records_type(type, time),
 *                         records_time(time) (queries and retention)
 *   journal.sqlite-wal    the write-ahead log (checkpointed with TRUNCATE to bound its size)
 *   journal.sqlite-shm    SQLite's WAL index (shared memory)
 *   journal.seq           the sequence ceiling (seq-file.ts): >= every committed sequence
 *   journal.sqlite.corrupt-<time>[-wal|-shm]   damaged files moved aside, never deleted by us
 *
 * synchronous=FULL vs NORMAL, measured on the dev VM (virtio disk, WAL): 1000 one-row commits
 * took 246 ms vs 16 ms; 20 commits of 1000 rows 55 ms vs 32 ms. Group commit is what makes
 * FULL affordable; publish marks and retention, which may be lost, commit at NORMAL.
 *
 * Recovery rules, at open:
 *   1. A missing or empty journal.sqlite is created: new epoch, high_water = the ceiling in
 *      journal.seq (0 when there is none), so sequences continue above anything ever used.
 *      When journal.seq is unreadable, high_water starts at the time floor (microseconds since
 *      the epoch) instead.
 *   2. An existing file is checked with `PRAGMA quick_check`, its application_id and its
 *      tables. A file that is not a SQLite database, fails the check, or is some other
 *      application's database is renamed (with its -wal and -shm) to
 *      journal.sqlite.corrupt-<time> and rule 1 applies; the error is logged. Every record
 *      still readable in it is then copied into the new journal with its own sequence, id
 *      and publish mark (salvage.ts); what cannot be read is counted and logged. high_water
 *      is raised over the copied records.
 *   3. A WAL left by a crash is replayed by SQLite: every commit that returned is there.
 *   4. high_water = max(meta.high_water, max(sequence)): sequences never go backwards.
 *   5. Schema versions: 1 had no set_aside table; opening it adds the table (empty) and sets
 *      user_version 2. An older plc2mqtt opening a version 2 file ignores the table: its
 *      set-aside records then look published.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, renameSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import type { Logger } from "../lib/logger.ts";
import { type SalvageReport, salvageInto } from "./salvage.ts";
import { readSeqCeiling } from "./seq-file.ts";
import { SET_ASIDE_SCHEMA } from "./set-aside.ts";
import { isCorruption, journalError } from "./sqlite-errors.ts";

export const APPLICATION_ID = 0x706c6332;
export const SCHEMA_VERSION = 2;
export const PAGE_SIZE = 4096;
/** How long a statement waits for a lock held by another process before failing, ms. */
export const BUSY_TIMEOUT_MS = 250;

export function journalPath(dir: string): string {
  return join(dir, "journal.sqlite");
}

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
  published_at INTEGER
);
CREATE INDEX records_pending ON records(sequence) WHERE published_at IS NULL;
CREATE INDEX records_device ON records(device, subject, time);
CREATE INDEX records_type ON records(type, time);
CREATE INDEX records_time ON records(time);
${SET_ASIDE_SCHEMA};
`;

export interface OpenedStore {
  db: DatabaseSync;
  path: string;
  epoch: string;
  highWater: bigint;
  dropped: number;
  /** Where a damaged file was moved, when rule 2 applied. */
  movedAside?: string;
  /** What was copied from it (salvage.ts). */
  salvaged?: SalvageReport;
}

class NotAJournal extends Error {}

export function openStore(dir: string, log: Logger): OpenedStore {
  const path = journalPath(dir);
  try {
    makeDir(dir, 32);
  } catch (err) {
    throw journalError("creating the journal folder", dir, err);
  }
  let movedAside: string | undefined;
  let db: DatabaseSync | undefined;
  try {
    db = openChecked(path);
  } catch (err) {
    db = undefined;
    if (!(err instanceof NotAJournal) && !isCorruption(err)) {
      throw journalError("opening the journal", path, err);
    }
    movedAside = moveAside(path);
    log.error({ err, path, moved_to: movedAside }, "journal damaged: moved aside, starting anew");
    try {
      db = openChecked(path);
    } catch (again) {
      throw journalError("creating a new journal", path, again);
    }
  }
  try {
    const state = initialise(db, dir);
    if (movedAside === undefined) return { ...state, db, path };
    const salvaged = salvageInto(movedAside, db, log);
    log.error(
      { ...salvaged, from: movedAside },
      "journal salvage: records copied from the damaged file",
    );
    return {
      ...state,
      highWater: raiseHighWater(db, state.highWater),
      db,
      path,
      movedAside,
      salvaged,
    };
  } catch (err) {
    db.close();
    throw journalError("initialising the journal", path, err);
  }
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

/** Opens the file and checks it is an intact journal (or a new, empty database). */
function openChecked(path: string): DatabaseSync {
  const db = new DatabaseSync(path, {
    timeout: BUSY_TIMEOUT_MS,
    enableForeignKeyConstraints: false,
  });
  try {
    const check = db.prepare("PRAGMA quick_check").all();
    const first = check[0]?.quick_check;
    if (check.length !== 1 || first !== "ok") {
      throw new NotAJournal(`quick_check: ${check.map((r) => String(r.quick_check)).join("; ")}`);
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

function initialise(db: DatabaseSync, dir: string): Omit<OpenedStore, "db" | "path"> {
  const fresh = db.prepare("SELECT count(*) AS n FROM sqlite_schema").get()?.n === 0;
  if (fresh) {
    const stored = readSeqCeiling(dir);
    // journal.seq exists once anything was ever committed here: missing means a first start
    const ceiling = stored === undefined ? timeFloor() : stored;
    db.exec(`PRAGMA page_size = ${PAGE_SIZE}; PRAGMA auto_vacuum = INCREMENTAL;`);
    db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;");
    const epoch = randomBytes(8).toString("hex");
    db.exec("BEGIN IMMEDIATE");
    try {
      db.exec(SCHEMA);
      db.exec(
        `PRAGMA application_id = ${APPLICATION_ID}; PRAGMA user_version = ${SCHEMA_VERSION};`,
      );
      const put = db.prepare("INSERT INTO meta(key, value) VALUES (?, ?)");
      put.run("epoch", epoch);
      put.run("high_water", ceiling.toString());
      put.run("dropped", "0");
      put.run("created_at", new Date().toISOString());
      db.exec("COMMIT");
    } catch (err) {
      db.exec("ROLLBACK");
      throw err;
    }
    return { epoch, highWater: ceiling, dropped: 0 };
  }
  db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;");
  migrate(db);
  const meta = new Map<string, string>();
  for (const row of db.prepare("SELECT key, value FROM meta").all()) {
    meta.set(String(row.key), String(row.value));
  }
  const maxStmt = db.prepare("SELECT max(sequence) AS m FROM records");
  maxStmt.setReadBigInts(true);
  const maxSeq = (maxStmt.get()?.m as bigint | null) ?? 0n;
  const stored = /^\d+$/.test(meta.get("high_water") ?? "") ? BigInt(meta.get("high_water")!) : 0n;
  return {
    epoch: meta.get("epoch")!,
    highWater: stored > maxSeq ? stored : maxSeq,
    dropped: Number(meta.get("dropped") ?? "0") || 0,
  };
}

/** Recovery rule 5: brings an older journal's schema up to SCHEMA_VERSION. */
function migrate(db: DatabaseSync): void {
  const version = Number(db.prepare("PRAGMA user_version").get()?.user_version ?? 0);
  if (version >= SCHEMA_VERSION) return;
  db.exec("BEGIN IMMEDIATE");
  try {
    db.exec(SET_ASIDE_SCHEMA);
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
