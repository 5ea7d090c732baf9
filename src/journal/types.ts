/**
 * The journal contract: durable store-and-forward between the engine and the publisher. Every
 * event is appended (and group-committed) before it is published; the journal assigns the
 * sequence number and the id; the publisher marks records published on PUBACK.
 */
import type { GatewayEvent } from "../events/types.ts";
import type { Logger } from "../lib/logger.ts";

/** How an event goes on the wire: rendered once at append and stored as published. */
export interface RenderedEvent {
  topic: string;
  retain: boolean;
  /** The CloudEvents JSON document, exactly as it is published. */
  payload: string;
}

/** Renders an event with the sequence and id the journal gave it (supplied by the app). */
export type Render = (event: GatewayEvent, sequence: bigint, id: string) => RenderedEvent;

export interface JournalRecord extends RenderedEvent {
  sequence: bigint;
  id: string;
  type: string;
  device: string;
  subject: string;
  /** Event time, ms since the epoch. */
  time: number;
  /**
   * Set (true) by queries on a record done for the publisher (acknowledged by the broker, or
   * skipped): at or below its cursor, and not set aside. Absent on pending records, on records
   * set aside and on records handed out.
   */
  published?: true;
  /**
   * Present when the record was set aside: the broker refused it for good (set-aside.ts). Filled
   * by query(); unpublished() never returns such a record.
   */
  setAside?: SetAsideMark;
}

/** Why and when a record was set aside. */
export interface SetAsideMark {
  /** The broker's refusal, in words (with its reason code when it gave one). */
  reason: string;
  /** When it was set aside, ms since the epoch. */
  at: number;
}

export interface JournalOptions {
  /** Folder of the journal files (gateway.data_dir). Created when missing. */
  dir: string;
  gatewayId: string;
  maxBytes: number;
  retentionMs: number;
  commitIntervalMs: number;
  commitMaxEvents: number;
  render: Render;
  log: Logger;
  /** Clock, for tests; default Date.now. */
  now?: () => number;
  /** Check the file's integrity in the background after opening (default true; check.ts). */
  integrityCheck?: boolean;
}

export interface JournalQuery {
  device?: string;
  subject?: string;
  type?: string;
  /** Event time range, ms since the epoch, inclusive. */
  from?: number;
  to?: number;
  /** Default 1000. */
  limit?: number;
  /** Sequence order; default ascending. */
  order?: "asc" | "desc";
  /** Only records set aside (each with its `setAside` reason and time). */
  setAside?: boolean;
}

export interface JournalStats {
  /** The highest sequence number ever assigned (0 when none). */
  lastSequence: bigint;
  /** Records not yet acknowledged by the broker. */
  pending: number;
  /** Size of the journal on disk: database, WAL and reserve (what max_bytes bounds). */
  bytes: number;
  /** Event time of the oldest pending record. */
  oldestPendingTime?: number;
  /** Events dropped by the size policy since the journal was created. */
  dropped: number;
  /** Corrupt records or pages skipped since open. */
  corruptSkipped: number;
  /** Duration of the last group commit, ms. */
  lastCommitMs: number;
  /** Damage the background integrity check found (the next start moves the file aside). */
  damage?: string;
  /**
   * Records set aside and still kept (a replay that got them through clears them). Always set
   * by the journal; optional only so that stats made up elsewhere (tests) need not say it.
   */
  setAside?: number;
}

/** A record of the hash chain (chain.ts): its sequence and hash (64 hex digits). */
export interface JournalChainHead {
  sequence: bigint;
  hash: string;
}

export interface Journal {
  /** Random id of this journal file's lifetime; part of every event id. */
  readonly epoch: string;
  /**
   * Appends events; resolves once the group commit holding them completed (durable), with the
   * records in order. A full disk is the size limit like max_bytes (disk-space.ts): room is
   * made by the size policy and the append goes through. Rejects (and keeps nothing of the
   * batch) when the disk refuses the write even so (another writer took every byte the journal
   * could free, its reserve included; read-only, I/O error). `heldSince` (a performance.now()
   * time): when the oldest of the events was taken in by the caller's own queue; the commit
   * interval counts from then.
   */
  append(
    events: readonly GatewayEvent[],
    options?: { heldSince?: number },
  ): Promise<JournalRecord[]>;
  /**
   * Rewrites a record that is still unpublished into `event` (rendered with the record's own
   * sequence and id); resolves once that group commit completed (durable), with the new
   * record. Rejects with JOURNAL_IO when the record was published, dropped by the size
   * policy, or never existed: a record that may have been sent is never changed. (The
   * publisher reserves the sequence of a session's online status this way.)
   */
  replace(sequence: bigint, event: GatewayEvent): Promise<JournalRecord>;
  /** Unpublished records with sequence > after, in sequence order, at most max. */
  unpublished(after: bigint, max: number): JournalRecord[];
  /** Marks records published (their PUBACK arrived). Durable at the next commit. */
  markPublished(sequences: readonly bigint[]): void;
  /**
   * Sets a record aside: the broker refused it for good (too large, not authorized...). It is
   * done for the publisher (unpublished() never returns it again, at once) and kept in the
   * journal with `reason` and the time, durable at the next commit like a publish mark. A
   * record already published, or gone, is left as it is.
   */
  setAside(sequence: bigint, reason: string): void;
  /** Resolves once a record with sequence > after is committed, or rejects when aborted. */
  waitForAppend(after: bigint, signal: AbortSignal): Promise<void>;
  /** The highest sequence committed so far (0 when none). */
  lastSequence(): bigint;
  /**
   * The chain head to publish outside the edge PC: the last record (at or below the
   * publisher's cursor, so no replace() can ever change it) and its hash; undefined when the
   * chain has none yet.
   */
  chainHead?(): JournalChainHead | undefined;
  query(query: JournalQuery): JournalRecord[];
  stats(): JournalStats;
  /** Commits what is pending, checkpoints and closes. Idempotent. */
  close(): Promise<void>;
}
