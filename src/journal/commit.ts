/**
 * One group commit: a single write transaction that moves the publisher's cursor (store.ts) to
 * where its acknowledgements have brought it, makes room under the size budget (which may move
 * the cursor past dropped records), writes the set-aside rows of records set aside since the
 * last commit (set-aside.ts), inserts the group's rendered records, rewrites the pending
 * records replace() asked for (only those still pending after the size policy: a record done
 * or dropped is left as it is and that replacement fails), appends an overflow notice when the
 * size policy dropped pending events, and moves meta.high_water and meta.dropped. Either all of
 * it is committed or, on any error, all of it is rolled back and the in-memory state is left as
 * it was: a failed group keeps nothing and reuses no sequence that was committed.
 *
 * The commit point is COMMIT returning. Whatever fails after it (a checkpoint, a log line)
 * never turns a committed group into a failed one (issue 12.6: a checkpoint that threw after
 * COMMIT made the sink append the same events again, under new sequences and ids).
 *
 * The sequence ceiling in journal.seq is raised before BEGIN when the group would pass it.
 *
 * The hash chain (chain.ts) is written by the same INSERTs: each row's hash links to the one
 * before, from the head kept in memory (state.link, moved after COMMIT). Replacements are
 * applied before the inserts, each followed by the rehash of the records from it to the head,
 * so the group's rows link to the rewritten chain.
 */
import type { DatabaseSync, SQLInputValue, StatementSync } from "node:sqlite";
import { cloudEventId, formatSequence } from "../events/cloudevent.ts";
import { EVENT_TYPES, type GatewayEvent } from "../events/types.ts";
import { GatewayError } from "../lib/errors.ts";
import { type ChainHead, chainHash, rehash, ZERO_HASH } from "./chain.ts";
import {
  estimateRowBytes,
  INSERT_PARAMS_PER_ROW,
  insertRowsSql,
  journalRecord,
  pushRecordValues,
  REPLACE_SQL,
  replaceValues,
} from "./records.ts";
import type { Replacement } from "./replacements.ts";
import { SEQ_RESERVE_BLOCK, writeSeqCeiling } from "./seq-file.ts";
import { SetAsideStatements } from "./set-aside.ts";
import {
  makeRoom,
  pagesFor,
  type RoomStatements,
  roomStatements,
  type SizeBudget,
} from "./size-policy.ts";
import { isFull, journalError } from "./sqlite-errors.ts";
import { MQTT_SINK } from "./store.ts";
import type { JournalRecord, Render, SetAsideMark } from "./types.ts";

/** Most rows per multi-row INSERT (records.ts insertRowsSql); a group's rest goes by halves. */
const INSERT_ROWS = 32;

/** Rows of the next INSERT when `left` rows are left: INSERT_ROWS, or the power of two below. */
function chunkRows(left: number): number {
  if (left >= INSERT_ROWS) return INSERT_ROWS;
  let rows = 1;
  while (rows * 2 <= left) rows *= 2;
  return rows;
}

/** One append() call waiting for its group commit. */
export interface Batch {
  events: readonly GatewayEvent[];
  resolve(records: JournalRecord[]): void;
  reject(err: unknown): void;
}

/** A batch rendered with the sequences it would get. */
export interface PreparedBatch {
  batch: Batch;
  records: JournalRecord[];
  bytes: number;
}

/** What a commit may change; updated only after COMMIT returned. */
export interface CommitState {
  highWater: bigint;
  ceiling: bigint;
  dropped: number;
  /** Records above the cursor. */
  pending: number;
  /** The publisher's cursor as acknowledgements moved it (journal.ts), maybe not saved yet. */
  done: bigint;
  /** The cursor as the file holds it. */
  savedDone: bigint;
  /** What the next record links to (chain.ts); undefined: zero, a segment's first record. */
  link: ChainHead | undefined;
}

export interface CommitContext {
  db: DatabaseSync;
  dir: string;
  path: string;
  epoch: string;
  gatewayId: string;
  budget: SizeBudget;
  render: Render;
  now: () => number;
  state: CommitState;
  /** Acknowledged above the cursor (out of order): not counted as dropped when deleted. */
  acked: (sequence: bigint) => boolean;
  /** Those acknowledged above the cursor, when they changed since the last commit (cursor.ts). */
  takeAhead: () => bigint[] | undefined;
  /**
   * False when the file system itself is out of room (disk-space.ts): an SQLITE_FULL is then
   * not the size policy's hard stop, and deleting more in a retry would only need more room.
   */
  roomOnDisk: () => boolean;
}

export interface CommitResult {
  dropped: number;
  /** Records above the cursor the size policy deleted (dropped or acknowledged late). */
  deleted: number;
  /** Sequences committed, including an overflow notice. */
  inserted: number;
  /** The replacements applied; the others found their record published or gone. */
  replaced: Set<Replacement>;
  /** The overflow notice this commit appended, if the size policy dropped events. */
  notice?: JournalRecord;
}

export function prepareBatch(ctx: CommitContext, batch: Batch, first: bigint): PreparedBatch {
  const records: JournalRecord[] = [];
  let bytes = 0;
  let sequence = first;
  for (const event of batch.events) {
    const id = cloudEventId(ctx.epoch, sequence);
    const rendered = ctx.render(event, sequence, id);
    bytes += estimateRowBytes(id, event, rendered);
    records.push(journalRecord(sequence, id, event, rendered));
    sequence++;
  }
  return { batch, records, bytes };
}

/**
 * The group rendered again from the next free sequence, when a commit took sequences since it
 * was prepared (an overflow notice of a room commit, full-disk.ts): a sequence is part of the
 * id and of the payload. The same group when nothing moved.
 */
export function renumber(ctx: CommitContext, group: readonly PreparedBatch[]): PreparedBatch[] {
  let next = ctx.state.highWater + 1n;
  if (group[0]?.records[0]?.sequence === next) return [...group];
  return group.map((prepared) => {
    const again = prepareBatch(ctx, prepared.batch, next);
    next += BigInt(again.records.length);
    return again;
  });
}

export class Committer {
  readonly #ctx: CommitContext;
  /** INSERTs of 1, 2, 4 ... INSERT_ROWS rows, by their row count, prepared when first used. */
  readonly #inserts = new Map<number, StatementSync>();
  readonly #replace: StatementSync;
  readonly #setMeta: StatementSync;
  readonly #setCursor: StatementSync;
  readonly #clearAhead: StatementSync;
  readonly #addAhead: StatementSync;
  readonly #oldestKept: StatementSync;
  readonly #room: RoomStatements;
  readonly #setAside: SetAsideStatements;

  constructor(ctx: CommitContext) {
    this.#ctx = ctx;
    const db = ctx.db;
    this.#replace = db.prepare(REPLACE_SQL);
    this.#setMeta = db.prepare("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)");
    this.#clearAhead = db.prepare("DELETE FROM acked_ahead");
    this.#addAhead = db.prepare("INSERT OR IGNORE INTO acked_ahead(sequence) VALUES (?)");
    this.#setCursor = db.prepare(`UPDATE cursors SET done_through = ? WHERE sink = '${MQTT_SINK}'`);
    this.#oldestKept = db.prepare("SELECT min(sequence) AS m FROM records WHERE sequence > ?");
    this.#oldestKept.setReadBigInts(true);
    this.#room = roomStatements(db);
    this.#setAside = new SetAsideStatements(db);
  }

  /**
   * Commits the cursor, a group and replacements (each possibly empty, to save the cursor or
   * enforce the budget). On SQLITE_FULL it retries with more room; it throws a GatewayError
   * after ROLLBACK. `budget`: the size policy's limit for this commit (default the context's;
   * full-disk.ts passes a step on the way down to it).
   */
  commit(
    group: readonly PreparedBatch[],
    replacements: readonly Replacement[] = [],
    setAsides: ReadonlyMap<bigint, SetAsideMark> = new Map(),
    budget: SizeBudget = this.#ctx.budget,
  ): CommitResult {
    const { state } = this.#ctx;
    const bytes =
      group.reduce((sum, b) => sum + b.bytes, 0) +
      replacements.reduce((sum, r) => sum + estimateRowBytes(r.record.id, r.event, r.rendered), 0) +
      2048; // + an overflow notice
    const count = group.reduce((sum, b) => sum + b.records.length, 0);
    const reserveTo = state.highWater + BigInt(count) + 1n;
    if (reserveTo > state.ceiling) {
      try {
        writeSeqCeiling(this.#ctx.dir, reserveTo + SEQ_RESERVE_BLOCK);
      } catch (err) {
        throw journalError("raising the sequence ceiling", this.#ctx.dir, err);
      }
      state.ceiling = reserveTo + SEQ_RESERVE_BLOCK;
    }
    let need = pagesFor(bytes, budget.pageSize);
    for (let attempt = 0; ; attempt++) {
      try {
        return this.#transaction(group, replacements, setAsides, need, budget);
      } catch (err) {
        if (!isFull(err) || attempt >= 2 || !this.#ctx.roomOnDisk())
          throw journalError("journal commit", this.#ctx.path, err);
        need = need * 2 + Math.ceil(budget.maxPages / 16);
      }
    }
  }

  #transaction(
    group: readonly PreparedBatch[],
    replacements: readonly Replacement[],
    setAsides: ReadonlyMap<bigint, SetAsideMark>,
    needPages: number,
    budget: SizeBudget,
  ): CommitResult {
    const { db, state } = this.#ctx;
    const before = state.done;
    const first = group[0]?.records[0]?.sequence;
    if (first !== undefined && first !== state.highWater + 1n) {
      // rendered for other sequences (a commit came between): never reuse one, never skip one
      throw new GatewayError(
        "JOURNAL_IO",
        `journal ${this.#ctx.path}: a group rendered for sequence ${first} after ${state.highWater}`,
        { details: { path: this.#ctx.path } },
      );
    }
    db.exec("BEGIN IMMEDIATE");
    try {
      const room = makeRoom(
        this.#room,
        needPages,
        budget,
        budget.deleteChunkRows,
        before,
        this.#ctx.acked,
      );
      // biome-ignore lint/complexity/useMathMinMax: bigints (Math.max takes numbers only)
      const done = room.droppedThrough > before ? room.droppedThrough : before;
      const deleted = room.deletedAbove;
      for (const [sequence, mark] of setAsides) this.#setAside.add(sequence, mark);
      const ahead = this.#ctx.takeAhead();
      if (ahead !== undefined) {
        this.#clearAhead.run();
        for (const sequence of ahead) if (sequence > done) this.#addAhead.run(sequence);
      }
      if (!room.ok) {
        throw new GatewayError(
          "JOURNAL_BATCH",
          `journal ${this.#ctx.path} cannot hold ${group.length} batch(es) of about ${needPages} pages even when emptied (max_bytes ${budget.maxBytes})`,
          { details: { path: this.#ctx.path, max_bytes: budget.maxBytes } },
        );
      }
      let link = state.link;
      const replaced = new Set<Replacement>();
      for (const r of [...replacements].sort((a, b) =>
        a.record.sequence < b.record.sequence ? -1 : 1,
      )) {
        const { sequence, id } = r.record;
        if (sequence <= done || this.#ctx.acked(sequence)) continue; // done or dropped meanwhile
        if (this.#replace.run(...replaceValues(sequence, id, r.event, r.rendered)).changes > 0) {
          replaced.add(r);
          link = rehash(db, sequence) ?? link;
        }
      }
      let inserted = 0;
      ({ link, inserted } = this.#insertGroup(
        group.map((b) => b.records),
        link,
      ));
      let notice: JournalRecord | undefined;
      if (room.dropped > 0) {
        const at = state.highWater + BigInt(inserted) + 1n;
        ({ notice, link } = this.#insertOverflow(at, room.dropped, done, link));
        inserted += 1;
      }
      const highWater = state.highWater + BigInt(inserted);
      if (inserted > 0) this.#setMeta.run("high_water", highWater.toString());
      if (room.dropped > 0) this.#setMeta.run("dropped", String(state.dropped + room.dropped));
      if (done !== state.savedDone) this.#setCursor.run(done);
      db.exec("COMMIT");
      // the commit point: nothing below may throw
      state.highWater = highWater;
      state.dropped += room.dropped;
      state.pending += inserted - deleted;
      state.done = done;
      state.savedDone = done;
      state.link = link;
      return { dropped: room.dropped, deleted, inserted, replaced, ...(notice ? { notice } : {}) };
    } catch (err) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw err;
    }
  }

  /** The INSERT statement of `rows` rows. */
  #insertRows(rows: number): StatementSync {
    let statement = this.#inserts.get(rows);
    if (statement === undefined) {
      statement = this.#ctx.db.prepare(insertRowsSql(rows));
      this.#inserts.set(rows, statement);
    }
    return statement;
  }

  /**
   * Inserts the group's rows in order, each with its chain hash: INSERT_ROWS at a time while
   * that many are left, then by halves (the rest of 125 rows: 16, 8, 4 and 1, not 29 single
   * INSERTs). Returns the new head and how many rows went in. The rows' values go straight from
   * the records into one parameter list (an array per row and a head object per record cost
   * the commit a tenth of its time in garbage); the payload's crc32 comes from the bytes its
   * hash was taken of (one UTF-8 encoding of the payload, not two).
   */
  #insertGroup(
    group: readonly (readonly JournalRecord[])[],
    from: ChainHead | undefined,
  ): { link: ChainHead | undefined; inserted: number } {
    let hash = from?.hash ?? ZERO_HASH;
    let sequence = from?.sequence;
    let left = group.reduce((sum, records) => sum + records.length, 0);
    const inserted = left;
    const params: SQLInputValue[] = [];
    const crc = { value: 0 };
    let rows = 0;
    for (const records of group) {
      for (const record of records) {
        if (params.length === 0) rows = chunkRows(left);
        sequence = record.sequence;
        hash = chainHash(hash, sequence, record.payload, crc);
        pushRecordValues(params, record, crc.value);
        params.push(hash);
        if (params.length === rows * INSERT_PARAMS_PER_ROW) {
          this.#insertRows(rows).run(...params);
          params.length = 0;
        }
        left--;
      }
    }
    return { link: sequence === undefined ? from : { sequence, hash }, inserted };
  }

  #insertOverflow(
    sequence: bigint,
    dropped: number,
    done: bigint,
    link: ChainHead | undefined,
  ): { notice: JournalRecord; link: ChainHead | undefined } {
    const oldest = (this.#oldestKept.get(done)?.m as bigint | null) ?? sequence;
    const event: GatewayEvent = {
      type: EVENT_TYPES.journalOverflow,
      device: this.#ctx.gatewayId,
      subject: "journal",
      time: this.#ctx.now(),
      data: { dropped, oldest_kept_sequence: formatSequence(oldest) },
      topicClass: "status",
      asset: {},
    };
    const id = cloudEventId(this.#ctx.epoch, sequence);
    const notice = journalRecord(sequence, id, event, this.#ctx.render(event, sequence, id));
    return { notice, link: this.#insertGroup([[notice]], link).link };
  }
}
