/**
 * Journal.replace(): rewriting a record that is still pending, for the publisher's reserved
 * gateway status (its sequence is taken before the session it announces exists).
 *
 * Rules:
 * - Only a pending record is rewritten, in place: same sequence, same id, the new event's
 *   type, device, subject, time, topic, retain, payload and crc. A record the publisher is done
 *   with (at or below its cursor, or acknowledged and not yet passed by it), skipped as
 *   corrupt, dropped by the size policy or never written is refused with JOURNAL_IO: whatever
 *   may have gone out under an id stays what the journal holds for it.
 * - The rewrite is queued here and applied by the next group commit (commit.ts), at
 *   synchronous=FULL like an append; its promise settles after COMMIT. The check is made twice:
 *   at the call (to refuse at once) and in the commit, after the size policy ran in the same
 *   transaction, so a record that stops being pending meanwhile is refused.
 * - The hash chain (chain.ts): the commit recomputes the hashes from the rewritten record to the
 *   head. So that this stays a small write (one group commit's worth, never a stall or a WAL
 *   past its budget), a record more than REHASH_MAX records below the head is refused at the
 *   call (`too_far`). The publisher then does what it does for a reserved record that is gone:
 *   it ends that session and starts a new episode, whose reserved record is at the head (after
 *   a long outage, the first reserved status stays an `offline` status).
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import type { GatewayEvent } from "../events/types.ts";
import { GatewayError } from "../lib/errors.ts";
import { decodeRow, RECORD_COLUMNS, type Row } from "./records.ts";
import { journalError } from "./sqlite-errors.ts";
import type { JournalRecord, Render, RenderedEvent } from "./types.ts";

/** One replace() call waiting for its group commit: the record's new content, rendered. */
export interface Replacement {
  record: JournalRecord;
  event: GatewayEvent;
  rendered: RenderedEvent;
  resolve(record: JournalRecord): void;
  reject(err: unknown): void;
}

/** Records between a rewritten record and the head, at most (their hashes are recomputed). */
export const REHASH_MAX = 10_000;

/** Why a record cannot be replaced. */
type Refusal = "gone" | "published" | "corrupt" | "too_far";

const REASONS: Record<Refusal, string> = {
  gone: "it is not in the journal (dropped by the size policy or never written)",
  published: "it was published (or skipped as corrupt)",
  corrupt: "it is corrupt",
  too_far: `it is more than ${REHASH_MAX} records below the head (the hash chain after it would be rewritten)`,
};

export class Replacements {
  readonly #path: string;
  readonly #render: Render;
  readonly #record: StatementSync;
  #queue: Replacement[] = [];

  readonly #isPending: (sequence: bigint) => boolean;
  readonly #head: () => bigint;

  constructor(
    db: DatabaseSync,
    path: string,
    render: Render,
    isPending: (sequence: bigint) => boolean,
    head: () => bigint,
  ) {
    this.#path = path;
    this.#render = render;
    this.#isPending = isPending;
    this.#head = head;
    this.#record = db.prepare(`SELECT ${RECORD_COLUMNS} FROM records WHERE sequence = ?`);
    this.#record.setReadBigInts(true);
  }

  get size(): number {
    return this.#queue.length;
  }

  /** Queues a rewrite of `sequence`; rejects at once when it is not pending. */
  add(sequence: bigint, event: GatewayEvent): Promise<JournalRecord> {
    let record: JournalRecord;
    let rendered: RenderedEvent;
    try {
      if (this.#head() - sequence > BigInt(REHASH_MAX)) throw this.#refusal(sequence, "too_far");
      const current = this.#pending(sequence);
      rendered = this.#render(event, sequence, current.id);
      record = {
        sequence,
        id: current.id,
        type: event.type,
        device: event.device,
        subject: event.subject,
        time: event.time,
        ...rendered,
      };
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ record, event, rendered, resolve, reject });
    });
  }

  /** Everything queued, for the next group commit. */
  take(): Replacement[] {
    const taken = this.#queue;
    this.#queue = [];
    return taken;
  }

  /** After COMMIT: resolves the rewrites applied, refuses the others with their reason. */
  settle(replacements: readonly Replacement[], applied: ReadonlySet<Replacement>): void {
    for (const r of replacements) {
      if (applied.has(r)) r.resolve(r.record);
      else r.reject(this.#refusal(r.record.sequence, this.#why(r.record.sequence)));
    }
  }

  #pending(sequence: bigint): JournalRecord {
    let row: Row | undefined;
    try {
      row = this.#record.get(sequence) as Row | undefined;
    } catch (err) {
      throw journalError(`reading record ${sequence}`, this.#path, err);
    }
    const decoded = row === undefined ? undefined : decodeRow(row);
    if (decoded?.ok && this.#isPending(sequence)) return decoded.record;
    throw this.#refusal(
      sequence,
      decoded === undefined ? "gone" : decoded.ok ? "published" : "corrupt",
    );
  }

  /** After a rewrite that was not applied: was the record published, or is it gone? */
  #why(sequence: bigint): Refusal {
    try {
      return this.#record.get(sequence) === undefined ? "gone" : "published";
    } catch {
      return "gone";
    }
  }

  #refusal(sequence: bigint, why: Refusal): GatewayError {
    return new GatewayError(
      "JOURNAL_IO",
      `journal ${this.#path}: record ${sequence} cannot be replaced: ${REASONS[why]}`,
      { details: { path: this.#path, sequence: String(sequence), reason: why } },
    );
  }
}
