/**
 * The durable journal (contract in types.ts; file layout and recovery rules in store.ts; size
 * policy in size-policy.ts; retention in maintenance.ts).
 *
 * Group commit: append() queues its batch. A commit runs at once (setImmediate) when the
 * journal was idle (nothing committed in the last commitIntervalMs) or commitMaxEvents are
 * queued, else commitIntervalMs after the first queued event. One transaction per group (at
 * most commitMaxEvents events, and few enough bytes for the WAL budget); every append() of the
 * group resolves after COMMIT returned with synchronous=FULL, so a resolved append survives
 * kill -9 and power loss. A batch is never split across transactions: it is kept or rejected
 * whole. Publish marks are applied in the next group commit, or after commitIntervalMs in a
 * small transaction at synchronous=NORMAL: losing one in a crash only causes an MQTT-legal
 * duplicate. Until then unpublished() already leaves marked records out.
 *
 * replace() rewrites a still pending record in a group commit it starts at once (a session
 * waits for it), durable like an append; a record that may have been published is never
 * rewritten (rules in replacements.ts).
 *
 * setAside() is a publish mark with a reason: it goes with the marks, into the same group
 * commit (rules in set-aside.ts).
 */
import { performance } from "node:perf_hooks";
import type { StatementSync } from "node:sqlite";
import type { GatewayEvent } from "../events/types.ts";
import { abortError } from "../lib/abort.ts";
import { GatewayError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";
import { AppendWaiters } from "./append-waiters.ts";
import {
  type Batch,
  type CommitContext,
  Committer,
  type PreparedBatch,
  prepareBatch,
} from "./commit.ts";
import { Maintenance } from "./maintenance.ts";
import { decodeRow, prepareQuery, RECORD_COLUMNS, type Row } from "./records.ts";
import { type Replacement, Replacements } from "./replacements.ts";
import { readSeqCeiling } from "./seq-file.ts";
import { SetAsideStatements, withSetAside } from "./set-aside.ts";
import { pagesFor, sizeBudget } from "./size-policy.ts";
import { isCorruption, journalError } from "./sqlite-errors.ts";
import { fileSize, openStore } from "./store.ts";
import type {
  Journal,
  JournalOptions,
  JournalQuery,
  JournalRecord,
  JournalStats,
  SetAsideMark,
} from "./types.ts";

/** How often retention runs, at most; it also runs at open. */
const RETENTION_EVERY_MS = 60_000;

export async function openJournal(options: JournalOptions): Promise<Journal> {
  const store = openStore(options.dir, options.log);
  try {
    return new SqliteJournal(options, store);
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
  readonly #pendingStmt: StatementSync;
  readonly #pendingRowidStmt: StatementSync;
  readonly #oldestPendingTime: StatementSync;
  readonly #replacements: Replacements;
  #queue: Batch[] = [];
  #queuedEvents = 0;
  #marks = new Map<bigint, number>();
  /** setAside() calls not committed yet; each also has its mark in #marks. */
  #setAsides = new Map<bigint, SetAsideMark>();
  readonly #setAsideStmts: SetAsideStatements;
  readonly #waiters = new AppendWaiters();
  #timer: NodeJS.Timeout | undefined;
  #immediate: NodeJS.Immediate | undefined;
  #retentionTimer: NodeJS.Timeout | undefined;
  #lastCommitAt = Number.NEGATIVE_INFINITY;
  #lastCommitMs = 0;
  #corruptSkipped = 0;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(options: JournalOptions, store: ReturnType<typeof openStore>) {
    this.#options = options;
    this.#log = options.log;
    this.#now = options.now ?? Date.now;
    this.epoch = store.epoch;
    const { db, path } = store;
    const budget = sizeBudget(options.maxBytes);
    const pendingCount = db
      .prepare("SELECT count(*) AS n FROM records WHERE published_at IS NULL")
      .get()?.n;
    this.#ctx = {
      db,
      dir: options.dir,
      path,
      epoch: store.epoch,
      gatewayId: options.gatewayId,
      budget,
      render: options.render,
      now: this.#now,
      state: {
        highWater: store.highWater,
        ceiling: readSeqCeiling(options.dir) ?? 0n,
        dropped: store.dropped,
        pending: Number(pendingCount ?? 0),
      },
    };
    this.#corruptSkipped = store.salvaged?.lost ?? 0;
    this.#committer = new Committer(this.#ctx);
    this.#maintenance = new Maintenance(db, path, budget, this.#log);
    const pendingSql = `SELECT ${RECORD_COLUMNS} FROM records %s WHERE published_at IS NULL AND sequence > ? ORDER BY sequence LIMIT ?`;
    this.#pendingStmt = db.prepare(pendingSql.replace("%s", "INDEXED BY records_pending"));
    this.#pendingStmt.setReadBigInts(true);
    this.#pendingRowidStmt = db.prepare(pendingSql.replace("%s", "NOT INDEXED"));
    this.#pendingRowidStmt.setReadBigInts(true);
    this.#oldestPendingTime = db.prepare(
      "SELECT time FROM records WHERE published_at IS NULL ORDER BY sequence LIMIT 1",
    );
    this.#replacements = new Replacements(db, path, options.render);
    this.#setAsideStmts = new SetAsideStatements(db);
    // Bring a journal that is over budget (max_bytes lowered) back under it, then set the
    // hard stop, run retention once, and start the retention timer.
    this.#committer.commit([], new Map());
    this.#maintenance.vacuum();
    db.exec(`PRAGMA max_page_count = ${budget.maxPages}`);
    this.#retention();
    const every = Math.min(RETENTION_EVERY_MS, Math.max(1000, options.retentionMs / 2));
    this.#retentionTimer = setInterval(() => this.#retention(), every);
    this.#retentionTimer.unref();
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

  append(events: readonly GatewayEvent[]): Promise<JournalRecord[]> {
    if (this.#closed || this.#closing) {
      return Promise.reject(new GatewayError("JOURNAL_IO", `journal ${this.#ctx.path} is closed`));
    }
    if (events.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      this.#queue.push({ events, resolve, reject });
      this.#queuedEvents += events.length;
      this.#schedule();
    });
  }

  replace(sequence: bigint, event: GatewayEvent): Promise<JournalRecord> {
    if (this.#closed || this.#closing) {
      return Promise.reject(new GatewayError("JOURNAL_IO", `journal ${this.#ctx.path} is closed`));
    }
    const queued = this.#replacements.add(sequence, event, this.#marks.has(sequence));
    this.#schedule(true);
    return queued;
  }

  unpublished(after: bigint, max: number): JournalRecord[] {
    if (this.#closed || max <= 0) return [];
    const limit = max + this.#marks.size;
    let rows: Row[];
    try {
      rows = this.#pendingStmt.all(after, limit) as Row[];
    } catch (err) {
      if (!isCorruption(err)) throw journalError("reading pending records", this.#ctx.path, err);
      this.#reportCorrupt(null, err);
      try {
        rows = this.#pendingRowidStmt.all(after, limit) as Row[];
      } catch (again) {
        if (!isCorruption(again))
          throw journalError("reading pending records", this.#ctx.path, again);
        return [];
      }
    }
    const out: JournalRecord[] = [];
    for (const row of rows) {
      if (out.length >= max) break;
      if (typeof row.sequence === "bigint" && this.#marks.has(row.sequence)) continue;
      const decoded = decodeRow(row);
      if (decoded.ok) {
        out.push(decoded.record);
      } else {
        this.#reportCorrupt(decoded.sequence);
        // published_at 0 takes it out of the pending set for good (counted once).
        if (decoded.sequence !== null) this.#mark(decoded.sequence, 0);
      }
    }
    return out;
  }

  markPublished(sequences: readonly bigint[]): void {
    if (this.#closed || this.#closing) return;
    const at = this.#now();
    for (const sequence of sequences) this.#mark(sequence, at);
  }

  setAside(sequence: bigint, reason: string): void {
    if (this.#closed || this.#closing) return;
    const at = this.#now();
    this.#setAsides.set(sequence, { reason, at });
    this.#mark(sequence, at);
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
    const { stmt, params } = prepareQuery(this.#ctx.db, query);
    const out: JournalRecord[] = [];
    try {
      for (const row of stmt.iterate(...params, query.limit ?? 1000)) {
        const decoded = decodeRow(row as Row);
        if (decoded.ok) out.push(withSetAside(decoded.record, row as Row));
        else this.#reportCorrupt(decoded.sequence);
      }
    } catch (err) {
      if (!isCorruption(err)) throw journalError("querying the journal", this.#ctx.path, err);
      this.#reportCorrupt(null, err);
    }
    return out;
  }

  stats(): JournalStats {
    const { state, path } = this.#ctx;
    const stats: JournalStats = {
      lastSequence: state.highWater,
      pending: Math.max(0, state.pending - this.#marks.size),
      bytes: fileSize(path) + fileSize(`${path}-wal`),
      dropped: state.dropped,
      corruptSkipped: this.#corruptSkipped,
      lastCommitMs: this.#lastCommitMs,
      setAside: this.#setAsides.size,
    };
    if (!this.#closed) {
      const time = this.#oldestPendingTime.get()?.time;
      if (typeof time === "number") stats.oldestPendingTime = time;
      stats.setAside = this.#setAsides.size + this.#setAsideStmts.count();
    }
    return stats;
  }

  close(): Promise<void> {
    this.#closing ??= Promise.resolve().then(() => this.#shutdown());
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

  #mark(sequence: bigint, at: number): void {
    this.#marks.set(sequence, at);
    if (!this.#timer && !this.#immediate) {
      this.#timer = setTimeout(() => this.#flush(), this.#options.commitIntervalMs);
    }
  }

  /** `now`: commit at once (a replacement: a session waits for it), whatever the interval. */
  #schedule(now = false): void {
    if (this.#immediate) return;
    const idle = performance.now() - this.#lastCommitAt >= this.#options.commitIntervalMs;
    if (now || this.#queuedEvents >= this.#options.commitMaxEvents || idle) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#immediate = setImmediate(() => this.#flush());
    } else if (!this.#timer) {
      this.#timer = setTimeout(() => this.#flush(), this.#options.commitIntervalMs);
    }
  }

  #clearCommitTimers(): void {
    clearTimeout(this.#timer);
    clearImmediate(this.#immediate);
    this.#timer = undefined;
    this.#immediate = undefined;
  }

  /** Commits everything queued, group by group, then any marks left. Synchronous. */
  #flush(): void {
    this.#clearCommitTimers();
    if (this.#closed) return;
    let committed = false;
    while (this.#queue.length > 0) {
      const group = this.#takeGroup();
      if (group.length > 0) {
        this.#commit(group, this.#replacements.take());
        committed = true;
      }
    }
    if (this.#replacements.size > 0) {
      this.#commit([], this.#replacements.take());
      committed = true;
    }
    if (!committed && this.#marks.size > 0) {
      this.#ctx.db.exec("PRAGMA synchronous = NORMAL");
      try {
        this.#commit([]);
      } finally {
        this.#ctx.db.exec("PRAGMA synchronous = FULL");
      }
    }
  }

  /** Renders batches off the queue into one group within the event and byte limits. */
  #takeGroup(): PreparedBatch[] {
    const { budget, state } = this.#ctx;
    const group: PreparedBatch[] = [];
    let next = state.highWater + 1n;
    let events = 0;
    let bytes = 0;
    while (this.#queue.length > 0) {
      const batch = this.#queue[0]!;
      if (group.length > 0 && events + batch.events.length > this.#options.commitMaxEvents) break;
      let prepared: PreparedBatch;
      try {
        prepared = prepareBatch(this.#ctx, batch, next);
      } catch (err) {
        this.#dequeue();
        batch.reject(err);
        continue;
      }
      if (group.length > 0 && bytes + prepared.bytes > budget.groupBytes) break;
      this.#dequeue();
      if (
        prepared.bytes > budget.groupBytes * 2 ||
        pagesFor(prepared.bytes, budget.pageSize) > budget.maxPages / 2
      ) {
        batch.reject(
          new GatewayError(
            "JOURNAL_BATCH",
            `a batch of ${batch.events.length} event(s), about ${Math.round(prepared.bytes)} bytes, is too large for journal ${this.#ctx.path} (max_bytes ${budget.maxBytes})`,
            { details: { path: this.#ctx.path, max_bytes: budget.maxBytes } },
          ),
        );
        continue;
      }
      group.push(prepared);
      next += BigInt(prepared.rows.length);
      events += prepared.rows.length;
      bytes += prepared.bytes;
    }
    return group;
  }

  #dequeue(): void {
    const batch = this.#queue.shift();
    if (batch) this.#queuedEvents -= batch.events.length;
  }

  #commit(group: PreparedBatch[], replacements: Replacement[] = []): void {
    const started = performance.now();
    const marks = this.#marks;
    this.#marks = new Map();
    const setAsides = this.#setAsides;
    this.#setAsides = new Map();
    let replaced = new Set<Replacement>();
    try {
      const bytes = group.reduce((sum, b) => sum + b.bytes, 0);
      this.#maintenance.checkpoint(bytes > this.#ctx.budget.groupBytes ? 0 : undefined);
      const result = this.#committer.commit(group, marks, replacements, setAsides);
      this.#lastCommitMs = performance.now() - started;
      // marks alone do not end idleness
      if (group.length > 0 || replacements.length > 0) this.#lastCommitAt = started;
      replaced = result.replaced;
      this.#log.debug(
        {
          events: result.inserted,
          batches: group.length,
          marks: marks.size,
          ms: this.#lastCommitMs,
        },
        "journal group committed",
      );
      if (result.dropped > 0) {
        this.#log.warn(
          { dropped: result.dropped, total_dropped: this.#ctx.state.dropped },
          "journal full: dropped the oldest pending events",
        );
      }
      this.#maintenance.checkpoint();
    } catch (err) {
      for (const [sequence, at] of marks)
        if (!this.#marks.has(sequence)) this.#marks.set(sequence, at);
      for (const [sequence, mark] of setAsides)
        if (!this.#setAsides.has(sequence)) this.#setAsides.set(sequence, mark);
      const error = journalError("journal commit", this.#ctx.path, err);
      this.#log.error({ err: error, batches: group.length }, "journal commit failed");
      for (const prepared of group) prepared.batch.reject(error);
      for (const r of replacements) r.reject(error);
      return;
    }
    for (const prepared of group) prepared.batch.resolve(prepared.records);
    this.#replacements.settle(replacements, replaced);
    this.#waiters.notify(this.#ctx.state.highWater);
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
      const deleted = this.#maintenance.retention(this.#now() - this.#options.retentionMs);
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
