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
 * The hash chain (chain.ts): the copied records start a new chain segment of kind `salvaged`
 * (their hashes computed afresh, the first one linked to zero), which records where the damaged
 * file's chain ended: the last sequence and hash readable in it (none when it had no hashes or
 * they could not be read) and the damaged file's name. The new journal's own records continue
 * that segment. Without any record copied, the segment starts at the new journal's first
 * sequence.
 *
 * Reading is defensive: records are read in windows of sequence numbers; a window that SQLite
 * cannot read is retried one sequence at a time; a record that cannot be read or fails its
 * check is counted as lost, never guessed at. The damaged file itself is left in place.
 */
import { existsSync } from "node:fs";
import { basename } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { pathToFileURL } from "node:url";
import type { Logger } from "../lib/logger.ts";
import { addSegment, type ChainHead, chainHash, HASH_BYTES, ZERO_HASH } from "./chain.ts";
import { decodeRow, INSERT_SQL, RECORD_COLUMNS, type Row } from "./records.ts";

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

/**
 * Copies what can be read of `damaged` into `into` (a new, empty journal whose first own
 * sequence is `newStart`) and starts the `salvaged` chain segment.
 */
export function salvageInto(
  damaged: string,
  into: DatabaseSync,
  log: Logger,
  newStart: bigint,
): SalvageReport {
  const report: SalvageReport = { copied: 0, pending: 0, lost: 0, doneThrough: 0n };
  const segment = (start: bigint, end: ChainHead | undefined) => {
    into.exec("DELETE FROM chain_segments");
    addSegment(into, {
      start,
      kind: "salvaged",
      prevSequence: end?.sequence ?? null,
      prevHash: end?.hash ?? null,
      note: basename(damaged),
    });
  };
  let source: DatabaseSync;
  try {
    // immutable unless a WAL came along (it must be read): SQLite then adds no -wal/-shm files
    // next to the damaged one
    const url = pathToFileURL(damaged);
    if (!existsSync(`${damaged}-wal`)) url.searchParams.set("immutable", "1");
    source = new DatabaseSync(url, { readOnly: true });
  } catch {
    segment(newStart, undefined);
    return report; // not a database at all: nothing to salvage
  }
  try {
    const rows = readable(source, report);
    const oldEnd = chainEnd(source);
    if (rows.length === 0) {
      segment(newStart, oldEnd);
      return report;
    }
    const wasDone = doneIn(source);
    const insert = into.prepare(INSERT_SQL);
    let firstPending: bigint | undefined;
    let lastCopied = 0n;
    let firstCopied: bigint | undefined;
    let link = ZERO_HASH;
    into.exec("BEGIN IMMEDIATE");
    try {
      for (const row of rows) {
        const decoded = decodeRow(row);
        if (!decoded.ok) {
          report.lost++;
          continue;
        }
        const r = decoded.record;
        if (firstCopied !== undefined && r.sequence <= lastCopied) continue; // read twice
        firstCopied ??= r.sequence;
        link = chainHash(link, r.sequence, r.payload);
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
          link,
        );
        report.copied++;
        lastCopied = r.sequence;
        if (!wasDone(r.sequence)) {
          report.pending++;
          firstPending ??= r.sequence;
        }
      }
      segment(firstCopied ?? newStart, oldEnd);
      into.exec("COMMIT");
    } catch (err) {
      into.exec("ROLLBACK");
      segment(newStart, oldEnd);
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

/** Where the damaged file's chain ended: its last readable hash, if any. */
function chainEnd(source: DatabaseSync): ChainHead | undefined {
  try {
    const stmt = source.prepare(
      "SELECT sequence, hash FROM records WHERE hash IS NOT NULL ORDER BY sequence DESC LIMIT 1",
    );
    stmt.setReadBigInts(true);
    const row = stmt.get();
    if (row && row.hash instanceof Uint8Array && row.hash.length === HASH_BYTES)
      return { sequence: row.sequence as bigint, hash: row.hash };
  } catch {
    // no hash column (an older journal), or that page is damaged
  }
  return undefined;
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
