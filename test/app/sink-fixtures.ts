/**
 * Fixtures of the event sink suite: a real journal whose disk "refuses" (append rejects with
 * JOURNAL_IO, as a failing or locked disk makes it) while the test says so, then accepts; and
 * a check that what the journal holds is exactly the stream pushed minus the gaps its overflow
 * notices announce.
 */
import { expect } from "vitest";
import { EVENT_TYPES, type GatewayEvent } from "../../src/events/types.ts";
import type { Journal, JournalRecord } from "../../src/journal/types.ts";
import { GatewayError } from "../../src/lib/errors.ts";
import { assertValidEvent } from "../support/event-schema.ts";

/** The real journal, refused by its "disk" while `refuse` says so. */
export class RefusingJournal {
  readonly journal: Journal;
  /** Called with each batch the sink offers; true refuses it with JOURNAL_IO. */
  refuse: (events: readonly GatewayEvent[]) => boolean = () => false;
  /** Called once an accepted append is in flight (the real journal has not committed it yet). */
  onAccepted: (events: readonly GatewayEvent[]) => void = () => {};
  refusals = 0;

  constructor(journal: Journal) {
    this.journal = journal;
  }

  append(events: readonly GatewayEvent[]): Promise<JournalRecord[]> {
    if (this.refuse(events)) {
      this.refusals++;
      return Promise.reject(new GatewayError("JOURNAL_IO", "test disk refuses writes"));
    }
    const committed = this.journal.append(events);
    this.onAccepted(events);
    return committed;
  }
}

export interface Notice {
  dropped: number;
  oldestKept: bigint;
  /** Sequence of the notice itself. */
  sequence: bigint;
}

/**
 * Checks the journal against the pushed stream: the events it holds are the pushed ones, in
 * order, minus runs of dropped ones; every run is announced by exactly one valid overflow
 * notice whose `dropped` is the run's length and whose `oldest_kept_sequence` is the sequence
 * of the event kept right after the run. Events are told apart by time (unique per fixture).
 * Returns the notices in stream order.
 */
export function expectStreamWithGaps(
  pushed: readonly GatewayEvent[],
  stored: readonly JournalRecord[],
): Notice[] {
  const notices: Notice[] = [];
  const kept: JournalRecord[] = [];
  for (const record of stored) {
    if (record.type !== EVENT_TYPES.journalOverflow) {
      kept.push(record);
      continue;
    }
    assertValidEvent(JSON.parse(record.payload));
    const data = JSON.parse(record.payload).data as {
      dropped: number;
      oldest_kept_sequence: string;
    };
    notices.push({
      dropped: data.dropped,
      oldestKept: BigInt(data.oldest_kept_sequence),
      sequence: record.sequence,
    });
  }
  // kept is the pushed stream minus some events, in order
  const index = new Map(pushed.map((e, i) => [e.time, i]));
  const positions = kept.map((r) => index.get(r.time));
  expect(positions.every((p) => p !== undefined)).toBe(true);
  for (let i = 1; i < positions.length; i++)
    expect(positions[i]!).toBeGreaterThan(positions[i - 1]!);
  // the runs of dropped events, each named by the kept event after it
  const expected: { dropped: number; oldestKept: bigint }[] = [];
  let next = 0;
  kept.forEach((record, k) => {
    const at = positions[k]!;
    if (at > next) expected.push({ dropped: at - next, oldestKept: record.sequence });
    next = at + 1;
  });
  expect(next, "no dropped run may be left at the end of the stream").toBe(pushed.length);
  const announced = notices.map(({ dropped, oldestKept }) => ({ dropped, oldestKept }));
  expect(announced.sort((a, b) => Number(a.oldestKept - b.oldestKept))).toEqual(expected);
  return notices;
}

/** The records the journal holds that are not overflow notices, as the pushed events' times. */
export function keptTimes(stored: readonly JournalRecord[]): number[] {
  return stored.filter((r) => r.type !== EVENT_TYPES.journalOverflow).map((r) => r.time);
}
