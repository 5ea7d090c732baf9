/**
 * The durable journal (contract in types.ts; file layout and recovery rules in store.ts; size
 * policy in size-policy.ts; retention in maintenance.ts; the publisher's cursor in cursor.ts).
 *
 * Group commit: append() queues its batch. A commit runs at once (setImmediate) when the
 * journal's commits have kept to at most 1.25 per commitIntervalMs (commit-pace.ts: a credit)
 * or commitMaxEvents are queued, else once the credit allows, at most commitIntervalMs after the
 * first queued event was taken in (by the caller's queue, `heldSince`, or by append()). One
 * transaction per group (at most commitMaxEvents events, and few enough bytes for the WAL
 * budget); every append() of the group resolves after COMMIT returned with synchronous=FULL,
 * so a resolved append survives kill -9 and power loss.
 * A batch is never split across transactions: it is kept or rejected whole. Whatever fails
 * after COMMIT returned (the WAL checkpoint that follows, on a full disk) is logged and never
 * reported as a failed append: the events are committed.
 *
 * Publication: markPublished() moves the publisher's cursor in memory at once (unpublished()
 * and stats() see it); the cursor is saved with the next group commit, or after
 * max(commitIntervalMs, CURSOR_SAVE_MS) in a small transaction at synchronous=NORMAL: losing it
 * in a crash only causes MQTT-legal duplicates. (Saved after commitIntervalMs alone, a short
 * interval with events flowing evenly put a cursor transaction between every two group
 * commits.) Records are written once; nothing is updated per publish.
 *
 * Fresh records reach the publisher from memory (tail.ts): unpublished() reads SQLite only for
 * a backlog older than the tail.
 *
 * replace() rewrites a still pending record in a group commit it starts at once (a session
 * waits for it), durable like an append; a record that may have been published is never
 * rewritten (rules in replacements.ts). On a full disk it is committed like any group (room
 * made first, below), so a publisher's session start never waits on the disk: the publisher
 * needs nothing of its own for a full disk.
 *
 * The hash chain (chain.ts) is written by the group commits; chainHead() gives the last record
 * the publisher is done with and its hash (such a record is never rewritten by replace(), so
 * the head stays valid wherever it was published: the gateway status and health messages).
 *
 * setAside() acknowledges a record like a publish, with a reason: its row goes into the next
 * group commit, with the cursor (rules in set-aside.ts).
 *
 * A full file system is the size limit (disk-space.ts): every group commit runs under the
 * budget measured just before it. A commit (or its checkpoint) refused for want of room while
 * the disk is short releases journal.reserve, brings the journal under the new budget in
 * steps (full-disk.ts) and is tried once more; only then is it reported failed. The same
 * happens at open, so a journal opens and appends on a disk that is already full.
 */
import { performance } from "node:perf_hooks";
import type { DatabaseSync } from "node:sqlite";
import type { GatewayEvent } from "../events/types.ts";
import { abortError } from "../lib/abort.ts";
import { GatewayError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";
import { AppendQueue } from "./append-queue.ts";
import { AppendWaiters } from "./append-waiters.ts";
import { chainStart, hex, linkFor, settledHead } from "./chain.ts";
import { startIntegrityCheck } from "./check.ts";
import {
  type CommitContext,
  type CommitResult,
  Committer,
  type PreparedBatch,
  renumber,
} from "./commit.ts";
import { CommitPace } from "./commit-pace.ts";
import { DiskSpace } from "./disk-space.ts";
import { JournalDrain } from "./drain.ts";
import { DiskRoom } from "./full-disk.ts";
import { Maintenance } from "./maintenance.ts";
import { selectRecords } from "./record-query.ts";
import { decodeRow, type Row } from "./records.ts";
import { type Replacement, Replacements } from "./replacements.ts";
import { readSeqCeiling } from "./seq-file.ts";
import { SetAsideStatements, withSetAside } from "./set-aside.ts";
import type { SizeBudget } from "./size-policy.ts";
import { isCorruption, isIoError, isOutOfRoom, journalError } from "./sqlite-errors.ts";
import { fileSize, journalPath, openStore } from "./store.ts";
import type {
  Journal,
  JournalChainHead,
  JournalOptions,
  JournalQuery,
  JournalRecord,
  JournalStats,
  SetAsideMark,
} from "./types.ts";

/** How old a measurement of the disk a group commit may use (disk-space.ts), ms. */
const MEASURE_EVERY_MS = 100;
/** How often retention runs, at most; it also runs at open. */
const RETENTION_EVERY_MS = 60_000;
/**
 * Shortest wait before the cursor is saved on its own (no group commit carries it): the default
 * commit interval, so that a shorter one does not add a transaction per group commit.
 */
const CURSOR_SAVE_MS = 50;

export async function openJournal(options: JournalOptions): Promise<Journal> {
  const space = new DiskSpace(options.dir, journalPath(options.dir), options.maxBytes, options.log);
  const store = openStore(options.dir, options.log, () => space.release());
  try {
    return new SqliteJournal(options, store, space);
  } catch (err) {
    store.db.close();
    throw journalError("opening the journal", store.path, err);
  }
}

class SqliteJournal implements Journal {
  readonly epoch: string;
  readonly #options: JournalOptions;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #ctx: CommitContext;
  readonly #committer: Committer;
  readonly #maintenance: Maintenance;
  readonly #drain: JournalDrain;
  readonly #replacements: Replacements;
  readonly #queue: AppendQueue;
  readonly #space: DiskSpace;
  readonly #room: DiskRoom;
  readonly #waiters = new AppendWaiters();
  readonly #pace: CommitPace;
  #timer: NodeJS.Timeout | undefined;
  /** When #timer fires (performance.now() time). */
  #timerDue = Number.POSITIVE_INFINITY;
  #immediate: NodeJS.Immediate | undefined;
  #retentionTimer: NodeJS.Timeout | undefined;
  #lastCommitMs = 0;
  #corruptSkipped = 0;
  /** setAside() calls not committed yet. */
  #setAsides = new Map<bigint, SetAsideMark>();
  readonly #setAsideStmts: SetAsideStatements;
  #damage: string | undefined;
  #stopCheck: (() => Promise<void>) | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;
  readonly #chainStart: bigint;

  constructor(options: JournalOptions, store: ReturnType<typeof openStore>, space: DiskSpace) {
    this.#options = options;
    this.#log = options.log;
    this.#now = options.now ?? Date.now;
    this.epoch = store.epoch;
    this.#space = space;
    const { db, path } = store;
    const budget = space.measure();
    this.#drain = new JournalDrain({
      db,
      path,
      done: store.done,
      ackedAhead: store.ackedAhead,
      reportCorrupt: (sequence, err) => this.#reportCorrupt(sequence, err),
      skip: (sequence) => this.#advance([sequence]),
    });
    this.#ctx = {
      db,
      dir: options.dir,
      path,
      epoch: store.epoch,
      gatewayId: options.gatewayId,
      budget,
      render: options.render,
      now: this.#now,
      acked: (sequence) => this.#drain.cursor.isAcked(sequence),
      takeAhead: () => this.#drain.cursor.takeAhead(),
      roomOnDisk: () => !this.#space.short(),
      state: {
        highWater: store.highWater,
        ceiling: readSeqCeiling(options.dir) ?? 0n,
        dropped: store.dropped,
        pending: pendingAtOpen(db, store),
        done: store.done,
        savedDone: store.done,
        link: linkFor(db, store.highWater + 1n),
      },
    };
    this.#corruptSkipped = store.salvaged?.lost ?? 0;
    this.#chainStart = chainStart(db);
    this.#committer = new Committer(this.#ctx);
    this.#queue = new AppendQueue();
    this.#pace = new CommitPace(options.commitIntervalMs);
    this.#maintenance = new Maintenance(db, path, () => this.#ctx.budget, this.#log);
    this.#setAsideStmts = new SetAsideStatements(db);
    this.#replacements = new Replacements(
      db,
      path,
      options.render,
      (sequence) => !this.#drain.cursor.isAcked(sequence),
      () => this.#ctx.state.highWater,
    );
    // Bring a journal that is over budget (max_bytes lowered, or a full disk) back under it,
    // then set the hard stop, run retention once, and start the retention timer.
    this.#room = new DiskRoom({
      ctx: this.#ctx,
      space,
      maintenance: this.#maintenance,
      log: this.#log,
      commitRoom: (budget) => {
        const started = performance.now();
        this.#settle(this.#attempt([], [], budget), [], [], started);
      },
    });
    this.#room.regain("opening");
    try {
      this.#maintenance.vacuum();
    } catch (err) {
      // a disk with no room left: the free pages stay for the next commits to reuse
      if (!isOutOfRoom(err) && !isIoError(err)) throw err;
      this.#log.warn(
        { err: journalError("journal vacuum", path, err) },
        "journal: giving free pages back at open failed (the disk is full)",
      );
    }
    this.#room.measure(0);
    this.#retention();
    const every = Math.min(RETENTION_EVERY_MS, Math.max(1000, options.retentionMs / 2));
    this.#retentionTimer = setInterval(() => this.#retention(), every);
    this.#retentionTimer.unref();
    if (options.integrityCheck !== false) {
      this.#stopCheck = startIntegrityCheck(path, options.dir, this.#log, (damage) => {
        this.#damage = damage;
      });
    }
    this.#log.info(
      {
        path,
        epoch: this.epoch,
        last_sequence: String(store.highWater),
        pending: this.#ctx.state.pending,
      },
      "journal opened",
    );
  }

  append(
    events: readonly GatewayEvent[],
    options: { heldSince?: number } = {},
  ): Promise<JournalRecord[]> {
    if (this.#closed || this.#closing) {
      return Promise.reject(new GatewayError("JOURNAL_IO", `journal ${this.#ctx.path} is closed`));
    }
    if (events.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      this.#queue.push({ events, resolve, reject });
      this.#schedule(false, options.heldSince);
    });
  }

  replace(sequence: bigint, event: GatewayEvent): Promise<JournalRecord> {
    if (this.#closed || this.#closing) {
      return Promise.reject(new GatewayError("JOURNAL_IO", `journal ${this.#ctx.path} is closed`));
    }
    const queued = this.#replacements.add(sequence, event);
    this.#schedule(true);
    return queued;
  }

  unpublished(after: bigint, max: number): JournalRecord[] {
    if (this.#closed || max <= 0) return [];
    return this.#drain.unpublished(after, max);
  }

  markPublished(sequences: readonly bigint[]): void {
    if (this.#closed || this.#closing) return;
    this.#advance(sequences);
  }

  setAside(sequence: bigint, reason: string): void {
    // a record published (or skipped) already stays what it is
    if (this.#closed || this.#closing || this.#drain.cursor.isAcked(sequence)) return;
    this.#setAsides.set(sequence, { reason, at: this.#now() });
    this.#advance([sequence]);
    this.#commitBy(performance.now() + this.#options.commitIntervalMs);
  }

  waitForAppend(after: bigint, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(abortError(signal));
    if (this.#ctx.state.highWater > after) return Promise.resolve();
    if (this.#closed || this.#closing) {
      return Promise.reject(new GatewayError("ABORTED", "journal closed"));
    }
    return this.#waiters.wait(after, signal);
  }

  lastSequence(): bigint {
    return this.#ctx.state.highWater;
  }

  query(query: JournalQuery): JournalRecord[] {
    if (this.#closed) return [];
    const { sql, params } = selectRecords(query, { hasSetAside: true });
    const out: JournalRecord[] = [];
    try {
      const stmt = this.#ctx.db.prepare(sql);
      stmt.setReadBigInts(true);
      for (const row of stmt.iterate(...params)) {
        const decoded = decodeRow(row as Row);
        if (!decoded.ok) {
          this.#reportCorrupt(decoded.sequence);
          continue;
        }
        const record = decoded.record;
        const pendingMark = this.#setAsides.get(record.sequence);
        if (pendingMark) record.setAside = pendingMark;
        else withSetAside(record, row as Row);
        if (!record.setAside && this.#drain.cursor.isAcked(record.sequence))
          record.published = true;
        out.push(record);
      }
    } catch (err) {
      if (!isCorruption(err)) throw journalError("querying the journal", this.#ctx.path, err);
      this.#reportCorrupt(null, err);
    }
    return out;
  }

  chainHead(): JournalChainHead | undefined {
    if (this.#closed) return undefined;
    try {
      const head = settledHead(this.#ctx.db, this.#drain.cursor.done, this.#chainStart);
      return head && { sequence: head.sequence, hash: hex(head.hash) };
    } catch (err) {
      this.#log.warn({ err, path: this.#ctx.path }, "journal: reading the chain head failed");
      return undefined;
    }
  }

  stats(): JournalStats {
    const { state, path } = this.#ctx;
    const stats: JournalStats = {
      lastSequence: state.highWater,
      pending: Math.max(0, state.pending - this.#drain.cursor.ackedAhead),
      bytes: fileSize(path) + fileSize(`${path}-wal`) + this.#space.reserveHeld,
      dropped: state.dropped,
      corruptSkipped: this.#corruptSkipped,
      lastCommitMs: this.#lastCommitMs,
      setAside: this.#setAsides.size,
      ...(this.#damage === undefined ? {} : { damage: this.#damage }),
    };
    if (!this.#closed) {
      stats.setAside = this.#setAsides.size + this.#setAsideStmts.count();
      if (state.pending > 0) {
        const time = this.#drain.oldestPendingTime();
        if (time !== undefined) stats.oldestPendingTime = time;
      }
    }
    return stats;
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#stopCheck?.();
      this.#shutdown();
    })();
    return this.#closing;
  }

  #shutdown(): void {
    clearInterval(this.#retentionTimer);
    this.#flush();
    this.#clearCommitTimers();
    this.#closed = true;
    this.#waiters.closeAll();
    try {
      this.#maintenance.checkpoint(-1);
    } catch (err) {
      this.#log.warn({ err, path: this.#ctx.path }, "journal checkpoint at close failed");
    }
    this.#ctx.db.close();
  }

  /** Acknowledges records: the cursor moves in memory now, on disk with the next commit. */
  #advance(sequences: readonly bigint[]): void {
    const moved = this.#drain.cursor.ack(sequences);
    if (moved === 0 && !this.#drain.cursor.aheadChanged) return;
    const { state } = this.#ctx;
    state.pending -= moved;
    state.done = this.#drain.cursor.done;
    this.#commitBy(performance.now() + Math.max(this.#options.commitIntervalMs, CURSOR_SAVE_MS));
  }

  /**
   * Schedules the commit of what was just queued. `now`: at once (a replacement: a session
   * waits for it), whatever the interval. `heldSince`: when the oldest of these events was
   * handed to the gateway's event queue (event-sink.ts), which holds what arrives while its
   * previous append commits: the interval counts from then, so that no event waits for two
   * commit intervals (issue 12: a poll read while the commit before it was pending waited for
   * that commit and then a whole interval more).
   */
  #schedule(now = false, heldSince?: number): void {
    if (this.#immediate) return;
    const at = performance.now();
    const due = this.#pace.due(at, heldSince);
    if (now || this.#queue.events >= this.#options.commitMaxEvents || due <= at) {
      this.#clearCommitTimers();
      this.#immediate = setImmediate(() => this.#flush());
    } else {
      this.#commitBy(due);
    }
  }

  /** A commit (#flush) at `due` at the latest. */
  #commitBy(due: number): void {
    if (this.#immediate || due >= this.#timerDue) return;
    clearTimeout(this.#timer);
    this.#timerDue = due;
    this.#timer = setTimeout(() => this.#flush(), Math.max(0, due - performance.now()));
  }

  #clearCommitTimers(): void {
    clearTimeout(this.#timer);
    clearImmediate(this.#immediate);
    this.#timer = undefined;
    this.#timerDue = Number.POSITIVE_INFINITY;
    this.#immediate = undefined;
  }

  /** Commits everything queued, group by group, then the cursor if it moved. Synchronous. */
  #flush(): void {
    this.#clearCommitTimers();
    if (this.#closed) return;
    let committed = false;
    while (this.#queue.size > 0) {
      const group = this.#queue.takeGroup(this.#ctx, this.#options.commitMaxEvents);
      if (group.length > 0) {
        this.#commit(group, this.#replacements.take());
        committed = true;
      }
    }
    if (this.#replacements.size > 0) {
      this.#commit([], this.#replacements.take());
      committed = true;
    }
    const { state } = this.#ctx;
    if (
      !committed &&
      (state.done !== state.savedDone ||
        this.#setAsides.size > 0 ||
        this.#drain.cursor.aheadChanged)
    ) {
      this.#ctx.db.exec("PRAGMA synchronous = NORMAL");
      try {
        this.#commit([]);
      } finally {
        this.#ctx.db.exec("PRAGMA synchronous = FULL");
      }
    }
  }

  #commit(group: PreparedBatch[], replacements: Replacement[] = []): void {
    const started = performance.now();
    let result: CommitResult;
    let committed = group;
    try {
      result = this.#attempt(group, replacements);
    } catch (err) {
      const retried = this.#room.outOfRoom(err) ? this.#retry(group, replacements) : undefined;
      if (!retried || "failed" in retried) {
        const error = journalError("journal commit", this.#ctx.path, retried?.failed ?? err);
        this.#log.error({ err: error, batches: group.length }, "journal commit failed");
        for (const prepared of group) prepared.batch.reject(error);
        for (const r of replacements) r.reject(error);
        return;
      }
      ({ result, group: committed } = retried);
    }
    this.#settle(result, committed, replacements, started);
  }

  /**
   * After a commit refused for want of room: make room (the reserve is released), once more.
   * Making room may have committed an overflow notice: the group then takes the sequences
   * after it (rendered again: a sequence is part of the id and the payload).
   */
  #retry(
    group: PreparedBatch[],
    replacements: Replacement[],
  ): { result: CommitResult; group: PreparedBatch[] } | { failed: unknown } {
    try {
      this.#room.regainOrThrow();
      const renumbered = renumber(this.#ctx, group);
      return { result: this.#attempt(renumbered, replacements), group: renumbered };
    } catch (err) {
      return { failed: err };
    }
  }

  /**
   * One try: the budget measured now (disk-space.ts; `budget` given: a step of full-disk.ts),
   * the checkpoint a large group wants first, the transaction. Throws with nothing changed.
   */
  #attempt(group: PreparedBatch[], replacements: Replacement[], budget?: SizeBudget): CommitResult {
    const setAsides = this.#setAsides;
    this.#setAsides = new Map();
    try {
      if (budget === undefined) {
        this.#room.measure(MEASURE_EVERY_MS);
      }
      const bytes = group.reduce((sum, b) => sum + b.bytes, 0);
      this.#maintenance.checkpoint(bytes > this.#ctx.budget.groupBytes ? 0 : undefined);
      return this.#commitNow(group, replacements, setAsides, budget);
    } catch (err) {
      this.#drain.cursor.aheadNotSaved();
      for (const [sequence, mark] of setAsides)
        if (!this.#setAsides.has(sequence)) this.#setAsides.set(sequence, mark);
      throw err;
    }
  }

  /** Committed: from here on nothing may turn it into a failure. */
  #settle(
    result: CommitResult,
    group: PreparedBatch[],
    replacements: Replacement[],
    started: number,
  ): void {
    this.#lastCommitMs = performance.now() - started;
    // a cursor save alone spends no credit
    if (group.length > 0 || replacements.length > 0) this.#pace.spend(started);
    for (const prepared of group) {
      this.#drain.committed(prepared.records);
      prepared.batch.resolve(prepared.records);
    }
    if (result.notice) this.#drain.committed([result.notice]);
    for (const r of result.replaced) this.#drain.replaced(r.record);
    this.#replacements.settle(replacements, result.replaced);
    this.#waiters.notify(this.#ctx.state.highWater);
    this.#afterCommit(result, group.length);
  }

  /** One transaction; on success the cursor and the tail follow what the size policy did. */
  #commitNow(
    group: PreparedBatch[],
    replacements: Replacement[],
    setAsides: ReadonlyMap<bigint, SetAsideMark> = new Map(),
    budget?: SizeBudget,
  ): CommitResult {
    const before = this.#drain.cursor.done;
    const result = this.#committer.commit(group, replacements, setAsides, budget);
    if (this.#ctx.state.done > before) this.#drain.dropped(this.#ctx.state.done);
    return result;
  }

  /**
   * Logging, the checkpoint and the room on the disk after a commit: failures here are logged,
   * never thrown (the commit stands).
   */
  #afterCommit(result: CommitResult, batches: number): void {
    let short = false;
    try {
      this.#log.debug(
        { events: result.inserted, batches, ms: this.#lastCommitMs },
        "journal group committed",
      );
      if (result.dropped > 0) {
        this.#log.warn(
          {
            dropped: result.dropped,
            total_dropped: this.#ctx.state.dropped,
            ...(this.#space.report.diskBound
              ? { limit: "file system", capacity: this.#space.report.capacity }
              : { limit: "max_bytes" }),
          },
          "journal full: dropped the oldest pending events",
        );
      }
      this.#maintenance.checkpoint();
    } catch (err) {
      short = this.#room.outOfRoom(err);
      this.#log.warn(
        { err: journalError("journal checkpoint", this.#ctx.path, err) },
        "journal checkpoint after a commit failed (the commit stands)",
      );
    }
    this.#room.afterCommit(short);
  }

  #reportCorrupt(sequence: bigint | null, err?: unknown): void {
    this.#corruptSkipped++;
    this.#log.error(
      { err, sequence: sequence === null ? undefined : String(sequence), path: this.#ctx.path },
      "journal record corrupt: skipped",
    );
  }

  #retention(): void {
    if (this.#closed) return;
    try {
      const cutoff = this.#now() - this.#options.retentionMs;
      const deleted = this.#maintenance.retention(cutoff, this.#ctx.state.savedDone);
      if (deleted > 0) this.#log.debug({ deleted }, "journal retention deleted published events");
      this.#setAsideStmts.deleteOrphans();
    } catch (err) {
      this.#log.warn(
        { err: journalError("journal retention", this.#ctx.path, err) },
        "journal retention failed",
      );
    }
  }
}

/**
 * Records above the cursor at open: high_water - cursor, without reading them (a backlog of a
 * million is counted in no time); counted when a salvage may have left holes above it.
 */
function pendingAtOpen(db: DatabaseSync, store: ReturnType<typeof openStore>): number {
  if (store.done >= store.holesBelow) return Number(store.highWater - store.done);
  const stmt = db.prepare("SELECT count(*) AS n FROM records WHERE sequence > ?");
  return Number(stmt.get(store.done)?.n ?? 0);
}
