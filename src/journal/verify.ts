/**
 * `plc2mqtt events verify`: walks the journal's hash chain (chain.ts) and reports the first
 * break. Read-only (a second reader beside a running gateway is fine: WAL); one read
 * transaction, so the walk sees one state of the file; rows stream in sequence order (bounded
 * memory), with progress reported every PROGRESS_EVERY records.
 *
 * What is checked, record by record from the oldest kept (or `from`) to the head:
 *   - its hash is SHA-256(link || sequence || payload), where the link is the hash of the record
 *     before it; for the first record of a chain segment, zero; for the oldest kept record of a
 *     segment that pruning cut, the pruned-through mark (meta chain_pruned_through);
 *   - with `anchor` (a chain head seen elsewhere: a retained status or health message), that
 *     the record of that sequence holds that hash, so the chain from it to the head is the one
 *     that was there when the anchor was published.
 *
 * A break is named by the sequence of the first record that fails, and what it looks like:
 *   reordered  the record holds the document of another sequence (its CloudEvents `sequence`);
 *   inserted   its link does not match its predecessor but the next record links to that
 *              predecessor (a record put in afterwards), or it lies above the journal's
 *              high_water (above every sequence the journal handed out);
 *   deleted    its link breaks after a gap in the sequences: records before it are missing;
 *   modified   its hash does not match its content (or it has none).
 * Records below the chain's first segment (the rows of a journal of user_version 2 written
 * before its migration) have no hash: counted as "before the chain", not checked.
 *
 * What this proves and what not: README, "History you can prove".
 */
import { DatabaseSync } from "node:sqlite";
import { pathToFileURL } from "node:url";
import { GatewayError } from "../lib/errors.ts";
import {
  type ChainHead,
  chainHash,
  HASH_BYTES,
  hex,
  readPruned,
  type SegmentKind,
  ZERO_HASH,
} from "./chain.ts";
import { requireJournalFile } from "./reader.ts";
import { journalError } from "./sqlite-errors.ts";
import { BUSY_TIMEOUT_MS, journalPath, SCHEMA_VERSION } from "./store.ts";

const PROGRESS_EVERY = 100_000;

export interface Segment {
  start: bigint;
  kind: SegmentKind;
  /** Where the chain before it ended (migrated: the last record then; salvaged: the damaged file's last hash). */
  prevSequence?: bigint;
  prevHash?: string;
  /** salvaged: the damaged file's name. */
  note?: string;
}

export interface VerifyOptions {
  /** Start the walk at this sequence (the record before it supplies the link). */
  from?: bigint;
  /** A chain head seen elsewhere: the record `sequence` must hold `hash` (hex). */
  anchor?: { sequence: bigint; hash: string };
  onProgress?: (progress: VerifyProgress) => void;
}

export interface VerifyProgress {
  checked: number;
  sequence: bigint;
}

export type BreakKind = "modified" | "deleted" | "reordered" | "inserted" | "anchor";

export interface VerifyResult {
  ok: boolean;
  /** Records whose hash was checked. */
  checked: number;
  /** Rows below the chain (no hash: written before a migration). */
  beforeChain: number;
  first?: bigint;
  last?: bigint;
  /** The hash of the last record checked (hex). */
  headHash?: string;
  /** The chain segments the walk entered, in order. */
  segments: Segment[];
  /** Where pruning left off, when the walk's first record links to it. */
  prunedThrough?: { sequence: bigint; hash: string };
  /** The anchor, when given and found as said (or pruned, see anchorPruned). */
  anchorOk?: boolean;
  /** The anchor's record was pruned: it cannot be checked any more. */
  anchorPruned?: boolean;
  /** The first break. */
  broken?: { sequence: bigint; kind: BreakKind; message: string };
}

interface Row {
  sequence: bigint;
  payload: string;
  hash: Uint8Array | null;
}

/** Verifies the chain of the journal in `dir`; throws only when the file cannot be read. */
export function verifyJournal(dir: string, options: VerifyOptions = {}): VerifyResult {
  const path = journalPath(dir);
  requireJournalFile(path);
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(pathToFileURL(path), { readOnly: true, timeout: BUSY_TIMEOUT_MS });
  } catch (err) {
    throw journalError("opening the journal to verify", path, err);
  }
  try {
    const version = Number(db.prepare("PRAGMA user_version").get()?.user_version ?? 0);
    if (version < SCHEMA_VERSION) {
      throw new GatewayError(
        "JOURNAL_IO",
        `journal ${path} has no hash chain yet (user_version ${version}): start the gateway once to migrate it`,
        { details: { path } },
      );
    }
    db.exec("BEGIN"); // one snapshot for the whole walk
    try {
      return walk(db, options);
    } finally {
      db.exec("COMMIT");
    }
  } catch (err) {
    if (err instanceof GatewayError) throw err;
    throw journalError("verifying the journal", path, err);
  } finally {
    db.close();
  }
}

function readSegments(db: DatabaseSync): Segment[] {
  const stmt = db.prepare(
    "SELECT start_sequence, kind, prev_sequence, prev_hash, note FROM chain_segments ORDER BY start_sequence",
  );
  stmt.setReadBigInts(true);
  return stmt.all().map((r) => ({
    start: r.start_sequence as bigint,
    kind: String(r.kind) as SegmentKind,
    ...(typeof r.prev_sequence === "bigint" ? { prevSequence: r.prev_sequence } : {}),
    ...(r.prev_hash instanceof Uint8Array ? { prevHash: hex(r.prev_hash) } : {}),
    ...(typeof r.note === "string" ? { note: r.note } : {}),
  }));
}

function walk(db: DatabaseSync, options: VerifyOptions): VerifyResult {
  const segments = readSegments(db);
  const meta = (key: string) => db.prepare("SELECT value FROM meta WHERE key = ?").get(key)?.value;
  const pruned = readPruned(db);
  const highWater = /^\d+$/.test(String(meta("high_water")))
    ? BigInt(String(meta("high_water")))
    : 0n;
  const result: VerifyResult = { ok: true, checked: 0, beforeChain: 0, segments: [] };
  const chainFrom = segments[0]?.start ?? 0n;
  const segmentOf = (sequence: bigint): Segment | undefined => {
    let found: Segment | undefined;
    for (const s of segments) if (s.start <= sequence) found = s;
    return found;
  };
  const anchor = options.anchor;
  let from = options.from ?? 0n;
  if (anchor) {
    const verdict = checkAnchor(db, anchor, pruned);
    if (verdict === "pruned") result.anchorPruned = true;
    else if (verdict !== "ok") {
      result.ok = false;
      result.broken = { sequence: anchor.sequence, kind: "anchor", message: verdict };
      return result;
    } else {
      result.anchorOk = true;
      if (options.from === undefined || anchor.sequence < from) from = anchor.sequence;
    }
  }

  const rows = db.prepare(
    "SELECT sequence, payload, hash FROM records WHERE sequence >= ? ORDER BY sequence",
  );
  rows.setReadBigInts(true);
  const iterator = rows.iterate(from) as Iterator<Record<string, unknown>>;
  const nextRow = (): Row | undefined => {
    const n = iterator.next();
    if (n.done) return undefined;
    const v = n.value;
    return {
      sequence: v.sequence as bigint,
      payload: typeof v.payload === "string" ? v.payload : String(v.payload),
      hash: v.hash instanceof Uint8Array ? v.hash : null,
    };
  };

  let prev: ChainHead | undefined; // the last record checked
  let segment: Segment | undefined;
  let row = nextRow();
  while (row !== undefined) {
    const next = nextRow();
    if (row.sequence < chainFrom) {
      result.beforeChain++;
      row = next;
      continue;
    }
    const seg = segmentOf(row.sequence);
    let link: Uint8Array;
    if (seg !== segment) {
      segment = seg;
      if (seg) result.segments.push(seg);
      link = ZERO_HASH;
      if (prev === undefined) {
        // the walk's first record: the record before it, or where pruning left off
        const before = recordBefore(db, row.sequence);
        if (before && seg && before.sequence >= seg.start) {
          link = before.hash ?? ZERO_HASH;
        } else if (
          pruned &&
          seg &&
          pruned.sequence >= seg.start &&
          pruned.sequence < row.sequence
        ) {
          link = pruned.hash;
          result.prunedThrough = { sequence: pruned.sequence, hash: hex(pruned.hash) };
        }
      }
    } else {
      link = prev!.hash;
    }
    const expected = chainHash(link, row.sequence, row.payload);
    if (row.hash === null || row.hash.length !== HASH_BYTES || !same(expected, row.hash)) {
      result.ok = false;
      result.broken = classify(row, link, prev, next, highWater);
      return result;
    }
    result.checked++;
    result.first ??= row.sequence;
    result.last = row.sequence;
    prev = { sequence: row.sequence, hash: row.hash };
    if (result.checked % PROGRESS_EVERY === 0)
      options.onProgress?.({ checked: result.checked, sequence: row.sequence });
    row = next;
  }
  if (prev) result.headHash = hex(prev.hash);
  return result;
}

/** What a record that fails its check looks like (the kinds in the header). */
function classify(
  row: Row,
  link: Uint8Array,
  prev: ChainHead | undefined,
  next: Row | undefined,
  highWater: bigint,
): NonNullable<VerifyResult["broken"]> {
  const sequence = row.sequence;
  const said = documentSequence(row.payload);
  if (said !== undefined && said !== sequence) {
    return {
      sequence,
      kind: "reordered",
      message: `record ${sequence} holds the document of sequence ${said} (records reordered)`,
    };
  }
  const after = prev ? ` ${prev.sequence}` : " (the start of its segment)";
  if (
    next?.hash &&
    same(chainHash(link, next.sequence, next.payload), next.hash) &&
    !(row.hash && same(chainHash(row.hash, next.sequence, next.payload), next.hash))
  ) {
    return {
      sequence,
      kind: "inserted",
      message: `record ${sequence} was inserted afterwards: it does not link to its predecessor${after}, the next record ${next.sequence} does`,
    };
  }
  if (next === undefined && sequence > highWater) {
    return {
      sequence,
      kind: "inserted",
      message: `record ${sequence} was inserted afterwards: it is above the journal's high_water ${highWater} and does not link to its predecessor${after}`,
    };
  }
  if (row.hash && prev && sequence > prev.sequence + 1n) {
    const missing =
      sequence === prev.sequence + 2n
        ? `sequence ${prev.sequence + 1n} is`
        : `sequences ${prev.sequence + 1n} to ${sequence - 1n} are`;
    return {
      sequence,
      kind: "deleted",
      message: `record ${sequence} does not link to its predecessor ${prev.sequence}: ${missing} missing (deleted)`,
    };
  }
  return {
    sequence,
    kind: "modified",
    message:
      row.hash === null
        ? `record ${sequence} has no hash (modified)`
        : `record ${sequence} was modified: its hash does not match its content`,
  };
}

/** The CloudEvents `sequence` of a stored document, when it has one. */
function documentSequence(payload: string): bigint | undefined {
  try {
    const doc = JSON.parse(payload) as { sequence?: unknown };
    return typeof doc.sequence === "string" && /^\d{1,20}$/.test(doc.sequence)
      ? BigInt(doc.sequence)
      : undefined;
  } catch {
    return undefined;
  }
}

function recordBefore(
  db: DatabaseSync,
  sequence: bigint,
): { sequence: bigint; hash: Uint8Array | null } | undefined {
  const stmt = db.prepare(
    "SELECT sequence, hash FROM records WHERE sequence < ? ORDER BY sequence DESC LIMIT 1",
  );
  stmt.setReadBigInts(true);
  const row = stmt.get(sequence);
  if (!row) return undefined;
  return {
    sequence: row.sequence as bigint,
    hash: row.hash instanceof Uint8Array ? row.hash : null,
  };
}

/** "ok", "pruned" or what is wrong with the anchor, in words. */
function checkAnchor(
  db: DatabaseSync,
  anchor: { sequence: bigint; hash: string },
  pruned: ChainHead | undefined,
): string {
  const stmt = db.prepare("SELECT hash FROM records WHERE sequence = ?");
  const row = stmt.get(anchor.sequence);
  const want = anchor.hash.toLowerCase();
  if (row) {
    const has = row.hash instanceof Uint8Array ? hex(row.hash) : "none";
    return has === want
      ? "ok"
      : `anchor ${anchor.sequence}: the journal holds hash ${has} for it, the anchor says ${want} (the history was changed after the anchor was seen)`;
  }
  if (pruned && anchor.sequence === pruned.sequence) {
    return hex(pruned.hash) === want
      ? "pruned"
      : `anchor ${anchor.sequence}: pruned with hash ${hex(pruned.hash)}, the anchor says ${want}`;
  }
  if (pruned && anchor.sequence < pruned.sequence) return "pruned";
  return `anchor ${anchor.sequence} is not in the journal (never written, or deleted)`;
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}
