/**
 * The journal's hash chain (issue 14: tamper evidence).
 *
 * Every record carries `hash` (32 bytes, the `records.hash` column, written by the same INSERT
 * of its group commit: no second write per event):
 *
 *   hash_n = SHA-256(link_n || sequence_n as 8 bytes big-endian || payload_n as UTF-8)
 *
 * where payload_n is the exact document published and link_n is the hash of the record before
 * it in sequence order, or, for the first record of a chain segment, 32 zero bytes. Sequence
 * gaps are fine (a salvage leaves one): the link is to the previous record kept, not to
 * sequence - 1.
 *
 * Chain segments (table `chain_segments`): a chain starts at `start_sequence`, of kind
 *   new        a journal file created empty;
 *   migrated   a journal of user_version 2 (no hashes): its older rows have a NULL hash and are
 *              "before the chain"; prev_sequence is its last record then;
 *   salvaged   a journal made anew from a damaged file (salvage.ts): the copied records are
 *              chained afresh; prev_sequence and prev_hash say where the damaged file's chain
 *              ended (the last hash readable in it; NULL when none could be read), `note` the
 *              damaged file's name.
 *
 * Pruning (the size policy, the full-disk rounds, retention) deletes prefixes only, in sequence
 * order, and each delete writes meta `chain_pruned_through` = "<sequence>:<hash hex>" of the
 * last record it removed, in the same transaction: the oldest kept record must link to it.
 *
 * replace() (replacements.ts) rewrites a pending record: the hashes from it to the head are
 * recomputed in the same commit (rehash below).
 */
import { hash as digest } from "node:crypto";
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { crc32 } from "node:zlib";

export const HASH_BYTES = 32;
const REHASH_WINDOW = 1000;
export const ZERO_HASH: Uint8Array = new Uint8Array(HASH_BYTES);

export type SegmentKind = "new" | "migrated" | "salvaged";

/** The last record of the chain (or of a part of it): its sequence and hash. */
export interface ChainHead {
  sequence: bigint;
  hash: Uint8Array;
}

export const CHAIN_SEGMENTS_SCHEMA = `CREATE TABLE IF NOT EXISTS chain_segments (
  start_sequence INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,
  prev_sequence INTEGER,
  prev_hash BLOB,
  at INTEGER NOT NULL,
  note TEXT
)`;

/** meta key: "<sequence>:<hash hex>" of the last record pruned from the front. */
const PRUNED_KEY = "chain_pruned_through";

/** One buffer for link, sequence and payload, reused: one one-shot digest per record. */
let scratch = Buffer.allocUnsafe(8192);

/**
 * hash_n from the link (hash of the record before), the sequence and the payload; with `crc`,
 * also the payload's crc32 (as payloadCrc() gives it, from the UTF-8 encoded here).
 *
 * The digest comes out as a "binary" (latin1) string and goes into a pooled Buffer: a digest
 * returned as "buffer" gets an ArrayBuffer of its own, which costs the commit more than the
 * SHA-256 itself (one per event; `node test/bench/journal-cost.ts`).
 */
export function chainHash(
  link: Uint8Array,
  sequence: bigint,
  payload: string,
  crc?: { value: number },
): Uint8Array {
  const max = HASH_BYTES + 8 + payload.length * 3; // UTF-8 takes at most 3 bytes a UTF-16 unit
  if (scratch.length < max) scratch = Buffer.allocUnsafe(max);
  scratch.set(link, 0);
  scratch.writeBigUInt64BE(sequence, HASH_BYTES);
  const length = HASH_BYTES + 8 + scratch.write(payload, HASH_BYTES + 8, "utf8");
  // the payload's crc32 (records.ts) from the same UTF-8 bytes: the commit encodes it once
  if (crc !== undefined) crc.value = crc32(scratch.subarray(HASH_BYTES + 8, length));
  return Buffer.from(digest("sha256", scratch.subarray(0, length), "binary"), "latin1");
}

export function hex(hash: Uint8Array): string {
  return Buffer.from(hash).toString("hex");
}

export function addSegment(
  db: DatabaseSync,
  segment: {
    start: bigint;
    kind: SegmentKind;
    prevSequence?: bigint | null;
    prevHash?: Uint8Array | null;
    note?: string;
  },
): void {
  db.prepare(
    "INSERT OR REPLACE INTO chain_segments(start_sequence, kind, prev_sequence, prev_hash, at, note) VALUES (?, ?, ?, ?, ?, ?)",
  ).run(
    segment.start,
    segment.kind,
    segment.prevSequence ?? null,
    segment.prevHash ?? null,
    Date.now(),
    segment.note ?? null,
  );
}

/** Parses meta chain_pruned_through; undefined when absent or unreadable. */
function parsePruned(value: unknown): ChainHead | undefined {
  if (typeof value !== "string") return undefined;
  const m = /^(\d+):([0-9a-f]{64})$/.exec(value);
  if (!m) return undefined;
  return { sequence: BigInt(m[1]!), hash: Buffer.from(m[2]!, "hex") };
}

/** The chain_pruned_through mark of the file; undefined when absent or unreadable. */
export function readPruned(db: DatabaseSync): ChainHead | undefined {
  return parsePruned(db.prepare("SELECT value FROM meta WHERE key = ?").get(PRUNED_KEY)?.value);
}

/** Writes chain_pruned_through for the last record a prefix delete removed (caller's txn). */
export class PruneMark {
  readonly #put: StatementSync;
  constructor(db: DatabaseSync) {
    this.#put = db.prepare("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)");
  }

  /** `row`: a row RETURNING sequence, hash of the deleted record with the highest sequence. */
  mark(sequence: bigint, hash: unknown): void {
    if (!(hash instanceof Uint8Array) || hash.length !== HASH_BYTES) return; // before the chain
    this.#put.run(PRUNED_KEY, `${sequence}:${hex(hash)}`);
  }
}

/**
 * What the record `sequence` must link to: the record before it in its segment, else the
 * pruned-through mark when that is in its segment, else nothing (zero: a segment's first
 * record). Reads a few rows by primary key.
 */
export function linkFor(db: DatabaseSync, sequence: bigint): ChainHead | undefined {
  const seg = db.prepare(
    "SELECT max(start_sequence) AS s FROM chain_segments WHERE start_sequence <= ?",
  );
  seg.setReadBigInts(true);
  const start = (seg.get(sequence)?.s as bigint | null) ?? 0n;
  const prev = db.prepare(
    "SELECT sequence, hash FROM records WHERE sequence < ? ORDER BY sequence DESC LIMIT 1",
  );
  prev.setReadBigInts(true);
  const row = prev.get(sequence);
  if (row && (row.sequence as bigint) >= start) {
    return row.hash instanceof Uint8Array
      ? { sequence: row.sequence as bigint, hash: row.hash }
      : undefined;
  }
  const pruned = readPruned(db);
  if (pruned && pruned.sequence >= start && pruned.sequence < sequence) return pruned;
  return undefined;
}

/**
 * After replace() rewrote `from` (in the caller's transaction): recomputes the hashes of the
 * records from it to the head; returns the new head (undefined when there are none).
 */
export function rehash(db: DatabaseSync, from: bigint): ChainHead | undefined {
  let link = linkFor(db, from)?.hash ?? ZERO_HASH;
  // windows of rows, so a long way to the head never sits in memory whole
  const rows = db.prepare(
    `SELECT sequence, payload FROM records WHERE sequence > ? ORDER BY sequence LIMIT ${REHASH_WINDOW}`,
  );
  rows.setReadBigInts(true);
  const update = db.prepare("UPDATE records SET hash = ? WHERE sequence = ?");
  const starts = db.prepare(
    "SELECT start_sequence AS s FROM chain_segments WHERE start_sequence > ?",
  );
  starts.setReadBigInts(true);
  const segmentStarts = starts.all(from).map((r) => r.s as bigint);
  let head: ChainHead | undefined;
  let last = from - 1n;
  for (;;) {
    const window = rows.all(last);
    for (const row of window) {
      const sequence = row.sequence as bigint;
      if (head && segmentStarts.some((s) => s > head!.sequence && s <= sequence)) link = ZERO_HASH;
      const hash = chainHash(link, sequence, String(row.payload));
      update.run(hash, sequence);
      link = hash;
      head = { sequence, hash };
      last = sequence;
    }
    if (window.length < REHASH_WINDOW) return head;
  }
}

/** The lowest sequence of the chain (its first segment's start): rows from it on are hashed. */
export function chainStart(db: DatabaseSync): bigint {
  const stmt = db.prepare("SELECT min(start_sequence) AS s FROM chain_segments");
  stmt.setReadBigInts(true);
  return (stmt.get()?.s as bigint | null) ?? 0n;
}

/**
 * The last record at or below `upTo` (the publisher's cursor: no replace() can change such a
 * record) that has a hash; the pruned-through mark when none is kept. A primary-key lookup.
 */
export function settledHead(db: DatabaseSync, upTo: bigint, start: bigint): ChainHead | undefined {
  const stmt = db.prepare(
    "SELECT sequence, hash FROM records WHERE sequence <= ? AND sequence >= ? ORDER BY sequence DESC LIMIT 1",
  );
  stmt.setReadBigInts(true);
  const row = stmt.get(upTo, start);
  if (row && row.hash instanceof Uint8Array)
    return { sequence: row.sequence as bigint, hash: row.hash };
  const pruned = readPruned(db);
  return pruned && pruned.sequence <= upTo ? pruned : undefined;
}
