/**
 * A read-only way into a journal another process (the running daemon) owns, for `events` and
 * `replay`.
 *
 * Contract:
 * - The file is opened with SQLite's read-only flag: this module never writes, never runs
 *   retention, the size policy or a checkpoint, and never creates, repairs or moves a file. A
 *   missing journal is a JOURNAL_IO error naming the path; so is a file that is not a plc2mqtt
 *   journal (the daemon's recovery rules in store.ts decide what to do with it, not a reader).
 * - WAL mode lets it read while the daemon writes: each query is one short read transaction
 *   that sees the last committed state and never blocks the daemon's commits. (A reader that
 *   holds a transaction can delay the daemon's WAL checkpoint, so queries are paged by
 *   sequence rather than held open.)
 * - A journal without a `-wal` file is not open in any process (a running daemon keeps its WAL
 *   until it closes): it is then opened `immutable`, so SQLite creates no `-wal`/`-shm` files
 *   either. Otherwise an operator running `events` as root would leave root-owned files the
 *   unprivileged daemon cannot open. (Should the daemon start during such a read, the read may
 *   fail with an error; it never writes.)
 * - Rows are validated like the journal validates them (records.ts decodeRow: types and the
 *   payload's crc32); a damaged row is skipped and counted in `corruptSkipped`, never thrown.
 * - Filters: device, subject (the tag or trigger), type, event time range (inclusive), status
 *   (published or pending: at or below the publisher's cursor as last committed, or above it;
 *   in a journal of user_version 1, by its publish marks), sequences after a paging cursor;
 *   sequence order, asc or desc; a limit. Each record says whether it is published.
 */
import { existsSync } from "node:fs";
import { DatabaseSync, type SQLInputValue } from "node:sqlite";
import { pathToFileURL } from "node:url";
import { GatewayError } from "../lib/errors.ts";
import { decodeRow, RECORD_COLUMNS, type Row } from "./records.ts";
import { notSetAside, setAsideSource, withSetAside } from "./set-aside.ts";
import { isCorruption, journalError } from "./sqlite-errors.ts";
import { APPLICATION_ID, BUSY_TIMEOUT_MS, journalPath, MQTT_SINK } from "./store.ts";
import type { JournalQuery, JournalRecord } from "./types.ts";

export interface ReaderQuery extends JournalQuery {
  /** Only records the broker acknowledged, or only those still waiting; default both. */
  status?: "published" | "pending";
  /** Only records with a sequence above this (a paging cursor, in ascending order). */
  afterSequence?: bigint;
  /** Only records with a sequence below this (a paging cursor, in descending order). */
  beforeSequence?: bigint;
}

export interface JournalReader {
  readonly path: string;
  /** The journal's epoch (the prefix of every event id). */
  readonly epoch: string;
  /** Rows skipped as corrupt by this reader so far. */
  readonly corruptSkipped: number;
  /** Matching records in sequence order, at most `limit` (default 1000). */
  query(query: ReaderQuery): JournalRecord[];
  /** How many rows match (corrupt ones included: they are only found when read). */
  count(query: ReaderQuery): number;
  /** Every matching record in ascending sequence order, read a page at a time. */
  scan(query: Omit<ReaderQuery, "limit" | "order">, pageSize?: number): Generator<JournalRecord>;
  close(): void;
}

/** Opens `<dir>/journal.sqlite` read-only; throws JOURNAL_IO when it is missing or foreign. */
export function openJournalReader(dir: string): JournalReader {
  const path = journalPath(dir);
  if (!existsSync(path)) {
    throw new GatewayError(
      "JOURNAL_IO",
      `no journal at ${path}: check gateway.data_dir in the config (the file is created when the gateway first runs)`,
      { details: { path } },
    );
  }
  let db: DatabaseSync;
  try {
    const url = pathToFileURL(path);
    if (!existsSync(`${path}-wal`)) url.searchParams.set("immutable", "1");
    db = new DatabaseSync(url, {
      readOnly: true,
      timeout: BUSY_TIMEOUT_MS,
      enableForeignKeyConstraints: false,
    });
  } catch (err) {
    throw journalError("opening the journal read-only", path, err);
  }
  try {
    const { epoch, hasSetAside } = checkJournal(db, path);
    return new Reader(db, path, epoch, hasSetAside);
  } catch (err) {
    db.close();
    throw err;
  }
}

function checkJournal(db: DatabaseSync, path: string): { epoch: string; hasSetAside: boolean } {
  let appId: unknown;
  let epoch: unknown;
  let names = new Set<unknown>();
  try {
    appId = db.prepare("PRAGMA application_id").get()?.application_id;
    const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").all();
    names = new Set(tables.map((t) => t.name));
    if (appId === APPLICATION_ID && names.has("meta") && names.has("records")) {
      epoch = db.prepare("SELECT value FROM meta WHERE key = 'epoch'").get()?.value;
    }
  } catch (err) {
    throw journalError("reading the journal", path, err);
  }
  if (appId !== APPLICATION_ID || typeof epoch !== "string") {
    throw new GatewayError(
      "JOURNAL_IO",
      `${path} is not a plc2mqtt journal (application_id or tables differ)`,
      { details: { path } },
    );
  }
  return { epoch, hasSetAside: names.has("set_aside") };
}

/** How a file says a record is done for the publisher: its cursor, or (v1) a publish mark. */
type Done = { cursor: bigint } | { marks: true };

function whereClause(
  query: ReaderQuery,
  done: Done,
  hasSetAside: boolean,
): { where: string; from: string; columns: string; params: SQLInputValue[] } {
  const source = setAsideSource(query.setAside === true, hasSetAside);
  const where: string[] = [];
  const params: SQLInputValue[] = [];
  const add = (sql: string, value: SQLInputValue | undefined) => {
    if (value === undefined) return;
    where.push(sql);
    params.push(value);
  };
  add("device = ?", query.device);
  add("subject = ?", query.subject);
  add("type = ?", query.type);
  add("time >= ?", query.from);
  add("time <= ?", query.to);
  add("sequence > ?", query.afterSequence);
  add("sequence < ?", query.beforeSequence);
  if ("cursor" in done) {
    // a set-aside record is below the cursor too, and not published
    if (query.status === "published") {
      add("sequence <= ?", done.cursor);
      where.push(notSetAside(hasSetAside));
    }
    if (query.status === "pending") add("sequence > ?", done.cursor);
  } else {
    // published_at 0 marks a row the daemon skipped as corrupt: neither published nor pending.
    if (query.status === "published") where.push("published_at > 0", notSetAside(hasSetAside));
    if (query.status === "pending") where.push("published_at IS NULL");
  }
  if (source.where !== undefined) where.push(source.where);
  return {
    where: where.length > 0 ? ` WHERE ${where.join(" AND ")}` : "",
    from: source.from,
    columns: source.columns,
    params,
  };
}

class Reader implements JournalReader {
  readonly path: string;
  readonly epoch: string;
  readonly #db: DatabaseSync;
  readonly #hasSetAside: boolean;
  #corrupt = 0;
  #closed = false;

  constructor(db: DatabaseSync, path: string, epoch: string, hasSetAside: boolean) {
    this.#db = db;
    this.path = path;
    this.epoch = epoch;
    this.#hasSetAside = hasSetAside;
  }

  get corruptSkipped(): number {
    return this.#corrupt;
  }

  query(query: ReaderQuery): JournalRecord[] {
    return this.#page(query).records;
  }

  /** Where the publisher is, as last committed (the daemon moves it while we read). */
  #done(): Done {
    try {
      const stmt = this.#db.prepare("SELECT done_through AS d FROM cursors WHERE sink = ?");
      stmt.setReadBigInts(true);
      const d = stmt.get(MQTT_SINK)?.d;
      if (typeof d === "bigint") return { cursor: d };
    } catch {
      // a journal of user_version 1: no cursors table
    }
    return { marks: true };
  }

  /** One SELECT: the valid records, and the last sequence and number of the rows read. */
  #page(query: ReaderQuery): { records: JournalRecord[]; rows: number; last?: bigint } {
    this.#open();
    const done = this.#done();
    const { where, from, columns, params } = whereClause(query, done, this.#hasSetAside);
    const order = query.order === "desc" ? "DESC" : "ASC";
    const marks = "marks" in done ? ", published_at" : "";
    const sql = `SELECT ${RECORD_COLUMNS}${marks}, ${columns} FROM ${from}${where} ORDER BY sequence ${order} LIMIT ?`;
    let rows: Row[];
    try {
      const stmt = this.#db.prepare(sql);
      stmt.setReadBigInts(true);
      rows = stmt.all(...params, query.limit ?? 1000) as Row[];
    } catch (err) {
      if (!isCorruption(err)) throw journalError("querying the journal", this.path, err);
      // A damaged page: what it held cannot be read, so it is counted once and left out.
      this.#corrupt++;
      return { records: [], rows: 0 };
    }
    const records: JournalRecord[] = [];
    let last: bigint | undefined;
    for (const row of rows) {
      if (typeof row.sequence === "bigint") last = row.sequence;
      const decoded = decodeRow(row);
      if (!decoded.ok) {
        this.#corrupt++;
        continue;
      }
      const record = withSetAside(decoded.record, row);
      const published =
        "cursor" in done ? record.sequence <= done.cursor : (row.published_at ?? null) !== null;
      if (published && !record.setAside) record.published = true;
      records.push(record);
    }
    return { records, rows: rows.length, ...(last === undefined ? {} : { last }) };
  }

  count(query: ReaderQuery): number {
    this.#open();
    const { where, from, params } = whereClause(query, this.#done(), this.#hasSetAside);
    try {
      const n = this.#db.prepare(`SELECT count(*) AS n FROM ${from}${where}`).get(...params)?.n;
      return Number(n ?? 0);
    } catch (err) {
      throw journalError("counting journal records", this.path, err);
    }
  }

  *scan(query: Omit<ReaderQuery, "limit" | "order">, pageSize = 500): Generator<JournalRecord> {
    let after = query.afterSequence;
    for (;;) {
      const page = this.#page({
        ...query,
        ...(after === undefined ? {} : { afterSequence: after }),
        order: "asc",
        limit: pageSize,
      });
      yield* page.records;
      // The cursor moves past corrupt rows too; a short page is the end.
      if (page.rows < pageSize || page.last === undefined) return;
      after = page.last;
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }

  #open(): void {
    if (this.#closed) throw new GatewayError("JOURNAL_IO", `journal reader ${this.path} closed`);
  }
}
