/**
 * Salvage of a damaged journal that was moved aside (store.ts, recovery rule 2): every record
 * that can still be read from it, and whose payload still matches its crc, is copied into the
 * new journal with its own sequence, id and payload. Its sequence is below anything the new
 * journal assigns (the new one starts at the ceiling in journal.seq), so the publisher sends
 * the salvaged pending records first, in order, with their original ids: consumers see the
 * same events they would have seen. The new cursor (`doneThrough`) is set just below the first
 * copied record that was pending in the damaged file (its cursor, or in a journal of
 * user_version 1 its publish marks); when neither can be read, every copied record counts as
 * pending and is sent again (duplicates under the same ids, as MQTT allows).
 *
 * Reading is defensive: records are read in windows of sequence numbers; a window that SQLite
 * cannot read is retried one sequence at a time; a record that cannot be read or fails its
 * check is counted as lost, never guessed at. The damaged file itself is left in place.
 */
import { existsSync } from "node:fs";
import { DatabaseSync } from "node:sqlite";
import { pathToFileURL } from "node:url";
import type { Logger } from "../lib/logger.ts";
import { decodeRow, RECORD_COLUMNS, type Row } from "./records.ts";

const WINDOW = 500;
/** Windows in a row without a single readable record before the scan gives up. */
const EMPTY_WINDOWS_LIMIT = 64;

export interface SalvageReport {
  /** Records copied into the new journal. */
  copied: number;
  /** Of those, records not yet published. */
  pending: number;
  /** Records that could not be read or failed their check. */
  lost: number;
  /** The new cursor: every copied record at or below it was done in the damaged file. */
  doneThrough: bigint;
}

export function salvageInto(damaged: string, into: DatabaseSync, log: Logger): SalvageReport {
  const report: SalvageReport = { copied: 0, pending: 0, lost: 0, doneThrough: 0n };
  let source: DatabaseSync;
  try {
    // immutable unless a WAL came along (it must be read): SQLite then adds no -wal/-shm files
    // next to the damaged one
    const url = pathToFileURL(damaged);
    if (!existsSync(`${damaged}-wal`)) url.searchParams.set("immutable", "1");
    source = new DatabaseSync(url, { readOnly: true });
  } catch {
    return report; // not a database at all: nothing to salvage
  }
  try {
    const rows = readable(source, report);
    if (rows.length === 0) return report;
    const wasDone = doneIn(source);
    const insert = into.prepare(
      `INSERT OR IGNORE INTO records (${RECORD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    let firstPending: bigint | undefined;
    let lastCopied = 0n;
    into.exec("BEGIN IMMEDIATE");
    try {
      for (const row of rows) {
        const decoded = decodeRow(row);
        if (!decoded.ok) {
          report.lost++;
          continue;
        }
        const r = decoded.record;
        insert.run(
          r.sequence,
          r.id,
          r.type,
          r.device,
          r.subject,
          r.time,
          r.topic,
          r.retain ? 1 : 0,
          r.payload,
          row.crc!,
        );
        report.copied++;
        lastCopied = r.sequence;
        if (!wasDone(r.sequence)) {
          report.pending++;
          firstPending ??= r.sequence;
        }
      }
      into.exec("COMMIT");
    } catch (err) {
      into.exec("ROLLBACK");
      log.error({ err, damaged }, "journal salvage failed; the damaged file is kept as it is");
      return { copied: 0, pending: 0, lost: report.lost, doneThrough: 0n };
    }
    report.doneThrough = firstPending === undefined ? lastCopied : firstPending - 1n;
  } finally {
    source.close();
  }
  return report;
}

/**
 * Every row that SQLite can still hand out, in sequence order: pages of the primary key
 * (which jump over gaps left by retention); a page SQLite cannot read is retried one sequence
 * at a time over the next window.
 */
function readable(source: DatabaseSync, report: SalvageReport): Row[] {
  const out: Row[] = [];
  let page: ReturnType<DatabaseSync["prepare"]>;
  let single: ReturnType<DatabaseSync["prepare"]>;
  try {
    page = source.prepare(
      `SELECT ${RECORD_COLUMNS} FROM records WHERE sequence > ? ORDER BY sequence LIMIT ${WINDOW}`,
    );
    single = source.prepare(`SELECT ${RECORD_COLUMNS} FROM records WHERE sequence = ?`);
  } catch {
    return out; // the schema itself is unreadable
  }
  page.setReadBigInts(true);
  single.setReadBigInts(true);
  const top = highest(source);
  let from = 0n;
  let empty = 0;
  while (empty < EMPTY_WINDOWS_LIMIT) {
    try {
      const rows = page.all(from) as Row[];
      if (rows.length === 0) break; // the end
      out.push(...rows);
      from = rows.at(-1)!.sequence as bigint;
      empty = 0;
      continue;
    } catch {
      // a damaged page: one sequence at a time over the next window
    }
    if (from >= top) break;
    const to = from + BigInt(WINDOW);
    let found = 0;
    for (let s = from + 1n; s <= to; s++) {
      try {
        const row = single.get(s) as Row | undefined;
        if (row) {
          out.push(row);
          found++;
        }
      } catch {
        report.lost++;
      }
    }
    empty = found === 0 ? empty + 1 : 0;
    from = to;
  }
  return out;
}

/**
 * Whether a record was done for the publisher in the damaged file: at or below its cursor
 * (user_version 2), or marked published (user_version 1); when neither can be read, nothing
 * counts as done.
 */
function doneIn(source: DatabaseSync): (sequence: bigint) => boolean {
  try {
    const cursor = source.prepare("SELECT done_through AS d FROM cursors WHERE sink = 'mqtt'");
    cursor.setReadBigInts(true);
    const d = cursor.get()?.d;
    if (typeof d === "bigint") return (sequence) => sequence <= d;
  } catch {
    // no cursor: a journal of user_version 1, or an unreadable one
  }
  try {
    const marked = source.prepare(
      "SELECT published_at IS NOT NULL AS done FROM records WHERE sequence = ?",
    );
    return (sequence) => {
      try {
        return Number(marked.get(sequence)?.done ?? 0) === 1;
      } catch {
        return false;
      }
    };
  } catch {
    return () => false;
  }
}

/** The highest sequence the damaged file may hold: its max(sequence), else its meta. */
function highest(source: DatabaseSync): bigint {
  for (const sql of [
    "SELECT max(sequence) AS m FROM records",
    "SELECT value AS m FROM meta WHERE key = 'high_water'",
  ]) {
    try {
      const stmt = source.prepare(sql);
      stmt.setReadBigInts(true);
      const m = stmt.get()?.m;
      if (typeof m === "bigint") return m;
      if (typeof m === "string" && /^\d+$/.test(m)) return BigInt(m);
    } catch {
      // try the next source
    }
  }
  return 0n;
}
