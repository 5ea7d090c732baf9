/**
 * An array-backed Journal for the publisher tests: the same contract as the real journal
 * (sequence from 1, ids `<epoch>-<sequence>`, waitForAppend, markPublished, setAside, replace), without disk, so
 * these tests do not depend on the sqlite journal. It also counts what the publisher was handed
 * (`handedOut`) and the most records it had outstanding (`maxOutstanding`), which the tests use
 * to check resends and the in-flight window structurally.
 */
import type { GatewayEvent } from "../../src/events/types.ts";
import type {
  Journal,
  JournalQuery,
  JournalRecord,
  JournalStats,
  RenderedEvent,
} from "../../src/journal/types.ts";
import { abortError } from "../../src/lib/abort.ts";

/** Topic `test/<class>/<subject>`; payload carries id, sequence and data; status retained. */
export function renderForTest(event: GatewayEvent, sequence: bigint, id: string): RenderedEvent {
  return {
    topic: `test/${event.topicClass}/${event.subject}`,
    retain: event.topicClass === "status",
    payload: JSON.stringify({ id, sequence: String(sequence), type: event.type, data: event.data }),
  };
}

export class MemoryJournal implements Journal {
  readonly epoch = "mem";
  readonly records: JournalRecord[] = [];
  /** How many times each sequence was returned by unpublished(). */
  readonly handedOut = new Map<bigint, number>();
  /** Hook called after each markPublished (tests use it to act mid-stream). */
  onMarked: ((sequences: readonly bigint[]) => void) | undefined;
  maxOutstanding = 0;
  private readonly outstanding = new Set<bigint>();
  private readonly waiters = new Set<{ after: bigint; wake: () => void }>();

  append(events: readonly GatewayEvent[]): Promise<JournalRecord[]> {
    const added = events.map((event) => {
      const sequence = BigInt(this.records.length + 1);
      const id = `${this.epoch}-${sequence}`;
      const record: JournalRecord = {
        ...renderForTest(event, sequence, id),
        sequence,
        id,
        type: event.type,
        device: event.device,
        subject: event.subject,
        time: event.time,
      };
      this.records.push(record);
      return record;
    });
    const last = this.records.length;
    for (const waiter of this.waiters) if (BigInt(last) > waiter.after) waiter.wake();
    return Promise.resolve(added);
  }

  /** Rewrites a pending record in place (same sequence and id), like the real journal. */
  replace(sequence: bigint, event: GatewayEvent): Promise<JournalRecord> {
    const index = Number(sequence) - 1;
    const current = this.records[index];
    if (!current || current.published || current.setAside !== undefined)
      return Promise.reject(new Error(`replace: record ${sequence} is not pending`));
    const record: JournalRecord = {
      ...renderForTest(event, sequence, current.id),
      sequence,
      id: current.id,
      type: event.type,
      device: event.device,
      subject: event.subject,
      time: event.time,
    };
    this.records[index] = record;
    return Promise.resolve(record);
  }

  unpublished(after: bigint, max: number): JournalRecord[] {
    const out: JournalRecord[] = [];
    for (let i = Number(after); i < this.records.length && out.length < max; i++) {
      const record = this.records[i]!;
      if (record.published || record.setAside !== undefined) continue;
      out.push(record);
      this.handedOut.set(record.sequence, (this.handedOut.get(record.sequence) ?? 0) + 1);
      this.outstanding.add(record.sequence);
    }
    this.maxOutstanding = Math.max(this.maxOutstanding, this.outstanding.size);
    return out;
  }

  markPublished(sequences: readonly bigint[]): void {
    for (const sequence of sequences) {
      const record = this.records[Number(sequence) - 1];
      if (!record) throw new Error(`markPublished: no record ${sequence}`);
      record.published = true;
      this.outstanding.delete(sequence);
    }
    this.onMarked?.(sequences);
  }

  setAside(sequence: bigint, reason: string): void {
    const record = this.records[Number(sequence) - 1];
    if (!record) throw new Error(`setAside: no record ${sequence}`);
    if (!record.published) record.setAside ??= { reason, at: Date.now() };
    this.outstanding.delete(sequence);
  }

  /** Forget what was handed out but not acknowledged (the publisher's connection was lost). */
  resetOutstanding(): void {
    this.outstanding.clear();
  }

  lastSequence(): bigint {
    return BigInt(this.records.length);
  }

  waitForAppend(after: bigint, signal: AbortSignal): Promise<void> {
    if (BigInt(this.records.length) > after) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter = {
        after,
        wake: () => {
          this.waiters.delete(waiter);
          signal.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        this.waiters.delete(waiter);
        reject(abortError(signal));
      };
      if (signal.aborted) return onAbort();
      this.waiters.add(waiter);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  query(query: JournalQuery): JournalRecord[] {
    const hits = this.records.filter(
      (r) =>
        (query.device === undefined || r.device === query.device) &&
        (query.subject === undefined || r.subject === query.subject) &&
        (query.type === undefined || r.type === query.type) &&
        (query.from === undefined || r.time >= query.from) &&
        (query.to === undefined || r.time <= query.to) &&
        (query.setAside !== true || r.setAside !== undefined),
    );
    if (query.order === "desc") hits.reverse();
    return hits.slice(0, query.limit ?? 1000);
  }

  stats(): JournalStats {
    const pending = this.records.filter((r) => !r.published && r.setAside === undefined);
    return {
      lastSequence: BigInt(this.records.length),
      pending: pending.length,
      bytes: 0,
      ...(pending[0] ? { oldestPendingTime: pending[0].time } : {}),
      dropped: 0,
      corruptSkipped: 0,
      lastCommitMs: 0,
      setAside: this.records.filter((r) => r.setAside !== undefined).length,
    };
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  get pending(): number {
    return this.records.filter((r) => !r.published && r.setAside === undefined).length;
  }
}
